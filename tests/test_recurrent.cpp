// Recurrent layers: gradients against finite differences (every cell, both directions, every output
// mode, variable lengths), truncated BPTT against its definition, padded sequences against the same
// sequences alone, model files, seeding, bad input, and a small learning task.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/ctc.h"
#include "bpkit/error.h"
#include "bpkit/loss.h"
#include "bpkit/model_file.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/recurrent.h"
#include "bpkit/trainer.h"
#include "gradcheck.h"
#include "temp_dir.h"

using namespace bpkit;
using bpkit_test::check_layer_gradients;
using bpkit_test::check_network_gradients;
using bpkit_test::random_tensor;
using Catch::Matchers::Contains;

namespace {

using D = double;

const Cell kCells[] = {Cell::kElman, Cell::kLstm, Cell::kGru};
const SequenceOutput kOutputs[] = {SequenceOutput::kSequence, SequenceOutput::kLast,
                                   SequenceOutput::kMean};

const char* cell_name(Cell c) {
  return c == Cell::kLstm ? "lstm" : c == Cell::kGru ? "gru" : "rnn";
}

RecurrentOptions options(bool bidirectional, SequenceOutput output = SequenceOutput::kSequence,
                         int64_t bptt = 0) {
  RecurrentOptions o;
  o.bidirectional = bidirectional;
  o.output = output;
  o.bptt = bptt;
  return o;
}

template <class T>
Tensor<T> random_input(const Shape& shape, uint64_t seed) {
  Tensor<double> r = random_tensor(shape, seed);
  Tensor<T> x(shape);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = T(r[i]);
  return x;
}

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

// ---- Gradients ----------------------------------------------------------------------------------

TEST_CASE("recurrent gradients: every cell, direction and output mode", "[recurrent][gradcheck]") {
  uint64_t seed = 500;
  for (Cell cell : kCells)
    for (bool bi : {false, true})
      for (SequenceOutput out : kOutputs) {
        INFO(cell_name(cell) << " bidirectional=" << bi << " output=" << sequence_output_name(out));
        // All frames valid.
        check_layer_gradients(std::make_unique<Recurrent<D>>(cell, 4, options(bi, out)), {5, 3}, 2,
                              ++seed);
        // Variable lengths padded to 6 frames (no sample uses all of them in the second case).
        const std::vector<int32_t> lengths = {6, 2, 4};
        check_layer_gradients(std::make_unique<Recurrent<D>>(cell, 3, options(bi, out)), {6, 2}, 3,
                              ++seed, 1e-6, &lengths);
        const std::vector<int32_t> short_lengths = {1, 5, 3};
        check_layer_gradients(std::make_unique<Recurrent<D>>(cell, 3, options(bi, out)), {6, 2}, 3,
                              ++seed, 1e-6, &short_lengths);
      }
}

TEST_CASE("frame_dense gradients, with and without lengths", "[recurrent][gradcheck]") {
  check_layer_gradients(std::make_unique<FrameDense<D>>(4), {5, 3}, 2, 601);
  check_layer_gradients(std::make_unique<FrameDense<D>>(3, -1, false), {4, 2}, 3, 602);
  const std::vector<int32_t> lengths = {2, 4, 1};
  check_layer_gradients(std::make_unique<FrameDense<D>>(3), {4, 2}, 3, 603, 1e-6, &lengths);
}

TEST_CASE("stacked recurrent network gradients with variable lengths", "[recurrent][gradcheck]") {
  Network<D> net({6, 3}, 611);
  net.emplace<Lstm<D>>(3, options(true));
  net.emplace<Gru<D>>(3, options(true));
  net.emplace<ElmanRnn<D>>(2);
  net.emplace<FrameDense<D>>(4);
  const std::vector<int32_t> lengths = {6, 3, 5};
  check_network_gradients(net, 3, 612, 1e-6, &lengths);
  // Sequence to label: the last layer pools.
  Network<D> label({5, 2}, 613);
  label.emplace<Gru<D>>(3, options(true));
  label.emplace<Lstm<D>>(3, options(false, SequenceOutput::kLast));
  label.emplace<Dense<D>>(2);
  const std::vector<int32_t> l2 = {2, 5};
  check_network_gradients(label, 2, 614, 1e-6, &l2);
}

// Truncated BPTT with bptt = k cuts the gradient through the recurrent state every k frames of a
// direction's processing order (forward: at frames k, 2k, ...; backward: at L−1−k, L−1−2k, ...).
// Definition: the gradient for input frame t is the full derivative of the outputs in t's own chunk
// (per direction), the state entering the chunk held constant. Since x[t] reaches later chunks only
// through that state, it equals the finite-difference derivative of Σ R⊙y restricted to t's chunk.
TEST_CASE("truncated BPTT input gradient matches its definition", "[recurrent][gradcheck]") {
  const int64_t TT = 7, F = 2, H = 3, k = 3;
  uint64_t seed = 700;
  for (Cell cell : kCells)
    for (bool bi : {false, true}) {
      INFO(cell_name(cell) << " bidirectional=" << bi);
      const int64_t Dn = bi ? 2 : 1, B = 2;
      const std::vector<int32_t> lengths = {7, 5};
      Network<D> net({TT, F}, ++seed);
      net.emplace<Recurrent<D>>(cell, H, options(bi, SequenceOutput::kSequence, k));
      Tensor<D> x = random_tensor({B, TT, F}, ++seed);
      Tensor<D> R = random_tensor({B, TT, Dn * H}, ++seed);
      net.forward(x, Mode::kTrain, &lengths);
      Tensor<D> dx;
      net.backward(R, &dx);
      auto chunk = [&](int64_t d, int64_t b, int64_t t) {
        const int64_t L = lengths[size_t(b)];
        return (d == 0 ? t : L - 1 - t) / k;
      };
      double worst = 0, largest = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < TT; ++t)
          for (int64_t f = 0; f < F; ++f) {
            // R restricted, per direction, to the frames of t's chunk.
            Tensor<D> Rc = R;
            for (int64_t bb = 0; bb < B; ++bb)
              for (int64_t tt = 0; tt < TT; ++tt)
                for (int64_t d = 0; d < Dn; ++d) {
                  const bool same = bb == b && t < lengths[size_t(b)] && tt < lengths[size_t(b)] &&
                                    chunk(d, b, tt) == chunk(d, b, t);
                  if (!same)
                    for (int64_t j = 0; j < H; ++j) Rc[(bb * TT + tt) * Dn * H + d * H + j] = 0;
                }
            D& xi = x[(b * TT + t) * F + f];
            const D x0 = xi, h = 1e-5;
            auto value = [&](D v) {
              xi = v;
              const Tensor<D>& y = net.forward(x, Mode::kTrain, &lengths);
              D s = 0;
              for (int64_t i = 0; i < y.size(); ++i) s += Rc[i] * y[i];
              return s;
            };
            const D numeric =
                (8 * (value(x0 + h) - value(x0 - h)) - (value(x0 + 2 * h) - value(x0 - 2 * h))) /
                (12 * h);
            xi = x0;
            const D analytic = dx[(b * TT + t) * F + f];
            largest = std::max(largest, std::abs(numeric));
            worst = std::max(worst, std::abs(analytic - numeric) /
                                        std::max({std::abs(numeric), std::abs(analytic), 1e-4}));
          }
      CHECK(worst < 1e-6);
      CHECK(largest > 0);
    }
}

