// signature.features and signature.image (see signature_stages.h for the feature vector's layout
// and docs/signature-features.md).
//
// Everything is measured on signature.clean's size-normalized ink image, and every quantity is
// made scale-free: histograms sum to 1, lengths and widths are divided by the ink's height, counts
// are compressed as ln(1 + n), zones are fractions of the ink's bounding box. Histograms of
// continuous quantities split each sample between the two nearest bin centers (linear soft
// binning), so a value near a bin edge does not jump between bins from one scan to the next.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "image_common.h"
#include "ink_image.h"
#include "signature_stages.h"
#include "skeleton.h"

namespace bpkit_strokes {

using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

namespace {

constexpr int kDirectionBins = 8;   // stroke orientation, 22.5 degrees each, bin 0 centered on 0
constexpr int kCurvatureBins = 8;   // turning angle a, uniform in sqrt(a / pi)
constexpr int kWidthBins = 8;       // stroke width / ink height over [0, kMaxWidth]
constexpr double kMaxWidth = 0.08;  // wider strokes fall into the last bin
constexpr int kPressureBins = 8;    // darkness over [0, 1]
constexpr int kLbpBins = 59;        // 58 uniform patterns + 1 for all others
constexpr int kHogBins = 9;         // unsigned gradient orientation, 20 degrees each
constexpr int kHogCell = 16;        // pixels
constexpr int kTopology = 8;
constexpr double kStep = 0.03;  // chord along strokes for angles, as a fraction of the ink height

using Grid = SignatureFeatures::Grid;

// "rows x cols" (also "rowsxcols", "4X8"), each in [lo, 64].
Grid parse_grid(const std::string& key, const std::string& text, int lo) {
  Grid g;
  char sep = 0;
  size_t used = 0;
  try {
    g.rows = std::stoi(text, &used);
    size_t at = used;
    while (at < text.size() && text[at] == ' ') ++at;
    if (at < text.size()) sep = text[at++];
    const std::string rest = text.substr(at);
    g.cols = std::stoi(rest, &used);
    if (rest.find_first_not_of(' ', used) != std::string::npos) sep = 0;
  } catch (const std::exception&) {
    sep = 0;
  }
  if ((sep != 'x' && sep != 'X') || g.rows < lo || g.cols < lo || g.rows > 64 || g.cols > 64)
    throw bpkit::ParamError(key, key + " must be a grid \"rows x cols\" with " +
                                     std::to_string(lo) + " to 64 of each, e.g. \"4x8\"; got '" +
                                     text + "'");
  return g;
}

// Adds weight w at continuous bin position u (bin k spans [k, k + 1)) between the two nearest bin
// centers; the ends are clamped.
void soft_add(float* hist, int bins, double u, double w) {
  const double c = u - 0.5;
  if (c <= 0) {
    hist[0] += float(w);
    return;
  }
  if (c >= bins - 1) {
    hist[bins - 1] += float(w);
    return;
  }
  const int k = int(c);
  const double f = c - k;
  hist[k] += float(w * (1 - f));
  hist[k + 1] += float(w * f);
}
// The same on a circle (orientations): the last bin's neighbour is the first.
void soft_add_circular(float* hist, int bins, double u, double w) {
  const double c = u - 0.5;
  const int k = int(std::floor(c));
  const double f = c - k;
  hist[((k % bins) + bins) % bins] += float(w * (1 - f));
  hist[(((k + 1) % bins) + bins) % bins] += float(w * f);
}
void scale(float* v, int n, double total) {
  if (total <= 0) return;
  for (int i = 0; i < n; ++i) v[i] = float(v[i] / total);
}

// The uniform-pattern index of each 8-bit LBP code (at most two 0/1 transitions around the
// circle), in increasing code order; 58 for the others.
const std::array<uint8_t, 256>& uniform_lbp() {
  static const std::array<uint8_t, 256> table = [] {
    std::array<uint8_t, 256> t{};
    int next = 0;
    for (int c = 0; c < 256; ++c) {
      int transitions = 0;
      for (int k = 0; k < 8; ++k) transitions += ((c >> k) & 1) != ((c >> ((k + 1) % 8)) & 1);
      t[size_t(c)] = uint8_t(transitions <= 2 ? next++ : kLbpBins - 1);
    }
    return t;
  }();
  return table;
}

// The zone of grid `g` over `box` that holds (x, y); points outside go to the nearest zone.
int zone_of(const Grid& g, const cv::Rect& box, double x, double y) {
  const int zx = std::clamp(int((x - box.x) * g.cols / box.width), 0, g.cols - 1);
  const int zy = std::clamp(int((y - box.y) * g.rows / box.height), 0, g.rows - 1);
  return zy * g.cols + zx;
}

// What every group reads: the ink, its strokes and the skeleton's strokes.
struct Analysis {
  cv::Mat ink;       // CV_32FC1 darkness
  cv::Mat coverage;  // CV_32FC1 in [0, 1] (ink_coverage)
  cv::Mat mask;      // CV_8UC1 0/1 strokes
  cv::Mat skeleton;
  cv::Mat width;  // CV_32FC1: at skeleton pixels, the local stroke width in pixels
  SkeletonGraph graph;
  // The strokes' points smoothed by a moving average over `step` pixels (the skeleton's staircase
  // would otherwise put its 45-degree quantization into every angle).
  std::vector<std::vector<cv::Point2f>> smooth;
  cv::Rect box;  // the strokes' bounding box
  double height = 1;
  int step = 2;  // chord length along strokes for directions and turning angles, pixels
};

// The stroke width at each skeleton pixel, sub-pixel: the ink's coverage around it over the
// skeleton's length there (sums over a square of `radius`): a stroke of width w covers w pixels
// per pixel of its length.
cv::Mat stroke_widths(const cv::Mat& coverage, const cv::Mat& skeleton, int radius) {
  cv::Mat area, length, skel;
  skeleton.convertTo(skel, CV_32F);
  const cv::Size window(2 * radius + 1, 2 * radius + 1);
  cv::boxFilter(coverage, area, CV_32F, window, {-1, -1}, false, cv::BORDER_CONSTANT);
  cv::boxFilter(skel, length, CV_32F, window, {-1, -1}, false, cv::BORDER_CONSTANT);
  cv::Mat width = cv::Mat::zeros(skeleton.size(), CV_32F);
  for (int y = 0; y < skeleton.rows; ++y) {
    const uint8_t* s = skeleton.ptr<uint8_t>(y);
    const float* a = area.ptr<float>(y);
    const float* l = length.ptr<float>(y);
    float* w = width.ptr<float>(y);
    for (int x = 0; x < skeleton.cols; ++x)
      if (s[x] && l[x] > 0) w[x] = a[x] / l[x];
  }
  return width;
}

// Each stroke's points averaged over a window of 2 half + 1 points (wrapping around a closed
// stroke, shrinking near the ends of an open one, whose end points stay where they are).
std::vector<std::vector<cv::Point2f>> smooth_strokes(const std::vector<Stroke>& strokes, int half) {
  std::vector<std::vector<cv::Point2f>> out;
  out.reserve(strokes.size());
  for (const Stroke& s : strokes) {
    const int n = int(s.points.size());
    std::vector<cv::Point2f> p(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const int h = s.closed ? std::min(half, (n - 1) / 2) : std::min({half, i, n - 1 - i});
      cv::Point2f sum(0, 0);
      for (int k = -h; k <= h; ++k) sum += cv::Point2f(s.points[size_t((i + k + n) % n)]);
      p[size_t(i)] = sum / float(2 * h + 1);
    }
    out.push_back(std::move(p));
  }
  return out;
}

void direction_features(const Analysis& a, const Grid& zones, float*& out) {
  float* global = out;
  float* zoned = out + kDirectionBins;
  const int n = kDirectionBins * (1 + zones.zones());
  std::fill(out, out + n, 0.0f);
  double total = 0;
  for (size_t j = 0; j < a.smooth.size(); ++j) {
    const Stroke& s = a.graph.strokes[j];
    const std::vector<cv::Point2f>& pts = a.smooth[j];
    const int len = int(pts.size());
    const int last = s.closed ? len : len - a.step;
    for (int i = 0; i < last; ++i) {
      const cv::Point2f p = pts[size_t(i)], q = pts[size_t((i + a.step) % len)];
      const double dx = q.x - p.x, dy = q.y - p.y, w = std::hypot(dx, dy);
      if (w == 0) continue;
      double theta = std::atan2(-dy, dx);  // y up
      if (theta < 0) theta += CV_PI;
      const double u = theta / (CV_PI / kDirectionBins) + 0.5;
      soft_add_circular(global, kDirectionBins, u, w);
      const int z = zone_of(zones, a.box, (p.x + q.x) / 2.0, (p.y + q.y) / 2.0);
      soft_add_circular(zoned + z * kDirectionBins, kDirectionBins, u, w);
      total += w;
    }
  }
  scale(out, n, total);
  out += n;
}

void curvature_features(const Analysis& a, float*& out) {
  std::fill(out, out + kCurvatureBins + 1, 0.0f);
  double count = 0, sum = 0;
  for (size_t j = 0; j < a.smooth.size(); ++j) {
    const Stroke& s = a.graph.strokes[j];
    const std::vector<cv::Point2f>& pts = a.smooth[j];
    const int len = int(pts.size());
    const int first = s.closed ? 0 : a.step, last = s.closed ? len : len - a.step;
    if (s.closed && len < 2 * a.step + 1) continue;
    for (int i = first; i < last; ++i) {
      const cv::Point2f p = pts[size_t((i - a.step + len) % len)], q = pts[size_t(i)],
                        r = pts[size_t((i + a.step) % len)];
      const cv::Point2f v1 = q - p, v2 = r - q;
      const double turn = std::abs(std::atan2(double(v1.x) * v2.y - double(v1.y) * v2.x,
                                              double(v1.x) * v2.x + double(v1.y) * v2.y));
      soft_add(out, kCurvatureBins, std::sqrt(turn / CV_PI) * kCurvatureBins, 1);
      sum += turn / CV_PI;
      ++count;
    }
  }
  scale(out, kCurvatureBins, count);
  out[kCurvatureBins] = count > 0 ? float(sum / count) : 0.0f;
  out += kCurvatureBins + 1;
}

void width_features(const Analysis& a, float*& out) {
  std::fill(out, out + kWidthBins + 2, 0.0f);
  double n = 0, sum = 0, sq = 0;
  for (int y = 0; y < a.skeleton.rows; ++y) {
    const uint8_t* s = a.skeleton.ptr<uint8_t>(y);
    const float* w = a.width.ptr<float>(y);
    for (int x = 0; x < a.skeleton.cols; ++x) {
      if (!s[x]) continue;
      const double r = w[x] / a.height;
      soft_add(out, kWidthBins, r / kMaxWidth * kWidthBins, 1);
      sum += r, sq += r * r, ++n;
    }
  }
  scale(out, kWidthBins, n);
  if (n > 0) {
    const double mean = sum / n;
    out[kWidthBins] = float(mean);
    out[kWidthBins + 1] = float(std::sqrt(std::max(0.0, sq / n - mean * mean)));
  }
  out += kWidthBins + 2;
}

void topology_features(const Analysis& a, float*& out) {
  // Loops: holes in the strokes (4-connected paper not reaching the border), ignoring pinholes
  // smaller than (2% of the ink height)^2 that binarization leaves inside thick strokes.
  cv::Mat paper = a.mask == 0, labels, stats, centroids;
  const int n = cv::connectedComponentsWithStats(paper, labels, stats, centroids, 4, CV_32S);
  const double min_hole = std::max(2.0, std::pow(0.02 * a.height, 2));
  int loops = 0;
  for (int c = 1; c < n; ++c) {
    const int x = stats.at<int>(c, cv::CC_STAT_LEFT), y = stats.at<int>(c, cv::CC_STAT_TOP);
    const int w = stats.at<int>(c, cv::CC_STAT_WIDTH), h = stats.at<int>(c, cv::CC_STAT_HEIGHT);
    const bool border = x == 0 || y == 0 || x + w == a.mask.cols || y + h == a.mask.rows;
    if (!border && stats.at<int>(c, cv::CC_STAT_AREA) >= min_hole) ++loops;
  }
  const int components = cv::connectedComponents(a.mask, labels, 8, CV_32S) - 1;
  const double length = cv::countNonZero(a.skeleton);
  const double area = cv::sum(a.coverage)[0];
  out[0] = float(std::log1p(a.graph.ends));
  out[1] = float(std::log1p(a.graph.junctions));
  out[2] = float(std::log1p(loops));
  out[3] = float(std::log1p(components));
  out[4] = float(std::log1p(length / a.height));
  out[5] = float(std::log(double(a.box.width) / a.box.height));
  out[6] = float(area / a.box.area());
  out[7] = float(stroke_slant(a.graph.strokes, a.step));
  out += kTopology;
}

void zoning_features(const Analysis& a, const Grid& zones, float*& out) {
  const int n = zones.zones();
  std::fill(out, out + n, 0.0f);
  for (int zy = 0; zy < zones.rows; ++zy)
    for (int zx = 0; zx < zones.cols; ++zx) {
      const int x0 = a.box.x + zx * a.box.width / zones.cols;
      const int x1 = a.box.x + (zx + 1) * a.box.width / zones.cols;
      const int y0 = a.box.y + zy * a.box.height / zones.rows;
      const int y1 = a.box.y + (zy + 1) * a.box.height / zones.rows;
      if (x1 <= x0 || y1 <= y0) continue;
      const cv::Rect cell(x0, y0, x1 - x0, y1 - y0);
      out[zy * zones.cols + zx] = float(cv::sum(a.coverage(cell))[0] / cell.area());
    }
  out += n;
}

void pressure_features(const Analysis& a, float*& out) {
  std::fill(out, out + kPressureBins + 4, 0.0f);
  double n = 0, sum = 0, sq = 0, sn = 0, ssum = 0, ssq = 0;
  for (int y = 0; y < a.ink.rows; ++y) {
    const float* v = a.ink.ptr<float>(y);
    const uint8_t* m = a.mask.ptr<uint8_t>(y);
    const uint8_t* s = a.skeleton.ptr<uint8_t>(y);
    for (int x = 0; x < a.ink.cols; ++x) {
      if (!m[x]) continue;
      soft_add(out, kPressureBins, v[x] * kPressureBins, 1);
      sum += v[x], sq += double(v[x]) * v[x], ++n;
      if (s[x]) ssum += v[x], ssq += double(v[x]) * v[x], ++sn;
    }
  }
  scale(out, kPressureBins, n);
  auto moments = [](double count, double s1, double s2, float* dst) {
    if (count <= 0) return;
    const double mean = s1 / count;
    dst[0] = float(mean);
    dst[1] = float(std::sqrt(std::max(0.0, s2 / count - mean * mean)));
  };
  moments(n, sum, sq, out + kPressureBins);
  moments(sn, ssum, ssq, out + kPressureBins + 2);
  out += kPressureBins + 4;
}

// Uniform LBP(8, 1) of the darkness image (a neighbour sets its bit when it is at least as dark as
// the center, within a tolerance) at every pixel of the ink's box (one pixel around it) that is not
// plain paper; each zone's histogram sums to 1.
void lbp_features(const Analysis& a, const Grid& zones, float*& out) {
  const int n = kLbpBins * zones.zones();
  std::fill(out, out + n, 0.0f);
  const auto& uniform = uniform_lbp();
  std::vector<double> count(size_t(zones.zones()), 0);
  // Differences below a tenth of the ink's darkness are ties: resampling and sensor noise make
  // such differences inside a stroke, and they would otherwise decide the codes there.
  const float tolerance = 0.1f * ink_quantile(a.ink, 0.8);
  const int x0 = std::max(1, a.box.x - 1), x1 = std::min(a.ink.cols - 2, a.box.br().x);
  const int y0 = std::max(1, a.box.y - 1), y1 = std::min(a.ink.rows - 2, a.box.br().y);
  for (int y = y0; y <= y1; ++y) {
    const float* up = a.ink.ptr<float>(y - 1);
    const float* mid = a.ink.ptr<float>(y);
    const float* down = a.ink.ptr<float>(y + 1);
    for (int x = x0; x <= x1; ++x) {
      const float c = mid[x];
      const float nb[8] = {up[x],   up[x + 1],   mid[x + 1], down[x + 1],
                           down[x], down[x - 1], mid[x - 1], up[x - 1]};
      int code = 0;
      float any = c;
      for (int k = 0; k < 8; ++k) {
        code |= int(nb[k] >= c - tolerance) << k;
        any = std::max(any, nb[k]);
      }
      if (any <= 0) continue;
      const int z = zone_of(zones, a.box, x, y);
      out[z * kLbpBins + uniform[size_t(code)]] += 1;
      ++count[size_t(z)];
    }
  }
  for (int z = 0; z < zones.zones(); ++z) scale(out + z * kLbpBins, kLbpBins, count[size_t(z)]);
  out += n;
}

// HOG on the ink placed (bounding box centered) into cells.rows x cells.cols cells of kHogCell
// pixels: centered-difference gradients, unsigned orientation in kHogBins bins (soft), blocks of
// 2x2 cells every cell, each block L2-Hys normalized (L2, clip at 0.2, L2 again).
void hog_features(const Analysis& a, const Grid& cells, float*& out) {
  const cv::Mat img = place_ink(a.ink, cells.rows * kHogCell, cells.cols * kHogCell, false);
  std::vector<float> hist(size_t(cells.zones() * kHogBins), 0.0f);
  for (int y = 1; y + 1 < img.rows; ++y) {
    const float* up = img.ptr<float>(y - 1);
    const float* mid = img.ptr<float>(y);
    const float* down = img.ptr<float>(y + 1);
    for (int x = 1; x + 1 < img.cols; ++x) {
      const double gx = mid[x + 1] - mid[x - 1], gy = down[x] - up[x];
      const double mag = std::hypot(gx, gy);
      if (mag <= 0) continue;
      double theta = std::atan2(gy, gx);
      if (theta < 0) theta += CV_PI;
      const int cell = (y / kHogCell) * cells.cols + x / kHogCell;
      soft_add_circular(hist.data() + cell * kHogBins, kHogBins, theta / (CV_PI / kHogBins), mag);
    }
  }
  const int block = 4 * kHogBins;
  for (int by = 0; by + 1 < cells.rows; ++by)
    for (int bx = 0; bx + 1 < cells.cols; ++bx) {
      float* v = out;
      for (int cy = 0; cy < 2; ++cy)
        for (int cx = 0; cx < 2; ++cx) {
          const float* h = hist.data() + ((by + cy) * cells.cols + bx + cx) * kHogBins;
          std::copy(h, h + kHogBins, v + (cy * 2 + cx) * kHogBins);
        }
      for (int pass = 0; pass < 2; ++pass) {
        double norm = 1e-6;
        for (int i = 0; i < block; ++i) norm += double(v[i]) * v[i];
        norm = std::sqrt(norm);
        for (int i = 0; i < block; ++i)
          v[i] = float(pass == 0 ? std::min(0.2, v[i] / norm) : v[i] / norm);
      }
      out += block;
    }
}

// The ink image of a value, checked: one channel, ink-positive (mostly paper = 0), some ink.
cv::Mat ink_of(const Value& in, const std::string& stage) {
  if (in.image.channels != 1)
    throw std::runtime_error(stage + " expects signature.clean's one-channel ink image, got " +
                             std::to_string(in.image.channels) + " channels");
  const cv::Mat ink = bpkit_image::to_mat(in.image);
  const int nonzero = cv::countNonZero(ink > 0);
  if (nonzero == 0) throw std::runtime_error(stage + ": the image holds no ink (all 0)");
  // A scan's paper is light, nonzero nearly everywhere; a cleaned signature written with a broad
  // pen and cropped tightly may still be mostly ink (signature.clean refuses more than max_ink
  // of its page as ink, so a crop above 90% is a scan, not an ink image).
  if (nonzero > 0.9 * double(ink.total()))
    throw std::runtime_error(stage +
                             " expects signature.clean's ink image (paper 0, ink > 0), but " +
                             std::to_string(int(100.0 * nonzero / double(ink.total()))) +
                             "% of the pixels are nonzero: put signature.clean before it");
  return ink;
}

}  // namespace

// ---- signature.features ------------------------------------------------------------------------

int SignatureFeatures::length(const Options& o) {
  int n = 0;
  if (o.direction) n += kDirectionBins * (1 + o.direction_zones.zones());
  if (o.curvature) n += kCurvatureBins + 1;
  if (o.width) n += kWidthBins + 2;
  if (o.topology) n += kTopology;
  if (o.zoning) n += o.zones.zones();
  if (o.pressure) n += kPressureBins + 4;
  if (o.lbp) n += kLbpBins * o.lbp_zones.zones();
  if (o.hog) n += 4 * kHogBins * (o.hog_cells.rows - 1) * (o.hog_cells.cols - 1);
  return n;
}

PluginInfo SignatureFeatures::info() {
  return {
      "signature.features",
      "1.0",
      "features of signature.clean's ink image, scale-free (a 300 and a 600 dpi scan give "
      "nearly the same vector), groups in this order when on: direction (8 orientation bins of "
      "22.5 degrees along the skeleton's traced strokes, bin 0 horizontal, counter-clockwise; "
      "whole signature, then per zone of direction_zones, all summing to 1 together) | "
      "curvature (8 bins of the turning angle a along strokes, uniform in sqrt(a / 180 deg); mean "
      "a / 180 deg) | width (8 bins of stroke width / ink height over 0-0.08, the width at each "
      "skeleton pixel being the ink's coverage around it over the skeleton's length there; mean; "
      "std) | topology (ln(1 + n) of ends, junctions, loops, "
      "components; ln(1 + skeleton length / ink height); ln(ink width / height); ink area / box "
      "area; slant as tan, > 0 leaning right) | zoning (ink density per zone of zones over the "
      "ink's box, row by row) | pressure (8 bins of ink darkness over 0-1; mean; std; mean and std "
      "on the skeleton) | lbp (59 uniform LBP(8,1) bins per zone of lbp_zones, each summing to 1) "
      "| hog (9-bin HOG, 2x2-cell blocks, L2-Hys, on the ink fitted into hog_cells cells of 16 "
      "px: 36 (rows - 1)(cols - 1) values). Defaults: 72 + 9 + 10 + 8 + 32 + 12 + 472 + 1188 = "
      "1803 values",
      Kind::kImage,
      Kind::kFeatures,
      {{"direction", ParamType::kBool, "true", "stroke-direction histograms (chain codes)"},
       {"direction_zones", ParamType::kString, "2x4",
        "grid (rows x cols) over the ink's box for the zoned direction histograms"},
       {"curvature", ParamType::kBool, "true", "turning-angle histogram along traced strokes"},
       {"width", ParamType::kBool, "true", "stroke-width distribution relative to ink height"},
       {"topology", ParamType::kBool, "true",
        "counts of ends, junctions, loops, components and global shape (length, aspect, density, "
        "slant)"},
       {"zoning", ParamType::kBool, "true", "ink density per zone"},
       {"zones", ParamType::kString, "4x8", "grid (rows x cols) for the zoning densities"},
       {"pressure", ParamType::kBool, "true",
        "pseudo-dynamic features: ink darkness histogram and moments (a proxy of pen pressure)"},
       {"lbp", ParamType::kBool, "true", "uniform LBP(8,1) histograms per zone"},
       {"lbp_zones", ParamType::kString, "2x4", "grid (rows x cols) for the LBP histograms"},
       {"hog", ParamType::kBool, "true", "histograms of oriented gradients"},
       {"hog_cells", ParamType::kString, "4x12",
        "HOG cells (rows x cols, 2 to 64 each) of 16 px: the ink is fitted into that canvas"}}};
}

void SignatureFeatures::configure(const bpkit::ParamValues& p) {
  o_.direction = p.get_bool("direction");
  o_.curvature = p.get_bool("curvature");
  o_.width = p.get_bool("width");
  o_.topology = p.get_bool("topology");
  o_.zoning = p.get_bool("zoning");
  o_.pressure = p.get_bool("pressure");
  o_.lbp = p.get_bool("lbp");
  o_.hog = p.get_bool("hog");
  o_.direction_zones = parse_grid("direction_zones", p.get_string("direction_zones"), 1);
  o_.zones = parse_grid("zones", p.get_string("zones"), 1);
  o_.lbp_zones = parse_grid("lbp_zones", p.get_string("lbp_zones"), 1);
  o_.hog_cells = parse_grid("hog_cells", p.get_string("hog_cells"), 2);
  if (length(o_) == 0) throw bpkit::ParamError("direction", "every feature group is off");
}

Value SignatureFeatures::process(const Value& in) const {
  Analysis a;
  a.ink = ink_of(in, "signature.features");
  a.mask = ink_strokes(a.ink);
  a.box = ink_bbox(a.ink, 0);
  {
    cv::Mat nz;
    cv::findNonZero(a.mask, nz);
    if (!nz.empty()) a.box = cv::boundingRect(nz);
  }
  a.height = std::max(1, a.box.height);
  a.step = std::max(2, int(std::lround(kStep * a.height)));
  a.coverage = ink_coverage(a.ink);
  if (o_.direction || o_.curvature || o_.width || o_.topology || o_.pressure) {
    a.skeleton = thin(a.mask);
    a.width = stroke_widths(a.coverage, a.skeleton, a.step);
    // Junctions closer than the median stroke width along the skeleton are one.
    std::vector<float> widths;
    for (int y = 0; y < a.width.rows; ++y)
      for (int x = 0; x < a.width.cols; ++x)
        if (a.skeleton.at<uint8_t>(y, x)) widths.push_back(a.width.at<float>(y, x));
    int merge = 1;
    if (!widths.empty()) {
      std::nth_element(widths.begin(), widths.begin() + widths.size() / 2, widths.end());
      merge = std::max(1, int(std::lround(widths[widths.size() / 2])));
    }
    prune_spurs(a.skeleton, merge);
    a.graph = trace_strokes(a.skeleton, merge);
    a.smooth = smooth_strokes(a.graph.strokes, a.step / 2);
  }
  Value v;
  v.kind = Kind::kFeatures;
  v.path = in.path;
  const int n = length(o_);
  v.tensor.resize({n});
  float* out = v.tensor.data();
  if (o_.direction) direction_features(a, o_.direction_zones, out);
  if (o_.curvature) curvature_features(a, out);
  if (o_.width) width_features(a, out);
  if (o_.topology) topology_features(a, out);
  if (o_.zoning) zoning_features(a, o_.zones, out);
  if (o_.pressure) pressure_features(a, out);
  if (o_.lbp) lbp_features(a, o_.lbp_zones, out);
  if (o_.hog) hog_features(a, o_.hog_cells, out);
  if (out != v.tensor.data() + n)
    throw std::logic_error("signature.features wrote " + std::to_string(out - v.tensor.data()) +
                           " values, declared " + std::to_string(n));
  return v;
}

// ---- signature.image ---------------------------------------------------------------------------

PluginInfo SignatureImage::info() {
  return {"signature.image",
          "1.0",
          "signature.clean's ink image as a tensor {1, height, width} for convolutional models: "
          "the ink's bounding box scaled to fit the canvas minus the margin, keeping its aspect, "
          "placed at the center by its box or its center of mass; paper 0, ink its darkness (or 1 "
          "with binary)",
          Kind::kImage,
          Kind::kFeatures,
          {{"height", ParamType::kInt, "64", "tensor height, pixels", 8, 1024},
           {"width", ParamType::kInt, "192", "tensor width, pixels", 8, 4096},
           {"margin", ParamType::kFloat, "0.05",
            "blank border on every side, as a fraction of height", 0, 0.45},
           {"center",
            {"box", "mass"},
            "box",
            "what is centered: the ink's bounding box or its center of mass (shifted only as "
            "needed to keep the ink inside)"},
           {"binary", ParamType::kBool, "false",
            "1 for ink (signature.clean's stroke threshold), 0 for paper, instead of darkness"}}};
}

void SignatureImage::configure(const bpkit::ParamValues& p) {
  height_ = int(p.get_int("height"));
  width_ = int(p.get_int("width"));
  margin_ = p.get_float("margin");
  center_of_mass_ = p.get_string("center") == "mass";
  binary_ = p.get_bool("binary");
  const int m = int(std::lround(margin_ * height_));
  if (width_ - 2 * m < 4) throw bpkit::ParamError("margin", "the margin leaves no room for ink");
}

Value SignatureImage::process(const Value& in) const {
  cv::Mat ink = ink_of(in, "signature.image");
  if (binary_) ink_strokes(ink).convertTo(ink, CV_32F);
  const int m = int(std::lround(margin_ * height_));
  cv::Mat canvas;
  cv::copyMakeBorder(place_ink(ink, height_ - 2 * m, width_ - 2 * m, center_of_mass_), canvas, m, m,
                     m, m, cv::BORDER_CONSTANT, 0);
  Value v;
  v.kind = Kind::kFeatures;
  v.path = in.path;
  v.tensor.resize({1, height_, width_});
  for (int y = 0; y < height_; ++y)
    std::copy(canvas.ptr<float>(y), canvas.ptr<float>(y) + width_,
              v.tensor.data() + int64_t(y) * width_);
  return v;
}

}  // namespace bpkit_strokes
