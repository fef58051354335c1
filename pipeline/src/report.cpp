#include "bpkit/report.h"

#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <stdexcept>

#include "bpkit/error.h"
#include "bpkit/model_file.h"

namespace bpkit {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// --- What the three outputs share ------------------------------------------------------------

void check_input(const ReportInput& in) {
  if (in.confusion && !in.class_names.empty() &&
      int64_t(in.class_names.size()) != in.confusion->classes())
    throw std::invalid_argument("training report: " + std::to_string(in.class_names.size()) +
                                " class names for a confusion matrix of " +
                                std::to_string(in.confusion->classes()) + " classes");
  std::set<std::string> keys;
  for (const auto& kv : in.facts)
    if (!keys.insert(kv.first).second)
      throw std::invalid_argument("training report: fact '" + kv.first + "' given twice");
}

std::vector<std::string> class_labels(const ReportInput& in) {
  std::vector<std::string> labels;
  if (!in.confusion) return labels;
  for (int c = 0; c < in.confusion->classes(); ++c)
    labels.push_back(in.class_names.empty() ? std::to_string(c) : in.class_names[size_t(c)]);
  return labels;
}

const EpochStats* epoch_stats(const TrainResult& r, int epoch) {
  for (const EpochStats& s : r.history)
    if (s.epoch == epoch) return &s;
  return nullptr;
}

// Precision and recall are NaN where undefined (a class never predicted, or absent from the data),
// so a report never shows a made-up 0% or 100%.
struct ClassStats {
  int64_t support = 0;    // samples of this class (row sum)
  int64_t predicted = 0;  // samples predicted as this class (column sum)
  int64_t correct = 0;
  double precision = kNaN, recall = kNaN, f1 = kNaN;
};

std::vector<ClassStats> class_stats(const ConfusionMatrix& cm) {
  const int n = cm.classes();
  std::vector<ClassStats> stats(static_cast<size_t>(n));
  for (int t = 0; t < n; ++t)
    for (int p = 0; p < n; ++p) {
      stats[size_t(t)].support += cm.at(t, p);
      stats[size_t(p)].predicted += cm.at(t, p);
    }
  for (int c = 0; c < n; ++c) {
    ClassStats& s = stats[size_t(c)];
    s.correct = cm.at(c, c);
    if (s.predicted) s.precision = double(s.correct) / double(s.predicted);
    if (s.support) s.recall = double(s.correct) / double(s.support);
    if (std::isfinite(s.precision) && std::isfinite(s.recall))
      s.f1 = s.precision + s.recall > 0 ? 2 * s.precision * s.recall / (s.precision + s.recall) : 0;
  }
  return stats;
}

// Mean over the classes where the value is defined; NaN when it is defined for none.
double macro_mean(const std::vector<ClassStats>& stats, double ClassStats::*field) {
  double sum = 0;
  int count = 0;
  for (const ClassStats& s : stats)
    if (std::isfinite(s.*field)) sum += s.*field, ++count;
  return count ? sum / count : kNaN;
}

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// "12.3%" or "-" for an undefined value.
std::string percent(double fraction, int decimals = 1) {
  if (!std::isfinite(fraction)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, fraction * 100);
  return buf;
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

// --- metrics.json -----------------------------------------------------------------------------

// Appends s as a JSON string. Control characters are escaped; bytes that are not valid UTF-8
// become U+FFFD, so the file is valid UTF-8 whatever a user put in a class name.
void json_string(std::string& out, const std::string& s) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += char(c);
          }
      }
      ++i;
      continue;
    }
    // Length of a well-formed sequence starting with c (RFC 3629: no overlongs, no surrogates,
    // nothing above U+10FFFF), or 0.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    bool ok = len > 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
    for (size_t k = 2; ok && k < len; ++k) ok = p[i + k] >= 0x80 && p[i + k] <= 0xBF;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

// Shortest text that reads back to the same double; null for NaN and infinities (JSON has none).
void json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void json_int(std::string& out, int64_t v) {
  out += std::to_string(v);
}

// One epoch's numbers as a one-line object, or null.
void json_epoch(std::string& out, const EpochStats* s) {
  if (!s) {
    out += "null";
    return;
  }
  out += "{\"epoch\": ";
  json_int(out, s->epoch);
  const std::pair<const char*, double> fields[] = {{"lr", s->lr},
                                                   {"train_loss", s->train_loss},
                                                   {"train_accuracy", s->train_acc},
                                                   {"val_loss", s->val_loss},
                                                   {"val_accuracy", s->val_acc},
                                                   {"seconds", s->seconds},
                                                   {"samples_per_s", s->samples_per_s},
                                                   {"train_cer", s->train_cer},
                                                   {"val_cer", s->val_cer}};
  for (const auto& f : fields) {
    out += ", \"";
    out += f.first;
    out += "\": ";
    json_number(out, f.second);
  }
  out += "}";
}

// Whether the history has character error rates (a model of label sequences).
bool has_cer(const TrainResult& r) {
  return std::any_of(r.history.begin(), r.history.end(), [](const EpochStats& s) {
    return std::isfinite(s.train_cer) || std::isfinite(s.val_cer);
  });
}