// Parameter gradients: when the loss sees only the first chunk of the forward direction nothing is
// cut, so truncated and full BPTT agree; over the whole sequence they must differ.
TEST_CASE("truncated BPTT parameter gradients", "[recurrent][gradcheck]") {
  for (Cell cell : kCells) {
    INFO(cell_name(cell));
    const int64_t TT = 8, F = 2, H = 3, k = 3;
    Network<D> full({TT, F}, 720), cut({TT, F}, 720);
    full.emplace<Recurrent<D>>(cell, H, options(false));
    cut.emplace<Recurrent<D>>(cell, H, options(false, SequenceOutput::kSequence, k));
    Tensor<D> x = random_tensor({2, TT, F}, 721);
    Tensor<D> R = random_tensor({2, TT, H}, 722);
    auto grads = [&](Network<D>& net, const Tensor<D>& r) {
      net.zero_grad();
      net.forward(x, Mode::kTrain);
      net.backward(r);
      std::vector<Tensor<D>> g;
      for (auto& p : net.params()) g.push_back(*p.grad);
      return g;
    };
    Tensor<D> first = R;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t t = k; t < TT; ++t)
        for (int64_t j = 0; j < H; ++j) first[(b * TT + t) * H + j] = 0;
    auto gf = grads(full, first), gc = grads(cut, first);
    for (size_t i = 0; i < gf.size(); ++i)
      for (int64_t e = 0; e < gf[i].size(); ++e) CHECK(gc[i][e] == Approx(gf[i][e]).margin(1e-14));
    gf = grads(full, R);
    gc = grads(cut, R);
    double diff = 0;
    for (size_t i = 0; i < gf.size(); ++i)
      for (int64_t e = 0; e < gf[i].size(); ++e)
        diff = std::max(diff, std::abs(gf[i][e] - gc[i][e]));
    CHECK(diff > 1e-6);
  }
}

