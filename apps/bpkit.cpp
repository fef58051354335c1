// bpkit: the toolkit's command line.
//   bpkit train    train a pipeline (plugins -> network) from its YAML file
//   bpkit eval     accuracy of a trained model on a manifest
//   bpkit predict  classify files with a trained model
//   bpkit plugins  list the feature plugins found
//   bpkit inspect  describe a model directory or file
//   bpkit ensemble combine trained class models into one model directory
//   bpkit cache    show or clear the feature cache
//   bpkit fmnist   train a reference network on Fashion-MNIST and report test accuracy
// Exit codes: 0 success, 1 runtime failure (unreadable data, divergence), 2 usage or
// configuration error.
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/model_file.h"
#include "bpkit/pronounce.h"
#include "bpkit/report.h"
#include "bpkit/signature.h"
#include "bpkit/speech.h"
#include "bpkit/suggest.h"
#include "bpkit/threading.h"
#include "bpkit/train.h"
#include "bpkit/trainer.h"
#include "bpkit/version.h"
#include "bpkit/zoo.h"
#include "cli.h"

namespace {

using bpkit::cli::all_values;
using bpkit::cli::integer;
using bpkit::cli::ModelError;
using bpkit::cli::number;
using bpkit::cli::open_model;
using bpkit::cli::parse_options;
using bpkit::cli::UsageError;

const char* kUsage =
    "usage: bpkit <command> [options]\n"
    "\n"
    "commands:\n"
    "  train     train a pipeline (plugins -> network) described by a YAML file\n"
    "  eval      evaluate a trained model directory on a manifest\n"
    "  predict   classify files with a trained model directory\n"
    "  plugins   list the feature plugins: name, version, kinds, parameters\n"
    "  inspect   print a model's layers, shapes, parameter count, pipeline and metadata\n"
    "  ensemble  combine trained class models into one that averages their probabilities\n"
    "  cache     show or clear the feature cache\n"
    "  fmnist    train a reference network on Fashion-MNIST, print test accuracy\n"
    "  version   the version, revision, plugin ABI, kernels and build, and the plugins found\n"
    "\n"
    "Run 'bpkit <command> --help' for a command's options; 'bpkit --version' (any program's\n"
    "--version) prints the version alone.\n";

const char* kVersionUsage =
    "usage: bpkit version [--plugin-path DIR]...\n"
    "\n"
    "Prints bpkit's version and git revision, the plugin ABI version, the instruction-set level "
    "of\n"
    "the engine's kernels on this CPU (BPKIT_ISA caps it), how the program was built, and every\n"
    "plugin found (name, version, library) in the built-in directories, BPKIT_PLUGIN_PATH and\n"
    "--plugin-path.\n";

const char* kFmnistUsage =
    "usage: bpkit fmnist [options]\n"
    "\n"
    "Trains a reference network on Fashion-MNIST with SGD + momentum (or Adam) and prints the "
    "test\n"
    "accuracy and confusion matrix.\n"
    "\n"
    "  --net NAME        mlp (default), cnn, mlp_bn, cnn_bn\n"
    "  --epochs N        training epochs (default 1)\n"
    "  --batch N         mini-batch size (default 64)\n"
    "  --optimizer NAME  sgd (default), nesterov, adam, rprop\n"
    "  --lr X            learning rate (default 0.05; adam 0.001)\n"
    "  --momentum X      SGD momentum (default 0.9)\n"
    "  --weight-decay X  weight decay (default 0)\n"
    "  --schedule NAME   cosine (default: decays to 0 over the run, updated every batch), step\n"
    "                    (x0.1 every epochs/3 epochs) or constant\n"
    "  --clip X          gradient-norm clip (default off)\n"
    "  --val X           hold out this fraction of the training set for validation (default 0)\n"
    "  --patience N      early stopping after N epochs without validation improvement\n"
    "  --seed N          random seed (default 1)\n"
    "  --threads N       engine threads (default: BPKIT_NUM_THREADS or all cores)\n"
    "  --data DIR        dataset directory (default /usr/share/datasets/fashion-mnist)\n"
    "  --save FILE       write the trained model here\n";

const char* kInspectUsage =
    "usage: bpkit inspect MODEL_DIR|MODEL_FILE\n"
    "\n"
    "Prints the network's layers with their output shapes and parameter counts, the total, and "
    "the\n"
    "metadata stored with the model, a digest of its weights and, for a model directory, the\n"
    "pipeline's stages.\n";

const char* kEnsembleUsage =
    "usage: bpkit ensemble --out DIR MODEL_DIR MODEL_DIR...\n"
    "\n"
    "Writes a model directory whose prediction is the mean of the given models' class\n"
    "probabilities: their networks as model.bpk, model.2.bpk, ... (copied unchanged) and the\n"
    "first one's pipeline.yaml. The models must read the same features (the same pipeline stages\n"
    "and parameters) and have the same input shape and class names; transcript (CTC) models are\n"
    "not supported. eval, predict and ocr_app --mode char use every member. Other files in DIR\n"
    "are kept; members left from an earlier, larger ensemble are removed.\n";

const char* kTrainUsage =
    "usage: bpkit train CONFIG.yaml [--out DIR] [--resume | --force] [--plugin-path DIR]...\n"
    "                   [--no-cache] [--threads N] [--seed N] [--set KEY=VALUE]...\n"
    "\n"
    "Computes the features of the pipeline's training (and test) data through its plugins, trains\n"
    "the network, and writes a model directory (model.bpk, pipeline.yaml) with a training report\n"
    "(metrics.json, curves.png, confusion.png, summary.txt). A checkpoint is written after every\n"
    "epoch; --resume continues an interrupted run from it and ends with the same model.\n"
    "\n"
    "  --out DIR          model directory (default: the pipeline's output.dir)\n"
    "  --resume           continue from DIR/checkpoint.bpk\n"
    "  --force            train over a finished model or an interrupted run in DIR (without it,\n"
    "                     either is refused)\n"
    "  --plugin-path DIR  also load plugins from DIR (a directory or one .so; repeatable); the\n"
    "                     pipeline file's own plugin_path is searched too (you chose the file)\n"
    "  --no-cache         compute every feature (neither read nor write the feature cache)\n"
    "  --threads N        engine threads (overrides training.threads)\n"
    "  --seed N           random seed (overrides training.seed; the model directory's copy of\n"
    "                     the pipeline file notes it)\n"
    "  --set KEY=VALUE    override a key of the pipeline file (repeatable): KEY a dotted path\n"
    "                     of keys and list indices, VALUE YAML, e.g. --set training.epochs=5\n"
    "                     --set optimizer.lr=0.01 --set network.layers.1.dense.units=128; the\n"
    "                     model directory's pipeline.yaml is the file with the overrides\n";

const char* kEvalUsage =
    "usage: bpkit eval MODEL_DIR MANIFEST [--plugin-path DIR]... [--trust-model-plugins]\n"
    "                  [--no-cache] [--dict FILE] [--dict-cost X] [--det PNG] [--json]\n"
    "\n"
    "Runs the model's pipeline and network on every file of MANIFEST ('PATH<TAB>LABEL' lines) and\n"
    "prints the accuracy and the confusion matrix (transcript models: the share of exact\n"
    "transcripts and the character error rate; speech models: the word error rate and the share\n"
    "of utterances recognized without error, decoded as speech_app decodes them; frame-labelling\n"
    "models: the share of samples with every frame right and the frame error rate).\n"
    "A letters-to-sounds model takes a CMUdict-format FILE.dict and prints the phoneme and word\n"
    "error rates, each word against its closest pronunciation (docs/g2p.md).\n"
    "A signature verifier takes a dataset directory instead of a manifest (WRITER/genuine/*.png,\n"
    "WRITER/forgeries/*.png) and prints FRR and FAR at its threshold and the equal error rates\n"
    "for skilled and random forgeries (the protocol of signature_app eval), or a manifest of\n"
    "pairs ('REF<TAB>QUERY<TAB>LABEL', LABEL 1/genuine, 0/skilled or random) or triplets\n"
    "('ANCHOR<TAB>POSITIVE<TAB>NEGATIVE') and scores each tuple with one reference; --det PNG\n"
    "also draws the DET curves (FRR against FAR on normal-deviate axes, the threshold marked).\n"
    "\n"
    "  --dict FILE     transcript models: correct words that are not in this word list (one word\n"
    "                  per line) to the most probable word that is, when that costs at most\n"
    "                  --dict-cost nats of log-probability (default 3)\n"
    "  --plugin-path DIR\n"
    "                  also load plugins from DIR (a directory or one .so; repeatable)\n"
    "  --trust-model-plugins\n"
    "                  also load plugins from the directories the model's pipeline.yaml names\n"
    "                  (plugin_path); without it a model directory never chooses which native\n"
    "                  code runs (docs/security.md)\n"
    "  --json          the figures as one JSON object with the same keys (a class model's also\n"
    "                  with its classes and the confusion matrix, rows the truth)\n";

const char* kPredictUsage =
    "usage: bpkit predict MODEL_DIR FILE... [--top K] [--json] [--plugin-path DIR]...\n"
    "                     [--trust-model-plugins] [--dict FILE] [--dict-cost X]\n"
    "\n"
    "Prints one line per file: the file, the predicted class and its probability (with --top K,\n"
    "the K most likely classes); for a transcript model, the file, the text and the confidence of\n"
    "its least certain symbol. A FILE of '-' reads file names from standard input, one a line.\n"
    "With --json each line is a JSON object: {file, class, probability[, top: [{class,\n"
    "probability}...]]}, {file, text, confidence}, or {file, error} for a file that failed (exit\n"
    "status 1). --plugin-path, --trust-model-plugins, --dict and --dict-cost as for eval.\n";

const char* kPluginsUsage =
    "usage: bpkit plugins [NAME...] [--plugin-path DIR]...\n"
    "\n"
    "Lists the feature plugins found (built-in, $BPKIT_PLUGIN_PATH, --plugin-path), or only\n"
    "those NAMEd: name, version, what each consumes and produces, its parameters with types,\n"
    "defaults and ranges, and the library it comes from; descriptions are wrapped to the\n"
    "terminal. Libraries that could not be loaded are listed with the reason.\n";

const char* kCacheUsage =
    "usage: bpkit cache info|clear [--dir DIR]\n"
    "\n"
    "The feature cache keeps what the pipelines' plugins computed, keyed by each input file's\n"
    "content and the stages' names, versions and parameters (default directory:\n"
    "$BPKIT_CACHE_DIR, else $XDG_CACHE_HOME/bpkit/features, else ~/.cache/bpkit/features).\n";

int cmd_fmnist(int argc, char** argv) {
  std::vector<std::string> pos;
  auto o = parse_options(argc, argv, 2,
                         {"net", "epochs", "batch", "optimizer", "lr", "momentum", "weight-decay",
                          "schedule", "clip", "val", "patience", "seed", "threads", "data", "save"},
                         pos);
  if (!pos.empty()) throw UsageError("unexpected argument '" + pos[0] + "'");
  if (o.count("threads")) bpkit::set_num_threads(int(integer(o, "threads", 1, 1, 1024)));
  const std::string data = o.count("data") ? o["data"] : "/usr/share/datasets/fashion-mnist";
  const std::string net_name = o.count("net") ? o["net"] : "mlp";
  const std::string opt_name = o.count("optimizer") ? o["optimizer"] : "sgd";
  const uint64_t seed = uint64_t(integer(o, "seed", 1, 0));

  bpkit::TrainOptions t;
  t.epochs = int(integer(o, "epochs", 1, 1, 1000000));
  t.batch = integer(o, "batch", 64, 1);
  t.seed = seed;
  t.validation_split = number(o, "val", 0);
  if (t.validation_split < 0 || t.validation_split >= 1)
    throw UsageError("--val must be in [0, 1)");
  t.patience = int(integer(o, "patience", 0, 0, 1000000));
  t.clip_norm = number(o, "clip", 0);
  const std::string sched = o.count("schedule") ? o["schedule"] : "cosine";
  if (sched == "cosine") {
    t.schedule.kind = bpkit::Schedule::kCosine;
    t.schedule.total_epochs = t.epochs;
  } else if (sched == "step") {
    t.schedule.kind = bpkit::Schedule::kStep;
    t.schedule.step_size = std::max(1, t.epochs / 3);
  } else if (sched != "constant") {
    throw UsageError("--schedule must be constant, step or cosine, got '" + sched + "'");
  }
  t.progress = &std::cerr;
  t.progress_is_terminal = isatty(STDERR_FILENO);

  bpkit::Network<float> net = [&] {
    try {
      return bpkit::make_reference_net(net_name, seed);
    } catch (const bpkit::ShapeError& e) {
      throw UsageError(e.what());
    }
  }();
  // Every option is checked before the dataset is read, so a typo is reported at once, as a usage
  // error, and not after loading (or failing to load) 60000 images.
  const double wd = number(o, "weight-decay", 0);
  const double momentum = number(o, "momentum", 0.9);
  std::unique_ptr<bpkit::Optimizer<float>> opt;
  if (opt_name == "sgd" || opt_name == "nesterov")
    opt = std::make_unique<bpkit::Sgd<float>>(net.params(), number(o, "lr", 0.05), momentum,
                                              opt_name == "nesterov", wd);
  else if (opt_name == "adam")
    opt = std::make_unique<bpkit::Adam<float>>(net.params(), number(o, "lr", 0.001), 0.9, 0.999,
                                               1e-8, wd);
  else if (opt_name == "rprop")
    opt = std::make_unique<bpkit::Rprop<float>>(net.params(), number(o, "lr", 0.001));
  else
    throw UsageError("--optimizer must be sgd, nesterov, adam or rprop, got '" + opt_name + "'");
  const bpkit::Dataset train = bpkit::load_mnist_dir(data, "train");
  const bpkit::Dataset test = bpkit::load_mnist_dir(data, "t10k");
  bpkit::SoftmaxCrossEntropy<float> loss;

  std::printf(
      "bpkit fmnist: net=%s params=%lld optimizer=%s lr=%g batch=%lld epochs=%d threads=%d\n",
      net_name.c_str(), static_cast<long long>(net.param_count()), opt_name.c_str(), opt->lr(),
      static_cast<long long>(t.batch), t.epochs, bpkit::num_threads());
  std::fflush(stdout);
  bpkit::TrainResult r;
  try {
    r = bpkit::fit(net, loss, *opt, train, t);
  } catch (const bpkit::DivergenceError& e) {
    if (o.count("save")) {
      bpkit::save_model(net, o["save"], {{"status", "diverged"}});
      std::fprintf(stderr, "bpkit: the last good weights are saved in '%s'\n", o["save"].c_str());
    }
    throw;
  }
  bpkit::ConfusionMatrix cm(10);
  const bpkit::EvalResult ev = bpkit::evaluate(net, loss, test, 1000, &cm);
  std::printf("confusion matrix (test set):\n%s", cm.to_string().c_str());
  std::printf("test_loss %.4f test_accuracy %.4f\n", ev.loss, ev.accuracy);
  if (o.count("save")) {
    bpkit::save_model(net, o["save"],
                      {{"dataset", "fashion-mnist"},
                       {"net", net_name},
                       {"optimizer", opt_name},
                       {"epochs", std::to_string(r.history.size())},
                       {"test_accuracy", std::to_string(ev.accuracy)}});
    std::printf("saved %s\n", o["save"].c_str());
  }
  return 0;
}

std::string range_text(const bpkit::ParamSpec& p) {
  if (p.type == bpkit::ParamType::kChoice) {
    std::string c;
    for (const auto& x : p.choices) c += (c.empty() ? "" : "|") + x;
    return c;
  }
  if (p.type != bpkit::ParamType::kInt && p.type != bpkit::ParamType::kFloat) return "";
  auto f = [](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return std::string(b);
  };
  const bool lo = p.min > -1e300, hi = p.max < 1e300;
  if (lo && hi) return "[" + f(p.min) + ", " + f(p.max) + "]";
  if (lo) return ">= " + f(p.min);
  if (hi) return "<= " + f(p.max);
  return "";
}

// Ctrl-C (SIGINT) or SIGTERM during training: checkpoints are written atomically, so the process
// ends at once, saying how to continue, and then dies of the signal (so that a calling shell loop
// stops too). Both messages are made before training starts; the handler only checks for the
// checkpoint (access) and writes one (async-signal-safe).
char g_resume_message[4096], g_restart_message[4096], g_checkpoint_path[4096];
size_t g_resume_length = 0, g_restart_length = 0;

extern "C" void on_interrupt(int sig) {
  const bool kept = g_checkpoint_path[0] && access(g_checkpoint_path, F_OK) == 0;
  ssize_t ignored = kept ? write(STDERR_FILENO, g_resume_message, g_resume_length)
                         : write(STDERR_FILENO, g_restart_message, g_restart_length);
  (void)ignored;
  signal(sig, SIG_DFL);
  raise(sig);
}

// `s` quoted for a POSIX shell when it holds anything but safe characters.
std::string shell_quoted(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789_-./=:+,@%") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void explain_interrupts(int argc, char** argv, const std::string& checkpoint) {
  // The command as given, less --force and --resume (args from argv[1]: "train ...").
  std::string cmd = "bpkit";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a != "--force" && a != "--resume") cmd += " " + shell_quoted(a);
  }
  auto store = [](const std::string& msg, char* buf, size_t& len) {
    len = std::min(msg.size(), size_t(4096));
    std::memcpy(buf, msg.data(), len);
  };
  store("\nbpkit train: interrupted; the checkpoint of the last finished epoch is kept: '" + cmd +
            " --resume' continues the run\n",
        g_resume_message, g_resume_length);
  store("\nbpkit train: interrupted before the first checkpoint; nothing to resume: '" + cmd +
            "' starts again\n",
        g_restart_message, g_restart_length);
  const size_t n = std::min(checkpoint.size(), sizeof g_checkpoint_path - 1);
  std::memcpy(g_checkpoint_path, checkpoint.data(), n);
  g_checkpoint_path[n] = '\0';
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

