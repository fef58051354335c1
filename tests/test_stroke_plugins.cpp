// The signature plugin library (plugins/strokes) through the plugin host: signature.clean on
// synthesized scans (ruled lines, specks, a red stamp, a printed label, uneven light, two
// resolutions, blank pages), the skeleton's topology on simple shapes, the feature groups'
// behaviour (directions, slant, pressure, scale) and signature.image. Every image is drawn here
// with OpenCV; the library is loaded from the build's plugin directory, as bpkit loads it.
#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"
#include "bpkit/random.h"
#include "plugin_stage.h"

using bpkit::Kind;
using bpkit::Value;
using bpkit_test::Params;
using Catch::Matchers::Contains;

namespace {

const std::string kPluginDir = BPKIT_STROKE_PLUGIN_DIR;

const bpkit::PluginRegistry& registry() {
  static const bpkit::PluginRegistry reg = [] {
    bpkit::PluginRegistry r;
    r.load_library(kPluginDir + "/libbpkit_strokes.so");
    return r;
  }();
  return reg;
}

std::shared_ptr<bpkit::FeaturePlugin> stage(const std::string& name, const Params& params = {}) {
  return bpkit_test::configured_stage(registry(), name, params);
}

// A kImage value of an 8-bit gray or BGR picture, as image.read gives it (float in [0, 1]).
Value image_value(const cv::Mat& m8) {
  cv::Mat f;
  m8.convertTo(f, CV_32F, m8.depth() == CV_8U ? 1.0 / 255 : 1.0);
  Value v;
  v.kind = Kind::kImage;
  v.path = "synthetic";
  v.image.width = f.cols;
  v.image.height = f.rows;
  v.image.channels = f.channels();
  v.image.pixels.assign(f.ptr<float>(), f.ptr<float>() + f.total() * size_t(f.channels()));
  return v;
}

cv::Mat mat_of(const bpkit::Image& im) {
  return cv::Mat(im.height, im.width, CV_32FC(im.channels), const_cast<float*>(im.pixels.data()))
      .clone();
}

std::vector<float> values_of(const Value& v) {
  return {v.tensor.begin(), v.tensor.end()};
}

// The feature groups, one at a time: every group off but `group`.
Params only(const std::string& group) {
  Params p;
  for (const char* g :
       {"direction", "curvature", "width", "topology", "zoning", "pressure", "lbp", "hog"})
    p.push_back({g, g == group ? "true" : "false"});
  return p;
}

struct Topology {
  int ends, junctions, loops, components;
};
// The topology group's counts (stored as ln(1 + n)).
Topology topology_of(const Value& ink) {
  const std::vector<float> f =
      values_of(stage("signature.features", only("topology"))->process(ink));
  REQUIRE(f.size() == 8);
  auto count = [&](int i) { return int(std::lround(std::expm1(f[size_t(i)]))); };
  return {count(0), count(1), count(2), count(3)};
}

// A signature drawn as polylines, in units of pixels at "300 dpi" (scale 1).
using Strokes = std::vector<std::vector<cv::Point2d>>;

// A cursive signature: a tall capital loop, a body of looped letters (a prolate cycloid), a dot
// and a rising tail; about 420 x 190 units, its baseline at y = 35.
Strokes cursive_signature() {
  Strokes s;
  std::vector<cv::Point2d> capital, body, tail, dot;
  for (double t = 0; t <= 2 * CV_PI + 0.6; t += 0.02)
    capital.push_back({25 + 22 * std::sin(t) + 6 * t, -45 - 70 * std::cos(t) + 10 * t});
  for (double t = 0; t <= 7 * CV_PI; t += 0.02)
    body.push_back(
        {75 + 15 * t - 24 * std::sin(t), 5 + 30 * std::cos(t) * (0.8 + 0.2 * std::sin(t / 2))});
  const cv::Point2d end = body.back();
  for (double t = 0; t <= 1; t += 0.02)
    tail.push_back({end.x + 60 * t, end.y - 90 * t * t + 20 * t});
  for (double t = 0; t <= 2 * CV_PI; t += 0.3)
    dot.push_back({200 + 3 * std::cos(t), -55 + 3 * std::sin(t)});
  return {capital, body, tail, dot};
}

// Another signature: angular zigzags, a cross bar and a descending hook; no loops.
Strokes angular_signature() {
  std::vector<cv::Point2d> zig, bar, hook;
  for (int i = 0; i <= 8; ++i) zig.push_back({20.0 + 40 * i, i % 2 ? 40.0 : -60.0});
  bar.push_back({60, -20});
  bar.push_back({300, -35});
  for (double t = 0; t <= 1; t += 0.02) hook.push_back({350 + 50 * t, -40 + 120 * t * t});
  return {zig, bar, hook};
}

// Draws `strokes` scaled by `scale` with their origin at `at` (pixels), `thickness` x scale
// wide, anti-aliased by drawing at 4 times the resolution and averaging: the coverage of each
// pixel is exact whatever the scale (OpenCV's anti-aliased polylines darken where the caps of short
// segments overlap, more so at low resolution).
void draw(cv::Mat& page, const Strokes& strokes, cv::Point2d at, double scale, double thickness,
          const cv::Scalar& color) {
  constexpr int kUp = 4;
  const double width = thickness * scale;
  std::vector<cv::Point2d> all;
  for (const auto& s : strokes)
    for (const cv::Point2d& p : s) all.push_back(at + p * scale);
  cv::Rect2d extent = cv::boundingRect(std::vector<cv::Point2f>(all.begin(), all.end()));
  const int pad = int(std::ceil(width)) + 2;
  const cv::Rect box = cv::Rect(int(extent.x) - pad, int(extent.y) - pad,
                                int(extent.width) + 2 * pad, int(extent.height) + 2 * pad) &
                       cv::Rect(0, 0, page.cols, page.rows);
  cv::Mat fine = cv::Mat::zeros(box.height * kUp, box.width * kUp, CV_8U);
  for (const auto& s : strokes) {
    std::vector<cv::Point> pts;
    for (const cv::Point2d& p : s) {
      const cv::Point2d q = (at + p * scale - cv::Point2d(box.x, box.y)) * kUp;
      pts.emplace_back(int(std::lround(q.x)), int(std::lround(q.y)));
    }
    cv::polylines(fine, pts, false, cv::Scalar(255), std::max(1, int(std::lround(width * kUp))),
                  cv::LINE_8);
  }
  cv::Mat cover;
  cv::resize(fine, cover, box.size(), 0, 0, cv::INTER_AREA);
  cv::Mat region = page(box);
  for (int y = 0; y < box.height; ++y)
    for (int x = 0; x < box.width; ++x) {
      const double c = cover.at<uchar>(y, x) / 255.0;
      uchar* px = region.ptr<uchar>(y) + x * region.channels();
      for (int ch = 0; ch < region.channels(); ++ch)
        px[ch] = cv::saturate_cast<uchar>(px[ch] * (1 - c) + color[ch] * c);
    }
}

// A white page of width x height pixels (8-bit gray, or BGR with color) holding `strokes`.
cv::Mat page_with(const Strokes& strokes, int width, int height, cv::Point2d at, double scale,
                  double gray = 30, bool color = false) {
  cv::Mat page(height, width, color ? CV_8UC3 : CV_8U, cv::Scalar::all(255));
  draw(page, strokes, at, scale, 4, cv::Scalar::all(gray));
  return page;
}

// The binarized strokes of an ink image (half the maximum darkness).
cv::Mat strokes_of(const cv::Mat& ink) {
  double lo, hi;
  cv::minMaxLoc(ink, &lo, &hi);
  return ink > 0.5 * hi;
}

// The longest horizontal run of strokes in an ink image.
int longest_run(const cv::Mat& ink) {
  const cv::Mat s = strokes_of(ink);
  int longest = 0;
  for (int y = 0; y < s.rows; ++y) {
    int run = 0;
    for (int x = 0; x < s.cols; ++x) {
      run = s.at<uchar>(y, x) ? run + 1 : 0;
      longest = std::max(longest, run);
    }
  }
  return longest;
}

double iou(const cv::Mat& a, const cv::Mat& b) {
  return double(cv::countNonZero(a & b)) / std::max(1, cv::countNonZero(a | b));
}

// Euclidean distance between two feature vectors over their mean norm.
double relative_distance(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double d = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    d += double(a[i] - b[i]) * (a[i] - b[i]);
    na += double(a[i]) * a[i];
    nb += double(b[i]) * b[i];
  }
  return std::sqrt(d) / ((std::sqrt(na) + std::sqrt(nb)) / 2);
}