// ---- Padding ------------------------------------------------------------------------------------

// Each sample of a padded batch gets the outputs, input gradients and (summed) parameter gradients
// that it gets alone; padded frames output zeros and receive no gradient.
template <class T>
void check_padded_equals_alone(Cell cell, bool bi, SequenceOutput out, double tol) {
  INFO(cell_name(cell) << " bidirectional=" << bi << " output=" << sequence_output_name(out)
                       << " precision=" << sizeof(T) * 8);
  const int64_t F = 3, H = 5, TT = 7;
  const std::vector<int32_t> lengths = {5, 1, 7, 3};
  const int64_t B = int64_t(lengths.size());
  Network<T> batch({kDynamic, F}, 42), alone({kDynamic, F}, 42);
  batch.template emplace<Recurrent<T>>(cell, H, options(bi, out));
  alone.template emplace<Recurrent<T>>(cell, H, options(bi, out));
  const bool seq = out == SequenceOutput::kSequence;
  const int64_t W = (bi ? 2 : 1) * H;
  Tensor<T> x = random_input<T>({B, TT, F}, 43);
  Tensor<T> R = random_input<T>(seq ? Shape{B, TT, W} : Shape{B, W}, 44);
  batch.zero_grad();
  const Tensor<T> y = batch.forward(x, Mode::kTrain, &lengths);
  // A sequence output keeps the lengths; the last or mean state has no frames, so none.
  CHECK(batch.output_lengths() == (seq ? lengths : std::vector<int32_t>{}));
  Tensor<T> dx;
  batch.backward(R, &dx);
  std::vector<Tensor<T>> summed;
  for (auto& p : alone.params()) summed.push_back(Tensor<T>(p.grad->shape()));
  auto close = [&](T a, T b) {
    return std::abs(double(a) - double(b)) <= tol * std::max(1.0, std::abs(double(b)));
  };
  int64_t bad = 0;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths[size_t(b)];
    Tensor<T> xs({1, L, F});
    std::copy(x.data() + b * TT * F, x.data() + (b * TT + L) * F, xs.data());
    Tensor<T> rs(seq ? Shape{1, L, W} : Shape{1, W});
    std::copy(R.data() + b * (seq ? TT : 1) * W, R.data() + b * (seq ? TT : 1) * W + rs.size(),
              rs.data());
    alone.zero_grad();
    const Tensor<T> ys = alone.forward(xs, Mode::kTrain);
    Tensor<T> dxs;
    alone.backward(rs, &dxs);
    const int64_t rows = seq ? TT : 1;
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t j = 0; j < W; ++j) {
        const T got = y[(b * rows + t) * W + j];
        const T want = seq && t >= L ? T(0) : ys[t * W + j];
        if (seq && t >= L ? got != T(0) : !close(got, want)) ++bad;
      }
    for (int64_t t = 0; t < TT; ++t)
      for (int64_t f = 0; f < F; ++f) {
        const T got = dx[(b * TT + t) * F + f];
        if (t >= L ? got != T(0) : !close(got, dxs[t * F + f])) ++bad;
      }
    auto ps = alone.params();
    for (size_t i = 0; i < ps.size(); ++i)
      for (int64_t e = 0; e < summed[i].size(); ++e) summed[i][e] += (*ps[i].grad)[e];
  }
  auto pb = batch.params();
  for (size_t i = 0; i < pb.size(); ++i)
    for (int64_t e = 0; e < summed[i].size(); ++e)
      if (!close((*pb[i].grad)[e], summed[i][e])) ++bad;
  CHECK(bad == 0);
}

TEST_CASE("a padded sequence gives the results it gives alone", "[recurrent][padding]") {
  for (Cell cell : kCells)
    for (bool bi : {false, true})
      for (SequenceOutput out : kOutputs) {
        check_padded_equals_alone<double>(cell, bi, out, 1e-12);
        check_padded_equals_alone<float>(cell, bi, out, 2e-5);
      }
}