int cmd_train(int argc, char** argv) {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  auto o = parse_options(argc, argv, 2, {"out", "plugin-path", "threads", "seed", "set"}, pos,
                         {"resume", "no-cache", "force"}, &all);
  if (pos.size() != 1) throw UsageError("train takes one pipeline file");
  if (o.count("resume") && o.count("force"))
    throw UsageError("--resume continues a run, --force starts over: give one of them");
  bpkit::TrainRequest r;
  r.config = pos[0];
  r.out_dir = o.count("out") ? o["out"] : "";
  r.resume = o.count("resume") > 0;
  r.overwrite = o.count("force") > 0;
  r.plugin_dirs = all_values(all, "plugin-path");
  r.use_cache = !o.count("no-cache");
  r.log = &std::cout;
  r.terminal = isatty(STDOUT_FILENO);
  r.threads = o.count("threads") ? int(integer(o, "threads", 1, 1, 1024)) : 0;
  r.seed = o.count("seed") ? integer(o, "seed", 1, 0) : -1;
  r.overrides = all_values(all, "set");
  {
    const std::string out = r.out_dir.empty()
                                ? bpkit::load_pipeline_config(r.config, r.overrides).output_dir
                                : r.out_dir;
    explain_interrupts(argc, argv, (std::filesystem::path(out) / "checkpoint.bpk").string());
  }
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  std::printf("model: %s\n", out.model_dir.c_str());
  if (out.test_accuracy >= 0) std::printf("test_accuracy %.4f\n", out.test_accuracy);
  if (out.test_eer_skilled >= 0 || out.test_eer_random >= 0)
    std::printf("test_eer_skilled %.4f test_eer_random %.4f\n", out.test_eer_skilled,
                out.test_eer_random);
  return 0;
}

