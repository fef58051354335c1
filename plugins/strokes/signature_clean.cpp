// signature.clean: a scanned signature into the ink image of ink_image.h (see signature_stages.h
// and docs/signature-features.md).
//
// The steps, on the scan's own resolution until the crop:
//   1. gray, and the stamp mask: strongly colored pixels of red to yellow hue;
//   2. illumination flattening (bpkit_image::flatten_illumination), stamp pixels set to paper;
//   3. binarization (Otsu, or Sauvola) with the blank-page and all-ink checks;
//   4. ruled lines: long straight runs, removed where no stroke crosses them;
//   5. specks: components smaller than a fraction of the squared stroke width;
//   6. the signature: the largest component and every component within a gap of it, transitively;
//   7. crop, darkness of the kept ink, scale to the ink height, optional rotation and slant
//      correction on the scaled image, margin.
#include <algorithm>
#include <cmath>
#include <cstdio>
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

// Stamps, margin lines and printed logos in red, orange or yellow: the hue between 335 and 60
// degrees (red the largest channel, G - B > -0.42 chroma) with a chroma (max - min channel) of at
// least 0.25. Black, blue and violet ink, and ink over such a stamp (dark, so of low chroma), stay.
constexpr float kStampChroma = 0.25f;
constexpr float kStampHue = 25.0f / 60.0f;  // how far into magenta (degrees / 60) still counts

// The gray image (paper light) and, with drop_colors and a color scan, the mask (CV_8UC1, 1) of the
// stamp-colored pixels. Transparent pixels are composited over white paper.
void gray_and_stamps(const bpkit::Image& im, bool drop_colors, cv::Mat& gray, cv::Mat& stamps) {
  if (im.channels < 3) {
    gray = bpkit_image::gray_of(im, 1.0f);
    return;
  }
  const cv::Mat m = bpkit_image::to_mat(im);
  const int ch = im.channels;
  gray.create(m.rows, m.cols, CV_32F);
  if (drop_colors) stamps = cv::Mat::zeros(m.rows, m.cols, CV_8U);
  for (int y = 0; y < m.rows; ++y) {
    const float* px = m.ptr<float>(y);
    float* g = gray.ptr<float>(y);
    uint8_t* s = drop_colors ? stamps.ptr<uint8_t>(y) : nullptr;
    for (int x = 0; x < m.cols; ++x, px += ch) {
      float b = px[0], gr = px[1], r = px[2];
      if (ch == 4) {
        const float a = std::clamp(px[3], 0.0f, 1.0f);
        b = b * a + (1 - a), gr = gr * a + (1 - a), r = r * a + (1 - a);
      }
      g[x] = 0.114f * b + 0.587f * gr + 0.299f * r;
      if (s) {
        const float chroma = std::max(r, std::max(gr, b)) - std::min(r, std::min(gr, b));
        s[x] = chroma >= kStampChroma && r >= gr && r >= b && gr - b >= -kStampHue * chroma;
      }
    }
  }
  if (drop_colors && cv::countNonZero(stamps) == 0) stamps.release();
}

std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// Ink (CV_8UC1, 1) where the flattened page is darker than Otsu's or Sauvola's threshold, with the
// checks that make a scan unusable.
cv::Mat binarize(const cv::Mat& flat, const SignatureClean::Options& o) {
  cv::Mat ink;
  if (!o.sauvola) {
    cv::Mat g8, unused;
    flat.convertTo(g8, CV_8U, 255);
    const double t = cv::threshold(g8, unused, 0, 1, cv::THRESH_BINARY | cv::THRESH_OTSU);
    ink = g8 <= t;
  } else {
    const int window = std::max(15, std::min(flat.rows, flat.cols) / 20) | 1;
    cv::Mat mean, sq, sd;
    const cv::Size w(window, window);
    cv::boxFilter(flat, mean, CV_32F, w, {-1, -1}, true, cv::BORDER_REPLICATE);
    cv::boxFilter(flat.mul(flat), sq, CV_32F, w, {-1, -1}, true, cv::BORDER_REPLICATE);
    cv::Mat var = sq - mean.mul(mean);
    cv::max(var, 0.0, var);
    cv::sqrt(var, sd);
    // Sauvola's dynamic range R = 0.5 on the [0, 1] scale.
    const cv::Mat t = mean.mul(1.0 + o.sauvola_k * (sd / 0.5 - 1.0));
    ink = flat <= t;
  }
  ink /= 255;
  const int n = cv::countNonZero(ink);
  const double fraction = double(n) / double(ink.total());
  const double ink_mean = n > 0 ? cv::mean(flat, ink)[0] : 1.0;
  const double paper_mean = n < int(ink.total()) ? cv::mean(flat, ink == 0)[0] : 0.0;
  const std::string blank = "no ink found: the scan is blank or has too little contrast";
  if (n == 0) throw std::runtime_error(blank);
  if (paper_mean - ink_mean < o.min_contrast)
    throw std::runtime_error(blank + " (the darkest class is " + fixed(paper_mean - ink_mean) +
                             " darker than the paper, min_contrast " + fixed(o.min_contrast) + ")");
  if (fraction > o.max_ink)
    throw std::runtime_error("ink covers " + std::to_string(int(std::lround(100 * fraction))) +
                             "% of the image (max_ink " +
                             std::to_string(int(std::lround(100 * o.max_ink))) +
                             "%): not a signature scan (expected dark strokes on light paper)");
  return ink;
}

