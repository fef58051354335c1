// The ink image that signature.clean produces and the other signature stages read: one float
// channel (CV_32FC1), ink-positive: the paper is exactly 0 and an ink pixel holds its darkness
// relative to the local paper, in (0, 1] (1 - gray / paper), so the intensity of the ink survives
// as a proxy of the pen's pressure.
#pragma once

#include <opencv2/core.hpp>

namespace bpkit_strokes {

// The bounding box of the pixels above `threshold`; an empty rectangle when there are none.
cv::Rect ink_bbox(const cv::Mat& ink, float threshold = 0);

// The ink of an ink image as a binary mask (CV_8UC1, 1 = ink): pixels at least half as dark as the
// median darkness of the nonzero pixels. A relative threshold keeps the strokes' shape the same for
// light and dark ink (the darkness itself is measured by the pressure features), and the edge
// pixels that resampling made faint stay out of the strokes.
cv::Mat ink_strokes(const cv::Mat& ink);

// The q-quantile (0..1) of the nonzero pixels' darkness, in steps of 1/255; 0 without ink.
float ink_quantile(const cv::Mat& ink, double q);

// How much of each pixel the strokes cover, in [0, 1] (CV_32FC1): the darkness over the strokes'
// typical darkness (the 0.8 quantile of the nonzero pixels), clipped. Anti-aliased edges count
// in part, so that sums of coverage (stroke widths, zone densities) change smoothly with the
// scale instead of by whole pixels, and do not depend on how dark the ink is.
cv::Mat ink_coverage(const cv::Mat& ink);

// `ink` cropped to its ink's bounding box and scaled, keeping its aspect, to fit a box of
// box_height x box_width (area averaging when shrinking, bilinear when enlarging). The result is at
// most that box; empty when `ink` has no ink.
cv::Mat fit_ink(const cv::Mat& ink, int box_height, int box_width);

// A CV_32FC1 canvas of height x width, 0 everywhere but the ink of `ink` (fit_ink), placed with its
// bounding box or its center of mass (intensity-weighted) at the canvas's center; a center of mass
// placement is shifted as little as needed to keep the whole box inside the canvas.
cv::Mat place_ink(const cv::Mat& ink, int height, int width, bool center_of_mass);

}  // namespace bpkit_strokes
