// Bad input gives errors a user can act on: mismatched shapes name the layer and both shapes,
// a diverging run stops with the epoch and batch and keeps the last good weights, and an unreadable
// dataset names its path.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <regex>
#include <string>
#include <vector>

#include "bpkit/data.h"
#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/optimizer.h"
#include "bpkit/trainer.h"
#include "bpkit/zoo.h"
#include "temp_dir.h"

using namespace bpkit;
using bpkit_test::TempDir;
using bpkit_test::write_bytes;
using Catch::Matchers::Contains;

namespace {

// Runs `f`, requires it to throw E and returns the message.
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("threw a different exception type: " << e.what());
  }
  FAIL("did not throw");
  return "";
}

}  // namespace

// --- Network construction --------------------------------------------------------------------

TEST_CASE("errors: a dense layer whose declared input does not match names both shapes",
          "[errors]") {
  Network<float> net({7}, 1);
  const std::string msg = error_of<ShapeError>(
      [&] { net.add(std::make_unique<Dense<float>>(10, /*in_features=*/5), "fc1"); });
  CHECK_THAT(msg, Contains("'fc1'"));
  CHECK_THAT(msg, Contains("[5]"));
  CHECK_THAT(msg, Contains("[7]"));

  // The failed layer was not added; the network stays usable.
  CHECK(net.size() == 0);
  net.add(std::make_unique<Dense<float>>(10, 7), "fc1");
  CHECK(net.output_shape() == Shape{10});
  CHECK(net.forward(Tensor<float>({2, 7}, 1.0f), Mode::kInfer).shape() == Shape{2, 10});
}

TEST_CASE("errors: a dense layer on an image input asks for a flatten layer", "[errors]") {
  Network<float> net({1, 28, 28}, 1);
  const std::string msg = error_of<ShapeError>([&] { net.emplace<Dense<float>>(10); });
  CHECK_THAT(msg, Contains("'dense1'"));
  CHECK_THAT(msg, Contains("[1,28,28]"));
  CHECK_THAT(msg, Contains("flatten"));
}

TEST_CASE("errors: spatial layers on inputs they cannot take", "[errors]") {
  SECTION("conv2d on a flat input") {
    Network<float> net({784}, 1);
    const std::string msg =
        error_of<ShapeError>([&] { net.add(std::make_unique<Conv2d<float>>(8, 3), "conv_a"); });
    CHECK_THAT(msg, Contains("'conv_a'"));
    CHECK_THAT(msg, Contains("[784]"));
    CHECK_THAT(msg, Contains("[channels,height,width]"));
  }
  SECTION("conv2d kernel larger than the padded input") {
    Network<float> net({1, 2, 2}, 1);
    const std::string msg = error_of<ShapeError>([&] { net.emplace<Conv2d<float>>(4, 5); });
    CHECK_THAT(msg, Contains("'conv2d1'"));
    CHECK_THAT(msg, Contains("5x5"));
    CHECK_THAT(msg, Contains("[1,2,2]"));
  }
  SECTION("pooling window larger than the input") {
    Network<float> net({3, 4, 4}, 1);
    const std::string msg =
        error_of<ShapeError>([&] { net.emplace<Pool2d<float>>(PoolKind::kMax, 5); });
    CHECK_THAT(msg, Contains("'maxpool2d1'"));
    CHECK_THAT(msg, Contains("5x5"));
    CHECK_THAT(msg, Contains("[3,4,4]"));
  }
  SECTION("pooling on a flat input") {
    Network<float> net({16}, 1);
    const std::string msg =
        error_of<ShapeError>([&] { net.emplace<Pool2d<float>>(PoolKind::kAverage, 2); });
    CHECK_THAT(msg, Contains("'avgpool2d1'"));
    CHECK_THAT(msg, Contains("[16]"));
  }
}

TEST_CASE("errors: a reshape to a different element count names both shapes", "[errors]") {
  Network<float> net({12}, 1);
  const std::string msg = error_of<ShapeError>([&] {
    net.add(std::make_unique<Reshape<float>>(Shape{5, 2}), "to_grid");
  });
  CHECK_THAT(msg, Contains("'to_grid'"));
  CHECK_THAT(msg, Contains("[12]"));
  CHECK_THAT(msg, Contains("[5,2]"));
}

