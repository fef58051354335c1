// Training-time data augmentation for image-shaped samples: a random affine transform (shift,
// rotation, scale about the image centre) drawn per sample and applied with bilinear sampling, and
// optionally a random square erased (cutout), so the network cannot rely on one part of a shape.
// The engine's own code, no image library: the trainer applies it to each training batch.
#pragma once

#include "bpkit/random.h"
#include "bpkit/tensor.h"

namespace bpkit {

// The ranges of the random transform; every draw is uniform in its range. All zero: off.
struct Augment {
  double shift = 0;   // pixels: horizontal and vertical translation in [-shift, shift]
  double rotate = 0;  // degrees: rotation in [-rotate, rotate]
  double scale = 0;   // relative: zoom factor in [1 - scale, 1 + scale]
  int64_t erase = 0;  // pixels: the side of a square set to `fill` at a random place (0: none)
  float fill = 0;     // the value of pixels that come from outside the image (and erased ones)
  bool enabled() const { return shift > 0 || rotate > 0 || scale > 0 || erase > 0; }
};

// One sample's transform: output pixel p takes the input at c + A⁻¹(p - c - t), c the centre.
struct AffineDraw {
  double dx = 0, dy = 0;  // translation t, pixels
  double angle = 0;       // radians; positive turns the image clockwise on screen (y down)
  double zoom = 1;
  double erase_x = 0, erase_y = 0;  // the erased square's centre, in [0, 1) of width and height
};

// Draws one transform from `a`; consumes the same number of values from `rng` whatever the ranges.
AffineDraw draw_affine(const Augment& a, Rng& rng);

// Requires x of shape [B, C, H, W] (H, W >= 1). Ensures each sample b is replaced by its image
// under draw_affine(a, rng) (draws taken in sample order, every channel of a sample moved alike),
// so the result depends only on x, `a` and the state of `rng`, not on the thread count. Does
// nothing when !a.enabled() (no draws either).
void augment_batch(Tensor<float>& x, const Augment& a, Rng& rng);

// Applies one transform to one {C, H, W} image at `in`, writing `out` (they must not overlap).
void affine_image(const float* in, float* out, int64_t channels, int64_t height, int64_t width,
                  const AffineDraw& d, float fill);
// Sets the `side`×`side` square centred at (erase_x·width, erase_y·height), clipped to the image,
// to `fill` in every channel of the {C, H, W} image at `im`. side 0: nothing.
void erase_square(float* im, int64_t channels, int64_t height, int64_t width, const AffineDraw& d,
                  int64_t side, float fill);

}  // namespace bpkit