// Removes from `ink` (CV_8UC1, 0/1) the horizontal ruled lines, straight to within 3 degrees of
// the horizontal and at least `length` pixels long. `bridge` (may be empty) holds the dropped stamp
// pixels, which may cover a line.
//   1. Pieces: runs of at least length / 10 pixels (gaps of 2 allowed) of ink or bridge in a band
//      of 3 rows, so that a slanted line makes long pieces too;
//   2. lines: sets of pieces on one straight line (a Hough vote over slopes up to tan 3 degrees,
//      in steps that drift one pixel over `length`, and offsets in 3-pixel bins) whose union
//      covers at least `length` columns. A signature's strokes rarely line up that far;
//   3. within the lines' pieces, a column's ink is removed unless a stroke crosses there (ink
//      continues above and below, outside the pieces, on a straight path through the column): a
//      stroke crossing the line keeps its pixels on the line.
void remove_horizontal_lines(cv::Mat& ink, const cv::Mat& bridge, int length) {
  struct Piece {
    int y, x0, x1;  // columns [x0, x1) of row y
  };
  const int min_piece = std::max(8, length / 10), max_gap = 2;
  cv::Mat band = bridge.empty() ? ink : (ink | bridge);
  cv::dilate(band, band, cv::getStructuringElement(cv::MORPH_RECT, {1, 3}));
  std::vector<Piece> pieces;
  for (int y = 0; y < ink.rows; ++y) {
    const uint8_t* b = band.ptr<uint8_t>(y);
    for (int x = 0; x < ink.cols;) {
      if (!b[x]) {
        ++x;
        continue;
      }
      int end = x + 1;  // past the run's last pixel
      for (int i = end; i < ink.cols && i - end < max_gap + 1; ++i)
        if (b[i]) end = i + 1;
      if (end - x >= min_piece) pieces.push_back({y, x, end});
      x = end;
    }
  }
  if (pieces.empty()) return;
  // Votes (slope, offset bin) -> piece, sorted so that each line's pieces are consecutive.
  const double max_slope = std::tan(3.0 * CV_PI / 180), slope_step = 1.0 / length;
  const int slopes = int(std::ceil(max_slope / slope_step));
  std::vector<std::pair<int64_t, int>> votes;
  votes.reserve(pieces.size() * size_t(2 * slopes + 1));
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Piece& p = pieces[i];
    const double xc = (p.x0 + p.x1) / 2.0;
    for (int k = -slopes; k <= slopes; ++k) {
      const int64_t offset = int64_t(std::floor((p.y - k * slope_step * xc) / 3));
      votes.push_back({(int64_t(k + slopes) << 32) + offset + (int64_t(1) << 31), int(i)});
    }
  }
  std::sort(votes.begin(), votes.end());
  // The columns that a set of pieces covers, each counted once.
  std::vector<std::pair<int, int>> spans;
  auto coverage = [&](size_t from, size_t to, const std::vector<uint8_t>& skip) {
    spans.clear();
    for (size_t i = from; i < to; ++i) {
      const int id = votes[i].second;
      if (!skip[size_t(id)]) spans.push_back({pieces[size_t(id)].x0, pieces[size_t(id)].x1});
    }
    std::sort(spans.begin(), spans.end());
    int covered = 0, reach = -1;
    for (const auto& [x0, x1] : spans) {
      covered += std::max(0, x1 - std::max(x0, reach));
      reach = std::max(reach, x1);
    }
    return covered;
  };
  // Candidate lines (a vote bin whose pieces are long enough together), best covered first; each
  // takes the pieces that no better line took, so that a line's pieces, which also vote for
  // nearby slopes, cannot lend their coverage to stroke pieces there.
  struct Bin {
    size_t from, to;
    int covered;
  };
  std::vector<Bin> bins;
  const std::vector<uint8_t> none(pieces.size(), 0);
  for (size_t a = 0; a < votes.size();) {
    size_t b = a;
    int64_t total = 0;
    for (; b < votes.size() && votes[b].first == votes[a].first; ++b)
      total += pieces[size_t(votes[b].second)].x1 - pieces[size_t(votes[b].second)].x0;
    if (total >= length) {
      const int covered = coverage(a, b, none);
      if (covered >= length) bins.push_back({a, b, covered});
    }
    a = b;
  }
  std::sort(bins.begin(), bins.end(), [](const Bin& a, const Bin& b) {
    return a.covered != b.covered ? a.covered > b.covered : a.from < b.from;
  });
  std::vector<uint8_t> on_line(pieces.size(), 0), taken(pieces.size(), 0);
  for (const Bin& bin : bins) {
    if (coverage(bin.from, bin.to, taken) < length) continue;
    for (size_t i = bin.from; i < bin.to; ++i) on_line[size_t(votes[i].second)] = 1;
    for (size_t i = bin.from; i < bin.to; ++i) taken[size_t(votes[i].second)] = 1;
  }
  cv::Mat line = cv::Mat::zeros(ink.size(), CV_8U);
  int y_first = ink.rows, y_last = -1;
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!on_line[i]) continue;
    const Piece& p = pieces[i];
    const uint8_t* k = ink.ptr<uint8_t>(p.y);
    uint8_t* l = line.ptr<uint8_t>(p.y);
    for (int x = p.x0; x < p.x1; ++x) l[x] = k[x];
    y_first = std::min(y_first, p.y);
    y_last = std::max(y_last, p.y);
  }
  if (y_last < 0) return;
  // Column runs of line pixels, scanned row by row: start[x] is where column x's current run began.
  std::vector<int> start(size_t(ink.cols), -1);
  auto stroke_at = [&](int y, int x) {  // ink off the line
    return y >= 0 && y < ink.rows && x >= 0 && x < ink.cols && ink.at<uint8_t>(y, x) &&
           !line.at<uint8_t>(y, x);
  };
  for (int y = y_first; y <= y_last + 1; ++y) {
    const uint8_t* l = y <= y_last ? line.ptr<uint8_t>(y) : nullptr;
    for (int x = 0; x < ink.cols; ++x) {
      const bool on = l && l[x];
      if (on && start[size_t(x)] < 0) start[size_t(x)] = y;
      if (on || start[size_t(x)] < 0) continue;
      const int y0 = start[size_t(x)];
      start[size_t(x)] = -1;
      // A stroke crosses here when ink continues on both sides along a straight path through
      // (x, run), above at x - d and below at x + d (up to 60 degrees from the vertical), and
      // right above or below the run at x: inside a small loop that the line runs through, the
      // walls make such paths too, but the pixels right above and below are the loop's inside.
      const int widest = int(std::ceil(1.7 * (y - y0 + 2) / 2));
      bool crossing = stroke_at(y0 - 1, x) || stroke_at(y, x);
      if (crossing) {
        crossing = false;
        for (int d = -widest; d <= widest && !crossing; ++d)
          crossing = stroke_at(y0 - 1, x - d) && stroke_at(y, x + d);
      }
      if (!crossing)
        for (int r = y0; r < y; ++r) ink.at<uint8_t>(r, x) = 0;
    }
  }
}

