// render_lines: renders text lines with real fonts (FreeType) into PNG images for training and
// testing line recognizers, with a manifest of "images/NAME.png<TAB>transcript" lines.
//
//   render_lines --out DIR [--count N] [--seed S] [--height H] [--fonts SET] [--name NAME]
//                [--clean] [--lines FILE] [--font-dir DIR] [--list-fonts]
//
// --fonts: `train` (default: the faces the first recognizers were trained on), `extra` (training
// faces added later), `heldout` (families never used for training, to measure how the recognizer
// generalizes to unseen typefaces), `all`, or a comma-separated list of these, family names from
// --list-fonts and font file paths (e.g. `train,extra`). Text: printable ASCII (0x20–0x7e) from a
// built-in generator (words, capitalized words, numbers, dates, prices, punctuation, random
// strings), or the lines of --lines FILE. Images are H pixels high (default 32), dark text on a
// light background, width following the text. Augmentation (unless --clean): font size (the line is
// rendered at 0.7–1.6× its final size and resampled), horizontal stretch, stroke thickness
// (dilation/erosion), small rotation, blur, uneven background, ink contrast, noise and JPEG
// artefacts. Sample i depends only on (seed, i): the same seed gives the same files.
// Output: DIR/images/NAME_000000.png ... and DIR/NAME.tsv (NAME defaults to `lines`).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/version.h"
#include "text_render.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

using bpkit_tools::Face;
using bpkit_tools::FaceSet;
using bpkit_tools::kFontCount;
using bpkit_tools::kFonts;
using bpkit_tools::mix;
using bpkit_tools::render_text;
using bpkit_tools::TextGenerator;

struct Options {
  std::string out, fonts = "train", name = "lines", lines_file, font_dir = "/usr/share/fonts";
  int64_t count = 1000;
  uint64_t seed = 1;
  int height = 32;
  int max_chars = 40;
  bool clean = false;
};

// One augmented line image (dark text on light background, `height` rows), or an empty Mat when
// the text cannot be drawn with this face.
cv::Mat make_line(const Face& f, const std::string& text, const Options& o, std::mt19937_64& rng) {
  auto uniform = [&](double a, double b) {
    return std::uniform_real_distribution<double>(a, b)(rng);
  };
  auto chance = [&](double p) { return uniform(0, 1) < p; };
  const bool aug = !o.clean;
  // Render at 0.7–1.6× the final size: resampling then varies the stroke rendering like scans of
  // different resolutions do. The line's vertical extent (ascender..descender) becomes ~80–95% of
  // the final height.
  const double scale = aug ? uniform(0.7, 1.6) : 1.0;
  const double extent = aug ? uniform(0.78, 0.95) : 0.88;
  const int px = std::max(6, int(std::lround(o.height * scale * extent / 1.2)));
  cv::Mat ink;
  int base = 0, asc = 0, desc = 0;
  if (!render_text(f.face, text, px, ink, base, asc, desc)) return {};
  // Stroke thickness.
  if (aug && chance(0.25)) {
    const cv::Mat k = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2, 2));
    if (chance(0.6))
      cv::dilate(ink, ink, k);
    else if (px >= 20)
      cv::erode(ink, ink, k);
  }
  // Small rotation about the text's centre.
  if (aug && chance(0.4)) {
    const double angle = uniform(-2.0, 2.0);
    const cv::Mat m = cv::getRotationMatrix2D(cv::Point2f(ink.cols / 2.0f, float(base)), angle, 1);
    cv::warpAffine(ink, ink, m, ink.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, 0);
  }
  // Crop: the font's ascender..descender band with random vertical margins, the ink's horizontal
  // extent with random side margins.
  const int band = asc + desc;
  const int top = base - asc - int(std::lround(band * (aug ? uniform(0.02, 0.12) : 0.06)));
  const int bottom = base + desc + int(std::lround(band * (aug ? uniform(0.02, 0.12) : 0.06)));
  int left = ink.cols, right = -1;
  for (int y = std::max(0, top); y < std::min(ink.rows, bottom); ++y)
    for (int x = 0; x < ink.cols; ++x)
      if (ink.at<uint8_t>(y, x) > 20) {
        left = std::min(left, x);
        right = std::max(right, x);
      }
  if (right < left) return {};
  const int side = std::max(1, int(std::lround(band * 0.25)));
  left = std::max(0, left - int(aug ? uniform(0.1, 1.0) * side : side / 2));
  right = std::min(ink.cols - 1, right + int(aug ? uniform(0.1, 1.0) * side : side / 2));
  const cv::Rect roi(left, std::max(0, top), right - left + 1,
                     std::min(ink.rows, bottom) - std::max(0, top));
  cv::Mat crop = ink(roi);
  const double stretch = aug ? uniform(0.85, 1.15) : 1.0;
  const int width =
      std::max(4, int(std::lround(double(crop.cols) * o.height / crop.rows * stretch)));
  cv::Mat line;
  cv::resize(crop, line, cv::Size(width, o.height), 0, 0, cv::INTER_AREA);
  // Paper and ink: an uneven background (a gradient and a low-frequency blotch), ink contrast.
  cv::Mat img(line.size(), CV_32F);
  const double paper = aug ? uniform(0.75, 1.0) : 1.0, ink_level = aug ? uniform(0.0, 0.35) : 0.0;
  const double gx = aug && chance(0.5) ? uniform(-0.15, 0.15) : 0.0;
  const double gy = aug && chance(0.3) ? uniform(-0.1, 0.1) : 0.0;
  const double blot = aug && chance(0.3) ? uniform(0.05, 0.2) : 0.0;
  const double bx = uniform(0, width), by = uniform(0, o.height), br = uniform(8, 40);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const double d2 = ((x - bx) * (x - bx) + (y - by) * (y - by)) / (br * br);
      const double bg = paper + gx * (double(x) / width - 0.5) + gy * (double(y) / o.height - 0.5) -
                        blot * std::exp(-d2);
      const double a = line.at<uint8_t>(y, x) / 255.0;
      img.at<float>(y, x) = float(bg * (1 - a) + ink_level * a);
    }
  if (aug && chance(0.35)) {
    const double sigma = uniform(0.3, 1.1);
    cv::GaussianBlur(img, img, cv::Size(0, 0), sigma);
  }
  if (aug && chance(0.5)) {
    std::normal_distribution<float> noise(0.0f, float(uniform(0.01, 0.08)));
    for (int y = 0; y < img.rows; ++y)
      for (int x = 0; x < img.cols; ++x) img.at<float>(y, x) += noise(rng);
  }
  cv::Mat out;
  img.convertTo(out, CV_8U, 255.0);  // saturates to 0..255
  if (aug && chance(0.3)) {
    std::vector<uchar> buf;
    cv::imencode(".jpg", out, buf, {cv::IMWRITE_JPEG_QUALITY, int(uniform(15, 70))});
    out = cv::imdecode(buf, cv::IMREAD_GRAYSCALE);
  }
  return out;
}