// The mean slope x on y (mu11 / mu02) of the ink's components taller than 10 pixels: 0 for
// upright strokes, < 0 for strokes leaning right (image y points down).
double mean_component_slope(const cv::Mat& ink) {
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(strokes_of(ink), labels, stats, centroids, 8);
  double sum = 0;
  int count = 0;
  for (int c = 1; c < n; ++c) {
    if (stats.at<int>(c, cv::CC_STAT_HEIGHT) <= 10) continue;
    const cv::Moments m = cv::moments(labels == c, true);
    sum += m.mu11 / m.mu02;
    ++count;
  }
  REQUIRE(count > 0);
  return sum / count;
}

// The cursive signature on a cluttered scan: uneven light, a slightly slanted ruled line through
// its lower loops, specks all over, a red stamp overlapping its end, a printed label set apart
// on its left, sensor noise. BGR, 1000 x 700.
cv::Mat cluttered_scan() {
  cv::Mat page(700, 1000, CV_8UC3, cv::Scalar::all(255));
  const cv::Point2d at(380, 330);
  cv::line(page, {0, 352}, {999, 360}, cv::Scalar(150, 120, 110), 2, cv::LINE_AA);
  draw(page, cursive_signature(), at, 1, 4, cv::Scalar(90, 30, 20));  // blue-black ink
  cv::putText(page, "Signature:", {40, 360}, cv::FONT_HERSHEY_SIMPLEX, 0.9, cv::Scalar::all(0), 2,
              cv::LINE_AA);
  // The stamp's ink over the paper and the signature: the two inks' transmittances multiply.
  const cv::Scalar red(50, 40, 215);
  cv::Mat stamp(page.size(), CV_8UC3, cv::Scalar::all(255));
  cv::circle(stamp, {850, 300}, 75, red, 5, cv::LINE_AA);
  cv::putText(stamp, "PAID", {790, 315}, cv::FONT_HERSHEY_DUPLEX, 1.3, red, 3, cv::LINE_AA);
  cv::multiply(page, stamp, page, 1.0 / 255);
  cv::RNG rng(7);
  for (int i = 0; i < 60; ++i)
    cv::circle(page, {rng.uniform(0, 1000), rng.uniform(0, 700)}, 1, cv::Scalar::all(60), -1,
               cv::LINE_8);
  for (int i = 0; i < 12; ++i)  // specks close around the signature
    cv::circle(page, {rng.uniform(340, 860), rng.uniform(200, 440)}, 1, cv::Scalar::all(60), -1,
               cv::LINE_8);
  cv::Mat f;
  page.convertTo(f, CV_32FC3, 1.0 / 255);
  for (int y = 0; y < f.rows; ++y)
    for (int x = 0; x < f.cols; ++x)
      f.at<cv::Vec3f>(y, x) *= 1.0f - 0.4f * float(x) / f.cols - 0.15f * float(y) / f.rows;
  cv::Mat noise(f.size(), CV_32FC3);
  rng.fill(noise, cv::RNG::NORMAL, 0, 0.015);
  f += noise;
  cv::Mat out;
  f.convertTo(out, CV_8UC3, 255);
  return out;
}

}  // namespace

