// Optimizer updates, schedules and gradient clipping against values worked out by hand (the
// arithmetic is in the comments). Parameters are built directly from tensors, without a network.
#include <catch2/catch.hpp>
#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "bpkit/optimizer.h"

using namespace bpkit;

namespace {

// One parameter tensor and its gradient, owned by the test.
struct Slot {
  Tensor<double> value, grad;
  Slot(std::initializer_list<double> w) : value({int64_t(w.size())}), grad({int64_t(w.size())}) {
    int64_t i = 0;
    for (double v : w) value[i++] = v;
  }
  void set_grad(std::initializer_list<double> g) {
    REQUIRE(int64_t(g.size()) == grad.size());
    int64_t i = 0;
    for (double v : g) grad[i++] = v;
  }
  Param<double> param(const std::string& name, bool decay = true) {
    return {name, &value, &grad, decay};
  }
};

Approx exactly(double v) {
  return Approx(v).epsilon(1e-12).margin(1e-15);
}

}  // namespace

TEST_CASE("sgd without momentum: w -= lr * g", "[optimizer]") {
  Slot s{1.0, -2.0};
  Sgd<double> opt({s.param("w")}, 0.1);
  s.set_grad({0.5, 0.25});
  opt.step();
  CHECK(s.value[0] == exactly(0.95));    // 1 − 0.1·0.5
  CHECK(s.value[1] == exactly(-2.025));  // −2 − 0.1·0.25
  s.set_grad({-1.0, 0.0});
  opt.step();
  CHECK(s.value[0] == exactly(1.05));  // 0.95 + 0.1·1
  CHECK(s.value[1] == exactly(-2.025));
}

TEST_CASE("sgd with momentum over three steps", "[optimizer]") {
  // v ← 0.9·v + g, w ← w − 0.1·v, from w = 0, v = 0.
  Slot s{0.0};
  Sgd<double> opt({s.param("w")}, 0.1, 0.9);
  s.set_grad({1.0});
  opt.step();  // v = 1, w = −0.1
  CHECK(s.value[0] == exactly(-0.1));
  s.set_grad({-0.5});
  opt.step();  // v = 0.9 − 0.5 = 0.4, w = −0.1 − 0.04 = −0.14
  CHECK(s.value[0] == exactly(-0.14));
  s.set_grad({2.0});
  opt.step();  // v = 0.36 + 2 = 2.36, w = −0.14 − 0.236 = −0.376
  CHECK(s.value[0] == exactly(-0.376));
  REQUIRE(opt.state().size() == 1);
  CHECK((*opt.state()[0])[0] == exactly(2.36));
}

TEST_CASE("sgd with nesterov momentum", "[optimizer]") {
  // v ← 0.9·v + g, w ← w − 0.1·(g + 0.9·v).
  Slot s{0.0};
  Sgd<double> opt({s.param("w")}, 0.1, 0.9, /*nesterov=*/true);
  CHECK(opt.kind() == "nesterov");
  s.set_grad({1.0});
  opt.step();  // v = 1, w = −0.1·(1 + 0.9) = −0.19
  CHECK(s.value[0] == exactly(-0.19));
  s.set_grad({-0.5});
  opt.step();  // v = 0.9 − 0.5 = 0.4, w = −0.19 − 0.1·(−0.5 + 0.36) = −0.19 + 0.014 = −0.176
  CHECK(s.value[0] == exactly(-0.176));
}

