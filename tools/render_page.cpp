// render_page: renders pages of running text with real fonts (FreeType), clean or degraded like
// scans and photographs, with their ground truth, for the OCR benchmark (bench/run.sh ocr).
//
//   render_page --out DIR [--count N] [--seed S] [--fonts SET] [--degrade KIND] [--lines N]
//               [--name NAME] [--font-dir DIR]
//
// A page: one font of SET (as render_lines --fonts; default `heldout`, the families never used for
// training), 38–50 px per em (9–12 pt at 300 dpi; x-height about 17–26 px), N lines (default
// 20) of 40–70 printable ASCII characters of running text (words, numbers, dates, prices,
// punctuation), single column, left-aligned, black on white, line spacing 1.2–1.5 em, 2480 px wide
// (A4 at 300 dpi) and as high as its lines plus margins.
// --degrade KIND, applied to the whole page:
//   clean     none
//   rotate    rotation by 1–5 degrees either way (the canvas grows to keep the corners)
//   blur      Gaussian blur, sigma 1.2–2.0 px
//   noise     Gaussian noise, sigma 0.12–0.22 of the ink-to-paper contrast, and 0.2% speckles
//   jpeg      JPEG at quality 8–18
//   dpi150    downscaled by 2 (150 dpi)
//   combined  rotation 1–3 degrees, blur sigma 0.8–1.3, 150 dpi on every other page, noise sigma
//             0.05–0.10, JPEG quality 25–45 (in the order a scanner and its encoder apply them)
// Page i's text and font depend only on (seed, i), whatever KIND: the pages of each kind with one
// seed hold the same text, so kinds differ only by the degradation. The degradation's parameters
// depend on (seed, i, KIND).
// Output: DIR/NAME_000.png (8-bit gray), DIR/NAME_000.txt (its lines, one per line), and
// DIR/NAMEs.tsv: per page its font, size, line pitch and degradation parameters. NAME defaults to
// `page`.
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
#include <string>
#include <vector>

#include "bpkit/version.h"
#include "text_render.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

using bpkit_tools::Face;
using bpkit_tools::FaceSet;
using bpkit_tools::mix;
using bpkit_tools::render_text;
using bpkit_tools::TextGenerator;

const char* const kKinds[] = {"clean", "rotate", "blur", "noise", "jpeg", "dpi150", "combined"};
constexpr int kPageWidth = 2480, kMargin = 150;

struct Options {
  std::string out, fonts = "heldout", name = "page", degrade = "clean",
                   font_dir = "/usr/share/fonts";
  int count = 10, lines = 20;
  uint64_t seed = 1;
};

double uniform(std::mt19937_64& rng, double a, double b) {
  return std::uniform_real_distribution<double>(a, b)(rng);
}

// The page's ink coverage (0 = paper, 1 = ink) and its text lines, or an empty Mat when a line
// cannot be drawn with the page's font. `how`: the font, its size and the line pitch.
cv::Mat compose_page(const std::vector<Face>& faces, int n_lines, std::mt19937_64& rng,
                     std::vector<std::string>& text, std::string& how) {
  const Face& f = faces[size_t(std::uniform_int_distribution<size_t>(0, faces.size() - 1)(rng))];
  const int px = int(std::lround(uniform(rng, 38, 50)));
  const int pitch = int(std::lround(px * uniform(rng, 1.2, 1.5)));
  how = f.family + "\t" + fs::path(f.path).filename().string() + "\t" + std::to_string(px) + "\t" +
        std::to_string(pitch);
  TextGenerator gen(rng);
  std::vector<cv::Mat> inks;
  std::vector<int> bases;
  text.clear();
  for (int l = 0; l < n_lines; ++l) {
    cv::Mat ink;
    int base = 0, asc = 0, desc = 0;
    std::string s;
    // A line wider than the text column (wide monospaced fonts) is drawn again, shorter.
    for (int max_chars = 70; max_chars >= 40; max_chars -= 5) {
      s = gen.prose_line(40, max_chars);
      if (!render_text(f.face, s, px, ink, base, asc, desc)) return {};
      if (ink.cols - 2 * px <= kPageWidth - 2 * kMargin) break;
    }
    if (ink.cols - 2 * px > kPageWidth - 2 * kMargin) return {};
    inks.push_back(ink);
    bases.push_back(base);
    text.push_back(s);
  }
  const int height = 2 * kMargin + (n_lines - 1) * pitch + px;
  cv::Mat page = cv::Mat::zeros(height, kPageWidth, CV_32F);
  for (size_t l = 0; l < inks.size(); ++l) {
    // render_text's canvas has a margin of px on every side; its baseline is at row bases[l].
    const int baseline = kMargin + int(std::lround(0.8 * px)) + int(l) * pitch;
    const int y0 = baseline - bases[l], x0 = kMargin - px;
    for (int y = 0; y < inks[l].rows; ++y) {
      const int py = y0 + y;
      if (py < 0 || py >= page.rows) continue;
      for (int x = 0; x < inks[l].cols; ++x) {
        const int pxx = x0 + x;
        if (pxx < 0 || pxx >= page.cols) continue;
        float& dst = page.at<float>(py, pxx);
        dst = std::max(dst, inks[l].at<uint8_t>(y, x) / 255.0f);
      }
    }
  }
  return page;
}

