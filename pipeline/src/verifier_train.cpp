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
  *log << what << ": " << s.writers << " writers, EER skilled " << pct(s.skilled.eer) << " random "
       << pct(s.random.eer) << "; at the threshold " << num(s.threshold).substr(0, 8) << ": FRR "
       << pct(s.frr) << ", FAR skilled " << pct(s.far_skilled) << ", random " << pct(s.far_random)
       << "\n";
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

  const WriterDataset train_data = read_writer_dataset(c.train_manifest);
  WriterDataset test_data;
  if (!c.test_manifest.empty()) test_data = read_writer_dataset(c.test_manifest);
  // Validation writers: the last fraction of a seeded permutation of the training writers.
  std::vector<size_t> order(train_data.writers.size());
  std::iota(order.begin(), order.end(), 0);
  {
    Rng rng(c.seed ^ 0x77726974657273ULL);
    for (size_t i = order.size() - 1; i > 0; --i) std::swap(order[i], order[rng.below(i + 1)]);
  }
  const size_t n_val = size_t(double(order.size()) * c.validation_split);
  std::vector<size_t> train_w(order.begin(), order.end() - long(n_val)),
      val_w(order.end() - long(n_val), order.end());
  std::sort(train_w.begin(), train_w.end());
  std::sort(val_w.begin(), val_w.end());
  if (train_w.size() < 2)
    throw FileError(c.train_manifest + ": " + std::to_string(train_w.size()) +
                    " training writer(s) after the validation split; tuples need at least two");

  FeatureCache cache(c.cache_dir.empty() ? FeatureCache::default_dir() : c.cache_dir);
  ExtractOptions eo;
  eo.cache = (c.cache && r.use_cache) ? &cache : nullptr;
  eo.skip_errors = false;  // a writer's sample indices must stay in step with the files
  eo.log = log;
  std::vector<size_t> all_w(train_data.writers.size());
  std::iota(all_w.begin(), all_w.end(), 0);
  const Samples samples = list_samples(train_data, all_w);
  // Fit stages learn from the training writers' genuine signatures.
  std::vector<std::pair<size_t, std::string>> fitted;
  for (size_t k : pipeline.fit_stages()) {
    std::vector<std::string> files;
    for (size_t w : train_w)
      for (int64_t i : samples.genuine[w]) files.push_back(samples.entries[size_t(i)].path);
    fitted.emplace_back(k, pipeline.fit(k, files, nullptr));
  }
  const FeatureSet set = extract_features(pipeline, samples.entries, eo);
  if (log)
    *log << "features: " << set.features.size() << " scans of " << train_data.writers.size()
         << " writers (" << set.cache_hits << " from the cache, " << set.computed
         << " computed) in " << fmt_seconds(set.seconds) << "\n"
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

  const TupleDrawer drawer{samples, train_w, c.skilled_negatives, c.mining, tuples.arity};
  TupleDataset val;
  if (val_w.size() >= 2) {
    val.arity = tuples.arity;
    const TupleDrawer vd{samples, val_w, c.skilled_negatives, 1, tuples.arity};
    Rng rng(c.seed ^ 0x76616c7475706c65ULL);
    vd.draw(std::max<int64_t>(500, int64_t(val_w.size()) * 40), rng, nullptr, val.tuples,
            val.labels);
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
  const VerificationTrials train_trials =
      verification_trials(subset(train_w), lookup, dim, c.references);
  if (train_trials.genuine.empty())
    throw FileError(c.train_manifest + ": no training writer has more than data.references (" +
                    std::to_string(c.references) +
                    ") genuine signatures: nothing to calibrate the threshold on");
  VerificationTrials val_trials;
  if (!val_w.empty()) val_trials = verification_trials(subset(val_w), lookup, dim, c.references);
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
  {
    const WriterDataset cw = subset(calib_val ? val_w : train_w);
    for (int n = 1; n <= kMaxCalibratedReferences; ++n) {
      if (n == c.references) {
        thresholds.emplace_back(n, threshold);
        continue;
      }
      const VerificationTrials t = verification_trials(cw, lookup, dim, n);
      if (t.genuine.empty() || (t.skilled.empty() && t.random.empty())) break;
      thresholds.emplace_back(n, calibrate(t));
    }
  }
  if (log) {
    *log << "threshold by reference count:";
    for (const auto& [n, t] : thresholds) *log << " " << n << "=" << num(t).substr(0, 6);
    *log << "\n";
  }
  const VerificationSummary on_train = summarize_trials(train_trials, threshold);
  log_summary(log, "training writers", on_train);
  VerificationSummary on_val;
  if (!val_w.empty()) {
    on_val = summarize_trials(val_trials, threshold);
    log_summary(log, "validation writers", on_val);
  }

  Metadata meta{{"name", c.name},
                {"labels", "writer"},
                {"trained", now_utc()},
                {"epochs", std::to_string(result.history.size())},
                {"train_writers", std::to_string(train_w.size())},
                {"validation_writers", std::to_string(val_w.size())},
                {"threshold", num(threshold)},
                {"references", std::to_string(c.references)},
                {"thresholds", format_thresholds(thresholds)},
                {"train_eer_skilled", num(on_train.skilled.eer)},
                {"train_eer_random", num(on_train.random.eer)}};
  add_pipeline_dir(meta, c, out);
  if (!c.init.empty()) meta.emplace_back("init", init_reference(c, out));
  VerificationTrials test_trials;
  VerificationSummary on_test;
  const bool has_test = !test_data.writers.empty();
  if (has_test) {
    std::vector<size_t> tw(test_data.writers.size());
    std::iota(tw.begin(), tw.end(), 0);
    const Samples ts = list_samples(test_data, tw);
    const FeatureSet tset = extract_features(pipeline, ts.entries, eo);
    const Tensor<float> temb = embed_all(ensemble, stack(tset));
    std::unordered_map<std::string, int64_t> trow;
    for (size_t i = 0; i < ts.entries.size(); ++i) trow[ts.entries[i].path] = int64_t(i);
    test_trials = verification_trials(
        test_data, [&](const std::string& f) { return temb.data() + trow.at(f) * dim; }, dim,
        c.references);
    on_test = summarize_trials(test_trials, threshold);
    log_summary(log, "test writers", on_test);
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
               {"train_writers", std::to_string(train_w.size())},
               {"validation_writers", std::to_string(val_w.size())},
               {"train_scans", std::to_string(set.features.size())},
               {"tuples_per_epoch", std::to_string(c.tuples)},
               {"members", std::to_string(members)},
               {"parameters", std::to_string(parameters)},
               {"training_seconds", num(secs)},
               {"resumed_after_epoch", std::to_string(outcome.resumed_from)},
               {"threshold", num(threshold)},
               {"threshold_calibrated_on", calib_val ? "validation writers" : "training writers"},
               {"references", std::to_string(c.references)}};
  add_summary_facts(rep.facts, "train_", on_train);
  if (!val_w.empty()) add_summary_facts(rep.facts, "validation_", on_val);
  if (has_test) {
    rep.facts.emplace_back("test_writers", std::to_string(on_test.writers));
    add_summary_facts(rep.facts, "test_", on_test);
  }
  write_training_report(out, rep);
  // The DET curves of the test writers (else the validation or training writers).
  const VerificationTrials& shown = has_test ? test_trials : train_trials;
  write_det_png((fs::path(out) / "det.png").string(),
                c.name + (has_test ? ": test writers" : ": training writers"), shown, threshold);
  fs::remove(ckpt, ec);
  remove_member_states(out);
  return outcome;
}

}  // namespace bpkit::train_detail
