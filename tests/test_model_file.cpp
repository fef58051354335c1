// Model files: a saved network loads back bit-identical, and every damaged, foreign or newer file
// is refused with a FileError that names the file and the problem, without crashing or allocating
// what a corrupted length field claims.
#include <sys/stat.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/fixed_point.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/model_file.h"
#include "bpkit/optimizer.h"
#include "bpkit/recurrent.h"
#include "bpkit/trainer.h"
#include "bpkit/zoo.h"
#include "temp_dir.h"

using namespace bpkit;
using bpkit_test::read_bytes;
using bpkit_test::TempDir;
using bpkit_test::write_bytes;
using Catch::Matchers::Contains;

namespace {

// --- Synthetic data and a few training steps --------------------------------------------------

template <class T>
Tensor<T> random_batch(int64_t batch, const Shape& sample, uint64_t seed) {
  Shape s{batch};
  s.insert(s.end(), sample.begin(), sample.end());
  Tensor<T> x(s);
  Rng rng(seed);
  for (T& v : x) v = T(rng.uniform());
  return x;
}

Dataset synthetic_dataset(int64_t n, const Shape& sample, int classes, uint64_t seed) {
  Dataset d;
  d.x = random_batch<float>(n, sample, seed);
  Rng rng(seed + 1);
  for (int64_t i = 0; i < n; ++i) d.y.push_back(int32_t(rng.below(uint64_t(classes))));
  d.classes = classes;
  return d;
}

// Two SGD steps, so that weights differ from their initialization and batch-norm running
// statistics move away from 0 and 1.
void train_a_little(Network<float>& net) {
  const Dataset d = synthetic_dataset(64, net.input_shape(), 10, 5);
  Sgd<float> opt(net.params(), 0.01, 0.9);
  SoftmaxCrossEntropy<float> loss;
  TrainOptions o;
  o.batch = 32;
  fit(net, loss, opt, d, o);
}

// --- Comparing networks ------------------------------------------------------------------------

template <class T>
bool same_bits(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * size_t(a.size())) == 0;
}

// Every tensor a model file must keep: parameters, then buffers, layer by layer.
template <class T>
std::vector<std::pair<std::string, Tensor<T>*>> stored_tensors(Network<T>& net) {
  std::vector<std::pair<std::string, Tensor<T>*>> all;
  for (size_t i = 0; i < net.size(); ++i) {
    for (auto& p : net.layer(i).params()) all.emplace_back(p.name, p.value);
    for (auto& b : net.layer(i).buffers()) all.push_back(b);
  }
  return all;
}

template <class T>
void require_same_network(Network<T>& saved, Network<T>& loaded) {
  REQUIRE(loaded.input_shape() == saved.input_shape());
  REQUIRE(loaded.seed() == saved.seed());
  REQUIRE(loaded.size() == saved.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    INFO("layer " << i << " " << saved.layer(i).describe());
    CHECK(loaded.layer(i).kind() == saved.layer(i).kind());
    CHECK(loaded.layer(i).name() == saved.layer(i).name());
    CHECK(loaded.layer(i).attrs().to_string() == saved.layer(i).attrs().to_string());
    CHECK(loaded.shape_after(i) == saved.shape_after(i));
  }
  auto a = stored_tensors(saved), b = stored_tensors(loaded);
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO("tensor " << a[k].first);
    CHECK(b[k].first == a[k].first);
    CHECK(same_bits(*a[k].second, *b[k].second));
  }
}

template <class T>
void require_same_inference(Network<T>& saved, Network<T>& loaded, uint64_t seed) {
  const Tensor<T> x = random_batch<T>(5, saved.input_shape(), seed);
  const Tensor<T> want = saved.forward(x, Mode::kInfer);
  const Tensor<T>& got = loaded.forward(x, Mode::kInfer);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(same_bits(got, want));
}

// A batch-norm layer's running statistics after training are not the initial zeros and ones
// (otherwise a round trip would pass even if they were never stored).
template <class T>
bool has_trained_running_stats(Network<T>& net) {
  bool found = false;
  for (size_t i = 0; i < net.size(); ++i)
    for (auto& [name, t] : net.layer(i).buffers()) {
      bool moved = false;
      for (T v : *t) moved |= v != T(0) && v != T(1);
      if (!moved) return false;
      found = true;
    }
  return found;
}

// --- The file layout, parsed independently of the engine --------------------------------------