// --dict FILE [--dict-cost X] of eval and predict.
void use_dictionary(bpkit::TrainedModel& model, std::map<std::string, std::string>& o) {
  if (!o.count("dict")) {
    if (o.count("dict-cost")) throw UsageError("--dict-cost needs --dict FILE");
    return;
  }
  if (!model.transcripts()) throw UsageError("--dict is for transcript (text) models");
  model.use_dictionary(o["dict"],
                       number(o, "dict-cost", bpkit::TrainedModel::kDefaultDictionaryCost));
}

int cmd_eval(int argc, char** argv) {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  auto o = parse_options(argc, argv, 2, {"plugin-path", "dict", "dict-cost", "det"}, pos,
                         {"no-cache", "trust-model-plugins", "json"}, &all);
  if (pos.size() != 2) throw UsageError("eval takes a model directory and a manifest");
  // The figures: one line of "key value" pairs, or (--json) one JSON object with the same keys.
  const bool json = o.count("json") > 0;
  auto report = [&](const nlohmann::ordered_json& j) {
    if (json) {
      std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      return;
    }
    std::string line;
    for (const auto& [k, v] : j.items()) {
      if (v.is_array() || v.is_object()) continue;
      char buf[64];
      if (v.is_number_float())
        std::snprintf(buf, sizeof buf, "%.4f", v.get<double>());
      else if (v.is_null())
        std::snprintf(buf, sizeof buf, "nan");
      else
        std::snprintf(buf, sizeof buf, "%s",
                      v.is_string() ? v.get<std::string>().c_str() : v.dump().c_str());
      line += (line.empty() ? "" : " ") + k + " " + buf;
    }
    std::printf("%s\n", line.c_str());
  };
  auto or_null = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
  const bool trust = o.count("trust-model-plugins") > 0;
  // A mistyped path is named as such, whatever else the options say.
  std::error_code ec;
  if (!std::filesystem::exists(pos[1], ec))  // ec: why not (a directory without permission, ...)
    throw bpkit::FileError(pos[1] + ": cannot read the manifest (" +
                           (ec ? ec.message() : bpkit::open_failure(pos[1], ENOENT)) + ")");
  const int tuple_arity = bpkit::tuple_manifest_arity(pos[1]);
  if (std::filesystem::is_directory(pos[1]) || tuple_arity) {
    // A verifier on a dataset directory of writers (the verification protocol) or on a manifest
    // of pairs or triplets (their trials, one reference each).
    const auto loaded =
        open_model<bpkit::SignatureVerifier>(pos[0], all_values(all, "plugin-path"), trust);
    bpkit::SignatureVerifier& v = *loaded;
    if (o.count("dict")) throw UsageError("--dict is for transcript (text) models");
    bpkit::FeatureCache cache(v.model().config().cache_dir.empty()
                                  ? bpkit::FeatureCache::default_dir()
                                  : v.model().config().cache_dir);
    const bpkit::FeatureCache* c =
        (v.model().config().cache && !o.count("no-cache")) ? &cache : nullptr;
    const int refs = tuple_arity ? 1 : v.references();
    const bpkit::VerificationTrials t =
        tuple_arity
            ? bpkit::evaluate_verifier(v, bpkit::read_tuple_manifest(pos[1], tuple_arity), c)
            : bpkit::evaluate_verifier(v, bpkit::read_writer_dataset(pos[1]), refs, c);
    const bpkit::VerificationSummary s = bpkit::summarize_trials(t, v.threshold(size_t(refs)));
    if (o.count("det")) {
      bpkit::write_det_png(o["det"], pos[1], t, s.threshold);
      std::fprintf(stderr, "DET curves: %s\n", o["det"].c_str());
    }
    nlohmann::ordered_json j;
    if (!tuple_arity) j["writers"] = s.writers;
    j["references"] = refs;
    j["genuine_trials"] = s.genuine_trials;
    j["skilled_trials"] = s.skilled_trials;
    j["random_trials"] = s.random_trials;
    j["threshold"] = s.threshold;
    j["frr"] = or_null(s.frr);
    j["far_skilled"] = or_null(s.far_skilled);
    j["far_random"] = or_null(s.far_random);
    j["eer_skilled"] = or_null(s.skilled.eer);
    j["eer_random"] = or_null(s.random.eer);
    report(j);
    return 0;
  }
  if (o.count("det"))  // said before the model loads
    throw UsageError(
        "--det is for signature verifiers (a dataset directory of writers, or a manifest of pairs "
        "or triplets)");
  const auto loaded =
      open_model<bpkit::TrainedModel>(pos[0], all_values(all, "plugin-path"), trust);
  bpkit::TrainedModel& model = *loaded;
  if (model.embeddings())
    throw ModelError(pos[0] +
                     " is a verifier: evaluate it on a dataset directory of writers "
                     "(WRITER/genuine/*.png, WRITER/forgeries/*.png) or a manifest of pairs "
                     "(REF<tab>QUERY<tab>LABEL) or triplets, not a class manifest");
  const bool text_inputs = model.pipeline().input_kind() == bpkit::Kind::kText;
  if (model.frames() && text_inputs && std::filesystem::path(pos[1]).extension() == ".dict") {
    // A pronouncer on a pronunciation dictionary: phoneme and word error rates, each word against
    // its closest pronunciation.
    if (o.count("dict")) throw UsageError("--dict is for transcript (text) models");
    const auto words = bpkit::read_dictionary(pos[1]);
    bpkit::Pronouncer p(pos[0], all_values(all, "plugin-path"), trust);
    // Words with a character the model cannot read are skipped (and said); the rest in one batch.
    std::vector<bpkit::DictEntry> kept;
    size_t skipped = 0;
    for (const bpkit::DictEntry& e : words) {
      try {
        (void)p.model().pipeline().run(e.word);
        kept.push_back(e);
      } catch (const bpkit::StageError& ex) {
        if (skipped++ < 5) std::fprintf(stderr, "skipped %s: %s\n", e.where.c_str(), ex.what());
      }
    }
    if (kept.empty())
      throw bpkit::FileError(pos[1] + ": no word the model can read (" + std::to_string(skipped) +
                             " skipped)");
    const bpkit::PronunciationScore score = bpkit::evaluate_pronouncer(p, kept);
    if (skipped > 5) std::fprintf(stderr, "skipped %zu words in all\n", skipped);
    report({{"words", score.words},
            {"skipped", skipped},
            {"phonemes", score.phonemes},
            {"phoneme_error_rate", or_null(score.per())},
            {"word_error_rate", or_null(score.wer())}});
    return 0;
  }
  use_dictionary(model, o);
  const auto entries = bpkit::read_manifest(pos[1], text_inputs);
  bpkit::FeatureCache cache(model.config().cache_dir.empty() ? bpkit::FeatureCache::default_dir()
                                                             : model.config().cache_dir);
  bpkit::ExtractOptions eo;
  eo.cache = (model.config().cache && !o.count("no-cache")) ? &cache : nullptr;
  eo.skip_errors = model.config().on_error == "skip";
  eo.log = &std::cerr;
  const bpkit::FeatureSet set = bpkit::extract_features(model.pipeline(), entries, eo);
  if (!model.config().symbol_words.empty()) {
    if (o.count("dict"))
      throw UsageError(
          "--dict corrects the words of text lines; a speech model's words come from "
          "its decoder grammar");
    // A word recognizer (speech): the utterance recognizer on each sample's features, word error
    // rate against the manifest's symbols spelled as words.
    bpkit::UtteranceRecognizer rec(pos[0], all_values(all, "plugin-path"), trust);
    bpkit::WordErrors errors;
    for (size_t i = 0; i < set.features.size(); ++i) {
      const bpkit::Utterance u = rec.recognize_features(set.features[i]);
      std::vector<std::string> ref;
      for (char ch : set.entries[i].label) {
        const auto it =
            std::find(model.classes().begin(), model.classes().end(), std::string(1, ch));
        if (it == model.classes().end())
          throw bpkit::FileError(set.entries[i].where + ": '" + std::string(1, ch) +
                                 "' is not a symbol of the model's alphabet");
        ref.push_back(rec.words()[size_t(it - model.classes().begin())]);
      }
      errors.add(bpkit::split_words(u.text), ref);
    }
    report({{"samples", set.features.size()},
            {"skipped", set.skipped.size()},
            {"words", errors.words},
            {"word_error_rate", or_null(errors.wer())},
            {"sentence_accuracy", or_null(errors.sentence_accuracy())}});
    return 0;
  }
  const auto preds = model.predict(set.features);
  const auto& classes = model.classes();
  if (model.frames()) {
    // Sequence accuracy (every frame right) and the frame error rate.
    int64_t exact = 0, wrong = 0, frames = 0;
    for (size_t i = 0; i < preds.size(); ++i) {
      const std::vector<std::string> want = bpkit::split_frame_labels(set.entries[i].label);
      const std::vector<std::string> got = bpkit::split_frame_labels(preds[i].name);
      if (want.size() != got.size())
        throw bpkit::FileError(set.entries[i].where + ": " + std::to_string(want.size()) +
                               " frame labels for " + std::to_string(got.size()) + " frames");
      int64_t w = 0;
      for (size_t k = 0; k < want.size(); ++k) w += want[k] != got[k];
      exact += w == 0;
      wrong += w;
      frames += int64_t(want.size());
    }
    report({{"samples", preds.size()},
            {"skipped", set.skipped.size()},
            {"accuracy", preds.empty() ? 0.0 : double(exact) / double(preds.size())},
            {"frame_error_rate", frames ? double(wrong) / double(frames) : 0.0}});
    return 0;
  }
  if (model.transcripts()) {
    // Sequence accuracy and character error rate (edit distance over the reference length).
    int64_t exact = 0, edits = 0, chars = 0;
    for (size_t i = 0; i < preds.size(); ++i) {
      const std::string& want = set.entries[i].label;
      const std::string& got = preds[i].name;
      exact += got == want;
      edits += bpkit::edit_distance(std::vector<int32_t>(got.begin(), got.end()),
                                    std::vector<int32_t>(want.begin(), want.end()));
      chars += int64_t(want.size());
    }
    report({{"samples", preds.size()},
            {"skipped", set.skipped.size()},
            {"accuracy", preds.empty() ? 0.0 : double(exact) / double(preds.size())},
            {"character_error_rate", chars ? double(edits) / double(chars) : 0.0}});
    return 0;
  }
  bpkit::ConfusionMatrix cm(int(classes.size()));
  int64_t right = 0;
  for (size_t i = 0; i < preds.size(); ++i) {
    const auto it = std::find(classes.begin(), classes.end(), set.entries[i].label);
    if (it == classes.end())
      throw bpkit::FileError(set.entries[i].where + ": label '" + set.entries[i].label +
                             "' is not one of the model's classes");
    const int truth = int(it - classes.begin());
    cm.add(truth, preds[i].label);
    right += truth == preds[i].label;
  }
  nlohmann::ordered_json j{
      {"samples", preds.size()},
      {"skipped", set.skipped.size()},
      {"accuracy", preds.empty() ? 0.0 : double(right) / double(preds.size())}};
  if (json) {  // the confusion matrix too: rows are the truth, columns the prediction
    j["classes"] = classes;
    nlohmann::json rows = nlohmann::json::array();
    for (int a = 0; a < cm.classes(); ++a) {
      nlohmann::json row = nlohmann::json::array();
      for (int b = 0; b < cm.classes(); ++b) row.push_back(cm.at(a, b));
      rows.push_back(row);
    }
    j["confusion"] = rows;
  } else {
    std::printf("confusion matrix (rows: truth, columns: prediction; classes:");
    for (size_t i = 0; i < classes.size(); ++i) std::printf(" %zu=%s", i, classes[i].c_str());
    std::printf(")\n%s", cm.to_string().c_str());
  }
  report(j);
  return 0;
}

