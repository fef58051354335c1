// Face stages: detection with a Haar cascade and alignment on the eyes (see face_stages.h).
#include "face_stages.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>
#include <vector>

#include "image_common.h"

namespace bpkit_image {

using bpkit::Box;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

namespace {

// Debian's opencv-data installs OpenCV's cascades here.
const std::string kCascades = "/usr/share/opencv4/haarcascades/";

cv::Mat gray8(const bpkit::Image& im, bool equalize) {
  cv::Mat g8;
  gray_of(im).convertTo(g8, CV_8U, 255);
  if (equalize) cv::equalizeHist(g8, g8);
  return g8;
}

}  // namespace

// A CascadeClassifier is not safe to use from two threads at once, so each detection borrows one
// of these (loading another when all are busy) and returns it.
class CascadePool {
 public:
  explicit CascadePool(const std::string& path, const std::string& key) : path_(path) {
    pool_.push_back(load(key));
  }

  // `votes`, when given, receives each detection's number of merged neighbors (its confidence).
  std::vector<cv::Rect> detect(const cv::Mat& gray8, double scale, int neighbors, cv::Size min_size,
                               cv::Size max_size = cv::Size(), std::vector<int>* votes = nullptr) {
    std::unique_ptr<cv::CascadeClassifier> c;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!pool_.empty()) {
        c = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!c) c = load("");
    std::vector<cv::Rect> found;
    std::vector<int> v;
    c->detectMultiScale(gray8, found, v, scale, neighbors, 0, min_size, max_size);
    if (votes) *votes = v;
    std::lock_guard<std::mutex> lock(mutex_);
    pool_.push_back(std::move(c));
    return found;
  }

 private:
  std::unique_ptr<cv::CascadeClassifier> load(const std::string& key) const {
    auto c = std::make_unique<cv::CascadeClassifier>();
    bool ok = false;
    try {
      ok = c->load(path_);
    } catch (const cv::Exception&) {
      ok = false;
    }
    if (!ok || c->empty()) {
      const std::string why =
          "cannot load the Haar cascade '" + path_ + "' (Debian: apt-get install opencv-data)";
      if (key.empty()) throw std::runtime_error(why);
      throw bpkit::ParamError(key, why);
    }
    return c;
  }

  std::string path_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<cv::CascadeClassifier>> pool_;
};

// ---- face.detect -------------------------------------------------------------------------------

PluginInfo FaceDetect::info() {
  return {
      "face.detect",
      "1.0",
      "finds frontal faces with a Haar cascade (on the gray image, optionally equalized) and "
      "returns them as an image_list of crops (all channels of the input) with their boxes, "
      "left to right; no face gives an empty list. Produces an image_list, so it cannot end a "
      "training pipeline: follow it with image.pick (one face) or run the faces separately",
      Kind::kImage,
      Kind::kImageList,
      {{"cascade", ParamType::kString, kCascades + "haarcascade_frontalface_default.xml",
        "the face cascade (OpenCV XML)"},
       {"scale_factor", ParamType::kFloat, "1.1", "scale step between detection passes", 1.01, 2},
       {"min_neighbors", ParamType::kInt, "5",
        "overlapping detections needed to keep a face (higher: fewer false faces)", 0, 100},
       {"min_size", ParamType::kInt, "30", "smallest face side in pixels", 8, 100000},
       {"max_faces", ParamType::kInt, "0", "keep only the largest this many (0: all)", 0, 100000},
       {"margin", ParamType::kFloat, "0", "enlarge each crop by this fraction per side", 0, 2},
       {"equalize", ParamType::kBool, "false",
        "equalize the gray histogram before detecting (finds faces in dim photos, but also more "
        "false faces)"}}};
}

void FaceDetect::configure(const bpkit::ParamValues& p) {
  faces_ = std::make_shared<CascadePool>(p.get_string("cascade"), "cascade");
  scale_ = p.get_float("scale_factor");
  neighbors_ = int(p.get_int("min_neighbors"));
  min_size_ = int(p.get_int("min_size"));
  max_faces_ = int(p.get_int("max_faces"));
  margin_ = p.get_float("margin");
  equalize_ = p.get_bool("equalize");
}

