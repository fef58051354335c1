// ocr_app: the text of printed pages, with the shipped line recognizer (models/ocr) or another
// model directory; single handwritten characters with --mode char (models/digits).
//
//   ocr_app [--model DIR] [--mode page|line|char] [--json] [--overlay OUT.png] [--threads N]
//           [--dict FILE|none] [--dict-cost X] [--plugin-path DIR]... [--trust-model-plugins]
//           IMAGE...
//
// page (default): the page is cut into text lines (DIR/page.yaml when the model has one, else
// image.read, image.gray, image.lines), each line goes through the recognizer's own pipeline from
// its first image stage on, words not in the dictionary are corrected where the scores allow, and
// the lines' text is printed top to bottom. line: the image is one text line. char: the image is
// one character, classified by a class model. Exit codes: 0 success, 1 an image could not be read
// or recognized (the others are still processed), 2 usage or model errors.
#if __has_include(<malloc.h>)
#include <malloc.h>  // mallopt (glibc)
#endif

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/model_file.h"
#include "bpkit/pipeline.h"
#include "bpkit/threading.h"
#include "bpkit/train.h"
#include "bpkit/version.h"
#include "cli.h"
#include "overlay.h"
#include "stdin_input.h"

namespace fs = std::filesystem;
using bpkit::cli::UsageError;

namespace {

const char* kUsage =
    "usage: ocr_app [options] IMAGE...\n"
    "\n"
    "Prints the text of each image, its lines top to bottom; with several images, a line\n"
    "'==> IMAGE <==' before each one's text. Images: PNG, JPEG, TIFF, BMP, PNM, WebP (8/16-bit,\n"
    "gray, color or alpha). An IMAGE of '-' is read from standard input.\n"
    "\n"
    "  --model DIR        a model directory (default: the shipped 'ocr' model, 'digits' with\n"
    "                     --mode char)\n"
    "  --mode MODE        page (default): find the text lines of a page and read each one;\n"
    "                     line: the image is a single text line;\n"
    "                     char: the image is a single character (printed: class, confidence);\n"
    "                     dark-on-light and light-on-dark characters are both accepted\n"
    "  --json             one JSON object per image (JSON Lines): file, width, height and the\n"
    "                     lines with box {x, y, width, height} in image pixels, text and\n"
    "                     confidence (that of the line's least certain character); in char mode\n"
    "                     the class, its confidence and the five most likely classes\n"
    "  --overlay OUT.png  draw the line boxes on the image and the recognized text beside it;\n"
    "                     OUT may be a directory (OUT/NAME.overlay.png), and must be one with\n"
    "                     several images\n"
    "  --threads N        threads (default: BPKIT_NUM_THREADS or all cores)\n"
    "  --dict FILE        the word list (one word per line) that corrects words it does not\n"
    "                     hold, where the recognizer's scores allow it (default:\n"
    "                     /usr/share/dict/american-english, Debian's wamerican, when installed);\n"
    "                     'none' reads without one\n"
    "  --dict-cost X      how much less probable (in nats) a word of the list may be than the\n"
    "                     word read and still replace it (default 3)\n"
    "  --plugin-path DIR  more plugin libraries (repeatable)\n"
    "  --trust-model-plugins\n"
    "                     also load plugins from the directories the model's pipeline.yaml\n"
    "                     and page.yaml name (plugin_path): native code chosen by the model\n"
    "                     (docs/security.md)\n"
    "  --version          the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Lines found on a page that hold no letter or digit, mostly doubtful punctuation, or at\n"
    "most 3 doubtful characters are dropped (specks, rules, picture edges). '--' ends the\n"
    "options.\n"
    "\n"
    "Exit codes: 0 success; 1 an image could not be read or recognized (the error names it, the\n"
    "other images are still processed; with --json it also gets a {\"file\", \"error\"} record)\n"
    "or the output could not be written; 2 usage or model errors. A page without text prints\n"
    "nothing and exits 0; --mode char on an image without contrast is an error.\n";

// The word list ocr_app corrects words with unless told otherwise (Debian's wamerican).
const char* const kDefaultDictionary = "/usr/share/dict/american-english";

// The page layout used when the model directory has no page.yaml: noisy pages (estimated noise
// sigma above 0.02; clean, blurred and JPEG pages measure 0-0.017, pages with grain 0.035 and
// more) get a 3x3 median first, which the line finder and the recognizer both need there.
const char* kDefaultLayout =
    "name: page_layout\n"
    "stages:\n"
    "  - image.read\n"
    "  - image.gray\n"
    "  - plugin: image.denoise\n"
    "    params: {method: median, size: 3, only_above: 0.02}\n"
    "  - image.lines\n";

// Whether a line found on a page is text. Specks, rules, picture edges and textures come out as
// short or punctuation-heavy strings the recognizer doubts; so a line is dropped when it holds no
// letter or digit, when fewer than half of its visible characters are letters or digits and one
// character is doubtful (confidence below 0.6), or when it has at most 3 visible characters and
// one is more doubtful still (below 0.5). Printed text has a few percent of punctuation;
// "x = (a+b)/2" or a page number, read with confidence, stays.
bool looks_like_text(const std::string& s, double confidence) {
  size_t alnum = 0, visible = 0;
  for (char c : s) {
    if (c == ' ') continue;
    ++visible;
    if (std::isalnum(static_cast<unsigned char>(c))) ++alnum;
  }
  if (alnum == 0) return false;
  if (2 * alnum < visible && confidence < 0.6) return false;
  return visible > 3 || confidence >= 0.5;
}

// Lines narrower than the recognizer's pooling windows (a speck, a 1-pixel-wide crop) get blank
// columns on the right, as shorter lines of a training batch do.
constexpr int64_t kMinLineColumns = 16;
void pad_columns(bpkit::Tensor<float>& f) {
  if (f.rank() != 3 || f.dim(2) >= kMinLineColumns) return;
  bpkit::Tensor<float> p({f.dim(0), f.dim(1), kMinLineColumns});
  std::fill(p.data(), p.data() + p.size(), 0.0f);
  for (int64_t r = 0; r < f.dim(0) * f.dim(1); ++r)
    std::copy(f.data() + r * f.dim(2), f.data() + (r + 1) * f.dim(2),
              p.data() + r * kMinLineColumns);
  f = std::move(p);
}

// The length of the valid UTF-8 sequence starting at s[i], or 0 when the bytes there are not one.
size_t utf8_length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((b(i + k) >> 6) != 2) return 0;
  return n;
}