std::string metrics_json(const ReportInput& in) {
  const TrainResult& r = in.result;
  std::string o = "{\n  \"format\": \"bpkit-training-report\",\n  \"version\": 1,\n  \"title\": ";
  json_string(o, in.title);
  o += ",\n  \"epochs\": ";
  json_int(o, int64_t(r.history.size()));
  o += ",\n  \"best_epoch\": ";
  json_int(o, r.best_epoch);
  o += ",\n  \"stopped_early\": ";
  o += r.stopped_early ? "true" : "false";
  o += ",\n  \"final\": ";
  json_epoch(o, r.history.empty() ? nullptr : &r.history.back());
  o += ",\n  \"best\": ";
  json_epoch(o, epoch_stats(r, r.best_epoch));
  o += ",\n  \"test\": {\"loss\": ";
  json_number(o, in.test_loss);
  o += ", \"accuracy\": ";
  json_number(o, in.test_accuracy);
  o += ", \"cer\": ";
  json_number(o, in.test_cer);
  o += "},\n  \"history\": {";
  const std::pair<const char*, double EpochStats::*> columns[] = {
      {"lr", &EpochStats::lr},
      {"train_loss", &EpochStats::train_loss},
      {"train_accuracy", &EpochStats::train_acc},
      {"val_loss", &EpochStats::val_loss},
      {"val_accuracy", &EpochStats::val_acc},
      {"seconds", &EpochStats::seconds},
      {"samples_per_s", &EpochStats::samples_per_s},
      {"train_cer", &EpochStats::train_cer},
      {"val_cer", &EpochStats::val_cer}};
  o += "\n    \"epoch\": [";
  for (size_t e = 0; e < r.history.size(); ++e) {
    if (e) o += ", ";
    json_int(o, r.history[e].epoch);
  }
  o += "]";
  for (const auto& col : columns) {
    o += ",\n    \"";
    o += col.first;
    o += "\": [";
    for (size_t e = 0; e < r.history.size(); ++e) {
      if (e) o += ", ";
      json_number(o, r.history[e].*col.second);
    }
    o += "]";
  }
  o += "\n  },\n  \"confusion\": ";
  if (!in.confusion) {
    o += "null";
  } else {
    const ConfusionMatrix& cm = *in.confusion;
    const std::vector<std::string> labels = class_labels(in);
    const std::vector<ClassStats> stats = class_stats(cm);
    o += "{\n    \"classes\": ";
    json_int(o, cm.classes());
    o += ",\n    \"labels\": [";
    for (size_t c = 0; c < labels.size(); ++c) {
      if (c) o += ", ";
      json_string(o, labels[c]);
    }
    o += "],\n    \"total\": ";
    json_int(o, cm.total());
    o += ",\n    \"accuracy\": ";
    json_number(o, cm.total() ? cm.accuracy() : kNaN);
    o += ",\n    \"rows_are\": \"truth\",\n    \"matrix\": [";
    for (int t = 0; t < cm.classes(); ++t) {
      o += t ? ",\n      [" : "\n      [";
      for (int p = 0; p < cm.classes(); ++p) {
        if (p) o += ", ";
        json_int(o, cm.at(t, p));
      }
      o += "]";
    }
    o += "\n    ],\n    \"per_class\": [";
    for (size_t c = 0; c < stats.size(); ++c) {
      const ClassStats& s = stats[c];
      o += c ? ",\n      {\"label\": " : "\n      {\"label\": ";
      json_string(o, labels[c]);
      o += ", \"support\": ";
      json_int(o, s.support);
      o += ", \"predicted\": ";
      json_int(o, s.predicted);
      o += ", \"precision\": ";
      json_number(o, s.precision);
      o += ", \"recall\": ";
      json_number(o, s.recall);
      o += ", \"f1\": ";
      json_number(o, s.f1);
      o += "}";
    }
    o += "\n    ],\n    \"macro_precision\": ";
    json_number(o, macro_mean(stats, &ClassStats::precision));
    o += ",\n    \"macro_recall\": ";
    json_number(o, macro_mean(stats, &ClassStats::recall));
    o += ",\n    \"macro_f1\": ";
    json_number(o, macro_mean(stats, &ClassStats::f1));
    o += "\n  }";
  }
  o += ",\n  \"facts\": {";
  for (size_t i = 0; i < in.facts.size(); ++i) {
    o += i ? ",\n    " : "\n    ";
    json_string(o, in.facts[i].first);
    o += ": ";
    json_string(o, in.facts[i].second);
  }
  o += in.facts.empty() ? "}\n}\n" : "\n  }\n}\n";
  return o;
}

// --- summary.txt ------------------------------------------------------------------------------

std::string loss_text(double v) {
  return std::isfinite(v) ? format("%.4f", v) : "-";
}

