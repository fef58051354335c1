#include "bpkit/features.h"

#include <zlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <ostream>
#include <sstream>

#include "bpkit/digest.h"
#include "bpkit/error.h"
#include "bpkit/model_file.h"
#include "bpkit/threading.h"

namespace bpkit {
namespace {

namespace fs = std::filesystem;

constexpr char kCacheMagic[8] = {'B', 'P', 'K', 'F', 'E', 'A', 'T', '1'};

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

}  // namespace

std::vector<ManifestEntry> read_manifest(const std::string& path, bool text_inputs) {
  std::string text;
  errno = 0;
  std::error_code ec;
  if (fs::is_directory(path, ec) || !read_file(path, text))
    throw FileError(path + ": cannot read the manifest (" + open_failure(path, errno) + ")");
  const fs::path dir = fs::path(path).parent_path();
  std::vector<ManifestEntry> out;
  std::istringstream lines(text);
  std::string line;
  int no = 0;
  while (std::getline(lines, line)) {
    ++no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t cut = t.find('\t');
    if (cut == std::string::npos && !text_inputs) cut = t.find(' ');
    const std::string where = path + ":" + std::to_string(no);
    if (cut == std::string::npos)
      throw FileError(where + ": expected '" + (text_inputs ? "TEXT" : "PATH") +
                      "<TAB>LABEL', got '" + t + "' (no label)");
    ManifestEntry e;
    e.path = trim(t.substr(0, cut));
    e.label = trim(t.substr(cut + 1));
    e.where = where;
    if (e.label.empty()) throw FileError(where + ": the label is empty");
    if (text_inputs && e.path.empty()) throw FileError(where + ": the text is empty");
    if (!text_inputs && fs::path(e.path).is_relative())
      e.path = (dir / e.path).lexically_normal().string();
    out.push_back(std::move(e));
  }
  if (out.empty()) throw FileError(path + ": the manifest lists no samples");
  return out;
}

std::string FeatureCache::default_dir() {
  if (const char* d = std::getenv("BPKIT_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x)
    return (fs::path(x) / "bpkit" / "features").string();
  if (const char* h = std::getenv("HOME"); h && *h)
    return (fs::path(h) / ".cache" / "bpkit" / "features").string();
  return ".bpkit-cache";
}

std::string FeatureCache::key(const std::string& content, const std::string& signature) {
  // The signature's length first, so that no (signature, content) pair reads as another.
  const std::string head = std::to_string(signature.size()) + '\0' + signature + '\0';
  return Digest().update(head).update(content).hex();
}

std::string FeatureCache::path_of(const std::string& key) const {
  return (fs::path(dir_) / key.substr(0, 2) / (key + ".feat")).string();
}

bool FeatureCache::load(const std::string& key, Tensor<float>& out) const {
  std::string b;
  if (!read_file(path_of(key), b)) return false;
  if (b.size() < 8 + 4 + 4 || std::memcmp(b.data(), kCacheMagic, 8) != 0) return false;
  uint32_t crc_file;
  std::memcpy(&crc_file, b.data() + b.size() - 4, 4);
  if (uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(b.data()), b.size() - 4)) != crc_file)
    return false;
  size_t pos = 8;
  uint32_t rank;
  std::memcpy(&rank, b.data() + pos, 4);
  pos += 4;
  if (rank > 8 || b.size() < pos + 8 * rank + 4) return false;
  Shape shape(rank);
  for (auto& d : shape) {
    std::memcpy(&d, b.data() + pos, 8);
    pos += 8;
    if (d < 0) return false;
  }
  const uint64_t n = uint64_t(shape_size(shape));
  if (b.size() != pos + 4 * n + 4) return false;
  out.resize(shape);
  std::memcpy(out.data(), b.data() + pos, 4 * n);
  return true;
}

void FeatureCache::store(const std::string& key, const Tensor<float>& t) const {
  const std::string path = path_of(key);
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  if (ec)
    throw FileError(fs::path(path).parent_path().string() +
                    ": cannot create the feature "
                    "cache directory: " +
                    ec.message());
  std::string b(kCacheMagic, 8);
  const uint32_t rank = uint32_t(t.rank());
  b.append(reinterpret_cast<const char*>(&rank), 4);
  for (int d = 0; d < t.rank(); ++d) {
    const int64_t v = t.dim(d);
    b.append(reinterpret_cast<const char*>(&v), 8);
  }
  b.append(reinterpret_cast<const char*>(t.data()), 4 * size_t(t.size()));
  const uint32_t crc = uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(b.data()), b.size()));
  b.append(reinterpret_cast<const char*>(&crc), 4);
  write_file_atomically(path, b);
}

