// The engine's fast paths against straightforward references: Winograd convolution against
// im2col, the batch-1 dense path against the batched product, chunked inference against one
// pass, and 2×2 max pooling's tie rule.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/network.h"
#include "bpkit/threading.h"

using namespace bpkit;

namespace {

template <class T>
double max_abs_diff(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
  return m;
}

template <class T>
Tensor<T> random_tensor(const Shape& s, Rng& rng) {
  Tensor<T> t(s);
  for (T& v : t) v = T(rng.normal());
  return t;
}

}  // namespace

TEST_CASE("winograd convolution equals im2col in all three passes", "[kernels][conv]") {
  struct Case {
    int64_t C, K, H, W, pad, B;
    bool relu;
  };
  // Even and odd sizes, padding 0, 1 and 2, one and several samples, the fused ReLU, the CNN's
  // own layer, and rows of more than 8 tiles (the transforms gather 8 tiles of a row at a time).
  const Case cases[] = {{8, 5, 7, 6, 1, 4, false},  {9, 4, 8, 8, 1, 3, false},
                        {8, 3, 5, 9, 0, 2, false},  {12, 2, 6, 5, 2, 1, false},
                        {10, 3, 6, 7, 1, 3, true},  {32, 64, 14, 14, 1, 5, true},
                        {8, 3, 5, 19, 1, 2, false}, {8, 2, 4, 36, 0, 2, true}};
  for (const Case& c : cases) {
    CAPTURE(c.C, c.K, c.H, c.W, c.pad, c.B, c.relu);
    Conv2d<double> wino(c.K, 3, 1, c.pad, Init::kHe, c.relu);
    Conv2d<double> ref(c.K, 3, 1, c.pad, Init::kHe, c.relu);
    ref.set_algorithm(ConvAlgorithm::kIm2col);
    wino.build({c.C, c.H, c.W});
    ref.build({c.C, c.H, c.W});
    Rng r1(7), r2(7);
    wino.init(r1);
    ref.init(r2);
    for (int64_t i = 0; i < c.K; ++i)
      (*wino.params()[1].value)[i] = (*ref.params()[1].value)[i] = 0.1 * double(i);
    Rng data(11);
    const Tensor<double> x = random_tensor<double>({c.B, c.C, c.H, c.W}, data);
    Tensor<double> yw, yr;
    wino.forward(x, yw, Mode::kTrain);
    ref.forward(x, yr, Mode::kTrain);
    CHECK(max_abs_diff(yw, yr) < 1e-12);
    const Tensor<double> dy = random_tensor<double>(yr.shape(), data);
    Tensor<double> dxw, dxr;
    wino.gradient_and_backward(x, yw, dy, dxw);
    ref.gradient_and_backward(x, yr, dy, dxr);
    CHECK(max_abs_diff(dxw, dxr) < 1e-12);
    CHECK(max_abs_diff(*wino.params()[0].grad, *ref.params()[0].grad) < 1e-11);
    CHECK(max_abs_diff(*wino.params()[1].grad, *ref.params()[1].grad) < 1e-11);
    // The separate calls agree with the fused one.
    Tensor<double> dx_sep;
    wino.backward(x, yw, dy, dx_sep);
    CHECK(max_abs_diff(dx_sep, dxw) == 0);
  }
}

