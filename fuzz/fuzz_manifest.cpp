// Manifests (pipeline/src/features.cpp): read_manifest on any bytes, then the labels as a
// classifier's classes (make_dataset) and as transcripts over an alphabet (make_sequence_dataset),
// as bpkit train and bpkit eval use them.
#include <algorithm>
#include <string>
#include <vector>

#include "bpkit/features.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = bpkit_fuzz::write_scratch("train.tsv", data, size);
  bpkit::FeatureSet set;
  bpkit_fuzz::expect_clean("manifest", [&] { set.entries = bpkit::read_manifest(path); });
  if (set.entries.empty()) return 0;
  std::vector<std::string> classes;
  for (const bpkit::ManifestEntry& e : set.entries) {
    classes.push_back(e.label);
    set.features.emplace_back(bpkit::Shape{2});
  }
  std::sort(classes.begin(), classes.end());
  classes.erase(std::unique(classes.begin(), classes.end()), classes.end());
  bpkit_fuzz::expect_clean("manifest", [&] { (void)bpkit::make_dataset(set, classes); });
  // Transcripts: frames of varying counts, labels spelled over a digits-and-letters alphabet.
  for (size_t i = 0; i < set.features.size(); ++i)
    set.features[i] = bpkit::Tensor<float>({1 + int64_t(i % 3), 2});
  std::vector<std::string> alphabet;
  for (char c : std::string("0123456789abcdefghijklmnopqrstuvwxyz '")) alphabet.push_back({c});
  bpkit_fuzz::expect_clean(
      "manifest", [&] { (void)bpkit::make_sequence_dataset(set, alphabet, bpkit::SequenceLabels::kTranscript); });
  return 0;
}
