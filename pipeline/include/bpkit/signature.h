// Signature verification: writer datasets, the verification protocol, and the verifier that
// `bpkit eval` and signature_app run (features → embedding → distance to the references →
// decision).
//
// A verifier is an embedding model (TrainedModel::embeddings(), trained with data.layout:
// writers): a query is compared with a writer's references by
//   score = cos(q, mean_r r),
// the cosine similarity of its embedding with the mean of the references' embeddings: 1 for a
// query in the references' mean direction, lower the farther it turns from it. A score at or above
// the threshold stored with the model (calibrated at the equal error rate of skilled forgeries on
// the validation writers) is "genuine".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/digest.h"  // file_digest: a scan enrolled twice is recognised
#include "bpkit/features.h"
#include "bpkit/metric.h"
#include "bpkit/train.h"

namespace bpkit {

// A dataset directory: one subdirectory per writer, named by the writer's id, holding genuine/
// (the writer's signatures) and, optionally, forgeries/ (skilled forgeries of them). Image files
// only (by extension: png, jpg, jpeg, tif, tiff, bmp, pbm, pgm, ppm, pnm, webp); files are listed
// in name order, writers in id order. Random forgeries are other writers' genuine signatures.
struct WriterSamples {
  std::string id;
  std::vector<std::string> genuine, forgeries;
};
struct WriterDataset {
  std::string dir;
  std::vector<WriterSamples> writers;
};
// Throws FileError: not a directory, no writer in it, a writer directory without genuine/ or with
// fewer than two genuine images.
WriterDataset read_writer_dataset(const std::string& dir);

// score = cos(q, mean_r r) over `refs` (each of `dim` values); −1 when q or the mean is zero.
// Requires refs non-empty (std::invalid_argument).
double verification_score(const float* query, const std::vector<const float*>& refs, int64_t dim);

// The trials of the verification protocol. For every writer, the first `references` genuine
// signatures (in name order) are the references; each of the writer's other genuine signatures is
// a genuine trial, each skilled forgery a skilled-forgery trial, and the last genuine signature of
// up to `random_writers` other writers (the next ones in id order, wrapping around) a
// random-forgery trial. Writers with no genuine signature beyond the references are skipped.
// `embedding(file)` gives each file's embedding (`dim` values).
struct VerificationTrials {
  std::vector<double> genuine, skilled, random;
  int64_t writers = 0;  // writers that gave trials
};
// `score` (optional) replaces verification_score (e.g. a baseline's nearest-reference distance).
using TrialScore = std::function<double(const float*, const std::vector<const float*>&, int64_t)>;
VerificationTrials verification_trials(
    const WriterDataset& data, const std::function<const float*(const std::string&)>& embedding,
    int64_t dim, int references, int random_writers = 50, const TrialScore& score = nullptr);

// A manifest of pairs or triplets (data.layout: pairs | triplets), for data that comes as tuples
// rather than as writers: one tuple a line, fields separated by tabs, paths relative to the
// manifest's directory, blank lines and lines starting with '#' skipped.
//   pairs:    REFERENCE <tab> QUERY <tab> LABEL   LABEL: 1 or genuine (the same writer), 0 or
//             skilled (a forgery of the reference's writer), random (another writer)
//   triplets: ANCHOR <tab> POSITIVE <tab> NEGATIVE   (anchor and positive by one writer)
struct TupleManifest {
  std::string path;
  int arity = 2;
  std::vector<std::string> files;  // distinct, in the order they first appear
  std::vector<int64_t> tuples;     // `arity` indices into files per tuple
  std::vector<int32_t> kinds;      // pairs: per tuple, kGenuinePair, kSkilledPair or kRandomPair
  std::vector<int> lines;          // per tuple, its line in the file
  int64_t size() const { return int64_t(tuples.size()) / arity; }
};
constexpr int32_t kSkilledPair = 0, kGenuinePair = 1, kRandomPair = 2;
// Throws FileError naming FILE:LINE: unreadable, a line of another field count, an unknown label,
// a file that does not exist, a tuple naming one file twice, no tuple at all.
TupleManifest read_tuple_manifest(const std::string& path, int arity);
// 2 or 3 when the file's first tuple line (comments and blank lines skipped) has three tab-
// separated fields, the third a pair label (2) or not (3); 0 otherwise (e.g. a class manifest)
// or when it cannot be read.
int tuple_manifest_arity(const std::string& path);

// The trials of tuples `which` (indices into m's tuples; all when empty): a pair is a trial of its
// kind scored by verification_score with one reference; a triplet is a genuine trial (anchor,
// positive) and a skilled-forgery trial (anchor, negative). `embedding(i)` is file i's.
VerificationTrials tuple_trials(const TupleManifest& m, const std::vector<int64_t>& which,
                                const std::function<const float*(int64_t)>& embedding, int64_t dim);

// Error rates of a set of trials: EER for skilled and for random forgeries, and FAR/FRR at a
// given threshold.
struct VerificationSummary {
  Eer skilled, random;
  double threshold = 0;  // the one the rates below are at
  double frr = 0, far_skilled = 0, far_random = 0;
  int64_t genuine_trials = 0, skilled_trials = 0, random_trials = 0, writers = 0;
};
// The EERs need genuine trials and the kind of forgery (a kind with no trial gets NaN).
VerificationSummary summarize_trials(const VerificationTrials& t, double threshold);

class SignatureVerifier {
 public:
  // Loads an embedding model directory (plugins as TrainedModel finds them). Throws
  // FileError/ConfigError (not a model directory, not an embedding model, no threshold stored).
  explicit SignatureVerifier(const std::string& model_dir,
                             const std::vector<std::string>& plugin_dirs = {},
                             bool trust_model_plugins = false);
  ~SignatureVerifier();
  SignatureVerifier(const SignatureVerifier&) = delete;
  SignatureVerifier& operator=(const SignatureVerifier&) = delete;