TEST_CASE("sgd weight decay applies only to parameters marked decay", "[optimizer]") {
  Slot weight{2.0}, bias{2.0};
  SECTION("without momentum: w -= lr * (g + wd * w)") {
    Sgd<double> opt({weight.param("w", true), bias.param("b", false)}, 0.1, 0, false, 0.01);
    weight.set_grad({0.5});
    bias.set_grad({0.5});
    opt.step();
    CHECK(weight.value[0] == exactly(1.948));  // 2 − 0.1·(0.5 + 0.01·2) = 2 − 0.052
    CHECK(bias.value[0] == exactly(1.95));     // 2 − 0.1·0.5
  }
  SECTION("with momentum: the decay term enters the velocity") {
    Sgd<double> opt({weight.param("w", true), bias.param("b", false)}, 0.1, 0.5, false, 0.1);
    weight.set_grad({0.0});
    bias.set_grad({0.0});
    opt.step();  // v = 0 + 0.1·2 = 0.2, w = 2 − 0.02 = 1.98
    CHECK(weight.value[0] == exactly(1.98));
    opt.step();  // v = 0.5·0.2 + 0.1·1.98 = 0.298, w = 1.98 − 0.0298 = 1.9502
    CHECK(weight.value[0] == exactly(1.9502));
    CHECK(bias.value[0] == exactly(2.0));
  }
}

TEST_CASE("adam: two steps with bias correction", "[optimizer]") {
  // lr 0.1, β1 0.9, β2 0.999, ε 1e-8, w0 = 1.
  // Step 1, g = 0.5: m = 0.05, v = 0.001·0.25 = 0.00025; m̂ = 0.05/0.1 = 0.5,
  //   v̂ = 0.00025/0.001 = 0.25; w = 1 − 0.1·0.5/(√0.25 + 1e-8) = 1 − 0.099999998 = 0.900000002.
  // Step 2, g = −0.25: m = 0.045 − 0.025 = 0.02, v = 0.999·0.00025 + 0.001·0.0625 = 0.00031225;
  //   m̂ = 0.02/(1 − 0.81) = 0.1052631579, v̂ = 0.00031225/(1 − 0.998001) = 0.1562031016;
  //   w = 0.900000002 − 0.1·0.1052631579/(0.3952253808 + 1e-8) = 0.8733662987.
  Slot s{1.0};
  Adam<double> opt({s.param("w")}, 0.1);
  s.set_grad({0.5});
  opt.step();
  CHECK(opt.steps() == 1);
  CHECK(s.value[0] == Approx(0.900000002).epsilon(1e-12));
  s.set_grad({-0.25});
  opt.step();
  CHECK(s.value[0] == Approx(0.8733662987078463).epsilon(1e-12));
  REQUIRE(opt.state().size() == 2);  // m, then v
  CHECK((*opt.state()[0])[0] == exactly(0.02));
  CHECK((*opt.state()[1])[0] == exactly(0.00031225));
}

TEST_CASE("adam weight decay: decoupled (AdamW) and L2", "[optimizer]") {
  Slot weight{1.0}, bias{1.0};
  SECTION("decoupled: w ← w·(1 − lr·wd) − adam step; skipped for decay=false") {
    Adam<double> opt({weight.param("w", true), bias.param("b", false)}, 0.1, 0.9, 0.999, 1e-8,
                     /*weight_decay=*/0.1, /*decoupled=*/true);
    weight.set_grad({0.5});
    bias.set_grad({0.5});
    opt.step();
    // 1·(1 − 0.01) − 0.099999998 = 0.890000002; the bias takes the plain step of the test above.
    CHECK(weight.value[0] == Approx(0.890000002).epsilon(1e-12));
    CHECK(bias.value[0] == Approx(0.900000002).epsilon(1e-12));
    weight.set_grad({-0.25});
    bias.set_grad({-0.25});
    opt.step();
    // 0.890000002·0.99 − 0.0266337033 (the same Adam step as above) = 0.8544662987.
    CHECK(weight.value[0] == Approx(0.8544662986878463).epsilon(1e-12));
    CHECK(bias.value[0] == Approx(0.8733662987078463).epsilon(1e-12));
  }
  SECTION("L2: wd·w is added to the gradient before the moments") {
    Adam<double> opt({weight.param("w", true)}, 0.1, 0.9, 0.999, 1e-8, 0.1, /*decoupled=*/false);
    weight.set_grad({0.5});
    opt.step();
    // g = 0.5 + 0.1·1 = 0.6: m = 0.06, v = 0.00036, m̂ = 0.6, v̂ = 0.36;
    // w = 1 − 0.1·0.6/(0.6 + 1e-8) = 0.9000000017.
    CHECK(weight.value[0] == Approx(0.9000000016666666).epsilon(1e-12));
    weight.set_grad({-0.25});
    opt.step();
    // g = −0.25 + 0.1·0.9000000017 = −0.16: m = 0.054 − 0.016 = 0.038,
    // v = 0.999·0.00036 + 0.001·0.0256 = 0.00038524; m̂ = 0.038/0.19 = 0.2,
    // v̂ = 0.00038524/0.001999 = 0.1927163582;
    // w = 0.9000000017 − 0.1·0.2/(0.4389947132 + 1e-8) = 0.8544413675.
    CHECK(weight.value[0] == Approx(0.8544413674617625).epsilon(1e-10));
  }
}

