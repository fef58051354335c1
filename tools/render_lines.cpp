// render_lines: renders text lines with real fonts (FreeType) into PNG images for training and
// testing line recognizers, with a manifest of "images/NAME.png<TAB>transcript" lines.
//
//   render_lines --out DIR [--count N] [--seed S] [--height H] [--fonts SET] [--name NAME]
//                [--clean] [--lines FILE] [--font-dir DIR] [--list-fonts]
//
// --fonts: `train` (default), `heldout` (families never used for training, to measure how the
// recognizer generalizes to unseen typefaces), `all`, or a comma-separated list of family names
// from --list-fonts (or font file paths). Text: printable ASCII (0x20–0x7e) from a built-in
// generator (words, capitalized words, numbers, dates, prices, punctuation, random strings), or
// the lines of --lines FILE. Images are H pixels high (default 32), dark text on a light
// background, width following the text. Augmentation (unless --clean): font size (the line is
// rendered at 0.7–1.6× its final size and resampled), horizontal stretch, stroke thickness
// (dilation/erosion), small rotation, blur, uneven background, ink contrast, noise and JPEG
// artefacts. Sample i depends only on (seed, i): the same seed gives the same files.
// Output: DIR/images/NAME_000000.png ... and DIR/NAME.tsv (NAME defaults to `lines`).
#include <ft2build.h>
#include FT_FREETYPE_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

// The font table: Debian packages, families and their use. Held-out families share no design with
// a training family (Arimo/Tinos/Cousine are metric clones of Liberation, so they train).
struct FontFile {
  const char* family;
  const char* path;  // relative to --font-dir
  bool heldout;
};

const FontFile kFonts[] = {
    // fonts-dejavu-core, fonts-dejavu-extra
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-Bold.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-Oblique.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-BoldOblique.ttf", false},
    {"DejaVu Sans Condensed", "truetype/dejavu/DejaVuSansCondensed.ttf", false},
    {"DejaVu Sans Condensed", "truetype/dejavu/DejaVuSansCondensed-Bold.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif-Bold.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif-Italic.ttf", false},
    {"DejaVu Serif Condensed", "truetype/dejavu/DejaVuSerifCondensed.ttf", false},
    {"DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono.ttf", false},
    {"DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono-Bold.ttf", false},
    // fonts-liberation2
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Regular.ttf", false},
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Bold.ttf", false},
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Italic.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Regular.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Bold.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Italic.ttf", false},
    {"Liberation Mono", "truetype/liberation2/LiberationMono-Regular.ttf", false},
    {"Liberation Mono", "truetype/liberation2/LiberationMono-Bold.ttf", false},
    // fonts-freefont-ttf
    {"FreeSans", "truetype/freefont/FreeSans.ttf", false},
    {"FreeSans", "truetype/freefont/FreeSansBold.ttf", false},
    {"FreeSans", "truetype/freefont/FreeSansOblique.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerif.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerifBold.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerifItalic.ttf", false},
    {"FreeMono", "truetype/freefont/FreeMono.ttf", false},
    {"FreeMono", "truetype/freefont/FreeMonoBold.ttf", false},
    // fonts-croscore
    {"Arimo", "truetype/croscore/Arimo-Regular.ttf", false},
    {"Tinos", "truetype/croscore/Tinos-Regular.ttf", false},
    {"Cousine", "truetype/croscore/Cousine-Regular.ttf", false},
    // fonts-urw-base35
    {"Nimbus Sans", "opentype/urw-base35/NimbusSans-Regular.otf", false},
    {"Nimbus Sans", "opentype/urw-base35/NimbusSans-Bold.otf", false},
    {"Nimbus Sans Narrow", "opentype/urw-base35/NimbusSansNarrow-Regular.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Regular.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Bold.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Italic.otf", false},
    {"Nimbus Mono PS", "opentype/urw-base35/NimbusMonoPS-Regular.otf", false},
    {"Nimbus Mono PS", "opentype/urw-base35/NimbusMonoPS-Bold.otf", false},
    {"URW Bookman", "opentype/urw-base35/URWBookman-Light.otf", false},
    {"URW Bookman", "opentype/urw-base35/URWBookman-Demi.otf", false},
    // Held out: never rendered for training.
    {"Carlito", "truetype/crosextra/Carlito-Regular.ttf", true},  // fonts-crosextra-carlito
    {"Carlito", "truetype/crosextra/Carlito-Bold.ttf", true},
    {"Carlito", "truetype/crosextra/Carlito-Italic.ttf", true},
    {"Caladea", "truetype/crosextra/Caladea-Regular.ttf", true},  // fonts-crosextra-caladea
    {"Caladea", "truetype/crosextra/Caladea-Bold.ttf", true},
    {"C059", "opentype/urw-base35/C059-Roman.otf", true},  // fonts-urw-base35
    {"C059", "opentype/urw-base35/C059-Italic.otf", true},
    {"P052", "opentype/urw-base35/P052-Roman.otf", true},
    {"P052", "opentype/urw-base35/P052-Bold.otf", true},
    {"URW Gothic", "opentype/urw-base35/URWGothic-Book.otf", true},
    {"URW Gothic", "opentype/urw-base35/URWGothic-Demi.otf", true},
    {"Noto Sans Mono", "truetype/noto/NotoSansMono-Regular.ttf", true},  // fonts-noto-mono
    {"Noto Sans Mono", "truetype/noto/NotoSansMono-Bold.ttf", true},
};