uint32_t crc32_of(const std::string& b, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= uint8_t(b[i]);
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

template <class V>
V get_le(const std::string& b, size_t at) {
  V v;
  std::memcpy(&v, b.data() + at, sizeof v);
  return v;
}

template <class V>
void put_le(std::string& b, size_t at, V v) {
  std::memcpy(&b[at], &v, sizeof v);
}

// Rewrites the trailing CRC-32 so that only the deliberate damage is wrong with the file.
void fix_checksum(std::string& b) {
  put_le<uint32_t>(b, b.size() - 4, crc32_of(b, b.size() - 4));
}

// Byte offsets of a model file's sections (see model_file.h).
struct Layout {
  size_t arch_len_at = 16, arch_at = 24, count_at = 0;
  struct TensorAt {
    std::string name;
    size_t name_len_at, rank_at, dims_at, data_at, data_bytes;
  };
  std::vector<TensorAt> tensors;
  size_t meta_len_at = 0, meta_at = 0, crc_at = 0;
};

Layout parse_layout(const std::string& b) {
  Layout l;
  const uint32_t elem = get_le<uint32_t>(b, 12);
  l.count_at = l.arch_at + get_le<uint64_t>(b, l.arch_len_at);
  size_t at = l.count_at + 4;
  const uint32_t count = get_le<uint32_t>(b, l.count_at);
  for (uint32_t i = 0; i < count; ++i) {
    Layout::TensorAt t;
    t.name_len_at = at;
    const uint32_t name_len = get_le<uint32_t>(b, at);
    t.name = b.substr(at + 4, name_len);
    t.rank_at = at + 4 + name_len;
    const uint32_t rank = get_le<uint32_t>(b, t.rank_at);
    t.dims_at = t.rank_at + 4;
    uint64_t n = 1;
    for (uint32_t d = 0; d < rank; ++d) n *= uint64_t(get_le<int64_t>(b, t.dims_at + 8 * d));
    t.data_at = t.dims_at + 8 * rank;
    t.data_bytes = size_t(n) * elem;
    at = t.data_at + t.data_bytes;
    l.tensors.push_back(t);
  }
  l.meta_len_at = at;
  l.meta_at = at + 8;
  l.crc_at = l.meta_at + get_le<uint64_t>(b, l.meta_len_at);
  return l;
}

// A small network holding every kind of stored tensor (weights, biases, batch-norm statistics), so
// that damaging each of its bytes in turn stays cheap.
Network<float> small_net() {
  Network<float> net({4}, 3);
  net.emplace<Dense<float>>(3);
  net.emplace<BatchNorm<float>>();
  net.emplace<ActivationLayer<float>>(Activation::kRelu);
  net.emplace<Dense<float>>(2);
  const Tensor<float> x = random_batch<float>(8, {4}, 9);
  net.forward(x, Mode::kTrain);  // moves the running statistics
  return net;
}

const Metadata kMeta = {{"dataset", "fashion-mnist"}, {"test_accuracy", "0.8765"}};

// Loading `path` must fail with a FileError that names the file; returns the message.
template <class T = float>
std::string load_error(const std::string& path) {
  try {
    load_model<T>(path);
  } catch (const FileError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK_THAT(msg, Contains(path));
    return msg;
  }
  FAIL("loading '" << path << "' succeeded; expected a FileError");
  return "";
}

bool says_truncated_or_corrupted(const std::string& msg) {
  return msg.find("truncated") != std::string::npos || msg.find("corrupted") != std::string::npos;
}

}  // namespace

// --- Round trips ---------------------------------------------------------------------------------

TEST_CASE("model file: a saved file follows the documented format", "[model_file]") {
  TempDir dir("format");
  Network<float> net = small_net();
  save_model(net, dir.file("m.bpk"), kMeta);
  const std::string b = read_bytes(dir.file("m.bpk"));

  REQUIRE(b.size() > 32);
  CHECK(b.substr(0, 8) == "BPKITMDL");
  CHECK(get_le<uint32_t>(b, 8) == kModelFormatVersion);
  CHECK(get_le<uint32_t>(b, 12) == 4u);
  const Layout l = parse_layout(b);
  const std::string arch = b.substr(l.arch_at, l.count_at - l.arch_at);
  CHECK(arch.rfind("input 4\nseed 3\ndense name=dense1 ", 0) == 0);
  CHECK_THAT(arch, Contains("\nbatchnorm name=batchnorm2 "));
  // dense1: weight, bias; batchnorm2: gamma, beta, running mean, running var; dense4: weight, bias.
  CHECK(l.tensors.size() == stored_tensors(net).size());
  CHECK(l.tensors.size() == 8);
  CHECK(b.substr(l.meta_at, l.crc_at - l.meta_at) ==
        "dataset=fashion-mnist\ntest_accuracy=0.8765\n");
  REQUIRE(l.crc_at + 4 == b.size());
  CHECK(get_le<uint32_t>(b, l.crc_at) == crc32_of(b, b.size() - 4));
}

TEST_CASE("model file: reference networks load back bit-identical after training", "[model_file]") {
  const std::string name = GENERATE(as<std::string>(), "mlp", "cnn", "mlp_bn");
  INFO("reference network " << name);
  TempDir dir("roundtrip-" + name);
  Network<float> net = make_reference_net(name, 42);
  train_a_little(net);
  if (name == "mlp_bn") REQUIRE(has_trained_running_stats(net));

  const std::string path = dir.file(name + ".bpk");
  save_model(net, path, kMeta);
  LoadedModel<float> m = load_model<float>(path);
  require_same_network(net, m.net);
  require_same_inference(net, m.net, 77);
  CHECK(m.meta == kMeta);
}

