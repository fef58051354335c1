#include "overlay.h"

#include <algorithm>
#include <numeric>
#include <opencv2/imgproc.hpp>

namespace bpkit_apps {

namespace {

const cv::Scalar kBoxOk(0, 160, 0), kTextOk(40, 40, 40), kDoubtful(0, 0, 220);

}  // namespace

std::vector<TextPlace> place_overlay_text(const std::vector<OverlayLine>& lines, int page_width,
                                          int page_height, int& canvas_height) {
  std::vector<TextPlace> places(lines.size());
  // Top to bottom, so that a line moved down pushes only the lines below it.
  std::vector<size_t> order(lines.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return lines[a].box.y < lines[b].box.y; });
  int free_from = 0;  // the first row below the text placed last
  canvas_height = page_height;
  for (size_t i : order) {
    const OverlayLine& l = lines[i];
    TextPlace& p = places[i];
    int base = 0;
    const cv::Size unit = cv::getTextSize(l.text, cv::FONT_HERSHEY_SIMPLEX, 1.0, 1, &base);
    if (l.text.empty() || unit.width <= 0 || l.box.height <= 0) continue;
    const double scale = std::min(0.6 * l.box.height / std::max(1, unit.height),
                                  double(page_width - std::max(0, l.box.x) - 4) / unit.width);
    if (scale <= 0) continue;
    const int height = int(unit.height * scale + 0.5), descent = int(base * scale + 0.5);
    // Centred on its line, or just below the text above it.
    const int gap = std::max(2, height / 8);
    p.top = std::max(l.box.y + (l.box.height - height) / 2, free_from == 0 ? 0 : free_from + gap);
    p.baseline = p.top + height;
    p.bottom = p.baseline + descent;
    p.x = std::max(0, l.box.x);
    p.scale = scale;
    free_from = p.bottom;
    canvas_height = std::max(canvas_height, p.bottom + gap);
  }
  return places;
}

cv::Mat draw_overlay(const cv::Mat& page, const std::vector<OverlayLine>& lines) {
  int height = page.rows;
  const std::vector<TextPlace> places = place_overlay_text(lines, page.cols, page.rows, height);
  cv::Mat canvas(height, page.cols * 2, CV_8UC3, cv::Scalar(255, 255, 255));
  page.copyTo(canvas(cv::Rect(0, 0, page.cols, page.rows)));
  const int thick = std::max(1, page.cols / 800);
  for (size_t i = 0; i < lines.size(); ++i) {
    const OverlayLine& l = lines[i];
    const bool doubtful = l.confidence < kDoubtfulConfidence;
    cv::rectangle(canvas, cv::Rect(l.box.x, l.box.y, l.box.width, l.box.height),
                  doubtful ? kDoubtful : kBoxOk, doubtful ? 2 * thick : thick);
    const TextPlace& p = places[i];
    if (p.scale <= 0) continue;
    cv::putText(canvas, l.text, cv::Point(page.cols + p.x, p.baseline), cv::FONT_HERSHEY_SIMPLEX,
                p.scale, doubtful ? kDoubtful : kTextOk, std::max(1, int(p.scale * 1.5)),
                cv::LINE_AA);
  }
  return canvas;
}

}  // namespace bpkit_apps