std::string pad_right(std::string s, size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

std::string pad_left(const std::string& s, size_t width) {
  return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

// A fact as people read it: a number written to full precision (0.29999999999999999,
// 826.65492163199997) rounded to 4 significant digits; integers and other text as they are
// (metrics.json keeps every digit).
std::string for_people(const std::string& v) {
  if (v.empty() || v.find_first_not_of("0123456789+-.eE") != std::string::npos) return v;
  if (v.find_first_of(".eE") == std::string::npos) return v;  // an integer
  // Only numbers written to full precision (15 or more digits: num()'s %.17g); short ones, and
  // text that happens to look like a number (an alphabet of digits: "-.0123456789"), stay.
  if (std::count_if(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; }) < 15) return v;
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (*end != '\0' || !std::isfinite(x)) return v;
  return format("%.4g", x);
}

std::string summary_text(const ReportInput& in) {
  const TrainResult& r = in.result;
  std::string o = "Training report: " + in.title + "\n\n";
  if (r.history.empty()) {
    o += "No epochs were trained.\n";
  } else {
    const EpochStats& last = r.history.back();
    o += std::to_string(r.history.size()) + (r.history.size() == 1 ? " epoch" : " epochs");
    if (r.stopped_early) o += ", stopped early (no validation improvement)";
    const bool has_val = std::any_of(r.history.begin(), r.history.end(),
                                     [](const EpochStats& s) { return std::isfinite(s.val_acc); });
    o += has_val ? "; best epoch " + std::to_string(r.best_epoch) + " by validation accuracy\n\n"
                 : "; no validation data\n\n";
    const bool cer = has_cer(r);
    o += std::string("                     train loss  train acc   val loss    val acc") +
         (cer ? pad_left("train " + in.error_abbrev, 11) + pad_left("val " + in.error_abbrev, 11)
              : "") +
         "\n";
    auto row = [&](const std::string& name, const EpochStats& s) {
      o += pad_right(name, 20) + pad_left(loss_text(s.train_loss), 11) +
           pad_left(percent(s.train_acc, 2), 11) + pad_left(loss_text(s.val_loss), 11) +
           pad_left(percent(s.val_acc, 2), 11);
      if (cer) o += pad_left(percent(s.train_cer, 2), 11) + pad_left(percent(s.val_cer, 2), 11);
      o += "\n";
    };
    row("final (epoch " + std::to_string(last.epoch) + ")", last);
    if (const EpochStats* best = epoch_stats(r, r.best_epoch))
      if (best != &last) row("best (epoch " + std::to_string(best->epoch) + ")", *best);
    double seconds = 0;
    for (const EpochStats& s : r.history) seconds += s.seconds;
    o += "\nTraining time " + format("%.1f", seconds) + " s, last epoch " +
         format("%.0f", last.samples_per_s) + " samples/s, final learning rate " +
         format("%.4g", last.lr) + "\n";
  }
  if (std::isfinite(in.test_loss) || std::isfinite(in.test_accuracy) || std::isfinite(in.test_cer))
    o += "\nTest: loss " + loss_text(in.test_loss) + ", accuracy " + percent(in.test_accuracy, 2) +
         (std::isfinite(in.test_cer) ? ", " + in.error_name + " " + percent(in.test_cer, 2) : "") +
         "\n";

  if (in.confusion) {
    const ConfusionMatrix& cm = *in.confusion;
    const int n = cm.classes();
    const std::vector<std::string> labels = class_labels(in);
    const std::vector<ClassStats> stats = class_stats(cm);
    size_t name_w = 10;  // room for "macro mean"
    for (const std::string& l : labels) name_w = std::max(name_w, l.size());
    name_w = std::min<size_t>(name_w, 24);
    auto name = [&](size_t c) {
      const std::string& l = labels[c];
      return l.size() > name_w ? l.substr(0, name_w - 2) + ".." : l;
    };

    o += "\nPer class (" + std::to_string(cm.total()) + " samples, accuracy " +
         percent(cm.total() ? cm.accuracy() : kNaN, 2) + "):\n";
    o += "  " + pad_right("class", name_w) + "  support  precision   recall       f1\n";
    for (size_t c = 0; c < stats.size(); ++c) {
      const ClassStats& s = stats[c];
      o += "  " + pad_right(name(c), name_w) + pad_left(std::to_string(s.support), 9) +
           pad_left(percent(s.precision), 11) + pad_left(percent(s.recall), 9) +
           pad_left(percent(s.f1), 9) + "\n";
    }
    o += "  " + pad_right("macro mean", name_w) + pad_left(std::to_string(cm.total()), 9) +
         pad_left(percent(macro_mean(stats, &ClassStats::precision)), 11) +
         pad_left(percent(macro_mean(stats, &ClassStats::recall)), 9) +
         pad_left(percent(macro_mean(stats, &ClassStats::f1)), 9) + "\n";

    // Counts, rows = truth; columns are numbered to keep them narrow, rows carry the names.
    int64_t largest = 0;
    for (int t = 0; t < n; ++t)
      for (int p = 0; p < n; ++p) largest = std::max(largest, cm.at(t, p));
    const size_t cell = std::max(std::to_string(largest).size(), std::to_string(n - 1).size()) + 1;
    const size_t head = std::to_string(n - 1).size() + 1 + name_w;
    o += "\nConfusion matrix (rows: true class, columns: predicted class):\n";
    o += "  " + std::string(head, ' ') + " |";
    for (int p = 0; p < n; ++p) o += pad_left(std::to_string(p), cell);
    o += "\n  " + std::string(head, '-') + "-+" + std::string(cell * size_t(n), '-') + "\n";
    for (int t = 0; t < n; ++t) {
      o += "  " + pad_left(std::to_string(t), std::to_string(n - 1).size()) + " " +
           pad_right(name(size_t(t)), name_w) + " |";
      for (int p = 0; p < n; ++p) o += pad_left(std::to_string(cm.at(t, p)), cell);
      o += "\n";
    }
  }

  if (!in.facts.empty()) {
    o += "\n";
    size_t key_w = 0;
    for (const auto& kv : in.facts) key_w = std::max(key_w, kv.first.size());
    key_w = std::min<size_t>(key_w, 28);
    for (const auto& kv : in.facts)
      o += "  " + pad_right(kv.first + ":", key_w + 1) + " " + for_people(kv.second) + "\n";
  }
  return o;
}

// --- Drawing ----------------------------------------------------------------------------------

const int kFont = cv::FONT_HERSHEY_SIMPLEX;
const cv::Scalar kWhite(255, 255, 255);
const cv::Scalar kInk(40, 40, 40);       // text
const cv::Scalar kMuted(110, 110, 110);  // secondary text, axes
const cv::Scalar kGrid(232, 232, 232);
const cv::Scalar kTrainColor(180, 119, 31);  // BGR of #1f77b4
const cv::Scalar kValColor(14, 127, 255);    // #ff7f0e
const cv::Scalar kTestColor(44, 160, 44);    // #2ca02c
const cv::Scalar kBestColor(150, 150, 150);

// The Hershey fonts have ASCII only: each other UTF-8 character becomes one '?'.
std::string ascii(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x80)
      out += c >= 0x20 ? char(c) : ' ';
    else if (c >= 0xC0)
      out += '?';  // a lead byte; continuation bytes (0x80-0xBF) are dropped
  }
  return out;
}