void remove_ruled_lines(cv::Mat& ink, const cv::Mat& bridge, double fraction) {
  remove_horizontal_lines(ink, bridge, std::max(8, int(std::lround(fraction * ink.cols))));
  cv::Mat t, tb;
  cv::transpose(ink, t);
  if (!bridge.empty()) cv::transpose(bridge, tb);
  remove_horizontal_lines(t, tb, std::max(8, int(std::lround(fraction * t.cols))));
  cv::transpose(t, ink);
}

// The typical stroke width of the ink: 2 x area / boundary pixels (a stroke of width w and length
// l has area w l and about 2 l boundary pixels).
double stroke_width(const cv::Mat& ink) {
  double area = 0, boundary = 0;
  for (int y = 0; y < ink.rows; ++y) {
    const uint8_t* k = ink.ptr<uint8_t>(y);
    const uint8_t* up = y > 0 ? ink.ptr<uint8_t>(y - 1) : nullptr;
    const uint8_t* down = y + 1 < ink.rows ? ink.ptr<uint8_t>(y + 1) : nullptr;
    for (int x = 0; x < ink.cols; ++x) {
      if (!k[x]) continue;
      ++area;
      boundary += x == 0 || x + 1 == ink.cols || !up || !down || !k[x - 1] || !k[x + 1] || !up[x] ||
                  !down[x];
    }
  }
  return boundary > 0 ? std::max(1.0, 2 * area / boundary) : 1.0;
}