size_t FeatureCache::clear() const {
  size_t n = 0;
  std::error_code ec;
  if (!fs::is_directory(dir_, ec)) return 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_, ec))
    if (e.path().extension() == ".feat") ++n;
  fs::remove_all(dir_, ec);
  if (ec) throw FileError(dir_ + ": cannot clear the feature cache: " + ec.message());
  return n;
}

FeatureSet extract_features(const Pipeline& pipeline, const std::vector<ManifestEntry>& entries,
                            const ExtractOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t n = int64_t(entries.size());
  std::vector<Tensor<float>> feats(entries.size());
  std::vector<std::string> errors(entries.size());
  std::vector<char> ok(entries.size(), 0);
  std::atomic<int64_t> hits{0}, computed{0};
  std::atomic<bool> stop{false};
  std::mutex warn_mutex;
  int64_t cache_failures = 0;
  const bool text = pipeline.input_kind() == Kind::kText;
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e && !stop.load(std::memory_order_relaxed); ++i) {
      const ManifestEntry& m = entries[size_t(i)];
      try {
        std::string key;
        if (o.cache && !text) {  // text inputs are quicker to featurize than to look up
          std::string content;
          if (!read_file(m.path, content))
            throw StageError(m.path + ": cannot read the file", m.path);
          key = FeatureCache::key(content, pipeline.signature());
          if (o.cache->load(key, feats[size_t(i)])) {
            ++hits;
            ok[size_t(i)] = 1;
            continue;
          }
        }
        Value v = pipeline.run(m.path);
        feats[size_t(i)] = std::move(v.tensor);
        if (feats[size_t(i)].size() == 0)
          throw StageError(m.path + ": the pipeline produced empty features", m.path);
        if (o.cache && !text) {  // a cache that cannot be written costs time on the next run, not samples
          try {
            o.cache->store(key, feats[size_t(i)]);
          } catch (const std::exception& ex) {
            std::lock_guard<std::mutex> lock(warn_mutex);
            if (cache_failures++ == 0 && o.log)
              *o.log << "warning: the feature cache is not written: " << ex.what() << "\n";
          }
        }
        ++computed;
        ok[size_t(i)] = 1;
      } catch (const std::exception& ex) {
        errors[size_t(i)] = std::string(ex.what()) + " (listed at " + m.where + ")";
        if (!o.skip_errors) stop = true;
      }
    }
  });
  FeatureSet out;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (ok[i]) {
      out.features.push_back(std::move(feats[i]));
      out.entries.push_back(entries[i]);
    } else if (!errors[i].empty()) {
      if (!o.skip_errors) throw StageError(errors[i], entries[i].path);
      out.skipped.push_back(errors[i]);
      if (o.log) *o.log << "skipped " << errors[i] << "\n";
    }
  }
  if (cache_failures > 1 && o.log)
    *o.log << "warning: " << cache_failures << " samples were not written to the feature cache\n";
  out.cache_hits = hits;
  out.computed = computed;
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

