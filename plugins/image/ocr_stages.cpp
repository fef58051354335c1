// Document stages: binarize, deskew, denoise, contrast, lines, line_height, chars (see
// ocr_stages.h). Text is dark on a light background unless a stage says otherwise.
#include "ocr_stages.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <numeric>
#include <opencv2/imgproc.hpp>
#include <opencv2/photo.hpp>

#include "image_common.h"

namespace bpkit_image {

using bpkit::Box;
using bpkit::Image;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

namespace {

Value image_list(const std::string& path) {
  Value v;
  v.kind = Kind::kImageList;
  v.path = path;
  return v;
}

// Applies `f` (CV_32FC1 -> CV_32FC1) to every channel but alpha.
template <class F>
cv::Mat per_channel(const cv::Mat& m, F f) {
  std::vector<cv::Mat> ch;
  cv::split(m, ch);
  const size_t color = ch.size() == 4 || ch.size() == 2 ? ch.size() - 1 : ch.size();
  for (size_t c = 0; c < color; ++c) ch[c] = f(ch[c]);
  cv::Mat out;
  cv::merge(ch, out);
  return out;
}

cv::Mat to_u8(const cv::Mat& f) {
  cv::Mat u;
  f.convertTo(u, CV_8U, 255);
  return u;
}

cv::Mat from_u8(const cv::Mat& u) {
  cv::Mat f;
  u.convertTo(f, CV_32F, 1.0 / 255);
  return f;
}

// The 0.9 quantile of each channel: the paper's color, to fill what a rotation uncovers.
cv::Scalar paper_color(const cv::Mat& m) {
  std::vector<cv::Mat> ch;
  cv::split(m, ch);
  cv::Scalar s;
  for (size_t c = 0; c < ch.size() && c < 4; ++c) s[int(c)] = quantile(ch[c], 0.9);
  return s;
}

// Light text on a dark page (its median gray below 0.4) is inverted: the page analysis expects
// dark text on light paper.
cv::Mat dark_on_light(const cv::Mat& gray) {
  if (quantile(gray, 0.5) >= 0.4) return gray;
  cv::Mat inv = 1.0 - gray;
  return inv;
}

cv::Mat rotate_channels(const cv::Mat& m, double angle, bool expand, cv::Mat* forward) {
  const cv::Scalar fill = paper_color(m);
  if (expand) {
    std::vector<cv::Mat> ch;
    cv::split(m, ch);
    for (size_t c = 0; c < ch.size(); ++c)
      ch[c] =
          rotate_expand(ch[c], angle, fill[int(std::min<size_t>(c, 3))], cv::INTER_LINEAR, forward);
    cv::Mat out;
    cv::merge(ch, out);
    return out;
  }
  cv::Mat M = cv::getRotationMatrix2D(cv::Point2f(m.cols / 2.0f, m.rows / 2.0f), angle, 1.0), out;
  cv::warpAffine(m, out, M, m.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, fill);
  if (forward) *forward = M;
  return out;
}

}  // namespace

// ---- image.binarize ----------------------------------------------------------------------------

PluginInfo Binarize::info() {
  return {"image.binarize",
          "1.0",
          "one gray channel of 0 (ink) and 1 (paper), or the reverse with invert: Otsu's global "
          "threshold, Sauvola's local one (mean m and deviation s over a window; ink where "
          "v <= m (1 + k (s / range - 1)), robust to uneven lighting) or a fixed threshold",
          Kind::kImage,
          Kind::kImage,
          {{"method", {"otsu", "sauvola", "fixed"}, "otsu", "thresholding method"},
           {"threshold", ParamType::kFloat, "0.5", "fixed: ink where gray <= threshold", 0, 1},
           {"window", ParamType::kInt, "31", "sauvola: window side in pixels (odd)", 3, 1001},
           {"k", ParamType::kFloat, "0.2", "sauvola: sensitivity to local contrast", 0, 1},
           {"range", ParamType::kFloat, "0.5", "sauvola: dynamic range of the deviation", 0.01, 1},
           {"invert", ParamType::kBool, "false", "output 1 for ink, 0 for paper"}}};
}

void Binarize::configure(const bpkit::ParamValues& p) {
  const std::string m = p.get_string("method");
  method_ = m == "sauvola" ? Method::kSauvola : m == "fixed" ? Method::kFixed : Method::kOtsu;
  threshold_ = p.get_float("threshold");
  window_ = int(p.get_int("window"));
  if (window_ % 2 == 0) throw bpkit::ParamError("window", "window must be odd");
  k_ = p.get_float("k");
  range_ = p.get_float("range");
  invert_ = p.get_bool("invert");
}

Value Binarize::process(const Value& in) const {
  const cv::Mat g = gray_of(in.image);
  cv::Mat ink;  // 255 where ink
  switch (method_) {
    case Method::kOtsu:
      cv::threshold(to_u8(g), ink, 0, 255, cv::THRESH_BINARY_INV | cv::THRESH_OTSU);
      break;
    case Method::kFixed:
      ink = g <= threshold_;
      break;
    case Method::kSauvola: {
      cv::Mat mean, sq, g2 = g.mul(g);
      const cv::Size w(window_, window_);
      cv::boxFilter(g, mean, CV_32F, w, {-1, -1}, true, cv::BORDER_REPLICATE);
      cv::boxFilter(g2, sq, CV_32F, w, {-1, -1}, true, cv::BORDER_REPLICATE);
      cv::Mat var = sq - mean.mul(mean), sd;
      cv::max(var, 0.0, var);
      cv::sqrt(var, sd);
      cv::Mat t = mean.mul(1.0 + k_ * (sd / range_ - 1.0));
      ink = g <= t;
      break;
    }
  }
  cv::Mat out(g.size(), CV_32F);
  out.setTo(invert_ ? 0.0f : 1.0f);
  out.setTo(invert_ ? 1.0f : 0.0f, ink);
  return from_mat(out, in.path);
}

// ---- image.deskew ------------------------------------------------------------------------------

PluginInfo Deskew::info() {
  return {
      "image.deskew",
      "1.0",
      "levels text lines: finds the angle in [-max_angle, max_angle] whose horizontal "
      "projection profile of the ink (Otsu on the illumination-flattened gray page) is sharpest "
      "(0.5 degree steps, then 0.05; light text on a dark page is inverted for the analysis) and "
      "rotates the image (all its channels) by it, filling "
      "with the paper color",
      Kind::kImage,
      Kind::kImage,
      {{"max_angle", ParamType::kFloat, "20", "largest skew searched, degrees", 0, 45},
       {"min_angle", ParamType::kFloat, "0.05", "smaller skews are left alone, degrees", 0, 45},
       {"expand", ParamType::kBool, "true",
        "enlarge the canvas to keep the corners (else keep the size and crop)"}}};
}

void Deskew::configure(const bpkit::ParamValues& p) {
  max_angle_ = p.get_float("max_angle");
  min_angle_ = p.get_float("min_angle");
  expand_ = p.get_bool("expand");
}

Value Deskew::process(const Value& in) const {
  const cv::Mat g = dark_on_light(gray_of(in.image));
  const double angle = estimate_skew(ink_mask(flatten_illumination(g, 0)), max_angle_);
  if (std::abs(angle) < std::max(min_angle_, 1e-6)) return in;
  return from_mat(rotate_channels(to_mat(in.image), -angle, expand_, nullptr), in.path);
}

// ---- image.denoise -----------------------------------------------------------------------------

PluginInfo Denoise::info() {
  return {"image.denoise",
          "1.0",
          "removes noise: a median filter (size x size), non-local means (strength = filter "
          "strength h on the 0-255 scale, 8-bit), or an opening of the dark ink (a closing of the "
          "gray image: ink specks smaller than size x size disappear); alpha is kept. With "
          "only_above > 0 the image is filtered only when its estimated noise (1.4826 x the median "
          "absolute difference from its 3x3 median over its middle 1024x1024 pixels, on the 0-1 "
          "scale) exceeds it, and passes "
          "unchanged otherwise: clean scans keep their thin strokes, noisy ones are cleaned",
          Kind::kImage,
          Kind::kImage,
          {{"method", {"median", "nlmeans", "opening"}, "median", "denoising method"},
           {"size", ParamType::kInt, "3",
            "median: window side (odd); opening: structuring element side (below the stroke width)",
            2, 31},
           {"strength", ParamType::kFloat, "10", "nlmeans: filter strength h", 1, 100},
           {"only_above", ParamType::kFloat, "0",
            "filter only images noisier than this (estimated noise sigma, 0-1 scale; 0: always)", 0,
            1}}};
}

void Denoise::configure(const bpkit::ParamValues& p) {
  const std::string m = p.get_string("method");
  method_ = m == "nlmeans" ? Method::kNlMeans : m == "opening" ? Method::kOpening : Method::kMedian;
  size_ = int(p.get_int("size"));
  if (method_ == Method::kMedian && size_ % 2 == 0)
    throw bpkit::ParamError("size", "a median's size must be odd");
  strength_ = p.get_float("strength");
  noisy_ = p.get_float("only_above");
}

Value Denoise::process(const Value& in) const {
  const cv::Mat m = to_mat(in.image);
  if (noisy_ > 0 && estimate_noise(gray_of(in.image)) <= noisy_) return in;
  const int size = size_;
  const float h = float(strength_);
  switch (method_) {
    case Method::kMedian:
      return from_mat(per_channel(m,
                                  [&](const cv::Mat& c) {
                                    cv::Mat o;
                                    if (size <= 5) {  // float median exists for 3 and 5 only
                                      cv::medianBlur(c, o, size);
                                      return o;
                                    }
                                    cv::medianBlur(to_u8(c), o, size);
                                    return from_u8(o);
                                  }),
                      in.path);
    case Method::kNlMeans:
      return from_mat(per_channel(m,
                                  [&](const cv::Mat& c) {
                                    cv::Mat o;
                                    cv::fastNlMeansDenoising(to_u8(c), o, h, 7, 21);
                                    return from_u8(o);
                                  }),
                      in.path);
    case Method::kOpening:
      break;
  }
  const cv::Mat k = cv::getStructuringElement(cv::MORPH_RECT, {size, size});
  return from_mat(per_channel(m,
                              [&](const cv::Mat& c) {
                                // Anchors mirrored between the two passes: an even size does not
                                // shift.
                                const int a = size / 2, b = size - 1 - a;
                                cv::Mat t, o;
                                cv::dilate(c, t, k, {a, a}, 1, cv::BORDER_REPLICATE);
                                cv::erode(t, o, k, {b, b}, 1, cv::BORDER_REPLICATE);
                                return o;
                              }),
                  in.path);
}

// ---- image.contrast ----------------------------------------------------------------------------

PluginInfo Contrast::info() {
  return {"image.contrast",
          "1.0",
          "contrast normalization: flatten divides by the background (a closing over `kernel` "
          "pixels, then a blur) so unevenly lit paper becomes evenly white; clahe is OpenCV's "
          "contrast-limited adaptive histogram equalization; stretch maps the low and high "
          "percentiles to 0 and 1. Per channel; alpha is kept",
          Kind::kImage,
          Kind::kImage,
          {{"method", {"flatten", "clahe", "stretch"}, "flatten", "normalization"},
           {"kernel", ParamType::kInt, "0",
            "flatten: background window in pixels, wider than the strokes (0: min side / 20, at "
            "least 15)",
            0, 4001},
           {"clip_limit", ParamType::kFloat, "2", "clahe: contrast limit", 0.1, 100},
           {"tiles", ParamType::kInt, "8", "clahe: tiles per side", 1, 64},
           {"low", ParamType::kFloat, "1", "stretch: percentile that becomes 0", 0, 100},
           {"high", ParamType::kFloat, "99", "stretch: percentile that becomes 1", 0, 100}}};
}

void Contrast::configure(const bpkit::ParamValues& p) {
  const std::string m = p.get_string("method");
  method_ = m == "clahe" ? Method::kClahe : m == "stretch" ? Method::kStretch : Method::kFlatten;
  kernel_ = int(p.get_int("kernel"));
  clip_ = p.get_float("clip_limit");
  tile_ = int(p.get_int("tiles"));
  low_ = p.get_float("low");
  high_ = p.get_float("high");
  if (!(high_ > low_))
    throw bpkit::ParamError("high",
                            "high (" + p.raw("high") + ") must exceed low (" + p.raw("low") + ")");
}

Value Contrast::process(const Value& in) const {
  const cv::Mat m = to_mat(in.image);
  switch (method_) {
    case Method::kFlatten:
      return from_mat(
          per_channel(m, [&](const cv::Mat& c) { return flatten_illumination(c, kernel_); }),
          in.path);
    case Method::kClahe: {
      cv::Ptr<cv::CLAHE> clahe = cv::createCLAHE(clip_, cv::Size(tile_, tile_));
      return from_mat(per_channel(m,
                                  [&](const cv::Mat& c) {
                                    cv::Mat u, o;
                                    c.convertTo(u, CV_16U, 65535);
                                    clahe->apply(u, o);
                                    cv::Mat f;
                                    o.convertTo(f, CV_32F, 1.0 / 65535);
                                    return f;
                                  }),
                      in.path);
    }
    case Method::kStretch:
      break;
  }
  return from_mat(per_channel(m,
                              [&](const cv::Mat& c) {
                                const float lo = quantile(c, low_ / 100),
                                            hi = quantile(c, high_ / 100);
                                cv::Mat o = (c - lo) / std::max(1e-6f, hi - lo);
                                cv::min(o, 1.0, o);
                                cv::max(o, 0.0, o);
                                return o;
                              }),
                  in.path);
}

// ---- image.lines -------------------------------------------------------------------------------

PluginInfo Lines::info() {
  return {
      "image.lines",
      "1.0",
      "page -> its text lines (single column, top to bottom) as an image_list with their boxes "
      "in the source page (the axis-aligned box of the deskewed crop): illumination flattened, "
      "ink by Otsu, skew removed (as image.deskew), lines from the horizontal projection "
      "profile, touching lines split at its valleys, each extended to the ascender-descender band "
      "of the page's lines (so a line without descenders is not scaled up) and cropped with a "
      "margin. Light text on a "
      "dark page is inverted first; ink components taller than 12 x-heights (page edges, "
      "pictures) and long thin rules are ignored. A blank page "
      "gives an empty list. Produces an image_list, so it cannot end a training pipeline: run "
      "each line through the recognizer's stages separately (as ocr_app does)",
      Kind::kImage,
      Kind::kImageList,
      {{"max_angle", ParamType::kFloat, "20", "largest skew corrected, degrees (0: none)", 0, 45},
       {"margin", ParamType::kFloat, "0.15", "margin around each line, times its height", 0, 2},
       {"valley", ParamType::kFloat, "0.4",
        "split a block at a profile valley lower than this times its lower neighboring peak", 0, 1},
       {"min_height", ParamType::kInt, "6", "blocks of ink lower than this are noise", 1, 1000},
       {"kernel", ParamType::kInt, "0", "background window for flattening (0: automatic)", 0, 4001},
       {"output",
        {"gray", "flattened", "binary"},
        "gray",
        "line images from the deskewed gray page, its flattened version, or the ink (0 ink, "
        "1 paper)"}}};
}

void Lines::configure(const bpkit::ParamValues& p) {
  max_angle_ = p.get_float("max_angle");
  margin_ = p.get_float("margin");
  valley_ = p.get_float("valley");
  min_height_ = int(p.get_int("min_height"));
  kernel_ = int(p.get_int("kernel"));
  const std::string o = p.get_string("output");
  output_ = o == "flattened" ? Output::kFlat : o == "binary" ? Output::kBinary : Output::kGray;
}

namespace {

// Splits [a, b) at profile valleys, recursively: the deepest local minimum whose value is below
// `valley` times the lower of the highest points on either side, when both sides stay at least
// `min_part` rows high.
void split_block(const std::vector<double>& prof, int a, int b, double valley, int min_part,
                 std::vector<std::pair<int, int>>& out) {
  int best = -1;
  double best_ratio = valley;
  for (int y = a + min_part; y < b - min_part; ++y) {
    if (!(prof[size_t(y)] <= prof[size_t(y - 1)] && prof[size_t(y)] <= prof[size_t(y + 1)]))
      continue;
    const double left = *std::max_element(prof.begin() + a, prof.begin() + y);
    const double right = *std::max_element(prof.begin() + y + 1, prof.begin() + b);
    const double peak = std::min(left, right);
    if (peak <= 0) continue;
    const double r = prof[size_t(y)] / peak;
    if (r < best_ratio) {
      best_ratio = r;
      best = y;
    }
  }
  if (best < 0) {
    out.push_back({a, b});
    return;
  }
  split_block(prof, a, best, valley, min_part, out);
  split_block(prof, best, b, valley, min_part, out);
}

// A text line's box in the deskewed page.
struct Extent {
  int x0 = INT_MAX, y0 = INT_MAX, x1 = -1, y1 = -1;
};

// The q-quantile (nearest rank) of v, which must not be empty.
template <class T>
T quantile_of(std::vector<T> v, double q) {
  const size_t k = std::min(v.size() - 1, size_t(q * double(v.size())));
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
  return v[k];
}

// A line's ink reaches from its tallest letter to its deepest descender, but the recognizer
// learned from crops of the font's whole band (ascender line to descender line), alike for every
// line of a text. A line without descenders ("mother zebra") would be scaled up against its
// neighbors, and its small letters read as capitals (o as O, e as @). So every line is extended to
// the band of the page's lines: above its baseline (the median bottom of its letter-sized
// components) as far as three in four lines' ink reaches, below it likewise, both in proportion to
// the line's x-height where that differs much from the page's (a heading, a footnote). With fewer
// than three lines the band is that of common Latin typefaces: 1.4 x-heights up, 0.45 down.
void extend_to_font_band(std::vector<Extent>& ext, const std::vector<std::vector<int>>& bottoms,
                         const std::vector<std::vector<int>>& sizes) {
  const size_t L = ext.size();
  std::vector<int> base(L, -1), lxh(L, 0);
  std::vector<int> all_xh;
  for (size_t k = 0; k < L; ++k) {
    if (ext[k].x1 < 0 || bottoms[k].empty()) continue;
    base[k] = std::clamp(quantile_of(bottoms[k], 0.5), ext[k].y0, ext[k].y1);
    lxh[k] = std::max(1, quantile_of(sizes[k], 0.3));
    all_xh.push_back(lxh[k]);
  }
  if (all_xh.empty()) return;
  const double page_xh = quantile_of(all_xh, 0.5);
  std::vector<double> scale(L, 1.0), up, down;
  for (size_t k = 0; k < L; ++k) {
    if (base[k] < 0) continue;
    const double s = lxh[k] / page_xh;
    scale[k] = s < 0.75 || s > 1.5 ? s : 1.0;
    up.push_back((base[k] - ext[k].y0) / scale[k]);
    down.push_back((ext[k].y1 - base[k]) / scale[k]);
  }
  const bool page = up.size() >= 3;
  const double a = page ? quantile_of(up, 0.75) : 0, d = page ? quantile_of(down, 0.75) : 0;
  for (size_t k = 0; k < L; ++k) {
    if (base[k] < 0) continue;
    const double above = page ? a * scale[k] : 1.4 * lxh[k];
    const double below = page ? d * scale[k] : 0.45 * lxh[k];
    ext[k].y0 = std::min(ext[k].y0, base[k] - int(std::lround(above)));
    ext[k].y1 = std::max(ext[k].y1, base[k] + int(std::lround(below)));
  }
}

}  // namespace

Value Lines::process(const Value& in) const {
  Value out = image_list(in.path);
  const cv::Mat g = dark_on_light(gray_of(in.image));
  cv::Mat flat = flatten_illumination(g, kernel_);
  cv::Mat mask = ink_mask(flat);
  if (cv::countNonZero(mask) == 0) return out;

  // Level the lines; M maps source to deskewed coordinates.
  cv::Mat M = (cv::Mat_<double>(2, 3) << 1, 0, 0, 0, 1, 0);
  cv::Mat page = g;
  const double angle = max_angle_ > 0 ? estimate_skew(mask, max_angle_) : 0;
  if (std::abs(angle) >= 0.05) {
    page = rotate_expand(g, -angle, quantile(g, 0.9), cv::INTER_LINEAR, &M);
    flat = rotate_expand(flat, -angle, 1.0, cv::INTER_LINEAR);
    mask = rotate_expand(mask, -angle, 0.0, cv::INTER_NEAREST);
  }

  // The x-height: a low quantile of the heights of the ink's connected components.
  cv::Mat labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
  std::vector<int> heights;
  for (int i = 1; i < n; ++i)
    if (stats.at<int>(i, cv::CC_STAT_AREA) >= 4 && stats.at<int>(i, cv::CC_STAT_HEIGHT) >= 3)
      heights.push_back(stats.at<int>(i, cv::CC_STAT_HEIGHT));
  if (heights.empty()) return out;
  std::sort(heights.begin(), heights.end());
  const int xh = std::max(4, heights[heights.size() * 3 / 10]);
  // Not text: components taller than 12 x-heights (page edges, frames, pictures; five touching
  // lines are shorter) and rules (wider than 20 x-heights, lower than half of one).
  std::vector<bool> text(size_t(n), true);
  for (int i = 1; i < n; ++i) {
    const int h = stats.at<int>(i, cv::CC_STAT_HEIGHT), w = stats.at<int>(i, cv::CC_STAT_WIDTH);
    if (h > 12 * xh || (w > 20 * xh && 2 * h < xh)) {
      text[size_t(i)] = false;
      mask.setTo(0, labels == i);
    }
  }

  // The horizontal projection profile, smoothed over a quarter of the x-height.
  std::vector<double> raw(size_t(mask.rows), 0), prof(size_t(mask.rows), 0);
  for (int y = 0; y < mask.rows; ++y) raw[size_t(y)] = cv::countNonZero(mask.row(y));
  const int half = std::max(1, xh / 8);
  for (int y = 0; y < mask.rows; ++y) {
    double s = 0;
    int c = 0;
    for (int d = -half; d <= half; ++d)
      if (y + d >= 0 && y + d < mask.rows) s += raw[size_t(y + d)], ++c;
    prof[size_t(y)] = s / c;
  }

  // Blocks of rows with ink; small ones close to a neighbor (dots, accents) join it.
  std::vector<std::pair<int, int>> blocks;
  for (int y = 0; y < mask.rows;) {
    if (raw[size_t(y)] == 0) {
      ++y;
      continue;
    }
    int e = y;
    while (e < mask.rows && raw[size_t(e)] > 0) ++e;
    blocks.push_back({y, e});
    y = e;
  }
  std::vector<std::pair<int, int>> merged;
  const int small = std::max(min_height_, xh / 2);
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto b = blocks[i];
    if (b.second - b.first >= small) {
      if (!merged.empty() && merged.back().second - merged.back().first < small &&
          b.first - merged.back().second <= xh / 2)
        b.first = merged.back().first, merged.pop_back();  // a small block just above joins
      merged.push_back(b);
      continue;
    }
    if (!merged.empty() && b.first - merged.back().second <= xh / 2)
      merged.back().second = b.second;  // a small block just below joins the line above
    else
      merged.push_back(b);
  }