int cmd_predict(int argc, char** argv) {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  auto o = parse_options(argc, argv, 2, {"plugin-path", "top", "dict", "dict-cost"}, pos,
                         {"trust-model-plugins", "json"}, &all);
  if (pos.size() < 2) throw UsageError("predict takes a model directory and at least one file");
  // "-": the file names, one a line, from standard input (once).
  std::vector<std::string> files;
  bool stdin_read = false;
  for (size_t i = 1; i < pos.size(); ++i) {
    if (pos[i] != "-") {
      files.push_back(pos[i]);
      continue;
    }
    if (stdin_read) throw UsageError("predict reads '-' (file names from standard input) once");
    stdin_read = true;
    for (std::string line; std::getline(std::cin, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) files.push_back(line);
    }
  }
  const auto loaded = open_model<bpkit::TrainedModel>(pos[0], all_values(all, "plugin-path"),
                                                      o.count("trust-model-plugins") > 0);
  bpkit::TrainedModel& model = *loaded;
  use_dictionary(model, o);
  const size_t top = size_t(integer(o, "top", 1, 1));
  const bool json = o.count("json") > 0;
  int failures = 0;
  for (const std::string& file : files) {
    try {
      const auto p = model.predict(file);
      if (model.frames()) {  // a class per frame: their names, and the weakest frame's probability
        if (json)
          std::printf("%s\n", nlohmann::ordered_json{{"input", file},
                                                     {"labels", bpkit::split_frame_labels(p.name)},
                                                     {"confidence", p.confidence}}
                                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                  .c_str());
        else
          std::printf("%s\t%s\t%.4f\n", file.c_str(), p.name.c_str(), p.confidence);
        continue;
      }
      if (model.transcripts()) {
        if (json)
          std::printf(
              "%s\n",
              nlohmann::ordered_json{{"file", file}, {"text", p.name}, {"confidence", p.confidence}}
                  .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                  .c_str());
        else
          std::printf("%s\t%s\t%.4f\n", file.c_str(), p.name.c_str(), p.confidence);
        continue;
      }
      std::vector<size_t> order(p.probabilities.size());
      for (size_t k = 0; k < order.size(); ++k) order[k] = k;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return p.probabilities[a] > p.probabilities[b]; });
      if (json) {
        nlohmann::ordered_json j{{"file", file},
                                 {"class", model.classes()[order[0]]},
                                 {"probability", p.probabilities[order[0]]}};
        if (top > 1) {
          j["top"] = nlohmann::json::array();
          for (size_t k = 0; k < top && k < order.size(); ++k)
            j["top"].push_back(nlohmann::ordered_json{{"class", model.classes()[order[k]]},
                                                      {"probability", p.probabilities[order[k]]}});
        }
        std::printf("%s\n",
                    j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        continue;
      }
      std::printf("%s", file.c_str());
      for (size_t k = 0; k < top && k < order.size(); ++k)
        std::printf("\t%s\t%.4f", model.classes()[order[k]].c_str(), p.probabilities[order[k]]);
      std::printf("\n");
    } catch (const bpkit::StageError& e) {
      std::fprintf(stderr, "bpkit predict: %s\n", e.what());
      if (json)
        std::printf("%s\n", nlohmann::ordered_json{{"file", file}, {"error", e.what()}}
                                .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                                .c_str());
      ++failures;
    }
  }
  std::fflush(stdout);
  return failures ? 1 : 0;
}