Dataset make_dataset(const FeatureSet& set, const std::vector<std::string>& classes) {
  Dataset d;
  d.classes = int(classes.size());
  if (set.features.empty()) return d;
  const Shape& s0 = set.features[0].shape();
  Shape shape{int64_t(set.features.size())};
  shape.insert(shape.end(), s0.begin(), s0.end());
  d.x.resize(shape);
  const int64_t per = set.features[0].size();
  for (size_t i = 0; i < set.features.size(); ++i) {
    const Tensor<float>& f = set.features[i];
    if (f.shape() != s0)
      throw ShapeError(set.entries[i].path + ": features of shape " + to_string(f.shape()) +
                       ", but the first sample (" + set.entries[0].path + ") has " + to_string(s0) +
                       "; the stages must produce one fixed shape");
    std::memcpy(d.x.data() + int64_t(i) * per, f.data(), sizeof(float) * size_t(per));
    const auto it = std::find(classes.begin(), classes.end(), set.entries[i].label);
    if (it == classes.end())
      throw FileError(set.entries[i].where + ": label '" + set.entries[i].label +
                      "' is not one of the model's classes");
    d.y.push_back(int32_t(it - classes.begin()));
  }
  return d;
}

std::vector<std::string> split_frame_labels(const std::string& label) {
  std::vector<std::string> out;
  std::istringstream in(label);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

SequenceDataset make_sequence_dataset(const FeatureSet& set,
                                      const std::vector<std::string>& classes,
                                      SequenceLabels labels, int varying) {
  const bool transcripts = labels == SequenceLabels::kTranscript;
  SequenceDataset d;
  d.classes = int(classes.size()) + (transcripts ? 1 : 0);
  std::map<std::string, int32_t> index;
  for (size_t k = 0; k < classes.size(); ++k) index.emplace(classes[k], int32_t(k));
  if (set.features.empty()) return d;
  const Shape& s0 = set.features[0].shape();
  for (size_t i = 0; i < set.features.size(); ++i) {
    const Tensor<float>& f = set.features[i];
    const ManifestEntry& e = set.entries[i];
    bool same = f.rank() == int(s0.size()) && f.rank() > varying;
    for (int k = 0; same && k < f.rank(); ++k)
      same = k == varying ? f.dim(k) >= 1 : f.dim(k) == s0[size_t(k)];
    if (!same)
      throw ShapeError(e.path + ": features of shape " + to_string(f.shape()) +
                       ", but the first sample (" + set.entries[0].path + ") has " + to_string(s0) +
                       "; sequences may differ only in " +
                       (varying == 0 ? std::string("their first (frame) dimension")
                                     : "dimension " + std::to_string(varying)));
    d.x.push_back(f);
    if (transcripts) {
      std::vector<int32_t> seq;
      for (char ch : e.label) {
        const auto it = std::find_if(classes.begin(), classes.end(), [&](const std::string& c) {
          return c.size() == 1 && c[0] == ch;
        });
        if (it == classes.end())
          throw FileError(e.where + ": the transcript '" + e.label + "' holds '" +
                          std::string(1, ch) + "', which is not in the alphabet");
        seq.push_back(int32_t(it - classes.begin()) + 1);
      }
      d.sequences.push_back(std::move(seq));
    } else if (labels == SequenceLabels::kFrames) {
      const std::vector<std::string> names = split_frame_labels(e.label);
      if (int64_t(names.size()) != f.dim(0))
        throw FileError(e.where + ": " + std::to_string(names.size()) + " frame labels for " +
                        std::to_string(f.dim(0)) + " frames of features (one label per frame)");
      std::vector<int32_t> seq;
      for (const std::string& n : names) {
        const auto it = index.find(n);
        if (it == index.end())
          throw FileError(e.where + ": frame label '" + n + "' is not one of the model's classes");
        seq.push_back(it->second);
      }
      d.sequences.push_back(std::move(seq));
    } else {
      const auto it = std::find(classes.begin(), classes.end(), e.label);
      if (it == classes.end())
        throw FileError(e.where + ": label '" + e.label + "' is not one of the model's classes");
      d.y.push_back(int32_t(it - classes.begin()));
    }
  }
  return d;
}

}  // namespace bpkit
