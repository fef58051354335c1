// The classical signature verifier that bench/run.sh signature compares the learned one with:
// hand-made features of the cleaned scan (by default zoning densities, LBP and HOG: the stages of
// bench/signature_baseline.yaml), each standardized with the mean and standard deviation of the
// training writers' genuine signatures, and the score of a query is minus its Euclidean distance
// to the nearest reference (divided by √F). No learning beyond the standardization. The same
// protocol as the learned verifier (bpkit/signature.h: verification_trials).
//
//   signature_baseline --pipeline FILE --train DIR --test DIR [--references N]
//                      [--plugin-path DIR]...
// Last line: eer_skilled=... eer_random=... sec_verify=... (features of one query and its
// comparison with the references, in process, one thread).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/features.h"
#include "bpkit/pipeline.h"
#include "bpkit/signature.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"

namespace {

std::vector<std::string> files_of(const bpkit::WriterDataset& d) {
  std::vector<std::string> files;
  for (const auto& w : d.writers) {
    files.insert(files.end(), w.genuine.begin(), w.genuine.end());
    files.insert(files.end(), w.forgeries.begin(), w.forgeries.end());
  }
  return files;
}

bpkit::FeatureSet features(const bpkit::Pipeline& p, const std::vector<std::string>& files,
                           const bpkit::FeatureCache* cache) {
  std::vector<bpkit::ManifestEntry> entries;
  for (const std::string& f : files) entries.push_back({f, "", f});
  bpkit::ExtractOptions eo;
  eo.cache = cache;
  return bpkit::extract_features(p, entries, eo);
}

int run(int argc, char** argv) {
  std::map<std::string, std::string> o;
  std::vector<std::string> plugin_dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(
          "usage: signature_baseline --pipeline FILE --train DIR --test DIR [--references N]\n"
          "                          [--plugin-path DIR]...\n"
          "\n"
          "The classical signature verifier of the benchmark (bench/run.sh signature): the\n"
          "pipeline's features of every scan, standardized on the training writers' scans; a\n"
          "query scored by its negated distance to the nearest of a writer's references. Prints\n"
          "the equal error rates for skilled and random forgeries on the test writers.\n"
          "\n"
          "  --pipeline FILE    the feature stages (bench/signature_baseline.yaml)\n"
          "  --train DIR        the writers the standardization is fitted on\n"
          "  --test DIR         the writers verified (dataset layout of docs/signature.md)\n"
          "  --references N     references per writer (default 5)\n"
          "  --plugin-path DIR  also load plugins from DIR (repeatable)\n"
          "  -h, --help         this help\n"
          "  --version          the version, revision, plugin ABI and kernel level\n",
          stdout);
      return 0;
    }
    const bool known = a == "--pipeline" || a == "--train" || a == "--test" ||
                       a == "--references" || a == "--plugin-path";
    if (!known) {
      std::fprintf(stderr,
                   "signature_baseline: %s '%s' (run 'signature_baseline --help' for usage)\n",
                   a.rfind("-", 0) == 0 ? "unknown option" : "unexpected argument", a.c_str());
      return 2;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "signature_baseline: %s needs a value\n", a.c_str());
      return 2;
    }
    if (a == "--plugin-path")
      plugin_dirs.push_back(argv[++i]);
    else
      o[a.substr(2)] = argv[++i];
  }
  for (const char* k : {"pipeline", "train", "test"})
    if (!o.count(k)) {
      std::fprintf(stderr,
                   "signature_baseline: --%s is required (run 'signature_baseline --help' for "
                   "usage)\n",
                   k);
      return 2;
    }
  int refs = 5;
  if (o.count("references")) {
    char* end = nullptr;
    const long r = std::strtol(o["references"].c_str(), &end, 10);
    if (o["references"].empty() || *end != '\0' || r < 1 || r > 100) {
      std::fprintf(stderr,
                   "signature_baseline: --references expects a number in 1..100, got '%s'\n",
                   o["references"].c_str());
      return 2;
    }
    refs = int(r);
  }
  const bpkit::PipelineConfig c = bpkit::load_pipeline_config(o["pipeline"], false);
  bpkit::PluginRegistry registry;
  const std::vector<std::string> needed = bpkit::stage_plugins(c);
  bpkit::load_plugins(registry, c.plugin_path, plugin_dirs, &needed);
  const bpkit::Pipeline p(c, registry);
  bpkit::FeatureCache cache(bpkit::FeatureCache::default_dir());

  // Standardization from the training writers' genuine signatures.
  const bpkit::WriterDataset train = bpkit::read_writer_dataset(o["train"]);
  std::vector<std::string> genuine;
  for (const auto& w : train.writers)
    genuine.insert(genuine.end(), w.genuine.begin(), w.genuine.end());
  const bpkit::FeatureSet ts = features(p, genuine, &cache);
  const int64_t dim = ts.features.at(0).size();
  std::vector<double> mean(size_t(dim), 0), sd(size_t(dim), 0);
  for (const auto& f : ts.features)
    for (int64_t i = 0; i < dim; ++i) mean[size_t(i)] += f[i];
  for (double& m : mean) m /= double(ts.features.size());
  for (const auto& f : ts.features)
    for (int64_t i = 0; i < dim; ++i) sd[size_t(i)] += std::pow(f[i] - mean[size_t(i)], 2);
  for (double& s : sd) s = std::sqrt(s / double(ts.features.size())) + 1e-6;

  const bpkit::WriterDataset test = bpkit::read_writer_dataset(o["test"]);
  const std::vector<std::string> files = files_of(test);
  const bpkit::FeatureSet fs = features(p, files, &cache);
  std::vector<std::vector<float>> z(files.size(), std::vector<float>(size_t(dim)));
  std::unordered_map<std::string, size_t> index;
  for (size_t k = 0; k < files.size(); ++k) {
    index[files[k]] = k;
    for (int64_t i = 0; i < dim; ++i)
      z[k][size_t(i)] = float((fs.features[k][i] - mean[size_t(i)]) / sd[size_t(i)]);
  }
  const bpkit::TrialScore nearest = [](const float* q, const std::vector<const float*>& rs,
                                       int64_t d) {
    double best = 1e300;
    for (const float* r : rs) {
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += double(q[i] - r[i]) * double(q[i] - r[i]);
      best = std::min(best, s);
    }
    return -std::sqrt(best / double(d));
  };
  const bpkit::VerificationTrials t = bpkit::verification_trials(
      test, [&](const std::string& f) { return z[index.at(f)].data(); }, dim, refs, 50, nearest);
  const bpkit::Eer skilled = bpkit::equal_error_rate(t.genuine, t.skilled);
  const bpkit::Eer random = bpkit::equal_error_rate(t.genuine, t.random);

  // Seconds per verification: one query's features from its file and its comparison with the
  // references, one thread, features not cached.
  bpkit::set_num_threads(1);
  const auto& w0 = test.writers[0];
  std::vector<const float*> rs;
  for (int r = 0; r < refs && r < int(w0.genuine.size()); ++r)
    rs.push_back(z[index.at(w0.genuine[size_t(r)])].data());
  const int reps = 20;
  const auto t0 = std::chrono::steady_clock::now();
  double sink = 0;
  for (int k = 0; k < reps; ++k) {
    const bpkit::Value v = p.run(w0.genuine.back());
    std::vector<float> q(static_cast<size_t>(dim));
    for (int64_t i = 0; i < dim; ++i)
      q[size_t(i)] = float((v.tensor[i] - mean[size_t(i)]) / sd[size_t(i)]);
    sink += nearest(q.data(), rs, dim);
  }
  const double sec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / reps;
  std::fprintf(stderr,
               "baseline: %lld features, %lld test writers, %zu genuine, %zu skilled, %zu random "
               "trials (score check %.3f)\n",
               (long long)dim, (long long)t.writers, t.genuine.size(), t.skilled.size(),
               t.random.size(), sink / reps);
  std::printf("eer_skilled=%.4f eer_random=%.4f sec_verify=%.4f\n", skilled.eer, random.eer, sec);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "signature_baseline")) return 0;
  try {
    return run(argc, argv);
  } catch (const bpkit::EnvironmentError& e) {  // BPKIT_NUM_THREADS, BPKIT_ISA: configuration
    std::fprintf(stderr, "signature_baseline: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "signature_baseline: %s\n", e.what());
    return 1;
  }
}