enum class HAlign { kLeft, kCenter, kRight };

// Draws s with its vertical centre at y and x aligned as asked.
void text(cv::Mat& img, const std::string& s, int x, int y, double scale, const cv::Scalar& color,
          HAlign align = HAlign::kLeft, int thickness = 1) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(s, kFont, scale, thickness, &baseline);
  if (align == HAlign::kCenter) x -= size.width / 2;
  if (align == HAlign::kRight) x -= size.width;
  cv::putText(img, s, cv::Point(x, y + size.height / 2), kFont, scale, color, thickness,
              cv::LINE_AA);
}

int text_width(const std::string& s, double scale, int thickness = 1) {
  int baseline = 0;
  return cv::getTextSize(s, kFont, scale, thickness, &baseline).width;
}

// Shortens s by replacing its middle with ".." until it fits in width pixels: class names often
// share a prefix ("digit 1", "digit 2"), so the end is kept as well as the start.
std::string fit_text(const std::string& s, int width, double scale) {
  if (text_width(s, scale) <= width) return s;
  size_t head = (s.size() + 1) / 2, tail = s.size() / 2;
  std::string t;
  do {
    if (head > tail)
      --head;
    else if (tail > 0)
      --tail;
    t = s.substr(0, head) + ".." + s.substr(s.size() - tail);
  } while (head + tail > 0 && text_width(t, scale) > width);
  return t;
}

