// Conversions and page analysis shared by the image stages (see image_common.h).
#include "image_common.h"

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <stdexcept>

namespace bpkit_image {

using bpkit::Image;
using bpkit::Kind;
using bpkit::Value;

cv::Mat to_mat(const Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.channels <= 0 ||
      im.pixels.size() != size_t(im.width) * size_t(im.height) * size_t(im.channels))
    throw std::runtime_error("the image is empty or inconsistent (" + std::to_string(im.width) +
                             "x" + std::to_string(im.height) + "x" + std::to_string(im.channels) +
                             ")");
  if (im.channels > CV_CN_MAX)
    throw std::runtime_error("the image has " + std::to_string(im.channels) + " channels");
  return cv::Mat(im.height, im.width, CV_32FC(im.channels), const_cast<float*>(im.pixels.data()));
}

Image image_of(const cv::Mat& m) {
  cv::Mat f;
  if (m.depth() == CV_32F)
    f = m.isContinuous() ? m : m.clone();
  else
    m.convertTo(f, CV_32F);
  Image im;
  im.width = f.cols;
  im.height = f.rows;
  im.channels = f.channels();
  im.pixels.assign(f.ptr<float>(), f.ptr<float>() + f.total() * size_t(f.channels()));
  return im;
}

Value from_mat(const cv::Mat& m, const std::string& path) {
  Value v;
  v.kind = Kind::kImage;
  v.path = path;
  v.image = image_of(m);
  return v;
}

cv::Mat gray_of(const Image& im, float background) {
  cv::Mat m = to_mat(im), g;
  switch (im.channels) {
    case 1:
      return m.clone();
    case 2: {  // gray + alpha
      std::vector<cv::Mat> ch;
      cv::split(m, ch);
      return ch[0].mul(ch[1]) + (1.0f - ch[1]) * background;
    }
    case 3:
      cv::cvtColor(m, g, cv::COLOR_BGR2GRAY);
      return g;
    case 4: {
      cv::cvtColor(m, g, cv::COLOR_BGRA2GRAY);
      std::vector<cv::Mat> ch;
      cv::split(m, ch);
      return g.mul(ch[3]) + (1.0f - ch[3]) * background;
    }
    default:
      throw std::runtime_error("cannot convert " + std::to_string(im.channels) +
                               " channels to gray");
  }
}

cv::Mat estimate_background(const cv::Mat& gray, int kernel) {
  if (kernel <= 0) kernel = std::max(15, std::min(gray.rows, gray.cols) / 20);
  // Morphology costs O(kernel) per pixel: work on a reduced copy when the kernel is large.
  const int f = std::max(1, kernel / 16);
  cv::Mat small = gray;
  if (f > 1)
    cv::resize(gray, small, cv::Size(std::max(1, gray.cols / f), std::max(1, gray.rows / f)), 0, 0,
               cv::INTER_AREA);
  const int k = std::max(3, (kernel / f) | 1);
  cv::Mat bg;
  cv::morphologyEx(small, bg, cv::MORPH_CLOSE, cv::getStructuringElement(cv::MORPH_RECT, {k, k}),
                   {-1, -1}, 1, cv::BORDER_REPLICATE);
  cv::blur(bg, bg, cv::Size(k, k), {-1, -1}, cv::BORDER_REPLICATE);
  if (f > 1) cv::resize(bg, bg, gray.size(), 0, 0, cv::INTER_LINEAR);
  return bg;
}

cv::Mat flatten_illumination(const cv::Mat& gray, int kernel) {
  cv::Mat bg = estimate_background(gray, kernel), out;
  cv::max(bg, 1e-3, bg);
  cv::divide(gray, bg, out);
  cv::min(out, 1.0, out);
  cv::max(out, 0.0, out);
  return out;
}

double estimate_noise(const cv::Mat& full) {
  // Noise is spread over the page: its middle 1024x1024 pixels tell as much as the whole.
  const int w = std::min(full.cols, 1024), h = std::min(full.rows, 1024);
  const cv::Mat gray = full(cv::Rect((full.cols - w) / 2, (full.rows - h) / 2, w, h));
  cv::Mat med, diff;
  cv::medianBlur(gray, med, 3);
  cv::absdiff(gray, med, diff);
  return 1.4826 * quantile(diff, 0.5);
}