// `head` (or `indent` spaces when empty), then the words of `text`, in lines of at most `width`
// columns (0: no limit), the further lines indented by `indent`. Ends with a newline.
std::string wrap_text(const std::string& head, const std::string& text, size_t indent, int width) {
  const std::string pad(indent, ' ');
  std::string out = head.empty() ? pad : head;
  size_t col = out.size();
  bool fresh = true;  // no word of `text` on this line yet
  std::istringstream words(text);
  std::string w;
  while (words >> w) {
    if (width > 0 && !fresh && col + 1 + w.size() > size_t(width)) {
      out += "\n" + pad;
      col = indent;
      fresh = true;
    }
    if (!fresh) {
      out += ' ';
      ++col;
    }
    out += w;
    col += w.size();
    fresh = false;
  }
  return out + "\n";
}

int cmd_plugins(int argc, char** argv) {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  parse_options(argc, argv, 2, {"plugin-path"}, pos, {}, &all);
  bpkit::PluginRegistry reg;
  bpkit::load_plugins(reg, {}, all_values(all, "plugin-path"));
  // Libraries that could not be loaded first: a wanted plugin may be in one of them.
  for (const auto& p : reg.problems())
    std::fprintf(stderr, "bpkit plugins: skipped %s\n", p.c_str());
  std::vector<std::string> names;
  for (const auto& p : reg.plugins()) names.push_back(p.info.name);
  for (const std::string& want : pos)
    if (std::find(names.begin(), names.end(), want) == names.end())
      throw UsageError("no plugin named '" + want + "'" + bpkit::did_you_mean(want, names) +
                       " ('bpkit plugins' lists them all)");
  // On a terminal, descriptions and parameter help are wrapped to its width.
  int width = 0;
  struct winsize ws {};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) width = ws.ws_col;
  for (const auto& p : reg.plugins()) {
    if (!pos.empty() && std::find(pos.begin(), pos.end(), p.info.name) == pos.end()) continue;
    std::printf("%s %s  (%s -> %s)\n%s  from %s\n", p.info.name.c_str(), p.info.version.c_str(),
                bpkit::kind_name(p.info.consumes), bpkit::kind_name(p.info.produces),
                wrap_text("", p.info.description, 2, width).c_str(), p.file.c_str());
    for (const auto& a : p.info.params) {
      const std::string r = range_text(a);
      // Columns as printf's %-16s %-6s default %-8s would pad them, without a length limit.
      auto padded = [](const std::string& v, size_t w) {
        return v.size() >= w ? v : v + std::string(w - v.size(), ' ');
      };
      const std::string head = "    " + padded(a.name, 16) + " " +
                               padded(bpkit::param_type_name(a.type), 6) + " default " +
                               padded(a.default_value, 8) + " " + (r.empty() ? "" : r + "  ") +
                               (a.help.empty() ? "" : "- ");
      std::printf("%s", wrap_text(head, a.help, 6, width).c_str());
    }
  }
  if (!pos.empty()) return 0;
  std::printf("%zu plugins in", reg.plugins().size());
  for (const auto& d : reg.directories()) std::printf(" %s", d.c_str());
  std::printf("\n");
  return 0;
}