Value FaceDetect::process(const Value& in) const {
  const cv::Mat m = to_mat(in.image);
  std::vector<cv::Rect> faces = faces_->detect(gray8(in.image, equalize_), scale_, neighbors_,
                                               cv::Size(min_size_, min_size_));
  if (max_faces_ > 0 && int(faces.size()) > max_faces_) {
    std::sort(faces.begin(), faces.end(),
              [](const cv::Rect& a, const cv::Rect& b) { return a.area() > b.area(); });
    faces.resize(size_t(max_faces_));
  }
  std::sort(faces.begin(), faces.end(),
            [](const cv::Rect& a, const cv::Rect& b) { return a.x < b.x; });
  Value out;
  out.kind = Kind::kImageList;
  out.path = in.path;
  for (const cv::Rect& f : faces) {
    const int dx = int(std::lround(margin_ * f.width)), dy = int(std::lround(margin_ * f.height));
    const cv::Rect r =
        cv::Rect(f.x - dx, f.y - dy, f.width + 2 * dx, f.height + 2 * dy) & cv::Rect({}, m.size());
    out.images.push_back(image_of(m(r)));
    out.boxes.push_back(Box{r.x, r.y, r.width, r.height});
  }
  return out;
}

// ---- face.align --------------------------------------------------------------------------------

PluginInfo FaceAlign::info() {
  return {
      "face.align",
      "1.0",
      "a face at a fixed size with its eyes level: finds the face the cascade is surest of "
      "(detect: best: the most overlapping detections) "
      "or takes the whole input as the face (detect: none, e.g. after face.detect and "
      "image.pick), finds the eyes in its upper part (Haar cascade), rotates and scales so "
      "they land at (0.5 -+ eye_distance / 2, eye_y) of a size x size square, then equalizes "
      "the histogram. Without two eyes it crops a square around the face unrotated, or "
      "rejects the sample with require_eyes. No face (detect: best) rejects the sample",
      Kind::kImage,
      Kind::kImage,
      {{"detect", {"best", "none"}, "best", "find the face, or the input is the face"},
       {"cascade", ParamType::kString, kCascades + "haarcascade_frontalface_default.xml",
        "the face cascade (detect: best)"},
       {"eye_cascade", ParamType::kString, kCascades + "haarcascade_eye.xml", "the eye cascade"},
       {"size", ParamType::kInt, "96", "output side in pixels", 8, 4096},
       {"eye_distance", ParamType::kFloat, "0.4", "distance between the eyes / size", 0.1, 0.9},
       {"eye_y", ParamType::kFloat, "0.38", "height of the eyes / size", 0.1, 0.9},
       {"min_size", ParamType::kInt, "30", "smallest face side in pixels", 8, 100000},
       {"equalize", ParamType::kBool, "true", "equalize the histogram of the result"},
       {"gray", ParamType::kBool, "true", "one gray channel (else the input's channels)"},
       {"require_eyes", ParamType::kBool, "false", "reject a face without two eyes found"}}};
}

void FaceAlign::configure(const bpkit::ParamValues& p) {
  detect_ = p.get_string("detect") == "best";
  if (detect_) faces_ = std::make_shared<CascadePool>(p.get_string("cascade"), "cascade");
  eyes_ = std::make_shared<CascadePool>(p.get_string("eye_cascade"), "eye_cascade");
  size_ = int(p.get_int("size"));
  eye_distance_ = p.get_float("eye_distance");
  eye_y_ = p.get_float("eye_y");
  min_size_ = int(p.get_int("min_size"));
  equalize_ = p.get_bool("equalize");
  gray_ = p.get_bool("gray");
  require_eyes_ = p.get_bool("require_eyes");
}

