// Helpers shared by the built-in image stages: conversions between bpkit::Image and cv::Mat, and
// the page analysis (background, ink, skew) that several OCR stages build on.
//
// Conventions: gray images are CV_32FC1 in [0, 1]; text is dark on a light background; an ink mask
// is CV_8UC1 with 255 for ink.
#pragma once

#include <bpkit/plugin.h>

#include <opencv2/core.hpp>
#include <string>
#include <vector>

namespace bpkit_image {

// A view of the image's pixels (no copy; CV_32FC(channels)). Throws when the image is empty or its
// pixel count does not match width x height x channels.
cv::Mat to_mat(const bpkit::Image& im);
// A kImage value holding a copy of `m` (any depth, converted to float without scaling).
bpkit::Value from_mat(const cv::Mat& m, const std::string& path);
bpkit::Image image_of(const cv::Mat& m);

// One gray channel (CV_32FC1): BGR(A) converted, transparent pixels composited over `background`.
cv::Mat gray_of(const bpkit::Image& im, float background = 1.0f);

// The light background of a page: a closing (max then min) over `kernel` pixels removes dark
// strokes narrower than the kernel, a blur smooths it. kernel <= 0 picks one from the size.
cv::Mat estimate_background(const cv::Mat& gray, int kernel);
// gray / background, clipped to [0, 1]: uneven lighting becomes an even white page.
cv::Mat flatten_illumination(const cv::Mat& gray, int kernel);

// Ink by Otsu's threshold on a flattened page. An empty mask (no ink) when the two classes differ
// by less than `min_contrast` in gray level or when "ink" would cover more than half of the page:
// a blank or uniformly noisy page has no text.
cv::Mat ink_mask(const cv::Mat& flat_gray, double min_contrast = 0.15);

// The skew of text lines in an ink mask, in degrees counter-clockwise (OpenCV's convention for
// getRotationMatrix2D: rotating the page by -angle levels the lines), searched in
// [-max_angle, max_angle] by maximizing the sharpness of the horizontal projection profile.
// 0 when the mask holds too little ink to tell.
double estimate_skew(const cv::Mat& mask, double max_angle);

// Rotates `m` by `angle` degrees counter-clockwise about its center into a canvas that holds all
// of it, filling with `fill`; `forward` receives the 2x3 map from source to output coordinates.
cv::Mat rotate_expand(const cv::Mat& m, double angle, double fill, int interpolation,
                      cv::Mat* forward = nullptr);

// The q-quantile (0..1) of a CV_32FC1 image's values.
float quantile(const cv::Mat& gray, double q);

// A robust estimate of an image's noise: 1.4826 x the median absolute difference between the
// gray image and its 3x3 median (the standard deviation for Gaussian noise on flat regions, which
// dominate pages; edges and strokes barely move the median), from the middle 1024x1024 pixels at
// most. On the [0, 1] scale.
double estimate_noise(const cv::Mat& gray);  // CV_32FC1

}  // namespace bpkit_image
