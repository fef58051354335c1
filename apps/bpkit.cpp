// bpkit: the toolkit's command line.
//   bpkit fmnist   train a reference network on Fashion-MNIST and report test accuracy
//   bpkit inspect  describe a model file
// Exit codes: 0 success, 1 runtime failure (unreadable data, divergence), 2 usage error.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/model_file.h"
#include "bpkit/threading.h"
#include "bpkit/trainer.h"
#include "bpkit/zoo.h"

namespace {

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* kUsage =
    "usage: bpkit <command> [options]\n"
    "\n"
    "commands:\n"
    "  fmnist    train a reference network on Fashion-MNIST, print test accuracy\n"
    "  inspect   print a model file's layers, shapes, parameter count and metadata\n"
    "\n"
    "Run 'bpkit <command> --help' for a command's options.\n";

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
    "usage: bpkit inspect MODEL_FILE\n"
    "\n"
    "Prints the network's layers with their output shapes and parameter counts, the total, and "
    "the\n"
    "metadata stored with the model.\n";

// Parses --key value pairs; flags listed in `known` only.
std::map<std::string, std::string> parse_options(int argc, char** argv, int first,
                                                 const std::vector<std::string>& known,
                                                 std::vector<std::string>& positional) {
  std::map<std::string, std::string> opts;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) == 0) {
      const std::string key = a.substr(2);
      bool ok = false;
      for (const auto& k : known) ok |= k == key;
      if (!ok) throw UsageError("unknown option '" + a + "'");
      if (i + 1 >= argc) throw UsageError("option '" + a + "' needs a value");
      opts[key] = argv[++i];
    } else {
      positional.push_back(a);
    }
  }
  return opts;
}

double number(const std::map<std::string, std::string>& o, const std::string& key, double def) {
  auto it = o.find(key);
  if (it == o.end()) return def;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  if (it->second.empty() || *end != '\0')
    throw UsageError("--" + key + " expects a number, got '" + it->second + "'");
  return v;
}

long long integer(const std::map<std::string, std::string>& o, const std::string& key,
                  long long def, long long min) {
  const double v = number(o, key, double(def));
  if (v != double(static_cast<long long>(v)) || v < double(min))
    throw UsageError("--" + key + " expects an integer >= " + std::to_string(min));
  return static_cast<long long>(v);
}

int cmd_fmnist(int argc, char** argv) {
  std::vector<std::string> pos;
  auto o = parse_options(argc, argv, 2,
                         {"net", "epochs", "batch", "optimizer", "lr", "momentum", "weight-decay",
                          "schedule", "clip", "val", "patience", "seed", "threads", "data", "save"},
                         pos);
  if (!pos.empty()) throw UsageError("unexpected argument '" + pos[0] + "'");
  if (o.count("threads")) bpkit::set_num_threads(int(integer(o, "threads", 1, 1)));
  const std::string data = o.count("data") ? o["data"] : "/usr/share/datasets/fashion-mnist";
  const std::string net_name = o.count("net") ? o["net"] : "mlp";
  const std::string opt_name = o.count("optimizer") ? o["optimizer"] : "sgd";
  const uint64_t seed = uint64_t(integer(o, "seed", 1, 0));

  bpkit::TrainOptions t;
  t.epochs = int(integer(o, "epochs", 1, 1));
  t.batch = integer(o, "batch", 64, 1);
  t.seed = seed;
  t.validation_split = number(o, "val", 0);
  if (t.validation_split < 0 || t.validation_split >= 1)
    throw UsageError("--val must be in [0, 1)");
  t.patience = int(integer(o, "patience", 0, 0));
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

int cmd_inspect(int argc, char** argv) {
  std::vector<std::string> pos;
  parse_options(argc, argv, 2, {}, pos);
  if (pos.size() != 1) throw UsageError("inspect takes one model file");
  auto m = bpkit::load_model<float>(pos[0]);
  std::printf("model %s\ninput %s\n", pos[0].c_str(),
              bpkit::to_string(m.net.input_shape()).c_str());
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
  for (const auto& [k, v] : m.meta) std::printf("meta %s = %s\n", k.c_str(), v.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  const bool help = argc > 2 && (!std::strcmp(argv[2], "--help") || !std::strcmp(argv[2], "-h"));
  try {
    if (cmd == "fmnist") {
      if (help) return std::printf("%s", kFmnistUsage), 0;
      return cmd_fmnist(argc, argv);
    }
    if (cmd == "inspect") {
      if (help) return std::printf("%s", kInspectUsage), 0;
      return cmd_inspect(argc, argv);
    }
    if (cmd == "--help" || cmd == "-h" || cmd == "help") return std::printf("%s", kUsage), 0;
    std::fprintf(stderr, "%s", kUsage);
    if (!cmd.empty()) std::fprintf(stderr, "\nbpkit: unknown command '%s'\n", cmd.c_str());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "bpkit %s: %s (see 'bpkit %s --help')\n", cmd.c_str(), e.what(),
                 cmd.c_str());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bpkit %s: %s\n", cmd.c_str(), e.what());
    return 1;
  }
}