TEST_CASE("frame_dense zeroes padded frames; output lengths follow the input's",
          "[recurrent][padding]") {
  Network<float> net({kDynamic, 3}, 7);
  net.emplace<Lstm<float>>(4, options(true));
  net.emplace<FrameDense<float>>(5);
  Tensor<float> x = random_input<float>({2, 6, 3}, 8);
  const std::vector<int32_t> lengths = {6, 2};
  const Tensor<float>& y = net.forward(x, Mode::kInfer, &lengths);
  REQUIRE(y.shape() == Shape{2, 6, 5});
  CHECK(net.output_lengths() == lengths);
  for (int64_t t = 2; t < 6; ++t)
    for (int64_t j = 0; j < 5; ++j) CHECK(y[(6 + t) * 5 + j] == 0.0f);
  // Without lengths every frame counts, whatever the length of this batch.
  Tensor<float> x9 = random_input<float>({3, 9, 3}, 9);
  net.forward(x9, Mode::kInfer);
  CHECK(net.output_lengths() == std::vector<int32_t>{9, 9, 9});
}

// ---- Model files, seeding, clipping -------------------------------------------------------------

TEST_CASE("recurrent networks survive a model-file round trip", "[recurrent][model_file]") {
  bpkit_test::TempDir dir("recurrent");
  Network<float> net({kDynamic, 4}, 31);
  net.emplace<Lstm<float>>(6, options(true, SequenceOutput::kSequence, 5));
  net.emplace<Gru<float>>(5, options(true));
  net.emplace<ElmanRnn<float>>(4, options(false));
  net.emplace<FrameDense<float>>(3);
  Network<float> label({kDynamic, 4}, 32);
  label.emplace<Gru<float>>(5, options(false, SequenceOutput::kMean));
  label.emplace<Dense<float>>(2);
  Network<float> last({6, 4}, 33);
  last.emplace<ElmanRnn<float>>(5, options(true, SequenceOutput::kLast));
  Tensor<float> x = random_input<float>({3, 6, 4}, 34);
  const std::vector<int32_t> lengths = {6, 3, 1};
  int i = 0;
  for (Network<float>* n : {&net, &label, &last}) {
    const std::string path = dir.path() + "/m" + std::to_string(i++) + ".bpk";
    const Tensor<float> before = n->forward(x, Mode::kInfer, &lengths);
    save_model(*n, path);
    LoadedModel<float> loaded = load_model<float>(path);
    REQUIRE(loaded.net.size() == n->size());
    CHECK(loaded.net.input_shape() == n->input_shape());
    for (size_t l = 0; l < n->size(); ++l) {
      CHECK(loaded.net.layer(l).kind() == n->layer(l).kind());
      CHECK(loaded.net.layer(l).attrs().to_string() == n->layer(l).attrs().to_string());
    }
    if (n == &net) {  // attributes that change training only, not the outputs
      const auto& lstm = dynamic_cast<const Recurrent<float>&>(loaded.net.layer(0));
      CHECK(lstm.cell() == Cell::kLstm);
      CHECK(lstm.options().bptt == 5);
      CHECK(lstm.options().bidirectional);
    }
    const Tensor<float>& after = loaded.net.forward(x, Mode::kInfer, &lengths);
    REQUIRE(after.shape() == before.shape());
    for (int64_t e = 0; e < after.size(); ++e) CHECK(after[e] == before[e]);
  }
}

TEST_CASE("the same seed gives the same recurrent network and training", "[recurrent]") {
  auto train = [](uint64_t seed) {
    Network<float> net({kDynamic, 3}, seed);
    net.emplace<Lstm<float>>(8, options(true));
    net.emplace<FrameDense<float>>(2);
    Sgd<float> opt(net.params(), 0.05, 0.9);
    Tensor<float> x = random_input<float>({4, 10, 3}, 5);
    const std::vector<int32_t> lengths = {10, 7, 3, 9};
    Tensor<float> g = random_input<float>({4, 10, 2}, 6);
    for (int step = 0; step < 3; ++step) {
      net.zero_grad();
      net.forward(x, Mode::kTrain, &lengths);
      net.backward(g);
      clip_grad_norm(net.params(), 1.0);
      opt.step();
    }
    std::vector<float> w;
    for (auto& p : net.params()) w.insert(w.end(), p.value->begin(), p.value->end());
    return w;
  };
  const auto a = train(3), b = train(3), c = train(4);
  CHECK(a == b);
  CHECK(a != c);
}

TEST_CASE("gradient-norm clipping covers recurrent parameters", "[recurrent]") {
  Network<double> net({6, 2}, 51);
  net.emplace<Gru<double>>(4, options(true));
  net.emplace<FrameDense<double>>(3);
  Tensor<double> x = random_tensor({2, 6, 2}, 52);
  net.zero_grad();
  net.forward(x, Mode::kTrain);
  net.backward(random_tensor({2, 6, 3}, 53, 5, 10));
  const double before = clip_grad_norm(net.params(), 0.0);  // no-op: measures
  REQUIRE(before > 1);
  clip_grad_norm(net.params(), 0.5);
  double sq = 0;
  for (auto& p : net.params())
    for (double g : *p.grad) sq += g * g;
  CHECK(std::sqrt(sq) == Approx(0.5));
}

