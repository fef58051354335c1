// bpkit's built-in image stages (OpenCV): read any image file, convert to gray, resize, invert,
// normalize, and turn an image into a feature tensor.
#include <bpkit/plugin.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace bpkit_image {

using bpkit::Image;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

cv::Mat to_mat(const Image& im) {
  if (im.width <= 0 || im.height <= 0 || im.channels <= 0 ||
      im.pixels.size() != size_t(im.width) * size_t(im.height) * size_t(im.channels))
    throw std::runtime_error("the image is empty or inconsistent (" + std::to_string(im.width) +
                             "x" + std::to_string(im.height) + "x" + std::to_string(im.channels) +
                             ")");
  return cv::Mat(im.height, im.width, CV_32FC(im.channels), const_cast<float*>(im.pixels.data()));
}

Value from_mat(const cv::Mat& m, const std::string& path) {
  cv::Mat f;
  if (m.depth() == CV_32F)
    f = m.isContinuous() ? m : m.clone();
  else
    m.convertTo(f, CV_32F);
  Value v;
  v.kind = Kind::kImage;
  v.path = path;
  v.image.width = f.cols;
  v.image.height = f.rows;
  v.image.channels = f.channels();
  v.image.pixels.assign(f.ptr<float>(), f.ptr<float>() + f.total() * size_t(f.channels()));
  return v;
}

class Read : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"image.read",
            "1.0",
            "decodes an image file (PNG, JPEG, TIFF, BMP, PNM, ...; 8/16-bit, gray/color/alpha) to "
            "pixels in [0, 1]",
            Kind::kFile,
            Kind::kImage,
            {{"max_pixels", ParamType::kInt, "100000000",
              "refuse images with more pixels than this (memory bound)", 1, 1e12}}};
  }
  void configure(const bpkit::ParamValues& p) override { max_pixels_ = p.get_int("max_pixels"); }
  Value process(const Value& in) const override {
    std::ifstream probe(in.path, std::ios::binary);
    if (!probe) throw std::runtime_error("cannot open the file");
    if (!cv::haveImageReader(in.path))
      throw std::runtime_error("not an image OpenCV can decode (unknown or damaged header)");
    cv::Mat m;
    try {
      m = cv::imread(in.path, cv::IMREAD_UNCHANGED);
    } catch (const cv::Exception& e) {
      throw std::runtime_error(std::string("cannot decode the image: ") + e.what());
    }
    if (m.empty()) throw std::runtime_error("cannot decode the image (truncated or damaged?)");
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
    cv::Mat f;
    m.convertTo(f, CV_32F, scale);
    return from_mat(f, in.path);
  }

 private:
  long long max_pixels_ = 100000000;
};

class Gray : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"image.gray",
            "1.0",
            "converts to one gray channel; transparent pixels are composited over `background`",
            Kind::kImage,
            Kind::kImage,
            {{"background", ParamType::kFloat, "1", "gray level behind transparent pixels", 0, 1}}};
  }
  void configure(const bpkit::ParamValues& p) override { bg_ = float(p.get_float("background")); }
  Value process(const Value& in) const override {
    const Image& im = in.image;
    cv::Mat m = to_mat(im), g;
    if (im.channels == 1) return in;
    if (im.channels == 3) {
      cv::cvtColor(m, g, cv::COLOR_BGR2GRAY);
    } else if (im.channels == 4) {
      cv::cvtColor(m, g, cv::COLOR_BGRA2GRAY);
      std::vector<cv::Mat> ch;
      cv::split(m, ch);
      g = g.mul(ch[3]) + (1.0f - ch[3]) * bg_;
    } else if (im.channels == 2) {  // gray + alpha
      std::vector<cv::Mat> ch;
      cv::split(m, ch);
      g = ch[0].mul(ch[1]) + (1.0f - ch[1]) * bg_;
    } else {
      throw std::runtime_error("cannot convert " + std::to_string(im.channels) +
                               " channels to gray");
    }
    return from_mat(g, in.path);
  }

 private:
  float bg_ = 1;
};

class Resize : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    PluginInfo i{
        "image.resize",
        "1.0",
        "scales to width x height; with keep_aspect, scales to fit and pads with `pad`",
        Kind::kImage,
        Kind::kImage,
        {{"width", ParamType::kInt, "28", "output width in pixels", 1, 16384},
         {"height", ParamType::kInt, "28", "output height in pixels", 1, 16384},
         {"keep_aspect", ParamType::kBool, "false", "keep the aspect ratio (pad)"},
         {"pad", ParamType::kFloat, "0", "padding value with keep_aspect", 0, 1},
         {"interpolation", {"area", "linear", "cubic", "nearest"}, "area", "resampling filter"}}};
    return i;
  }
  void configure(const bpkit::ParamValues& p) override {
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
  Value process(const Value& in) const override {
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

 private:
  int w_ = 28, h_ = 28, interp_ = cv::INTER_AREA;
  bool keep_ = false;
  float pad_ = 0;
};

class Invert : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"image.invert",
            "1.0",
            "replaces each value v by 1 - v (dark text on light → light on dark)",
            Kind::kImage,
            Kind::kImage,
            {}};
  }
  Value process(const Value& in) const override {
    Value v = in;
    for (float& p : v.image.pixels) p = 1.0f - p;
    return v;
  }
};

class Normalize : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    PluginInfo i{
        "image.normalize",
        "1.0",
        "contrast normalization: minmax stretches to [0, 1]; meanstd gives zero mean, unit "
        "deviation",
        Kind::kImage,
        Kind::kImage,
        {{"mode", {"minmax", "meanstd"}, "minmax", "normalization"}}};
    return i;
  }
  void configure(const bpkit::ParamValues& p) override {
    meanstd_ = p.get_string("mode") == "meanstd";
  }
  Value process(const Value& in) const override {
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

 private:
  bool meanstd_ = false;
};

class ToFeatures : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"image.features",
            "1.0",
            "the image as a feature tensor {channels, height, width} (planar), for convolution "
            "layers; dense layers read it flattened",
            Kind::kImage,
            Kind::kFeatures,
            {}};
  }
  Value process(const Value& in) const override {
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
};

}  // namespace bpkit_image

BPKIT_PLUGIN_LIBRARY(bpkit_image::Read, bpkit_image::Gray, bpkit_image::Resize, bpkit_image::Invert,
                     bpkit_image::Normalize, bpkit_image::ToFeatures)
