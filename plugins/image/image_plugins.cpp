// bpkit's general image stages (OpenCV): read any image file, convert to gray, resize, invert,
// normalize, shear a character upright (moments), pick one image of a list, and turn an image into
// a feature tensor.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>
#include <vector>

#include "bpkit/error.h"
#include "image_common.h"
#include "image_stages.h"

namespace bpkit_image {

using bpkit::Image;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

namespace {

// What a file's header says, read without decoding any pixel.
struct Header {
  std::string format;  // "png", "jpeg", ...; empty when the format is not one parsed here
  long long width = -1, height = -1;
  long long maxval = 0;  // PNM: the largest sample value (scales the pixels)
  // PNM: OpenCV returns raw samples (0..maxval) except for bitmaps and for ASCII files with a
  // maxval below 256, which it scales to 0..255 itself.
  bool raw_samples = false;
};

uint32_t be(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}
uint32_t le(const unsigned char* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

bool read_at(std::ifstream& f, std::streamoff at, unsigned char* buf, int n) {
  f.clear();
  f.seekg(at);
  f.read(reinterpret_cast<char*>(buf), n);
  return f.gcount() == n;
}

// PNM (P1-P6) and PAM (P7) headers: whitespace-separated numbers with # comments.
void pnm_header(std::ifstream& f, Header& h) {
  f.clear();
  f.seekg(0);
  char p = 0, kind = 0;
  f.get(p).get(kind);
  auto token = [&]() {
    std::string t;
    int c;
    while ((c = f.get()) != EOF) {
      if (c == '#') {
        while ((c = f.get()) != EOF && c != '\n') {
        }
        continue;
      }
      if (std::isspace(c)) {
        if (!t.empty()) break;
        continue;
      }
      t += char(c);
      if (t.size() > 32) break;
    }
    return t;
  };
  auto number = [&](const std::string& t) -> long long {
    if (t.empty() || t.size() > 18 || !std::all_of(t.begin(), t.end(), ::isdigit))
      throw std::runtime_error("damaged PNM header (expected a number, got '" + t + "')");
    return std::stoll(t);
  };
  h.format = "pnm";
  if (kind == '7') {  // PAM: KEY VALUE lines up to ENDHDR; binary samples
    h.raw_samples = true;
    for (int i = 0; i < 64; ++i) {
      const std::string key = token();
      if (key.empty() || key == "ENDHDR") break;
      if (key == "WIDTH") h.width = number(token());
      if (key == "HEIGHT") h.height = number(token());
      if (key == "MAXVAL") h.maxval = number(token());
    }
    return;
  }
  h.width = number(token());
  h.height = number(token());
  h.maxval = (kind == '1' || kind == '4') ? 1 : number(token());
  const bool ascii = kind == '2' || kind == '3';
  h.raw_samples = (kind == '5' || kind == '6') || (ascii && h.maxval >= 256);
}

void jpeg_header(std::ifstream& f, Header& h) {
  h.format = "jpeg";
  std::streamoff at = 2;
  unsigned char b[9];
  for (int segments = 0; segments < 10000; ++segments) {
    if (!read_at(f, at, b, 2)) return;
    if (b[0] != 0xFF) return;
    if (b[1] == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    const int m = b[1];
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
      at += 2;
      continue;
    }
    if (m == 0xDA || m == 0xD9) return;  // scan data before any frame header
    if (!read_at(f, at + 2, b, 7)) return;
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof) {
      h.height = be(b + 3, 2);
      h.width = be(b + 5, 2);
      return;
    }
    at += 2 + be(b, 2);
  }
}

void tiff_header(std::ifstream& f, Header& h, bool little) {
  h.format = "tiff";
  auto u = [&](const unsigned char* p, int n) { return little ? le(p, n) : be(p, n); };
  unsigned char b[12];
  if (!read_at(f, 4, b, 4)) return;
  const std::streamoff ifd = u(b, 4);
  if (!read_at(f, ifd, b, 2)) return;
  const int n = int(u(b, 2));
  for (int i = 0; i < n && i < 4096; ++i) {
    if (!read_at(f, ifd + 2 + 12 * i, b, 12)) return;
    const uint32_t tag = u(b, 2), type = u(b + 2, 2);
    const uint32_t value = type == 3 ? u(b + 8, 2) : u(b + 8, 4);
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
  }
}

void webp_header(std::ifstream& f, Header& h) {
  h.format = "webp";
  unsigned char b[30];
  if (!read_at(f, 0, b, 30)) return;
  if (std::equal(b + 12, b + 16, "VP8X")) {
    h.width = le(b + 24, 3) + 1;
    h.height = le(b + 27, 3) + 1;
  } else if (std::equal(b + 12, b + 16, "VP8L")) {
    const uint32_t bits = le(b + 21, 4);
    h.width = (bits & 0x3FFF) + 1;
    h.height = ((bits >> 14) & 0x3FFF) + 1;
  } else if (std::equal(b + 12, b + 16, "VP8 ")) {
    h.width = le(b + 26, 2) & 0x3FFF;
    h.height = le(b + 28, 2) & 0x3FFF;
  }
}

// Sun raster, PFM, Radiance HDR, JPEG 2000 and OpenEXR: OpenCV decodes these too, and allocates
// the whole image its header declares (up to 2^30 pixels, gigabytes) before it reads a pixel, so
// a file of a few bytes must not get that far (found by fuzz/fuzz_image_read.cpp).

// The first `n` bytes of the file (fewer when it is shorter).
std::string head(std::ifstream& f, size_t n) {
  f.clear();
  f.seekg(0);
  std::string b(n, '\0');
  f.read(&b[0], std::streamsize(n));
  b.resize(size_t(f.gcount()));
  return b;
}

// PFM: "PF" or "Pf", then width, height and scale as text.
void pfm_header(std::ifstream& f, Header& h) {
  h.format = "pfm";
  std::istringstream in(head(f, 256).substr(2));
  long long w = -1, ht = -1;
  if (in >> w >> ht && w >= 0 && ht >= 0) h.width = w, h.height = ht;
}

// Radiance HDR: text lines up to an empty one, then the resolution, e.g. "-Y 480 +X 640".
void hdr_header(std::ifstream& f, Header& h) {
  h.format = "hdr";
  const std::string b = head(f, 8192);
  const size_t end = b.find("\n\n");
  if (end == std::string::npos) return;
  std::istringstream in(b.substr(end + 2, 64));
  std::string a1, a2;
  long long n1 = -1, n2 = -1;
  if (!(in >> a1 >> n1 >> a2 >> n2) || a1.size() != 2 || a2.size() != 2 || n1 < 0 || n2 < 0) return;
  const bool rows_first = a1[1] == 'Y';
  h.width = rows_first ? n2 : n1;
  h.height = rows_first ? n1 : n2;
}

// JPEG 2000: a codestream's SIZ marker (image and offset sizes), or a JP2 file's "ihdr" box.
void jpeg2000_header(std::ifstream& f, Header& h, bool codestream) {
  h.format = "jpeg2000";
  const std::string b = head(f, 65536);
  const auto* u = reinterpret_cast<const unsigned char*>(b.data());
  if (codestream) {
    if (b.size() < 24) return;
    const long long w = (long long)be(u + 8, 4) - be(u + 16, 4),
                    ht = (long long)be(u + 12, 4) - be(u + 20, 4);
    if (w >= 0 && ht >= 0) h.width = w, h.height = ht;
    return;
  }
  const size_t at = b.find("ihdr");
  if (at == std::string::npos || at + 12 > b.size()) return;
  h.height = be(u + at + 4, 4);
  h.width = be(u + at + 8, 4);
}

// OpenEXR: the "dataWindow" attribute (box2i: xmin, ymin, xmax, ymax).
void exr_header(std::ifstream& f, Header& h) {
  h.format = "exr";
  const std::string b = head(f, 65536);
  const std::string key("dataWindow\0box2i\0", 17);
  const size_t at = b.find(key);
  if (at == std::string::npos || at + key.size() + 20 > b.size()) return;
  const auto* u = reinterpret_cast<const unsigned char*>(b.data()) + at + key.size() + 4;
  const long long x0 = int32_t(le(u, 4)), y0 = int32_t(le(u + 4, 4)), x1 = int32_t(le(u + 8, 4)),
                  y1 = int32_t(le(u + 12, 4));
  if (x1 >= x0 && y1 >= y0) h.width = x1 - x0 + 1, h.height = y1 - y0 + 1;
}

// The dimensions of PNG, JPEG, TIFF, BMP, PNM/PAM, WebP, Sun raster, PFM, HDR, JPEG 2000 and
// OpenEXR files from their headers.
Header read_header(std::ifstream& f) {
  Header h;
  unsigned char b[32] = {0};
  f.read(reinterpret_cast<char*>(b), sizeof b);
  const std::streamsize got = f.gcount();
  if (got >= 24 && be(b, 4) == 0x89504E47u && std::equal(b + 12, b + 16, "IHDR")) {
    h.format = "png";
    h.width = be(b + 16, 4);
    h.height = be(b + 20, 4);
  } else if (got >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    jpeg_header(f, h);
  } else if (got >= 26 && b[0] == 'B' && b[1] == 'M') {
    h.format = "bmp";
    if (le(b + 14, 4) == 12) {  // OS/2 core header: 16-bit sizes
      h.width = le(b + 18, 2);
      h.height = le(b + 20, 2);
    } else {
      h.width = std::llabs(int32_t(le(b + 18, 4)));
      h.height = std::llabs(int32_t(le(b + 22, 4)));
    }
  } else if (got >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && std::isspace(b[2])) {
    pnm_header(f, h);
  } else if (got >= 8 && ((b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0) ||
                          (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42))) {
    tiff_header(f, h, b[0] == 'I');
  } else if (got >= 16 && std::equal(b, b + 4, "RIFF") && std::equal(b + 8, b + 12, "WEBP")) {
    webp_header(f, h);
  } else if (got >= 4 && be(b, 4) == 0x59A66A95u) {
    h.format = "sun raster";
    if (got >= 12) h.width = be(b + 4, 4), h.height = be(b + 8, 4);
  } else if (got >= 3 && b[0] == 'P' && (b[1] == 'F' || b[1] == 'f') && std::isspace(b[2])) {
    pfm_header(f, h);
  } else if (got >= 2 && b[0] == '#' && b[1] == '?') {
    hdr_header(f, h);
  } else if (got >= 4 && be(b, 4) == 0xFF4FFF51u) {
    jpeg2000_header(f, h, true);
  } else if (got >= 12 && be(b, 4) == 12 && std::equal(b + 4, b + 8, "jP  ")) {
    jpeg2000_header(f, h, false);
  } else if (got >= 4 && le(b, 4) == 20000630u) {
    exr_header(f, h);
  }
  return h;
}

// A JPEG cut short still decodes (libjpeg fills the missing rows with gray and only warns): its
// end-of-image marker must be there.
bool jpeg_complete(std::ifstream& f) {
  f.clear();
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  const std::streamoff tail = std::min<std::streamoff>(size, 4096);
  std::string buf(size_t(tail), '\0');
  f.seekg(size - tail);
  f.read(&buf[0], tail);
  return buf.find("\xFF\xD9") != std::string::npos;
}

}  // namespace

PluginInfo Read::info() {
  return {"image.read",
          "1.1",
          "decodes an image file (PNG, JPEG, TIFF, BMP, PNM/PAM, WebP, Sun raster, PFM, HDR, "
          "JPEG 2000, OpenEXR, and whatever else OpenCV reads; 8/16-bit, gray/color/alpha) to "
          "pixels in [0, 1]: 1 (gray), 3 (BGR) or 4 (BGRA) channels. The dimensions in the header "
          "of the formats named are checked against max_pixels before anything is decoded; other "
          "formats are checked by OpenCV's own limit (2^30 pixels) before decoding and against "
          "max_pixels after",
          Kind::kFile,
          Kind::kImage,
          {{"max_pixels", ParamType::kInt, "100000000",
            "refuse images with more pixels than this (memory bound)", 1, 1e12}}};
}

void Read::configure(const bpkit::ParamValues& p) {
  max_pixels_ = p.get_int("max_pixels");
}

Value Read::process(const Value& in) const {
  std::ifstream file(in.path, std::ios::binary);
  if (!file)
    throw std::runtime_error("cannot open the file (" + bpkit::open_failure(in.path, errno) + ")");
  const Header h = read_header(file);
  if (!h.format.empty()) {
    if (h.width < 0 || h.height < 0)
      throw std::runtime_error("damaged or truncated " + h.format + " header (no dimensions)");
    if (h.width == 0 || h.height == 0)
      throw std::runtime_error("the " + h.format + " header says the image is " +
                               std::to_string(h.width) + "x" + std::to_string(h.height) +
                               " pixels: nothing to decode");
    if (double(h.width) * double(h.height) > double(max_pixels_))
      throw std::runtime_error("the " + h.format + " header says " + std::to_string(h.width) + "x" +
                               std::to_string(h.height) + " pixels, more than max_pixels (" +
                               std::to_string(max_pixels_) + "); not decoded");
    if (h.format == "jpeg" && !jpeg_complete(file))
      throw std::runtime_error("truncated JPEG (no end-of-image marker)");
  } else if (!cv::haveImageReader(in.path)) {
    throw std::runtime_error("not an image OpenCV can decode (unknown or damaged header)");
  }
  cv::Mat m;
  try {
    m = cv::imread(in.path, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    throw std::runtime_error(std::string("cannot decode the image: ") + e.what());
  }
  if (m.empty())
    throw std::runtime_error("cannot decode the image (truncated, damaged, or larger than " +
                             std::string("OpenCV's limit)"));
  if (double(m.total()) > double(max_pixels_))
    throw std::runtime_error("the image has " + std::to_string(m.cols) + "x" +
                             std::to_string(m.rows) + " pixels, more than max_pixels");
  double scale = 1;
  switch (m.depth()) {
    case CV_8U:
      scale = 1.0 / 255;
      break;
    case CV_16U:
      scale = 1.0 / 65535;
      break;
    case CV_32F:
      scale = 1;
      break;
    default:
      throw std::runtime_error("unsupported pixel depth");
  }
  // Raw PNM samples run from 0 to the header's maxval, whatever the depth OpenCV chose.
  if (h.format == "pnm" && h.raw_samples && h.maxval > 0 && m.depth() != CV_32F)
    scale = 1.0 / double(h.maxval);
  cv::Mat f;
  m.convertTo(f, CV_32F, scale);
  return from_mat(f, in.path);
}

PluginInfo Gray::info() {
  return {"image.gray",
          "1.0",
          "converts to one gray channel; transparent pixels are composited over `background`",
          Kind::kImage,
          Kind::kImage,
          {{"background", ParamType::kFloat, "1", "gray level behind transparent pixels", 0, 1}}};
}
void Gray::configure(const bpkit::ParamValues& p) {
  bg_ = float(p.get_float("background"));
}
Value Gray::process(const Value& in) const {
  if (in.image.channels == 1) {
    to_mat(in.image);  // checks consistency
    return in;
  }
  return from_mat(gray_of(in.image, bg_), in.path);
}

PluginInfo Resize::info() {
  return {"image.resize",
          "1.0",
          "scales to width x height; with keep_aspect, scales to fit and pads with `pad`",
          Kind::kImage,
          Kind::kImage,
          {{"width", ParamType::kInt, "28", "output width in pixels", 1, 16384},
           {"height", ParamType::kInt, "28", "output height in pixels", 1, 16384},
           {"keep_aspect", ParamType::kBool, "false", "keep the aspect ratio (pad)"},
           {"pad", ParamType::kFloat, "0", "padding value with keep_aspect", 0, 1},
           {"interpolation", {"area", "linear", "cubic", "nearest"}, "area", "resampling filter"}}};
}
void Resize::configure(const bpkit::ParamValues& p) {
  w_ = int(p.get_int("width"));
  h_ = int(p.get_int("height"));
  keep_ = p.get_bool("keep_aspect");
  pad_ = float(p.get_float("pad"));
  const std::string in = p.get_string("interpolation");
  interp_ = in == "linear"    ? cv::INTER_LINEAR
            : in == "cubic"   ? cv::INTER_CUBIC
            : in == "nearest" ? cv::INTER_NEAREST
                              : cv::INTER_AREA;
}
Value Resize::process(const Value& in) const {
  cv::Mat m = to_mat(in.image), out;
  if (!keep_) {
    cv::resize(m, out, cv::Size(w_, h_), 0, 0, interp_);
    return from_mat(out, in.path);
  }
  const double s = std::min(double(w_) / m.cols, double(h_) / m.rows);
  const int nw = std::max(1, int(std::lround(m.cols * s))),
            nh = std::max(1, int(std::lround(m.rows * s)));
  cv::Mat scaled;
  cv::resize(m, scaled, cv::Size(nw, nh), 0, 0, interp_);
  out = cv::Mat(h_, w_, m.type(), cv::Scalar::all(pad_));
  scaled.copyTo(out(cv::Rect((w_ - nw) / 2, (h_ - nh) / 2, nw, nh)));
  return from_mat(out, in.path);
}

PluginInfo Invert::info() {
  return {"image.invert",
          "1.0",
          "replaces each value v by 1 - v (dark text on light → light on dark)",
          Kind::kImage,
          Kind::kImage,
          {}};
}
Value Invert::process(const Value& in) const {
  Value v = in;
  for (float& p : v.image.pixels) p = 1.0f - p;
  return v;
}

PluginInfo Normalize::info() {
  return {"image.normalize",
          "1.0",
          "contrast normalization: minmax stretches to [0, 1]; meanstd gives zero mean, unit "
          "deviation",
          Kind::kImage,
          Kind::kImage,
          {{"mode", {"minmax", "meanstd"}, "minmax", "normalization"}}};
}
void Normalize::configure(const bpkit::ParamValues& p) {
  meanstd_ = p.get_string("mode") == "meanstd";
}
Value Normalize::process(const Value& in) const {
  Value v = in;
  auto& px = v.image.pixels;
  if (px.empty()) return v;
  if (meanstd_) {
    double s = 0, s2 = 0;
    for (float p : px) s += p, s2 += double(p) * p;
    const double mean = s / double(px.size());
    const double sd = std::sqrt(std::max(0.0, s2 / double(px.size()) - mean * mean));
    for (float& p : px) p = float((p - mean) / (sd > 1e-8 ? sd : 1.0));
  } else {
    const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
    const float a = *lo, r = *hi - *lo;
    for (float& p : px) p = r > 1e-8f ? (p - a) / r : 0.0f;
  }
  return v;
}

PluginInfo DeskewMoments::info() {
  return {"image.deskew_moments",
          "1.0",
          "shears a character upright, like OpenCV's digits.py before HOG: the slant of the ink, "
          "slope = mu11 / mu02 of its second central moments (x on y), is removed by x' = x - "
          "slope (y - cy) about the ink's centroid row cy, keeping the size and the centroid. Ink "
          "is the light part of the channel mean (ink: light) or the dark part (ink: dark); the "
          "uncovered border takes the background (0 or 1). Blank images, slopes below min_slope "
          "and ink in a single row are left unchanged; slopes are clamped to +-max_slope",
          Kind::kImage,
          Kind::kImage,
          {{"ink", {"light", "dark"}, "light", "the ink's polarity (light: white on black)"},
           {"max_slope", ParamType::kFloat, "1",
            "largest shear applied, in pixels of x per pixel of y (1 = 45 degrees)", 0, 10},
           {"min_slope", ParamType::kFloat, "0.01", "smaller slants are left alone", 0, 10},
           {"interpolation", {"linear", "cubic", "nearest"}, "linear", "resampling filter"}}};
}
void DeskewMoments::configure(const bpkit::ParamValues& p) {
  dark_ink_ = p.get_string("ink") == "dark";
  max_slope_ = p.get_float("max_slope");
  min_slope_ = p.get_float("min_slope");
  const std::string in = p.get_string("interpolation");
  interp_ = in == "cubic"     ? cv::INTER_CUBIC
            : in == "nearest" ? cv::INTER_NEAREST
                              : cv::INTER_LINEAR;
}
Value DeskewMoments::process(const Value& in) const {
  const cv::Mat m = to_mat(in.image);
  // The ink's weight per pixel: the channel mean, or 1 minus it for dark ink. Moments in double:
  // a large image's sums of squares lose digits in float.
  double m00 = 0, m10 = 0, m01 = 0;
  const int ch = in.image.channels;
  cv::Mat ink(m.rows, m.cols, CV_64FC1);
  for (int y = 0; y < m.rows; ++y) {
    const float* row = m.ptr<float>(y);
    double* w = ink.ptr<double>(y);
    for (int x = 0; x < m.cols; ++x) {
      double v = 0;
      for (int c = 0; c < ch; ++c) v += row[x * ch + c];
      v /= ch;
      w[x] = std::max(0.0, dark_ink_ ? 1.0 - v : v);
      m00 += w[x], m10 += w[x] * x, m01 += w[x] * y;
    }
  }
  if (m00 <= 1e-9) return in;  // blank
  const double cx = m10 / m00, cy = m01 / m00;
  double mu11 = 0, mu02 = 0;
  for (int y = 0; y < m.rows; ++y) {
    const double* w = ink.ptr<double>(y);
    for (int x = 0; x < m.cols; ++x) {
      mu11 += w[x] * (x - cx) * (y - cy);
      mu02 += w[x] * (y - cy) * (y - cy);
    }
  }
  // Ink spread over less than about a hundredth of a row (a horizontal line): no slant to measure.
  if (mu02 <= 1e-4 * m00) return in;
  const double slope = std::clamp(mu11 / mu02, -max_slope_, max_slope_);
  if (std::abs(slope) < min_slope_) return in;
  // Inverse map: output (x, y) samples the input at (x + slope (y - cy), y).
  const cv::Mat map = (cv::Mat_<double>(2, 3) << 1, slope, -slope * cy, 0, 1, 0);
  // Channel by channel: warpAffine takes at most 4 channels at once.
  std::vector<cv::Mat> planes;
  cv::split(m, planes);
  for (cv::Mat& p : planes) {
    cv::Mat sheared;
    cv::warpAffine(p, sheared, map, m.size(), interp_ | cv::WARP_INVERSE_MAP, cv::BORDER_CONSTANT,
                   cv::Scalar::all(dark_ink_ ? 1.0 : 0.0));
    p = sheared;
  }
  cv::Mat out;
  cv::merge(planes, out);
  return from_mat(out, in.path);
}

PluginInfo ToFeatures::info() {
  return {"image.features",
          "1.0",
          "the image as a feature tensor {channels, height, width} (planar), for convolution "
          "layers; dense layers read it flattened",
          Kind::kImage,
          Kind::kFeatures,
          {}};
}
Value ToFeatures::process(const Value& in) const {
  const Image& im = in.image;
  to_mat(im);  // checks consistency
  Value v;
  v.kind = Kind::kFeatures;
  v.path = in.path;
  v.tensor.resize({im.channels, im.height, im.width});
  const int64_t plane = int64_t(im.height) * im.width;
  for (int64_t p = 0; p < plane; ++p)
    for (int c = 0; c < im.channels; ++c)
      v.tensor[c * plane + p] = im.pixels[size_t(p * im.channels + c)];
  return v;
}

PluginInfo Pick::info() {
  return {"image.pick",
          "1.0",
          "one image of an image list (e.g. the largest face of face.detect): the largest by area "
          "or the first; an empty list is an error for this sample",
          Kind::kImageList,
          Kind::kImage,
          {{"which", {"largest", "first"}, "largest", "which image to keep"}}};
}
void Pick::configure(const bpkit::ParamValues& p) {
  largest_ = p.get_string("which") == "largest";
}
Value Pick::process(const Value& in) const {
  if (in.images.empty()) throw std::runtime_error("the image list is empty (nothing found)");
  size_t best = 0;
  if (largest_)
    for (size_t i = 1; i < in.images.size(); ++i)
      if (size_t(in.images[i].width) * size_t(in.images[i].height) >
          size_t(in.images[best].width) * size_t(in.images[best].height))
        best = i;
  Value v;
  v.kind = Kind::kImage;
  v.path = in.path;
  v.image = in.images[best];
  to_mat(v.image);
  return v;
}

}  // namespace bpkit_image