// ---- Bad input ----------------------------------------------------------------------------------

// A recurrent layer's last state has no frames: the input's lengths end there, and a sequence made
// again above it (reshape) has all of its frames valid. (Once, the stale lengths reached the
// frame_dense above and were refused as longer than its 2 frames.)
TEST_CASE("sequence lengths end at a layer with a flat output", "[recurrent][padding]") {
  Network<D> net({kDynamic, 2}, 5);
  net.emplace<Recurrent<D>>(Cell::kLstm, 4, options(true, SequenceOutput::kLast));
  net.emplace<Reshape<D>>(Shape{2, 4});
  net.emplace<FrameDense<D>>(3);
  const std::vector<int32_t> lengths = {6, 3, 5};
  const Tensor<D> x = random_tensor({3, 6, 2}, 6);
  const Tensor<D>& y = net.forward(x, Mode::kTrain, &lengths);
  CHECK(y.shape() == Shape{3, 2, 3});
  CHECK(net.output_lengths() == std::vector<int32_t>{2, 2, 2});
  bpkit_test::check_network_gradients(net, 3, 7, 1e-6, &lengths);
}

TEST_CASE("flatten and reshape refuse a shape whose size varies", "[recurrent][errors]") {
  Network<D> net({kDynamic, 2}, 5);
  CHECK_THROWS_WITH(net.emplace<Reshape<D>>(), Contains("whose size varies"));
  Network<D> line({1, 8, kDynamic}, 5);
  CHECK_THROWS_WITH(line.emplace<Reshape<D>>(), Contains("use a 'columns' layer"));
}

TEST_CASE("recurrent layers refuse bad input with clear errors", "[recurrent][errors]") {
  SECTION("a declared feature size that the previous layer does not give") {
    Network<float> net({kDynamic, 40}, 1);
    RecurrentOptions o;
    o.in_features = 30;
    const std::string msg =
        error_of<ShapeError>([&] { net.add(std::make_unique<Lstm<float>>(8, o), "enc"); });
    CHECK_THAT(msg, Contains("'enc' (lstm)") && Contains("[time,30]") && Contains("[-1,40]"));
  }
  SECTION("a non-sequence input") {
    Network<float> net({40}, 1);
    const std::string msg = error_of<ShapeError>([&] { net.emplace<Gru<float>>(8); });
    CHECK_THAT(msg, Contains("(gru)") && Contains("[time, features]") && Contains("[40]"));
  }
  SECTION("an image: the error says which layer turns it into frames") {
    Network<float> net({1, 32, kDynamic}, 1);
    CHECK_THAT(error_of<ShapeError>([&] { net.emplace<Lstm<float>>(8); }),
               Contains("[1,32,-1]") && Contains("add a 'columns' layer before it"));
    Network<float> flat({40}, 1);
    CHECK_THAT(error_of<ShapeError>([&] { flat.emplace<FrameDense<float>>(4); }),
               Contains("features that come as frames"));
  }
  SECTION("a batch with the wrong feature size") {
    Network<float> net({kDynamic, 4}, 1);
    net.add(std::make_unique<Lstm<float>>(3), "enc");
    Tensor<float> x({2, 5, 3});
    CHECK_THAT(error_of<ShapeError>([&] { net.forward(x, Mode::kInfer); }),
               Contains("[batch,-1,4]") && Contains("[2,5,3]"));
    // The layer on its own names itself and both shapes.
    Tensor<float> y;
    CHECK_THAT(error_of<ShapeError>([&] { net.layer(0).forward(x, y, Mode::kInfer); }),
               Contains("'enc' (lstm)") && Contains("[batch,time,4]") && Contains("[2,5,3]"));
  }
  SECTION("an empty sequence, a zero length, lengths beyond the padding, a wrong count") {
    Network<float> net({kDynamic, 2}, 1);
    net.emplace<ElmanRnn<float>>(3);
    Tensor<float> empty({2, 0, 2});
    CHECK_THAT(error_of<ShapeError>([&] { net.forward(empty, Mode::kInfer); }),
               Contains("empty sequence"));
    Tensor<float> x({2, 4, 2});
    std::vector<int32_t> zero = {4, 0}, long_ = {5, 2}, count = {4};
    CHECK_THAT(error_of<ShapeError>([&] { net.forward(x, Mode::kInfer, &zero); }),
               Contains("sample 1 has length 0") && Contains("1..4"));
    CHECK_THAT(error_of<ShapeError>([&] { net.forward(x, Mode::kInfer, &long_); }),
               Contains("sample 0 has length 5") && Contains("1..4"));
    CHECK_THAT(error_of<ShapeError>([&] { net.forward(x, Mode::kInfer, &count); }),
               Contains("1 sequence lengths for a batch of 2"));
    // Given straight to the layer, too.
    Tensor<float> y;
    net.layer(0).set_lengths(&long_);
    CHECK_THAT(error_of<ShapeError>([&] { net.layer(0).forward(x, y, Mode::kInfer); }),
               Contains("(rnn)") && Contains("sample 0 has length 5"));
    Tensor<float> empty_direct({1, 0, 2});
    net.layer(0).set_lengths(nullptr);
    CHECK_THAT(error_of<ShapeError>([&] { net.layer(0).forward(empty_direct, y, Mode::kInfer); }),
               Contains("empty sequence"));
  }
  SECTION("bad attributes") {
    Attrs a;
    a.set("units", 4).set("output", "first");
    CHECK_THAT(error_of<ShapeError>([&] { make_layer<float>("lstm", a); }),
               Contains("'output'") && Contains("first"));
    Attrs b;
    b.set("units", 4).set("bptt", -2);
    CHECK_THAT(error_of<ShapeError>([&] { make_layer<float>("gru", b); }), Contains("bptt"));
    Attrs c;
    c.set("units", 0);
    CHECK_THAT(error_of<ShapeError>([&] { make_layer<float>("rnn", c); }), Contains("units"));
  }
}