// Text rotated 90 degrees counter-clockwise (read bottom to top), drawn on a white strip and
// pasted with its centre line at x and, for kCenter, its middle at `top`; otherwise its last
// character at `top`, so labels of different lengths end on one line.
void vertical_text(cv::Mat& img, const std::string& s, int x, int top, double scale,
                   const cv::Scalar& color, HAlign align, int thickness = 1) {
  int baseline = 0;
  const cv::Size size = cv::getTextSize(s, kFont, scale, thickness, &baseline);
  cv::Mat strip(size.height + baseline + 4, size.width + 4, img.type(), kWhite);
  cv::putText(strip, s, cv::Point(2, size.height + 2), kFont, scale, color, thickness, cv::LINE_AA);
  cv::Mat rotated;
  cv::rotate(strip, rotated, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int left = x - (size.height + 2) / 2 - 2;  // centre the glyphs' cap height on x
  const int y = align == HAlign::kCenter ? top - rotated.rows / 2 : top;
  cv::Rect dst(left, y, rotated.cols, rotated.rows);
  const cv::Rect clipped = dst & cv::Rect(0, 0, img.cols, img.rows);
  if (clipped.area() == 0) return;
  rotated(cv::Rect(clipped.x - dst.x, clipped.y - dst.y, clipped.width, clipped.height))
      .copyTo(img(clipped));
}

void dashed_line(cv::Mat& img, cv::Point a, cv::Point b, const cv::Scalar& color, int thickness,
                 int dash = 8, int gap = 6) {
  const double len = std::hypot(double(b.x - a.x), double(b.y - a.y));
  if (len < 1) return;
  for (double d = 0; d < len; d += dash + gap) {
    const double e = std::min(len, d + dash);
    const cv::Point p(int(std::lround(a.x + (b.x - a.x) * d / len)),
                      int(std::lround(a.y + (b.y - a.y) * d / len)));
    const cv::Point q(int(std::lround(a.x + (b.x - a.x) * e / len)),
                      int(std::lround(a.y + (b.y - a.y) * e / len)));
    cv::line(img, p, q, color, thickness, cv::LINE_AA);
  }
}

std::string png_bytes(const cv::Mat& img, const std::string& path) {
  std::vector<uchar> buf;
  bool ok = false;
  try {
    ok = cv::imencode(".png", img, buf);
  } catch (const cv::Exception& e) {
    throw FileError("cannot encode '" + path + "' as PNG: " + e.what());
  }
  if (!ok) throw FileError("cannot encode '" + path + "' as PNG");
  return std::string(buf.begin(), buf.end());
}

// --- curves.png -------------------------------------------------------------------------------

// A tick step of 1, 2 or 5 times a power of ten giving about `target` intervals over `range`.
double nice_step(double range, int target) {
  const double raw = range / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

// Decimals needed to print multiples of step exactly (0.25 -> 2, 5 -> 0).
int step_decimals(double step) {
  for (int d = 0; d < 8; ++d) {
    const double scaled = step * std::pow(10.0, d);
    if (std::fabs(scaled - std::round(scaled)) < 1e-6 * scaled) return d;
  }
  return 8;
}

struct Range {
  double lo, hi, step;
};

// A range with round ends covering [lo, hi], clipped to [floor, ceil].
Range nice_range(double lo, double hi, double floor_, double ceil_) {
  if (!(hi > lo)) {
    const double d = lo != 0 ? std::fabs(lo) * 0.1 : 0.5;
    lo -= d, hi += d;
  } else {
    const double pad = (hi - lo) * 0.05;
    lo -= pad, hi += pad;
  }
  lo = std::max(lo, floor_), hi = std::min(hi, ceil_);
  // Values all beyond a clip (an error rate above 100%): the clipped interval is empty; show the
  // clip's neighbourhood rather than an inverted range (whose step would never end the ticks).
  if (!(hi > lo)) {
    if (std::isfinite(ceil_) && lo >= ceil_) lo = std::isfinite(floor_) ? floor_ : ceil_ - 1;
    if (std::isfinite(floor_) && hi <= floor_) hi = std::isfinite(ceil_) ? ceil_ : floor_ + 1;
    if (!(hi > lo)) hi = lo + 1;
  }
  const double step = nice_step(hi - lo, 5);
  return {std::max(floor_, std::floor(lo / step + 1e-9) * step),
          std::min(ceil_, std::ceil(hi / step - 1e-9) * step), step};
}

struct Series {
  std::string name;
  std::vector<double> y;  // one per epoch; non-finite values are gaps
  cv::Scalar color;
};

struct Panel {
  std::string title, ylabel;
  std::vector<Series> series;
  double test = kNaN;  // drawn as a horizontal dashed line when finite
  bool percent = false;
  bool unbounded = false;  // percent above 100 possible (error rates)
};

void draw_panel(cv::Mat& img, const cv::Rect& box, const Panel& panel,
                const std::vector<int>& epochs, int best_epoch) {
  const cv::Rect plot(box.x + 84, box.y + 56, box.width - 84 - 28, box.height - 56 - 66);
  text(img, panel.title, plot.x, box.y + 22, 0.75, kInk, HAlign::kLeft, 2);

  // Legend on the title line, right-aligned, so it never covers data.
  std::vector<std::pair<std::string, cv::Scalar>> legend;
  std::vector<bool> dashed;
  double lo = INFINITY, hi = -INFINITY;
  for (const Series& s : panel.series) {
    bool any = false;
    for (double v : s.y)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v), any = true;
    if (any) legend.emplace_back(s.name, s.color), dashed.push_back(false);
  }
  if (std::isfinite(panel.test)) {
    lo = std::min(lo, panel.test), hi = std::max(hi, panel.test);
    legend.emplace_back("test", kTestColor), dashed.push_back(true);
  }
  const bool show_best = best_epoch >= 1 && epochs.size() > 1 && !legend.empty();
  if (show_best) legend.emplace_back("best epoch", kBestColor), dashed.push_back(true);
  int x = plot.x + plot.width;
  for (size_t i = legend.size(); i-- > 0;) {
    x -= text_width(legend[i].first, 0.5);
    text(img, legend[i].first, x, box.y + 22, 0.5, kInk);
    x -= 30;
    if (dashed[i])
      dashed_line(img, {x, box.y + 22}, {x + 24, box.y + 22}, legend[i].second, 2, 6, 4);
    else
      cv::line(img, {x, box.y + 22}, {x + 24, box.y + 22}, legend[i].second, 3, cv::LINE_AA);
    x -= 18;
  }

  cv::rectangle(img, plot, kGrid, 1);
  const int first = epochs.empty() ? 1 : epochs.front();
  const int last = epochs.empty() ? 1 : epochs.back();
  if (!std::isfinite(lo)) {
    text(img, "no data", plot.x + plot.width / 2, plot.y + plot.height / 2, 0.6, kMuted,
         HAlign::kCenter);
    return;
  }
  const double scale = panel.percent ? 100 : 1;
  // Accuracies stay within 0-100%; an error rate may exceed 100% (insertions), so its axis grows.
  const Range yr = panel.percent
                       ? nice_range(lo * scale, hi * scale, 0, panel.unbounded ? INFINITY : 100)
                       : nice_range(lo, hi, lo >= 0 ? 0 : -INFINITY, INFINITY);

  // x: epochs, with an inset so the first and last points sit off the axes.
  const int inset = 14;
  auto px = [&](double epoch) {
    if (last == first) return plot.x + plot.width / 2;
    return plot.x + inset +
           int(std::lround((epoch - first) / (last - first) * (plot.width - 2 * inset)));
  };
  auto py = [&](double v) {
    const double f = (v * scale - yr.lo) / (yr.hi - yr.lo);
    return plot.y + plot.height - int(std::lround(f * plot.height));
  };

  // Grid and tick labels.
  const int decimals = step_decimals(yr.step);
  for (int k = 0;; ++k) {
    const double v = yr.lo + k * yr.step;
    if (v > yr.hi + yr.step * 1e-6) break;
    const int y = py(v / scale);
    if (k > 0) cv::line(img, {plot.x + 1, y}, {plot.x + plot.width - 1, y}, kGrid, 1);
    cv::line(img, {plot.x - 5, y}, {plot.x, y}, kMuted, 1);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    text(img, buf, plot.x - 9, y, 0.45, kInk, HAlign::kRight);
  }
  const int span = last - first;
  const int xstep = span < 1 ? 1 : std::max(1, int(nice_step(span, 8)));
  for (int e = first; e <= last; ++e) {
    if (e % xstep != 0 && !(xstep == 1)) continue;
    const int xx = px(e);
    cv::line(img, {xx, plot.y + 1}, {xx, plot.y + plot.height - 1}, kGrid, 1);
    cv::line(img, {xx, plot.y + plot.height}, {xx, plot.y + plot.height + 5}, kMuted, 1);
    text(img, std::to_string(e), xx, plot.y + plot.height + 18, 0.45, kInk, HAlign::kCenter);
  }
  cv::line(img, {plot.x, plot.y}, {plot.x, plot.y + plot.height}, kMuted, 1);
  cv::line(img, {plot.x, plot.y + plot.height}, {plot.x + plot.width, plot.y + plot.height}, kMuted,
           1);
  text(img, "epoch", plot.x + plot.width / 2, plot.y + plot.height + 44, 0.55, kInk,
       HAlign::kCenter);
  vertical_text(img, panel.ylabel, box.x + 18, plot.y + plot.height / 2, 0.55, kInk,
                HAlign::kCenter);

  if (show_best)
    dashed_line(img, {px(best_epoch), plot.y + 1}, {px(best_epoch), plot.y + plot.height - 1},
                kBestColor, 1);
  if (std::isfinite(panel.test))
    dashed_line(img, {plot.x + 1, py(panel.test)}, {plot.x + plot.width - 1, py(panel.test)},
                kTestColor, 2);

  // Lines join consecutive finite points; a gap (NaN) breaks the line, and a point with no
  // finite neighbour is still drawn as a dot, so a one-epoch run shows its values.
  const bool markers = epochs.size() <= 60;
  for (const Series& s : panel.series) {
    const size_t n = std::min(s.y.size(), epochs.size());
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(s.y[i])) continue;
      const cv::Point p(px(epochs[i]), py(s.y[i]));
      if (i + 1 < n && std::isfinite(s.y[i + 1]))
        cv::line(img, p, {px(epochs[i + 1]), py(s.y[i + 1])}, s.color, 2, cv::LINE_AA);
      const bool alone =
          (i == 0 || !std::isfinite(s.y[i - 1])) && (i + 1 >= n || !std::isfinite(s.y[i + 1]));
      if (markers || alone) cv::circle(img, p, alone ? 5 : 3, s.color, cv::FILLED, cv::LINE_AA);
    }
  }
}