TEST_CASE("rprop: grow, shrink and skip on a sign flip, clamp to the step bounds", "[optimizer]") {
  // Initial step 0.1, η− 0.5, η+ 1.2, step bounds [0.03, 0.15]; four weights from 0:
  //   w0: gradient keeps its sign     → steps 0.1, 0.12, 0.144, then 0.1728 clamped to 0.15
  //   w1: gradient flips              → step halves, update skipped, next step uses the new size
  //   w2: negative gradient, same sign → mirror of w0 (moves up)
  //   w3: zero gradient               → never moves
  Slot s{0.0, 0.0, 0.0, 0.0};
  Rprop<double> opt({s.param("w")}, 0.1, 0.5, 1.2, 0.03, 0.15);
  const Tensor<double>& step = *opt.state()[0];

  s.set_grad({1, 1, -1, 0});
  opt.step();  // no previous gradient: every step stays 0.1
  CHECK(s.value[0] == exactly(-0.1));
  CHECK(s.value[1] == exactly(-0.1));
  CHECK(s.value[2] == exactly(0.1));
  CHECK(s.value[3] == exactly(0.0));

  s.set_grad({2, -1, -3, 0});
  opt.step();
  CHECK(step[0] == exactly(0.12));      // 0.1·1.2
  CHECK(s.value[0] == exactly(-0.22));  // −0.1 − 0.12
  CHECK(step[1] == exactly(0.05));      // flip: 0.1·0.5
  CHECK(s.value[1] == exactly(-0.1));   // and no update
  CHECK(s.value[2] == exactly(0.22));   // 0.1 + 0.12
  CHECK(step[3] == exactly(0.1));
  CHECK(s.value[3] == exactly(0.0));

  s.set_grad({1, -1, -1, 0});
  opt.step();
  CHECK(step[0] == exactly(0.144));      // 0.12·1.2
  CHECK(s.value[0] == exactly(-0.364));  // −0.22 − 0.144
  CHECK(step[1] == exactly(0.05));       // the skipped step left no sign to compare: unchanged
  CHECK(s.value[1] == exactly(-0.05));   // −0.1 + 0.05
  CHECK(s.value[2] == exactly(0.364));

  s.set_grad({1, 1, -1, 0});
  opt.step();
  CHECK(step[0] == exactly(0.15));       // 0.144·1.2 = 0.1728, clamped to step_max
  CHECK(s.value[0] == exactly(-0.514));  // −0.364 − 0.15
  CHECK(step[1] == exactly(0.03));       // flip: 0.05·0.5 = 0.025, clamped to step_min
  CHECK(s.value[1] == exactly(-0.05));   // skipped
  CHECK(s.value[2] == exactly(0.514));

  s.set_grad({1, 1, -1, 0});
  opt.step();
  CHECK(step[0] == exactly(0.15));  // stays at the maximum
  CHECK(s.value[0] == exactly(-0.664));
  CHECK(s.value[1] == exactly(-0.08));  // −0.05 − 0.03: the clamped step is used
  CHECK(s.value[3] == exactly(0.0));
}

