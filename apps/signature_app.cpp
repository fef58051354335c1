// signature_app: enroll writers with a few genuine signatures, verify scans against them, and
// measure a verifier on a dataset, with the shipped writer-independent verifier
// (models/signature) or another verifier model directory.
//
//   signature_app enroll --db DIR --writer ID REF...
//   signature_app verify --db DIR --writer ID QUERY
//   signature_app verify --reference REF... --query QUERY
//   signature_app eval DATASET_DIR
//
// Exit codes: 0 success (a forgery is a result, not an error), 1 a scan could not be read or has
// no signature, or an enrollment could not be read or written, 2 usage or model errors.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"
#include "bpkit/report.h"
#include "bpkit/signature.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "cli.h"

using bpkit::cli::UsageError;

namespace {

const char* kUsage =
    "usage: signature_app enroll --db DIR --writer ID [options] REF...\n"
    "       signature_app verify --db DIR --writer ID [options] QUERY\n"
    "       signature_app verify --reference REF... --query QUERY [options]\n"
    "       signature_app eval [options] DATASET_DIR|TUPLES.tsv\n"
    "\n"
    "Verifies handwritten signatures from scans (any image format OpenCV reads, any resolution,\n"
    "colored ink, ruled lines and specks around it) with a writer-independent verifier: a writer\n"
    "is enrolled with a few genuine signatures (3 to 12 work best) and no retraining.\n"
    "\n"
    "  enroll   embeds the references and adds them to the writer's file DIR/ID.json (created\n"
    "           when missing; a scan already enrolled is skipped). The file is replaced\n"
    "           atomically: an interrupted enrollment leaves the writer as it was.\n"
    "  verify   prints 'genuine SCORE' or 'forgery SCORE' (higher = more likely genuine; the\n"
    "           score is the cosine similarity to the references' mean, and the decision\n"
    "           compares it with the model's threshold for that many references)\n"
    "  eval     runs the verification protocol on a dataset directory, one directory per writer:\n"
    "           WRITER/genuine/*.png (the first --references are the references, the others\n"
    "           genuine queries) and WRITER/forgeries/*.png (skilled forgeries); other writers'\n"
    "           signatures are the random forgeries. Prints FRR and FAR at the model's threshold\n"
    "           for that many references and the equal error rates, and writes the DET curves\n"
    "           (--det). Instead of a directory, a manifest of pairs (REF<TAB>QUERY<TAB>LABEL,\n"
    "           LABEL 1/genuine, 0/skilled or random) or triplets (ANCHOR<TAB>POSITIVE<TAB>\n"
    "           NEGATIVE): every tuple is a trial with one reference\n"
    "\n"
    "  --model DIR        a verifier model directory (default: the shipped 'signature')\n"
    "  --json             verify: {decision, score, threshold, references}; eval: the figures;\n"
    "                     enroll: {writer, added, references}\n"
    "  --references N     eval: references per writer (default: as the model was trained, 5)\n"
    "  --det PNG          eval: where the DET curves go (default det.png)\n"
    "  --threads N        engine threads (default: all cores)\n"
    "  --plugin-path DIR  also load feature plugins from DIR (repeatable)\n"
    "  --trust-model-plugins\n"
    "                     also load plugins from the directories the model's pipeline.yaml\n"
    "                     names (plugin_path): native code chosen by the model (docs/security.md)\n"
    "  -h, --help         this help\n"
    "  --version          the version, revision, plugin ABI and kernel level\n";

std::string model_dir(std::map<std::string, std::string>& o) {
  if (o.count("model")) return o["model"];
  const std::string dir = bpkit::shipped_model_dir("signature");
  if (dir.empty())
    throw UsageError(
        "the shipped model 'signature' was not found (set BPKIT_MODEL_PATH or give --model DIR)");
  return dir;
}

int enroll(bpkit::SignatureVerifier& v, std::map<std::string, std::string>& o,
           const std::vector<std::string>& files) {
  if (!o.count("db") || !o.count("writer"))
    throw UsageError("enroll needs --db DIR and --writer ID");
  if (files.empty()) throw UsageError("enroll needs at least one reference scan");
  try {
    bpkit::EnrollmentDb::check_id(o["writer"]);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  bpkit::EnrollmentDb db(o["db"]);
  // Every scan is embedded before the file is touched: one bad scan enrolls nothing.
  std::vector<bpkit::EnrollmentDb::Reference> refs;
  const std::vector<std::vector<float>> emb = v.embed(files);
  for (size_t i = 0; i < files.size(); ++i)
    refs.push_back({files[i], bpkit::file_digest(files[i]), emb[i]});
  const int added = db.add(o["writer"], v.model_id(), refs);
  const size_t total = db.load(o["writer"]).references.size();
  if (o.count("json"))
    std::printf(
        "%s\n",
        nlohmann::ordered_json{{"writer", o["writer"]}, {"added", added}, {"references", total}}
            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
            .c_str());
  else
    std::printf("enrolled %d reference(s) for %s (%zu in all)%s\n", added, o["writer"].c_str(),
                total, added < int(files.size()) ? "; scans already enrolled were skipped" : "");
  return 0;
}

int verify(bpkit::SignatureVerifier& v, std::map<std::string, std::string>& o,
           const std::multimap<std::string, std::string>& all,
           const std::vector<std::string>& pos) {
  std::vector<std::vector<float>> refs;
  std::string query, writer;
  std::vector<std::string> ref_files = bpkit::cli::all_values(all, "reference");
  if (!ref_files.empty()) {
    if (o.count("db") || o.count("writer"))
      throw UsageError("verify takes either --db DIR --writer ID or --reference FILE...");
    if (!o.count("query"))
      throw UsageError("verify --reference REF... needs --query QUERY (one scan)");
    // `--reference a.png b.png c.png --query q.png`: the other files are references too.
    ref_files.insert(ref_files.end(), pos.begin(), pos.end());
    query = o["query"];
    refs = v.embed(ref_files);
  } else {
    if (!o.count("db") || !o.count("writer"))
      throw UsageError("verify needs --db DIR --writer ID, or --reference REF... --query QUERY");
    if (o.count("query")) {
      if (!pos.empty()) throw UsageError("verify takes one query scan");
      query = o["query"];
    } else {
      if (pos.size() != 1) throw UsageError("verify takes one query scan");
      query = pos[0];
    }
    writer = o["writer"];
    try {
      bpkit::EnrollmentDb::check_id(writer);
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    const bpkit::EnrollmentDb::Writer w = bpkit::EnrollmentDb(o["db"]).load(writer);
    if (w.model_id != v.model_id())
      throw bpkit::FileError(o["db"] + ": writer '" + writer +
                             "' was enrolled with another verifier model; enroll again with this "
                             "one");
    for (const auto& r : w.references) refs.push_back(r.embedding);
  }
  const double score = v.score(v.embed(query), refs);
  const double threshold = v.threshold(refs.size());
  const bool genuine = score >= threshold;
  if (o.count("json")) {
    nlohmann::ordered_json j{{"query", query},
                             {"decision", genuine ? "genuine" : "forgery"},
                             {"score", score},
                             {"threshold", threshold},
                             {"references", refs.size()}};
    if (!writer.empty()) j["writer"] = writer;
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::printf("%s %.4f\n", genuine ? "genuine" : "forgery", score);
  }
  return 0;
}

int eval(bpkit::SignatureVerifier& v, std::map<std::string, std::string>& o,
         const std::vector<std::string>& pos) {
  if (pos.size() != 1) throw UsageError("eval takes one dataset directory (or tuple manifest)");
  // A manifest of pairs or triplets: each tuple is one trial with one reference.
  const int arity = bpkit::tuple_manifest_arity(pos[0]);
  if (arity && o.count("references"))
    throw UsageError("--references is for dataset directories; a tuple has one reference");
  const int refs = arity ? 1 : int(bpkit::cli::integer(o, "references", v.references(), 1, 100));
  const bpkit::TrainedModel& m = v.model();
  bpkit::FeatureCache cache(m.config().cache_dir.empty() ? bpkit::FeatureCache::default_dir()
                                                         : m.config().cache_dir);
  const bpkit::FeatureCache* c = m.config().cache ? &cache : nullptr;
  const bpkit::VerificationTrials t =
      arity ? bpkit::evaluate_verifier(v, bpkit::read_tuple_manifest(pos[0], arity), c)
            : bpkit::evaluate_verifier(v, bpkit::read_writer_dataset(pos[0]), refs, c);
  if (t.genuine.empty())
    throw bpkit::FileError(pos[0] +
                           (arity ? std::string(": no genuine pair (label 1)")
                                  : ": no writer has more than " + std::to_string(refs) +
                                        " genuine signatures (references)") +
                           ", so there is no genuine query");
  const bpkit::VerificationSummary s = bpkit::summarize_trials(t, v.threshold(size_t(refs)));
  const std::string det = o.count("det") ? o["det"] : "det.png";
  bpkit::write_det_png(det, pos[0], t, s.threshold);
  if (o.count("json")) {
    auto or_null = [](double x) { return std::isnan(x) ? nlohmann::json() : nlohmann::json(x); };
    std::printf("%s\n", nlohmann::ordered_json{{"dataset", pos[0]},
                                               {"writers", s.writers},
                                               {"references", refs},
                                               {"genuine_trials", s.genuine_trials},
                                               {"skilled_trials", s.skilled_trials},
                                               {"random_trials", s.random_trials},
                                               {"threshold", s.threshold},
                                               {"frr", or_null(s.frr)},
                                               {"far_skilled", or_null(s.far_skilled)},
                                               {"far_random", or_null(s.far_random)},
                                               {"eer_skilled", or_null(s.skilled.eer)},
                                               {"eer_random", or_null(s.random.eer)},
                                               {"det", det}}
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                            .c_str());
    return 0;
  }
  if (arity)
    std::printf("%s %lld references 1 trials: genuine %lld skilled %lld random %lld\n",
                arity == 2 ? "pairs" : "triplets",
                (long long)(arity == 2 ? s.genuine_trials + s.skilled_trials + s.random_trials
                                       : s.genuine_trials),
                (long long)s.genuine_trials, (long long)s.skilled_trials,
                (long long)s.random_trials);
  else
    std::printf("writers %lld references %d trials: genuine %lld skilled %lld random %lld\n",
                (long long)s.writers, refs, (long long)s.genuine_trials,
                (long long)s.skilled_trials, (long long)s.random_trials);
  std::printf("at the threshold %.4f: FRR %.2f%% FAR skilled %.2f%% FAR random %.2f%%\n",
              s.threshold, 100 * s.frr, 100 * s.far_skilled, 100 * s.far_random);
  std::printf("det: %s\n", det.c_str());
  std::printf("eer_skilled=%.4f eer_random=%.4f frr=%.4f far_skilled=%.4f far_random=%.4f\n",
              s.skilled.eer, s.random.eer, s.frr, s.far_skilled, s.far_random);
  return 0;
}

int run(int argc, char** argv) {
  if (argc < 2) throw UsageError("no command given (enroll, verify or eval)");
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd != "enroll" && cmd != "verify" && cmd != "eval")
    throw UsageError("unknown command '" + cmd + "' (enroll, verify or eval)");
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  auto o = bpkit::cli::parse_options(argc, argv, 2,
                                     {"model", "db", "writer", "reference", "query", "references",
                                      "det", "threads", "plugin-path"},
                                     pos, {"json", "help", "trust-model-plugins"}, &all);
  if (o.count("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  for (const char* k : {"db", "writer", "reference", "query"})
    if (cmd == "eval" && o.count(k)) throw UsageError(std::string("eval takes no --") + k);
  for (const char* k : {"references", "det"})
    if (cmd != "eval" && o.count(k))
      throw UsageError("--" + std::string(k) + " is an option of eval");
  if (cmd == "enroll" && (o.count("reference") || o.count("query")))
    throw UsageError("enroll takes its reference scans as arguments (no --reference/--query)");
  if (o.count("threads"))
    bpkit::set_num_threads(int(bpkit::cli::integer(o, "threads", 1, 1, 1024)));
  bpkit::check_environment();  // BPKIT_NUM_THREADS, BPKIT_ISA: exit 2 before any work
  std::unique_ptr<bpkit::SignatureVerifier> v;
  try {
    v = std::make_unique<bpkit::SignatureVerifier>(model_dir(o),
                                                   bpkit::cli::all_values(all, "plugin-path"),
                                                   o.count("trust-model-plugins") > 0);
  } catch (const bpkit::FileError& e) {
    throw UsageError(e.what());
  } catch (const bpkit::ConfigError& e) {
    throw UsageError(e.what());
  } catch (const bpkit::PluginError& e) {
    throw UsageError(e.what());
  }
  if (cmd == "enroll") return enroll(*v, o, pos);
  if (cmd == "verify") return verify(*v, o, all, pos);
  return eval(*v, o, pos);
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "signature_app")) return 0;
  try {
    return run(argc, argv);
  } catch (const bpkit::EnvironmentError& e) {  // BPKIT_NUM_THREADS, BPKIT_ISA
    std::fprintf(stderr, "signature_app: %s\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "signature_app: %s (see 'signature_app --help')\n", e.what());
    return 2;
  } catch (const bpkit::StageError& e) {
    std::fprintf(stderr, "signature_app: %s\n", e.what());
    return 1;
  } catch (const bpkit::FileError& e) {
    std::fprintf(stderr, "signature_app: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "signature_app: %s\n", e.what());
    return 1;
  }
}