int cmd_version(int argc, char** argv) {
  std::vector<std::string> pos;
  std::multimap<std::string, std::string> all;
  parse_options(argc, argv, 2, {"plugin-path"}, pos, {}, &all);
  if (!pos.empty()) throw UsageError("unexpected argument '" + pos[0] + "'");
  std::printf("%s", bpkit::version_text("bpkit").c_str());
  bpkit::PluginRegistry reg;
  bpkit::load_plugins(reg, {}, all_values(all, "plugin-path"));
  std::printf("%zu plugins:\n", reg.plugins().size());
  for (const auto& p : reg.plugins())
    std::printf("  %-24s %-8s %s\n", p.info.name.c_str(), p.info.version.c_str(), p.file.c_str());
  for (const auto& p : reg.problems())
    std::fprintf(stderr, "bpkit version: skipped %s\n", p.c_str());
  return 0;
}

int cmd_cache(int argc, char** argv) {
  std::vector<std::string> pos;
  auto o = parse_options(argc, argv, 2, {"dir"}, pos);
  if (pos.size() != 1 || (pos[0] != "info" && pos[0] != "clear"))
    throw UsageError("cache takes 'info' or 'clear'");
  const bpkit::FeatureCache cache(o.count("dir") ? o["dir"] : bpkit::FeatureCache::default_dir());
  namespace fs = std::filesystem;
  if (pos[0] == "clear") {
    const size_t n = cache.clear();
    std::printf("removed %zu cached feature files from %s\n", n, cache.dir().c_str());
    return 0;
  }
  size_t n = 0;
  uintmax_t bytes = 0;
  std::error_code ec;
  if (fs::is_directory(cache.dir(), ec))
    for (const auto& e : fs::recursive_directory_iterator(cache.dir(), ec))
      if (e.path().extension() == ".feat") ++n, bytes += e.file_size(ec);
  std::printf("%s: %zu entries, %.1f MB\n", cache.dir().c_str(), n, double(bytes) / 1e6);
  return 0;
}

