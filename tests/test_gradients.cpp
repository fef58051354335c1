// Every layer's backward and gradient, and every loss's gradient, against finite differences in
// double precision (see gradcheck.h). Adding a layer means adding one line here.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>

#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"
#include "bpkit/threading.h"
#include "gradcheck.h"

using namespace bpkit;
using bpkit_test::check_layer_gradients;
using bpkit_test::check_loss_gradients;
using bpkit_test::random_tensor;

namespace {
using D = double;
template <class L, class... Args>
std::unique_ptr<Layer<D>> make(Args&&... args) {
  return std::make_unique<L>(std::forward<Args>(args)...);
}
}  // namespace

TEST_CASE("dense gradients", "[gradcheck]") {
  check_layer_gradients(make<Dense<D>>(5), {7}, 4, 1);
  check_layer_gradients(make<Dense<D>>(3, 6, Init::kGlorot, /*bias=*/false), {6}, 3, 2);
  check_layer_gradients(make<Dense<D>>(1), {2}, 1, 3);  // single sample, single unit
}

TEST_CASE("conv2d gradients", "[gradcheck]") {
  check_layer_gradients(make<Conv2d<D>>(3, 3, 1, 1), {1, 5, 5}, 2, 11);  // stride 1, pad 1
  check_layer_gradients(make<Conv2d<D>>(2, 3, 2, 0), {1, 7, 7}, 2, 12);  // stride 2, pad 0
  check_layer_gradients(make<Conv2d<D>>(4, 3, 1, 1), {2, 4, 4}, 3, 13);  // 2 input channels
  check_layer_gradients(make<Conv2d<D>>(2, 3, 1, 0), {2, 7, 5}, 2, 14);  // non-square input
  check_layer_gradients(make<Conv2d<D>>(3, 1), {2, 3, 4}, 2, 15);        // 1×1 kernel
  check_layer_gradients(make<Conv2d<D>>(2, 2, 3, 2), {1, 6, 5}, 2, 16);  // stride > kernel, pad 2
  check_layer_gradients(make<Conv2d<D>>(2, 3, 2, 1), {3, 5, 6}, 5, 17);  // more samples
  // 3×3 stride-1 kernels on 8+ channels take the Winograd path; odd and even output sizes cover
  // partial and whole 2×2 tiles.
  check_layer_gradients(make<Conv2d<D>>(3, 3, 1, 1), {8, 5, 5}, 2, 18);
  check_layer_gradients(make<Conv2d<D>>(2, 3, 1, 0), {9, 6, 5}, 3, 19);
  check_layer_gradients(make<Conv2d<D>>(2, 3, 1, 2), {8, 3, 4}, 2, 20);
  // One input channel: the weight gradient's own kernel (blocks of 4 filters × 3 patch rows, the
  // filters and patch rows left over, positions past the last full vector).
  check_layer_gradients(make<Conv2d<D>>(5, 3, 1, 1), {1, 7, 9}, 3, 26);
  check_layer_gradients(make<Conv2d<D>>(4, 2, 1, 0), {1, 6, 5}, 2, 27);
  check_layer_gradients(make<Conv2d<D>>(8, 3, 1, 1, Init::kHe, true), {1, 6, 6}, 2, 28);
  // Fused ReLU, on the im2col path and on the Winograd path.
  check_layer_gradients(make<Conv2d<D>>(3, 3, 2, 1, Init::kHe, true), {2, 6, 5}, 2, 24);
  check_layer_gradients(make<Conv2d<D>>(3, 3, 1, 1, Init::kHe, true), {8, 5, 6}, 2, 25);
}

TEST_CASE("maxpool2d gradients", "[gradcheck]") {
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kMax, 2), {2, 4, 4}, 2, 21);
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kMax, 3, 2), {1, 7, 5}, 2, 22);  // overlap
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kMax, 2), {1, 5, 5}, 2, 23);     // odd size
}