TEST_CASE("model file: a double-precision network with custom layer names round-trips",
          "[model_file]") {
  TempDir dir("double");
  Network<double> net({3, 6, 6}, 11);
  Attrs conv;
  conv.set("filters", 4).set("kernel", 3).set("stride", 1).set("padding", 1).set("init", "glorot");
  net.add(make_layer<double>("conv2d", conv), "stem");
  net.add(make_layer<double>("batchnorm", Attrs().set("momentum", 0.3).set("eps", 1e-3)),
          "stem_bn");
  net.emplace<ActivationLayer<double>>(Activation::kLeakyRelu, 0.2);
  net.emplace<Pool2d<double>>(PoolKind::kAverage, 2);
  net.emplace<Reshape<double>>();
  net.add(std::make_unique<Dense<double>>(5, 36, Init::kGlorot, false), "hidden");
  net.emplace<ActivationLayer<double>>(Activation::kTanh);
  net.emplace<Dropout<double>>(0.25);
  net.add(std::make_unique<Dense<double>>(3), "classifier");

  // A few training steps in double precision (fit() trains float networks only).
  const Tensor<double> x = random_batch<double>(6, {3, 6, 6}, 13);
  Targets<double> t;
  t.values = Tensor<double>({6, 3}, 0.5);
  MeanSquaredError<double> mse;
  Sgd<double> opt(net.params(), 0.05, 0.9);
  Tensor<double> grad;
  for (int step = 0; step < 3; ++step) {
    mse.compute(net.forward(x, Mode::kTrain), t, grad);
    net.zero_grad();
    net.backward(grad);
    opt.step();
  }
  REQUIRE(has_trained_running_stats(net));

  const std::string path = dir.file("double.bpk");
  const Metadata meta = {{"note", "value with spaces, = signs and ümlauts"}, {"empty", ""}};
  save_model(net, path, meta);
  CHECK(get_le<uint32_t>(read_bytes(path), 12) == 8u);
  LoadedModel<double> m = load_model<double>(path);
  require_same_network(net, m.net);
  require_same_inference(net, m.net, 17);
  CHECK(m.meta == meta);
  CHECK(m.net.layer(0).name() == "stem");
  CHECK(m.net.layer(1).name() == "stem_bn");
  CHECK(m.net.layer(2).name() == "leaky_relu3");
  CHECK(m.net.layer(5).name() == "hidden");
  CHECK(m.net.layer(8).name() == "classifier");

  SECTION("loading it as float rounds every value to float") {
    LoadedModel<float> f = load_model<float>(path);
    auto want = stored_tensors(net);
    auto got = stored_tensors(f.net);
    REQUIRE(want.size() == got.size());
    for (size_t k = 0; k < want.size(); ++k)
      for (int64_t i = 0; i < want[k].second->size(); ++i)
        REQUIRE((*got[k].second)[i] == float((*want[k].second)[i]));
  }
}

TEST_CASE("model file: every layer kind keeps its attributes", "[model_file]") {
  TempDir dir("attrs");
  Network<float> net({2, 8, 8}, 5);
  net.emplace<Conv2d<float>>(3, 3, 2, 1, Init::kGlorot);  // [3,4,4]
  net.emplace<Pool2d<float>>(PoolKind::kMax, 2, 1);       // [3,3,3]
  net.emplace<BatchNorm<float>>(0.3, 1e-3);
  net.emplace<ActivationLayer<float>>(Activation::kSigmoid);
  net.emplace<Reshape<float>>(Shape{3, 9, 1});
  net.emplace<Reshape<float>>();
  net.emplace<Dense<float>>(6, 27, Init::kGlorot, false);
  net.emplace<ActivationLayer<float>>(Activation::kLeakyRelu, 0.05);
  net.emplace<Dropout<float>>(0.4);
  net.emplace<Dense<float>>(4);
  net.emplace<ActivationLayer<float>>(Activation::kTanh);
  net.emplace<ActivationLayer<float>>(Activation::kRelu);
  net.emplace<ActivationLayer<float>>(Activation::kSoftmax);

  save_model(net, dir.file("all.bpk"));
  LoadedModel<float> m = load_model<float>(dir.file("all.bpk"));
  require_same_network(net, m.net);
  require_same_inference(net, m.net, 3);
  CHECK(m.meta.empty());
  CHECK(m.net.layer(4).attrs().get_string("shape", "") == "3,9,1");
  CHECK(m.net.layer(7).attrs().get_double("slope", 0) == 0.05);
  CHECK(m.net.layer(8).attrs().get_double("p", 0) == 0.4);
}