cv::Mat curves_image(const ReportInput& in) {
  cv::Mat img(kCurvesPngHeight, kCurvesPngWidth, CV_8UC3, kWhite);
  const TrainResult& r = in.result;
  text(img, ascii(in.title.empty() ? "Training curves" : in.title + ": training curves"), 24, 28,
       0.8, kInk, HAlign::kLeft, 2);
  std::string sub =
      std::to_string(r.history.size()) + (r.history.size() == 1 ? " epoch" : " epochs");
  if (epoch_stats(r, r.best_epoch)) sub += ", best epoch " + std::to_string(r.best_epoch);
  if (r.stopped_early) sub += ", stopped early";
  if (std::isfinite(in.test_accuracy)) sub += ", test accuracy " + percent(in.test_accuracy, 2);
  if (std::isfinite(in.test_cer))
    sub += ", test " + in.error_abbrev + " " + percent(in.test_cer, 2);
  text(img, sub, kCurvesPngWidth - 24, 28, 0.55, kMuted, HAlign::kRight);

  std::vector<int> epochs;
  Panel loss{"Loss",
             "loss",
             {{"train", {}, kTrainColor}, {"validation", {}, kValColor}},
             in.test_loss,
             false};
  // Text (label sequences): the character error rate tells more than exact-line accuracy.
  const bool cer = has_cer(r);
  std::string title = in.error_name;
  title[0] = char(std::toupper(static_cast<unsigned char>(title[0])));
  Panel acc{cer ? title : "Accuracy",
            cer ? in.error_name + " (%)" : "accuracy (%)",
            {{"train", {}, kTrainColor}, {"validation", {}, kValColor}},
            cer ? in.test_cer : in.test_accuracy,
            true,
            cer};
  for (const EpochStats& s : r.history) {
    epochs.push_back(s.epoch);
    loss.series[0].y.push_back(s.train_loss);
    loss.series[1].y.push_back(s.val_loss);
    acc.series[0].y.push_back(cer ? s.train_cer : s.train_acc);
    acc.series[1].y.push_back(cer ? s.val_cer : s.val_acc);
  }
  const int top = 52, half = kCurvesPngWidth / 2;
  draw_panel(img, cv::Rect(0, top, half, kCurvesPngHeight - top), loss, epochs, r.best_epoch);
  draw_panel(img, cv::Rect(half, top, half, kCurvesPngHeight - top), acc, epochs, r.best_epoch);
  return img;
}

// --- confusion.png ----------------------------------------------------------------------------

// Sequential white-to-blue scale (ColorBrewer "Blues") at f in [0, 1], as BGR.
cv::Scalar blues(double f) {
  static const double stops[][3] = {
      {247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}};
  f = std::clamp(f, 0.0, 1.0) * 4;
  const int i = std::min(3, int(f));
  const double t = f - i;
  double rgb[3];
  for (int k = 0; k < 3; ++k) rgb[k] = stops[i][k] + (stops[i + 1][k] - stops[i][k]) * t;
  return cv::Scalar(rgb[2], rgb[1], rgb[0]);
}

// The largest scale (up to cap) at which every string fits in width x height pixels.
double fitting_scale(const std::vector<std::string>& strings, double width, double height,
                     double cap) {
  double scale = cap;
  for (const std::string& s : strings) {
    int baseline = 0;
    const cv::Size one = cv::getTextSize(s, kFont, 1.0, 1, &baseline);
    if (one.width > 0) scale = std::min(scale, width / one.width);
    if (one.height > 0) scale = std::min(scale, height / one.height);
  }
  return scale;
}