// The gap between two boxes (0 when they overlap), the larger of the horizontal and vertical ones.
int box_gap(const cv::Rect& a, const cv::Rect& b) {
  const int dx = std::max({0, a.x - (b.x + b.width), b.x - (a.x + a.width)});
  const int dy = std::max({0, a.y - (b.y + b.height), b.y - (a.y + a.height)});
  return std::max(dx, dy);
}

// The labels of the signature's components: specks dropped, then the largest component (the
// longest box diagonal) and, one after the other, every component within `gap` x (the geometric
// mean of the largest one's box sides) of one already taken. Fills `box` with their bounding box
// and `main_size` with the largest one's.
std::vector<uint8_t> signature_components(const cv::Mat& stats, double min_area, double gap,
                                          cv::Rect& box, cv::Size& main_size) {
  const int n = stats.rows;
  std::vector<int> order;
  for (int c = 1; c < n; ++c)
    if (stats.at<int>(c, cv::CC_STAT_AREA) >= min_area) order.push_back(c);
  std::vector<uint8_t> keep(size_t(n), 0);
  if (order.empty()) return keep;
  // The main component is the one whose box has the longest diagonal, not the most ink: a
  // handwritten stroke runs on across letters, while a printed label nearby breaks into one
  // component per letter, which in bold type can hold more ink than a thin pen's signature.
  // A straight line left over from a form box or a rule (more than 25 times longer than thick)
  // is not taken as the main component (an underline flourish joins the signature by distance).
  auto extent = [&](int c) {
    const double w = stats.at<int>(c, cv::CC_STAT_WIDTH), h = stats.at<int>(c, cv::CC_STAT_HEIGHT);
    const bool line = std::max(w, h) > 25 * std::min(w, h);
    return (w * w + h * h) * (line ? 1e-6 : 1.0);
  };
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const double ea = extent(a), eb = extent(b);
    if (ea != eb) return ea > eb;
    const int sa = stats.at<int>(a, cv::CC_STAT_AREA), sb = stats.at<int>(b, cv::CC_STAT_AREA);
    return sa != sb ? sa > sb : a < b;
  });
  // Beyond a few thousand components (a page of print) the smallest ones decide nothing.
  if (order.size() > 4000) order.resize(4000);
  auto rect = [&](int c) {
    return cv::Rect(stats.at<int>(c, cv::CC_STAT_LEFT), stats.at<int>(c, cv::CC_STAT_TOP),
                    stats.at<int>(c, cv::CC_STAT_WIDTH), stats.at<int>(c, cv::CC_STAT_HEIGHT));
  };
  const cv::Rect main = rect(order[0]);
  main_size = main.size();
  const double reach = gap * std::sqrt(double(main.width) * main.height);
  std::vector<cv::Rect> boxes;
  for (int c : order) boxes.push_back(rect(c));
  std::vector<uint8_t> taken(order.size(), 0);
  std::vector<size_t> queue{0};
  taken[0] = 1;
  box = main;
  for (size_t q = 0; q < queue.size(); ++q) {
    const cv::Rect& a = boxes[queue[q]];
    for (size_t j = 0; j < order.size(); ++j)
      if (!taken[j] && box_gap(a, boxes[j]) <= reach) {
        taken[j] = 1;
        queue.push_back(j);
        box |= boxes[j];
      }
  }
  for (size_t j : queue) keep[size_t(order[j])] = 1;
  return keep;
}

