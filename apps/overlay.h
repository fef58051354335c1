// ocr_app --overlay: the page with its line boxes on the left and, on the right, the text read
// from each line at the height of its line. Lines the recognizer doubts (the least certain
// character below kDoubtfulConfidence) are drawn in red, box and text; the others in green and
// ink. Text lines never overlap on the right: a line whose text would touch the previous one's is
// moved down, and the picture grows when the text needs more room than the page.
#pragma once

#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "bpkit/plugin.h"  // bpkit::Box

namespace bpkit_apps {

constexpr double kDoubtfulConfidence = 0.5;

struct OverlayLine {
  bpkit::Box box;
  std::string text;
  double confidence = 0;
};

// Where a line's text goes in the right panel (x from the panel's left edge).
struct TextPlace {
  int x = 0, top = 0, bottom = 0, baseline = 0;
  double scale = 0;  // Hershey simplex scale; 0: nothing to draw (empty text or no room)
};

// The places of `lines`' texts (in the order given) on a panel of the page's width, and the
// picture's height (at least the page's).
std::vector<TextPlace> place_overlay_text(const std::vector<OverlayLine>& lines, int page_width,
                                          int page_height, int& canvas_height);

// The overlay of `page` (8-bit BGR).
cv::Mat draw_overlay(const cv::Mat& page, const std::vector<OverlayLine>& lines);

}  // namespace bpkit_apps