TEST_CASE("errors: two layers with one name are refused", "[errors]") {
  Network<float> net({4}, 1);
  net.add(std::make_unique<Dense<float>>(4), "hidden");
  const std::string msg =
      error_of<ShapeError>([&] { net.add(std::make_unique<Dense<float>>(4), "hidden"); });
  CHECK_THAT(msg, Contains("'hidden'"));
  CHECK(net.size() == 1);
}

TEST_CASE("errors: invalid layer and network parameters", "[errors]") {
  CHECK_THROWS_AS(Network<float>({3, 0, 2}, 1), ShapeError);
  CHECK_THAT(error_of<ShapeError>([] { Dense<float>(0); }), Contains("units"));
  CHECK_THROWS_AS(Conv2d<float>(4, 0), ShapeError);
  CHECK_THROWS_AS(Pool2d<float>(PoolKind::kMax, 0), ShapeError);
  CHECK_THROWS_AS(BatchNorm<float>(1.5), ShapeError);
  CHECK_THAT(error_of<ShapeError>([] { make_reference_net("resnet", 1); }),
             Contains("unknown reference network 'resnet'"));
}

TEST_CASE("errors: forward with the wrong input shape names the expected and given shapes",
          "[errors]") {
  Network<float> net = make_reference_net("mlp", 1);
  const Tensor<float> flat({4, 784});
  const std::string msg = error_of<ShapeError>([&] { net.forward(flat, Mode::kInfer); });
  CHECK_THAT(msg, Contains("[batch,1,28,28]"));
  CHECK_THAT(msg, Contains("[4,784]"));

  Network<float> empty({3}, 1);
  CHECK_THROWS_AS(empty.forward(Tensor<float>({1, 3}), Mode::kInfer), ShapeError);
}

// --- Layer factory ---------------------------------------------------------------------------

TEST_CASE("errors: the layer factory names unknown kinds and bad attributes", "[errors]") {
  const std::string unknown =
      error_of<ShapeError>([] { make_layer<float>("nosuchlayer", Attrs()); });
  CHECK_THAT(unknown, Contains("'nosuchlayer'"));
  CHECK_THAT(unknown, Contains("known: dense, conv2d"));

  const std::string bad_int =
      error_of<ShapeError>([] { make_layer<float>("dense", Attrs().set("units", "abc")); });
  CHECK_THAT(bad_int, Contains("'units'"));
  CHECK_THAT(bad_int, Contains("'abc'"));
  CHECK_THAT(bad_int, Contains("dense"));

  const std::string bad_double =
      error_of<ShapeError>([] { make_layer<double>("dropout", Attrs().set("p", "half")); });
  CHECK_THAT(bad_double, Contains("'p'"));
  CHECK_THAT(bad_double, Contains("'half'"));

  CHECK_THAT(error_of<ShapeError>(
                 [] { make_layer<float>("dense", Attrs().set("units", 4).set("init", "xavier")); }),
             Contains("'xavier'"));
  CHECK_THAT(
      error_of<ShapeError>([] { make_layer<float>("reshape", Attrs().set("shape", "3,x")); }),
      Contains("'3,x'"));
  CHECK_THAT(error_of<ShapeError>([] { make_layer<float>("reshape", Attrs()); }),
             Contains("'shape' is required"));
  CHECK_THAT(error_of<ShapeError>([] { Attrs::parse("units=4 oops"); }), Contains("'oops'"));
}

// --- Losses ----------------------------------------------------------------------------------

TEST_CASE("errors: loss targets that do not match the outputs", "[errors]") {
  const Tensor<float> out({2, 3}, 0.5f);
  Tensor<float> grad;
  SoftmaxCrossEntropy<float> ce;
  Targets<float> t;

  t.labels = {0, 3};
  std::string msg = error_of<std::invalid_argument>([&] { ce.compute(out, t, grad); });
  CHECK_THAT(msg, Contains("label 3"));
  CHECK_THAT(msg, Contains("[0, 3)"));

  t.labels = {-1, 0};
  CHECK_THAT(error_of<std::invalid_argument>([&] { ce.compute(out, t, grad); }),
             Contains("label -1"));

  t.labels = {0};
  CHECK_THAT(error_of<std::invalid_argument>([&] { ce.compute(out, t, grad); }),
             Contains("1 labels for a batch of 2"));

  MeanSquaredError<float> mse;
  Targets<float> v;
  v.values = Tensor<float>({2, 4});
  msg = error_of<std::invalid_argument>([&] { mse.compute(out, v, grad); });
  CHECK_THAT(msg, Contains("[2,4]"));
  CHECK_THAT(msg, Contains("[2,3]"));

  CHECK_THROWS_AS(make_loss<float>("hinge"), std::invalid_argument);
}