TEST_CASE("model file: metadata that the format cannot hold is refused", "[model_file]") {
  TempDir dir("meta");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path, kMeta);
  const std::string before = read_bytes(path);

  const Metadata bad = GENERATE(Metadata{{"a=b", "1"}}, Metadata{{"key", "two\nlines"}},
                                Metadata{{"new\nline", "1"}});
  REQUIRE_THROWS_AS(save_model(net, path, bad), FileError);
  // Validation happens before anything is written: the old file is intact.
  CHECK(read_bytes(path) == before);
  CHECK(dir.list() == std::vector<std::string>{"m.bpk"});
}

// --- Damaged and foreign files -------------------------------------------------------------------

TEST_CASE("model file: a file cut at any offset is reported as truncated", "[model_file]") {
  TempDir dir("truncated");
  Network<float> net = small_net();
  const std::string good = dir.file("good.bpk");
  save_model(net, good, kMeta);
  const std::string b = read_bytes(good);
  const std::string cut = dir.file("cut.bpk");
  for (size_t n = 0; n < b.size(); ++n) {
    write_bytes(cut, b.substr(0, n));
    INFO("file cut to " << n << " of " << b.size() << " bytes");
    const std::string msg = load_error(cut);
    INFO(msg);
    REQUIRE(says_truncated_or_corrupted(msg));
  }
}

TEST_CASE("model file: a large model cut inside each section is reported as truncated",
          "[model_file]") {
  TempDir dir("truncated-large");
  Network<float> net = make_reference_net("mlp_bn", 1);
  const std::string good = dir.file("good.bpk");
  save_model(net, good, kMeta);
  const std::string b = read_bytes(good);
  const Layout l = parse_layout(b);
  const std::vector<size_t> cuts = {
      4,                                                       // inside the magic
      10,                                                      // inside the version
      20,                                                      // inside the architecture length
      l.arch_at + 10,                                          // inside the architecture
      l.tensors[0].data_at + 1000,                             // inside the first tensor's data
      l.tensors.back().data_at + l.tensors.back().data_bytes,  // before the metadata
      l.meta_at + 5,                                           // inside the metadata
      b.size() - 2};                                           // inside the checksum
  const std::string cut = dir.file("cut.bpk");
  for (size_t n : cuts) {
    write_bytes(cut, b.substr(0, n));
    INFO("file cut to " << n << " of " << b.size() << " bytes");
    const std::string msg = load_error(cut);
    INFO(msg);
    CHECK(says_truncated_or_corrupted(msg));
  }
}

TEST_CASE("model file: a flipped byte anywhere is detected", "[model_file]") {
  TempDir dir("flip");
  Network<float> net = small_net();
  const std::string good = dir.file("good.bpk");
  save_model(net, good, kMeta);
  const std::string b = read_bytes(good);
  const Layout l = parse_layout(b);
  const std::string bad = dir.file("bad.bpk");

  SECTION("in tensor data: checksum mismatch") {
    for (const auto& t : l.tensors) {
      std::string c = b;
      c[t.data_at + t.data_bytes / 2] ^= 0x01;
      write_bytes(bad, c);
      INFO("tensor " << t.name);
      CHECK_THAT(load_error(bad), Contains("checksum mismatch"));
    }
  }
  SECTION("in the architecture or the metadata: checksum mismatch") {
    for (size_t at : {l.arch_at + 3, l.meta_at + 2}) {
      std::string c = b;
      c[at] ^= 0x20;
      write_bytes(bad, c);
      CHECK_THAT(load_error(bad), Contains("checksum mismatch"));
    }
  }
  SECTION("at every offset: a FileError, never a crash or a successful load") {
    for (size_t at = 0; at < b.size(); ++at) {
      std::string c = b;
      c[at] ^= 0xFF;
      write_bytes(bad, c);
      INFO("byte " << at << " flipped");
      load_error(bad);
    }
  }
}

TEST_CASE("model file: a foreign file is not a bpkit model", "[model_file]") {
  TempDir dir("foreign");
  const std::vector<std::string> foreign = {
      std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0", 29),
      "hello, this is a plain text file and not a model\n",
      std::string("BPKITMDX\x01\0\0\0\x04\0\0\0", 16)};
  const std::string path = dir.file("foreign.bpk");
  for (const std::string& contents : foreign) {
    write_bytes(path, contents);
    CHECK_THAT(load_error(path), Contains("not a bpkit model"));
  }
}

TEST_CASE("model file: a newer format version is refused by name", "[model_file]") {
  TempDir dir("version");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path);
  std::string b = read_bytes(path);
  put_le<uint32_t>(b, 8, 99);
  const bool fixed = GENERATE(true, false);
  if (fixed) fix_checksum(b);
  write_bytes(path, b);
  const std::string msg = load_error(path);
  CHECK_THAT(msg, Contains("newer"));
  CHECK_THAT(msg, Contains("99"));

  put_le<uint32_t>(b, 8, 0);
  fix_checksum(b);
  write_bytes(path, b);
  CHECK_THAT(load_error(path), Contains("version 0"));
}

