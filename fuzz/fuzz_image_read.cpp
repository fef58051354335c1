// The image input path (plugins/image/image_plugins.cpp): the image.read stage on any bytes, i.e.
// its header checks (PNG, JPEG, TIFF, BMP, PNM/PAM, WebP) and OpenCV's decoding. max_pixels is
// 4 Mpixel here instead of the default 100 Mpixel, so that a valid huge header is refused before
// it makes an input slow; that refusal is what the check is for.
#include <string>

#include "fuzz_common.h"
#include "image_stages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bpkit_image::Read* read = [] {
    auto* r = new bpkit_image::Read;
    bpkit::ParamValues p;
    p.set("max_pixels", std::to_string(1 << 22));
    r->configure(p);
    return r;
  }();
  bpkit::Value in;
  in.path = bpkit_fuzz::write_scratch("image", data, size);
  bpkit_fuzz::expect_clean("image_read", [&] {
    const bpkit::Value out = read->process(in);
    (void)out;
  });
  return 0;
}
