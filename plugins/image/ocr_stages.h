// The document stages of the built-in image plugin library (implemented in ocr_stages.cpp):
// binarize, deskew, denoise, contrast, lines, line_height, chars. They expect dark text on a light
// background; color input is converted to gray where a stage needs one channel.
#pragma once

#include <bpkit/plugin.h>

namespace bpkit_image {

// image.binarize: image -> one-channel image of 0 (ink) and 1 (paper), or inverted.
class Binarize : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  enum class Method { kOtsu, kSauvola, kFixed } method_ = Method::kOtsu;
  double threshold_ = 0.5, k_ = 0.2, range_ = 0.5;
  int window_ = 31;
  bool invert_ = false;
};

// image.deskew: image -> the same image rotated so that its text lines are level.
class Deskew : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  double max_angle_ = 20, min_angle_ = 0.05;
  bool expand_ = true;
};

// image.denoise: image -> image (median, non-local means, or a morphological opening of the ink).
class Denoise : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  enum class Method { kMedian, kNlMeans, kOpening } method_ = Method::kMedian;
  int size_ = 3;
  double strength_ = 10;
  double noisy_ = 0;  // > 0: filter only images whose estimated noise exceeds this
};

// image.contrast: image -> image (CLAHE, percentile stretch, or illumination flattening).
class Contrast : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  enum class Method { kClahe, kStretch, kFlatten } method_ = Method::kFlatten;
  double clip_ = 2, low_ = 1, high_ = 99;
  int tile_ = 8, kernel_ = 0;
};

// image.lines: page -> image_list of its text lines, top to bottom, with their boxes.
class Lines : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  double max_angle_ = 20, margin_ = 0.15, valley_ = 0.5;
  int min_height_ = 6, kernel_ = 0;
  enum class Output { kGray, kFlat, kBinary } output_ = Output::kGray;
};

// image.line_height: image -> image of a fixed height, aspect kept, padded.
class LineHeight : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int height_ = 32, max_width_ = 1024;
  bool pad_width_ = false, trim_ = false;
  float pad_ = 1;
};

// image.chars: image (a line or one character) -> image_list of its characters, left to right.
class Chars : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  bool projection_ = false;
  int min_area_ = 4, margin_ = 2;
  double merge_overlap_ = 0.5;
};

}  // namespace bpkit_image