TEST_CASE("the library lists the signature stages", "[stroke_plugins]") {
  CHECK(registry().get("signature.clean").info.consumes == Kind::kImage);
  CHECK(registry().get("signature.clean").info.produces == Kind::kImage);
  CHECK(registry().get("signature.features").info.produces == Kind::kFeatures);
  CHECK(registry().get("signature.image").info.produces == Kind::kFeatures);
}

TEST_CASE("signature.clean: one ink-positive channel, cropped and scaled to the ink height",
          "[stroke_plugins][clean]") {
  const cv::Mat page = page_with(cursive_signature(), 1000, 700, {300, 300}, 1);
  const Value out = stage("signature.clean")->process(image_value(page));
  REQUIRE(out.kind == Kind::kImage);
  REQUIRE(out.image.channels == 1);
  const cv::Mat ink = mat_of(out.image);
  double lo, hi;
  cv::minMaxLoc(ink, &lo, &hi);
  CHECK(lo == 0);
  CHECK(hi <= 1);
  CHECK(hi > 0.7);  // dark ink is dark
  // Paper is exactly 0: the corners and most of the area.
  CHECK(ink.at<float>(0, 0) == 0);
  CHECK(cv::countNonZero(ink) < 0.3 * double(ink.total()));
  // Ink 128 px high, margin 0.05 x 128 = 6 px on every side.
  cv::Mat nz;
  cv::findNonZero(ink > 0, nz);
  const cv::Rect box = cv::boundingRect(nz);
  CHECK(box.height == Approx(128).margin(1));
  CHECK(box.y == Approx(6).margin(1));
  CHECK(box.x == Approx(6).margin(1));
  CHECK(ink.rows == Approx(140).margin(1));
  // The drawing is about 2.2 times as wide as high.
  CHECK(double(box.width) / box.height == Approx(2.2).margin(0.3));

  // Other sizes; a wide signature is capped at max_aspect x height.
  const Value big =
      stage("signature.clean", {{"height", "200"}, {"margin", "0"}})->process(image_value(page));
  CHECK(big.image.height == Approx(200).margin(1));
  const Value capped = stage("signature.clean", {{"max_aspect", "1.5"}, {"margin", "0"}})
                           ->process(image_value(page));
  CHECK(capped.image.width == Approx(192).margin(1));
  CHECK(capped.image.height < 100);
}

TEST_CASE("signature.clean on a cluttered scan crops what it crops from the signature alone",
          "[stroke_plugins][clean]") {
  // The same signature, same place, alone on white paper.
  cv::Mat alone(700, 1000, CV_8UC3, cv::Scalar::all(255));
  draw(alone, cursive_signature(), {380, 330}, 1, 4, cv::Scalar(90, 30, 20));
  const std::string method = GENERATE(as<std::string>(), "otsu", "sauvola");
  INFO("binarize: " << method);
  auto clean = stage("signature.clean", {{"binarize", method}});
  const cv::Mat want = mat_of(clean->process(image_value(alone)).image);
  const cv::Mat got = mat_of(clean->process(image_value(cluttered_scan())).image);
  INFO("alone " << want.cols << "x" << want.rows << ", cluttered " << got.cols << "x" << got.rows);
  // Same crop: the same size within 3%, and the same strokes (dilated by a pixel, which forgives
  // the noise's ragged edges).
  CHECK(std::abs(got.cols - want.cols) <= 0.03 * want.cols);
  CHECK(std::abs(got.rows - want.rows) <= 0.03 * want.rows);
  cv::Mat a, b;
  cv::resize(got, a, want.size(), 0, 0, cv::INTER_AREA);
  cv::dilate(strokes_of(a), a, cv::Mat());
  cv::dilate(strokes_of(want), b, cv::Mat());
  CHECK(iou(a, b) > 0.9);
  // The ruled line is gone: no row of the output holds a long run of ink.
  CHECK(longest_run(got) < 0.3 * got.cols);
  // Where the line ran through the small loops' bottoms, the strokes that cross it are whole: the
  // same components, about the same loops and ends.
  const Topology t_want = topology_of(clean->process(image_value(alone)));
  const Topology t_got = topology_of(clean->process(image_value(cluttered_scan())));
  CHECK(t_got.components == t_want.components);
  CHECK(std::abs(t_got.loops - t_want.loops) <= 1);
  CHECK(std::abs(t_got.ends - t_want.ends) <= 2);
}