// Appends s as a JSON string: quotes, backslashes and control characters escaped, bytes that are
// not UTF-8 (a file name in another encoding) replaced by U+FFFD, so the output is always JSON.
void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_length(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      out += b;
    } else {
      out.append(s, i, n);
    }
    i += n;
  }
  out += '"';
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.4f", v);
  return b;
}

bpkit::Value file_value(const std::string& file) {
  bpkit::Value v;
  v.kind = bpkit::Kind::kFile;
  v.path = file;
  return v;
}

struct Line {
  bpkit::Box box;
  std::string text;
  double confidence = 0;
};

std::string trim(const std::string& s) {
  const size_t a = s.find_first_not_of(' ');
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(' ') - a + 1);
}

// An engine image (1 gray, 2 gray + alpha, 3 BGR, 4 BGRA channels) as an 8-bit BGR picture for
// drawing; transparent pixels over white.
cv::Mat to_bgr8(const bpkit::Image& im) {
  const int c = im.channels;
  if (c < 1 || c > 4 || im.pixels.size() != size_t(im.width) * size_t(im.height) * size_t(c))
    throw std::invalid_argument("an image of " + std::to_string(c) + " channels cannot be drawn");
  cv::Mat f(im.height, im.width, CV_32FC(c), const_cast<float*>(im.pixels.data()));
  cv::Mat color = f;
  if (c == 2 || c == 4) {  // composite over white
    std::vector<cv::Mat> ch;
    cv::split(f, ch);
    const cv::Mat alpha = ch.back();
    ch.pop_back();
    for (cv::Mat& x : ch) x = x.mul(alpha) + (1.0 - alpha);
    cv::merge(ch, color);
  }
  cv::Mat u8, bgr;
  color.convertTo(u8, CV_8U, 255.0);
  if (u8.channels() == 1)
    cv::cvtColor(u8, bgr, cv::COLOR_GRAY2BGR);
  else
    bgr = u8;
  return bgr;
}

