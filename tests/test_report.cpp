// The training report: metrics.json parses back with the numbers it was given (NaN as null), the
// PNGs decode to their documented sizes and show the curves and the matrix, the summary carries
// the confusion counts, files are replaced atomically, and failures name the path.
#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/report.h"
#include "temp_dir.h"

using namespace bpkit;
using bpkit_test::read_bytes;
using bpkit_test::TempDir;
using bpkit_test::write_bytes;
using Catch::Matchers::Contains;

namespace {

// --- A strict little JSON reader: enough to prove the file is valid and to look values up. ----

struct Json {
  enum Kind { kNull, kBool, kNumber, kString, kArray, kObject } kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Json> items;                           // array
  std::vector<std::pair<std::string, Json>> fields;  // object, in file order

  const Json& operator[](const std::string& key) const {
    REQUIRE(kind == kObject);
    for (const auto& f : fields)
      if (f.first == key) return f.second;
    FAIL("no key '" << key << "'");
    return *this;
  }
  const Json& operator[](size_t i) const {
    REQUIRE(kind == kArray);
    REQUIRE(i < items.size());
    return items[i];
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& f : fields) k.push_back(f.first);
    return k;
  }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& text) : s_(text) {}
  // Throws std::runtime_error with the offset on anything that is not one complete JSON value.
  Json parse() {
    Json v = value();
    space();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw std::runtime_error("invalid JSON at offset " + std::to_string(i_) + ": " + what);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool eat(char c) {
    space();
    if (i_ < s_.size() && s_[i_] == c) return ++i_, true;
    return false;
  }
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  bool word(const char* w) {
    const size_t n = std::strlen(w);
    if (s_.compare(i_, n, w) != 0) return false;
    i_ += n;
    return true;
  }
  Json value() {
    space();
    if (i_ >= s_.size()) fail("unexpected end");
    Json v;
    const char c = s_[i_];
    if (c == '{') {
      v.kind = Json::kObject;
      ++i_;
      if (eat('}')) return v;
      do {
        space();
        std::string key = string();
        expect(':');
        v.fields.emplace_back(key, value());
      } while (eat(','));
      expect('}');
    } else if (c == '[') {
      v.kind = Json::kArray;
      ++i_;
      if (eat(']')) return v;
      do v.items.push_back(value());
      while (eat(','));
      expect(']');
    } else if (c == '"') {
      v.kind = Json::kString;
      v.string = string();
    } else if (word("null")) {
    } else if (word("true") || word("false")) {
      v.kind = Json::kBool;
      v.boolean = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u';
    } else {
      v.kind = Json::kNumber;
      v.number = number();
    }
    return v;
  }
  double number() {
    // JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const size_t start = i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[i_]))) ++i_;
      if (i_ == from) fail("expected a digit");
    };
    if (s_[i_] == '-') ++i_;
    if (i_ < s_.size() && s_[i_] == '0')
      ++i_;
    else
      digits();
    if (i_ < s_.size() && s_[i_] == '.') ++i_, digits();
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      digits();
    }
    return std::stod(s_.substr(start, i_ - start));
  }
  std::string string() {
    if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string");
    ++i_;
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[i_++]);
      if (c == '"') return out;
      if (c < 0x20) fail("raw control character in a string");
      if (c != '\\') {
        out += char(c);
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated escape");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) fail("short \\u escape");
          const unsigned cp = unsigned(std::stoul(s_.substr(i_, 4), nullptr, 16));
          i_ += 4;
          // Encode as UTF-8 (the report only escapes characters below U+10000).
          if (cp < 0x80) {
            out += char(cp);
          } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6)), out += char(0x80 | (cp & 0x3F));
          } else {
            out += char(0xE0 | (cp >> 12)), out += char(0x80 | ((cp >> 6) & 0x3F)),
                out += char(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          fail(std::string("unknown escape \\") + e);
      }
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

Json parse_json(const std::string& text) {
  return JsonReader(text).parse();
}

// --- Inputs ---------------------------------------------------------------------------------

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

EpochStats epoch(int e, double train_loss, double train_acc, double val_loss, double val_acc) {
  return EpochStats{e, 0.1 / e, train_loss, train_acc, val_loss, val_acc, 2.5, 1000.0 * e};
}

// Five epochs; validation missing in epoch 3; three classes with known counts.
struct Fixture {
  ConfusionMatrix cm{3};
  ReportInput in;
  Fixture() {
    const int64_t counts[3][3] = {{50, 3, 0}, {4, 40, 6}, {0, 7, 30}};
    for (int t = 0; t < 3; ++t)
      for (int p = 0; p < 3; ++p)
        for (int64_t k = 0; k < counts[t][p]; ++k) cm.add(t, p);
    in.title = "toy \"model\"";
    in.result.history = {epoch(1, 1.2, 0.5, 1.3, 0.45), epoch(2, 0.8, 0.7, 0.9, 0.65),
                         epoch(3, 0.6, 0.8, kNaN, kNaN), epoch(4, 0.5, 0.85, 0.7, 0.78),
                         epoch(5, 0.45, 0.88, 0.72, 0.76)};
    in.result.best_epoch = 4;
    in.result.stopped_early = true;
    in.confusion = &cm;
    in.class_names = {"cat", "dog", "bird"};
    in.test_loss = 0.71;
    in.test_accuracy = 0.857;
    in.facts = {{"train samples", "1000"}, {"command", "bpkit train a\\b.yaml --note \"x\""}};
  }
};

double pixel_variance(const cv::Mat& img) {
  cv::Scalar mean, stddev;
  cv::meanStdDev(img, mean, stddev);
  double v = 0;
  for (int c = 0; c < img.channels(); ++c) v += stddev[c] * stddev[c];
  return v;
}

// Pixels within `tol` of a BGR colour: finds the drawn curves by their colours.
int count_colour(const cv::Mat& img, cv::Vec3b bgr, int tol = 12) {
  int n = 0;
  for (int y = 0; y < img.rows; ++y)
    for (int x = 0; x < img.cols; ++x) {
      const cv::Vec3b p = img.at<cv::Vec3b>(y, x);
      if (std::abs(p[0] - bgr[0]) <= tol && std::abs(p[1] - bgr[1]) <= tol &&
          std::abs(p[2] - bgr[2]) <= tol)
        ++n;
    }
  return n;
}

const cv::Vec3b kTrainBgr(180, 119, 31), kValBgr(14, 127, 255);

}  // namespace