// ---- Learning -----------------------------------------------------------------------------------

// Sequences of ±1 (padded), label = the sign of the first frame: the answer must be carried through
// every later frame. A forward LSTM reading the last state learns it for lengths 12..24 (which
// takes BPTT: with the gradient cut at every frame it stays at chance, while the untrained
// recurrence alone carries enough of the first frame over a dozen frames for a read-out to learn);
// a GRU, whose update gate starts at ½ without a forget-bias equivalent, for lengths 4..12.
TEST_CASE("LSTM and GRU learn to remember the first frame of variable-length sequences",
          "[recurrent][learning]") {
  for (Cell cell : {Cell::kLstm, Cell::kGru}) {
    INFO(cell_name(cell));
    Network<float> net({kDynamic, 1}, 11);
    net.emplace<Recurrent<float>>(cell, 16, options(false, SequenceOutput::kLast));
    net.emplace<Dense<float>>(2);
    Adam<float> opt(net.params(), 0.02);
    SoftmaxCrossEntropy<float> loss;
    Rng rng(12);
    const int64_t B = 32, TT = cell == Cell::kLstm ? 24 : 12;
    const int64_t shortest = cell == Cell::kLstm ? 12 : 4;
    auto batch = [&](Tensor<float>& x, std::vector<int32_t>& lengths, Targets<float>& t) {
      x.resize({B, TT, 1});
      x.zero();
      lengths.resize(size_t(B));
      t.labels.resize(size_t(B));
      for (int64_t b = 0; b < B; ++b) {
        lengths[size_t(b)] = int32_t(shortest + rng.below(uint64_t(TT - shortest + 1)));
        for (int64_t s = 0; s < lengths[size_t(b)]; ++s)
          x[b * TT + s] = rng.uniform() < 0.5 ? -1.0f : 1.0f;
        t.labels[size_t(b)] = x[b * TT] > 0 ? 1 : 0;
      }
    };
    Tensor<float> x, grad;
    std::vector<int32_t> lengths;
    Targets<float> t;
    for (int step = 0; step < 400; ++step) {
      batch(x, lengths, t);
      net.zero_grad();
      loss.compute(net.forward(x, Mode::kTrain, &lengths), t, grad);
      net.backward(grad);
      clip_grad_norm(net.params(), 5.0);
      opt.step();
    }
    int correct = 0, total = 0;
    for (int rep = 0; rep < 8; ++rep) {
      batch(x, lengths, t);
      const Tensor<float>& y = net.forward(x, Mode::kInfer, &lengths);
      for (int64_t b = 0; b < B; ++b, ++total)
        correct += (y[b * 2 + 1] > y[b * 2]) == (t.labels[size_t(b)] == 1);
    }
    CHECK(double(correct) / total > 0.97);
  }
}

