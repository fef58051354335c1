// ocr_app --overlay (apps/overlay.h): doubtful lines in red, text lines kept apart, the picture
// growing when the text needs more room than the page.
#include <catch2/catch.hpp>
#include <opencv2/core.hpp>

#include "overlay.h"

using bpkit_apps::OverlayLine;

namespace {

// Pixels of the right panel close to a BGR colour.
int count_near(const cv::Mat& canvas, cv::Vec3b bgr, int tol = 60) {
  int n = 0;
  for (int y = 0; y < canvas.rows; ++y)
    for (int x = canvas.cols / 2; x < canvas.cols; ++x) {
      const cv::Vec3b p = canvas.at<cv::Vec3b>(y, x);
      n += std::abs(p[0] - bgr[0]) <= tol && std::abs(p[1] - bgr[1]) <= tol &&
           std::abs(p[2] - bgr[2]) <= tol;
    }
  return n;
}

}  // namespace

TEST_CASE("overlay: text lines never overlap, and the picture grows to hold them", "[overlay]") {
  // Three lines whose boxes overlap (a skewed or tightly set page): their texts would be drawn
  // over each other at their boxes' heights.
  const std::vector<OverlayLine> lines{{{10, 100, 300, 40}, "second line", 0.9},
                                       {{10, 80, 300, 40}, "first line", 0.9},
                                       {{10, 110, 300, 40}, "third line", 0.9},
                                       {{10, 5, 300, 20}, "", 0.9}};
  int height = 0;
  const auto places = bpkit_apps::place_overlay_text(lines, 400, 150, height);
  REQUIRE(places.size() == 4);
  CHECK(places[3].scale == 0);  // empty text: nothing to draw
  // Top to bottom by box: first, second, third; each below the one before.
  CHECK(places[1].bottom < places[0].top);
  CHECK(places[0].bottom < places[2].top);
  for (int i : {0, 1, 2}) {
    CHECK(places[size_t(i)].scale > 0);
    CHECK(places[size_t(i)].top < places[size_t(i)].baseline);
  }
  // The page is 150 rows; the third text ends lower, so the picture does too.
  CHECK(places[2].bottom > 150);
  CHECK(height > places[2].bottom);
  // A line with room is centred on its box.
  const auto alone = bpkit_apps::place_overlay_text({lines[1]}, 400, 150, height);
  CHECK(height == 150);
  CHECK(std::abs((alone[0].top + alone[0].baseline) / 2 - (80 + 20)) <= 2);
}

TEST_CASE("overlay: doubtful lines are drawn in red, the others in ink", "[overlay]") {
  const cv::Mat page(200, 400, CV_8UC3, cv::Scalar(255, 255, 255));
  const std::vector<OverlayLine> sure{{{10, 20, 380, 40}, "clearly read", 0.97}};
  const std::vector<OverlayLine> doubtful{{{10, 20, 380, 40}, "clearly read", 0.3}};
  const cv::Mat a = bpkit_apps::draw_overlay(page, sure),
                b = bpkit_apps::draw_overlay(page, doubtful);
  REQUIRE(a.cols == 800);
  REQUIRE(a.rows == 200);
  const cv::Vec3b red(0, 0, 220), ink(40, 40, 40);
  CHECK(count_near(a, ink) > 100);
  CHECK(count_near(a, red) == 0);
  CHECK(count_near(b, red) > 100);
  CHECK(count_near(b, ink) == 0);
}