cv::Mat ink_mask(const cv::Mat& flat, double min_contrast) {
  cv::Mat g8, mask;
  flat.convertTo(g8, CV_8U, 255);
  cv::threshold(g8, mask, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
  const int ink = cv::countNonZero(mask);
  const double total = double(mask.total());
  if (ink == 0 || ink > total / 2) return cv::Mat::zeros(flat.size(), CV_8U);
  const double ink_mean = cv::mean(flat, mask)[0];
  cv::Mat paper;
  cv::bitwise_not(mask, paper);
  const double paper_mean = cv::mean(flat, paper)[0];
  if (paper_mean - ink_mean < min_contrast) return cv::Mat::zeros(flat.size(), CV_8U);
  return mask;
}

namespace {

// Sum of squared bin counts of the profile of y' = x sin a + y cos a: largest when the lines
// are level, as every line's ink then falls into few bins.
double profile_sharpness(const std::vector<cv::Point>& pts, double angle_deg, int rows, int cols,
                         std::vector<int>& bins) {
  const double a = angle_deg * CV_PI / 180, s = std::sin(a), c = std::cos(a);
  const double lo = std::min(0.0, cols * s) - 1;
  const int n = int(std::ceil(rows * std::abs(c) + cols * std::abs(s))) + 4;
  bins.assign(size_t(n), 0);
  for (const cv::Point& p : pts) {
    const int b = int(p.x * s + p.y * c - lo);
    if (b >= 0 && b < n) ++bins[size_t(b)];
  }
  double sum = 0;
  for (int v : bins) sum += double(v) * v;
  return sum;
}

}  // namespace

double estimate_skew(const cv::Mat& mask, double max_angle) {
  std::vector<cv::Point> all;
  cv::findNonZero(mask, all);
  if (all.size() < 50 || max_angle <= 0) return 0;
  // A few hundred thousand points decide the angle as well as millions.
  const size_t stride = std::max<size_t>(1, all.size() / 300000);
  std::vector<cv::Point> pts;
  for (size_t i = 0; i < all.size(); i += stride) pts.push_back(all[i]);
  // The coarse search (0.5 degree steps) only has to land within half a step of the peak: a tenth
  // of the points (at most 40 000) does; the fine search uses them all.
  std::vector<cv::Point> few;
  const size_t few_stride = std::max<size_t>(1, (pts.size() + 39999) / 40000);
  for (size_t i = 0; i < pts.size(); i += few_stride) few.push_back(pts[i]);
  std::vector<int> bins;
  auto search = [&](const std::vector<cv::Point>& p, double from, double to, double step) {
    double best = 0, best_score = -1;
    for (double a = from; a <= to + 1e-9; a += step) {
      const double sc = profile_sharpness(p, a, mask.rows, mask.cols, bins);
      // Ties go to the smaller angle, so a page without lines stays as it is.
      if (best_score < 0 || sc > best_score * (1 + 1e-9)) {
        best_score = sc;
        best = a;
      } else if (sc >= best_score * (1 - 1e-9) && std::abs(a) < std::abs(best)) {
        best = a;
      }
    }
    return best;
  };
  const double coarse = search(few, -max_angle, max_angle, 0.5);
  const double fine =
      search(pts, std::max(-max_angle, coarse - 0.5), std::min(max_angle, coarse + 0.5), 0.05);
  return fine;
}

cv::Mat rotate_expand(const cv::Mat& m, double angle, double fill, int interpolation,
                      cv::Mat* forward) {
  const double a = angle * CV_PI / 180, s = std::abs(std::sin(a)), c = std::abs(std::cos(a));
  const int w = int(std::lround(m.cols * c + m.rows * s)),
            h = int(std::lround(m.cols * s + m.rows * c));
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(m.cols / 2.0f, m.rows / 2.0f), angle, 1.0);
  M.at<double>(0, 2) += (w - m.cols) / 2.0;
  M.at<double>(1, 2) += (h - m.rows) / 2.0;
  cv::Mat out;
  cv::warpAffine(m, out, M, cv::Size(std::max(1, w), std::max(1, h)), interpolation,
                 cv::BORDER_CONSTANT, cv::Scalar::all(fill));
  if (forward) *forward = M;
  return out;
}

float quantile(const cv::Mat& gray, double q) {
  constexpr int kBins = 4096;
  std::vector<size_t> hist(kBins, 0);
  size_t n = 0;
  for (int y = 0; y < gray.rows; ++y) {
    const float* row = gray.ptr<float>(y);
    for (int x = 0; x < gray.cols; ++x) {
      const float v = std::min(1.0f, std::max(0.0f, row[x]));
      ++hist[size_t(std::min(kBins - 1, int(v * kBins)))];
      ++n;
    }
  }
  const double target = q * double(n);
  size_t acc = 0;
  for (int b = 0; b < kBins; ++b) {
    acc += hist[size_t(b)];
    if (double(acc) >= target) return (b + 0.5f) / kBins;
  }
  return 1.0f;
}

}  // namespace bpkit_image
