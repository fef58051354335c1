// Pipeline files (pipeline/src/config.cpp): parse_pipeline_config on any text, as a model's
// pipeline.yaml (a network required) and as an ocr_app page layout (stages alone).
#include <string>

#include "bpkit/config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const std::string path = bpkit_fuzz::scratch_dir() + "/pipeline.yaml";
  for (const bool need_network : {true, false})
    bpkit_fuzz::expect_clean("pipeline_config", [&] {
      const bpkit::PipelineConfig c = bpkit::parse_pipeline_config(text, path, "", need_network);
      (void)c;
    });
  return 0;
}