  // The embedding of one scan. Throws StageError naming the file and the stage (not an image, a
  // blank page, no ink found) or FileError.
  std::vector<float> embed(const std::string& file);
  // Many scans (features on all threads, the network in batches), in order; `cache` (optional)
  // keeps their features. Throws as embed() for the first file that fails.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& files,
                                        const FeatureCache* cache = nullptr);

  // Requires refs non-empty, every vector of dim() values (std::invalid_argument otherwise).
  double score(const std::vector<float>& query,
               const std::vector<std::vector<float>>& references) const;
  // The decision threshold for the calibrated reference count (references()).
  double threshold() const { return threshold_; }
  // The threshold for a query compared with `references` references: more references make a
  // steadier mean, so genuine and forged queries both score higher and the threshold rises with
  // the count. Models calibrated per count (metadata "thresholds": "N=T ..." for every count the
  // validation writers allowed) give the one for that count, or for the nearest count calibrated;
  // older models give threshold() for every count.
  double threshold(size_t references) const;
  // The reference count the model was calibrated for (metadata "references"; 5 when absent).
  int references() const { return references_; }
  int64_t dim() const;
  // A digest of the model file: enrollments made with another model are not comparable.
  const std::string& model_id() const { return model_id_; }
  const std::string& dir() const { return dir_; }
  TrainedModel& model() { return *model_; }

 private:
  std::string dir_, model_id_;
  std::unique_ptr<TrainedModel> model_;
  double threshold_ = 0;
  int references_ = 5;
  std::vector<std::pair<int, double>> thresholds_;  // (count, threshold), counts ascending
};

// The metadata value of per-count thresholds, "N=T N=T ..." (counts ascending), and back. parse
// throws std::invalid_argument saying what is wrong (a count outside 1..1000, a threshold that is
// not a finite number, counts out of order).
std::string format_thresholds(const std::vector<std::pair<int, double>>& thresholds);
std::vector<std::pair<int, double>> parse_thresholds(const std::string& text);

// The verification protocol (verification_trials) run by a verifier on a dataset directory:
// every scan embedded (features on all threads; `cache` optional), then the trials. Throws as
// SignatureVerifier::embed for the first scan that fails.
VerificationTrials evaluate_verifier(SignatureVerifier& verifier, const WriterDataset& data,
                                     int references, const FeatureCache* cache = nullptr,
                                     int random_writers = 50);

// The same on a tuple manifest: every scan embedded, then tuple_trials (one reference each).
VerificationTrials evaluate_verifier(SignatureVerifier& verifier, const TupleManifest& tuples,
                                     const FeatureCache* cache = nullptr);

// Enrolled writers: a directory holding one file per writer, ID.json (format
// "bpkit-signature-enrollment", version 1): the writer's id, the verifier's model_id() the
// embeddings were made with, and each reference's file name, content digest and embedding.
// Every write replaces the file atomically, so a crash mid-enrollment leaves the writer as it was.
class EnrollmentDb {
 public:
  struct Reference {
    std::string file;    // as given when enrolled
    std::string digest;  // of the file's bytes: the same scan is not enrolled twice
    std::vector<float> embedding;
  };
  struct Writer {
    std::string id, model_id;
    std::vector<Reference> references;
  };
  explicit EnrollmentDb(std::string dir) : dir_(std::move(dir)) {}
  // Writer ids: 1-128 characters of letters, digits, '.', '_' and '-', not starting with '.'
  // (ids name files). Throws std::invalid_argument saying so.
  static void check_id(const std::string& id);
  bool has(const std::string& id) const;
  // Throws FileError: no such writer, or a file that is damaged or of another format or version.
  Writer load(const std::string& id) const;
  // Adds references to the writer (created with the directory when missing); references whose
  // digest is already enrolled are left out. Returns how many were added. Throws FileError when
  // the writer was enrolled with another model (its embeddings are not comparable) or the file
  // cannot be written.
  int add(const std::string& id, const std::string& model_id, const std::vector<Reference>& refs);
  const std::string& dir() const { return dir_; }

 private:
  std::string path_of(const std::string& id) const;
  std::string dir_;
};

}  // namespace bpkit
