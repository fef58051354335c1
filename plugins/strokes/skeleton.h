// Skeletons of handwriting and the strokes traced along them.
//
// A skeleton is a CV_8UC1 image of 0 and 1, one pixel wide and 8-connected. thin() makes it by
// Zhang–Suen thinning with Lü and Wang's correction (2-pixel-thick diagonal strokes survive),
// followed by the removal of the staircase pixels and thick spots it leaves (a pixel with three or
// more neighbours is removed when it is simple: its removal changes neither the number of ink
// components nor the number of holes, Yokoi's connectivity number is 1). Every remaining pixel is
// an end (one neighbour, or two side by side), a junction (three or more branches meet: paper-ink
// transitions around it) or lies on a curve between them.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <vector>

namespace bpkit_strokes {

// The skeleton of `ink` (CV_8UC1, nonzero = ink). Every 8-connected ink component keeps at least
// one skeleton pixel (Zhang–Suen erases 2x2 blocks entirely; such a component gets its pixel
// nearest to its center back).
cv::Mat thin(const cv::Mat& ink);

// A polyline of skeleton pixels between two nodes (ends or junctions), or a closed curve without
// nodes (then `closed`, and the first pixel follows the last).
struct Stroke {
  std::vector<cv::Point> points;
  bool closed = false;
  // What the first and the last pixel are: 1 an end, 2 a junction, 0 neither (closed curves, and
  // strokes that stop against pixels already traced).
  uint8_t front = 0, back = 0;
};

struct SkeletonGraph {
  int ends = 0;       // pixels with one neighbour
  int junctions = 0;  // clusters of pixels where three or more branches meet (see merge)
  int dots = 0;       // isolated pixels and stubs (a dot of ink; see merge)
  std::vector<Stroke> strokes;
  cv::Mat node;  // CV_8UC1: 1 at the ends and junction pixels
};

// Classifies the skeleton's pixels and traces its strokes: from every end and junction along each
// branch to the next end or junction, then every closed curve that has none. Each skeleton pixel
// off the nodes belongs to exactly one stroke. `skeleton` is thin()'s output. Junctions joined by
// a stroke of at most `merge` pixels count as one (two strokes crossing at a small angle, or thick
// ones, thin into two forks a few pixels apart), and a stroke of at most `merge` pixels between
// two ends is a dot, not two ends; about the stroke width is a good value.
SkeletonGraph trace_strokes(const cv::Mat& skeleton, int merge = 0);

// Removes the spurs of a skeleton: branches from an end to a junction of at most `max_length`
// pixels (thinning grows them from the corners and bumps of thick strokes), keeping the junction's
// pixel. Up to three rounds, for spurs that become removable once others are gone.
void prune_spurs(cv::Mat& skeleton, int max_length);

// The slant of the handwriting as a shear, tan of the angle from the vertical: > 0 when the strokes
// lean to the right (their tops further right than their bottoms). From the near-vertical pieces of
// the strokes (within 45 degrees of the vertical), each the chord between two points `step` pixels
// apart along a stroke: sum of their horizontal extents over the sum of their vertical extents.
// 0 without near-vertical pieces.
double stroke_slant(const std::vector<Stroke>& strokes, int step);

}  // namespace bpkit_strokes
