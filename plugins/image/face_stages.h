// The face stages of the built-in image plugin library (implemented in face_stages.cpp):
// detection with OpenCV's Haar cascades (Debian: opencv-data) and eye-based alignment.
#pragma once

#include <bpkit/plugin.h>

#include <memory>
#include <string>

namespace bpkit_image {

class CascadePool;  // cascades loaded once, lent to one thread at a time

// face.detect: image -> image_list of face crops with their boxes, left to right.
class FaceDetect : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  std::shared_ptr<CascadePool> faces_;
  double scale_ = 1.1, margin_ = 0;
  int neighbors_ = 5, min_size_ = 30, max_faces_ = 0;
  bool equalize_ = false;
};

// face.align: image (a photo, or a face crop) -> a fixed-size face, eyes level.
class FaceAlign : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  std::shared_ptr<CascadePool> faces_, eyes_;
  bool detect_ = true, equalize_ = true, gray_ = true, require_eyes_ = false;
  int size_ = 96, min_size_ = 30;
  double eye_distance_ = 0.4, eye_y_ = 0.38;
};

}  // namespace bpkit_image