// Ties are not differentiable, so finite differences cannot check them; the contract is that each
// window's gradient goes to exactly one input, the first maximum in row-major order. Ties are
// common in practice: a window of ReLU outputs that are all zero.
template <class T>
void check_maxpool_ties() {
  Network<T> net({1, 2, 6}, 1);
  net.template emplace<Pool2d<T>>(PoolKind::kMax, 2);
  // Windows (2×2, stride 2): all zero → (0,0); max 3 at (0,3) and (1,2) → (0,3);
  // max −0.5 at (1,4) and (1,5) → (1,4).
  const T in[12] = {0, 0, 1, 3, -1, -2, 0, 0, 3, 2, T(-0.5), T(-0.5)};
  Tensor<T> x({1, 1, 2, 6});
  std::copy(in, in + 12, x.begin());
  const Tensor<T>& y = net.forward(x, Mode::kTrain);
  REQUIRE(y.size() == 3);
  CHECK(y[0] == 0);
  CHECK(y[1] == 3);
  CHECK(y[2] == T(-0.5));
  Tensor<T> dy({1, 1, 1, 3}), dx;
  dy[0] = 5;
  dy[1] = 7;
  dy[2] = 9;
  net.backward(dy, &dx);
  const T expected[12] = {5, 0, 0, 7, 0, 0, 0, 0, 0, 0, 9, 0};
  for (int i = 0; i < 12; ++i) {
    CAPTURE(i);
    CHECK(dx[i] == expected[i]);
  }
}

TEST_CASE("maxpool2d sends a tied window's gradient to its first maximum", "[gradcheck]") {
  check_maxpool_ties<double>();
  check_maxpool_ties<float>();
}

TEST_CASE("avgpool2d gradients", "[gradcheck]") {
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kAverage, 2), {2, 4, 4}, 2, 31);
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kAverage, 3, 2), {1, 7, 5}, 2, 32);  // overlap
  check_layer_gradients(make<Pool2d<D>>(PoolKind::kAverage, 2, 3), {2, 8, 7}, 2, 33);  // gaps
}

TEST_CASE("dropout gradients", "[gradcheck]") {
  check_layer_gradients(make<Dropout<D>>(0.5), {20}, 3, 41);
  check_layer_gradients(make<Dropout<D>>(0.2), {2, 3, 3}, 2, 42);
}

TEST_CASE("batchnorm gradients", "[gradcheck]") {
  check_layer_gradients(make<BatchNorm<D>>(), {6}, 5, 51);           // flat [F]
  check_layer_gradients(make<BatchNorm<D>>(), {3, 4, 5}, 2, 52);     // [C,H,W]
  check_layer_gradients(make<BatchNorm<D>>(0.1, 1e-3), {2}, 2, 53);  // the smallest batch
}

// Inverted dropout: in training each unit is dropped with probability p and the kept ones are
// scaled by 1/(1-p), so the expected output is the input; inference passes the input unchanged.
TEST_CASE("dropout keeps the expected value: kept units scaled by 1/(1-p)", "[layers]") {
  for (const double p : {0.2, 0.5}) {
    CAPTURE(p);
    Network<D> net({4000}, 3);
    net.emplace<Dropout<D>>(p);
    const Tensor<D> x({1, 4000}, D(3));
    const Tensor<D> y = net.forward(x, Mode::kTrain);
    int64_t kept = 0;
    double sum = 0;
    for (int64_t i = 0; i < y.size(); ++i) {
      if (y[i] != 0) {
        if (std::fabs(y[i] - 3 / (1 - p)) > 1e-12) FAIL("kept unit " << i << " is " << y[i]);
        ++kept;
      }
      sum += y[i];
    }
    CHECK(double(kept) / 4000 == Approx(1 - p).margin(0.03));
    CHECK(sum / 4000 == Approx(3).margin(0.15));
    const Tensor<D>& z = net.forward(x, Mode::kInfer);
    CHECK(std::all_of(z.data(), z.data() + z.size(), [](D v) { return v == 3; }));
  }
}