// The im2col forward pass of one-channel convolutions (the layer whose weight gradient has its own
// kernel) against the convolution's definition, with and without the fused ReLU, several strides
// and paddings.
TEST_CASE("one-channel convolution equals the definition", "[kernels][conv]") {
  struct Case {
    int64_t K, k, s, pad, H, W;
    bool relu;
  };
  const Case cases[] = {{32, 3, 1, 1, 28, 28, true},
                        {5, 3, 1, 0, 7, 9, false},
                        {3, 2, 2, 1, 6, 5, true},
                        {4, 1, 1, 0, 3, 4, false}};
  for (const Case& c : cases) {
    CAPTURE(c.K, c.k, c.s, c.pad, c.H, c.W, c.relu);
    Conv2d<double> conv(c.K, c.k, c.s, c.pad, Init::kHe, c.relu);
    conv.build({1, c.H, c.W});
    Rng rng(3);
    conv.init(rng);
    for (auto& p : conv.params())
      for (double& v : *p.value) v = rng.uniform() - 0.5;
    const int64_t B = 3;
    const Tensor<double> x = random_tensor<double>({B, 1, c.H, c.W}, rng);
    Tensor<double> y;
    conv.forward(x, y, Mode::kTrain);
    const Tensor<double>& w = *conv.params()[0].value;
    const Tensor<double>& bias = *conv.params()[1].value;
    const int64_t OH = y.dim(2), OW = y.dim(3);
    double worst = 0;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < c.K; ++f)
        for (int64_t oy = 0; oy < OH; ++oy)
          for (int64_t ox = 0; ox < OW; ++ox) {
            double want = bias[f];
            for (int64_t i = 0; i < c.k; ++i)
              for (int64_t j = 0; j < c.k; ++j) {
                const int64_t iy = oy * c.s - c.pad + i, ix = ox * c.s - c.pad + j;
                if (iy >= 0 && iy < c.H && ix >= 0 && ix < c.W)
                  want += w[(f * c.k + i) * c.k + j] * x[(b * c.H + iy) * c.W + ix];
              }
            if (c.relu) want = std::max(want, 0.0);
            worst = std::max(worst, std::abs(y[((b * c.K + f) * OH + oy) * OW + ox] - want));
          }
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("dense at batch 1 equals the exact sum for every block of units", "[kernels][dense]") {
  // Unit counts that end in each of the batch-1 kernel's blocks (16, 4, 2, 1 vectors) and in a
  // scalar tail; 900 x 700 weights take the path that splits units among threads.
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t U : {1, 5, 16, 37, 64, 200, 257, 300, 700}) {
      const int64_t F = U == 700 ? 900 : 123;
      INFO("units " << U << ", inputs " << F << ", threads " << threads);
      Dense<float> d(U);
      d.build({F});
      Rng rng{uint64_t(U)};
      d.init(rng);
      for (int64_t u = 0; u < U; ++u) d.params()[1].value->data()[u] = float(rng.normal());
      Tensor<float> x({1, F}), y;
      for (int64_t k = 0; k < F; ++k) x[k] = k % 3 == 1 ? 0.0f : float(rng.normal());
      d.forward(x, y, Mode::kInfer);
      REQUIRE(y.shape() == Shape{1, U});
      const float* w = d.params()[0].value->data();
      const float* b = d.params()[1].value->data();
      double worst = 0;
      for (int64_t u = 0; u < U; ++u) {
        double want = b[u], scale = std::abs(b[u]);
        for (int64_t k = 0; k < F; ++k) {
          want += double(x[k]) * double(w[k * U + u]);
          scale += std::abs(double(x[k]) * double(w[k * U + u]));
        }
        worst = std::max(worst, std::abs(double(y[u]) - want) / scale);
      }
      CHECK(worst < 1e-5);
    }
  }
  set_num_threads(2);
}

TEST_CASE("dense at batch 1 skips zero inputs and matches the batched product",
          "[kernels][dense]") {
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    Network<float> net({300}, 5);
    net.emplace<Dense<float>>(200);
    net.emplace<ActivationLayer<float>>(Activation::kRelu);
    net.emplace<Dense<float>>(7);  // one thread
    Rng rng(2);
    Tensor<float> two({2, 300});
    for (int64_t i = 0; i < 300; ++i) {
      // Half the inputs exactly zero, as background pixels are.
      two[i] = i % 3 == 0 || i > 200 ? 0.0f : float(rng.normal());
      two[300 + i] = float(rng.normal());
    }
    const Tensor<float> batched = net.forward(two, Mode::kInfer);
    Tensor<float> one({1, 300});
    std::copy(two.begin(), two.begin() + 300, one.begin());
    const Tensor<float>& single = net.forward(one, Mode::kInfer);
    for (int64_t u = 0; u < 7; ++u)
      CHECK(single[u] == Approx(batched[u]).epsilon(1e-5).margin(1e-5));
  }
  set_num_threads(2);
}