TEST_CASE("model file: a missing file or a directory is reported with its path", "[model_file]") {
  TempDir dir("missing");
  CHECK_THAT(load_error(dir.file("no-such-model.bpk")), Contains("No such file"));
  CHECK_THAT(load_error<double>(dir.path()), Contains("not a regular file"));
}

TEST_CASE("model file: absurd length fields fail without allocating them", "[model_file]") {
  // Each case damages one length with a valid checksum, so only the bounds check can catch it.
  // (Under AddressSanitizer, an attempt to allocate 2^60 bytes would abort the test.)
  TempDir dir("lengths");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path, kMeta);
  const std::string b = read_bytes(path);
  const Layout l = parse_layout(b);
  const uint64_t huge = uint64_t(1) << 60;

  std::string c = b;
  SECTION("architecture length") {
    put_le<uint64_t>(c, l.arch_len_at, huge);
  }
  SECTION("metadata length") {
    put_le<uint64_t>(c, l.meta_len_at, huge);
  }
  SECTION("tensor name length") {
    put_le<uint32_t>(c, l.tensors[1].name_len_at, 0xFFFFFFFFu);
  }
  SECTION("tensor count") {
    put_le<uint32_t>(c, l.count_at, 0xFFFFFFFFu);
  }
  SECTION("tensor dimension") {
    put_le<int64_t>(c, l.tensors[0].dims_at, int64_t(huge));
  }
  SECTION("tensor dimensions whose product overflows") {
    put_le<uint32_t>(c, l.tensors[0].rank_at, 2);
    put_le<int64_t>(c, l.tensors[0].dims_at, int64_t(1) << 32);
    put_le<int64_t>(c, l.tensors[0].dims_at + 8, int64_t(1) << 32);
  }
  SECTION("negative tensor dimension") {
    put_le<int64_t>(c, l.tensors[0].dims_at, -3);
  }
  SECTION("tensor rank") {
    put_le<uint32_t>(c, l.tensors[0].rank_at, 0x7FFFFFFFu);
  }
  fix_checksum(c);
  write_bytes(path, c);
  const std::string msg = load_error(path);
  INFO(msg);
  CHECK((says_truncated_or_corrupted(msg) ||
         msg.find("impossible dimension") != std::string::npos ||
         msg.find("rank") != std::string::npos));
}

TEST_CASE("model file: a consistent file that disagrees with its architecture is refused",
          "[model_file]") {
  TempDir dir("arch");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path);
  const std::string b = read_bytes(path);
  const Layout l = parse_layout(b);
  const std::string arch = b.substr(l.arch_at, l.count_at - l.arch_at);

  // Replaces the architecture text and fixes its length and the checksum.
  auto with_arch = [&](const std::string& new_arch) {
    std::string c = b.substr(0, l.arch_len_at);
    c.append(8, '\0');
    put_le<uint64_t>(c, l.arch_len_at, new_arch.size());
    c += new_arch + b.substr(l.count_at);
    fix_checksum(c);
    return c;
  };

  SECTION("unknown layer kind") {
    std::string a = arch;
    a.replace(a.find("relu name="), 4, "gelu");
    write_bytes(path, with_arch(a));
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("architecture line 5"));
    CHECK_THAT(msg, Contains("unknown layer kind 'gelu'"));
  }
  SECTION("a layer that does not fit the one before it") {
    std::string a = arch;
    a.replace(a.find("dense name=dense4 units=2 in=3"), 30, "dense name=dense4 units=2 in=5");
    write_bytes(path, with_arch(a));
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("architecture line 6"));
    CHECK_THAT(msg, Contains("'dense4'"));
    CHECK_THAT(msg, Contains("[3]"));
    CHECK_THAT(msg, Contains("[5]"));
  }
  SECTION("a seed or input shape that is not a number") {
    std::string a = arch;
    const size_t at = a.find("seed ");
    a.replace(at, a.find('\n', at) - at, "seed abc");
    write_bytes(path, with_arch(a));
    CHECK_THAT(load_error(path), Contains("bad seed 'abc'"));
    a = arch;
    a.replace(0, a.find('\n'), "input 99999999999999999999");
    write_bytes(path, with_arch(a));
    CHECK_THAT(load_error(path), Contains("bad input shape"));
  }
  SECTION("a layer too large to exist") {
    // A few bytes must not make the reader allocate terabytes (or overflow a shape product).
    std::string a = arch;
    a.replace(a.find("dense name=dense4 units=2"), 25, "dense name=dense4 units=999999999999999");
    write_bytes(path, with_arch(a));
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("architecture line 6"));
    CHECK_THAT(msg, Contains("layer 'dense4' (dense): attribute 'units' must be an integer in "
                             "1..2147483647, got '999999999999999'"));
  }
  SECTION("a classifier wider than its stored weights") {
    std::string a = arch;
    a.replace(a.find("dense name=dense4 units=2"), 25, "dense name=dense4 units=5");
    write_bytes(path, with_arch(a));
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("'dense4.weight'"));
    CHECK_THAT(msg, Contains("[3,2]"));
    CHECK_THAT(msg, Contains("[3,5]"));
  }
  SECTION("a stored tensor whose name no layer uses") {
    std::string c = b;
    const auto& t = l.tensors[0];
    c[t.rank_at - 1] = 'X';  // last character of the name: "dense1.weigh" + 'X'
    fix_checksum(c);
    write_bytes(path, c);
    CHECK_THAT(load_error(path), Contains("is missing"));
  }
  SECTION("no input line") {
    write_bytes(path, with_arch(arch.substr(arch.find('\n') + 1)));
    CHECK_THAT(load_error(path), Contains("lacks 'input'"));
  }
}