cv::Mat confusion_image(const ReportInput& in) {
  const ConfusionMatrix& cm = *in.confusion;
  const int n = cm.classes();
  const std::vector<std::string> labels = class_labels(in);
  const std::vector<ClassStats> stats = class_stats(cm);
  cv::Mat img(kConfusionPngHeight, kConfusionPngWidth, CV_8UC3, kWhite);

  text(img, ascii(in.title.empty() ? "Confusion matrix" : in.title + ": confusion matrix"), 24, 32,
       0.8, kInk, HAlign::kLeft, 2);
  text(img,
       "accuracy " + percent(cm.total() ? cm.accuracy() : kNaN, 2) + " on " +
           std::to_string(cm.total()) + " samples; shade = share of the true class",
       24, 66, 0.55, kMuted);

  // Layout: names left of and below the matrix, recall to its right, precision under it.
  const int name_room = 180, recall_room = 96, precision_room = 34;
  const int x0 = 56 + name_room, y0 = 104;
  const int side = std::min(kConfusionPngWidth - x0 - recall_room - 16,
                            kConfusionPngHeight - y0 - precision_room - name_room - 56);
  const int cell = side / n;
  const int m = cell * n;

  // Class names: one scale for rows and columns, from the cell height; long names shortened.
  const double name_scale = std::min(0.55, fitting_scale({"Ag"}, 1e9, cell * 0.55, 0.55));
  std::vector<std::string> names;
  for (const std::string& l : labels)
    names.push_back(fit_text(ascii(l), name_room - 12, name_scale));

  int64_t largest = 0;
  std::vector<std::string> counts;
  for (int t = 0; t < n; ++t)
    for (int p = 0; p < n; ++p) largest = std::max(largest, cm.at(t, p));
  const double count_scale =
      fitting_scale({std::to_string(largest), "0"}, cell * 0.82, cell * 0.42, 0.8);
  const int count_thickness = count_scale >= 0.6 ? 2 : 1;

  for (int t = 0; t < n; ++t) {
    const int64_t row = stats[size_t(t)].support;
    for (int p = 0; p < n; ++p) {
      const int64_t c = cm.at(t, p);
      const double f = row ? double(c) / double(row) : 0;
      const cv::Rect r(x0 + p * cell, y0 + t * cell, cell, cell);
      cv::rectangle(img, r, blues(f), cv::FILLED);
      const cv::Scalar ink = f > 0.5 ? kWhite : c == 0 ? cv::Scalar(175, 175, 175) : kInk;
      text(img, std::to_string(c), r.x + cell / 2, r.y + cell / 2, count_scale, ink,
           HAlign::kCenter, count_thickness);
    }
  }
  // Thin white separators keep neighbouring cells of one shade apart.
  if (cell >= 12)
    for (int k = 1; k < n; ++k) {
      cv::line(img, {x0 + k * cell, y0}, {x0 + k * cell, y0 + m - 1}, kWhite, 1);
      cv::line(img, {x0, y0 + k * cell}, {x0 + m - 1, y0 + k * cell}, kWhite, 1);
    }
  cv::rectangle(img, cv::Rect(x0, y0, m, m), kMuted, 1);

  // Row names and recall column.
  const double stat_scale = std::min(0.5, std::max(name_scale, 0.3));
  text(img, "recall", x0 + m + recall_room / 2, y0 - 14, 0.5, kInk, HAlign::kCenter);
  for (int t = 0; t < n; ++t) {
    const int y = y0 + t * cell + cell / 2;
    text(img, names[size_t(t)], x0 - 10, y, name_scale, kInk, HAlign::kRight);
    text(img, percent(stats[size_t(t)].recall), x0 + m + recall_room / 2, y, stat_scale, kInk,
         HAlign::kCenter);
  }
  // Precision row: whole percent when the cells are narrow.
  std::vector<std::string> precisions;
  for (const ClassStats& s : stats) precisions.push_back(percent(s.precision, cell >= 56 ? 1 : 0));
  const double precision_scale =
      fitting_scale(precisions, cell * 0.92, precision_room * 0.45, stat_scale);
  const int py = y0 + m + precision_room / 2;
  text(img, "precision", x0 - 10, py, 0.5, kInk, HAlign::kRight);
  for (int p = 0; p < n; ++p)
    text(img, precisions[size_t(p)], x0 + p * cell + cell / 2, py, precision_scale, kInk,
         HAlign::kCenter);
  // Column names: horizontal when every one fits its column, else rotated, each ending just under
  // the precision row.
  int longest = 0;
  for (const std::string& s : names) longest = std::max(longest, text_width(s, name_scale));
  const int top = y0 + m + precision_room + 6;
  const bool horizontal = longest <= cell - 8;
  for (int p = 0; p < n; ++p) {
    const int x = x0 + p * cell + cell / 2;
    if (horizontal)
      text(img, names[size_t(p)], x, top + 18, name_scale, kInk, HAlign::kCenter);
    else
      vertical_text(img, names[size_t(p)], x, top, name_scale, kInk, HAlign::kLeft);
  }
  text(img, "predicted class", x0 + m / 2, top + (horizontal ? 28 : longest) + 30, 0.6, kInk,
       HAlign::kCenter);
  vertical_text(img, "true class", 24, y0 + m / 2, 0.6, kInk, HAlign::kCenter);
  return img;
}

}  // namespace

std::string training_report_json(const ReportInput& in) {
  check_input(in);
  return metrics_json(in);
}

std::string training_report_summary(const ReportInput& in) {
  check_input(in);
  return summary_text(in);
}