TEST_CASE("signature.clean: colors, lines and the main ink mass", "[stroke_plugins][clean]") {
  SECTION("blue and violet ink are ink; red ink is a stamp unless drop_colors is off") {
    for (const cv::Scalar& ink : {cv::Scalar(160, 40, 30), cv::Scalar(150, 30, 110)}) {
      cv::Mat page(400, 700, CV_8UC3, cv::Scalar::all(255));
      draw(page, cursive_signature(), {150, 180}, 1, 4, ink);
      CHECK_NOTHROW(stage("signature.clean")->process(image_value(page)));
    }
    cv::Mat red(400, 700, CV_8UC3, cv::Scalar::all(255));
    draw(red, cursive_signature(), {150, 180}, 1, 4, cv::Scalar(40, 40, 200));
    CHECK_THROWS_WITH(stage("signature.clean")->process(image_value(red)),
                      Contains("no ink found"));
    CHECK_NOTHROW(stage("signature.clean", {{"drop_colors", "false"}})->process(image_value(red)));
  }
  SECTION("a form box around the signature goes, its strokes crossing the box stay") {
    // The box is 20-25 px from the signature: without removal it is part of the crop.
    cv::Mat page = page_with(cursive_signature(), 900, 560, {250, 280}, 1);
    const Value plain = stage("signature.clean")->process(image_value(page));
    cv::rectangle(page, {235, 140}, {690, 345}, cv::Scalar::all(40), 3);
    const Value boxed = stage("signature.clean")->process(image_value(page));
    CHECK(boxed.image.width == Approx(plain.image.width).margin(0.03 * plain.image.width));
    CHECK(boxed.image.height == plain.image.height);
    CHECK(longest_run(mat_of(boxed.image)) < 0.3 * boxed.image.width);
    // Without the removal the box is the crop.
    const Value kept =
        stage("signature.clean", {{"ruled_lines", "false"}})->process(image_value(page));
    CHECK(longest_run(mat_of(kept.image)) > 0.8 * kept.image.width);
  }
  SECTION("a ruled line through the strokes leaves the crossing strokes whole") {
    const cv::Mat page = page_with(cursive_signature(), 900, 600, {250, 280}, 1);
    cv::Mat lined = page.clone();
    // Through the capital's loop and the body's arches (a line through a loop narrower than
    // about twice the stroke width, like the body's small loops, may split it in two).
    cv::line(lined, {0, 285}, {899, 289}, cv::Scalar::all(40), 3);
    auto clean = stage("signature.clean");
    const cv::Mat want = mat_of(clean->process(image_value(page)).image);
    const cv::Mat got = mat_of(clean->process(image_value(lined)).image);
    REQUIRE(got.size() == want.size());
    // Topology survives: the loops are not cut where the line crossed them.
    const Topology a = topology_of(clean->process(image_value(page)));
    const Topology b = topology_of(clean->process(image_value(lined)));
    CHECK(b.loops == a.loops);
    CHECK(b.components <= a.components + 1);
  }
  SECTION("a mark far from the signature is left out, one close to it is part of it") {
    cv::Mat page = page_with(cursive_signature(), 1200, 600, {500, 280}, 1);
    const Value alone = stage("signature.clean")->process(image_value(page));
    cv::Mat far = page.clone();
    cv::putText(far, "Name:", {30, 300}, cv::FONT_HERSHEY_SIMPLEX, 1.0, cv::Scalar::all(0), 2);
    CHECK(stage("signature.clean")->process(image_value(far)).image.width == alone.image.width);
    cv::Mat near = page.clone();
    cv::line(near, {440, 300}, {470, 240}, cv::Scalar::all(30), 4);  // a stroke 30 px left of it
    CHECK(stage("signature.clean")->process(image_value(near)).image.width >
          alone.image.width + 10);
  }
  SECTION("a bold printed label with more ink than a thin pen's signature is not the signature") {
    // The signature drawn with a 1-pixel pen; the label in heavy type, far enough to be left out.
    cv::Mat thin(700, 1400, CV_8U, cv::Scalar(250));
    draw(thin, cursive_signature(), {700, 380}, 1, 1, cv::Scalar::all(40));
    const Value alone = stage("signature.clean")->process(image_value(thin));
    cv::putText(thin, "SIGNATURE", {20, 120}, cv::FONT_HERSHEY_DUPLEX, 2.2, cv::Scalar::all(0), 9);
    const Value labelled = stage("signature.clean")->process(image_value(thin));
    // Nor is a straight line left over (line removal off): longer than the signature, far away.
    cv::Mat lined(700, 1400, CV_8U, cv::Scalar(250));
    draw(lined, cursive_signature(), {700, 380}, 1, 1, cv::Scalar::all(40));
    cv::line(lined, {20, 660}, {1380, 660}, cv::Scalar::all(60), 2);
    const Value kept =
        stage("signature.clean", {{"ruled_lines", "false"}})->process(image_value(lined));
    CHECK(kept.image.width == Approx(alone.image.width).margin(0.03 * alone.image.width));
    // (The label moves the binarization threshold a little: a pixel or two of the crop.)
    CHECK(labelled.image.width == Approx(alone.image.width).margin(0.03 * alone.image.width));
    CHECK(labelled.image.height == Approx(alone.image.height).margin(0.03 * alone.image.height));
  }
}

