// make_digits: splits OpenCV's handwritten-digit sheet (opencv-doc's examples/data/digits.png:
// 5000 digits of 20x20 pixels, 100 per row, 500 per class in class order) into one PNG per digit
// and writes two manifests: the first 90% of each class for training, the last 10% for testing
// (the split of OpenCV's own digits sample).
//
//   make_digits [--sheet PNG] [--out DIR] [--limit N]
//
// --limit N keeps only the first N training and N/9 test digits of each class (small test sets).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <string>

#include "bpkit/version.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

const char kProgram[] = "make_digits";

const char kUsage[] =
    "usage: make_digits [--sheet PNG] [--out DIR] [--limit N]\n"
    "\n"
    "Splits OpenCV's handwritten-digit sheet (5000 digits of 20x20 pixels, 500 per class) into\n"
    "one PNG per digit, DIR/images/D_NNN.png, and writes the manifests DIR/train.tsv (the first\n"
    "90% of each class) and DIR/test.tsv (the last 10%).\n"
    "\n"
    "  --sheet PNG   the 2000x1000 digit sheet (default\n"
    "                /usr/share/doc/opencv-doc/examples/data/digits.png, Debian package "
    "opencv-doc)\n"
    "  --out DIR     output directory, created when missing (default data/digits)\n"
    "  --limit N     training digits per class, 1..450 (default 450, all); the test set keeps\n"
    "                max(1, N/9) per class\n"
    "  -h, --help    this text\n"
    "  --version     the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure (unreadable sheet, unwritable output), 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int fail(const std::string& path, const std::string& why) {
  return bpkit_tools::fail(kProgram, path, why);
}

struct Options {
  std::string sheet = "/usr/share/doc/opencv-doc/examples/data/digits.png";
  std::string out = "data/digits";
  int limit = 450;
};

Options parse(int argc, char** argv) {
  Options o;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--sheet") {
      o.sheet = args.value();
    } else if (a == "--out") {
      o.out = args.value();
    } else if (a == "--limit") {
      o.limit = int(args.number(a, args.value(), 1, 450));
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  if (o.sheet.empty()) usage_error("--sheet expects a file name, got ''");
  if (o.out.empty()) usage_error("--out expects a directory name, got ''");
  return o;
}

int run(const Options& o) {
  const std::string& out = o.out;
  std::error_code ec;
  // The output must be (or become) a directory: fail before reading anything.
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    return fail(out, "exists and is not a directory");
  if (!fs::is_regular_file(o.sheet, ec))
    return fail(o.sheet,
                std::string(fs::exists(o.sheet, ec) ? "not a regular file" : "no such file") +
                    " (install the Debian package opencv-doc, or pass --sheet)");
  const cv::Mat m = cv::imread(o.sheet, cv::IMREAD_GRAYSCALE);
  if (m.empty())
    return fail(o.sheet,
                "cannot read the image (install the Debian package opencv-doc, or pass --sheet)");
  if (m.cols != 2000 || m.rows != 1000) {
    std::fprintf(stderr, "%s: %s: is %dx%d, expected the 2000x1000 digit sheet\n", kProgram,
                 o.sheet.c_str(), m.cols, m.rows);
    return 1;
  }
  const fs::path images = fs::path(out) / "images";
  fs::create_directories(images, ec);
  if (ec) return fail(images.string(), "cannot create directory: " + ec.message());
  const fs::path train_path = fs::path(out) / "train.tsv", test_path = fs::path(out) / "test.tsv";
  std::ofstream train(train_path), test(test_path);
  if (!train) return fail(train_path.string(), std::strerror(errno));
  if (!test) return fail(test_path.string(), std::strerror(errno));
  train << "# OpenCV digits.png: first 90% of each class\n";
  test << "# OpenCV digits.png: last 10% of each class\n";
  const int test_limit = std::max(1, o.limit / 9);
  for (int k = 0; k < 5000; ++k) {
    const int digit = k / 500, within = k % 500;
    const bool is_train = within < 450;
    if (is_train ? within >= o.limit : within - 450 >= test_limit) continue;
    const cv::Mat cell = m(cv::Rect((k % 100) * 20, (k / 100) * 20, 20, 20));
    char name[64];
    std::snprintf(name, sizeof name, "images/%d_%03d.png", digit, within);
    if (!cv::imwrite((fs::path(out) / name).string(), cell))
      return fail((fs::path(out) / name).string(), "cannot write");
    (is_train ? train : test) << name << '\t' << digit << '\n';
  }
  train.close();
  test.close();
  if (!train) return fail(train_path.string(), "cannot write");
  if (!test) return fail(test_path.string(), "cannot write");
  std::printf("wrote %s/train.tsv and %s/test.tsv\n", out.c_str(), out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(parse(argc, argv)); });
}
