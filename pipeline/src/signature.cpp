#include "bpkit/signature.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "bpkit/error.h"
#include "bpkit/model_file.h"

namespace bpkit {
namespace fs = std::filesystem;

namespace {

bool is_image_name(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  for (const char* e :
       {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".pbm", ".pgm", ".ppm", ".pnm", ".webp"})
    if (ext == e) return true;
  return false;
}

std::vector<std::string> images_in(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && is_image_name(e.path())) files.push_back(e.path().string());
  if (ec) throw FileError(dir.string() + ": cannot list the directory: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

WriterDataset read_writer_dataset(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw FileError(dir +
                    ": not a dataset directory (expected one directory per writer, each "
                    "with genuine/ and forgeries/ images)");
  WriterDataset d;
  d.dir = dir;
  std::vector<fs::path> subdirs;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory(ec)) subdirs.push_back(e.path());
  if (ec) throw FileError(dir + ": cannot list the directory: " + ec.message());
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& w : subdirs) {
    if (!fs::is_directory(w / "genuine", ec)) {
      // Other directories (a cache, notes) are not writers, but a writer without genuine/ is a
      // layout mistake worth naming when it has forgeries/.
      if (fs::is_directory(w / "forgeries", ec))
        throw FileError(w.string() + ": a writer directory with forgeries/ but no genuine/");
      continue;
    }
    WriterSamples s;
    s.id = w.filename().string();
    s.genuine = images_in(w / "genuine");
    s.forgeries = images_in(w / "forgeries");
    if (s.genuine.size() < 2)
      throw FileError((w / "genuine").string() + ": " + std::to_string(s.genuine.size()) +
                      " genuine image(s); a writer needs at least two (a reference and a query)");
    d.writers.push_back(std::move(s));
  }
  if (d.writers.empty())
    throw FileError(dir + ": no writer directories (WRITER/genuine/*.png) in it");
  return d;
}

double verification_score(const float* q, const std::vector<const float*>& refs, int64_t dim) {
  if (refs.empty()) throw std::invalid_argument("verification needs at least one reference");
  // The references' mean, then the cosine of the query with it: an average of the writer's
  // signatures is a steadier model of the writer than any one of them.
  std::vector<double> mean(size_t(dim), 0.0);
  for (const float* r : refs)
    for (int64_t i = 0; i < dim; ++i) mean[size_t(i)] += double(r[i]);
  double dot = 0, qq = 0, mm = 0;
  for (int64_t i = 0; i < dim; ++i) {
    dot += double(q[i]) * mean[size_t(i)];
    qq += double(q[i]) * double(q[i]);
    mm += mean[size_t(i)] * mean[size_t(i)];
  }
  // A zero vector has no direction: it resembles nothing (an l2_normalize output never is one).
  if (qq == 0 || mm == 0) return -1;
  return dot / std::sqrt(qq * mm);
}

VerificationTrials verification_trials(
    const WriterDataset& data, const std::function<const float*(const std::string&)>& embedding,
    int64_t dim, int references, int random_writers, const TrialScore& custom) {
  const TrialScore score = custom ? custom : TrialScore(verification_score);
  VerificationTrials t;
  const size_t n = data.writers.size();
  for (size_t w = 0; w < n; ++w) {
    const WriterSamples& s = data.writers[w];
    if (s.genuine.size() <= size_t(references)) continue;
    std::vector<const float*> refs;
    for (int r = 0; r < references; ++r) refs.push_back(embedding(s.genuine[size_t(r)]));
    for (size_t g = size_t(references); g < s.genuine.size(); ++g)
      t.genuine.push_back(score(embedding(s.genuine[g]), refs, dim));
    for (const std::string& f : s.forgeries) t.skilled.push_back(score(embedding(f), refs, dim));
    const size_t others = std::min(n - 1, size_t(std::max(random_writers, 0)));
    for (size_t k = 1; k <= others; ++k) {
      const WriterSamples& o = data.writers[(w + k) % n];
      if (!o.genuine.empty()) t.random.push_back(score(embedding(o.genuine.back()), refs, dim));
    }
    ++t.writers;
  }
  return t;
}

namespace {

std::vector<std::string> tab_fields(const std::string& line) {
  std::vector<std::string> f;
  for (size_t at = 0;;) {
    const size_t tab = line.find('\t', at);
    f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
    if (tab == std::string::npos) return f;
    at = tab + 1;
  }
}

int32_t pair_kind(const std::string& l) {
  return l == "1" || l == "genuine"   ? kGenuinePair
         : l == "0" || l == "skilled" ? kSkilledPair
         : l == "random"              ? kRandomPair
                                      : -1;
}

}  // namespace

int tuple_manifest_arity(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return 0;
  std::ifstream in(path);
  std::string line;
  for (int n = 0; n < 1000 && std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos || line[0] == '#') continue;
    const std::vector<std::string> f = tab_fields(line);
    if (f.size() != 3) return 0;
    return pair_kind(f[2]) >= 0 ? 2 : 3;
  }
  return 0;
}