TEST_CASE("signature.clean refuses blank scans and pages of ink clearly",
          "[stroke_plugins][clean]") {
  auto clean = stage("signature.clean");
  cv::Mat white(600, 800, CV_8U, cv::Scalar(255));
  CHECK_THROWS_WITH(clean->process(image_value(white)),
                    Contains("no ink found: the scan is blank or has too little contrast"));
  // Unevenly lit, noisy, a little dirty: still blank.
  cv::Mat f(600, 800, CV_32F), noise(600, 800, CV_32F), dim;
  for (int y = 0; y < f.rows; ++y)
    for (int x = 0; x < f.cols; ++x) f.at<float>(y, x) = 0.95f - 0.4f * x / f.cols;
  cv::RNG(3).fill(noise, cv::RNG::NORMAL, 0, 0.02);
  cv::Mat(f + noise).convertTo(dim, CV_8U, 255);
  CHECK_THROWS_WITH(clean->process(image_value(dim)), Contains("no ink found"));
  // Only specks.
  cv::Mat specks = white.clone();
  for (int i = 0; i < 30; ++i)
    cv::circle(specks, {20 + 25 * i, 50 + 17 * i}, 1, cv::Scalar(0), -1, cv::LINE_8);
  CHECK_THROWS_WITH(clean->process(image_value(specks)), Contains("no ink found"));
  // Half the page black.
  cv::Mat half = white.clone();
  half(cv::Rect(0, 0, 800, 360)).setTo(0);
  CHECK_THROWS_WITH(clean->process(image_value(half)), Contains("not a signature scan"));
}

TEST_CASE("signature.features: ends, junctions, loops and components of simple shapes",
          "[stroke_plugins][topology]") {
  // Drawn as ink images (paper 0), then again as dark strokes on a scan through signature.clean.
  struct Shape {
    const char* name;
    Topology want;
    void (*draw)(cv::Mat&, const cv::Scalar& ink, const cv::Scalar& paper);
  };
  const std::vector<Shape> shapes = {
      {"line",
       {2, 0, 0, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::line(m, {40, 90}, {360, 150}, c, 5, cv::LINE_AA);
       }},
      {"thin diagonal",
       {2, 0, 0, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::line(m, {40, 40}, {300, 220}, c, 2, cv::LINE_AA);
       }},
      {"circle",
       {0, 0, 1, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::circle(m, {200, 130}, 80, c, 6, cv::LINE_AA);
       }},
      {"plus",
       {4, 1, 0, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::line(m, {80, 130}, {320, 130}, c, 6, cv::LINE_AA);
         cv::line(m, {200, 20}, {200, 240}, c, 6, cv::LINE_AA);
       }},
      {"eight",
       {0, 1, 2, 1},
       [](cv::Mat& m, const cv::Scalar& c,
          const cv::Scalar&) {  // a lemniscate: one crossing, two loops
         std::vector<cv::Point> pts;
         for (double t = 0; t < 2 * CV_PI; t += 0.01)
           pts.emplace_back(int(200 + 90 * std::sin(t) * std::cos(t)),
                            int(130 + 110 * std::sin(t)));
         cv::polylines(m, pts, true, c, 5, cv::LINE_AA);
       }},
      {"bumpy stroke",  // bumps on a stroke's edges make spurs, not ends
       {2, 0, 0, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::line(m, {40, 40}, {340, 230}, c, 9, cv::LINE_AA);
         for (int i = 1; i < 8; ++i) {
           const cv::Point at(40 + 300 * i / 8, 40 + 190 * i / 8), side(4, -6);
           cv::circle(m, i % 2 ? at + side : at - side, 4, c, -1, cv::LINE_AA);
         }
       }},
      {"thick stroke with a pinhole",  // a pinhole of binarization noise is no loop
       {-1, -1, 0, 1},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar& paper) {
         cv::line(m, {60, 40}, {340, 230}, c, 24, cv::LINE_AA);
         cv::rectangle(m, {200, 135}, {201, 135}, paper, -1);
       }},
      {"T and a dot",
       {3 + 0, 1, 0, 2},
       [](cv::Mat& m, const cv::Scalar& c, const cv::Scalar&) {
         cv::line(m, {60, 40}, {300, 40}, c, 5, cv::LINE_AA);
         cv::line(m, {180, 40}, {180, 230}, c, 5, cv::LINE_AA);
         cv::circle(m, {320, 200}, 5, c, -1, cv::LINE_AA);
       }},
  };
  for (const Shape& s : shapes) {
    INFO(s.name);
    cv::Mat ink(270, 400, CV_32F, cv::Scalar(0));
    s.draw(ink, cv::Scalar(0.9), cv::Scalar(0));
    const Topology direct = topology_of(image_value(ink));
    if (s.want.ends >= 0) CHECK(direct.ends == s.want.ends);
    if (s.want.junctions >= 0) CHECK(direct.junctions == s.want.junctions);
    CHECK(direct.loops == s.want.loops);
    CHECK(direct.components == s.want.components);

    // On a page large enough for the straight lines not to be ruled lines (30% of its sides).
    cv::Mat scan(1000, 1400, CV_8U, cv::Scalar(250));
    cv::Mat roi = scan(cv::Rect(500, 370, 400, 270));
    s.draw(roi, cv::Scalar(40), cv::Scalar(250));
    const Topology cleaned = topology_of(stage("signature.clean")->process(image_value(scan)));
    if (s.want.ends >= 0) CHECK(cleaned.ends == s.want.ends);
    if (s.want.junctions >= 0) CHECK(cleaned.junctions == s.want.junctions);
    CHECK(cleaned.loops == s.want.loops);
    CHECK(cleaned.components == s.want.components);
  }
}

