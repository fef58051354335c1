// Feature files (plugins/audio/feature_files.cpp): Kaldi archives, lone Kaldi matrices, Kaldi
// script files and Sphinx cepstra, on any bytes. The first byte chooses the reader, the rest is
// the file:
//   0  an archive (x.ark): read_kaldi_ark, then read_kaldi_ark_entry with the key "utt2"
//   1  a lone matrix (x): read_kaldi_matrix_file
//   2  a Sphinx file (x.mfc): read_sphinx_mfc with 13 values a frame
//   3  any file (x.bin): the sequence.read stage, which detects the format from the content
//   4  a script file (x.scp): read_kaldi_scp, then each entry that names a.ark (a valid archive
//      of two matrices, binary and text, in the scratch directory) or the script file itself
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "feature_files.h"
#include "fuzz_common.h"

namespace fs = std::filesystem;

namespace {

// a.ark in the scratch directory, for script files to point at: "utt1" binary at offset 0 and
// "utt2" as text.
void write_reference_archive() {
  bpkit::Tensor<float> a({3, 2}), b({2, 3});
  for (int64_t i = 0; i < a.size(); ++i) a.data()[i] = float(i) - 2.5f;
  for (int64_t i = 0; i < b.size(); ++i) b.data()[i] = 0.25f * float(i);
  const std::string path = bpkit_fuzz::scratch_dir() + "/a.ark";
  const std::string text_path = bpkit_fuzz::scratch_dir() + "/t.ark";
  bpkit_audio::write_kaldi_ark(path, {{"utt1", a}});
  bpkit_audio::write_kaldi_ark(text_path, {{"utt2", b}}, /*text=*/true);
  // One archive holding both: binary, then text.
  std::ifstream bin(path, std::ios::binary), txt(text_path, std::ios::binary);
  const std::string both = std::string(std::istreambuf_iterator<char>(bin), {}) +
                           std::string(std::istreambuf_iterator<char>(txt), {});
  bpkit_fuzz::write_scratch("a.ark", reinterpret_cast<const uint8_t*>(both.data()), both.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool ready = (write_reference_archive(), true);
  static const bpkit_audio::SequenceRead* stage = [] {
    auto* s = new bpkit_audio::SequenceRead;
    bpkit::ParamValues p;
    for (const bpkit::ParamSpec& spec : bpkit_audio::SequenceRead::info().params)
      p.set(spec.name, spec.default_value);
    s->configure(p);
    return s;
  }();
  (void)ready;
  if (size < 1) return 0;
  const int mode = data[0] % 5;
  static const char* const kNames[] = {"x.ark", "x", "x.mfc", "x.bin", "x.scp"};
  const std::string path = bpkit_fuzz::write_scratch(kNames[mode], data + 1, size - 1);
  using namespace bpkit_audio;
  bpkit_fuzz::expect_clean("feature_files", [&] {
    switch (mode) {
      case 0:
        (void)read_kaldi_ark(path);
        (void)read_kaldi_ark_entry(path, "utt2");
        break;
      case 1:
        (void)read_kaldi_matrix_file(path);
        break;
      case 2:
        (void)read_sphinx_mfc(path);
        break;
      case 3: {
        bpkit::Value in;
        in.path = path;
        (void)stage->process(in);
        break;
      }
      case 4: {
        const fs::path scratch = fs::canonical(bpkit_fuzz::scratch_dir());
        for (const KaldiScpEntry& e : read_kaldi_scp(path)) {
          std::error_code ec;
          const fs::path p = fs::weakly_canonical(e.path, ec);
          // Only these two: a made-up line may name any path on the machine, and the scratch
          // directory's other files change from input to input.
          if (!ec && (p == scratch / "a.ark" || p == scratch / "x.scp"))
            (void)read_kaldi_scp_entry(e);
        }
        break;
      }
    }
  });
  return 0;
}
