// The signature stages of the bpkit_strokes plugin library: signature.clean (a scan into a cropped,
// size-normalized ink image), signature.features (stroke, texture and gradient features of that
// image) and signature.image (the ink image as a fixed-size tensor for convolutional networks).
// docs/signature-features.md describes them for users.
#pragma once

#include <bpkit/plugin.h>

#include <string>

namespace bpkit_strokes {

// signature.clean: image -> image. Any scan (1 to 4 channels, [0, 1]) in; out, one channel holding
// the signature's ink only (ink_image.h): paper 0, ink its darkness in (0, 1], cropped to the
// signature with a margin and scaled so the ink is `height` pixels high (or max_aspect x height
// wide, whichever is reached first). Throws std::runtime_error for a scan without ink and for one
// that is mostly ink.
class SignatureClean : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

  struct Options {
    int height = 128;
    double max_aspect = 4, margin = 0.05;
    bool sauvola = false;
    double sauvola_k = 0.2, min_contrast = 0.15, max_ink = 0.4;
    bool drop_colors = true, ruled_lines = true;
    double line_length = 0.3, speck = 0.5, gap = 0.6;
    bool deslant = false;
    double max_rotation = 0;
  };

 private:
  Options o_;
};

// signature.features: image (signature.clean's) -> features {F}. The layout of the vector, group by
// group in this order, each group present when its parameter is true (Z(d) is the number of zones
// of the "rows x cols" grid d):
//   direction  8 + 8 Z(direction_zones)  stroke orientation histograms, whole signature then zones
//   curvature  9                         turning-angle histogram (8), mean turning angle / pi
//   width      10                        stroke width / ink height histogram (8), mean, std
//   topology   8                         ln(1 + n) of ends, junctions, loops, components; ln(1 +
//                                        skeleton length / ink height); ln(width / height) of the
//                                        ink; ink area / box area; slant (tan, > 0 leaning right)
//   zoning     Z(zones)                  ink density per zone of the ink's bounding box
//   pressure   12                        ink darkness histogram (8), mean, std; skeleton darkness
//                                        mean, std
//   lbp        59 Z(lbp_zones)           uniform LBP(8,1) histograms per zone
//   hog        36 (r - 1) (c - 1)        HOG (9 bins, 2x2-cell blocks, L2-Hys) on the ink fitted
//                                        into r x c cells of 16 px (hog_cells "r x c")
class SignatureFeatures : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

  struct Grid {
    int rows = 1, cols = 1;
    int zones() const { return rows * cols; }
  };
  struct Options {
    bool direction = true, curvature = true, width = true, topology = true, zoning = true,
         pressure = true, lbp = true, hog = true;
    Grid direction_zones{2, 4}, zones{4, 8}, lbp_zones{2, 4}, hog_cells{4, 12};
  };
  // The feature vector's length for these options.
  static int length(const Options& o);

 private:
  Options o_;
};

// signature.image: image (signature.clean's) -> features {1, height, width}: the ink fitted into
// the canvas minus a margin, keeping its aspect, centered by its bounding box or its center of
// mass; paper 0.
class SignatureImage : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int height_ = 64, width_ = 192;
  double margin_ = 0.05;
  bool center_of_mass_ = false, binary_ = false;
};

}  // namespace bpkit_strokes