// Tiny blobs thin to stubs whose pixels may all count as ends: every dot must take off only the
// ends it had (a scan of the generator once gave ln(1 + ends) = ln(0) = -inf).
TEST_CASE("signature.features: specks of one to five pixels keep every count at zero or more",
          "[stroke_plugins][topology]") {
  bpkit::Rng rng(77);
  for (int trial = 0; trial < 300; ++trial) {
    INFO("trial " << trial);
    cv::Mat ink(60, 120, CV_32F, cv::Scalar(0));
    cv::line(ink, {10, 40}, {110, 45}, cv::Scalar(0.9), 3);
    for (int blob = 0; blob < 4; ++blob) {
      const int x0 = 10 + 25 * blob, y0 = 8;
      const int pixels = 1 + int(rng.below(5));
      for (int k = 0; k < pixels; ++k)
        ink.at<float>(y0 + int(rng.below(3)), x0 + int(rng.below(3))) = 0.9f;
    }
    const std::vector<float> f = values_of(stage("signature.features")->process(image_value(ink)));
    for (size_t i = 0; i < f.size(); ++i) REQUIRE(std::isfinite(f[i]));
    CHECK(topology_of(image_value(ink)).ends >= 0);
  }
}

TEST_CASE("signature.features: the direction histogram follows the strokes' orientation",
          "[stroke_plugins][direction]") {
  auto features = stage("signature.features", only("direction"));
  // Bin k is centered on k x 22.5 degrees, counter-clockwise from horizontal (y up).
  struct Case {
    cv::Point from, to;
    int bin;
  };
  for (const Case& c : {Case{{20, 100}, {380, 100}, 0}, Case{{200, 10}, {200, 250}, 4},
                        Case{{40, 240}, {280, 0}, 2}, Case{{40, 0}, {280, 240}, 6}}) {
    INFO("line " << c.from << " - " << c.to);
    cv::Mat ink(260, 400, CV_32F, cv::Scalar(0));
    cv::line(ink, c.from, c.to, cv::Scalar(0.9), 4, cv::LINE_AA);
    const std::vector<float> f = values_of(features->process(image_value(ink)));
    REQUIRE(f.size() == 8 + 8 * 8);
    const double global = std::accumulate(f.begin(), f.begin() + 8, 0.0);
    CHECK(global == Approx(1).margin(1e-4));
    CHECK(f[size_t(c.bin)] > 0.9);
    // The zoned histograms share the same total, in the zones the line passes through.
    CHECK(std::accumulate(f.begin() + 8, f.end(), 0.0) == Approx(1).margin(1e-4));
  }
  // A circle spreads evenly over the 8 orientations.
  cv::Mat ring(260, 400, CV_32F, cv::Scalar(0));
  cv::circle(ring, {200, 130}, 100, cv::Scalar(0.9), 4, cv::LINE_AA);
  const std::vector<float> f = values_of(features->process(image_value(ring)));
  for (int k = 0; k < 8; ++k) CHECK(f[size_t(k)] == Approx(0.125).margin(0.03));
}

TEST_CASE("signature.clean deslant: slanted strokes come out upright, slant is a feature",
          "[stroke_plugins][slant]") {
  // Strokes leaning right by 0.5 (26.6 degrees from the vertical), joined at the bottom by arcs.
  cv::Mat page(600, 900, CV_8U, cv::Scalar(255));
  Strokes strokes;
  std::vector<cv::Point2d> s;
  for (int i = 0; i < 6; ++i) {
    const double x = 60.0 * i;
    for (double t = 0; t <= 1; t += 0.05) s.push_back({x + 0.5 * 150 * t, -150 * t});
    for (double t = 1; t >= 0; t -= 0.05) s.push_back({x + 0.5 * 150 * t + 8, -150 * t});
    strokes.push_back(s);
    s.clear();
  }
  draw(page, strokes, {200, 400}, 1, 4, cv::Scalar::all(20));
  const cv::Mat slanted = mat_of(stage("signature.clean")->process(image_value(page)).image);
  const cv::Mat upright =
      mat_of(stage("signature.clean", {{"deslant", "true"}})->process(image_value(page)).image);
  const double before = mean_component_slope(slanted), after = mean_component_slope(upright);
  INFO("slope before " << before << ", after " << after);
  CHECK(before == Approx(-0.5).margin(0.1));
  CHECK(std::abs(after) < 0.1);
  // The topology group's slant (tan, > 0 leaning right) measures the same.
  auto features = stage("signature.features", only("topology"));
  const Value in_slanted = stage("signature.clean")->process(image_value(page));
  const Value in_upright =
      stage("signature.clean", {{"deslant", "true"}})->process(image_value(page));
  CHECK(values_of(features->process(in_slanted))[7] == Approx(0.5).margin(0.1));
  CHECK(std::abs(values_of(features->process(in_upright))[7]) < 0.1);
}

