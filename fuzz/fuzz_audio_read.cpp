// Audio input (plugins/audio/audio_stages.cpp): the audio.read stage on any bytes, i.e. its
// header checks and libsndfile's decoding (WAV, FLAC, OGG, AIFF, ...), resampled to 16 kHz, once
// whole and once as a window (speech_app reads long recordings window by window).
#include <string>

#include "audio_stages.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bpkit_audio::Read* read = [] {
    auto* r = new bpkit_audio::Read;
    bpkit::ParamValues p;
    for (const bpkit::ParamSpec& s : bpkit_audio::Read::info().params)
      p.set(s.name, s.default_value);
    r->configure(p);
    return r;
  }();
  bpkit::Value in;
  in.path = bpkit_fuzz::write_scratch("audio", data, size);
  bpkit_fuzz::expect_clean("audio_read", [&] { (void)read->process(in); });
  in.window = {0.01, 0.02};
  bpkit_fuzz::expect_clean("audio_read", [&] { (void)read->process(in); });
  return 0;
}