Value FaceAlign::process(const Value& in) const {
  const cv::Mat m = to_mat(in.image);
  const cv::Mat g8 = gray8(in.image, false);
  cv::Rect face(0, 0, m.cols, m.rows);
  if (detect_) {
    std::vector<int> votes;
    const std::vector<cv::Rect> faces =
        faces_->detect(g8, 1.1, 5, cv::Size(min_size_, min_size_), cv::Size(), &votes);
    if (faces.empty()) throw std::runtime_error("no face found");
    // The most certain face (the largest is often a false one in a busy background).
    face = faces[size_t(std::max_element(votes.begin(), votes.end()) - votes.begin())];
  }
  // Eyes: in the upper 60% of the face, one on each side, each the candidate nearest to where an
  // eye usually is in a detected face box. The eye cascade's window is 20x20 pixels, so small
  // faces are enlarged to 160 pixels first (coordinates below are in the enlarged face).
  const cv::Rect upper(face.x, face.y, face.width, std::max(1, int(face.height * 0.6)));
  const double up = std::max(1.0, 160.0 / face.width);
  cv::Mat region;
  cv::resize(g8(upper), region, cv::Size(), up, up, cv::INTER_LINEAR);
  const int fw = int(std::lround(face.width * up)), fh = int(std::lround(face.height * up));
  const int emin = std::max(12, fw / 10);
  // Candidates from the plain and the equalized region: small faces lose one eye or the other.
  std::vector<cv::Rect> eyes =
      eyes_->detect(region, 1.05, 3, cv::Size(emin, emin), cv::Size(fw / 2, fw / 2));
  cv::equalizeHist(region, region);
  for (const cv::Rect& e :
       eyes_->detect(region, 1.05, 3, cv::Size(emin, emin), cv::Size(fw / 2, fw / 2)))
    eyes.push_back(e);
  const cv::Point2f expect_l(fw * 0.3f, fh * 0.38f), expect_r(fw * 0.7f, fh * 0.38f);
  cv::Point2f left(-1, -1), right(-1, -1);
  float dl = 1e30f, dr = 1e30f;
  for (const cv::Rect& e : eyes) {
    const cv::Point2f c(e.x + e.width / 2.0f, e.y + e.height / 2.0f);
    const cv::Point2f& expect = c.x < fw / 2.0f ? expect_l : expect_r;
    const float d = float(cv::norm(c - expect));
    if (c.x < fw / 2.0f && d < dl) dl = d, left = c;
    if (c.x >= fw / 2.0f && d < dr) dr = d, right = c;
  }
  cv::Mat M;
  if (left.x >= 0 && right.x >= 0) {
    left = left / up + cv::Point2f(float(face.x), float(face.y));
    right = right / up + cv::Point2f(float(face.x), float(face.y));
    const cv::Point2f d = right - left, mid = (left + right) * 0.5f;
    const double angle = std::atan2(d.y, d.x) * 180 / CV_PI;
    const double scale = eye_distance_ * size_ / std::max(1.0, cv::norm(d));
    M = cv::getRotationMatrix2D(mid, angle, scale);
    M.at<double>(0, 2) += size_ / 2.0 - mid.x;
    M.at<double>(1, 2) += eye_y_ * size_ - mid.y;
  } else {
    if (require_eyes_)
      throw std::runtime_error("found " + std::to_string(eyes.size()) +
                               " eye candidates, not one on each side of the face");
    const double side = face.width * 1.1, scale = size_ / side;
    const cv::Point2f c(face.x + face.width / 2.0f, face.y + face.height / 2.0f);
    M = cv::getRotationMatrix2D(c, 0, scale);
    M.at<double>(0, 2) += size_ / 2.0 - c.x;
    M.at<double>(1, 2) += size_ / 2.0 - c.y;
  }
  cv::Mat src = gray_ ? gray_of(in.image) : m, warped;
  cv::warpAffine(src, warped, M, cv::Size(size_, size_), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
  if (equalize_) {
    cv::Mat u8;
    warped.convertTo(u8, CV_8U, 255);
    if (u8.channels() == 1) {
      cv::equalizeHist(u8, u8);
    } else if (u8.channels() >= 3) {
      std::vector<cv::Mat> ch;
      cv::split(u8, ch);
      cv::Mat bgr, ycc;
      cv::merge(std::vector<cv::Mat>(ch.begin(), ch.begin() + 3), bgr);
      cv::cvtColor(bgr, ycc, cv::COLOR_BGR2YCrCb);
      std::vector<cv::Mat> y;
      cv::split(ycc, y);
      cv::equalizeHist(y[0], y[0]);
      cv::merge(y, ycc);
      cv::cvtColor(ycc, bgr, cv::COLOR_YCrCb2BGR);
      std::vector<cv::Mat> out3;
      cv::split(bgr, out3);
      for (int c = 0; c < 3; ++c) ch[size_t(c)] = out3[size_t(c)];
      cv::merge(ch, u8);
    }
    u8.convertTo(warped, CV_32F, 1.0 / 255);
  }
  return from_mat(warped, in.path);
}

}  // namespace bpkit_image