// The overlay (overlay.h) of `page` and its lines, written atomically to `path`.
void write_overlay(const std::string& path, const bpkit::Image& page,
                   const std::vector<Line>& lines) {
  std::vector<bpkit_apps::OverlayLine> ol;
  for (const Line& l : lines) ol.push_back({l.box, l.text, l.confidence});
  std::vector<uchar> png;
  if (!cv::imencode(".png", bpkit_apps::draw_overlay(to_bgr8(page), ol), png))
    throw bpkit::FileError(path + ": cannot encode the overlay");
  bpkit::write_file_atomically(path, std::string(png.begin(), png.end()));
}

// Reads the text lines of one image.
class PageReader {
 public:
  PageReader(bpkit::TrainedModel& model, const std::string& model_dir,
             const std::vector<std::string>& plugin_dirs, bool trust_model_plugins, bool whole_line)
      : model_(model), whole_line_(whole_line) {
    if (!model.transcripts())
      throw bpkit::ConfigError(model_dir +
                               ": a class model, not a text recognizer (use --mode char)");
    line_first_ = model.pipeline().first_consuming(bpkit::Kind::kImage);
    if (line_first_ >= model.pipeline().size())
      throw bpkit::ConfigError(model_dir + "/" + bpkit::kPipelineFile +
                               ": no stage takes an image, so text lines cannot be fed to it");
    const fs::path page_file = fs::path(model_dir) / "page.yaml";
    bpkit::PipelineConfig cfg =
        fs::exists(page_file)
            ? bpkit::load_pipeline_config(page_file.string(), false)
            : bpkit::parse_pipeline_config(kDefaultLayout, "(built-in page layout)", ".", false);
    bpkit::load_model_plugins(registry_, cfg, plugin_dirs, trust_model_plugins);
    layout_ = std::make_unique<bpkit::Pipeline>(cfg, registry_, false);
    if (layout_->output_kind() != bpkit::Kind::kImageList)
      throw bpkit::ConfigError(cfg.file +
                               ": a page layout must end in a stage producing an "
                               "image_list (the text lines), e.g. image.lines");
    page_first_ = layout_->first_consuming(bpkit::Kind::kImage);
  }

  // The page as read (for overlays) and its recognized lines, top to bottom.
  std::vector<Line> read(const std::string& file, bpkit::Image& page) {
    bpkit::Value lines;
    if (whole_line_) {
      // The recognizer's own pipeline up to its first image stage reads the file.
      page = model_.pipeline().run(file_value(file), 0, line_first_).image;
      lines.images.push_back(page);
      lines.boxes.push_back({0, 0, page.width, page.height});
    } else {
      bpkit::Value v = layout_->run(file_value(file), 0, page_first_);
      if (v.kind == bpkit::Kind::kImage) page = v.image;
      lines = layout_->run(std::move(v), page_first_);
    }
    const size_t n = lines.images.size();
    std::vector<bpkit::Tensor<float>> feats(n);
    std::vector<std::string> errors(n);
    bpkit::parallel_for(int64_t(n), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        try {
          bpkit::Value lv;
          lv.kind = bpkit::Kind::kImage;
          lv.path = file;
          lv.image = std::move(lines.images[size_t(i)]);
          feats[size_t(i)] = model_.pipeline().run(std::move(lv), line_first_).tensor;
          pad_columns(feats[size_t(i)]);
        } catch (const std::exception& ex) {
          errors[size_t(i)] = ex.what();
        }
      }
    });
    for (size_t i = 0; i < n; ++i)
      if (!errors[i].empty()) {
        std::string e = errors[i];
        if (e.rfind(file + ": ", 0) == 0) e = e.substr(file.size() + 2);
        throw bpkit::StageError(file + ": line " + std::to_string(i + 1) + ": " + e, file);
      }
    const auto preds = model_.predict(feats);
    std::vector<Line> out;
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(preds[i].confidence))
        throw bpkit::StageError(file + ": line " + std::to_string(i + 1) +
                                    ": the recognizer's scores are not finite (non-finite pixels?)",
                                file);
      Line l;
      l.box = i < lines.boxes.size() ? lines.boxes[i] : bpkit::Box{};
      l.text = trim(preds[i].name);
      l.confidence = preds[i].confidence;
      // A whole-image line is the user's: only lines found on a page are judged.
      if (whole_line_ ? !l.text.empty() : looks_like_text(l.text, l.confidence))
        out.push_back(std::move(l));
    }
    return out;
  }

 private:
  bpkit::TrainedModel& model_;
  bool whole_line_;
  bpkit::PluginRegistry registry_;
  std::unique_ptr<bpkit::Pipeline> layout_;
  size_t line_first_ = 0, page_first_ = 0;
};

