// Training-time augmentation: the affine transform of one image, the per-batch draws, and that
// fit() with augmentation stays reproducible.
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "bpkit/augment.h"
#include "bpkit/layers.h"
#include "bpkit/loss.h"
#include "bpkit/network.h"
#include "bpkit/optimizer.h"
#include "bpkit/threading.h"
#include "bpkit/trainer.h"

using namespace bpkit;

namespace {

struct Threads {
  int saved = num_threads();
  explicit Threads(int n) { set_num_threads(n); }
  ~Threads() { set_num_threads(saved); }
};

// A 5x5 single-channel image, zero but for one pixel.
std::vector<float> dot(int x, int y) {
  std::vector<float> im(25, 0.0f);
  im[size_t(y * 5 + x)] = 1.0f;
  return im;
}

std::vector<float> transformed(const std::vector<float>& in, const AffineDraw& d, float fill = 0) {
  std::vector<float> out(in.size(), -7.0f);
  affine_image(in.data(), out.data(), 1, 5, 5, d, fill);
  return out;
}

}  // namespace

TEST_CASE("affine_image: identity, shifts, rotation, zoom and fill", "[augment]") {
  std::vector<float> ramp(25);
  for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(i) * 0.1f;
  CHECK(transformed(ramp, AffineDraw{}) == ramp);

  AffineDraw right;  // one pixel right, two down: the dot moves, the vacated border takes `fill`
  right.dx = 1;
  right.dy = 2;
  const std::vector<float> moved = transformed(dot(1, 1), right);
  CHECK(moved == dot(2, 3));
  const std::vector<float> filled = transformed(std::vector<float>(25, 1.0f), right, 0.5f);
  CHECK(filled[0 * 5 + 3] == 0.5f);  // row 0 came from outside
  CHECK(filled[4 * 5 + 0] == 0.5f);  // column 0 came from outside
  CHECK(filled[4 * 5 + 4] == 1.0f);

  AffineDraw half;  // half a pixel: bilinear, the dot's mass split between two pixels
  half.dx = 0.5;
  const std::vector<float> split = transformed(dot(2, 2), half);
  CHECK(split[2 * 5 + 2] == Approx(0.5f));
  CHECK(split[2 * 5 + 3] == Approx(0.5f));

  AffineDraw quarter;  // +90 degrees: the pixel above the centre goes to its right (clockwise)
  quarter.angle = std::acos(-1.0) / 2;
  const std::vector<float> turned = transformed(dot(2, 1), quarter);
  CHECK(turned[2 * 5 + 3] == Approx(1.0f).margin(1e-6));
  double mass = 0;
  for (float v : turned) mass += v;
  CHECK(mass == Approx(1.0).margin(1e-6));

  AffineDraw twice;  // zoom 2: a pixel one step from the centre lands two steps away
  twice.zoom = 2;
  CHECK(transformed(dot(3, 2), twice)[2 * 5 + 4] == Approx(1.0f));
}

TEST_CASE("erase_square: a square of fill, clipped at the border", "[augment]") {
  AffineDraw d;
  d.erase_x = 0.5;  // centre pixel 2 of 5: a side of 2 covers pixels 1 and 2
  d.erase_y = 0.5;
  std::vector<float> im(2 * 25, 1.0f);
  erase_square(im.data(), 2, 5, 5, d, 2, 0.25f);
  for (int c = 0; c < 2; ++c)
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 5; ++x) {
        CAPTURE(c, x, y);
        CHECK(im[size_t(c * 25 + y * 5 + x)] ==
              (x >= 1 && x <= 2 && y >= 1 && y <= 2 ? 0.25f : 1.0f));
      }
  d.erase_x = 0;  // at the corner only the part inside the image is erased
  d.erase_y = 0;
  std::vector<float> corner(25, 1.0f);
  erase_square(corner.data(), 1, 5, 5, d, 3, 0.0f);
  float erased = 0;
  for (float v : corner) erased += 1 - v;
  CHECK(erased == 4);  // pixels (0,0), (1,0), (0,1), (1,1)
  CHECK(corner[0] == 0);
  CHECK(corner[6] == 0);
  std::vector<float> untouched(25, 1.0f);
  erase_square(untouched.data(), 1, 5, 5, d, 0, 0.0f);
  CHECK(untouched == std::vector<float>(25, 1.0f));
}