// Running statistics by hand: momentum 0.1, the unbiased batch variance (torch's convention),
// after one batch and after two, and the inference output they give.
TEST_CASE("batchnorm running statistics follow momentum and the unbiased variance", "[layers]") {
  Network<D> net({2}, 1);
  net.emplace<BatchNorm<D>>(0.1, 1e-5);
  auto stat = [&](const char* which) {
    for (auto& [name, t] : net.layer(0).buffers())
      if (name.find(which) != std::string::npos) return *t;
    FAIL("no buffer " << which);
    return Tensor<D>();
  };
  // Batch 1: channel 0 is {1, 2, 3, 6} (mean 3, squares about it 14, unbiased 14/3), channel 1 is
  // {-2, 0, 2, 4} (mean 1, squares 20, unbiased 20/3).
  Tensor<D> x1({4, 2});
  const D a[8] = {1, -2, 2, 0, 3, 2, 6, 4};
  std::copy(a, a + 8, x1.data());
  net.forward(x1, Mode::kTrain);
  D m0 = 0.1 * 3, m1 = 0.1 * 1, v0 = 0.9 + 0.1 * 14.0 / 3, v1 = 0.9 + 0.1 * 20.0 / 3;
  CHECK(stat("running_mean")[0] == Approx(m0).epsilon(1e-12));
  CHECK(stat("running_mean")[1] == Approx(m1).epsilon(1e-12));
  CHECK(stat("running_var")[0] == Approx(v0).epsilon(1e-12));
  CHECK(stat("running_var")[1] == Approx(v1).epsilon(1e-12));
  // Batch 2: channel 0 is {0, 0, 4} (mean 4/3, squares 32/3, unbiased 16/3), channel 1 {5, 5, 5}.
  Tensor<D> x2({3, 2});
  const D b[6] = {0, 5, 0, 5, 4, 5};
  std::copy(b, b + 6, x2.data());
  net.forward(x2, Mode::kTrain);
  m0 = 0.9 * m0 + 0.1 * 4.0 / 3;
  m1 = 0.9 * m1 + 0.1 * 5;
  v0 = 0.9 * v0 + 0.1 * 16.0 / 3;
  v1 = 0.9 * v1;
  CHECK(stat("running_mean")[0] == Approx(m0).epsilon(1e-12));
  CHECK(stat("running_mean")[1] == Approx(m1).epsilon(1e-12));
  CHECK(stat("running_var")[0] == Approx(v0).epsilon(1e-12));
  CHECK(stat("running_var")[1] == Approx(v1).epsilon(1e-12));
  // Inference normalizes with them (gamma 1, beta 0 as initialized).
  Tensor<D> q({1, 2});
  q[0] = 2;
  q[1] = -1;
  const Tensor<D>& y = net.forward(q, Mode::kInfer);
  CHECK(y[0] == Approx((2 - m0) / std::sqrt(v0 + 1e-5)).epsilon(1e-12));
  CHECK(y[1] == Approx((-1 - m1) / std::sqrt(v1 + 1e-5)).epsilon(1e-12));
}

TEST_CASE("flatten and reshape gradients", "[gradcheck]") {
  check_layer_gradients(make<Reshape<D>>(), {2, 3, 4}, 2, 61);
  check_layer_gradients(make<Reshape<D>>(Shape{4, 6}), {2, 3, 4}, 2, 62);
}

TEST_CASE("activation gradients", "[gradcheck]") {
  check_layer_gradients(make<ActivationLayer<D>>(Activation::kSigmoid), {9}, 3, 71);
  check_layer_gradients(make<ActivationLayer<D>>(Activation::kTanh), {2, 3, 3}, 2, 72);
  check_layer_gradients(make<ActivationLayer<D>>(Activation::kRelu), {9}, 3, 73);
  check_layer_gradients(make<ActivationLayer<D>>(Activation::kLeakyRelu, 0.1), {9}, 3, 74);
  check_layer_gradients(make<ActivationLayer<D>>(Activation::kSoftmax), {6}, 4, 75);
}

TEST_CASE("whole network input and parameter gradients", "[gradcheck]") {
  Network<D> net({2, 6, 6}, 81);
  net.emplace<Conv2d<D>>(3, 3, 1, 1);
  net.emplace<BatchNorm<D>>();
  net.emplace<ActivationLayer<D>>(Activation::kRelu);
  net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
  net.emplace<Reshape<D>>();
  net.emplace<Dropout<D>>(0.25);
  net.emplace<Dense<D>>(4);
  bpkit_test::check_network_gradients(net, 3, 82);
}

