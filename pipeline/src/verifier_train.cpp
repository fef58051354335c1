// Training a writer-independent verifier (data.layout: writers): an embedding network learned from
// pairs or triplets of the training writers' scans, drawn anew every epoch with hard negatives
// mined among the anchor writer's skilled forgeries and other writers' signatures; then the
// decision threshold calibrated on the training writers and the error rates measured on the
// validation writers and the test dataset.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <ostream>
#include <unordered_map>
#include <unordered_set>

#include "bpkit/error.h"
#include "bpkit/features.h"
#include "bpkit/metric.h"
#include "bpkit/report.h"
#include "bpkit/signature.h"
#include "bpkit/threading.h"
#include "model_dir.h"
#include "train_detail.h"

namespace bpkit::train_detail {
namespace {

namespace fs = std::filesystem;

// Per-count thresholds are calibrated for 1..this many references (the users enroll 3-12).
constexpr int kMaxCalibratedReferences = 16;

// Every file of a set of writers with its place: sample index → (writer, genuine or forgery).
struct Samples {
  std::vector<ManifestEntry> entries;
  // Per writer (index into the dataset's writers): its genuine and forgery sample indices.
  std::vector<std::vector<int64_t>> genuine, forgeries;
};

Samples list_samples(const WriterDataset& d, const std::vector<size_t>& writers) {
  Samples s;
  s.genuine.resize(d.writers.size());
  s.forgeries.resize(d.writers.size());
  for (size_t w : writers) {
    const WriterSamples& ws = d.writers[w];
    for (const std::string& f : ws.genuine) {
      s.genuine[w].push_back(int64_t(s.entries.size()));
      s.entries.push_back({f, ws.id, f});
    }
    for (const std::string& f : ws.forgeries) {
      s.forgeries[w].push_back(int64_t(s.entries.size()));
      s.entries.push_back({f, ws.id + " (forgery)", f});
    }
  }
  return s;
}

// Drops from `d` the files `set` did not keep (the stages refused them, training.on_error: skip),
// so that list_samples(d) lists exactly set's entries, in order.
void keep_extracted(WriterDataset& d, const FeatureSet& set) {
  std::unordered_set<std::string> kept;
  for (const ManifestEntry& e : set.entries) kept.insert(e.path);
  auto filter = [&](std::vector<std::string>& files) {
    files.erase(std::remove_if(files.begin(), files.end(),
                               [&](const std::string& f) { return !kept.count(f); }),
                files.end());
  };
  for (WriterSamples& w : d.writers) {
    filter(w.genuine);
    filter(w.forgeries);
  }
}

// A tuple manifest's files, sample i being file i (its place: the line of its first tuple).
Samples list_samples(const TupleManifest& m) {
  Samples s;
  s.entries.resize(m.files.size());
  for (int64_t t = m.size(); t-- > 0;)
    for (int k = 0; k < m.arity; ++k) {
      const size_t f = size_t(m.tuples[size_t(t * m.arity + k)]);
      s.entries[f] = {m.files[f], "", m.path + ":" + std::to_string(m.lines[size_t(t)])};
    }
  return s;
}

// Embeddings of every row of x [N, ...] in inference mode by one network or an ensemble
// (ensemble_embed), [N, D].
Tensor<float> embed_all(const std::vector<Network<float>*>& nets, const Tensor<float>& x) {
  const int64_t n = x.rows(), per = x.size() / std::max<int64_t>(n, 1);
  int64_t d = 0;
  for (Network<float>* net : nets) d += shape_size(net->output_shape());
  Tensor<float> e({n, d}), chunk, y;
  for (int64_t i = 0; i < n; i += 256) {
    const int64_t b = std::min<int64_t>(256, n - i);
    Shape s = x.shape();
    s[0] = b;
    chunk.resize(s);
    std::copy(x.data() + i * per, x.data() + (i + b) * per, chunk.data());
    ensemble_embed(nets, chunk, y);
    std::copy(y.data(), y.data() + b * d, e.data() + i * d);
  }
  return e;
}

// Members of an ensemble (training.members > 1) are trained one after the other. A finished
// member's weights and history are kept in DIR/member.N.bpk (a checkpoint, removed at the end) so
// that --resume skips it; each member's checkpoints carry the member in their pipeline digest.
std::string member_state_file(const std::string& out, int k) {
  return (fs::path(out) / ("member." + std::to_string(k + 1) + ".bpk")).string();
}

RunDigests member_digests(const RunDigests& d, int k, int members) {
  RunDigests m = d;
  if (members > 1) m.config += " member " + std::to_string(k + 1) + "/" + std::to_string(members);
  return m;
}

// The pipeline digest a checkpoint file was written with ("" when it has none).
std::string checkpoint_digest(const std::string& path) {
  for (const auto& kv : load_model<float>(path).meta)
    if (kv.first == "checkpoint.config") return kv.second;
  return "";
}

void remove_member_states(const std::string& out) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(out, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("member.", 0) == 0 && e.path().extension() == ".bpk") stale.push_back(e.path());
  }
  for (const fs::path& f : stale) fs::remove(f, ec);
}