// The path a speech or OCR model takes: a bidirectional LSTM, a per-frame linear layer and the CTC
// loss over padded batches of variable length, with the lengths the network reports. Each label
// (1..3) is drawn as 2–3 frames of its one-hot feature with noise, labels separated by 0–2 silent
// frames; after training, greedy decoding transcribes unseen sequences.
TEST_CASE("bidirectional LSTM + frame_dense + CTC learns to transcribe", "[recurrent][learning]") {
  Network<float> net({kDynamic, 3}, 21);
  net.emplace<Lstm<float>>(16, options(true));
  net.emplace<FrameDense<float>>(4);
  Adam<float> opt(net.params(), 0.02);
  CtcLoss<float> loss(0);
  Rng rng(22);
  const int64_t B = 16, TT = 22;  // the longest sequence: 1 + 4·3 + 4·2 = 21 frames
  auto batch = [&](Tensor<float>& x, std::vector<int32_t>& lengths, Targets<float>& t) {
    x.resize({B, TT, 3});
    x.zero();
    lengths.assign(size_t(B), 0);
    t.sequences.assign(size_t(B), {});
    for (int64_t b = 0; b < B; ++b) {
      const int n = 2 + int(rng.below(3));
      int64_t frame = int64_t(rng.below(2));
      for (int k = 0; k < n; ++k) {
        const int32_t label = int32_t(1 + rng.below(3));
        t.sequences[size_t(b)].push_back(label);
        const int64_t width = 2 + int64_t(rng.below(2));
        for (int64_t w = 0; w < width; ++w, ++frame)
          for (int64_t f = 0; f < 3; ++f)
            x[(b * TT + frame) * 3 + f] =
                (f == label - 1 ? 1.0f : 0.0f) + 0.2f * float(rng.normal());
        frame += int64_t(rng.below(3));
      }
      lengths[size_t(b)] = int32_t(std::max<int64_t>(frame, 1));
    }
  };
  Tensor<float> x, grad;
  std::vector<int32_t> lengths;
  Targets<float> t;
  for (int step = 0; step < 300; ++step) {
    batch(x, lengths, t);
    const Tensor<float>& y = net.forward(x, Mode::kTrain, &lengths);
    t.lengths = net.output_lengths();
    net.zero_grad();
    loss.compute(y, t, grad);
    net.backward(grad);
    clip_grad_norm(net.params(), 5.0);
    opt.step();
  }
  int correct = 0, total = 0;
  for (int rep = 0; rep < 4; ++rep) {
    batch(x, lengths, t);
    const Tensor<float>& y = net.forward(x, Mode::kInfer, &lengths);
    for (int64_t b = 0; b < B; ++b, ++total)
      correct += ctc_greedy_decode(y, b, net.output_lengths()[size_t(b)]).labels() ==
                 t.sequences[size_t(b)];
  }
  CHECK(double(correct) / total > 0.9);
}