// --- Divergence ------------------------------------------------------------------------------

namespace {

// 8-16-3, with batch normalization after the hidden layer when `bn`.
Network<float> tiny_mlp(bool bn = false) {
  Network<float> net({8}, 21);
  net.emplace<Dense<float>>(16);
  if (bn) net.emplace<BatchNorm<float>>();
  net.emplace<ActivationLayer<float>>(Activation::kRelu);
  net.emplace<Dense<float>>(3);
  return net;
}

Dataset tiny_data(int64_t n) {
  Dataset d;
  d.x = Tensor<float>({n, 8});
  Rng rng(4);
  for (float& v : d.x) v = float(rng.normal());
  for (int64_t i = 0; i < n; ++i) d.y.push_back(int32_t(rng.below(3)));
  d.classes = 3;
  return d;
}

Dataset first_samples(const Dataset& d, int64_t n) {
  Dataset p;
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  gather(d, idx.data(), n, p.x, p.y);
  p.classes = d.classes;
  return p;
}

// Parameters and buffers (batch-norm running statistics): everything a saved model holds.
std::vector<Tensor<float>> weights(Network<float>& net) {
  std::vector<Tensor<float>> w;
  for (size_t i = 0; i < net.size(); ++i) {
    for (auto& p : net.layer(i).params()) w.push_back(*p.value);
    for (auto& b : net.layer(i).buffers()) w.push_back(*b.second);
  }
  return w;
}

bool all_finite(Network<float>& net) {
  for (const Tensor<float>& t : weights(net))
    for (float v : t)
      if (!std::isfinite(v)) return false;
  return true;
}

constexpr int64_t kBatch = 16;

TrainOptions in_order(int epochs) {
  TrainOptions o;
  o.epochs = epochs;
  o.batch = kBatch;
  o.shuffle = false;
  return o;
}

// The weights that plain SGD (no momentum, so no optimizer state) reaches after `epochs` full
// epochs over `data` in order and then `batches` more batches.
std::vector<Tensor<float>> replay(const Dataset& data, double lr, int epochs, int64_t batches,
                                  bool bn = false) {
  Network<float> net = tiny_mlp(bn);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), lr);
  if (epochs > 0) fit(net, loss, opt, data, in_order(epochs));
  if (batches > 0) fit(net, loss, opt, first_samples(data, batches * kBatch), in_order(1));
  return weights(net);
}

// Runs fit until it diverges; returns the epoch and batch its message names.
std::pair<int, int64_t> diverge(Network<float>& net, const Dataset& data, double lr, int epochs) {
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), lr);
  const std::string msg =
      error_of<DivergenceError>([&] { fit(net, loss, opt, data, in_order(epochs)); });
  INFO(msg);
  std::smatch m;
  REQUIRE(std::regex_search(msg, m, std::regex("epoch (\\d+), batch (\\d+)")));
  CHECK_THAT(msg, Contains("learning rate"));
  return {std::stoi(m[1]), std::stoll(m[2])};
}

void require_same_weights(const std::vector<Tensor<float>>& a,
                          const std::vector<Tensor<float>>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t k = 0; k < a.size(); ++k) {
    INFO("parameter " << k);
    REQUIRE(a[k].shape() == b[k].shape());
    REQUIRE(std::memcmp(a[k].data(), b[k].data(), sizeof(float) * size_t(a[k].size())) == 0);
  }
}

}  // namespace