// Runs `net` on more samples than one inference chunk holds and checks the chunked result against
// one unchunked (training-mode) pass for every sample, and against single-sample inference for
// the first and last sample of a chunk and the last sample.
static void check_chunked_inference(Network<float>& net, int64_t B) {
  Shape in{B};
  in.insert(in.end(), net.input_shape().begin(), net.input_shape().end());
  Rng rng(4);
  const Tensor<float> x = random_tensor<float>(in, rng);
  const int64_t row = x.cols(), O = net.output_shape()[0];
  const Tensor<float> all = net.forward(x, Mode::kInfer);
  REQUIRE(all.shape() == Shape{B, O});
  const Tensor<float> whole = net.forward(x, Mode::kTrain);  // one pass, no chunks
  for (int64_t i = 0; i < B * O; ++i)
    REQUIRE(all[i] == Approx(whole[i]).epsilon(1e-5).margin(1e-5));
  for (int64_t b :
       {int64_t(0), Network<float>::kInferChunk - 1, Network<float>::kInferChunk, B - 1}) {
    in[0] = 1;
    Tensor<float> one(in);
    std::copy(x.data() + b * row, x.data() + (b + 1) * row, one.data());
    const Tensor<float>& y = net.forward(one, Mode::kInfer);
    for (int64_t f = 0; f < O; ++f)
      CHECK(y[f] == Approx(all[b * O + f]).epsilon(1e-5).margin(1e-5));
  }
}

TEST_CASE("inference larger than one chunk equals inference sample by sample",
          "[kernels][network]") {
  SECTION("convolution first") {
    // 4×64×64 activations: wide enough that a chunk is the minimum, kInferChunk samples.
    Network<float> net({1, 64, 64}, 3);
    net.emplace<Conv2d<float>>(4, 3, 1, 1);
    net.emplace<ActivationLayer<float>>(Activation::kRelu);
    net.emplace<Pool2d<float>>(PoolKind::kMax, 2);
    net.emplace<Reshape<float>>();
    net.emplace<Dense<float>>(5);
    check_chunked_inference(net, Network<float>::kInferChunk * 2 + 37);
  }
  SECTION("flatten or reshape first, as the reference MLP") {
    for (bool reshape : {false, true}) {
      Network<float> net({2, 32, 32}, 3);
      if (reshape) net.emplace<Reshape<float>>(Shape{64, 32});
      net.emplace<Reshape<float>>();
      net.emplace<Dense<float>>(7);
      check_chunked_inference(net, Network<float>::kInferChunk * 3 + 5);
    }
  }
}

TEST_CASE("2x2 max pooling sends the gradient to the first maximum of a window",
          "[kernels][pool]") {
  Pool2d<float> pool(PoolKind::kMax, 2);
  pool.build({1, 2, 4});
  // Window 1: all equal (a dead ReLU region); window 2: the maximum appears twice.
  Tensor<float> x({1, 1, 2, 4});
  const float v[] = {0, 0, 1, 3, 0, 0, 3, 2};
  std::copy(v, v + 8, x.begin());
  Tensor<float> y, dx;
  pool.forward(x, y, Mode::kTrain);
  CHECK(y[0] == 0);
  CHECK(y[1] == 3);
  Tensor<float> dy({1, 1, 1, 2});
  dy[0] = 5;
  dy[1] = 7;
  pool.backward(x, y, dy, dx);
  const float want[] = {5, 0, 0, 7, 0, 0, 0, 0};
  for (int i = 0; i < 8; ++i) CHECK(dx[i] == want[i]);
}

// The 2×2 pooling kernels run N = 8 or 4 outputs of a row at a time, the last vector overlapping
// the one before it, and rows narrower than 4 one by one; every row width from 1 to 10 windows
// (odd input sizes included: the uncovered last row and column get no gradient) against windows
// taken one at a time. Values from a small set make ties common.
template <class T>
void check_maxpool_2x2_reference() {
  Rng rng(7);
  for (int64_t H : {2, 3, 5, 8})
    for (int64_t W = 2; W <= 21; ++W) {
      CAPTURE(H, W);
      const int64_t B = 2, C = 3, OH = H / 2, OW = W / 2;
      Pool2d<T> pool(PoolKind::kMax, 2);
      pool.build({C, H, W});
      Tensor<T> x({B, C, H, W}), dy({B, C, OH, OW}), y, y_infer, dx;
      const T values[] = {-1, 0, 0, 1, 2};
      for (T& v : x) v = values[rng.below(5)];
      for (T& v : dy) v = T(1 + rng.below(100));
      pool.forward(x, y_infer, Mode::kInfer);
      pool.forward(x, y, Mode::kTrain);
      pool.backward(x, y, dy, dx);
      Tensor<T> want_y({B, C, OH, OW}), want_dx({B, C, H, W}, T(0));
      for (int64_t p = 0; p < B * C; ++p)
        for (int64_t oy = 0; oy < OH; ++oy)
          for (int64_t ox = 0; ox < OW; ++ox) {
            const int64_t at[4] = {(2 * oy) * W + 2 * ox, (2 * oy) * W + 2 * ox + 1,
                                   (2 * oy + 1) * W + 2 * ox, (2 * oy + 1) * W + 2 * ox + 1};
            const T* xp = x.data() + p * H * W;
            T m = xp[at[0]];
            for (int k = 1; k < 4; ++k) m = std::max(m, xp[at[k]]);
            int k = 0;
            while (k < 3 && xp[at[k]] != m) ++k;
            const int64_t o = (p * OH + oy) * OW + ox;
            want_y[o] = m;
            want_dx[p * H * W + at[k]] = dy[o];
          }
      bool same_y = true, same_infer = true, same_dx = true;
      for (int64_t i = 0; i < y.size(); ++i) {
        same_y = same_y && y[i] == want_y[i];
        same_infer = same_infer && y_infer[i] == want_y[i];
      }
      for (int64_t i = 0; i < dx.size(); ++i) same_dx = same_dx && dx[i] == want_dx[i];
      CHECK(same_y);
      CHECK(same_infer);
      CHECK(same_dx);
    }
}

