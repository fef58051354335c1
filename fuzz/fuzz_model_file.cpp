// Model files (engine/src/model_file.cpp): load_model on any bytes. The last four bytes are
// replaced by the CRC-32 of the others first, so that mutations reach the parser behind the
// checksum (a wrong checksum is refused at once, and tests/test_model_file.cpp checks that).
#include <zlib.h>

#include <cstring>
#include <string>

#include "bpkit/model_file.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.size() >= 4) {
    const uint32_t crc =
        uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
    std::memcpy(&bytes[bytes.size() - 4], &crc, 4);
  }
  const std::string path = bpkit_fuzz::write_scratch(
      "model.bpk", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  bpkit_fuzz::expect_clean("model_file", [&] {
    bpkit::LoadedModel<float> m = bpkit::load_model<float>(path);
    // What `bpkit inspect` shows of a model: every layer's description and parameter count.
    size_t params = 0;
    for (size_t i = 0; i < m.net.size(); ++i) {
      params += m.net.layer(i).describe().size();
      for (auto& p : m.net.layer(i).params()) params += size_t(p.value->size());
    }
    (void)params;
  });
  return 0;
}
