// example.levels: a "levels" adjustment for scanned images, as an out-of-tree bpkit plugin.
//
// Input levels below `low` become 0 (black), above `high` become 1 (white), and the range between
// is stretched linearly over [0, 1], then bent by `gamma` (out = t^(1/gamma): above 1 brightens
// the mid-tones) and optionally inverted. Typical uses: turning a gray paper background into
// white and faint pencil into solid strokes before a recognizer (low: 0.2, high: 0.7), or making
// scans from different scanners look alike. Alpha channels (2 = gray + alpha, 4 = BGRA) are kept
// as they are.
//
// Build it with examples/plugin/CMakeLists.txt; docs/writing-plugins.md walks through it.
#include <bpkit/plugin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace example {

class Levels : public bpkit::FeaturePlugin {
 public:
  // What bpkit shows in `bpkit plugins` and checks a pipeline's `params:` against before
  // configure() is called: the type, the default (as written in YAML) and the range of each.
  static bpkit::PluginInfo info() {
    return {"example.levels",
            "1.0",  // part of the feature-cache key: change it when the output changes
            "levels adjustment: maps [low, high] to [0, 1] (clipping outside), applies a gamma "
            "curve, optionally inverts; alpha is kept",
            bpkit::Kind::kImage,
            bpkit::Kind::kImage,
            {{"low", bpkit::ParamType::kFloat, "0", "input level that becomes black", 0, 1},
             {"high", bpkit::ParamType::kFloat, "1", "input level that becomes white", 0, 1},
             {"gamma", bpkit::ParamType::kFloat, "1", "mid-tone curve t^(1/gamma); > 1 brightens",
              0.1, 10},
             {"invert", bpkit::ParamType::kBool, "false", "output 1 - value (light on dark)"}}};
  }

  // Every declared parameter arrives here already checked against its type and range, defaults
  // filled in. What the declarations cannot express is checked here: ParamError(key, why) makes
  // bpkit report the position of that key in the pipeline file.
  void configure(const bpkit::ParamValues& p) override {
    low_ = float(p.get_float("low"));
    high_ = float(p.get_float("high"));
    inv_gamma_ = float(1.0 / p.get_float("gamma"));
    invert_ = p.get_bool("invert");
    if (!(high_ - low_ >= 1.0f / 255))
      throw bpkit::ParamError("high", "high (" + p.raw("high") + ") must exceed low (" +
                                          p.raw("low") + ") by at least 1/255");
  }

  // Called from several threads at once on different samples: it reads the members, never writes
  // them. An exception rejects this sample; bpkit reports it with the file's name.
  bpkit::Value process(const bpkit::Value& in) const override {
    const bpkit::Image& im = in.image;
    const int c = im.channels;
    if (im.width <= 0 || im.height <= 0 || c < 1 || c > 4 ||
        im.pixels.size() != size_t(im.width) * size_t(im.height) * size_t(c))
      throw std::runtime_error("an empty or inconsistent image (" + std::to_string(im.width) + "x" +
                               std::to_string(im.height) + "x" + std::to_string(c) + ")");
    bpkit::Value out = in;  // same kind, size and path
    const bool alpha = c == 2 || c == 4;
    const float scale = 1.0f / (high_ - low_);
    for (size_t i = 0; i < out.image.pixels.size(); ++i) {
      if (alpha && i % size_t(c) == size_t(c - 1)) continue;
      float& v = out.image.pixels[i];
      float t = (v - low_) * scale;
      t = std::min(std::max(t, 0.0f), 1.0f);
      if (inv_gamma_ != 1.0f) t = std::pow(t, inv_gamma_);
      v = invert_ ? 1.0f - t : t;
    }
    return out;
  }

 private:
  float low_ = 0, high_ = 1, inv_gamma_ = 1;
  bool invert_ = false;
};

}  // namespace example

// Exports the plugin classes of this library (several may be listed) and the ABI version.
BPKIT_PLUGIN_LIBRARY(example::Levels)