double sq_dist(const Tensor<float>& e, int64_t a, int64_t b) {
  const int64_t d = e.cols();
  double s = 0;
  for (int64_t i = 0; i < d; ++i) {
    const double v = double(e[a * d + i]) - double(e[b * d + i]);
    s += v * v;
  }
  return s;
}

// Draws tuples from `writers` (indices with at least two genuine samples). Each tuple: a writer,
// an anchor and a positive among its genuine samples, and (triplets; half of the pairs) a
// negative: with probability `skilled` one of the writer's skilled forgeries, else a genuine
// signature of another writer. With embeddings, `mining` candidates are drawn for each negative
// and the semi-hard one kept (FaceNet): the nearest to the anchor that is still farther than the
// positive, or, when every candidate is nearer, the farthest of them.
struct TupleDrawer {
  const Samples& s;
  std::vector<size_t> writers;
  double skilled;
  int mining;
  int arity;

  int64_t negative(size_t w, Rng& rng) const {
    if (!s.forgeries[w].empty() && rng.uniform() < skilled)
      return s.forgeries[w][rng.below(s.forgeries[w].size())];
    size_t o = writers[rng.below(writers.size() - 1)];
    if (o == w) o = writers.back();
    return s.genuine[o][rng.below(s.genuine[o].size())];
  }

  void draw(int64_t count, Rng& rng, const Tensor<float>* emb, std::vector<int64_t>& tuples,
            std::vector<int32_t>& labels) const {
    tuples.clear();
    labels.clear();
    for (int64_t i = 0; i < count; ++i) {
      const size_t w = writers[rng.below(writers.size())];
      const auto& g = s.genuine[w];
      const int64_t a = g[rng.below(g.size())];
      int64_t p = g[rng.below(g.size() - 1)];
      if (p == a) p = g.back();
      const bool same_pair = arity == 2 && rng.uniform() < 0.5;
      if (same_pair) {
        tuples.insert(tuples.end(), {a, p});
        labels.push_back(1);
        continue;
      }
      int64_t n = negative(w, rng);
      if (emb && mining > 1) {
        const double dp = sq_dist(*emb, a, p);
        double best = sq_dist(*emb, a, n);
        bool semi = best > dp;
        for (int m = 1; m < mining; ++m) {
          const int64_t c = negative(w, rng);
          const double dc = sq_dist(*emb, a, c);
          const bool c_semi = dc > dp;
          // Semi-hard beats hard; among semi-hard the nearest, among hard the farthest.
          if ((c_semi && (!semi || dc < best)) || (!c_semi && !semi && dc > best)) {
            n = c;
            best = dc;
            semi = c_semi;
          }
        }
      }
      if (arity == 3) {
        tuples.insert(tuples.end(), {a, p, n});
      } else {
        tuples.insert(tuples.end(), {a, n});
        labels.push_back(0);
      }
    }
  }
};

// Stacks fixed-shape features into x [N, ...]. Throws ShapeError naming the first file of
// another shape.
Tensor<float> stack(const FeatureSet& set) {
  const Shape& first = set.features.at(0).shape();
  Shape s{int64_t(set.features.size())};
  s.insert(s.end(), first.begin(), first.end());
  Tensor<float> x(s);
  const int64_t per = shape_size(first);
  for (size_t i = 0; i < set.features.size(); ++i) {
    if (set.features[i].shape() != first)
      throw ShapeError(set.entries[i].path + ": features of shape " +
                       to_string(set.features[i].shape()) + ", but " + set.entries[0].path +
                       " gave " + to_string(first) +
                       " (a verifier's stages must make one fixed shape)");
    const float* f = set.features[i].data();
    for (int64_t k = 0; k < per; ++k)
      if (!std::isfinite(f[k]))
        throw StageError(set.entries[i].path + ": feature " + std::to_string(k) + " of " +
                             std::to_string(per) + " is " + std::to_string(f[k]) +
                             " (a stage made a value that is not a finite number)",
                         set.entries[i].path);
    std::copy(f, f + per, x.data() + int64_t(i) * per);
  }
  return x;
}