  std::vector<std::pair<int, int>> lines;
  const int min_part = int(std::lround(1.2 * xh));
  for (const auto& b : merged) {
    if (b.second - b.first < min_height_) continue;
    split_block(prof, b.first, b.second, valley_, min_part, lines);
  }

  cv::Mat inverse;
  cv::invertAffineTransform(M, inverse);
  cv::Mat binary;
  if (output_ == Output::kBinary) {
    binary = cv::Mat(mask.size(), CV_32F, cv::Scalar(1.0f));
    binary.setTo(0.0f, mask);
  }
  const cv::Mat& source = output_ == Output::kGray   ? page
                          : output_ == Output::kFlat ? flat
                                                     : binary;
  // Each line's extent: the ink components whose middle lies in its rows (a character touching
  // the next line belongs to one of them), reaching at most 0.6 x-height beyond the rows.
  std::vector<Extent> extents(lines.size());
  // Bottoms and heights of each line's letter-sized components, for its baseline and x-height.
  std::vector<std::vector<int>> bottoms(lines.size()), sizes(lines.size());
  for (int i = 1; i < n; ++i) {
    if (!text[size_t(i)]) continue;
    const int top = stats.at<int>(i, cv::CC_STAT_TOP), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
    const int left = stats.at<int>(i, cv::CC_STAT_LEFT), w = stats.at<int>(i, cv::CC_STAT_WIDTH);
    const int mid = top + h / 2;
    const auto it =
        std::upper_bound(lines.begin(), lines.end(), mid,
                         [](int y, const std::pair<int, int>& l) { return y < l.first; });
    if (it == lines.begin()) continue;
    const size_t k = size_t(it - lines.begin()) - 1;
    if (mid >= lines[k].second) continue;  // between lines: noise
    const int reach = int(0.6 * xh);
    Extent& e = extents[k];
    e.x0 = std::min(e.x0, left);
    e.x1 = std::max(e.x1, left + w);
    e.y0 = std::min(e.y0, std::max(top, lines[k].first - reach));
    e.y1 = std::max(e.y1, std::min(top + h, lines[k].second + reach));
    if (h >= xh / 2 && stats.at<int>(i, cv::CC_STAT_AREA) >= 4) {
      bottoms[k].push_back(top + h);
      sizes[k].push_back(h);
    }
  }
  extend_to_font_band(extents, bottoms, sizes);
  for (const Extent& e : extents) {
    if (e.x1 < 0) continue;
    const cv::Rect ink(e.x0, e.y0, e.x1 - e.x0, e.y1 - e.y0);
    const int m = std::max(2, int(std::lround(margin_ * ink.height)));
    const cv::Rect crop = cv::Rect(ink.x - m, ink.y - m, ink.width + 2 * m, ink.height + 2 * m) &
                          cv::Rect(0, 0, source.cols, source.rows);
    out.images.push_back(image_of(source(crop)));
    // The crop's corners, back in the source page.
    std::vector<cv::Point2f> corners = {cv::Point2f(float(crop.x), float(crop.y)),
                                        cv::Point2f(float(crop.br().x), float(crop.y)),
                                        cv::Point2f(float(crop.x), float(crop.br().y)),
                                        cv::Point2f(float(crop.br().x), float(crop.br().y))},
                             back;
    cv::transform(corners, back, inverse);
    const cv::Rect r = cv::boundingRect(back) & cv::Rect(0, 0, g.cols, g.rows);
    out.boxes.push_back(Box{r.x, r.y, r.width, r.height});
  }
  return out;
}