cv::Mat rotate(const cv::Mat& img, double degrees) {
  const cv::Point2f centre(img.cols / 2.0f, img.rows / 2.0f);
  cv::Mat m = cv::getRotationMatrix2D(centre, degrees, 1.0);
  const cv::Rect2f box = cv::RotatedRect(centre, img.size(), float(degrees)).boundingRect2f();
  m.at<double>(0, 2) += box.width / 2.0 - centre.x;
  m.at<double>(1, 2) += box.height / 2.0 - centre.y;
  cv::Mat out;
  cv::warpAffine(img, out, m, cv::Size(int(std::ceil(box.width)), int(std::ceil(box.height))),
                 cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(1.0));
  return out;
}

void add_noise(cv::Mat& img, double sigma, double speckles, std::mt19937_64& rng) {
  std::normal_distribution<float> noise(0.0f, float(sigma));
  std::uniform_real_distribution<double> u(0, 1);
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      float& v = img.at<float>(y, x);
      v += noise(rng);
      if (speckles > 0 && u(rng) < speckles) v = u(rng) < 0.5 ? 0.0f : 1.0f;
    }
}

cv::Mat to_gray8(const cv::Mat& img) {
  cv::Mat out;
  img.convertTo(out, CV_8U, 255.0);  // saturates to 0..255
  return out;
}

cv::Mat jpeg(const cv::Mat& gray8, int quality) {
  std::vector<uchar> buf;
  cv::imencode(".jpg", gray8, buf, {cv::IMWRITE_JPEG_QUALITY, quality});
  return cv::imdecode(buf, cv::IMREAD_GRAYSCALE);
}

// The page as an 8-bit image (paper 255, ink 0) after the degradation KIND; `how` lists the
// operations and their parameters. (Each draw from `rng` is its own statement: the order in which
// operands are evaluated is unspecified, and the pages must not depend on the compiler.)
cv::Mat degrade(const cv::Mat& ink, const std::string& kind, std::mt19937_64& rng,
                std::string& how) {
  cv::Mat img = 1.0 - ink;  // paper 1, ink 0
  char buf[64];
  auto note = [&](const char* format, double value) {
    std::snprintf(buf, sizeof buf, format, value);
    how += how.empty() ? buf : std::string(" ") + buf;
  };
  auto turn = [&](double lo, double hi) {
    const double sign = uniform(rng, 0, 1) < 0.5 ? -1.0 : 1.0;
    const double degrees = sign * uniform(rng, lo, hi);
    note("rotate=%.2f", degrees);
    img = rotate(img, degrees);
  };
  auto blur = [&](double lo, double hi) {
    const double sigma = uniform(rng, lo, hi);
    note("blur=%.2f", sigma);
    cv::GaussianBlur(img, img, cv::Size(0, 0), sigma);
  };
  auto noise = [&](double lo, double hi, double speckles) {
    const double sigma = uniform(rng, lo, hi);
    note("noise=%.3f", sigma);
    if (speckles > 0) note("speckles=%.3f", speckles);
    add_noise(img, sigma, speckles, rng);
  };
  auto halve = [&]() {
    note("dpi=%.0f", 150);
    cv::resize(img, img, cv::Size(), 0.5, 0.5, cv::INTER_AREA);
  };
  auto jpeg_at = [&](double lo, double hi) {
    const int quality = int(std::lround(uniform(rng, lo, hi)));
    note("jpeg=%.0f", quality);
    return jpeg(to_gray8(img), quality);
  };
  if (kind == "clean") {
    how = "none";
  } else if (kind == "rotate") {
    turn(1, 5);
  } else if (kind == "blur") {
    blur(1.2, 2.0);
  } else if (kind == "noise") {
    noise(0.12, 0.22, 0.002);
  } else if (kind == "jpeg") {
    return jpeg_at(8, 18);
  } else if (kind == "dpi150") {
    halve();
  } else if (kind == "combined") {
    turn(1, 3);
    blur(0.8, 1.3);
    if (uniform(rng, 0, 1) < 0.5) halve();
    noise(0.05, 0.10, 0.0);
    return jpeg_at(25, 45);
  }
  return to_gray8(img);
}

const char kProgram[] = "render_page";