TEST_CASE("signature.clean max_rotation levels a rotated scan", "[stroke_plugins][slant]") {
  const cv::Mat page = page_with(cursive_signature(), 1000, 700, {300, 330}, 1);
  cv::Mat turned;
  const cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(500, 350), 7, 1);  // counter-clockwise
  cv::warpAffine(page, turned, M, page.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(255));
  auto level = stage("signature.clean", {{"max_rotation", "10"}});
  auto features = stage("signature.features", only("direction"));
  const std::vector<float> want = values_of(features->process(level->process(image_value(page))));
  const std::vector<float> leveled =
      values_of(features->process(level->process(image_value(turned))));
  const std::vector<float> left =
      values_of(features->process(stage("signature.clean")->process(image_value(turned))));
  const double d_leveled = relative_distance(want, leveled), d_left = relative_distance(want, left);
  INFO("rotated 7 degrees: leveled " << d_leveled << ", left as is " << d_left);
  CHECK(d_leveled < 0.5 * d_left);
  // The leveled crop has the upright one's proportions again.
  const Value a = level->process(image_value(page)), b = level->process(image_value(turned));
  CHECK(b.image.width == Approx(a.image.width).margin(0.05 * a.image.width));
}

TEST_CASE("one configured stage serves several threads at once", "[stroke_plugins][threads]") {
  auto clean = stage("signature.clean", {{"deslant", "true"}});
  auto features = stage("signature.features");
  const Value scan = image_value(cluttered_scan());
  const std::vector<float> want = values_of(features->process(clean->process(scan)));
  std::vector<std::vector<float>> got(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3; ++i) got[t] = values_of(features->process(clean->process(scan)));
    });
  for (auto& th : threads) th.join();
  for (const auto& g : got) CHECK(g == want);
}

TEST_CASE("signature.features: scale-free across resolutions, apart for another signature",
          "[stroke_plugins][scale]") {
  auto clean = stage("signature.clean");
  auto features = stage("signature.features");
  auto f = [&](const cv::Mat& page) {
    return values_of(features->process(clean->process(image_value(page))));
  };
  const std::vector<float> dpi300 = f(page_with(cursive_signature(), 1000, 700, {300, 330}, 1));
  const std::vector<float> dpi600 = f(page_with(cursive_signature(), 2000, 1400, {600, 660}, 2));
  const std::vector<float> moved = f(page_with(cursive_signature(), 900, 800, {100, 500}, 1.4));
  const std::vector<float> other = f(page_with(angular_signature(), 1000, 700, {300, 330}, 1));
  REQUIRE(dpi300.size() == 1803);
  const double same = relative_distance(dpi300, dpi600), shifted = relative_distance(dpi300, moved),
               different = relative_distance(dpi300, other);
  INFO("300 vs 600 dpi " << same << ", moved and scaled " << shifted << ", another signature "
                         << different);
  CHECK(same < 0.12);
  CHECK(shifted < 0.12);
  CHECK(different > 3 * std::max(same, shifted));
  // Group by group.
  auto tall = stage("signature.clean", {{"height", "200"}});
  for (const char* group :
       {"direction", "curvature", "width", "topology", "zoning", "pressure", "lbp", "hog"}) {
    auto g = stage("signature.features", only(group));
    auto fg = [&](const cv::Mat& page) {
      return values_of(g->process(clean->process(image_value(page))));
    };
    const std::vector<float> a = fg(page_with(cursive_signature(), 1000, 700, {300, 330}, 1)),
                             b = fg(page_with(cursive_signature(), 2000, 1400, {600, 660}, 2)),
                             c = fg(page_with(angular_signature(), 1000, 700, {300, 330}, 1));
    // The same page cleaned to another ink height (200 px instead of 128).
    const std::vector<float> h = values_of(g->process(
        tall->process(image_value(page_with(cursive_signature(), 1000, 700, {300, 330}, 1)))));
    const double d_same = relative_distance(a, b), d_other = relative_distance(a, c),
                 d_height = relative_distance(a, h);
    INFO(group << ": 300 vs 600 dpi " << d_same << ", ink height 200 " << d_height
               << ", another signature " << d_other);
    CHECK(d_same < 0.15);
    // Both signatures are in the same ink: the pressure features cannot tell them apart.
    if (std::string(group) != "pressure") CHECK(d_other > 1.5 * d_same);
    // The stroke features do not depend on the size of the ink image either; LBP's 3x3
    // neighbourhoods do (so references and queries go through the same signature.clean).
    if (std::string(group) != "lbp") CHECK(d_height < 0.15);
  }
}

TEST_CASE("signature.features: pressure features follow the ink's darkness",
          "[stroke_plugins][pressure]") {
  auto clean = stage("signature.clean");
  auto pressure = stage("signature.features", only("pressure"));
  auto direction = stage("signature.features", only("direction"));
  const Value dark =
      clean->process(image_value(page_with(cursive_signature(), 900, 600, {250, 280}, 1, 20)));
  const Value light =
      clean->process(image_value(page_with(cursive_signature(), 900, 600, {250, 280}, 1, 150)));
  const std::vector<float> pd = values_of(pressure->process(dark)),
                           pl = values_of(pressure->process(light));
  REQUIRE(pd.size() == 12);
  // Mean darkness on the skeleton (10): about 0.92 against 0.41; on the ink (8), edges included.
  INFO("dark: mean " << pd[8] << ", skeleton " << pd[10] << "; light: mean " << pl[8]
                     << ", skeleton " << pl[10]);
  CHECK(pd[10] > 0.8);
  CHECK(pl[10] < 0.5);
  CHECK(pd[8] > pl[8] + 0.25);
  // The histogram moves to the dark bins.
  const double dark_mass = std::accumulate(pd.begin() + 5, pd.begin() + 8, 0.0);
  const double light_mass = std::accumulate(pl.begin() + 5, pl.begin() + 8, 0.0);
  CHECK(dark_mass > 0.7);
  CHECK(light_mass < 0.3);
  // The strokes' shape does not depend on the darkness.
  CHECK(relative_distance(values_of(direction->process(dark)),
                          values_of(direction->process(light))) < 0.05);
}