// --- Atomic writes -------------------------------------------------------------------------------

TEST_CASE("model file: saving over an existing file replaces it and leaves no temporary files",
          "[model_file]") {
  TempDir dir("atomic");
  const std::string path = dir.file("model.bpk");
  Network<float> first = make_reference_net("mlp", 1);
  Network<float> second = make_reference_net("mlp", 2);
  save_model(first, path, {{"which", "first"}});
  save_model(second, path, {{"which", "second"}});
  CHECK(dir.list() == std::vector<std::string>{"model.bpk"});
  LoadedModel<float> m = load_model<float>(path);
  CHECK(m.meta == Metadata{{"which", "second"}});
  require_same_network(second, m.net);
}

TEST_CASE("model file: saving into a missing directory is a FileError naming the path",
          "[model_file]") {
  TempDir dir("nodir");
  Network<float> net = small_net();
  const std::string path = dir.file("no/such/dir/model.bpk");
  try {
    save_model(net, path);
    FAIL("saving into a missing directory succeeded");
  } catch (const FileError& e) {
    CHECK_THAT(e.what(), Contains(path));
  }
  CHECK(dir.list().empty());
}

TEST_CASE("model file: a save that cannot replace its target cleans up its temporary file",
          "[model_file]") {
  TempDir dir("replace");
  Network<float> net = small_net();
  const std::string path = dir.file("model.bpk");
  std::filesystem::create_directory(path);  // rename(2) of a file over a directory fails
  try {
    save_model(net, path);
    FAIL("saving over a directory succeeded");
  } catch (const FileError& e) {
    CHECK_THAT(e.what(), Contains(path));
  }
  CHECK(dir.list() == std::vector<std::string>{"model.bpk"});
}

