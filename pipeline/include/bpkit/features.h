// Data for pipelines: manifests (which files, which labels), the feature cache, and running a
// pipeline over a whole manifest.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "bpkit/data.h"
#include "bpkit/pipeline.h"

namespace bpkit {

// One line of a manifest: "PATH<TAB>LABEL" (or "PATH LABEL" when the path holds no blank).
// Blank lines and lines starting with '#' are skipped; relative paths are resolved against the
// manifest's directory.
struct ManifestEntry {
  std::string path;
  std::string label;
  std::string where;  // "manifest:line"
};
// Throws FileError naming the manifest (and line) when it cannot be read or a line has no label.
// With `text_inputs` (a pipeline whose input_kind() is text) the first column is the input text
// itself, kept as written (only a tab separates it from the label then).
std::vector<ManifestEntry> read_manifest(const std::string& path, bool text_inputs = false);

// Features on disk, keyed by the input file's content and the pipeline's signature (plugins,
// versions, parameters), so an entry can never be served for another input or configuration.
// Entries carry a checksum; a damaged entry is ignored (and recomputed), never served.
class FeatureCache {
 public:
  explicit FeatureCache(std::string dir) : dir_(std::move(dir)) {}
  // $BPKIT_CACHE_DIR, else $XDG_CACHE_HOME/bpkit/features, else $HOME/.cache/bpkit/features.
  static std::string default_dir();
  static std::string key(const std::string& content, const std::string& signature);

  bool load(const std::string& key, Tensor<float>& out) const;
  // Written atomically; a failure to write is reported by FileError.
  void store(const std::string& key, const Tensor<float>& t) const;
  // Removes every entry; returns how many.
  size_t clear() const;
  const std::string& dir() const { return dir_; }

 private:
  std::string path_of(const std::string& key) const;
  std::string dir_;
};

struct ExtractOptions {
  const FeatureCache* cache = nullptr;  // null: no cache
  bool skip_errors = false;             // on_error: skip (else the first failure throws)
  std::ostream* log = nullptr;          // skipped samples and cache warnings are reported here
};

struct FeatureSet {
  std::vector<Tensor<float>> features;  // one per kept entry
  std::vector<ManifestEntry> entries;   // the kept entries, in manifest order
  int64_t cache_hits = 0, computed = 0;
  std::vector<std::string> skipped;  // "file: stage 'x' failed: why"
  double seconds = 0;
};

// Runs the pipeline on every entry, on all threads. Throws StageError for the first failing sample
// (naming the file and the stage) unless skip_errors.
FeatureSet extract_features(const Pipeline& pipeline, const std::vector<ManifestEntry>& entries,
                            const ExtractOptions& options);

// Stacks fixed-shape features into a Dataset with labels mapped through `classes`. Throws
// FileError naming the manifest line of a label not in `classes`, or ShapeError for a sample whose
// features differ in shape from the first.
Dataset make_dataset(const FeatureSet& set, const std::vector<std::string>& classes);

// How a sequence dataset's manifest labels read.
enum class SequenceLabels {
  kClass,       // one class name per sample
  kTranscript,  // a string over the one-byte symbols in `classes`: label k + 1 is classes[k], 0
                // the CTC blank
  kFrames,      // class names separated by blanks, one per frame of the sample's features
};

// Variable-length samples: each features tensor as it is (sequences {T_i, F}; every sample must
// agree on all but dimension `varying` — the first, or 2 for the widths of line images {C, H,
// W_i}), with labels read as `labels` says. Throws FileError naming the manifest line of an
// unknown label or symbol, or of frame labels whose count is not the sample's frame count;
// ShapeError for inconsistent shapes.
SequenceDataset make_sequence_dataset(const FeatureSet& set,
                                      const std::vector<std::string>& classes,
                                      SequenceLabels labels, int varying = 0);

// The class names of a frame-label manifest line ("F - OW N -"), split at blanks.
std::vector<std::string> split_frame_labels(const std::string& label);

}  // namespace bpkit