TEST_CASE("signature.features: layout, parameters and input checks", "[stroke_plugins][layout]") {
  const auto& info = registry().get("signature.features").info;
  auto length = [&](const Params& p) {
    cv::Mat ink(100, 300, CV_32F, cv::Scalar(0));
    cv::line(ink, {20, 50}, {280, 60}, cv::Scalar(0.8), 3);
    return stage("signature.features", p)->process(image_value(ink)).tensor.size();
  };
  CHECK(length({}) == 1803);
  CHECK(length(only("direction")) == 72);
  CHECK(length(only("curvature")) == 9);
  CHECK(length(only("width")) == 10);
  CHECK(length(only("topology")) == 8);
  CHECK(length(only("zoning")) == 32);
  CHECK(length(only("pressure")) == 12);
  CHECK(length(only("lbp")) == 472);
  CHECK(length(only("hog")) == 1188);
  Params p = only("zoning");
  p.push_back({"zones", "3 x 5"});
  CHECK(length(p) == 15);
  p = only("hog");
  p.push_back({"hog_cells", "3x4"});
  CHECK(length(p) == 36 * 2 * 3);
  CHECK_THROWS_WITH(stage("signature.features", {{"zones", "four"}}),
                    Contains("zones") && Contains("rows x cols"));
  CHECK_THROWS_WITH(stage("signature.features", {{"hog_cells", "1x8"}}), Contains("hog_cells"));
  CHECK_THROWS(stage("signature.features", only("none")));
  CHECK_THROWS(bpkit::validate_params(registry().get("signature.clean").info, {{"height", "4"}}, {},
                                      "test"));
  (void)info;

  auto features = stage("signature.features");
  // A scan (paper 1) instead of an ink image, color, nothing.
  cv::Mat scan(100, 300, CV_8U, cv::Scalar(255));
  cv::line(scan, {20, 50}, {280, 60}, cv::Scalar(0), 3);
  CHECK_THROWS_WITH(features->process(image_value(scan)),
                    Contains("put signature.clean before it"));
  CHECK_THROWS_WITH(features->process(image_value(cv::Mat(50, 50, CV_8UC3, cv::Scalar::all(0)))),
                    Contains("one-channel"));
  CHECK_THROWS_WITH(features->process(image_value(cv::Mat(50, 50, CV_8U, cv::Scalar(0)))),
                    Contains("no ink"));
  // Deterministic.
  const Value ink = stage("signature.clean")->process(image_value(cluttered_scan()));
  CHECK(values_of(features->process(ink)) == values_of(features->process(ink)));
}

TEST_CASE("signature.image: the ink fitted and centered in a fixed tensor",
          "[stroke_plugins][image]") {
  const Value ink =
      stage("signature.clean")
          ->process(image_value(page_with(cursive_signature(), 1000, 700, {300, 300}, 1)));
  const Value t = stage("signature.image")->process(ink);
  REQUIRE(t.tensor.shape() == bpkit::Shape{1, 64, 192});
  const cv::Mat m(64, 192, CV_32F, const_cast<float*>(t.tensor.data()));
  cv::Mat nz;
  cv::findNonZero(m > 0, nz);
  const cv::Rect box = cv::boundingRect(nz);
  // Margin round(0.05 x 64) = 3: the 2.2:1 signature fills the 58 px height, centered across.
  CHECK(box.y == Approx(3).margin(1));
  CHECK(box.height == Approx(58).margin(1));
  CHECK(box.x + box.width / 2.0 == Approx(96).margin(1.5));
  double lo, hi;
  cv::minMaxLoc(m, &lo, &hi);
  CHECK(lo == 0);
  CHECK(hi > 0.7);
  const Value b = stage("signature.image",
                        {{"height", "32"}, {"width", "32"}, {"binary", "true"}, {"center", "mass"}})
                      ->process(ink);
  REQUIRE(b.tensor.shape() == bpkit::Shape{1, 32, 32});
  for (float v : b.tensor) CHECK((v >= 0 && v <= 1));
}

TEST_CASE("measure: signature.clean + signature.features on a 1-megapixel scan", "[.measure]") {
  cv::Mat scan;
  cv::resize(cluttered_scan(), scan, cv::Size(1200, 840), 0, 0, cv::INTER_CUBIC);
  auto clean = stage("signature.clean");
  auto features = stage("signature.features");
  const Value in = image_value(scan);
  Value ink = clean->process(in);
  features->process(ink);
  const int runs = 30;
  double t_clean = 0, t_features = 0;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    ink = clean->process(in);
    const auto t1 = std::chrono::steady_clock::now();
    features->process(ink);
    const auto t2 = std::chrono::steady_clock::now();
    t_clean += std::chrono::duration<double>(t1 - t0).count();
    t_features += std::chrono::duration<double>(t2 - t1).count();
  }
  std::printf(
      "1200x840 BGR scan: signature.clean %.1f ms, signature.features %.1f ms (%dx%d ink)\n",
      1e3 * t_clean / runs, 1e3 * t_features / runs, ink.image.width, ink.image.height);
}