const char kProgram[] = "render_lines";

const char kUsage[] =
    "usage: render_lines --out DIR [--count N] [--seed S] [--height H] [--max-chars N]\n"
    "                    [--fonts SET] [--name NAME] [--clean] [--lines FILE] [--font-dir DIR]\n"
    "       render_lines --list-fonts [--font-dir DIR]\n"
    "\n"
    "Renders text lines with real fonts (FreeType) into PNG images, augmented like scans unless\n"
    "--clean, for training and testing line recognizers: DIR/images/NAME_000000.png ... and the\n"
    "manifest DIR/NAME.tsv (\"images/NAME_000000.png<TAB>transcript\" lines). Sample i depends\n"
    "only on (seed, i).\n"
    "\n"
    "  --out DIR       output directory (created when missing)\n"
    "  --count N       number of lines, 1..100000000 (default 1000; with --lines: one per line\n"
    "                  of FILE)\n"
    "  --seed S        seed, 0..2^62 (default 1)\n"
    "  --height H      image height in pixels, 8..512 (default 32)\n"
    "  --max-chars N   longest generated line, 4..1000 characters (default 40)\n"
    "  --fonts SET     train|extra|heldout|all, font families of --list-fonts or font files,\n"
    "                  comma-separated (default train)\n"
    "  --name NAME     name of the manifest and prefix of the images, at most 40 characters\n"
    "                  without '/' (default lines)\n"
    "  --clean         no augmentation: plain dark text on white\n"
    "  --lines FILE    render the lines of FILE (printable ASCII) instead of generated text\n"
    "  --font-dir DIR  where the font files of the table are (default /usr/share/fonts)\n"
    "  --list-fonts    print the font table (set, family, file) and exit\n"
    "  -h, --help      this text\n"
    "  --version       the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure (missing font, unreadable or unwritable file), 2 usage\n"
    "error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int fail(const std::string& path, const std::string& why) {
  return bpkit_tools::fail(kProgram, path, why);
}