// The forward pass against the documented equations, written out naively (one sample, one frame,
// one unit at a time) from the layer's own parameters: weight_ih [F, D·G·H], weight_hh [D, H, G·H],
// bias [D·G·H], bias_hn [D·H]; gates [i f g o] (LSTM) and [r z n] (GRU).
TEST_CASE("recurrent forward passes follow the documented equations", "[recurrent]") {
  const int64_t F = 3, H = 4, TT = 5;
  const std::vector<int32_t> lengths = {5, 3};
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (Cell cell : kCells) {
    INFO(cell_name(cell));
    Network<D> net({TT, F}, 91);
    auto& layer = net.emplace<Recurrent<D>>(cell, H, options(true));
    // Nonzero biases everywhere, so that each one's place in the equations is checked.
    for (auto& p : layer.params())
      if (p.name.find("bias") != std::string::npos) *p.value = random_tensor(p.value->shape(), 92);
    const auto params = layer.params();
    const Tensor<D>&wx = *params[0].value, &wh = *params[1].value, &bias = *params[2].value;
    const Tensor<D>* bhn = cell == Cell::kGru ? params[3].value : nullptr;
    const int64_t G = cell == Cell::kLstm ? 4 : cell == Cell::kGru ? 3 : 1, GH = G * H;
    Tensor<D> x = random_tensor({2, TT, F}, 93);
    const Tensor<D>& y = net.forward(x, Mode::kInfer, &lengths);
    double worst = 0;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t d = 0; d < 2; ++d) {
        const int64_t L = lengths[size_t(b)];
        std::vector<double> h(static_cast<size_t>(H), 0.0), c(static_cast<size_t>(H), 0.0);
        for (int64_t s = 0; s < L; ++s) {
          const int64_t t = d == 0 ? s : L - 1 - s;
          // Input side a[k] = Σ_f x·Wx + b, recurrent side r[k] = Σ_j h·Wh.
          std::vector<double> a(static_cast<size_t>(GH)), r(static_cast<size_t>(GH));
          for (int64_t k = 0; k < GH; ++k) {
            a[size_t(k)] = bias[d * GH + k];
            for (int64_t f = 0; f < F; ++f)
              a[size_t(k)] += x[(b * TT + t) * F + f] * wx[f * 2 * GH + d * GH + k];
            r[size_t(k)] = 0;
            for (int64_t j = 0; j < H; ++j) r[size_t(k)] += h[size_t(j)] * wh[(d * H + j) * GH + k];
          }
          std::vector<double> hn(static_cast<size_t>(H));
          for (int64_t u = 0; u < H; ++u) {
            const size_t U = size_t(u);
            if (cell == Cell::kElman) {
              hn[U] = std::tanh(a[U] + r[U]);
            } else if (cell == Cell::kLstm) {
              const double i = sig(a[U] + r[U]), f = sig(a[U + H] + r[U + H]);
              const double g = std::tanh(a[U + 2 * H] + r[U + 2 * H]);
              const double o = sig(a[U + 3 * H] + r[U + 3 * H]);
              c[U] = f * c[U] + i * g;
              hn[U] = o * std::tanh(c[U]);
            } else {
              const double rr = sig(a[U] + r[U]), z = sig(a[U + H] + r[U + H]);
              const double n = std::tanh(a[U + 2 * H] + rr * (r[U + 2 * H] + (*bhn)[d * H + u]));
              hn[U] = (1 - z) * n + z * h[U];
            }
          }
          h = hn;
          for (int64_t u = 0; u < H; ++u)
            worst = std::max(worst, std::abs(y[(b * TT + t) * 2 * H + d * H + u] - h[size_t(u)]));
        }
      }
    CHECK(worst < 1e-12);
  }
}

TEST_CASE("before_epoch replaces the training samples' inputs every epoch, never validation's",
          "[recurrent][learning]") {
  // Sequences of one label each, the label's feature set on every frame; before_epoch gives each
  // training sample a new length every epoch (as augmentation re-made from audio would).
  SequenceDataset d;
  d.classes = 3;
  const int64_t n = 40;
  auto make = [](int32_t label, int64_t frames) {
    Tensor<float> x({frames, 2});
    x.zero();
    for (int64_t t = 0; t < frames; ++t) x[t * 2 + (label - 1)] = 1.f;
    return x;
  };
  for (int64_t i = 0; i < n; ++i) {
    const int32_t label = int32_t(1 + i % 2);
    d.x.push_back(make(label, 4));
    d.sequences.push_back({label});
  }
  Network<float> net({kDynamic, 2}, 3);
  net.emplace<Lstm<float>>(6, options(false));
  net.emplace<FrameDense<float>>(3);
  Adam<float> opt(net.params(), 0.02);
  CtcLoss<float> loss(0);
  TrainOptions o;
  o.epochs = 3;
  o.batch = 8;
  o.validation_split = 0.25;
  std::vector<std::vector<int64_t>> calls;
  o.before_epoch = [&](int epoch, const std::vector<int64_t>& ids) {
    CHECK(epoch == int(calls.size()));
    calls.push_back(ids);
    for (int64_t id : ids) d.x[size_t(id)] = make(d.sequences[size_t(id)][0], 5 + epoch + id % 3);
  };
  fit(net, loss, opt, d, o);
  REQUIRE(calls.size() == 3);
  std::vector<int64_t> ids = calls[0];
  std::sort(ids.begin(), ids.end());
  REQUIRE(ids.size() == size_t(n - 10));
  CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
  CHECK(calls[1] == calls[0]);
  // The validation samples kept their 4 frames; the training samples have their last epoch's.
  int64_t untouched = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool train = std::binary_search(ids.begin(), ids.end(), i);
    CHECK(d.x[size_t(i)].dim(0) == (train ? 7 + i % 3 : 4));
    untouched += !train;
  }
  CHECK(untouched == 10);
  // Fixed-shape data has no per-epoch hook.
  Dataset fixed;
  fixed.x = Tensor<float>({4, 2});
  fixed.x.zero();
  fixed.y = {0, 1, 0, 1};
  Network<float> dense({2}, 1);
  dense.emplace<Dense<float>>(2);
  Sgd<float> sgd(dense.params(), 0.1, 0.0);
  SoftmaxCrossEntropy<float> ce;
  CHECK_THROWS_AS(fit(dense, ce, sgd, fixed, o), std::invalid_argument);
}