int cmd_ensemble(int argc, char** argv) {
  std::vector<std::string> pos;
  auto o = parse_options(argc, argv, 2, {"out"}, pos);
  if (!o.count("out")) throw UsageError("ensemble needs --out DIR");
  if (pos.size() < 2) throw UsageError("ensemble takes at least two model directories");
  bpkit::write_ensemble(pos, o["out"]);
  std::printf("model: %s (ensemble of %zu)\n", o["out"].c_str(), pos.size());
  return 0;
}

int cmd_inspect(int argc, char** argv) {
  std::vector<std::string> pos;
  parse_options(argc, argv, 2, {}, pos);
  if (pos.size() != 1) throw UsageError("inspect takes one model directory or model file");
  namespace fs = std::filesystem;
  const bool is_dir = fs::is_directory(pos[0]);
  const std::string file = is_dir ? (fs::path(pos[0]) / bpkit::kModelFile).string() : pos[0];
  if (is_dir && !fs::exists(file))
    throw bpkit::FileError(pos[0] + ": not a model directory (no " + bpkit::kModelFile + ")");
  auto m = bpkit::load_model<float>(file);
  std::printf("model %s\ninput %s\n", file.c_str(), bpkit::to_string(m.net.input_shape()).c_str());
  if (is_dir) {
    const std::string pfile = (fs::path(pos[0]) / bpkit::kPipelineFile).string();
    const bpkit::PipelineConfig c = bpkit::load_pipeline_config(pfile);
    std::printf("pipeline %s (%s)\n", c.name.c_str(), pfile.c_str());
    for (const auto& st : c.stages) {
      std::printf("  stage %s", st.plugin.c_str());
      for (const auto& [k, v] : st.params) std::printf(" %s=%s", k.c_str(), v.c_str());
      std::printf("\n");
    }
  }
  std::printf("%-14s %-10s %-16s %10s  %s\n", "layer", "kind", "output", "params", "attributes");
  for (size_t i = 0; i < m.net.size(); ++i) {
    auto& l = m.net.layer(i);
    int64_t n = 0;
    for (auto& p : l.params()) n += p.value->size();
    std::printf("%-14s %-10s %-16s %10lld  %s\n", l.name().c_str(), l.kind().c_str(),
                bpkit::to_string(m.net.shape_after(i)).c_str(), static_cast<long long>(n),
                l.attrs().to_string().c_str());
  }
  std::printf("total parameters %lld\n", static_cast<long long>(m.net.param_count()));
  // A fingerprint of every weight and buffer (CRC-32 of their bytes): equal digests, equal models.
  auto digest = [](bpkit::Network<float>& net) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t i = 0; i < net.size(); ++i) {
      for (auto& p : net.layer(i).params())
        crc = crc32_z(crc, reinterpret_cast<const Bytef*>(p.value->data()),
                      sizeof(float) * size_t(p.value->size()));
      for (auto& b : net.layer(i).buffers())
        crc = crc32_z(crc, reinterpret_cast<const Bytef*>(b.second->data()),
                      sizeof(float) * size_t(b.second->size()));
    }
    return static_cast<unsigned long>(crc);
  };
  std::printf("weights digest %08lx\n", digest(m.net));
  for (const auto& [k, v] : m.meta) std::printf("meta %s = %s\n", k.c_str(), v.c_str());
  if (is_dir) {
    // An ensemble: the members after the first, each with its size and digest.
    const std::vector<std::string> files = bpkit::member_files(pos[0]);
    if (files.size() > 1) std::printf("ensemble of %zu members\n", files.size());
    for (size_t i = 1; i < files.size(); ++i) {
      auto mi = bpkit::load_model<float>(files[i]);
      std::printf("member %zu %s: %s -> %s, parameters %lld, weights digest %08lx\n", i + 1,
                  files[i].c_str(), bpkit::to_string(mi.net.input_shape()).c_str(),
                  bpkit::to_string(mi.net.output_shape()).c_str(),
                  static_cast<long long>(mi.net.param_count()), digest(mi.net));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "bpkit")) return 0;
  const std::string cmd = argc > 1 ? argv[1] : "";
  const bool help = argc > 2 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"));
  try {
    if (cmd == "fmnist") {
      if (help) return std::printf("%s", kFmnistUsage), 0;
      return cmd_fmnist(argc, argv);
    }
    struct Command {
      const char* name;
      const char* usage;
      int (*run)(int, char**);
    };
    const Command commands[] = {
        {"train", kTrainUsage, cmd_train},       {"eval", kEvalUsage, cmd_eval},
        {"predict", kPredictUsage, cmd_predict}, {"plugins", kPluginsUsage, cmd_plugins},
        {"cache", kCacheUsage, cmd_cache},       {"ensemble", kEnsembleUsage, cmd_ensemble},
        {"version", kVersionUsage, cmd_version}};
    for (const Command& c : commands)
      if (cmd == c.name) {
        if (help) return std::printf("%s", c.usage), 0;
        return c.run(argc, argv);
      }
    if (cmd == "inspect") {
      if (help) return std::printf("%s", kInspectUsage), 0;
      return cmd_inspect(argc, argv);
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::printf("%s", kUsage), 0;
    // No command: the usage. A wrong one (or option): one line saying so, with the commands.
    if (cmd.empty()) return std::fprintf(stderr, "%s", kUsage), 2;
    std::fprintf(stderr,
                 "bpkit: unknown %s '%s' (commands: train, eval, predict, plugins, inspect, "
                 "ensemble, cache, fmnist, version; see 'bpkit --help')\n",
                 cmd[0] == '-' ? "option" : "command", cmd.c_str());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bpkit %s: %s (see 'bpkit %s --help')\n", cmd.c_str(), e.what(),
                 cmd.c_str());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const bpkit::ConfigError& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const ModelError& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const bpkit::PluginError& e) {  // a refused plugin directory or search path
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