TupleManifest read_tuple_manifest(const std::string& path, int arity) {
  if (arity != 2 && arity != 3) throw std::invalid_argument("tuples are pairs or triplets");
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw FileError(path +
                    ": a directory, but data.layout: " + (arity == 2 ? "pairs" : "triplets") +
                    " reads a manifest file (one tuple a line); a dataset directory of writers "
                    "is data.layout: writers");
  std::ifstream in(path);
  if (!in)
    throw FileError(path + ": cannot read the tuple manifest (" + open_failure(path, errno) + ")");
  TupleManifest m;
  m.path = path;
  m.arity = arity;
  const fs::path base = fs::path(path).parent_path();
  std::unordered_map<std::string, int64_t> index;
  std::string line;
  const char* want = arity == 2 ? "REFERENCE<tab>QUERY<tab>LABEL (1, 0, genuine, skilled or random)"
                                : "ANCHOR<tab>POSITIVE<tab>NEGATIVE";
  for (int no = 1; std::getline(in, line); ++no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(no) + ": ";
    if (line.find_first_not_of(" \t") == std::string::npos || line[0] == '#') continue;
    const std::vector<std::string> f = tab_fields(line);
    if (f.size() != 3)
      throw FileError(where + std::to_string(f.size()) + " tab-separated field(s); expected " +
                      want);
    const size_t files = size_t(arity);
    if (arity == 2) {
      m.kinds.push_back(pair_kind(f[2]));
      if (m.kinds.back() < 0)
        throw FileError(where + "label '" + f[2] + "'; expected 1 or genuine (the same writer), " +
                        "0 or skilled (a forgery of that writer), random (another writer)");
    }
    std::vector<int64_t> t;
    for (size_t k = 0; k < files; ++k) {
      if (f[k].empty()) throw FileError(where + "field " + std::to_string(k + 1) + " is empty");
      const fs::path p = fs::path(f[k]).is_absolute() ? fs::path(f[k]) : base / f[k];
      const std::string name = p.lexically_normal().string();
      auto [it, added] = index.emplace(name, int64_t(m.files.size()));
      if (added) {
        if (!fs::is_regular_file(name, ec))
          throw FileError(where + name + ": " +
                          (fs::exists(name, ec) ? "not a regular file" : "no such file"));
        m.files.push_back(name);
      }
      for (int64_t seen : t)
        if (seen == it->second) throw FileError(where + "names " + name + " twice");
      t.push_back(it->second);
    }
    m.tuples.insert(m.tuples.end(), t.begin(), t.end());
    m.lines.push_back(no);
  }
  if (in.bad()) throw FileError(path + ": read error");
  if (m.tuples.empty()) throw FileError(path + ": no tuple in it (expected lines of " + want + ")");
  return m;
}

VerificationTrials tuple_trials(const TupleManifest& m, const std::vector<int64_t>& which,
                                const std::function<const float*(int64_t)>& embedding,
                                int64_t dim) {
  VerificationTrials t;
  auto trial = [&](int64_t i) {
    const int64_t* f = m.tuples.data() + i * m.arity;
    const std::vector<const float*> ref{embedding(f[0])};
    if (m.arity == 3) {
      t.genuine.push_back(verification_score(embedding(f[1]), ref, dim));
      t.skilled.push_back(verification_score(embedding(f[2]), ref, dim));
      return;
    }
    const double s = verification_score(embedding(f[1]), ref, dim);
    const int32_t kind = m.kinds[size_t(i)];
    (kind == kGenuinePair ? t.genuine : kind == kSkilledPair ? t.skilled : t.random).push_back(s);
  };
  if (which.empty())
    for (int64_t i = 0; i < m.size(); ++i) trial(i);
  for (int64_t i : which) trial(i);
  return t;
}