const char* const kWords[] = {
    "the",         "of",        "and",       "to",          "in",        "is",        "that",
    "for",         "it",        "as",        "was",         "with",      "be",        "by",
    "on",          "not",       "he",        "this",        "are",       "or",        "his",
    "from",        "at",        "which",     "but",         "have",      "an",        "had",
    "they",        "you",       "were",      "their",       "one",       "all",       "we",
    "can",         "her",       "has",       "there",       "been",      "if",        "more",
    "when",        "will",      "would",     "who",         "so",        "no",        "time",
    "people",      "year",      "way",       "day",         "man",       "thing",     "woman",
    "life",        "child",     "world",     "school",      "state",     "family",    "student",
    "group",       "country",   "problem",   "hand",        "part",      "place",     "case",
    "week",        "company",   "system",    "program",     "question",  "work",      "government",
    "number",      "night",     "point",     "home",        "water",     "room",      "mother",
    "area",        "money",     "story",     "fact",        "month",     "lot",       "right",
    "study",       "book",      "eye",       "job",         "word",      "business",  "issue",
    "side",        "kind",      "head",      "house",       "service",   "friend",    "father",
    "power",       "hour",      "game",      "line",        "end",       "member",    "law",
    "car",         "city",      "community", "name",        "president", "team",      "minute",
    "idea",        "kid",       "body",      "information", "back",      "parent",    "face",
    "others",      "level",     "office",    "door",        "health",    "person",    "art",
    "war",         "history",   "party",     "result",      "change",    "morning",   "reason",
    "research",    "girl",      "guy",       "moment",      "air",       "teacher",   "force",
    "education",   "quickly",   "brown",     "fox",         "jumps",     "over",      "lazy",
    "dog",         "zebra",     "quartz",    "jackdaws",    "love",      "my",        "big",
    "sphinx",      "vow",       "judge",     "quiz",        "wizard",    "oxygen",    "jazz",
    "pixel",       "query",     "yellow",    "velvet",      "kayak",     "fjord",     "network",
    "recognition", "character", "printed",   "text",        "scanner",   "page",      "paragraph",
    "total",       "invoice",   "address",   "street",      "avenue",    "phone",     "email",
    "date",        "amount",    "between",   "through",     "during",    "without",   "against",
    "under",       "around",    "among",     "however",     "therefore", "although",  "because",
    "important",   "different", "following", "national",    "possible",  "available", "American",
    "English",     "London",    "Paris",     "Monday",      "January",   "Dr",        "Mr",
    "Mrs",         "St",        "Inc",       "Ltd",         "No",        "vs",        "etc",
    "e.g",         "i.e",       "OK",        "USA",         "EU",        "ID",        "PDF",
    "HTML",        "Q3",        "B2B",       "x86",         "CO2",       "kg",        "km",
    "mm",          "MHz",       "GB"};