// Classifies single characters. Class models here are trained on light characters on a dark
// background (as OpenCV's digits.png): an image whose border is light is inverted first.
class CharReader {
 public:
  CharReader(bpkit::TrainedModel& model, const std::string& model_dir) : model_(model) {
    if (model.transcripts())
      throw bpkit::ConfigError(model_dir +
                               ": a text-line recognizer, not a class model (use --mode page or "
                               "--mode line)");
    first_ = model.pipeline().first_consuming(bpkit::Kind::kImage);
  }

  bpkit::TrainedModel::Prediction read(const std::string& file, bpkit::Image& image) {
    bpkit::Value v = model_.pipeline().run(file_value(file), 0, first_);
    if (v.kind == bpkit::Kind::kImage) {
      image = v.image;
      if (contrast(v.image) < 0.1)
        throw bpkit::StageError(file + ": no character (the image has no contrast)", file);
      if (border_is_light(v.image)) invert(v.image);
    }
    const bpkit::Value f = model_.pipeline().run(std::move(v), first_);
    std::vector<bpkit::Tensor<float>> one(1, f.tensor);
    auto p = model_.predict(one)[0];
    if (!std::isfinite(p.confidence))
      throw bpkit::StageError(
          file + ": the classifier's scores are not finite (non-finite pixels?)", file);
    return p;
  }

 private:
  static double gray_at(const bpkit::Image& im, int x, int y) {
    const float* p = im.pixels.data() + (size_t(y) * size_t(im.width) + size_t(x)) * im.channels;
    const int c = std::min(im.channels, 3);
    double s = 0;
    for (int k = 0; k < c; ++k) s += p[k];
    return s / c;
  }
  // The range of gray levels (0 for a blank image, 1 for black on white).
  static double contrast(const bpkit::Image& im) {
    double lo = 1e300, hi = -1e300;
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < im.width; ++x) {
        const double g = gray_at(im, x, y);
        lo = std::min(lo, g);
        hi = std::max(hi, g);
      }
    return im.width > 0 && im.height > 0 ? hi - lo : 0;
  }
  static bool border_is_light(const bpkit::Image& im) {
    double s = 0;
    int n = 0;
    for (int x = 0; x < im.width; ++x) {
      s += gray_at(im, x, 0) + gray_at(im, x, im.height - 1);
      n += 2;
    }
    for (int y = 0; y < im.height; ++y) {
      s += gray_at(im, 0, y) + gray_at(im, im.width - 1, y);
      n += 2;
    }
    return n > 0 && s / n > 0.5;
  }
  static void invert(bpkit::Image& im) {
    const int c = std::min(im.channels, 3);  // alpha stays
    for (size_t i = 0; i < im.pixels.size(); i += size_t(im.channels))
      for (int k = 0; k < c; ++k) im.pixels[i + size_t(k)] = 1.f - im.pixels[i + size_t(k)];
  }

  bpkit::TrainedModel& model_;
  size_t first_ = 0;
};