std::string pct(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f%%", 100 * v);
  return b;
}

void log_summary(std::ostream* log, const char* what, const VerificationSummary& s) {
  if (!log) return;
  *log << what << ": ";
  if (s.writers > 0) *log << s.writers << " writers, ";
  *log << "EER skilled " << pct(s.skilled.eer) << " random " << pct(s.random.eer)
       << "; at the threshold " << num(s.threshold).substr(0, 8) << ": FRR " << pct(s.frr)
       << ", FAR skilled " << pct(s.far_skilled) << ", random " << pct(s.far_random) << "\n";
}

void add_summary_facts(std::vector<std::pair<std::string, std::string>>& facts,
                       const std::string& prefix, const VerificationSummary& s) {
  facts.emplace_back(prefix + "eer_skilled", num(s.skilled.eer));
  facts.emplace_back(prefix + "eer_random", num(s.random.eer));
  facts.emplace_back(prefix + "frr", num(s.frr));
  facts.emplace_back(prefix + "far_skilled", num(s.far_skilled));
  facts.emplace_back(prefix + "far_random", num(s.far_random));
}

}  // namespace

TrainOutcome train_verifier(const TrainRequest& r, PipelineConfig c) {
  std::ostream* log = r.log;
  if (c.train_manifest.empty())
    throw ConfigError(c.file +
                      ": data.train is missing: a verifier learns from a dataset directory of "
                      "writers (WRITER/genuine/*.png, WRITER/forgeries/*.png)");
  PluginRegistry registry;
  load_training_plugins(registry, c, r);
  Pipeline pipeline(c, registry);
  const std::string out = prepare_run(r, c);
  const std::string ckpt = (fs::path(out) / kCheckpointFile).string();
  // training.init (fine-tuning): member k starts from the directory's member k (its first network
  // when it has fewer). Read now, before any feature is computed, unless checkpoints replace it.
  const int members = std::max(c.members, 1);
  std::vector<LoadedModel<float>> init_models;
  auto init_model = [&](int k) {
    LoadedModel<float> m = load_init_model(c, k);
    bool verifier = false;
    for (const auto& kv : m.meta) verifier |= kv.first == "labels" && kv.second == "writer";
    if (!verifier)
      throw ConfigError(c.init_where + ": training.init " + c.init +
                        ": not a verifier (an embedding model trained with data.layout: writers)");
    return m;
  };
  if (!c.init.empty() && !r.resume)
    for (int k = 0; k < members; ++k) init_models.push_back(init_model(k));

  // Writers (tuples drawn every epoch) or a manifest of tuples (data.layout: pairs, triplets).
  const bool by_writers = c.layout == "writers";
  const int manifest_arity = c.layout == "pairs" ? 2 : 3;
  WriterDataset train_data, test_data;
  TupleManifest train_m, test_m;
  if (by_writers) {
    train_data = read_writer_dataset(c.train_manifest);
    if (!c.test_manifest.empty()) test_data = read_writer_dataset(c.test_manifest);
  } else {
    train_m = read_tuple_manifest(c.train_manifest, manifest_arity);
    if (!c.test_manifest.empty()) test_m = read_tuple_manifest(c.test_manifest, manifest_arity);
  }
  // Validation: the last fraction of a seeded permutation of the training writers. A manifest
  // names no writers, but its genuine pairs (a triplet's anchor and positive) join scans of one
  // writer: its tuples are held out by those groups (the group of their reference or anchor),
  // so that validation tuples are of writers the network did not train on.
  std::vector<size_t> group;       // manifest: per tuple, its group
  std::vector<size_t> file_group;  // manifest: per file, its group (SIZE_MAX: none)
  size_t groups = by_writers ? train_data.writers.size() : 0;
  if (!by_writers) {
    std::vector<size_t> parent(train_m.files.size());
    std::iota(parent.begin(), parent.end(), 0);
    auto find = [&](size_t x) {
      while (parent[x] != x) x = parent[x] = parent[parent[x]];
      return x;
    };
    const size_t k = size_t(train_m.arity);
    for (size_t t = 0; t < size_t(train_m.size()); ++t)
      if (k == 3 || train_m.kinds[t] == kGenuinePair)
        parent[find(size_t(train_m.tuples[t * k + 1]))] = find(size_t(train_m.tuples[t * k]));
    std::unordered_map<size_t, size_t> id;
    for (size_t t = 0; t < size_t(train_m.size()); ++t)
      group.push_back(id.emplace(find(size_t(train_m.tuples[t * k])), id.size()).first->second);
    groups = id.size();
    for (size_t f = 0; f < train_m.files.size(); ++f) {
      const auto it = id.find(find(f));
      file_group.push_back(it == id.end() ? SIZE_MAX : it->second);
    }
  }
  std::vector<size_t> order(groups);
  std::iota(order.begin(), order.end(), 0);
  {
    Rng rng(c.seed ^ 0x77726974657273ULL);
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  }
  const size_t n_val = size_t(double(order.size()) * c.validation_split);
  std::vector<size_t> train_w(order.begin(), order.end() - long(n_val)),
      val_w(order.end() - long(n_val), order.end());
  if (!by_writers) {
    // Groups → their tuples. A training tuple that names a held-out writer's scan anywhere (a
    // triplet's negative, a random pair's query) is left out: the network never sees validation
    // writers.
    std::vector<char> held(groups, 0);
    for (size_t g : val_w) held[g] = 1;
    train_w.clear();
    val_w.clear();
    size_t dropped = 0;
    const size_t k = size_t(train_m.arity);
    for (size_t t = 0; t < group.size(); ++t) {
      if (held[group[t]]) {
        val_w.push_back(t);
        continue;
      }
      bool touches = false;
      for (size_t m = 0; m < k; ++m) {
        const size_t g = file_group[size_t(train_m.tuples[t * k + m])];
        touches |= g != SIZE_MAX && held[g];
      }
      if (touches)
        ++dropped;
      else
        train_w.push_back(t);
    }
    if (dropped && log)
      *log << "validation: " << dropped
           << " training tuple(s) left out for naming a validation writer's scan\n";
  }
  std::sort(train_w.begin(), train_w.end());
  std::sort(val_w.begin(), val_w.end());
  if (by_writers && train_w.size() < 2)
    throw FileError(c.train_manifest + ": " + std::to_string(train_w.size()) +
                    " training writer(s) after the validation split; tuples need at least two");
  if (!by_writers && train_w.empty())
    throw FileError(c.train_manifest + ": no training tuple left after the validation split");

  FeatureCache cache(c.cache_dir.empty() ? FeatureCache::default_dir() : c.cache_dir);
  ExtractOptions eo;
  eo.cache = (c.cache && r.use_cache) ? &cache : nullptr;
  // training.on_error: skip drops a writer's scans that the stages refuse (and a writer left
  // with fewer than two genuine signatures); a tuple manifest's tuples name their files, so there
  // every scan must be usable.
  eo.skip_errors = by_writers && c.on_error == "skip";
  eo.log = log;
  std::vector<size_t> all_w(train_data.writers.size());
  std::iota(all_w.begin(), all_w.end(), 0);
  Samples samples = by_writers ? list_samples(train_data, all_w) : list_samples(train_m);
  // Fit stages learn from the training writers' genuine signatures (the training tuples' scans).
  std::vector<std::pair<size_t, std::string>> fitted;
  for (size_t k : pipeline.fit_stages()) {
    std::vector<std::string> files;
    if (by_writers) {
      for (size_t w : train_w)
        for (int64_t i : samples.genuine[w]) files.push_back(samples.entries[size_t(i)].path);
    } else {
      std::vector<char> used(train_m.files.size(), 0);
      for (size_t t : train_w)
        for (int m = 0; m < train_m.arity; ++m)
          used[size_t(train_m.tuples[t * size_t(train_m.arity) + size_t(m)])] = 1;
      for (size_t i = 0; i < used.size(); ++i)
        if (used[i]) files.push_back(train_m.files[i]);
    }
    fitted.emplace_back(k, pipeline.fit(k, files, eo.skip_errors ? log : nullptr));
  }
  const FeatureSet set = extract_features(pipeline, samples.entries, eo);
  if (!set.skipped.empty()) {
    keep_extracted(train_data, set);
    samples = list_samples(train_data, all_w);
    auto usable = [&](std::vector<size_t>& ws) {
      ws.erase(std::remove_if(ws.begin(), ws.end(),
                              [&](size_t w) { return train_data.writers[w].genuine.size() < 2; }),
               ws.end());
    };
    usable(train_w);
    usable(val_w);
    if (train_w.size() < 2)
      throw FileError(c.train_manifest + ": " + std::to_string(train_w.size()) +
                      " training writer(s) left with two usable genuine signatures");
    if (log)
      *log << "skipped " << set.skipped.size()
           << " scan(s) the stages refused (training.on_error: skip)\n";
  }
  if (log)
    *log << "features: " << set.features.size() << " scans of "
         << (by_writers ? std::to_string(train_data.writers.size()) + " writers"
                        : std::to_string(train_m.size()) + " " + c.layout)
         << " (" << set.cache_hits << " from the cache, " << set.computed << " computed) in "
         << fmt_seconds(set.seconds) << "\n"
         << std::flush;
  TupleDataset tuples;
  tuples.x = stack(set);
  Shape input(tuples.x.shape().begin() + 1, tuples.x.shape().end());
  if (!c.input_shape.empty() && Shape(c.input_shape) != input)
    throw ConfigError(c.network_where + ": network.input is " + to_string(Shape(c.input_shape)) +
                      " but the stages produce features of shape " + to_string(input));
  // The networks: one, or training.members trained one after the other with seeds seed, seed + 1,
  // ... on the same features and the same validation writers.
  std::vector<Network<float>> nets;
  nets.reserve(size_t(members));
  for (int k = 0; k < members; ++k) {
    nets.emplace_back(input, c.seed + uint64_t(k));
    build_network(c, nets.back());
  }
  if (nets[0].output_shape().size() != 1)
    throw ConfigError(c.layers.back().where + ": a verifier's network ends in an embedding " +
                      "vector, but this one ends with shape " + to_string(nets[0].output_shape()) +
                      " (end with dense and l2_normalize)");
  std::unique_ptr<MetricLoss<float>> loss =
      c.margin > 0 ? make_metric_loss<float>(c.loss, c.margin)
                   : make_metric_loss<float>(c.loss, c.loss == "triplet" ? 0.2 : 1.0);
  tuples.arity = loss->arity();

  if (!by_writers && tuples.arity != train_m.arity)
    throw ConfigError(c.loss_where + ": loss " + c.loss + " takes " +
                      (tuples.arity == 2 ? "pairs" : "triplets") + ", the manifest has " +
                      (train_m.arity == 2 ? "pairs" : "triplets"));
  const TupleDrawer drawer{samples, train_w, c.skilled_negatives, c.mining, tuples.arity};
  // The manifest's tuples `which`, as the trainer takes them (pairs labelled 1: the same writer).
  auto manifest_tuples = [&](const std::vector<size_t>& which, std::vector<int64_t>& out,
                             std::vector<int32_t>& labels) {
    for (size_t t : which) {
      const int64_t* f = train_m.tuples.data() + t * size_t(train_m.arity);
      out.insert(out.end(), f, f + train_m.arity);
      if (train_m.arity == 2) labels.push_back(train_m.kinds[t] == kGenuinePair ? 1 : 0);
    }
  };
  if (!by_writers) manifest_tuples(train_w, tuples.tuples, tuples.labels);
  TupleDataset val;
  if (by_writers ? val_w.size() >= 2 : !val_w.empty()) {
    val.arity = tuples.arity;
    if (by_writers) {
      const TupleDrawer vd{samples, val_w, c.skilled_negatives, 1, tuples.arity};
      Rng rng(c.seed ^ 0x76616c7475706c65ULL);
      vd.draw(std::max<int64_t>(500, int64_t(val_w.size()) * 40), rng, nullptr, val.tuples,
              val.labels);
    } else {
      manifest_tuples(val_w, val.tuples, val.labels);
    }
    // Only the validation writers' rows, renumbered: no second copy of every sample.
    std::unordered_map<int64_t, int64_t> row;
    for (int64_t& t : val.tuples) t = row.emplace(t, int64_t(row.size())).first->second;
    Shape vs = tuples.x.shape();
    vs[0] = int64_t(row.size());
    val.x = Tensor<float>(vs);
    const int64_t per = shape_size(input);
    for (const auto& [from, to] : row)
      std::copy(tuples.x.data() + from * per, tuples.x.data() + (from + 1) * per,
                val.x.data() + to * per);
  }

  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw FileError(out + ": cannot create the output directory: " + ec.message());
  if (!r.resume) remove_member_states(out);
  const RunDigests digests = run_digests(c, pipeline);
  TrainOutcome outcome;
  outcome.model_dir = out;
  TrainResult result;  // the first member's (the report's curves)
  std::vector<TrainResult> member_results;
  double secs = 0;
  for (int k = 0; k < members; ++k) {
    Network<float>& net = nets[size_t(k)];
    std::unique_ptr<Optimizer<float>> opt = make_optimizer(c, net);
    PipelineConfig ck = c;  // this member's seed: its initial weights, tuples and batches
    ck.seed = c.seed + uint64_t(k);
    const RunDigests dk = member_digests(digests, k, members);
    const std::string state = member_state_file(out, k);
    if (members > 1) {
      if (log) *log << "member " << k + 1 << " of " << members << " (seed " << ck.seed << ")\n";
      if (r.resume && fs::exists(state)) {
        const TrainProgress done = load_checkpoint(state, net, *opt, dk);
        member_results.push_back(done.result);
        if (k == 0) result = done.result;
        if (log) *log << "  trained before the stop: " << state << "\n";
        continue;
      }
    }
    TrainProgress resumed;
    TrainOptions o;
    // The checkpoint is this member's, or (members) the last finished member's: start afresh.
    if (r.resume && fs::exists(ckpt) &&
        !(k > 0 && checkpoint_digest(ckpt) == member_digests(digests, k - 1, members).config)) {
      resumed = load_checkpoint(ckpt, net, *opt, dk);
      if (outcome.resumed_from == 0) outcome.resumed_from = resumed.epochs_done;
      o.resume = &resumed;
      if (log) *log << "resuming from " << ckpt << " after epoch " << resumed.epochs_done << "\n";
    }
    if (!o.resume && !c.init.empty()) {
      LoadedModel<float> m =
          init_models.empty() ? init_model(k) : std::move(init_models[size_t(k)]);
      init_weights(net, m, c.init, c.init_where, {}, "");
      if (log) *log << "starting from " << c.init << "\n";
    }
    set_train_options(o, ck, r);
    if (c.checkpoints)
      o.on_epoch_end = [&](const TrainProgress& p) { save_checkpoint(ckpt, net, *opt, p, dk); };
    // Tuples of epoch e depend on (seed, e) and the weights at its start: a resumed run draws the
    // same ones.
    if (by_writers)
      o.draw_tuples = [&](int epoch, TupleDataset& d) {
        Rng rng(ck.seed * 0x9e3779b97f4a7c15ULL ^ 0x7475706c6573ULL ^ uint64_t(epoch + 1) << 32);
        Tensor<float> emb;
        if (c.mining > 1) emb = embed_all({&net}, d.x);
        drawer.draw(c.tuples, rng, c.mining > 1 ? &emb : nullptr, d.tuples, d.labels);
      };
    const auto t0 = std::chrono::steady_clock::now();
    // The trainer takes the samples over (no copy for the last member); they are stacked again
    // for the embeddings.
    TrainResult rk =
        fit(net, *loss, *opt, k + 1 < members ? TupleDataset(tuples) : std::move(tuples),
            val.size() ? &val : nullptr, o);
    secs += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (members > 1 && c.checkpoints) {  // without checkpoints nothing is resumed
      TrainProgress done;
      done.epochs_done = int(rk.history.size());
      done.result = rk;
      save_checkpoint(state, net, *opt, done, dk);
    }
    member_results.push_back(rk);
    if (k == 0) result = std::move(rk);
  }
  outcome.epochs_run = int(result.history.size());

  // Calibration: the threshold at the equal error rate of skilled forgeries (of random forgeries
  // when there are no skilled ones) on the validation writers, whose scans the network never
  // trained on; without validation writers, on the training writers (whose scores are optimistic).
  std::vector<Network<float>*> ensemble;
  for (Network<float>& n : nets) ensemble.push_back(&n);
  const Tensor<float> emb = embed_all(ensemble, stack(set));
  const int64_t dim = emb.cols();
  std::unordered_map<std::string, int64_t> row_of;
  for (size_t i = 0; i < samples.entries.size(); ++i) row_of[samples.entries[i].path] = int64_t(i);
  auto subset = [&](const std::vector<size_t>& ws) {
    WriterDataset d;
    d.dir = train_data.dir;
    for (size_t w : ws) d.writers.push_back(train_data.writers[w]);
    return d;
  };
  auto lookup = [&](const std::string& f) { return emb.data() + row_of.at(f) * dim; };
  // Trials: the writers' protocol with data.references references, or the manifest's tuples.
  auto trials_of = [&](const std::vector<size_t>& which) {
    if (by_writers) return verification_trials(subset(which), lookup, dim, c.references);
    return tuple_trials(
        train_m, std::vector<int64_t>(which.begin(), which.end()),
        [&](int64_t f) { return emb.data() + f * dim; }, dim);
  };
  const VerificationTrials train_trials = trials_of(train_w);
  if (train_trials.genuine.empty())
    throw FileError(c.train_manifest +
                    (by_writers ? ": no training writer has more than data.references (" +
                                      std::to_string(c.references) + ") genuine signatures"
                                : ": no genuine training tuple") +
                    ": nothing to calibrate the threshold on");
  VerificationTrials val_trials;
  if (!val_w.empty()) val_trials = trials_of(val_w);
  const bool calib_val = !val_trials.genuine.empty();
  const VerificationTrials& calib = calib_val ? val_trials : train_trials;
  auto calibrate = [](const VerificationTrials& t) {
    return !t.skilled.empty()  ? equal_error_rate(t.genuine, t.skilled).threshold
           : !t.random.empty() ? equal_error_rate(t.genuine, t.random).threshold
                               : 0.5;
  };
  const double threshold = calibrate(calib);
  // The same calibration for every other reference count the writers allow (up to
  // kMaxCalibratedReferences): a user enrolling 3 or 12 references gets the threshold for 3 or 12.
  std::vector<std::pair<int, double>> thresholds;
  // The trained count's own (also beyond the counts calibrated below), and for tuples the only one.
  thresholds.emplace_back(by_writers ? c.references : 1, threshold);
  if (by_writers) {
    const WriterDataset cw = subset(calib_val ? val_w : train_w);
    for (int n = 1; n <= kMaxCalibratedReferences; ++n) {
      if (n == c.references) continue;
      const VerificationTrials t = verification_trials(cw, lookup, dim, n);
      if (t.genuine.empty() || (t.skilled.empty() && t.random.empty())) break;
      thresholds.emplace_back(n, calibrate(t));
    }
    std::sort(thresholds.begin(), thresholds.end());
  }
  if (log) {
    *log << "threshold by reference count:";
    for (const auto& [n, t] : thresholds) *log << " " << n << "=" << num(t).substr(0, 6);
    *log << "\n";
  }
  const std::string unit = by_writers ? "writers" : c.layout;
  const VerificationSummary on_train = summarize_trials(train_trials, threshold);
  log_summary(log, ("training " + unit).c_str(), on_train);
  VerificationSummary on_val;
  if (!val_w.empty()) {
    on_val = summarize_trials(val_trials, threshold);
    log_summary(log, ("validation " + unit).c_str(), on_val);
  }

  Metadata meta{{"name", c.name},
                {"labels", "writer"},
                {"trained", now_utc()},
                {"epochs", std::to_string(result.history.size())},
                {"train_" + unit, std::to_string(train_w.size())},
                {"validation_" + unit, std::to_string(val_w.size())},
                {"threshold", num(threshold)},
                {"references", std::to_string(c.references)},
                {"thresholds", format_thresholds(thresholds)},
                {"train_eer_skilled", num(on_train.skilled.eer)},
                {"train_eer_random", num(on_train.random.eer)}};
  add_pipeline_dir(meta, c, out);
  if (!c.init.empty()) meta.emplace_back("init", init_reference(c, out));
  VerificationTrials test_trials;
  VerificationSummary on_test;
  const bool has_test = !test_data.writers.empty() || test_m.size() > 0;
  if (has_test) {
    std::vector<size_t> tw(test_data.writers.size());
    std::iota(tw.begin(), tw.end(), 0);
    Samples ts = by_writers ? list_samples(test_data, tw) : list_samples(test_m);
    const FeatureSet tset = extract_features(pipeline, ts.entries, eo);
    if (!tset.skipped.empty()) {
      if (tset.features.empty())
        throw FileError(c.test_manifest + ": the stages refused every test scan");
      keep_extracted(test_data, tset);
      ts = list_samples(test_data, tw);
    }
    const Tensor<float> temb = embed_all(ensemble, stack(tset));
    if (by_writers) {
      std::unordered_map<std::string, int64_t> trow;
      for (size_t i = 0; i < ts.entries.size(); ++i) trow[ts.entries[i].path] = int64_t(i);
      test_trials = verification_trials(
          test_data, [&](const std::string& f) { return temb.data() + trow.at(f) * dim; }, dim,
          c.references);
    } else {
      test_trials = tuple_trials(
          test_m, {}, [&](int64_t f) { return temb.data() + f * dim; }, dim);
    }
    on_test = summarize_trials(test_trials, threshold);
    log_summary(log, ("test " + unit).c_str(), on_test);
    meta.emplace_back("test_eer_skilled", num(on_test.skilled.eer));
    meta.emplace_back("test_eer_random", num(on_test.random.eer));
    outcome.test_eer_skilled = on_test.skilled.eer;
    outcome.test_eer_random = on_test.random.eer;
  }
  // Every member says how many they are and which run made them: a directory whose final write
  // was cut short (new members beside an old model.bpk) is refused when loaded, not mixed.
  meta.emplace_back("members", std::to_string(members));
  meta.emplace_back("ensemble", FeatureCache::key(digests.config + digests.data + now_utc() +
                                                      std::to_string(c.seed),
                                                  "ensemble")
                                    .substr(0, 16));
  // Stale members first (a reader never meets members of two ensembles), then the highest first:
  // model.bpk, written last, completes the directory.
  model_dir::remove_members_above(out, size_t(members));
  for (int k = members; k-- > 0;)
    save_model(nets[size_t(k)],
               (fs::path(out) /
                (k == 0 ? std::string(kModelFile) : "model." + std::to_string(k + 1) + ".bpk"))
                   .string(),
               meta);
  write_file_atomically((fs::path(out) / kPipelineFile).string(), c.text);
  if (!fitted.empty())
    model_dir::write_fit_states((fs::path(out) / kFittedFile).string(), pipeline, fitted);
  else
    fs::remove(fs::path(out) / kFittedFile, ec);

  int64_t parameters = 0;
  for (Network<float>& n : nets) parameters += n.param_count();
  ReportInput rep;
  rep.title = c.name;
  rep.result = result;
  rep.facts = {{"pipeline", fs::path(c.file).filename().string()},
               {"loss", loss->kind()},
               {"margin", num(loss->margin())},
               {"train_" + unit, std::to_string(train_w.size())},
               {"validation_" + unit, std::to_string(val_w.size())},
               {"train_scans", std::to_string(set.features.size())},
               {"tuples_per_epoch",
                std::to_string(by_writers ? int64_t(c.tuples) : int64_t(train_w.size()))},
               {"members", std::to_string(members)},
               {"parameters", std::to_string(parameters)},
               {"training_seconds", num(secs)},
               {"resumed_after_epoch", std::to_string(outcome.resumed_from)},
               {"threshold", num(threshold)},
               {"threshold_calibrated_on", (calib_val ? "validation " : "training ") + unit},
               {"references", std::to_string(c.references)}};
  // An ensemble's curves are its first member's; every member's best epoch and validation
  // figures are facts.
  if (members > 1) {
    rep.title += " (curves: member 1 of " + std::to_string(members) + ")";
    for (size_t k = 0; k < member_results.size(); ++k) {
      const TrainResult& m = member_results[k];
      const std::string key = "member_" + std::to_string(k + 1) + "_";
      rep.facts.emplace_back(key + "best_epoch", std::to_string(m.best_epoch));
      for (const EpochStats& e : m.history)
        if (e.epoch == m.best_epoch) {
          rep.facts.emplace_back(key + "val_loss", num(e.val_loss));
          rep.facts.emplace_back(key + "val_acc", num(e.val_acc));
        }
    }
  }
  add_summary_facts(rep.facts, "train_", on_train);
  if (!val_w.empty()) add_summary_facts(rep.facts, "validation_", on_val);
  if (has_test) {
    rep.facts.emplace_back("test_" + unit,
                           std::to_string(by_writers ? on_test.writers : test_m.size()));
    add_summary_facts(rep.facts, "test_", on_test);
  }
  write_training_report(out, rep);
  // The DET curves of the test writers (else the validation or training writers).
  const VerificationTrials& shown = has_test ? test_trials : train_trials;
  write_det_png((fs::path(out) / "det.png").string(),
                c.name + (has_test ? ": test " : ": training ") + unit, shown, threshold);
  fs::remove(ckpt, ec);
  remove_member_states(out);
  return outcome;
}

}  // namespace bpkit::train_detail