// splitmix64: the per-sample seed from (seed, index).
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

class TextGenerator {
 public:
  explicit TextGenerator(std::mt19937_64& rng) : rng_(rng) {}

  // One line of 1–max_chars printable ASCII characters, no leading, trailing or double spaces.
  std::string line(int max_chars) {
    std::string s;
    const int target = int(uniform(4, double(max_chars)));
    const bool random_chars = chance(0.12);
    while (int(s.size()) < target) {
      if (!s.empty()) s += ' ';
      s += random_chars ? random_string() : token();
    }
    if (int(s.size()) > max_chars) s.resize(size_t(max_chars));
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  }

 private:
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int below(int n) { return int(std::uniform_int_distribution<int>(0, n - 1)(rng_)); }
  bool chance(double p) { return uniform(0, 1) < p; }

  std::string digits(int n) {
    std::string s;
    for (int i = 0; i < n; ++i) s += char('0' + below(10));
    return s;
  }

  std::string number() {
    switch (below(8)) {
      case 0:
        return digits(1 + below(4));
      case 1:
        return digits(1 + below(3)) + "." + digits(1 + below(3));
      case 2:
        return "$" + digits(1 + below(3)) + "." + digits(2);
      case 3:
        return digits(1 + below(2)) + "%";
      case 4:
        return std::to_string(1 + below(28)) + "/" + std::to_string(1 + below(12)) + "/" +
               std::to_string(1950 + below(80));
      case 5:
        return digits(3) + "-" + digits(4);
      case 6:
        return std::to_string(1 + below(9)) + "," + digits(3);
      default:
        return "#" + digits(1 + below(3));
    }
  }

  std::string word() {
    std::string w = kWords[below(int(sizeof kWords / sizeof kWords[0]))];
    const double r = uniform(0, 1);
    if (r < 0.2)
      w[0] = char(std::toupper(static_cast<unsigned char>(w[0])));
    else if (r < 0.25)
      for (char& c : w) c = char(std::toupper(static_cast<unsigned char>(c)));
    return w;
  }

  std::string token() {
    std::string t = chance(0.2) ? number() : word();
    if (chance(0.08)) {
      static const char* const wraps[][2] = {{"(", ")"}, {"\"", "\""}, {"'", "'"},
                                             {"[", "]"}, {"<", ">"},   {"{", "}"}};
      const auto& w = wraps[below(6)];
      t = std::string(w[0]) + t + w[1];
    }
    if (chance(0.25)) {
      static const char kEnd[] = ".,;:!?.,";
      t += kEnd[below(int(sizeof kEnd) - 1)];
    } else if (chance(0.05)) {
      static const char* const kJoin[] = {"-", "/", "&", "+",  "=", "*", "_",
                                          "@", "~", "|", "\\", "^", "`"};
      t += kJoin[below(13)];
      t += word();
    }
    return t;
  }

  std::string random_string() {
    std::string s;
    const int n = 1 + below(8);
    for (int i = 0; i < n; ++i) s += char(0x21 + below(0x7e - 0x21 + 1));
    return s;
  }

  std::mt19937_64& rng_;
};

struct Face {
  std::string family, path;
  FT_Face face = nullptr;
};