TEST_CASE("report: writes the four files and nothing else", "[report]") {
  Fixture f;
  TempDir dir("report");
  write_training_report(dir.path(), f.in);
  CHECK(dir.list() ==
        std::vector<std::string>{"confusion.png", "curves.png", "metrics.json", "summary.txt"});
}

TEST_CASE("report: metrics.json parses back with the history, NaN as null, and the matrix",
          "[report]") {
  Fixture f;
  TempDir dir("report");
  write_training_report(dir.path(), f.in);
  const std::string text = read_bytes(dir.file("metrics.json"));
  CHECK(text == training_report_json(f.in));
  const Json j = parse_json(text);

  CHECK(j.keys() == std::vector<std::string>{"format", "version", "title", "epochs", "best_epoch",
                                             "stopped_early", "final", "best", "test", "history",
                                             "confusion", "facts"});
  CHECK(j["format"].string == "bpkit-training-report");
  CHECK(j["version"].number == 1);
  CHECK(j["title"].string == "toy \"model\"");
  CHECK(j["epochs"].number == 5);
  CHECK(j["best_epoch"].number == 4);
  CHECK(j["stopped_early"].kind == Json::kBool);
  CHECK(j["stopped_early"].boolean);
  CHECK(j["final"]["epoch"].number == 5);
  CHECK(j["best"]["val_accuracy"].number == 0.78);
  CHECK(j["test"]["loss"].number == 0.71);
  CHECK(j["test"]["accuracy"].number == 0.857);

  const Json& h = j["history"];
  CHECK(h.keys() == std::vector<std::string>{"epoch", "lr", "train_loss", "train_accuracy",
                                             "val_loss", "val_accuracy", "seconds", "samples_per_s",
                                             "train_cer", "val_cer"});
  for (const auto& col : h.fields) CHECK(col.second.items.size() == 5);
  CHECK(h["epoch"][4].number == 5);
  CHECK(h["train_loss"][0].number == 1.2);  // shortest round-trip text reads back exactly
  CHECK(h["lr"][2].number == 0.1 / 3);
  CHECK(h["val_loss"][2].kind == Json::kNull);
  CHECK(h["val_accuracy"][2].kind == Json::kNull);
  CHECK(h["val_accuracy"][3].number == 0.78);
  CHECK(h["samples_per_s"][1].number == 2000);

  const Json& c = j["confusion"];
  CHECK(c["classes"].number == 3);
  CHECK(c["labels"][2].string == "bird");
  CHECK(c["total"].number == 140);
  CHECK(c["accuracy"].number == Approx(120.0 / 140));
  REQUIRE(c["matrix"].items.size() == 3);
  CHECK(c["matrix"][1][2].number == 6);
  CHECK(c["matrix"][2][1].number == 7);
  CHECK(c["matrix"][0][0].number == 50);
  // dog: 40 right of 50 (recall), 40 right of 3 + 40 + 7 predicted (precision).
  CHECK(c["per_class"][1]["label"].string == "dog");
  CHECK(c["per_class"][1]["support"].number == 50);
  CHECK(c["per_class"][1]["recall"].number == Approx(0.8));
  CHECK(c["per_class"][1]["precision"].number == Approx(0.8));
  CHECK(c["per_class"][2]["precision"].number == Approx(30.0 / 36));

  CHECK(j["facts"].keys() == std::vector<std::string>{"train samples", "command"});
  CHECK(j["facts"]["command"].string == "bpkit train a\\b.yaml --note \"x\"");
}