TEST_CASE("errors: an absurd learning rate stops training and keeps the last good weights",
          "[errors]") {
  const double lr = GENERATE(1e6, 1e12, 1e30);
  const bool bn = GENERATE(false, true);
  INFO("learning rate " << lr << (bn ? ", with batch normalization" : ""));
  const Dataset data = tiny_data(256);
  Network<float> net = tiny_mlp(bn);
  const auto [epoch, batch] = diverge(net, data, lr, 20);
  INFO("diverged at epoch " << epoch << ", batch " << batch);
  CHECK(all_finite(net));
  // The batch that diverged was not applied: the weights (and running statistics) are those after
  // the batch before it.
  require_same_weights(weights(net), replay(data, lr, epoch - 1, batch - 1, bn));
}

TEST_CASE("errors: a non-finite input value stops training at its batch", "[errors]") {
  // A ReLU maps NaN to 0, so a NaN input can leave the loss finite and poison only the first
  // layer's weight gradient; batch normalization updates its running statistics from the bad
  // batch before the loss is known. Neither may reach the kept model.
  const float bad =
      GENERATE(std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
               -std::numeric_limits<float>::infinity());
  const bool bn = GENERATE(false, true);
  INFO("bad value " << bad << (bn ? ", with batch normalization" : ""));
  Dataset data = tiny_data(64);
  data.x[40 * 8 + 3] = bad;  // sample 40 is in batch 3 (samples 32..47)
  Network<float> net = tiny_mlp(bn);
  const auto [epoch, batch] = diverge(net, data, 0.1, 2);
  CHECK(epoch == 1);
  CHECK(batch == 3);
  CHECK(all_finite(net));
  require_same_weights(weights(net), replay(data, 0.1, 0, 2, bn));
}

TEST_CASE("errors: a dataset with fewer labels than samples is refused", "[errors]") {
  Dataset data = tiny_data(32);
  data.y = std::vector<int32_t>(data.y.begin(), data.y.end() - 1);  // no spare capacity for ASan
  Network<float> net = tiny_mlp();
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), 0.1);
  TrainOptions o = in_order(1);
  o.validation_split = GENERATE(0.0, 0.25);  // the split must not read the missing label either
  CHECK_THAT(error_of<std::invalid_argument>([&] { fit(net, loss, opt, data, o); }),
             Contains("32 samples but 31 labels"));
}

TEST_CASE("errors: training options that cannot work are refused", "[errors]") {
  const Dataset data = tiny_data(32);
  Network<float> net = tiny_mlp();
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), 0.1);
  TrainOptions o;
  o.batch = 0;
  CHECK_THROWS_AS(fit(net, loss, opt, data, o), std::invalid_argument);
  o.batch = 8;
  o.epochs = 0;
  CHECK_THROWS_AS(fit(net, loss, opt, data, o), std::invalid_argument);
  CHECK_THROWS_AS(fit(net, loss, opt, Dataset{}, TrainOptions{}), std::invalid_argument);
}

// --- Unreadable datasets ---------------------------------------------------------------------