// A ReLU convolution followed by 2×2 max pooling runs fused inside the network (im2col for the
// one-channel layer; Winograd pooling its own tiles for the second).
TEST_CASE("network of pooled convolutions: input and parameter gradients", "[gradcheck]") {
  Network<D> net({1, 8, 8}, 85);
  net.emplace<Conv2d<D>>(8, 3, 1, 1, Init::kHe, true);
  net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
  net.emplace<Conv2d<D>>(4, 3, 1, 1, Init::kHe, true);
  net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
  net.emplace<Reshape<D>>();
  net.emplace<Dense<D>>(3);
  bpkit_test::check_network_gradients(net, 3, 86);
}

// Fused pairs next to each other or next to other convolutions and pools: the stacks that once got
// wrong gradients, when the network chose gradient buffers by layer index and a pooled pair wrote
// its input gradient into the buffer that held its own output gradient.
TEST_CASE("pooled convolutions back to back and beside plain layers: gradients", "[gradcheck]") {
  // One thread makes the order of reads and writes within a layer deterministic.
  const int threads = GENERATE(1, 2);
  bpkit_test::ThreadCount thread_count(threads);
  INFO(threads << " engine threads");
  SECTION("three conv2d(relu) + maxpool2d blocks") {
    Network<D> net({1, 16, 16}, 87);
    for (int i = 0; i < 3; ++i) {  // the second and third on the Winograd path (8 channels)
      net.emplace<Conv2d<D>>(8, 3, 1, 1, Init::kHe, true);
      net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
    }
    net.emplace<Reshape<D>>();
    net.emplace<Dense<D>>(3);
    bpkit_test::check_network_gradients(net, 2, 88);
  }
  SECTION("VGG block: conv2d(relu), conv2d(relu), maxpool2d") {
    Network<D> net({2, 8, 8}, 89);
    net.emplace<Conv2d<D>>(8, 3, 1, 1, Init::kHe, true);
    net.emplace<Conv2d<D>>(4, 3, 1, 1, Init::kHe, true);
    net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
    net.emplace<Reshape<D>>();
    net.emplace<Dense<D>>(3);
    bpkit_test::check_network_gradients(net, 2, 90);
  }
  SECTION("conv2d, maxpool2d, conv2d(relu), maxpool2d") {
    Network<D> net({1, 8, 8}, 91);
    net.emplace<Conv2d<D>>(3, 3, 1, 1);
    net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
    net.emplace<Conv2d<D>>(4, 3, 1, 1, Init::kHe, true);
    net.emplace<Pool2d<D>>(PoolKind::kMax, 2);
    net.emplace<Reshape<D>>();
    net.emplace<Dense<D>>(3);
    bpkit_test::check_network_gradients(net, 2, 92);
  }
}

// ---- Losses -------------------------------------------------------------------------------------

TEST_CASE("mse gradient", "[gradcheck][loss]") {
  MeanSquaredError<D> loss;
  Targets<D> t;
  t.values = random_tensor({4, 3}, 101);
  check_loss_gradients(loss, random_tensor({4, 3}, 102), t);
}

TEST_CASE("softmax cross-entropy gradient", "[gradcheck][loss]") {
  SoftmaxCrossEntropy<D> loss;
  Targets<D> t;
  t.labels = {0, 4, 2, 4};
  check_loss_gradients(loss, random_tensor({4, 5}, 111, -2, 2), t);
  // Large logits: the log-sum-exp shift keeps both the value and the gradient exact.
  check_loss_gradients(loss, random_tensor({4, 5}, 112, 300, 310), t);
}

TEST_CASE("binary cross-entropy gradients", "[gradcheck][loss]") {
  Targets<D> t;
  t.values = random_tensor({3, 4}, 121, 0, 1);
  t.values[0] = 0;
  t.values[1] = 1;
  BinaryCrossEntropy<D> probabilities(/*from_logits=*/false);
  check_loss_gradients(probabilities, random_tensor({3, 4}, 122, 0.05, 0.95), t);
  BinaryCrossEntropy<D> logits(/*from_logits=*/true);
  check_loss_gradients(logits, random_tensor({3, 4}, 123, -4, 4), t);
}

