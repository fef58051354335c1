// The general image stages of the built-in plugin library: read, gray, resize, invert, normalize,
// deskew_moments, features, pick (implemented in image_plugins.cpp).
#pragma once

#include <bpkit/plugin.h>

#include <string>

namespace bpkit_image {

// image.read: file -> image. Checks the header's dimensions against max_pixels before decoding.
class Read : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  long long max_pixels_ = 100000000;
};

class Gray : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  float bg_ = 1;
};

class Resize : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int w_ = 28, h_ = 28, interp_ = 0;
  bool keep_ = false;
  float pad_ = 0;
};

class Invert : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  bpkit::Value process(const bpkit::Value& in) const override;
};

class Normalize : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  bool meanstd_ = false;
};

// image.deskew_moments: image -> image, same size. Shears a character upright: the slope of x on y
// of the ink (second central moments, mu11 / mu02) is removed by x' = x - slope (y - cy) about the
// ink's centroid row cy, so the centroid stays where it was (OpenCV's digits.py does the same
// about the image's middle row). Ink is the light part (ink: light) or the dark part (ink: dark) of
// the channel mean; a blank image, or one whose ink lies in a single row, is returned unchanged.
// Every channel is sheared alike; pixels from outside the image take the background (0 for light
// ink, 1 for dark).
class DeskewMoments : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  bool dark_ink_ = false;
  double max_slope_ = 1, min_slope_ = 0.01;
  int interp_ = 1;  // cv::INTER_LINEAR
};

class ToFeatures : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  bpkit::Value process(const bpkit::Value& in) const override;
};

// image.pick: image_list -> image (the first, or the largest, image of a list).
class Pick : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  bool largest_ = true;
};

}  // namespace bpkit_image
