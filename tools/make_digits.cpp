// make_digits: splits OpenCV's handwritten-digit sheet (opencv-doc's examples/data/digits.png:
// 5000 digits of 20x20 pixels, 100 per row, 500 per class in class order) into one PNG per digit
// and writes two manifests: the first 90% of each class for training, the last 10% for testing
// (the split of OpenCV's own digits sample).
//
//   make_digits [--sheet PNG] [--out DIR] [--limit N]
//
// --limit N keeps only the first N training and N/9 test digits of each class (small test sets).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>

#include "bpkit/version.h"

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "make_digits")) return 0;
  std::string sheet = "/usr/share/doc/opencv-doc/examples/data/digits.png";
  std::string out = "data/digits";
  int limit = 450;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--sheet" || a == "--out" || a == "--limit") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--sheet") sheet = v;
      if (a == "--out") out = v;
      if (a == "--limit") limit = std::atoi(v.c_str());
    } else {
      std::fprintf(stderr, "usage: make_digits [--sheet PNG] [--out DIR] [--limit N]\n");
      return 2;
    }
  }
  if (limit < 1 || limit > 450) {
    std::fprintf(stderr, "make_digits: --limit must be between 1 and 450\n");
    return 2;
  }
  const cv::Mat m = cv::imread(sheet, cv::IMREAD_GRAYSCALE);
  if (m.empty()) {
    std::fprintf(stderr,
                 "make_digits: cannot read '%s' (install the Debian package opencv-doc, or pass "
                 "--sheet)\n",
                 sheet.c_str());
    return 1;
  }
  if (m.cols != 2000 || m.rows != 1000) {
    std::fprintf(stderr, "make_digits: '%s' is %dx%d, expected the 2000x1000 digit sheet\n",
                 sheet.c_str(), m.cols, m.rows);
    return 1;
  }
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(out) / "images");
  std::ofstream train(fs::path(out) / "train.tsv"), test(fs::path(out) / "test.tsv");
  train << "# OpenCV digits.png: first 90% of each class\n";
  test << "# OpenCV digits.png: last 10% of each class\n";
  const int test_limit = std::max(1, limit / 9);
  for (int k = 0; k < 5000; ++k) {
    const int digit = k / 500, within = k % 500;
    const bool is_train = within < 450;
    if (is_train ? within >= limit : within - 450 >= test_limit) continue;
    const cv::Mat cell = m(cv::Rect((k % 100) * 20, (k / 100) * 20, 20, 20));
    char name[64];
    std::snprintf(name, sizeof name, "images/%d_%03d.png", digit, within);
    if (!cv::imwrite((fs::path(out) / name).string(), cell)) {
      std::fprintf(stderr, "make_digits: cannot write %s/%s\n", out.c_str(), name);
      return 1;
    }
    (is_train ? train : test) << name << '\t' << digit << '\n';
  }
  if (!train || !test) {
    std::fprintf(stderr, "make_digits: cannot write the manifests in %s\n", out.c_str());
    return 1;
  }
  std::printf("wrote %s/train.tsv and %s/test.tsv\n", out.c_str(), out.c_str());
  return 0;
}