// Shears the ink image by x' = x + slope (y - cy), in a canvas wide enough for all of it.
cv::Mat shear(const cv::Mat& ink, double slope) {
  const double cy = (ink.rows - 1) / 2.0, extra = std::abs(slope) * (ink.rows - 1);
  const cv::Mat map = (cv::Mat_<double>(2, 3) << 1, slope, -slope * cy + extra / 2, 0, 1, 0);
  cv::Mat out;
  cv::warpAffine(ink, out, map, cv::Size(ink.cols + int(std::ceil(extra)) + 1, ink.rows),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  return out;
}

}  // namespace

PluginInfo SignatureClean::info() {
  return {
      "signature.clean",
      "1.0",
      "a scanned signature (gray or color, any resolution) into one ink-positive channel: paper 0, "
      "ink its darkness relative to the local paper in (0, 1] (a proxy of pen pressure), cropped "
      "to the signature with a margin and scaled so the ink is `height` pixels high (at most "
      "max_aspect x height wide). Uneven lighting is flattened, red/orange/yellow stamps and "
      "lines are dropped by color, ruled lines are removed where no stroke crosses them, specks "
      "are dropped, and components farther than `gap` from the largest ink mass (a printed label "
      "set apart, a stray mark) are left out of the crop. Fails on a blank scan (no ink found) "
      "and on one mostly covered by ink",
      Kind::kImage,
      Kind::kImage,
      {{"height", ParamType::kInt, "128", "height of the ink in the output, pixels", 16, 2048},
       {"max_aspect", ParamType::kFloat, "4",
        "widest ink as a multiple of height: wider signatures are scaled to that width", 1, 20},
       {"margin", ParamType::kFloat, "0.05", "blank border around the ink, as a fraction of height",
        0, 1},
       {"binarize",
        {"otsu", "sauvola"},
        "otsu",
        "threshold on the flattened scan: Otsu's global one, or Sauvola's local one (window "
        "1/20 of the smaller side, at least 15 px)"},
       {"sauvola_k", ParamType::kFloat, "0.2", "sauvola: sensitivity to local contrast", 0.01, 1},
       {"min_contrast", ParamType::kFloat, "0.15",
        "least difference between the mean gray of ink and paper (flattened, 0-1) for a scan to "
        "hold ink; below it the scan is blank",
        0, 1},
       {"max_ink", ParamType::kFloat, "0.4",
        "largest fraction of the image the ink may cover; more is not a signature scan", 0.01, 1},
       {"drop_colors", ParamType::kBool, "true",
        "treat strongly colored red, orange and yellow pixels (hue 335-60 degrees, chroma >= "
        "0.25: stamps, margin lines) as paper; turn off for signatures in red ink"},
       {"ruled_lines", ParamType::kBool, "true",
        "remove straight horizontal and vertical lines (ruled lines, form boxes), keeping the "
        "strokes that cross them"},
       {"line_length", ParamType::kFloat, "0.3",
        "shortest ruled line, as a fraction of the image's width (horizontal) or height "
        "(vertical)",
        0.05, 1},
       {"speck", ParamType::kFloat, "0.5",
        "components smaller than speck x (stroke width)^2 pixels are specks and dropped", 0, 100},
       {"gap", ParamType::kFloat, "0.6",
        "components farther than gap x the largest component's size (geometric mean of its box "
        "sides) from the signature's other components are left out",
        0, 100},
       {"deslant", ParamType::kBool, "false",
        "shear the strokes upright (slant from the near-vertical pieces of the skeleton's "
        "strokes); the slant is also a feature of the writer, so off by default"},
       {"max_rotation", ParamType::kFloat, "0",
        "level the signature's baseline, searching rotations up to this many degrees (the "
        "sharpest horizontal projection profile); 0: off",
        0, 45}}};
}

void SignatureClean::configure(const bpkit::ParamValues& p) {
  o_.height = int(p.get_int("height"));
  o_.max_aspect = p.get_float("max_aspect");
  o_.margin = p.get_float("margin");
  o_.sauvola = p.get_string("binarize") == "sauvola";
  o_.sauvola_k = p.get_float("sauvola_k");
  o_.min_contrast = p.get_float("min_contrast");
  o_.max_ink = p.get_float("max_ink");
  o_.drop_colors = p.get_bool("drop_colors");
  o_.ruled_lines = p.get_bool("ruled_lines");
  o_.line_length = p.get_float("line_length");
  o_.speck = p.get_float("speck");
  o_.gap = p.get_float("gap");
  o_.deslant = p.get_bool("deslant");
  o_.max_rotation = p.get_float("max_rotation");
}