VerificationSummary summarize_trials(const VerificationTrials& t, double threshold) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  VerificationSummary s;
  s.threshold = threshold;
  s.writers = t.writers;
  s.genuine_trials = int64_t(t.genuine.size());
  s.skilled_trials = int64_t(t.skilled.size());
  s.random_trials = int64_t(t.random.size());
  s.skilled = s.random = Eer{kNaN, kNaN};
  s.frr = s.far_skilled = s.far_random = kNaN;
  if (t.genuine.empty()) return s;
  int64_t rejected = 0;
  for (double g : t.genuine) rejected += g < threshold;
  s.frr = double(rejected) / double(t.genuine.size());
  if (!t.skilled.empty()) {
    s.skilled = equal_error_rate(t.genuine, t.skilled);
    s.far_skilled = error_rates(t.genuine, t.skilled, threshold).far;
  }
  if (!t.random.empty()) {
    s.random = equal_error_rate(t.genuine, t.random);
    s.far_random = error_rates(t.genuine, t.random, threshold).far;
  }
  return s;
}

SignatureVerifier::SignatureVerifier(const std::string& model_dir,
                                     const std::vector<std::string>& plugin_dirs,
                                     bool trust_model_plugins)
    : dir_(resolve_model_dir(model_dir)) {
  model_ = std::make_unique<TrainedModel>(dir_, plugin_dirs, trust_model_plugins);
  if (!model_->embeddings())
    throw FileError(dir_ +
                    ": not a signature verifier (its network classifies; a verifier is trained "
                    "with data.layout: writers)");
  bool found = false;
  for (const auto& kv : model_->metadata())
    if (kv.first == "threshold") {
      char* end = nullptr;
      threshold_ = std::strtod(kv.second.c_str(), &end);
      found = !kv.second.empty() && *end == '\0' && std::isfinite(threshold_);
    } else if (kv.first == "references") {
      references_ = std::max(1, std::atoi(kv.second.c_str()));
    } else if (kv.first == "thresholds") {
      try {
        thresholds_ = parse_thresholds(kv.second);
      } catch (const std::invalid_argument& e) {
        throw FileError(dir_ + "/" + kModelFile + ": metadata 'thresholds': " + e.what());
      }
    }
  if (!found) throw FileError(dir_ + "/" + kModelFile + ": the verifier has no decision threshold");
  // Every member's bytes (one file: the digest enrollments made before ensembles carry).
  std::ostringstream bytes;
  for (const std::string& file : member_files(dir_)) {
    std::ifstream in(file, std::ios::binary);
    bytes << in.rdbuf();
    if (!in) throw FileError(file + ": cannot read the model file");
  }
  model_id_ = FeatureCache::key(bytes.str(), "verifier").substr(0, 32);
}

SignatureVerifier::~SignatureVerifier() = default;

double SignatureVerifier::threshold(size_t references) const {
  if (thresholds_.empty()) return threshold_;
  // The nearest count calibrated (the smaller one on a tie).
  const auto& best =
      *std::min_element(thresholds_.begin(), thresholds_.end(), [&](const auto& a, const auto& b) {
        const double da = std::fabs(double(a.first) - double(references));
        const double db = std::fabs(double(b.first) - double(references));
        return da < db || (da == db && a.first < b.first);
      });
  return best.second;
}

std::string format_thresholds(const std::vector<std::pair<int, double>>& thresholds) {
  std::string out;
  char buf[48];
  for (const auto& [n, t] : thresholds) {
    std::snprintf(buf, sizeof buf, "%s%d=%.17g", out.empty() ? "" : " ", n, t);
    out += buf;
  }
  return out;
}

