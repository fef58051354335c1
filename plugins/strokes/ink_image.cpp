// The ink image's conventions (see ink_image.h).
#include "ink_image.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <vector>

namespace bpkit_strokes {

cv::Rect ink_bbox(const cv::Mat& ink, float threshold) {
  int x0 = ink.cols, y0 = ink.rows, x1 = -1, y1 = -1;
  for (int y = 0; y < ink.rows; ++y) {
    const float* row = ink.ptr<float>(y);
    int first = -1, last = -1;
    for (int x = 0; x < ink.cols; ++x)
      if (row[x] > threshold) {
        if (first < 0) first = x;
        last = x;
      }
    if (first < 0) continue;
    x0 = std::min(x0, first);
    x1 = std::max(x1, last);
    y0 = std::min(y0, y);
    y1 = y;
  }
  if (x1 < 0) return {};
  return {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

float ink_quantile(const cv::Mat& ink, double q) {
  std::vector<int> hist(256, 0);
  int n = 0;
  for (int y = 0; y < ink.rows; ++y) {
    const float* row = ink.ptr<float>(y);
    for (int x = 0; x < ink.cols; ++x)
      if (row[x] > 0) {
        ++hist[size_t(std::min(255, int(row[x] * 255)))];
        ++n;
      }
  }
  if (n == 0) return 0;
  int acc = 0, bin = 0;
  for (; bin < 255; ++bin) {
    acc += hist[size_t(bin)];
    if (acc >= q * n) break;
  }
  return (bin + 0.5f) / 255;
}

cv::Mat ink_strokes(const cv::Mat& ink) {
  const float threshold = 0.5f * ink_quantile(ink, 0.5);
  cv::Mat mask = cv::Mat::zeros(ink.size(), CV_8U);
  for (int y = 0; y < ink.rows; ++y) {
    const float* row = ink.ptr<float>(y);
    uint8_t* m = mask.ptr<uint8_t>(y);
    for (int x = 0; x < ink.cols; ++x) m[x] = row[x] > 0 && row[x] >= threshold;
  }
  return mask;
}

cv::Mat ink_coverage(const cv::Mat& ink) {
  const float level = ink_quantile(ink, 0.8);
  cv::Mat c;
  if (level <= 0) return cv::Mat::zeros(ink.size(), CV_32F);
  cv::min(ink / level, 1.0, c);
  return c;
}

cv::Mat fit_ink(const cv::Mat& ink, int box_height, int box_width) {
  const cv::Rect box = ink_bbox(ink);
  if (box.empty() || box_height <= 0 || box_width <= 0) return {};
  const double scale = std::min(double(box_height) / box.height, double(box_width) / box.width);
  const int w = std::clamp(int(std::lround(box.width * scale)), 1, box_width);
  const int h = std::clamp(int(std::lround(box.height * scale)), 1, box_height);
  cv::Mat out;
  cv::resize(ink(box), out, cv::Size(w, h), 0, 0, scale < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::max(out, 0.0, out);  // no negative ringing
  return out;
}

cv::Mat place_ink(const cv::Mat& ink, int height, int width, bool center_of_mass) {
  cv::Mat canvas = cv::Mat::zeros(height, width, CV_32F);
  const cv::Mat fitted = fit_ink(ink, height, width);
  if (fitted.empty()) return canvas;
  int x = (width - fitted.cols) / 2, y = (height - fitted.rows) / 2;
  if (center_of_mass) {
    const cv::Moments m = cv::moments(fitted);
    if (m.m00 > 0) {
      x = int(std::lround(width / 2.0 - m.m10 / m.m00));
      y = int(std::lround(height / 2.0 - m.m01 / m.m00));
    }
    x = std::clamp(x, 0, width - fitted.cols);
    y = std::clamp(y, 0, height - fitted.rows);
  }
  fitted.copyTo(canvas(cv::Rect(x, y, fitted.cols, fitted.rows)));
  return canvas;
}

}  // namespace bpkit_strokes