Value SignatureClean::process(const Value& in) const {
  cv::Mat gray, stamps;
  gray_and_stamps(in.image, o_.drop_colors, gray, stamps);
  cv::Mat flat = bpkit_image::flatten_illumination(gray, 0);
  if (!stamps.empty()) {
    // The stamp's anti-aliased rim is less colorful than its strokes: one pixel more.
    cv::dilate(stamps, stamps, cv::Mat());
    flat.setTo(1.0f, stamps);
  }
  cv::Mat ink = binarize(flat, o_);
  const cv::Mat binarized = ink.clone();
  if (o_.ruled_lines) remove_ruled_lines(ink, stamps, o_.line_length);

  cv::Mat labels, stats, centroids;
  cv::connectedComponentsWithStats(ink, labels, stats, centroids, 8, CV_32S);
  const double w = stroke_width(ink);
  cv::Rect box;
  cv::Size main_size;
  const std::vector<uint8_t> keep =
      signature_components(stats, o_.speck * w * w, o_.gap, box, main_size);
  // A signature's largest stroke spans at least 2% of the page's smaller side (and 10 pixels).
  if (box.empty() || std::max(main_size.width, main_size.height) <
                         std::max(10.0, 0.02 * std::min(ink.rows, ink.cols)))
    throw std::runtime_error(
        "no ink found: the scan is blank or has too little contrast (only specks and ruled "
        "lines)");

  // The signature's darkness in its box (one pixel more on each side); everything else is paper.
  // The paper pixels next to the strokes keep their darkness too: the anti-aliased edges that the
  // threshold cut off hold a share of the ink that does not depend on the resolution.
  box = (box + cv::Size(2, 2) - cv::Point(1, 1)) & cv::Rect(0, 0, ink.cols, ink.rows);
  cv::Mat kept(box.size(), CV_8U), near;
  for (int y = 0; y < box.height; ++y) {
    const int* l = labels.ptr<int>(box.y + y) + box.x;
    uint8_t* k = kept.ptr<uint8_t>(y);
    for (int x = 0; x < box.width; ++x) k[x] = keep[size_t(l[x])];
  }
  cv::dilate(kept, near, cv::Mat());
  cv::Mat crop = cv::Mat::zeros(box.size(), CV_32F);
  for (int y = 0; y < box.height; ++y) {
    const uint8_t* k = kept.ptr<uint8_t>(y);
    const uint8_t* n = near.ptr<uint8_t>(y);
    const uint8_t* b = binarized.ptr<uint8_t>(box.y + y) + box.x;
    const float* f = flat.ptr<float>(box.y + y) + box.x;
    float* c = crop.ptr<float>(y);
    for (int x = 0; x < box.width; ++x)
      if (k[x])
        c[x] = std::clamp(1.0f - f[x], 1.0f / 255, 1.0f);
      else if (n[x] && !b[x])  // not ink that was removed (a ruled line, a speck, a label)
        c[x] = std::clamp(1.0f - f[x], 0.0f, 1.0f);
  }
  const int max_width = std::max(1, int(std::lround(o_.max_aspect * o_.height)));
  cv::Mat norm = fit_ink(crop, o_.height, max_width);

  if (o_.max_rotation > 0) {
    const double angle = bpkit_image::estimate_skew(ink_strokes(norm) * 255, o_.max_rotation);
    if (std::abs(angle) >= 0.05)
      norm = fit_ink(bpkit_image::rotate_expand(norm, -angle, 0, cv::INTER_LINEAR), o_.height,
                     max_width);
  }
  if (o_.deslant) {
    const SkeletonGraph g = trace_strokes(thin(ink_strokes(norm)));
    const int step = std::max(2, int(std::lround(0.03 * norm.rows)));
    const double slant = std::clamp(stroke_slant(g.strokes, step), -1.0, 1.0);
    if (std::abs(slant) >= 0.02) norm = fit_ink(shear(norm, slant), o_.height, max_width);
  }
  const int m = int(std::lround(o_.margin * o_.height));
  cv::Mat out;
  cv::copyMakeBorder(norm, out, m, m, m, m, cv::BORDER_CONSTANT, 0);
  return bpkit_image::from_mat(out, in.path);
}

}  // namespace bpkit_strokes