int run(int argc, char** argv) {
  std::vector<std::string> files;
  std::multimap<std::string, std::string> all;
  auto o = bpkit::cli::parse_options(
      argc, argv, 1, {"model", "mode", "overlay", "threads", "plugin-path", "dict", "dict-cost"},
      files, {"json", "help", "trust-model-plugins"}, &all);
  if (o.count("help")) return std::printf("%s", kUsage), 0;
  if (files.empty()) throw UsageError("no image given");
  std::unique_ptr<bpkit_apps::StdinInput> stdin_copy;
  try {
    stdin_copy = std::make_unique<bpkit_apps::StdinInput>(files);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const std::string mode = o.count("mode") ? o["mode"] : "page";
  if (mode != "page" && mode != "line" && mode != "char")
    throw UsageError("--mode expects page, line or char, got '" + mode + "'");
  const bool json = o.count("json") > 0;
  const std::string overlay = o.count("overlay") ? o["overlay"] : "";
  const bool several = files.size() > 1;
  std::vector<std::string> overlays;  // one per file
  if (!overlay.empty()) {
    if (mode == "char") throw UsageError("--overlay draws text lines; it has no --mode char");
    const bool dir = fs::is_directory(overlay);
    if (several && !dir)
      throw UsageError("with several images, --overlay expects an existing directory");
    for (const std::string& f : files) {
      const fs::path out = dir ? fs::path(overlay) / (fs::path(f).stem().string() + ".overlay.png")
                               : fs::path(overlay);
      const fs::path parent = out.parent_path().empty() ? fs::path(".") : out.parent_path();
      if (!fs::is_directory(parent))
        throw UsageError("--overlay: the directory '" + parent.string() + "' does not exist");
      std::error_code ec;
      for (const std::string& g : files)
        if (fs::equivalent(out, g, ec))
          throw UsageError("--overlay " + out.string() + " would overwrite the input image");
      if (std::find(overlays.begin(), overlays.end(), out.string()) != overlays.end())
        throw UsageError("--overlay: two images would both be drawn into " + out.string() +
                         " (images of the same name in different directories)");
      overlays.push_back(out.string());
    }
  }
  if (o.count("threads"))
    bpkit::set_num_threads(int(bpkit::cli::integer(o, "threads", 1, 1, 1024)));

  bpkit::check_environment();  // BPKIT_NUM_THREADS, BPKIT_ISA: exit 2 before any work
  if (o.count("model") && o["model"].empty()) throw UsageError("--model needs a directory");
  std::string model_dir = o.count("model") ? o["model"] : "";
  if (model_dir.empty()) {
    const std::string name = mode == "char" ? "digits" : "ocr";
    model_dir = bpkit::shipped_model_dir(name);
    if (model_dir.empty()) {
      const char* env = std::getenv("BPKIT_MODEL_PATH");
      const std::string program = bpkit::program_directory();
      throw bpkit::ConfigError(
          "the shipped model '" + name + "' was not found in " +
          (env ? "$BPKIT_MODEL_PATH (" + std::string(env) + ") nor in " : std::string()) +
          (program.empty() ? std::string("the program's directory (its path cannot be read)")
                           : (fs::path(program) / ".." / "share" / "bpkit" / "models")
                                 .lexically_normal()
                                 .string()) +
          "; give one with --model DIR");
    }
  }
  const auto plugin_dirs = bpkit::cli::all_values(all, "plugin-path");
  const bool trust = o.count("trust-model-plugins") > 0;
  bpkit::TrainedModel model(model_dir, plugin_dirs, trust);
  if (mode == "char" && (o.count("dict") || o.count("dict-cost")))
    throw UsageError("--dict corrects words; it has no --mode char");
  if (mode != "char" && model.transcripts()) {
    const double cost =
        bpkit::cli::number(o, "dict-cost", bpkit::TrainedModel::kDefaultDictionaryCost);
    if (!(cost >= 0) || !std::isfinite(cost))
      throw UsageError("--dict-cost expects a number >= 0, got '" + o["dict-cost"] + "'");
    if (o.count("dict")) {
      if (o["dict"].empty()) throw UsageError("--dict needs a file (or 'none')");
      if (o["dict"] != "none") model.use_dictionary(o["dict"], cost);
    } else if (fs::is_regular_file(kDefaultDictionary)) {
      try {
        model.use_dictionary(kDefaultDictionary, cost);
      } catch (const bpkit::FileError& e) {
        // The user asked for no dictionary: a broken default one is a warning, not a failure.
        std::fprintf(stderr, "ocr_app: %s; reading without a dictionary\n", e.what());
      }
    } else {
      std::fprintf(stderr,
                   "ocr_app: no word list at %s (Debian package wamerican): reading without a "
                   "dictionary (--dict FILE chooses one, --dict none reads without one)\n",
                   kDefaultDictionary);
    }
  }
  std::unique_ptr<PageReader> pages;
  std::unique_ptr<CharReader> chars;
  if (mode == "char")
    chars = std::make_unique<CharReader>(model, model.dir());
  else
    pages = std::make_unique<PageReader>(model, model.dir(), plugin_dirs, trust, mode == "line");

  const auto emit = [](const std::string& text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
  int failures = 0;
  for (const std::string& file : files) {
    std::string out;
    try {
      bpkit::Image image;
      if (chars) {
        const auto p = chars->read(stdin_copy->path(file), image);
        std::vector<size_t> order(p.probabilities.size());
        for (size_t k = 0; k < order.size(); ++k) order[k] = k;
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
          return p.probabilities[a] > p.probabilities[b];
        });
        if (json) {
          out += "{\"file\":";
          json_string(out, file);
          out += ",\"class\":";
          json_string(out, p.name);
          out += ",\"confidence\":" + json_number(p.confidence) + ",\"top\":[";
          for (size_t k = 0; k < std::min<size_t>(5, order.size()); ++k) {
            out += k ? ",{\"class\":" : "{\"class\":";
            json_string(out, model.classes()[order[k]]);
            out += ",\"probability\":" + json_number(p.probabilities[order[k]]) + "}";
          }
          out += "]}\n";
        } else {
          if (several) out += "==> " + file + " <==\n";
          out += p.name + "\t" + json_number(p.confidence) + "\n";
        }
      } else {
        const std::vector<Line> lines = pages->read(stdin_copy->path(file), image);
        if (json) {
          out += "{\"file\":";
          json_string(out, file);
          out += ",\"width\":" + std::to_string(image.width) +
                 ",\"height\":" + std::to_string(image.height) + ",\"lines\":[";
          for (size_t i = 0; i < lines.size(); ++i) {
            const Line& l = lines[i];
            out += i ? ",{" : "{";
            out += "\"box\":{\"x\":" + std::to_string(l.box.x) +
                   ",\"y\":" + std::to_string(l.box.y) +
                   ",\"width\":" + std::to_string(l.box.width) +
                   ",\"height\":" + std::to_string(l.box.height) + "},\"text\":";
            json_string(out, l.text);
            out += ",\"confidence\":" + json_number(l.confidence) + "}";
          }
          out += "]}\n";
        } else {
          if (several) out += "==> " + file + " <==\n";
          for (const Line& l : lines) out += l.text + "\n";
        }
        // The text first: an overlay that cannot be written does not cost the text.
        emit(out);
        out.clear();
        if (!overlays.empty()) {
          if (image.width == 0)
            throw std::runtime_error("the page layout kept no image to draw the overlay on");
          write_overlay(overlays[size_t(&file - files.data())], image, lines);
        }
      }
      emit(out);
    } catch (const bpkit::ConfigError&) {
      throw;
    } catch (const std::exception& e) {
      // StageError and FileError name the file; others do not.
      std::string msg = stdin_copy->shown(e.what());
      if (msg.rfind(file, 0) != 0) msg = file + ": " + msg;
      std::fprintf(stderr, "ocr_app: %s\n", msg.c_str());
      if (json) {  // a record for every image, so that output lines match the inputs
        std::string rec = "{\"file\":";
        json_string(rec, file);
        rec += ",\"error\":";
        json_string(rec, msg);
        emit(rec + "}\n");
      }
      ++failures;
    }
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "ocr_app: cannot write the results: %s\n", std::strerror(errno));
    return 1;
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "ocr_app")) return 0;
    // Page-sized buffers (a 300-dpi page is 35 MB of floats) are allocated and freed for every page
    // and line; served from mmap by default, each one would be returned to the kernel and faulted
    // in again, zeroed, next time (a tenth of the run time). Kept in the heap, they are reused.
#ifdef M_MMAP_THRESHOLD
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
#endif
  try {
    return run(argc, argv);
  } catch (const bpkit::EnvironmentError& e) {  // BPKIT_NUM_THREADS, BPKIT_ISA
    std::fprintf(stderr, "ocr_app: %s\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "ocr_app: %s (see 'ocr_app --help')\n", e.what());
    return 2;
  } catch (const bpkit::ConfigError& e) {
    std::fprintf(stderr, "ocr_app: %s\n", e.what());
    return 2;
  } catch (const bpkit::FileError& e) {
    std::fprintf(stderr, "ocr_app: %s\n", e.what());
    return 2;
  } catch (const bpkit::PluginError& e) {  // the model's plugins cannot be loaded
    std::fprintf(stderr, "ocr_app: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ocr_app: %s\n", e.what());
    return 1;
  }
}