const char kUsage[] =
    "usage: render_page --out DIR [--count N] [--seed S] [--fonts SET] [--degrade KIND]\n"
    "                   [--lines N] [--name NAME] [--font-dir DIR]\n"
    "\n"
    "Renders A4 pages (300 dpi) of running text with real fonts (FreeType), clean or degraded\n"
    "like scans and photographs, with their ground truth, for the OCR benchmark (bench/run.sh\n"
    "ocr): DIR/NAME_000.png, DIR/NAME_000.txt (its lines) and DIR/NAMEs.tsv (per page its font,\n"
    "size, line pitch and degradation). Page i's text and font depend only on (seed, i).\n"
    "\n"
    "  --out DIR       output directory (created when missing)\n"
    "  --count N       number of pages, 1..100000 (default 10)\n"
    "  --seed S        seed, 0..2^62 (default 1)\n"
    "  --fonts SET     train|extra|heldout|all, font families of render_lines --list-fonts or\n"
    "                  font files, comma-separated (default heldout)\n"
    "  --degrade KIND  clean|rotate|blur|noise|jpeg|dpi150|combined (default clean)\n"
    "  --lines N       lines per page, 1..200 (default 20)\n"
    "  --name NAME     prefix of the files, at most 200 characters without '/' (default page)\n"
    "  --font-dir DIR  where the font files of the table are (default /usr/share/fonts)\n"
    "  -h, --help      this text\n"
    "  --version       the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure (missing font, unwritable output), 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int fail(const std::string& path, const std::string& why) {
  return bpkit_tools::fail(kProgram, path, why);
}

Options parse(int argc, char** argv) {
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
      o.count = int(number(value(), 1, 100000));
    } else if (a == "--seed") {
      o.seed = uint64_t(number(value(), 0, (1LL << 62)));
    } else if (a == "--lines") {
      o.lines = int(number(value(), 1, 200));
    } else if (a == "--fonts") {
      o.fonts = value();
    } else if (a == "--degrade") {
      o.degrade = value();
      if (std::find(std::begin(kKinds), std::end(kKinds), o.degrade) == std::end(kKinds))
        usage_error(
            "--degrade expects clean, rotate, blur, noise, jpeg, dpi150 or combined, got '" +
            o.degrade + "'");
    } else if (a == "--name") {
      o.name = value();
      if (o.name.empty() || o.name.size() > 200 || o.name.find('/') != std::string::npos)
        usage_error("--name expects 1 to 200 characters without '/', got '" + o.name + "'");
    } else if (a == "--font-dir") {
      o.font_dir = value();
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  if (o.out.empty()) usage_error("--out DIR is required");
  return o;
}

int run(const Options& o) {
  const auto kind = std::find(std::begin(kKinds), std::end(kKinds), o.degrade);
  std::error_code ec;
  if (fs::exists(o.out, ec) && !fs::is_directory(o.out, ec))
    return fail(o.out, "exists and is not a directory");
  FaceSet font_set;
  if (const int status = font_set.open("render_page", o.fonts, o.font_dir)) return status;
  fs::create_directories(o.out, ec);
  if (ec) return fail(o.out, "cannot create directory: " + ec.message());
  const uint64_t kind_index = uint64_t(kind - std::begin(kKinds));
  const std::string index_path = (fs::path(o.out) / (o.name + "s.tsv")).string();
  std::ofstream index(index_path);
  if (!index) return fail(index_path, std::strerror(errno));
  index << "# page\tfont family\tfont file\tpx per em\tline pitch px\tdegradation\n";
  for (int i = 0; i < o.count; ++i) {
    const uint64_t page_seed = mix(o.seed * 0x100000001b3ULL + uint64_t(i));
    std::mt19937_64 rng(page_seed);
    std::vector<std::string> text;
    std::string layout, how;
    cv::Mat ink;
    for (int attempt = 0; attempt < 20 && ink.empty(); ++attempt)
      ink = compose_page(font_set.faces(), o.lines, rng, text, layout);
    if (ink.empty()) {
      std::fprintf(stderr, "render_page: page %d could not be rendered with --fonts %s\n", i,
                   o.fonts.c_str());
      return 1;
    }
    std::mt19937_64 degrade_rng(mix(page_seed + 0x51ed27ULL * (kind_index + 1)));
    const cv::Mat img = degrade(ink, o.degrade, degrade_rng, how);
    char stem[256];
    std::snprintf(stem, sizeof stem, "%s_%03d", o.name.c_str(), i);
    const fs::path png = fs::path(o.out) / (std::string(stem) + ".png");
    const fs::path txt = fs::path(o.out) / (std::string(stem) + ".txt");
    if (!cv::imwrite(png.string(), img)) return fail(png.string(), "cannot write");
    std::ofstream out(txt);
    if (!out) return fail(txt.string(), std::strerror(errno));
    for (const std::string& l : text) out << l << '\n';
    out.close();
    if (!out) return fail(txt.string(), "cannot write");
    index << stem << '\t' << layout << '\t' << how << '\n';
  }
  index.close();
  if (!index) return fail(index_path, "cannot write");
  std::printf("render_page: %d %s pages in %s\n", o.count, o.degrade.c_str(), o.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(parse(argc, argv)); });
}