TEST_CASE("2x2 max pooling matches windows taken one at a time, at every row width",
          "[kernels][pool]") {
  check_maxpool_2x2_reference<float>();
  check_maxpool_2x2_reference<double>();
}

// A network runs a ReLU-fused convolution and the 2×2 max pooling after it as one pass
// (Conv2d::forward_pooled / backprop_pooled): its output, input gradient and parameter gradients
// must equal, bit for bit, those of the same layers called one at a time; only a Winograd
// convolution that pools its own tiles (even output sizes) sums its bias gradient over the windows
// instead of the positions, so that one agrees to rounding. Both convolution algorithms (im2col
// for one input channel, Winograd for 8 or more), odd sizes (a row and column that no window
// covers), ties (the ReLU's zeros) and several thread counts.
template <class T>
void check_pooled_convolution(int64_t C, int64_t H, int64_t W, int threads) {
  CAPTURE(C, H, W, threads, sizeof(T));
  const int saved = num_threads();
  set_num_threads(threads);
  Network<T> net({C, H, W}, 5);
  net.template emplace<Conv2d<T>>(9, 3, 1, 1, Init::kHe, true);
  net.template emplace<Pool2d<T>>(PoolKind::kMax, 2);
  net.template emplace<Conv2d<T>>(8, 3, 1, 1, Init::kHe, true);
  net.template emplace<Pool2d<T>>(PoolKind::kMax, 2);
  net.template emplace<Reshape<T>>();
  net.template emplace<Dense<T>>(3);
  // Biases well below zero make whole windows 0 after the ReLU (ties, and no gradient).
  for (size_t i : {0, 2}) {
    Tensor<T>& b = *net.layer(i).params()[1].value;
    for (int64_t f = 0; f < b.size(); ++f) b[f] = T(0.3) * T(f % 3) - T(0.4);
  }
  const int64_t B = 5;
  Rng rng(9);
  const Tensor<T> x = random_tensor<T>({B, C, H, W}, rng);
  const Tensor<T> y = net.forward(x, Mode::kTrain);
  const Tensor<T> dloss = random_tensor<T>(y.shape(), rng);
  net.zero_grad();
  Tensor<T> dx;
  net.backward(dloss, &dx);
  std::vector<Tensor<T>> grads;
  for (auto& p : net.params()) grads.push_back(*p.grad);

  // The same layers one at a time.
  const size_t L = net.size();
  std::vector<Tensor<T>> acts(L);
  const Tensor<T>* in = &x;
  for (size_t i = 0; i < L; ++i) {
    net.layer(i).forward(*in, acts[i], Mode::kTrain);
    in = &acts[i];
  }
  net.zero_grad();
  Tensor<T> g = dloss, dxl;
  for (size_t i = L; i-- > 0;) {
    net.layer(i).gradient_and_backward(i == 0 ? x : acts[i - 1], acts[i], g, dxl);
    g = dxl;
  }
  bool same_y = acts.back().shape() == y.shape(), same_dx = g.shape() == dx.shape();
  for (int64_t i = 0; same_y && i < y.size(); ++i) same_y = y[i] == acts.back()[i];
  for (int64_t i = 0; same_dx && i < dx.size(); ++i) same_dx = dx[i] == g[i];
  CHECK(same_y);
  CHECK(same_dx);
  const auto params = net.params();
  for (size_t k = 0; k < params.size(); ++k) {
    CAPTURE(params[k].name);
    const bool rounding = params[k].name.find(".bias") != std::string::npos;
    bool same = true;
    for (int64_t i = 0; same && i < grads[k].size(); ++i) {
      const double a = double(grads[k][i]), b = double((*params[k].grad)[i]);
      same = rounding ? std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(b)) : a == b;
    }
    CHECK(same);
  }
  set_num_threads(saved);
}