TEST_CASE("atomic writes: threads writing one path never share a temporary file", "[model_file]") {
  TempDir dir("concurrent");
  const std::string path = dir.file("shared.bin");
  constexpr int kThreads = 4, kWrites = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      // Each writer's content is its own letter repeated: a reader can tell a torn file.
      const std::string bytes(4096 + 512 * size_t(t), char('a' + t));
      for (int k = 0; k < kWrites; ++k) {
        try {
          write_file_atomically(path, bytes);
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  for (auto& th : threads) th.join();
  CHECK(failures == 0);
  std::ifstream in(path, std::ios::binary);
  const std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(!got.empty());
  const int t = got[0] - 'a';
  REQUIRE(t >= 0);
  REQUIRE(t < kThreads);
  CHECK(got == std::string(4096 + 512 * size_t(t), got[0]));
  CHECK(dir.list() == std::vector<std::string>{"shared.bin"});  // no temporary file left
}

TEST_CASE("atomic writes: the new file's permissions follow the umask", "[model_file]") {
  TempDir dir("umask");
  const mode_t old = ::umask(077);
  write_file_atomically(dir.file("private.bin"), "secret");
  ::umask(022);
  write_file_atomically(dir.file("shared.bin"), "public");
  ::umask(old);
  struct stat a {
  }, b{};
  REQUIRE(::stat(dir.file("private.bin").c_str(), &a) == 0);
  REQUIRE(::stat(dir.file("shared.bin").c_str(), &b) == 0);
  CHECK((a.st_mode & 0777) == 0600);
  CHECK((b.st_mode & 0777) == 0644);
}

TEST_CASE("model file: a tensor stored twice under one name is refused", "[model_file]") {
  // The file stays well-formed (count, lengths and checksum agree): only the name check sees it.
  TempDir dir("twice");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path, kMeta);
  std::string b = read_bytes(path);
  const Layout l = parse_layout(b);
  const Layout::TensorAt& t = l.tensors[0];
  const std::string record = b.substr(t.name_len_at, t.data_at + t.data_bytes - t.name_len_at);
  b.insert(l.tensors[1].name_len_at, record);  // the first tensor again, right after itself
  put_le<uint32_t>(b, l.count_at, uint32_t(l.tensors.size() + 1));
  fix_checksum(b);
  write_bytes(path, b);
  CHECK_THAT(load_error(path), Contains("'" + t.name + "' appears twice"));
}

// --- Hostile architectures: sizes a file declares but cannot hold -------------------------------

namespace {

// A complete, well-formed model file (valid checksum) with the given architecture text and
// float tensors, built byte by byte as model_file.h specifies.
std::string model_bytes(const std::string& arch,
                        const std::vector<std::pair<std::string, Tensor<float>>>& tensors = {}) {
  std::string b = "BPKITMDL";
  auto put = [&b](auto v) { b.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(uint32_t(1));
  put(uint32_t(4));
  put(uint64_t(arch.size()));
  b += arch;
  put(uint32_t(tensors.size()));
  for (const auto& [name, t] : tensors) {
    put(uint32_t(name.size()));
    b += name;
    put(uint32_t(t.rank()));
    for (int d = 0; d < t.rank(); ++d) put(int64_t(t.dim(d)));
    b.append(reinterpret_cast<const char*>(t.data()), sizeof(float) * size_t(t.size()));
  }
  put(uint64_t(0));
  put(uint32_t(0));
  fix_checksum(b);
  return b;
}

}  // namespace

TEST_CASE("model file: a tiny file declaring a huge layer is refused before anything is allocated",
          "[model_file]") {
  // A hundred bytes declaring a dense layer of 10^10 (or 2^40) weights: the loader compares the
  // declared parameter shapes with the stored tensors first. Building the layer first would ask
  // for 80 GB (8 TiB), and fail late or not at all under overcommit; "architecture line 3" says
  // the check ran before the layer was built.
  TempDir dir("huge");
  const std::string path = dir.file("huge.bpk");
  std::string arch, want;
  SECTION("10^10 weights, no tensor stored") {
    arch = "input 100000\nseed 1\ndense name=big units=100000 in=-1 init=he bias=1\n";
    want = "needs tensor 'big.weight' of shape [100000,100000], which is missing";
  }
  SECTION("2^40 weights, no tensor stored") {
    arch = "input 1048576\nseed 1\ndense name=big units=1048576\n";
    want = "needs tensor 'big.weight' of shape [1048576,1048576], which is missing";
  }
  SECTION("10^10 weights, a small tensor stored under the name") {
    arch = "input 100000\nseed 1\ndense name=big units=100000 bias=0\n";
    write_bytes(path, model_bytes(arch, {{"big.weight", Tensor<float>({2, 3})}}));
    want = "tensor 'big.weight' has shape [2,3], layer 'big' (dense) needs [100000,100000]";
  }
  SECTION("a convolution and a recurrent layer") {
    arch = "input 65536,8,8\nseed 1\nconv2d name=c filters=65536 kernel=3\n";
    want = "needs tensor 'c.weight' of shape [65536,65536,3,3]";
    SECTION("lstm") {
      arch = "input -1,1000000\nseed 1\nlstm name=r units=1000000 bidirectional=1\n";
      want = "needs tensor 'r.weight_ih' of shape [1000000,8000000]";
    }
  }
  if (!std::filesystem::exists(path)) write_bytes(path, model_bytes(arch));
  CHECK(read_bytes(path).size() < 200);
  const auto start = std::chrono::steady_clock::now();
  const std::string msg = load_error(path);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 1.0);
  CHECK_THAT(msg, Contains("architecture line 3"));
  CHECK_THAT(msg, Contains(want));
}

TEST_CASE("model file: layer attributes out of range are errors naming the layer and attribute",
          "[model_file]") {
  // Overflow values (2^31, 2^62, beyond 64 bits) and negative ones are refused, never clamped or
  // wrapped, before any shape arithmetic uses them.
  TempDir dir("range");
  const std::string path = dir.file("range.bpk");
  struct Case {
    const char* input;
    const char* layer;
    const char* want;
  };
  const Case cases[] = {
      {"4", "dense name=fc units=2147483648",
       "layer 'fc' (dense): attribute 'units' must be an integer in 1..2147483647, got "
       "'2147483648'"},
      {"4", "dense name=fc units=4611686018427387904", "attribute 'units' must be an integer in"},
      {"4", "dense name=fc units=-3", "layer 'fc' (dense): attribute 'units'"},
      {"4", "dense name=fc units=99999999999999999999",
       "layer 'fc' (dense): attribute 'units' is out of range"},
      {"4", "dense name=fc units=4 in=-2", "layer 'fc' (dense): attribute 'in'"},
      {"4", "dense name=fc units=4 bias=2", "layer 'fc' (dense): attribute 'bias'"},
      {"1,8,8", "conv2d name=c filters=2 kernel=3 padding=4611686018427387904",
       "layer 'c' (conv2d): attribute 'padding'"},
      {"1,8,8", "conv2d name=c filters=2 kernel=2147483648",
       "layer 'c' (conv2d): attribute 'kernel'"},
      {"1,8,8", "conv2d name=c filters=-1 kernel=3", "layer 'c' (conv2d): attribute 'filters'"},
      {"1,8,8", "conv2d name=c filters=2 kernel=3 stride=-9223372036854775808",
       "layer 'c' (conv2d): attribute 'stride'"},
      {"1,8,8", "maxpool2d name=p kernel=2 stride=4611686018427387904",
       "layer 'p' (maxpool2d): attribute 'stride'"},
      {"1,8,8", "avgpool2d name=p kernel=2 kernel_w=-5",
       "layer 'p' (avgpool2d): attribute 'kernel_w'"},
      {"5,3", "lstm name=r units=4611686018427387904", "layer 'r' (lstm): attribute 'units'"},
      {"5,3", "gru name=r units=4 bptt=-1", "layer 'r' (gru): attribute 'bptt'"},
      {"5,3", "frame_dense name=o units=2147483648", "layer 'o' (frame_dense): attribute 'units'"},
      {"4", "fixed_point name=f units=4 max_iter=2147483648",
       "layer 'f' (fixed_point): attribute 'max_iter'"},
      {"12", "reshape name=s shape=3,2147483648", "layer 's' (reshape): attribute 'shape'"},
  };
  for (const Case& c : cases) {
    INFO(c.layer);
    write_bytes(path, model_bytes(std::string("input ") + c.input + "\nseed 1\n" + c.layer + "\n"));
    const std::string msg = load_error(path);
    CHECK_THAT(msg, Contains("architecture line 3"));
    CHECK_THAT(msg, Contains(c.want));
  }
  // Input shapes: each dimension fits 32 bits, their product 2^40.
  write_bytes(path, model_bytes("input 2147483648\nseed 1\nrelu name=a\n"));
  CHECK_THAT(load_error(path), Contains("bad input shape '2147483648'"));
  write_bytes(path, model_bytes("input 2097152,1048576\nseed 1\nrelu name=a\n"));
  CHECK_THAT(load_error(path), Contains("more than 2^40 elements"));
}

TEST_CASE("model file: what a layer would allocate is what it stores, for every parametric kind",
          "[model_file]") {
  // The loader's check before building (Layer::stored_shapes) must name and shape exactly the
  // tensors the built layer holds, or it would refuse good files or let bad ones through.
  Network<float> net({2, 6, 6}, 1);
  std::vector<Shape> inputs;
  auto add = [&](std::unique_ptr<Layer<float>> l) {
    inputs.push_back(net.output_shape());
    net.add(std::move(l));
  };
  add(std::make_unique<Conv2d<float>>(3, 3, 1, 1));
  add(std::make_unique<BatchNorm<float>>());
  add(std::make_unique<Columns<float>>());  // [6, 18]
  RecurrentOptions bidirectional;
  bidirectional.bidirectional = true;
  add(std::make_unique<Recurrent<float>>(Cell::kGru, 4, bidirectional));
  add(std::make_unique<Recurrent<float>>(Cell::kLstm, 3, RecurrentOptions{}));
  add(std::make_unique<FrameDense<float>>(5, -1, false));
  add(std::make_unique<Reshape<float>>());
  add(std::make_unique<BatchNorm<float>>());
  add(std::make_unique<FixedPoint<float>>(4, 2, FixedPointActivation::kTanh));
  add(std::make_unique<Dense<float>>(7));
  size_t checked = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    Layer<float>& l = net.layer(i);
    INFO(l.describe());
    std::vector<std::pair<std::string, Shape>> have;
    for (auto& p : l.params()) have.emplace_back(p.name, p.value->shape());
    for (auto& [n, t] : l.buffers()) have.emplace_back(n, t->shape());
    CHECK(l.stored_shapes(inputs[i]) == have);
    checked += have.size();
  }
  CHECK(checked == 23);
}

TEST_CASE("model file: NaN or infinite weights are refused at load, naming the tensor",
          "[model_file]") {
  TempDir dir("nan");
  Network<float> net = small_net();
  const std::string path = dir.file("m.bpk");
  save_model(net, path, kMeta);
  std::string b = read_bytes(path);
  const Layout l = parse_layout(b);
  SECTION("NaN in a weight") {
    put_le<float>(b, l.tensors[0].data_at + 8, std::numeric_limits<float>::quiet_NaN());
    fix_checksum(b);
    write_bytes(path, b);
    CHECK_THAT(load_error(path),
               Contains("tensor '" + l.tensors[0].name + "' holds NaN at element 2"));
  }
  SECTION("infinity in a running statistic") {
    size_t k = 0;
    while (l.tensors[k].name.find("running_var") == std::string::npos) ++k;
    put_le<float>(b, l.tensors[k].data_at, std::numeric_limits<float>::infinity());
    fix_checksum(b);
    write_bytes(path, b);
    CHECK_THAT(load_error(path),
               Contains("tensor '" + l.tensors[k].name + "' holds an infinite value at element 0"));
  }
}
