// The general image stages of the built-in plugin library: read, gray, resize, invert, normalize,
// features, pick (implemented in image_plugins.cpp).
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