// ---- image.line_height -------------------------------------------------------------------------

PluginInfo LineHeight::info() {
  return {"image.line_height",
          "1.0",
          "scales a text line to `height` pixels keeping its aspect ratio; a line that would be "
          "wider than max_width is scaled to that width instead and padded to the height "
          "(centered); with pad_width every output is max_width wide (padded on the right), a "
          "fixed shape; with trim the paper around the ink is cut off first",
          Kind::kImage,
          Kind::kImage,
          {{"height", ParamType::kInt, "32", "output height in pixels", 4, 1024},
           {"max_width", ParamType::kInt, "1024", "largest output width in pixels", 4, 65536},
           {"pad_width", ParamType::kBool, "false", "pad every line to max_width"},
           {"pad", ParamType::kFloat, "1", "padding value (1: white paper)", 0, 1},
           {"trim", ParamType::kBool, "false", "cut the paper around the ink (Otsu) first"}}};
}

void LineHeight::configure(const bpkit::ParamValues& p) {
  height_ = int(p.get_int("height"));
  max_width_ = int(p.get_int("max_width"));
  pad_width_ = p.get_bool("pad_width");
  pad_ = float(p.get_float("pad"));
  trim_ = p.get_bool("trim");
}

Value LineHeight::process(const Value& in) const {
  cv::Mat m = to_mat(in.image);
  if (trim_) {
    std::vector<cv::Point> pts;
    cv::findNonZero(ink_mask(gray_of(in.image)), pts);
    if (!pts.empty()) m = m(cv::boundingRect(pts));
  }
  double s = double(height_) / m.rows;
  int w = std::max(1, int(std::lround(m.cols * s))), h = height_;
  if (w > max_width_) {
    s = double(max_width_) / m.cols;
    w = max_width_;
    h = std::max(1, std::min(height_, int(std::lround(m.rows * s))));
  }
  cv::Mat scaled;
  cv::resize(m, scaled, cv::Size(w, h), 0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
  cv::Mat out(height_, pad_width_ ? max_width_ : w, m.type(), cv::Scalar::all(pad_));
  scaled.copyTo(out(cv::Rect(0, (height_ - h) / 2, w, h)));
  return from_mat(out, in.path);
}

// ---- image.chars -------------------------------------------------------------------------------

PluginInfo Chars::info() {
  return {
      "image.chars",
      "1.0",
      "a text line (or one character) -> its characters, left to right, as an image_list of "
      "gray crops with their boxes: connected components of the ink (Otsu; ink is the minority "
      "polarity, so light-on-dark digits work too), those overlapping horizontally merged (i, "
      "j, :, =), or runs of ink columns (projection). Produces an image_list: not the last "
      "stage of a training pipeline",
      Kind::kImage,
      Kind::kImageList,
      {{"method", {"components", "projection"}, "components", "segmentation"},
       {"min_area", ParamType::kInt, "4", "smaller ink components are noise (pixels)", 0, 1000000},
       {"merge_overlap", ParamType::kFloat, "0.5",
        "components: merge when the horizontal overlap exceeds this times the narrower width", 0,
        1},
       {"margin", ParamType::kInt, "2", "pixels added around each character", 0, 1000}}};
}

void Chars::configure(const bpkit::ParamValues& p) {
  projection_ = p.get_string("method") == "projection";
  min_area_ = int(p.get_int("min_area"));
  merge_overlap_ = p.get_float("merge_overlap");
  margin_ = int(p.get_int("margin"));
}

Value Chars::process(const Value& in) const {
  Value out = image_list(in.path);
  cv::Mat g = gray_of(in.image);
  // Ink is whichever side of Otsu's threshold covers less of the image.
  cv::Mat mask = ink_mask(g, 0.1);
  if (cv::countNonZero(mask) == 0) {
    cv::Mat inv = 1.0 - g;
    mask = ink_mask(inv, 0.1);
  } else {
    cv::Mat inv = 1.0 - g, other = ink_mask(inv, 0.1);
    const int a = cv::countNonZero(mask), b = cv::countNonZero(other);
    if (b > 0 && b < a) mask = other;
  }
  std::vector<cv::Rect> boxes;
  if (projection_) {
    cv::Mat cols;
    cv::reduce(mask, cols, 0, cv::REDUCE_MAX);
    for (int x = 0; x < cols.cols;) {
      if (!cols.at<uchar>(0, x)) {
        ++x;
        continue;
      }
      int e = x;
      while (e < cols.cols && cols.at<uchar>(0, e)) ++e;
      std::vector<cv::Point> pts;
      cv::findNonZero(mask.colRange(x, e), pts);
      const cv::Rect r = cv::boundingRect(pts) + cv::Point(x, 0);
      if (int(pts.size()) >= std::max(1, min_area_)) boxes.push_back(r);
      x = e;
    }
  } else {
    cv::Mat labels, stats, centroids;
    const int n = cv::connectedComponentsWithStats(mask, labels, stats, centroids, 8, CV_32S);
    std::vector<cv::Rect> parts;
    for (int i = 1; i < n; ++i)
      if (stats.at<int>(i, cv::CC_STAT_AREA) >= min_area_)
        parts.push_back(
            cv::Rect(stats.at<int>(i, cv::CC_STAT_LEFT), stats.at<int>(i, cv::CC_STAT_TOP),
                     stats.at<int>(i, cv::CC_STAT_WIDTH), stats.at<int>(i, cv::CC_STAT_HEIGHT)));
    std::sort(parts.begin(), parts.end(),
              [](const cv::Rect& a, const cv::Rect& b) { return a.x < b.x; });
    for (const cv::Rect& r : parts) {
      if (!boxes.empty()) {
        cv::Rect& last = boxes.back();
        const int overlap = std::min(last.br().x, r.br().x) - std::max(last.x, r.x);
        if (overlap > 0 && overlap >= merge_overlap_ * std::min(last.width, r.width)) {
          last |= r;
          continue;
        }
      }
      boxes.push_back(r);
    }
  }
  const cv::Rect all(0, 0, g.cols, g.rows);
  for (const cv::Rect& r : boxes) {
    const cv::Rect c =
        cv::Rect(r.x - margin_, r.y - margin_, r.width + 2 * margin_, r.height + 2 * margin_) & all;
    out.images.push_back(image_of(g(c)));
    out.boxes.push_back(Box{c.x, c.y, c.width, c.height});
  }
  return out;
}

}  // namespace bpkit_image