TEST_CASE("report: JSON strings survive control characters and invalid UTF-8", "[report]") {
  Fixture f;
  f.in.title = std::string("tab\there\nnew \x01 caf\xc3\xa9 bad\xff end");
  f.in.class_names[0] = "\xe2\x82";  // a truncated three-byte sequence
  const Json j = parse_json(training_report_json(f.in));
  CHECK(j["title"].string == "tab\there\nnew \x01 caf\xc3\xa9 bad\xef\xbf\xbd end");
  CHECK(j["confusion"]["labels"][0].string == "\xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("report: infinities and undefined precision are null", "[report]") {
  Fixture f;
  f.in.result.history[0].train_loss = INFINITY;
  ConfusionMatrix cm(2);
  cm.add(0, 0);  // class 1 never seen and never predicted
  f.in.confusion = &cm;
  f.in.class_names.clear();
  f.in.test_loss = kNaN;
  f.in.test_accuracy = kNaN;
  const Json j = parse_json(training_report_json(f.in));
  CHECK(j["history"]["train_loss"][0].kind == Json::kNull);
  CHECK(j["test"]["loss"].kind == Json::kNull);
  CHECK(j["confusion"]["labels"][1].string == "1");
  CHECK(j["confusion"]["per_class"][1]["precision"].kind == Json::kNull);
  CHECK(j["confusion"]["per_class"][1]["recall"].kind == Json::kNull);
  CHECK(j["confusion"]["per_class"][0]["recall"].number == 1);
}

TEST_CASE("report: the PNGs decode to their sizes and show curves and matrix", "[report]") {
  Fixture f;
  TempDir dir("report");
  write_training_report(dir.path(), f.in);

  const cv::Mat curves = cv::imread(dir.file("curves.png"), cv::IMREAD_COLOR);
  REQUIRE(!curves.empty());
  CHECK(curves.cols == kCurvesPngWidth);
  CHECK(curves.rows == kCurvesPngHeight);
  CHECK(pixel_variance(curves) > 100);
  // Both series drawn in both panels (left half: loss, right half: accuracy).
  const cv::Mat loss = curves(cv::Rect(0, 0, kCurvesPngWidth / 2, kCurvesPngHeight));
  const cv::Mat acc =
      curves(cv::Rect(kCurvesPngWidth / 2, 0, kCurvesPngWidth / 2, kCurvesPngHeight));
  CHECK(count_colour(loss, kTrainBgr) > 300);
  CHECK(count_colour(loss, kValBgr) > 300);
  CHECK(count_colour(acc, kTrainBgr) > 300);
  CHECK(count_colour(acc, kValBgr) > 300);

  const cv::Mat confusion = cv::imread(dir.file("confusion.png"), cv::IMREAD_COLOR);
  REQUIRE(!confusion.empty());
  CHECK(confusion.cols == kConfusionPngWidth);
  CHECK(confusion.rows == kConfusionPngHeight);
  CHECK(pixel_variance(confusion) > 100);
  // The diagonal cells (most of each row) are dark blue: "Blues" at 80% and more.
  CHECK(count_colour(confusion, cv::Vec3b(130, 60, 12), 40) > 10000);
}

TEST_CASE("report: text models show the character error rate in curves, table and JSON",
          "[report]") {
  // Exact-line accuracies unknown (NaN) but error rates falling: the second panel must draw the
  // error rates (with the accuracy it would be empty).
  ReportInput in;
  in.title = "lines";
  for (int e = 1; e <= 4; ++e) {
    EpochStats s = epoch(e, 2.0 / e, kNaN, 2.2 / e, kNaN);
    s.train_cer = 0.4 / e;
    s.val_cer = 0.48 / e;
    in.result.history.push_back(s);
  }
  in.result.best_epoch = 4;
  in.test_cer = 0.125;
  TempDir dir("report-cer");
  write_training_report(dir.path(), in);
  const cv::Mat curves = cv::imread(dir.file("curves.png"), cv::IMREAD_COLOR);
  REQUIRE(!curves.empty());
  const cv::Mat right =
      curves(cv::Rect(kCurvesPngWidth / 2, 0, kCurvesPngWidth / 2, kCurvesPngHeight));
  CHECK(count_colour(right, kTrainBgr) > 300);
  CHECK(count_colour(right, kValBgr) > 300);
  const std::string summary = read_bytes(dir.file("summary.txt"));
  CHECK_THAT(summary, Contains("train CER    val CER"));
  CHECK_THAT(summary, Contains("12.00%"));  // epoch 4's validation error rate
  CHECK_THAT(summary, Contains("character error rate 12.50%"));
  const std::string json = read_bytes(dir.file("metrics.json"));
  CHECK_THAT(json, Contains("\"val_cer\": [0.48, 0.24, 0.16, 0.12]"));
  CHECK_THAT(json, Contains("\"cer\": 0.125"));

  // Error rates above 100% (a young CTC model inserting characters): the axis grows past 100%
  // (it was clipped to an empty range, and drawing the ticks never ended).
  for (EpochStats& s : in.result.history) s.train_cer = 3.0, s.val_cer = 1.5;
  in.test_cer = 1.4;
  write_training_report(dir.path(), in);
  const cv::Mat high = cv::imread(dir.file("curves.png"), cv::IMREAD_COLOR);
  REQUIRE(!high.empty());
  CHECK(count_colour(high(cv::Rect(kCurvesPngWidth / 2, 0, kCurvesPngWidth / 2, kCurvesPngHeight)),
                     kTrainBgr) > 300);
}

TEST_CASE("report: one epoch without validation, and many classes with long names", "[report]") {
  ReportInput in;
  in.title = "tiny";
  in.result.history = {epoch(1, 0.9, 0.6, kNaN, kNaN)};
  in.result.best_epoch = 1;
  ConfusionMatrix cm(30);
  for (int c = 0; c < 30; ++c)
    for (int k = 0; k < 100 + c; ++k) cm.add(c, k % 10 == 0 ? (c + 1) % 30 : c);
  in.confusion = &cm;
  for (int c = 0; c < 30; ++c)
    in.class_names.push_back("a rather long class name number " + std::to_string(c));
  TempDir dir("report");
  write_training_report(dir.path(), in);

  const cv::Mat curves = cv::imread(dir.file("curves.png"), cv::IMREAD_COLOR);
  REQUIRE(curves.cols == kCurvesPngWidth);
  CHECK(count_colour(curves, kTrainBgr) > 50);  // the single epoch is drawn as a dot
  CHECK(count_colour(curves, kValBgr) == 0);    // no validation, no orange
  const cv::Mat confusion = cv::imread(dir.file("confusion.png"), cv::IMREAD_COLOR);
  CHECK(confusion.cols == kConfusionPngWidth);
  CHECK(confusion.rows == kConfusionPngHeight);
  CHECK(pixel_variance(confusion) > 100);

  const Json j = parse_json(read_bytes(dir.file("metrics.json")));
  CHECK(j["history"]["val_loss"].items.size() == 1);
  CHECK(j["history"]["val_loss"][0].kind == Json::kNull);
  CHECK(j["test"]["accuracy"].kind == Json::kNull);
  CHECK(j["confusion"]["matrix"].items.size() == 30);
}

TEST_CASE("report: an empty history still gives valid files", "[report]") {
  ReportInput in;
  TempDir dir("report");
  write_training_report(dir.path(), in);
  const Json j = parse_json(read_bytes(dir.file("metrics.json")));
  CHECK(j["epochs"].number == 0);
  CHECK(j["final"].kind == Json::kNull);
  CHECK(j["confusion"].kind == Json::kNull);
  CHECK(j["history"]["epoch"].items.empty());
  CHECK(cv::imread(dir.file("curves.png")).cols == kCurvesPngWidth);
  CHECK(dir.list() == std::vector<std::string>{"curves.png", "metrics.json", "summary.txt"});
}

TEST_CASE("report: summary.txt has the metrics, the per-class table and the counts", "[report]") {
  Fixture f;
  TempDir dir("report");
  write_training_report(dir.path(), f.in);
  const std::string s = read_bytes(dir.file("summary.txt"));
  CHECK(s == training_report_summary(f.in));
  CHECK_THAT(s, Contains("Training report: toy \"model\""));
  CHECK_THAT(s, Contains("5 epochs, stopped early"));
  CHECK_THAT(s, Contains("best epoch 4"));
  CHECK_THAT(s, Contains("final (epoch 5)"));
  CHECK_THAT(s, Contains("best (epoch 4)"));
  CHECK_THAT(s, Contains("Test: loss 0.7100, accuracy 85.70%"));
  CHECK_THAT(s, Contains("140 samples, accuracy 85.71%"));
  // Per-class: dog has support 50, precision 80.0%, recall 80.0%.
  CHECK_THAT(s, Contains("dog              50      80.0%    80.0%"));
  // The counts, row by row (truth), with the row's name.
  CHECK_THAT(s, Contains("0 cat        | 50  3  0"));
  CHECK_THAT(s, Contains("1 dog        |  4 40  6"));
  CHECK_THAT(s, Contains("2 bird       |  0  7 30"));
  CHECK_THAT(s, Contains("train samples: 1000"));
  // Numbers written to full precision are rounded for people (metrics.json keeps the digits);
  // integers and text stay as they are.
  f.in.facts = {{"margin", "0.29999999999999999"},
                {"seconds", "826.65492163199997"},
                {"tiny", "6.9490740740740742e-05"},
                {"count", "2532910"},
                {"version", "1.2.3"},
                {"name", "a-b"}};
  const std::string r = training_report_summary(f.in);
  CHECK_THAT(r, Contains("margin:  0.3\n"));
  CHECK_THAT(r, Contains("seconds: 826.7\n"));
  CHECK_THAT(r, Contains("tiny:    6.949e-05\n"));
  CHECK_THAT(r, Contains("count:   2532910\n"));
  CHECK_THAT(r, Contains("version: 1.2.3\n"));
  CHECK_THAT(r, Contains("name:    a-b\n"));
  TempDir dir2("report");
  write_training_report(dir2.path(), f.in);
  CHECK_THAT(read_bytes(dir2.file("metrics.json")), Contains("\"0.29999999999999999\""));
}

TEST_CASE("report: a second report replaces the first atomically, leaving no temp files",
          "[report]") {
  Fixture f;
  TempDir dir("report");
  write_training_report(dir.path(), f.in);
  const std::string old_png = read_bytes(dir.file("curves.png"));
  f.in.title = "second";
  f.in.result.history.pop_back();
  f.in.result.stopped_early = false;
  write_training_report(dir.path() + "/", f.in);  // a trailing slash is fine
  CHECK(dir.list() ==
        std::vector<std::string>{"confusion.png", "curves.png", "metrics.json", "summary.txt"});
  CHECK(parse_json(read_bytes(dir.file("metrics.json")))["title"].string == "second");
  CHECK(read_bytes(dir.file("curves.png")) != old_png);
  CHECK_THAT(read_bytes(dir.file("summary.txt")), Contains("Training report: second"));

  // Without a matrix, the old confusion.png (another model's) goes.
  f.in.confusion = nullptr;
  write_training_report(dir.path(), f.in);
  CHECK(dir.list() == std::vector<std::string>{"curves.png", "metrics.json", "summary.txt"});
  CHECK(parse_json(read_bytes(dir.file("metrics.json")))["confusion"].kind == Json::kNull);
}

TEST_CASE("report: a directory that cannot be written is a FileError naming the path", "[report]") {
  Fixture f;
  TempDir dir("report");
  const std::string missing = dir.file("no/such/dir");
  REQUIRE_THROWS_AS(write_training_report(missing, f.in), FileError);
  REQUIRE_THROWS_WITH(write_training_report(missing, f.in), Contains(missing + "/metrics.json"));

  const std::string not_a_dir = dir.file("plain-file");
  write_bytes(not_a_dir, "x");
  REQUIRE_THROWS_AS(write_training_report(not_a_dir, f.in), FileError);
  REQUIRE_THROWS_WITH(write_training_report(not_a_dir, f.in), Contains(not_a_dir));
  CHECK(dir.list() == std::vector<std::string>{"plain-file"});
}

TEST_CASE("report: inconsistent input is refused before anything is written", "[report]") {
  Fixture f;
  TempDir dir("report");
  SECTION("class names that do not match the matrix") {
    f.in.class_names.pop_back();
    REQUIRE_THROWS_WITH(write_training_report(dir.path(), f.in),
                        Contains("2 class names for a confusion matrix of 3 classes"));
  }
  SECTION("a fact given twice") {
    f.in.facts.emplace_back("train samples", "2000");
    REQUIRE_THROWS_WITH(write_training_report(dir.path(), f.in),
                        Contains("fact 'train samples' given twice"));
  }
  CHECK(dir.list().empty());
}