Options parse(int argc, char** argv, bool& list) {
  Options o;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    auto value = [&] { return args.value(); };
    auto number = [&](const std::string& v, long long lo, long long hi) {
      return args.number(a, v, lo, hi);
    };
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--out") {
      o.out = value();
    } else if (a == "--count") {
      o.count = number(value(), 1, 100000000);
    } else if (a == "--seed") {
      o.seed = uint64_t(number(value(), 0, (1LL << 62)));
    } else if (a == "--height") {
      o.height = int(number(value(), 8, 512));
    } else if (a == "--max-chars") {
      o.max_chars = int(number(value(), 4, 1000));
    } else if (a == "--fonts") {
      o.fonts = value();
    } else if (a == "--name") {
      o.name = value();
      if (o.name.empty() || o.name.size() > 40 || o.name.find('/') != std::string::npos)
        usage_error("--name expects 1 to 40 characters without '/', got '" + o.name + "'");
    } else if (a == "--lines") {
      o.lines_file = value();
    } else if (a == "--font-dir") {
      o.font_dir = value();
    } else if (a == "--clean") {
      o.clean = true;
    } else if (a == "--list-fonts") {
      list = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  if (!list && o.out.empty()) usage_error("--out DIR is required");
  return o;
}

int run(int argc, char** argv) {
  bool list = false;
  Options o = parse(argc, argv, list);
  if (list) {
    for (size_t i = 0; i < kFontCount; ++i)
      std::printf("%-8s %-24s %s%s\n",
                  kFonts[i].heldout ? "heldout"
                  : kFonts[i].extra ? "extra"
                                    : "train",
                  kFonts[i].family, kFonts[i].path,
                  fs::exists(fs::path(o.font_dir) / kFonts[i].path) ? "" : "  (missing)");
    return 0;
  }
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec))
    return fail(o.out, "exists and is not a directory");

  FaceSet font_set;
  if (const int status = font_set.open("render_lines", o.fonts, o.font_dir)) return status;
  const std::vector<Face>& faces = font_set.faces();
  std::vector<std::string> given;
  if (!o.lines_file.empty()) {
    if (fs::is_directory(o.lines_file, ec)) return fail(o.lines_file, "is a directory");
    std::ifstream in(o.lines_file);
    if (!in) return fail(o.lines_file, std::strerror(errno));
    std::string l;
    while (std::getline(in, l)) {
      for (char& c : l)
        if (c < 0x20 || c > 0x7e) c = ' ';
      while (!l.empty() && l.back() == ' ') l.pop_back();
      while (!l.empty() && l.front() == ' ') l.erase(l.begin());
      if (!l.empty()) given.push_back(l);
    }
    if (in.bad()) return fail(o.lines_file, "read error");
    if (given.empty()) return fail(o.lines_file, "holds no text");
    o.count = int64_t(given.size());
  }

  const fs::path images = fs::path(o.out) / "images";
  fs::create_directories(images, ec);
  if (ec) return fail(images.string(), "cannot create directory: " + ec.message());
  const std::string manifest = (fs::path(o.out) / (o.name + ".tsv")).string();
  std::ofstream tsv(manifest);
  if (!tsv) return fail(manifest, std::strerror(errno));
  tsv << "# render_lines --fonts " << o.fonts << " --seed " << o.seed << " --height " << o.height
      << (o.clean ? " --clean" : "") << ": " << o.count << " lines\n";
  for (int64_t i = 0; i < o.count; ++i) {
    std::mt19937_64 rng(mix(o.seed * 0x100000001b3ULL + uint64_t(i)));
    TextGenerator gen(rng);
    cv::Mat img;
    std::string text;
    for (int attempt = 0; attempt < 20 && img.empty(); ++attempt) {
      text = given.empty() ? gen.line(o.max_chars) : given[size_t(i)];
      const Face& f =
          faces[size_t(std::uniform_int_distribution<size_t>(0, faces.size() - 1)(rng))];
      img = make_line(f, text, o, rng);
    }
    if (img.empty()) {
      std::fprintf(stderr, "render_lines: line %lld ('%s') could not be rendered\n", (long long)i,
                   text.c_str());
      return 1;
    }
    char file[64];
    std::snprintf(file, sizeof file, "images/%s_%06lld.png", o.name.c_str(), (long long)i);
    if (!cv::imwrite((fs::path(o.out) / file).string(), img))
      return fail((fs::path(o.out) / file).string(), "cannot write");
    tsv << file << '\t' << text << '\n';
  }
  tsv.close();
  if (!tsv) return fail(manifest, "cannot write");
  std::printf("render_lines: %lld lines in %s\n", (long long)o.count, manifest.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(argc, argv); });
}