void write_training_report(const std::string& dir, const ReportInput& in) {
  check_input(in);
  // Everything is rendered before the first file is touched, so a drawing failure leaves the
  // previous report whole.
  const std::string json = metrics_json(in), summary = summary_text(in);
  const std::string curves_path = join_path(dir, "curves.png");
  const std::string curves = png_bytes(curves_image(in), curves_path);
  const std::string confusion_path = join_path(dir, "confusion.png");
  const std::string confusion = in.confusion ? png_bytes(confusion_image(in), confusion_path) : "";

  write_file_atomically(join_path(dir, "metrics.json"), json);
  write_file_atomically(curves_path, curves);
  if (in.confusion) {
    write_file_atomically(confusion_path, confusion);
  } else if (::unlink(confusion_path.c_str()) != 0 && errno != ENOENT) {
    // A matrix left from an earlier run in this directory would describe another model.
    throw FileError("cannot remove the stale '" + confusion_path + "': " + std::strerror(errno));
  }
  write_file_atomically(join_path(dir, "summary.txt"), summary);
}

// --- det.png ----------------------------------------------------------------------------------

namespace {

// The standard normal quantile (probit) by bisection on erfc: DET axes are normal deviates, so
// two normal score distributions draw a straight line.
double probit(double p) {
  double lo = -9, hi = 9;
  for (int i = 0; i < 80; ++i) {
    const double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return (lo + hi) / 2;
}

cv::Mat det_image(const std::string& title, const VerificationTrials& t, double threshold) {
  const int W = kDetPngSize, H = kDetPngSize;
  cv::Mat img(H, W, CV_8UC3, kWhite);
  const cv::Rect box(110, 70, W - 150, H - 160);
  // Error rates from 0.1% to 60% on both axes.
  const double lo = probit(0.001), hi = probit(0.6);
  auto px = [&](double rate) {
    const double v = (probit(std::clamp(rate, 0.0005, 0.7)) - lo) / (hi - lo);
    return box.x + int(std::lround(v * box.width));
  };
  auto py = [&](double rate) {
    const double v = (probit(std::clamp(rate, 0.0005, 0.7)) - lo) / (hi - lo);
    return box.y + box.height - int(std::lround(v * box.height));
  };
  text(img, ascii(title), W / 2, 30, 0.7, kInk, HAlign::kCenter, 2);
  for (double tick : {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6}) {
    char label[16];
    std::snprintf(label, sizeof label, tick < 0.01 ? "%.1f" : "%.0f", 100 * tick);
    cv::line(img, {px(tick), box.y}, {px(tick), box.y + box.height}, kGrid, 1);
    cv::line(img, {box.x, py(tick)}, {box.x + box.width, py(tick)}, kGrid, 1);
    text(img, label, px(tick), box.y + box.height + 18, 0.45, kMuted, HAlign::kCenter);
    text(img, label, box.x - 8, py(tick), 0.45, kMuted, HAlign::kRight);
  }
  cv::rectangle(img, box, kMuted, 1);
  // The equal-error diagonal.
  dashed_line(img, {px(0.001), py(0.001)}, {px(0.6), py(0.6)}, kBestColor, 1);
  text(img, "false acceptance rate (%)", box.x + box.width / 2, H - 50, 0.55, kInk,
       HAlign::kCenter);
  vertical_text(img, "false rejection rate (%)", 30, box.y + box.height / 2, 0.55, kInk,
                HAlign::kCenter);
  struct Series {
    const std::vector<double>* impostor;
    const char* name;
    cv::Scalar color;
  };
  int legend_y = box.y + 20;
  for (const Series& s : {Series{&t.skilled, "skilled forgeries", kValColor},
                          Series{&t.random, "random forgeries", kTrainColor}}) {
    if (s.impostor->empty() || t.genuine.empty()) continue;
    const std::vector<DetPoint> det = det_curve(t.genuine, *s.impostor);
    std::vector<cv::Point> pts;
    for (const DetPoint& d : det) pts.emplace_back(px(d.far), py(d.frr));
    cv::polylines(img, pts, false, s.color, 2, cv::LINE_AA);
    const Eer e = equal_error_rate(t.genuine, *s.impostor);
    const ErrorRates at = error_rates(t.genuine, *s.impostor, threshold);
    cv::circle(img, {px(at.far), py(at.frr)}, 5, s.color, -1, cv::LINE_AA);
    char label[160];
    std::snprintf(label, sizeof label, "%s: EER %.2f%%; at the threshold FAR %.2f%%, FRR %.2f%%",
                  s.name, 100 * e.eer, 100 * at.far, 100 * at.frr);
    cv::line(img, {box.x + box.width - 470, legend_y}, {box.x + box.width - 440, legend_y}, s.color,
             3);
    text(img, label, box.x + box.width - 432, legend_y, 0.42, kInk);
    legend_y += 22;
  }
  char counts[160];
  std::snprintf(counts, sizeof counts,
                "%lld writers; %zu genuine, %zu skilled and %zu random forgery trials; dots: the "
                "model's threshold",
                static_cast<long long>(t.writers), t.genuine.size(), t.skilled.size(),
                t.random.size());
  text(img, counts, W / 2, H - 20, 0.42, kMuted, HAlign::kCenter);
  return img;
}

}  // namespace

void write_det_png(const std::string& path, const std::string& title, const VerificationTrials& t,
                   double threshold) {
  write_file_atomically(path, png_bytes(det_image(title, t, threshold), path));
}

}  // namespace bpkit