TEST_CASE("a ReLU convolution and the max pooling after it run fused with the same results",
          "[kernels][conv][pool]") {
  for (int threads : {1, 2, 3}) {
    check_pooled_convolution<float>(1, 28, 28, threads);
    check_pooled_convolution<float>(8, 14, 14, threads);
    check_pooled_convolution<double>(9, 11, 13, threads);
    check_pooled_convolution<float>(1, 9, 7, threads);
  }
}

TEST_CASE("backward requires a training forward just before it", "[kernels][network]") {
  Network<float> net({1, 6, 6}, 1);
  net.emplace<Dropout<float>>(0.5);
  net.emplace<Pool2d<float>>(PoolKind::kMax, 3, 1);  // keeps winner indices from training only
  net.emplace<Reshape<float>>();
  net.emplace<Dense<float>>(3);
  Rng rng(1);
  const Tensor<float> small = random_tensor<float>({1, 1, 6, 6}, rng);
  const Tensor<float> big = random_tensor<float>({8, 1, 6, 6}, rng);
  net.forward(small, Mode::kTrain);
  const Tensor<float>& out = net.forward(big, Mode::kInfer);
  Tensor<float> dloss(out.shape(), 1.0f), dx;
  // The latest pass was inference: the layers hold state of a training batch of another size.
  CHECK_THROWS_AS(net.backward(dloss, &dx), ShapeError);
  net.forward(big, Mode::kTrain);
  CHECK_NOTHROW(net.backward(dloss, &dx));
  CHECK(dx.shape() == big.shape());
}

TEST_CASE("an exception inside a parallel region reaches the caller", "[kernels][threads]") {
  set_num_threads(2);
  // On the worker (thread 1) and on the caller (thread 0); the pool stays usable afterwards.
  for (int thrower : {1, 0}) {
    CAPTURE(thrower);
    CHECK_THROWS_AS(parallel(2,
                             [&](int t, int) {
                               if (t == thrower) throw std::runtime_error("boom");
                             }),
                    std::runtime_error);
  }
  int ran = 0;
  parallel(2, [&](int t, int n) {
    if (t == 0) ran = n;
  });
  CHECK(ran == 2);
}

TEST_CASE("every task of a parallel region runs once, whichever thread claims it",
          "[kernels][threads]") {
  const int before = num_threads();
  set_num_threads(4);  // more threads than this machine may have cores: tasks wait to be claimed
  for (int tasks : {2, 3, 4}) {
    CAPTURE(tasks);
    for (int r = 0; r < 500; ++r) {
      std::vector<std::atomic<int>> runs(static_cast<size_t>(tasks));
      std::atomic<int> wrong_count{0};
      parallel(tasks, [&](int t, int n) {
        if (n != tasks) ++wrong_count;
        ++runs[size_t(t)];
      });
      bool once = true;
      for (auto& c : runs) once = once && c.load() == 1;
      REQUIRE(once);
      REQUIRE(wrong_count.load() == 0);
    }
  }
  set_num_threads(before);
}

TEST_CASE("two application threads can run the engine at once", "[kernels][threads]") {
  set_num_threads(2);
  auto make = [] {
    Network<float> net({1, 12, 12}, 9);
    net.emplace<Conv2d<float>>(8, 3, 1, 1, Init::kHe, true);
    net.emplace<Pool2d<float>>(PoolKind::kMax, 2);
    net.emplace<Reshape<float>>();
    net.emplace<Dense<float>>(4);
    return net;
  };
  Rng rng(5);
  const Tensor<float> x = random_tensor<float>({16, 1, 12, 12}, rng);
  Network<float> reference = make();
  const Tensor<float> want = reference.forward(x, Mode::kInfer);
  // Each thread runs its own network; regions from both share the one pool.
  bool same[2] = {true, true};
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      Network<float> net = make();
      for (int r = 0; r < 200; ++r) {
        const Tensor<float>& y = net.forward(x, Mode::kInfer);
        for (int64_t k = 0; k < y.size(); ++k) same[i] = same[i] && y[k] == want[k];
      }
    });
  for (auto& t : threads) t.join();
  CHECK(same[0]);
  CHECK(same[1]);
}