std::vector<std::pair<int, double>> parse_thresholds(const std::string& text) {
  std::vector<std::pair<int, double>> out;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    const size_t eq = item.find('=');
    char* end = nullptr;
    const long n = eq == std::string::npos ? 0 : std::strtol(item.c_str(), &end, 10);
    if (eq == std::string::npos || end != item.c_str() + eq || n < 1 || n > 1000)
      throw std::invalid_argument("'" + item + "' is not COUNT=THRESHOLD with a count of 1..1000");
    const double t = std::strtod(item.c_str() + eq + 1, &end);
    if (eq + 1 == item.size() || *end != '\0' || !std::isfinite(t))
      throw std::invalid_argument("'" + item + "': the threshold is not a finite number");
    if (!out.empty() && n <= out.back().first)
      throw std::invalid_argument("'" + item + "': counts must ascend");
    out.emplace_back(int(n), t);
  }
  return out;
}

int64_t SignatureVerifier::dim() const {
  return model_->embedding_dim();
}

std::vector<float> SignatureVerifier::embed(const std::string& file) {
  Value v = model_->pipeline().run(file);
  const Shape& in = model_->network().input_shape();
  if (v.tensor.shape() != in)
    throw StageError(file + ": features of shape " + to_string(v.tensor.shape()) +
                         ", but the verifier takes " + to_string(in),
                     file);
  Shape s{1};
  s.insert(s.end(), in.begin(), in.end());
  Tensor<float> x(s);
  std::copy(v.tensor.data(), v.tensor.data() + v.tensor.size(), x.data());
  for (int64_t k = 0; k < v.tensor.size(); ++k)
    if (!std::isfinite(v.tensor[k]))
      throw StageError(file + ": feature " + std::to_string(k) + " is " +
                           std::to_string(v.tensor[k]) +
                           " (a stage made a value that is not a finite number)",
                       file);
  Tensor<float> y;
  model_->embed(x, y);
  return std::vector<float>(y.data(), y.data() + y.size());
}

std::vector<std::vector<float>> SignatureVerifier::embed(const std::vector<std::string>& files,
                                                         const FeatureCache* cache) {
  std::vector<ManifestEntry> entries;
  for (size_t i = 0; i < files.size(); ++i) entries.push_back({files[i], "", files[i]});
  ExtractOptions eo;
  eo.cache = cache;
  const FeatureSet fs = extract_features(model_->pipeline(), entries, eo);
  const Shape& in = model_->network().input_shape();
  const int64_t per = shape_size(in), d = dim();
  std::vector<std::vector<float>> out;
  out.reserve(files.size());
  Tensor<float> x, y;
  for (size_t i0 = 0; i0 < fs.features.size(); i0 += 256) {
    const size_t n = std::min<size_t>(256, fs.features.size() - i0);
    Shape s{int64_t(n)};
    s.insert(s.end(), in.begin(), in.end());
    x.resize(s);
    for (size_t i = 0; i < n; ++i) {
      const Tensor<float>& f = fs.features[i0 + i];
      if (f.shape() != in)
        throw StageError(files[i0 + i] + ": features of shape " + to_string(f.shape()) +
                             ", but the verifier takes " + to_string(in),
                         files[i0 + i]);
      for (int64_t k = 0; k < per; ++k)
        if (!std::isfinite(f[k]))
          throw StageError(files[i0 + i] + ": feature " + std::to_string(k) + " is " +
                               std::to_string(f[k]) +
                               " (a stage made a value that is not a finite number)",
                           files[i0 + i]);
      std::copy(f.data(), f.data() + per, x.data() + int64_t(i) * per);
    }
    model_->embed(x, y);
    for (size_t i = 0; i < n; ++i)
      out.emplace_back(y.data() + int64_t(i) * d, y.data() + int64_t(i + 1) * d);
  }
  return out;
}

double SignatureVerifier::score(const std::vector<float>& query,
                                const std::vector<std::vector<float>>& references) const {
  const int64_t d = dim();
  if (int64_t(query.size()) != d)
    throw std::invalid_argument("a query embedding of " + std::to_string(query.size()) +
                                " values; the verifier's have " + std::to_string(d));
  std::vector<const float*> refs;
  for (const auto& r : references) {
    if (int64_t(r.size()) != d)
      throw std::invalid_argument("a reference embedding of " + std::to_string(r.size()) +
                                  " values; the verifier's have " + std::to_string(d));
    refs.push_back(r.data());
  }
  return verification_score(query.data(), refs, d);
}