// Renders `text` with `face` at `px` pixels per em into an 8-bit canvas (0 = background, 255 =
// ink). Returns false when a character has no glyph. The canvas spans the font's ascender to
// descender (so lines of one font and size have the same vertical extent whatever their
// characters), plus the ink that overhangs it, and the text's advance width.
bool render_text(FT_Face face, const std::string& text, int px, cv::Mat& out, int& baseline_top,
                 int& ascender_px, int& descender_px) {
  if (FT_Set_Pixel_Sizes(face, 0, FT_UInt(px))) return false;
  const int asc = int(face->size->metrics.ascender >> 6);
  const int desc = int(-face->size->metrics.descender >> 6);
  // Generous canvas: overhangs of italics and accents stay inside.
  const int margin = px;
  int width = 0;
  {
    FT_UInt prev = 0;
    for (char ch : text) {
      const FT_UInt gi = FT_Get_Char_Index(face, FT_ULong(static_cast<unsigned char>(ch)));
      if (gi == 0 && ch != ' ') return false;
      if (prev && gi && FT_HAS_KERNING(face)) {
        FT_Vector k;
        FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k);
        width += int(k.x >> 6);
      }
      if (FT_Load_Glyph(face, gi, FT_LOAD_DEFAULT)) return false;
      width += int(face->glyph->advance.x >> 6);
      prev = gi;
    }
  }
  const int H = asc + desc + 2 * margin, W = std::max(1, width) + 2 * margin;
  out = cv::Mat::zeros(H, W, CV_8U);
  const int base = margin + asc;
  int pen = margin;
  FT_UInt prev = 0;
  for (char ch : text) {
    const FT_UInt gi = FT_Get_Char_Index(face, FT_ULong(static_cast<unsigned char>(ch)));
    if (prev && gi && FT_HAS_KERNING(face)) {
      FT_Vector k;
      FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k);
      pen += int(k.x >> 6);
    }
    if (FT_Load_Glyph(face, gi, FT_LOAD_RENDER)) return false;
    const FT_GlyphSlot g = face->glyph;
    const FT_Bitmap& bm = g->bitmap;
    for (unsigned r = 0; r < bm.rows; ++r)
      for (unsigned c = 0; c < bm.width; ++c) {
        const int y = base - g->bitmap_top + int(r), x = pen + g->bitmap_left + int(c);
        if (y < 0 || y >= H || x < 0 || x >= W) continue;
        uint8_t& dst = out.at<uint8_t>(y, x);
        dst = std::max(dst, bm.buffer[int(r) * bm.pitch + int(c)]);
      }
    pen += int(g->advance.x >> 6);
    prev = gi;
  }
  baseline_top = base;
  ascender_px = asc;
  descender_px = desc;
  return true;
}

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