TEST_CASE("learning-rate schedules", "[optimizer]") {
  Schedule constant;
  CHECK(constant.lr_at(0.1, 0) == exactly(0.1));
  CHECK(constant.lr_at(0.1, 7) == exactly(0.1));

  Schedule step;
  step.kind = Schedule::kStep;
  step.step_size = 2;
  step.gamma = 0.5;
  CHECK(step.lr_at(0.1, 0) == exactly(0.1));
  CHECK(step.lr_at(0.1, 1) == exactly(0.1));
  CHECK(step.lr_at(0.1, 2) == exactly(0.05));  // 0.1·0.5^(2/2)
  CHECK(step.lr_at(0.1, 3) == exactly(0.05));
  CHECK(step.lr_at(0.1, 4) == exactly(0.025));   // 0.1·0.5^2
  CHECK(step.lr_at(0.1, 7) == exactly(0.0125));  // 0.1·0.5^3

  Schedule cosine;
  cosine.kind = Schedule::kCosine;
  cosine.total_epochs = 4;
  cosine.min_lr = 0.01;
  // lr = min + (base − min)·(1 + cos(π·epoch/total))/2, with base 0.1, min 0.01.
  CHECK(cosine.lr_at(0.1, 0) == exactly(0.1));
  CHECK(cosine.lr_at(0.1, 1) == exactly(0.01 + 0.09 * (1 + std::sqrt(0.5)) / 2));  // 0.0868198
  CHECK(cosine.lr_at(0.1, 2) == exactly(0.055));                                   // 0.01 + 0.045
  CHECK(cosine.lr_at(0.1, 3) == exactly(0.01 + 0.09 * (1 - std::sqrt(0.5)) / 2));  // 0.0231802
  CHECK(cosine.lr_at(0.1, 4) == exactly(0.01));
  CHECK(cosine.lr_at(0.1, 9) == exactly(0.01));  // stays at min_lr after the last epoch
}

TEST_CASE("clip_grad_norm scales all gradients to the global norm", "[optimizer]") {
  Slot a{0.0, 0.0}, b{0.0};
  a.set_grad({3, 4});
  b.set_grad({12});
  const std::vector<Param<double>> params{a.param("a"), b.param("b")};
  SECTION("above the limit: scaled by max_norm / norm") {
    CHECK(clip_grad_norm(params, 6.5) == exactly(13.0));  // √(9 + 16 + 144)
    CHECK(a.grad[0] == exactly(1.5));                     // ·6.5/13 = ·0.5
    CHECK(a.grad[1] == exactly(2.0));
    CHECK(b.grad[0] == exactly(6.0));
    CHECK(clip_grad_norm(params, 0) == exactly(6.5));  // the new norm
  }
  SECTION("below the limit, or clipping off: unchanged") {
    CHECK(clip_grad_norm(params, 20) == exactly(13.0));
    CHECK(clip_grad_norm(params, 0) == exactly(13.0));
    CHECK(a.grad[0] == 3.0);
    CHECK(a.grad[1] == 4.0);
    CHECK(b.grad[0] == 12.0);
  }
}

TEST_CASE("optimizers in float follow the same arithmetic", "[optimizer]") {
  Tensor<float> w({1}, 1.0f), g({1}, 0.5f);
  Sgd<float> opt({{"w", &w, &g, true}}, 0.1, 0.9);
  opt.step();  // v = 0.5, w = 1 − 0.05
  opt.step();  // v = 0.45 + 0.5 = 0.95, w = 0.95 − 0.095 = 0.855
  CHECK(w[0] == Approx(0.855f).epsilon(1e-6));
}