VerificationTrials evaluate_verifier(SignatureVerifier& v, const WriterDataset& data,
                                     int references, const FeatureCache* cache,
                                     int random_writers) {
  std::vector<std::string> files;
  for (const WriterSamples& w : data.writers) {
    files.insert(files.end(), w.genuine.begin(), w.genuine.end());
    files.insert(files.end(), w.forgeries.begin(), w.forgeries.end());
  }
  const std::vector<std::vector<float>> emb = v.embed(files, cache);
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < files.size(); ++i) index[files[i]] = i;
  return verification_trials(
      data, [&](const std::string& f) { return emb[index.at(f)].data(); }, v.dim(), references,
      random_writers);
}

VerificationTrials evaluate_verifier(SignatureVerifier& v, const TupleManifest& tuples,
                                     const FeatureCache* cache) {
  const std::vector<std::vector<float>> emb = v.embed(tuples.files, cache);
  return tuple_trials(
      tuples, {}, [&](int64_t i) { return emb[size_t(i)].data(); }, v.dim());
}

void EnrollmentDb::check_id(const std::string& id) {
  bool ok = !id.empty() && id.size() <= 128 && id[0] != '.';
  for (char ch : id)
    ok =
        ok && (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-');
  if (!ok)
    throw std::invalid_argument("writer id '" + id +
                                "': use 1-128 letters, digits, '.', '_' or '-', not starting "
                                "with '.'");
}

std::string EnrollmentDb::path_of(const std::string& id) const {
  check_id(id);
  return (fs::path(dir_) / (id + ".json")).string();
}

bool EnrollmentDb::has(const std::string& id) const {
  std::error_code ec;
  return fs::exists(path_of(id), ec);
}

EnrollmentDb::Writer EnrollmentDb::load(const std::string& id) const {
  const std::string path = path_of(id);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw FileError(path + ": writer '" + id + "' is not enrolled in " + dir_ +
                    " (signature_app enroll --db " + dir_ + " --writer " + id + " REF.png...)");
  Writer w;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (j.value("format", "") != "bpkit-signature-enrollment")
      throw FileError(path + ": not a bpkit signature enrollment");
    if (j.value("version", 0) != 1)
      throw FileError(path + ": enrollment format version " + j.at("version").dump() +
                      "; this program reads version 1");
    w.id = j.at("writer").get<std::string>();
    w.model_id = j.at("model").get<std::string>();
    for (const auto& r : j.at("references")) {
      Reference ref;
      ref.file = r.at("file").get<std::string>();
      ref.digest = r.at("digest").get<std::string>();
      ref.embedding = r.at("embedding").get<std::vector<float>>();
      if (ref.embedding.empty()) throw FileError(path + ": a reference without its embedding");
      w.references.push_back(std::move(ref));
    }
  } catch (const nlohmann::json::exception& e) {
    throw FileError(path + ": damaged enrollment file: " + e.what());
  }
  if (w.id != id) throw FileError(path + ": holds writer '" + w.id + "', not '" + id + "'");
  if (w.references.empty()) throw FileError(path + ": no references");
  return w;
}

int EnrollmentDb::add(const std::string& id, const std::string& model_id,
                      const std::vector<Reference>& refs) {
  const std::string path = path_of(id);
  Writer w;
  if (has(id)) {
    w = load(id);
    if (w.model_id != model_id)
      throw FileError(path + ": writer '" + id + "' was enrolled with another verifier model (" +
                      w.model_id + ", this one is " + model_id +
                      "); its references are not comparable: enroll the writer in a new "
                      "database, or remove " +
                      path + " and enroll again");
  } else {
    w.id = id;
    w.model_id = model_id;
  }
  int added = 0;
  for (const Reference& r : refs) {
    bool seen = false;
    for (const Reference& old : w.references) seen = seen || old.digest == r.digest;
    if (seen) continue;
    w.references.push_back(r);
    ++added;
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw FileError(dir_ + ": cannot create the enrollment directory: " + ec.message());
  nlohmann::ordered_json j;
  j["format"] = "bpkit-signature-enrollment";
  j["version"] = 1;
  j["writer"] = w.id;
  j["model"] = w.model_id;
  j["references"] = nlohmann::ordered_json::array();
  for (const Reference& r : w.references)
    j["references"].push_back({{"file", r.file}, {"digest", r.digest}, {"embedding", r.embedding}});
  write_file_atomically(path, j.dump(1) + "\n");
  return added;
}

}  // namespace bpkit