TEST_CASE("augment_batch: draws in range, per sample, independent of the thread count",
          "[augment]") {
  Augment a;
  a.shift = 2;
  a.rotate = 10;
  a.scale = 0.1;
  a.erase = 3;
  Rng r(3);
  for (int i = 0; i < 1000; ++i) {
    const AffineDraw d = draw_affine(a, r);
    REQUIRE(std::abs(d.dx) <= 2);
    REQUIRE(std::abs(d.dy) <= 2);
    REQUIRE(std::abs(d.angle) <= 10 * std::acos(-1.0) / 180 + 1e-12);
    REQUIRE(std::abs(d.zoom - 1) <= 0.1 + 1e-12);
    REQUIRE((d.erase_x >= 0 && d.erase_x < 1 && d.erase_y >= 0 && d.erase_y < 1));
  }

  Tensor<float> x({37, 2, 6, 7});
  Rng fill_rng(5);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = float(fill_rng.uniform());
  const Tensor<float> original = x;

  Augment off;  // disabled: untouched, and no draws taken
  Rng r1(9), r2(9);
  augment_batch(x, off, r1);
  CHECK(std::equal(x.data(), x.data() + x.size(), original.data()));
  CHECK(r1.next_u64() == r2.next_u64());

  Tensor<float> one = original, two = original;
  {
    Threads t(1);
    Rng rng(11);
    augment_batch(one, a, rng);
  }
  {
    Threads t(2);
    Rng rng(11);
    augment_batch(two, a, rng);
  }
  CHECK(std::equal(one.data(), one.data() + one.size(), two.data()));
  CHECK_FALSE(std::equal(one.data(), one.data() + one.size(), original.data()));

  // Sample k of the batch is sample k's image under the k-th draw; both channels move alike.
  Rng replay(11);
  const int64_t per = 2 * 6 * 7;
  std::vector<float> expect(static_cast<size_t>(per));
  for (int64_t k = 0; k < 37; ++k) {
    const AffineDraw d = draw_affine(a, replay);
    affine_image(original.data() + k * per, expect.data(), 2, 6, 7, d, 0);
    erase_square(expect.data(), 2, 6, 7, d, a.erase, 0);
    REQUIRE(std::equal(expect.begin(), expect.end(), one.data() + k * per));
  }

  Tensor<float> flat({4, 10});
  CHECK_THROWS_AS(augment_batch(flat, a, r), std::invalid_argument);
}

TEST_CASE("fit with augmentation is reproducible and differs from fit without", "[augment]") {
  // Two classes of 8x8 images: a bright bar in the left half or in the right half.
  Dataset data;
  data.classes = 2;
  data.x.resize({64, 1, 8, 8});
  std::fill(data.x.data(), data.x.data() + data.x.size(), 0.0f);
  for (int64_t i = 0; i < 64; ++i) {
    const int64_t col = (i % 2 ? 5 : 2) + (i / 2) % 2;
    for (int64_t y = 1; y < 7; ++y) data.x[i * 64 + y * 8 + col] = 1;
    data.y.push_back(int32_t(i % 2));
  }
  auto run = [&](const Augment& a) {
    Network<float> net({1, 8, 8}, 4);
    net.emplace<Conv2d<float>>(4, 3, 1, 1);
    net.emplace<ActivationLayer<float>>(Activation::kRelu);
    net.emplace<Reshape<float>>();
    net.emplace<Dense<float>>(2);
    SoftmaxCrossEntropy<float> loss;
    Sgd<float> opt(net.params(), 0.05, 0.9);
    TrainOptions o;
    o.epochs = 3;
    o.batch = 16;
    o.seed = 2;
    o.augment = a;
    fit(net, loss, opt, data, o);
    std::vector<float> w;
    for (auto& p : net.params())
      w.insert(w.end(), p.value->data(), p.value->data() + p.value->size());
    return w;
  };
  Augment a;
  a.shift = 1;
  a.rotate = 5;
  CHECK(run(a) == run(a));
  CHECK(run(a) != run(Augment{}));

  SequenceDataset seqs;
  Network<float> net({3}, 1);
  net.emplace<Dense<float>>(2);
  SoftmaxCrossEntropy<float> loss;
  Sgd<float> opt(net.params(), 0.1);
  TrainOptions o;
  o.augment = a;
  CHECK_THROWS_WITH(fit(net, loss, opt, seqs, o), Catch::Matchers::Contains("not sequences"));
}