namespace {

std::string be32(uint32_t v) {
  return {char(v >> 24), char(v >> 16 & 0xFF), char(v >> 8 & 0xFF), char(v & 0xFF)};
}

// An IDX image file whose header says `n` images of h×w; holds `present` images' pixels.
std::string idx_images(uint32_t n, uint32_t h, uint32_t w, uint32_t present,
                       uint32_t magic = 0x803) {
  std::string s = be32(magic) + be32(n) + be32(h) + be32(w);
  for (uint32_t i = 0; i < present * h * w; ++i) s += char(i * 37 % 256);
  return s;
}

std::string idx_labels(uint32_t n, uint32_t present, uint32_t magic = 0x801) {
  std::string s = be32(magic) + be32(n);
  for (uint32_t i = 0; i < present; ++i) s += char(i % 3);
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  REQUIRE(f);
  REQUIRE(gzwrite(f, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(f) == Z_OK);
}

}  // namespace

TEST_CASE("errors: a well-formed IDX pair loads (plain and gzip)", "[errors]") {
  TempDir dir("idx-ok");
  const bool gz = GENERATE(false, true);
  const std::string ext = gz ? ".gz" : "";
  auto put = [&](const std::string& name, const std::string& bytes) {
    if (gz)
      write_gz(dir.file(name + ext), bytes);
    else
      write_bytes(dir.file(name), bytes);
  };
  put("train-images-idx3-ubyte", idx_images(5, 2, 3, 5));
  put("train-labels-idx1-ubyte", idx_labels(5, 5));
  const Dataset d = load_mnist_dir(dir.path(), "train");
  CHECK(d.x.shape() == Shape{5, 1, 2, 3});
  CHECK(d.y == std::vector<int32_t>{0, 1, 2, 0, 1});
  CHECK(d.classes == 3);
  CHECK(d.x[1] == Approx(37.0 / 255.0));
}

TEST_CASE("errors: a missing dataset directory names the path", "[errors]") {
  TempDir dir("idx-missing");
  const std::string missing = dir.file("no-such-dataset");
  const std::string msg = error_of<FileError>([&] { load_mnist_dir(missing, "train"); });
  CHECK_THAT(msg, Contains(missing));
  CHECK_THAT(msg, Contains("No such file"));
}

TEST_CASE("errors: an IDX file with a bad magic number names the path", "[errors]") {
  TempDir dir("idx-magic");
  const std::string images = dir.file("images"), labels = dir.file("labels");
  SECTION("images") {
    write_bytes(images, idx_images(2, 2, 2, 2, 0x802));
    write_bytes(labels, idx_labels(2, 2));
    const std::string msg = error_of<FileError>([&] { load_idx(images, labels); });
    CHECK_THAT(msg, Contains(images));
    CHECK_THAT(msg, Contains("not an IDX image file"));
  }
  SECTION("labels") {
    write_bytes(images, idx_images(2, 2, 2, 2));
    write_bytes(labels, idx_labels(2, 2, 0x803));
    const std::string msg = error_of<FileError>([&] { load_idx(images, labels); });
    CHECK_THAT(msg, Contains(labels));
    CHECK_THAT(msg, Contains("not an IDX label file"));
  }
  SECTION("a file shorter than the header") {
    write_bytes(images, std::string("\0\0\x08", 3));
    write_bytes(labels, idx_labels(2, 2));
    CHECK_THAT(error_of<FileError>([&] { load_idx(images, labels); }), Contains(images));
  }
}

TEST_CASE("errors: a truncated IDX image file says truncated and names the path", "[errors]") {
  TempDir dir("idx-truncated");
  const std::string images = dir.file("images"), labels = dir.file("labels");
  write_bytes(images, idx_images(10, 4, 4, 3));  // claims 10 images, holds 3
  write_bytes(labels, idx_labels(10, 10));
  const std::string msg = error_of<FileError>([&] { load_idx(images, labels); });
  CHECK_THAT(msg, Contains(images));
  CHECK_THAT(msg, Contains("truncated"));
  CHECK_THAT(msg, Contains("10 images"));
}

TEST_CASE("errors: a truncated gzip dataset names the path", "[errors]") {
  TempDir dir("idx-gz");
  const std::string images = dir.file("images.gz"), labels = dir.file("labels");
  write_gz(images, idx_images(200, 28, 28, 200));
  std::string gz = bpkit_test::read_bytes(images);
  write_bytes(images, gz.substr(0, gz.size() / 2));
  write_bytes(labels, idx_labels(200, 200));
  const std::string msg = error_of<FileError>([&] { load_idx(images, labels); });
  CHECK_THAT(msg, Contains(images));
}

TEST_CASE("errors: a label count that does not match the images names both files", "[errors]") {
  TempDir dir("idx-labels");
  const std::string images = dir.file("images"), labels = dir.file("labels");
  write_bytes(images, idx_images(3, 2, 2, 3));
  SECTION("header and contents agree, but not with the images") {
    write_bytes(labels, idx_labels(2, 2));
  }
  SECTION("header matches the images, contents are short") {
    write_bytes(labels, idx_labels(3, 2));
  }
  const std::string msg = error_of<FileError>([&] { load_idx(images, labels); });
  CHECK_THAT(msg, Contains(labels));
  CHECK_THAT(msg, Contains(images));
  CHECK_THAT(msg, Contains("3 images"));
}

TEST_CASE("errors: a missing label file names its path", "[errors]") {
  TempDir dir("idx-nolabels");
  write_bytes(dir.file("t10k-images-idx3-ubyte"), idx_images(2, 2, 2, 2));
  const std::string msg = error_of<FileError>([&] { load_mnist_dir(dir.path(), "t10k"); });
  CHECK_THAT(msg, Contains(dir.file("t10k-labels-idx1-ubyte")));
}