TEST_CASE("frame cross-entropy gradient, with padded frames", "[gradcheck][loss]") {
  FrameCrossEntropy<D> loss;
  Targets<D> t;
  t.sequences = {{0, 3, 1, 1}, {2, 2}, {3}};
  t.lengths = {4, 2, 1};
  const Tensor<D> out = random_tensor({3, 4, 4}, 131, -3, 3);
  check_loss_gradients(loss, out, t);
  // The value: the mean over the 7 valid frames of −log softmax; padded frames add nothing.
  double expected = 0;
  for (int64_t b = 0; b < 3; ++b)
    for (size_t f = 0; f < t.sequences[size_t(b)].size(); ++f) {
      const D* z = out.data() + (b * 4 + int64_t(f)) * 4;
      double sum = 0;
      for (int c = 0; c < 4; ++c) sum += std::exp(z[c]);
      expected += std::log(sum) - z[t.sequences[size_t(b)][f]];
    }
  Tensor<D> grad;
  CHECK(loss.compute(out, t, grad) == Approx(expected / 7).epsilon(1e-12));
  for (int64_t c = 0; c < 4; ++c) CHECK(grad[(1 * 4 + 3) * 4 + c] == 0);  // sample 1, frame 3
  // Without lengths every frame counts.
  Targets<D> full;
  full.sequences = {{1, 0}, {3, 2}};
  check_loss_gradients(loss, random_tensor({2, 2, 4}, 132, 300, 310), full);
  // A label count that is not the frame count is refused, naming the sample.
  t.sequences[1] = {2};
  CHECK_THROWS_WITH(loss.compute(out, t, grad),
                    Catch::Matchers::Contains("sample 1 has 1 labels for 2 frames"));
}

// The gradient checks above only show that value and gradient agree; these pin the values.
TEST_CASE("loss values match hand-computed ones", "[loss]") {
  Tensor<D> out({2, 2}), grad;
  out[0] = 1;
  out[1] = 2;
  out[2] = 0;
  out[3] = -1;
  SECTION("mse: mean over all elements") {
    Targets<D> t;
    t.values = Tensor<D>({2, 2});
    t.values[0] = 0;  // squared differences 1, 4, 0, 1 → mean 6/4
    t.values[1] = 0;
    t.values[2] = 0;
    t.values[3] = 0;
    CHECK(MeanSquaredError<D>().compute(out, t, grad) == Approx(1.5));
    CHECK(grad[1] == Approx(2.0 * 2 / 4));  // 2·(out − target)/N
  }
  SECTION("softmax cross-entropy: mean of −log softmax at the label") {
    Targets<D> t;
    t.labels = {1, 0};
    // Row 0: log(e¹ + e²) − 2; row 1: log(e⁰ + e⁻¹) − 0.
    const double expected =
        (std::log(std::exp(1.0) + std::exp(2.0)) - 2 + std::log(1 + std::exp(-1.0))) / 2;
    CHECK(SoftmaxCrossEntropy<D>().compute(out, t, grad) == Approx(expected).epsilon(1e-12));
    Tensor<D> big = out;
    for (double& v : big) v += 1000;  // shift-invariant and must not overflow
    CHECK(SoftmaxCrossEntropy<D>().compute(big, t, grad) == Approx(expected).epsilon(1e-12));
  }
  SECTION("binary cross-entropy on logits and on probabilities") {
    Targets<D> t;
    t.values = Tensor<D>({2, 2});
    t.values[0] = 1;
    t.values[1] = 0;
    t.values[2] = 1;
    t.values[3] = 0;
    // −log σ(1) − log(1 − σ(2)) − log σ(0) − log(1 − σ(−1)), over 4 elements.
    auto softplus = [](double z) { return std::log1p(std::exp(z)); };
    const double expected = (softplus(-1) + softplus(2) + softplus(0) + softplus(-1)) / 4;
    CHECK(BinaryCrossEntropy<D>(true).compute(out, t, grad) == Approx(expected).epsilon(1e-12));
    Tensor<D> p({2, 2});
    for (int64_t i = 0; i < 4; ++i) p[i] = 1 / (1 + std::exp(-out[i]));
    CHECK(BinaryCrossEntropy<D>(false).compute(p, t, grad) == Approx(expected).epsilon(1e-9));
  }
}