int usage() {
  std::fprintf(stderr,
               "usage: render_lines --out DIR [--count N] [--seed S] [--height H] [--fonts "
               "train|heldout|all|FAMILY,...] [--name NAME] [--clean] [--lines FILE] "
               "[--max-chars N] [--font-dir DIR] [--list-fonts]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "render_lines: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](const std::string& v, long long lo, long long hi) {
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end || n < lo || n > hi) {
        std::fprintf(stderr, "render_lines: %s expects a number in %lld..%lld, got '%s'\n",
                     a.c_str(), lo, hi, v.c_str());
        std::exit(2);
      }
      return n;
    };
    if (a == "--out")
      o.out = value();
    else if (a == "--count")
      o.count = number(value(), 1, 100000000);
    else if (a == "--seed")
      o.seed = uint64_t(number(value(), 0, (1LL << 62)));
    else if (a == "--height")
      o.height = int(number(value(), 8, 512));
    else if (a == "--max-chars")
      o.max_chars = int(number(value(), 4, 1000));
    else if (a == "--fonts")
      o.fonts = value();
    else if (a == "--name")
      o.name = value();
    else if (a == "--lines")
      o.lines_file = value();
    else if (a == "--font-dir")
      o.font_dir = value();
    else if (a == "--clean")
      o.clean = true;
    else if (a == "--list-fonts")
      list = true;
    else
      return usage();
  }
  if (list) {
    for (const FontFile& f : kFonts)
      std::printf("%-8s %-24s %s%s\n", f.heldout ? "heldout" : "train", f.family, f.path,
                  fs::exists(fs::path(o.font_dir) / f.path) ? "" : "  (missing)");
    return 0;
  }
  if (o.out.empty()) return usage();

  // The fonts of the chosen set.
  std::vector<std::pair<std::string, std::string>> chosen;  // family, file
  if (o.fonts == "train" || o.fonts == "heldout" || o.fonts == "all") {
    for (const FontFile& f : kFonts)
      if (o.fonts == "all" || f.heldout == (o.fonts == "heldout"))
        chosen.emplace_back(f.family, (fs::path(o.font_dir) / f.path).string());
  } else {
    std::stringstream ss(o.fonts);
    std::string item;
    while (std::getline(ss, item, ',')) {
      bool found = false;
      for (const FontFile& f : kFonts)
        if (item == f.family) {
          chosen.emplace_back(f.family, (fs::path(o.font_dir) / f.path).string());
          found = true;
        }
      if (!found && fs::exists(item)) {
        chosen.emplace_back(fs::path(item).stem().string(), item);
        found = true;
      }
      if (!found) {
        std::fprintf(stderr,
                     "render_lines: '%s' is neither a font family of --list-fonts nor a font "
                     "file\n",
                     item.c_str());
        return 2;
      }
    }
  }
  FT_Library ft;
  if (FT_Init_FreeType(&ft)) {
    std::fprintf(stderr, "render_lines: cannot initialize FreeType\n");
    return 1;
  }
  std::vector<Face> faces;
  for (const auto& [family, path] : chosen) {
    Face f{family, path};
    if (FT_New_Face(ft, path.c_str(), 0, &f.face)) {
      std::fprintf(stderr,
                   "render_lines: cannot load font '%s' (%s); install the font packages "
                   "(tools/setup.sh) or choose others with --fonts\n",
                   path.c_str(), family.c_str());
      return 1;
    }
    faces.push_back(f);
  }
  if (faces.empty()) {
    std::fprintf(stderr, "render_lines: no fonts chosen\n");
    return 2;
  }
  std::vector<std::string> given;
  if (!o.lines_file.empty()) {
    std::ifstream in(o.lines_file);
    if (!in) {
      std::fprintf(stderr, "render_lines: cannot read '%s'\n", o.lines_file.c_str());
      return 1;
    }
    std::string l;
    while (std::getline(in, l)) {
      for (char& c : l)
        if (c < 0x20 || c > 0x7e) c = ' ';
      while (!l.empty() && l.back() == ' ') l.pop_back();
      while (!l.empty() && l.front() == ' ') l.erase(l.begin());
      if (!l.empty()) given.push_back(l);
    }
    if (given.empty()) {
      std::fprintf(stderr, "render_lines: '%s' holds no text\n", o.lines_file.c_str());
      return 1;
    }
    o.count = int64_t(given.size());
  }

  std::error_code ec;
  fs::create_directories(fs::path(o.out) / "images", ec);
  if (ec) {
    std::fprintf(stderr, "render_lines: cannot create '%s': %s\n", o.out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  const std::string manifest = (fs::path(o.out) / (o.name + ".tsv")).string();
  std::ofstream tsv(manifest);
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
    if (!cv::imwrite((fs::path(o.out) / file).string(), img)) {
      std::fprintf(stderr, "render_lines: cannot write '%s'\n",
                   (fs::path(o.out) / file).string().c_str());
      return 1;
    }
    tsv << file << '\t' << text << '\n';
  }
  tsv.close();
  if (!tsv) {
    std::fprintf(stderr, "render_lines: cannot write '%s'\n", manifest.c_str());
    return 1;
  }
  for (Face& f : faces) FT_Done_Face(f.face);
  FT_Done_FreeType(ft);
  std::printf("render_lines: %lld lines in %s\n", (long long)o.count, manifest.c_str());
  return 0;
}
