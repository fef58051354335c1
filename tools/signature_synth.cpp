#include "signature_synth.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <opencv2/imgproc.hpp>
#include <random>

#include "tool_args.h"

namespace bpkit_signatures {

using bpkit_sigma::Component;
using bpkit_sigma::kPi;
using bpkit_sigma::PenSample;
using bpkit_sigma::Stroke;
using bpkit_sigma::Vec2;

uint64_t item_seed(uint64_t seed, uint64_t a, uint64_t b, uint64_t c) {
  using bpkit_tools::mix;
  return mix(mix(mix(mix(seed) ^ a) ^ (b * 0x9e3779b97f4a7c15ULL)) ^ (c * 0xc2b2ae3d27d4eb4fULL));
}

const char* part_name(PartKind k) {
  switch (k) {
    case PartKind::kName:
      return "name";
    case PartKind::kDot:
      return "dot";
    case PartKind::kCross:
      return "cross";
    case PartKind::kFlourish:
      return "flourish";
  }
  return "?";
}

int WriterPlan::strokes() const {
  int n = 0;
  for (const PlanPart& p : parts) n += int(p.points.size()) - 1;
  return n;
}

namespace {

constexpr double kDeg = kPi / 180;

class Rng {
 public:
  explicit Rng(uint64_t seed) : g_(seed) {}
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(g_); }
  double normal(double sd) { return sd > 0 ? std::normal_distribution<double>(0, sd)(g_) : 0; }
  bool chance(double p) { return uniform(0, 1) < p; }
  int integer(int a, int b) { return std::uniform_int_distribution<int>(a, b)(g_); }
  // An index drawn with the given weights.
  int choose(std::initializer_list<double> weights) {
    double total = 0;
    for (double w : weights) total += w;
    double x = uniform(0, total);
    int i = 0;
    for (double w : weights) {
      if (x < w) return i;
      x -= w;
      ++i;
    }
    return i - 1;
  }
  int poisson(double mean) { return std::poisson_distribution<int>(mean)(g_); }
  uint64_t bits() { return g_(); }

 private:
  std::mt19937_64 g_;
};

double clamp(double x, double lo, double hi) {
  return std::min(hi, std::max(lo, x));
}

// Wraps an angle into (-pi, pi].
double wrap(double a) {
  while (a > kPi) a -= 2 * kPi;
  while (a <= -kPi) a += 2 * kPi;
  return a;
}

// ---------------------------------------------------------------------------------------------
// Cursive letter models: virtual targets in x-heights (baseline y = 0, x-height 1, ascenders 2,
// descenders -1). The first point is the entry on the baseline (skipped when the letter is joined
// to the previous one), the last the exit, whose x is the letter's width. The smoothing between
// targets and the overlap of the strokes round these polygons into cursive letters; reversals of
// more than kCuspTurn stay sharp (cusps).

struct LetterModel {
  char ch;
  const char* path;
  const char* mark;  // "d x,y" an i-dot, "t x1,y1 x2,y2" a t-bar, "" none
};

const LetterModel kLetters[] = {
    {'a', "0,.1 .72,.9 .45,1 .15,.85 .03,.45 .2,.05 .45,0 .65,.25 .73,.9 .73,.15 .85,0 1.05,.2",
     ""},
    {'b',
     "0,.1 .45,.8 .65,1.5 .6,1.9 .45,2 .3,1.8 .25,1.2 .25,.4 .35,.05 .55,0 .72,.3 .68,.75 .5,.85 "
     ".55,.7 .85,.8",
     ""},
    {'c', "0,.1 .5,.8 .6,.95 .45,1 .15,.85 .03,.45 .2,.05 .45,0 .75,.2", ""},
    {'d', "0,.1 .72,.9 .45,1 .15,.85 .03,.45 .2,.05 .45,0 .65,.25 .75,1 .8,2 .74,.15 .86,0 1.05,.2",
     ""},
    {'e', "0,.1 .5,.5 .62,.8 .5,1 .3,.95 .15,.7 .1,.35 .25,.05 .5,0 .8,.2", ""},
    {'f', "0,.1 .45,.8 .65,1.5 .6,1.9 .45,2 .3,1.8 .25,1.2 .22,-.9 .32,-.75 .4,-.2 .55,.05 .85,.2",
     ""},
    {'g',
     "0,.1 .72,.9 .45,1 .15,.85 .03,.45 .2,.05 .45,0 .65,.25 .73,.9 .72,-.5 .6,-.9 .4,-1 "
     ".28,-.8 .4,-.4 .65,-.1 .95,.2",
     ""},
    {'h',
     "0,.1 .45,.8 .65,1.5 .6,1.9 .45,2 .3,1.8 .25,1.2 .22,0 .3,.6 .45,.9 .6,.95 .72,.75 .72,.2 "
     ".8,.02 1,.2",
     ""},
    {'i', "0,.1 .3,.95 .25,.25 .35,.02 .55,0 .8,.2", "d .32,1.55"},
    {'j', "0,.1 .3,.95 .28,-.5 .15,-.95 0,-.85 .05,-.5 .35,-.1 .7,.2", "d .32,1.55"},
    {'k',
     "0,.1 .45,.8 .65,1.5 .6,1.9 .45,2 .3,1.8 .25,1.2 .22,0 .3,.6 .55,.95 .75,.8 .55,.55 .35,.5 "
     ".55,.4 .7,.05 .95,.2",
     ""},
    {'l', "0,.1 .45,.8 .65,1.5 .6,1.9 .45,2 .3,1.8 .25,1.2 .25,.5 .35,.1 .55,0 .85,.2", ""},
    {'m',
     "0,.1 .2,.9 .2,0 .3,.65 .42,.92 .55,.95 .65,.7 .65,0 .75,.65 .87,.92 1,.95 1.1,.7 1.1,.2 "
     "1.18,.02 1.4,.2",
     ""},
    {'n', "0,.1 .2,.9 .2,0 .3,.65 .42,.92 .55,.95 .65,.7 .65,.2 .73,.02 .95,.2", ""},
    {'o',
     "0,.1 .3,.6 .55,.95 .35,1 .12,.85 .03,.45 .2,.05 .45,0 .6,.3 .6,.75 .5,.95 .75,.85 .95,.85",
     ""},
    {'p', "0,.1 .25,.95 .22,-.95 .24,.55 .4,.9 .6,.9 .72,.55 .6,.1 .4,0 .25,.15 .55,.05 .85,.2",
     ""},
    {'r', "0,.1 .3,1 .38,.82 .55,.85 .65,.9 .62,.2 .7,.02 .95,.2", ""},
    {'s', "0,.1 .4,1 .55,.7 .62,.4 .5,.08 .3,0 .15,.12 .35,.08 .6,.05 .85,.2", ""},
    {'t', "0,.1 .35,1.7 .3,.25 .4,.02 .6,0 .85,.2", "t -.05,1.1 .75,1.15"},
    {'u', "0,.1 .2,.95 .15,.35 .25,.05 .45,0 .62,.3 .72,.95 .7,.25 .78,.02 1,.2", ""},
    {'v', "0,.1 .2,.95 .28,.4 .4,.05 .55,.25 .68,.7 .7,.95 .95,.9", ""},
    {'w', "0,.1 .18,.95 .18,.3 .3,.02 .48,.25 .55,.8 .58,.3 .7,.02 .88,.3 .95,.95 1.2,.9", ""},
    {'y',
     "0,.1 .2,.95 .15,.35 .25,.05 .45,0 .62,.3 .72,.95 .7,-.5 .6,-.9 .4,-1 .28,-.8 .4,-.4 .65,-.1 "
     ".95,.2",
     ""},
    // Capitals, 2.5 x-heights high; the others are the lower-case letters enlarged. A capital whose
    // exit is not on its right (D, P, T, F) ends with a pen lift.
    {'C', "1,2 1.15,2.35 .9,2.5 .5,2.3 .15,1.7 0,1 .15,.35 .5,0 1,.1 1.3,.35", ""},
    {'D', ".7,2.4 .5,1.2 .35,.1 .1,0 0,.25 .4,.2 1,.25 1.5,.9 1.6,1.7 1.2,2.35 .6,2.5 .2,2.2 .3,2",
     ""},
    {'E', "1,2.1 .75,2.5 .3,2.3 .35,1.7 .8,1.45 .3,1.3 0,.7 .25,.05 .8,0 1.2,.3", ""},
    {'F', "0,2 .4,2.4 1.1,2.3 1.7,2.5 1,2.35 .85,1.2 .6,.1 .3,0 .05,.2", "t .45,1.25 1.2,1.3"},
    {'G',
     "1,2 1.15,2.35 .9,2.5 .5,2.3 .15,1.7 0,1 .15,.35 .5,0 .9,.2 1.05,.8 1,-.6 .8,-1.1 .5,-1 "
     ".6,-.4 "
     "1.3,.2",
     ""},
    {'I', ".3,1.5 0,1.9 .4,2.4 .8,2.5 .6,1.2 .4,0 .1,.15 .5,.05 1,.25", ""},
    {'J', ".3,2.1 .8,2.5 1.1,2.2 .9,1 .7,-.8 .4,-1.2 .1,-.8 .5,-.2 1.2,.3", ""},
    {'L', ".9,2.1 1.2,2.5 .9,2.45 .55,1.5 .3,.5 .1,0 0,.2 .35,.1 .8,-.05 1.3,.2", ""},
    {'P', ".6,2.4 .35,0 .5,1.6 .9,2.5 1.4,2.3 1.5,1.8 1.1,1.35 .5,1.25", ""},
    {'R', ".6,2.4 .35,0 .5,1.6 .9,2.5 1.4,2.3 1.5,1.8 1.1,1.35 .55,1.25 .95,1 1.2,.2 1.5,0 1.8,.2",
     ""},
    {'S', "0,0 .6,.9 1.1,2 1.2,2.5 .85,2.3 .7,1.9 1,1.2 1.05,.5 .65,0 .15,.15 .6,.1 1.4,.25", ""},
    {'T', "0,2 .4,2.4 1.1,2.3 1.7,2.5 1,2.35 .85,1.2 .6,.1 .3,0 .05,.2", ""},
};

struct Glyph {
  std::vector<Vec2> points;
  char mark = 0;  // 'd' dot, 't' bar
  std::vector<Vec2> mark_points;
  double width = 1, top = 1;  // the largest x and y
  bool open_exit = false;     // the exit is not on the right: the pen lifts after the letter
};

std::vector<Vec2> parse_points(const char* s) {
  std::vector<Vec2> out;
  const char* p = s;
  while (*p) {
    while (*p == ' ') ++p;
    if (!*p) break;
    char* end = nullptr;
    Vec2 v;
    v.x = std::strtod(p, &end);
    p = end + 1;  // the comma
    v.y = std::strtod(p, &end);
    p = end;
    out.push_back(v);
  }
  return out;
}

const std::map<char, Glyph>& glyphs() {
  static const std::map<char, Glyph> table = [] {
    std::map<char, Glyph> t;
    for (const LetterModel& m : kLetters) {
      Glyph g;
      g.points = parse_points(m.path);
      if (m.mark[0]) {
        g.mark = m.mark[0];
        g.mark_points = parse_points(m.mark + 2);
      }
      g.width = g.top = 0;
      for (const Vec2& p : g.points) {
        g.width = std::max(g.width, p.x);
        g.top = std::max(g.top, p.y);
      }
      g.open_exit = g.points.back().x < 0.7 * g.width;
      t[m.ch] = g;
    }
    return t;
  }();
  return table;
}

// ---------------------------------------------------------------------------------------------
// Names: syllables over the modelled letters, e.g. "Belora", "Tanikson".

std::string name_word(Rng& r, int min_len, int max_len) {
  static const char* const onsets[] = {"b",  "c",  "d",  "g",  "h",  "j",  "k",  "l",  "m",
                                       "n",  "p",  "r",  "s",  "t",  "v",  "w",  "y",  "br",
                                       "ch", "cl", "dr", "gr", "tr", "st", "sh", "th", "bl",
                                       "pl", "kr", "m",  "l",  "r",  "n",  "s",  "d",  "t"};
  static const char* const vowels[] = {"a", "e", "i", "o", "u",  "a",  "e",  "i",
                                       "o", "a", "e", "y", "ai", "ea", "ou", "ie"};
  static const char* const codas[] = {"n",  "r",  "s",  "l",  "m",  "t",  "nd", "rt",
                                      "ck", "ll", "ss", "rn", "ld", "nt", "st", "rd"};
  static const char* const endings[] = {"son", "berg", "ini", "elli", "ova", "ski", "man", "ton",
                                        "ley", "ard",  "ic",  "es",   "as",  "ek",  "in",  "o"};
  for (;;) {
    std::string w;
    const int syl = r.integer(1, 3);
    for (int s = 0; s < syl; ++s) {
      if (s == 0 ? r.chance(0.8) : true) w += onsets[r.integer(0, 35)];
      w += vowels[r.integer(0, 15)];
      if (r.chance(0.3)) w += codas[r.integer(0, 15)];
    }
    if (r.chance(0.3)) w += endings[r.integer(0, 15)];
    if (int(w.size()) >= min_len && int(w.size()) <= max_len) {
      w[0] = char(std::toupper(static_cast<unsigned char>(w[0])));
      return w;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The writer's plan.

class PlanBuilder {
 public:
  PlanBuilder(WriterPlan& plan, Rng& r) : p_(plan), st_(plan.style), r_(r) {}

  // Writes `word` from x = `start`; returns the x after it. The scribble style (legibility < 1)
  // replaces the letters after the first clear ones by humps of `scribble` letters.
  double word(const std::string& word, double start, char scribble) {
    const double h = st_.x_height_mm;
    const int n = int(word.size());
    const double L = st_.legibility;
    const int clear = L >= 0.7 ? n : std::max(1, int(std::lround(n * (0.15 + L))));
    std::vector<PlanPart> marks;
    PlanPart part{PartKind::kName, {}};
    double x = start;
    bool lift_next = false;
    const int humps =
        clear < n ? std::max(1, int(std::lround((n - clear) * (0.4 + 0.6 * r_.uniform(0, 1))))) : 0;
    const int total = clear + humps;
    for (int j = 0; j < total; ++j) {
      const bool scribbled = j >= clear;
      const char ch =
          scribbled ? scribble : char(std::tolower(static_cast<unsigned char>(word[j])));
      const bool capital = j == 0 && std::isupper(static_cast<unsigned char>(word[0]));
      auto it = glyphs().find(capital ? word[0] : ch);
      const bool capital_model = capital && it != glyphs().end();
      if (!capital_model) it = glyphs().find(ch);
      if (it == glyphs().end()) continue;
      const Glyph& g = it->second;
      double sy = h, sx = h * st_.width_ratio;
      if (capital_model) {
        sy = h * st_.capital_height / 2.5;
        sx = sy * cap_width_ / 0.75 * st_.width_ratio;
      } else if (capital) {
        // Descenders count less: a capital P or J keeps a moderate tail.
        double bottom = 0;
        for (const Vec2& q : g.points) bottom = std::min(bottom, q.y);
        sy = h * st_.capital_height / (g.top - 0.6 * bottom);
        sx = sy * cap_width_ * st_.width_ratio;
      } else {
        // Illegible writers let the letters shrink along the word; scribbles shrink further.
        const double decay = std::max(0.35, 1 - (1 - L) * 0.08 * j);
        sy *= decay;
        if (scribbled) {
          sy *= scribble_amp_ * std::pow(0.85, j - clear);
          sx *= scribble_width_;
        }
      }
      PlanLetter letter;
      letter.origin = x;
      letter.width = g.width * sx;
      letter.ch = scribbled ? '~'
                  : capital ? char(std::toupper(static_cast<unsigned char>(ch)))
                            : ch;
      const int li = int(p_.letters.size());
      p_.letters.push_back(letter);
      const bool lift = part.points.empty() || lift_next || (j > 0 && r_.chance(st_.lift));
      lift_next = g.open_exit;
      if (lift && !part.points.empty()) {
        parts_.push_back(part);
        part.points.clear();
      }
      for (size_t k = lift ? 0 : 1; k < g.points.size(); ++k)
        part.points.push_back({x + g.points[k].x * sx, g.points[k].y * sy, 0, li});
      if (g.mark && st_.dots && !scribbled) {
        PlanPart m{g.mark == 'd' ? PartKind::kDot : PartKind::kCross, {}};
        const Vec2 a = g.mark_points[0];
        const double my = capital ? g.top * sy + 0.5 * h : a.y * h;
        if (g.mark == 'd') {
          // A dot is a short flick; some writers make it a dash.
          const double len = dash_dots_ ? 0.45 * h : 0.1 * h;
          m.points.push_back({x + a.x * sx, my, 0, li});
          m.points.push_back({x + a.x * sx + len, my + 0.15 * len, 0, li});
        } else {
          const Vec2 b = g.mark_points[1];
          const double extend = r_.uniform(0.8, 1.6);
          m.points.push_back({x + a.x * sx, a.y * sy, 0, li});
          m.points.push_back(
              {x + (a.x + (b.x - a.x) * extend) * sx, b.y * sy, r_.normal(0.15), li});
        }
        marks.push_back(m);
      }
      x += letter.width + st_.width_ratio * letter_gap_ * h;
    }
    if (!part.points.empty()) parts_.push_back(part);
    for (const PlanPart& m : marks) parts_.push_back(m);
    return x;
  }

  void build(const std::string& first, const std::string& last) {
    const double h = st_.x_height_mm;
    cap_width_ = r_.uniform(0.5, 0.95);
    letter_gap_ = r_.uniform(-0.05, 0.25);
    scribble_amp_ = r_.uniform(0.35, 0.9);
    scribble_width_ = r_.uniform(0.8, 1.5);
    dash_dots_ = r_.chance(0.3);
    const char scribble = "uniemn"[r_.integer(0, 5)];
    double x = 0;
    std::vector<std::string> words;
    if (st_.layout == "full") words = {first, last};
    if (st_.layout == "initial") words = {first.substr(0, 1), last};
    if (st_.layout == "last") words = {last};
    const double word_gap = r_.uniform(0.4, 1.6) * h;
    for (size_t w = 0; w < words.size(); ++w) {
      const size_t before = parts_.size();
      x = word(words[w], x, scribble);
      if (w == 0 && st_.layout == "initial" && r_.chance(0.5)) {  // the initial's period
        parts_.push_back(
            {PartKind::kDot, {{x + 0.1 * h, 0.05 * h, 0, -1}, {x + 0.2 * h, 0.1 * h, 0, -1}}});
        x += 0.4 * h;
      }
      // Some writers join the words with one movement.
      if (w > 0 && r_.chance(0.15) && before > 0 && parts_[before].kind == PartKind::kName) {
        size_t prev = before - 1;
        while (prev > 0 && parts_[prev].kind != PartKind::kName) --prev;
        if (parts_[prev].kind == PartKind::kName) {
          auto& a = parts_[prev].points;
          const auto& b = parts_[before].points;
          a.insert(a.end(), b.begin(), b.end());
          parts_.erase(parts_.begin() + long(before));
        }
      }
      x += word_gap;
    }
    if (st_.lead_in) lead_in();
    flourish();
    p_.parts = parts_;
  }

 private:
  void bbox(double& x0, double& x1, double& y0, double& y1) const {
    x0 = y0 = 1e9;
    x1 = y1 = -1e9;
    for (const PlanPart& p : parts_)
      for (const PlanPoint& q : p.points) {
        x0 = std::min(x0, q.x);
        x1 = std::max(x1, q.x);
        y0 = std::min(y0, q.y);
        y1 = std::max(y1, q.y);
      }
  }

  PlanPart* last_name_part() {
    for (auto it = parts_.rbegin(); it != parts_.rend(); ++it)
      if (it->kind == PartKind::kName) return &*it;
    return nullptr;
  }

  // A long entry stroke from below-left into the first letter.
  void lead_in() {
    const double h = st_.x_height_mm;
    PlanPart& first = parts_[0];
    const PlanPoint f = first.points[0];
    const double dx = r_.uniform(1.0, 2.5) * h;
    std::vector<PlanPoint> in = {
        {f.x - dx, r_.uniform(-1.2, 0.2) * h, 0, -1},
        {f.x - 0.3 * dx, r_.uniform(0.8, 2.2) * h, r_.uniform(0.3, 1.2), -1}};
    first.points.insert(first.points.begin(), in.begin(), in.end());
  }

  void flourish() {
    const double h = st_.x_height_mm;
    double x0, x1, y0, y1;
    bbox(x0, x1, y0, y1);
    const double W = x1 - x0;
    PlanPart* last = last_name_part();
    if (!last) return;
    const PlanPoint e = last->points.back();
    auto pt = [](double x, double y, double bend = 0) { return PlanPoint{x, y, bend, -1}; };
    const std::string& f = st_.flourish;
    if (f == "underline-return") {  // from the last letter, down and back under the name
      const double y = std::min(y0, -0.4 * h) - r_.uniform(0.2, 0.9) * h;
      last->points.push_back(pt(e.x + r_.uniform(0.2, 1.2) * h, e.y - r_.uniform(0.6, 1.4) * h,
                                r_.uniform(-1.2, -0.3)));
      last->points.push_back(pt(x0 + r_.uniform(-0.1, 0.45) * W, y, r_.normal(0.25)));
      if (r_.chance(0.4))
        last->points.push_back(pt(last->points.back().x - r_.uniform(0.4, 1.5) * h,
                                  y + r_.uniform(0.3, 1.2) * h, r_.uniform(-1.5, 1.5)));
    } else if (f == "underline") {  // a separate line under the name, sometimes back again
      const double y = std::min(y0, -0.3 * h) - r_.uniform(0.2, 0.9) * h;
      PlanPart u{PartKind::kFlourish, {}};
      u.points.push_back(pt(x0 + r_.uniform(-0.15, 0.3) * W, y + r_.normal(0.3) * h));
      u.points.push_back(
          pt(x1 + r_.uniform(-0.2, 0.25) * W, y + r_.normal(0.5) * h, r_.normal(0.2)));
      if (r_.chance(0.4))
        u.points.push_back(
            pt(x0 + r_.uniform(0.1, 0.6) * W, y - r_.uniform(0.2, 0.8) * h, r_.normal(0.3)));
      parts_.push_back(u);
    } else if (f == "zigzag") {  // a paraph: strokes back and forth under the end of the name
      const int k = r_.integer(3, 6);
      const double step = r_.uniform(0.08, 0.18) * W;
      double x = e.x + r_.uniform(0, 0.5) * h;
      for (int i = 0; i < k; ++i) {
        x -= step * (i % 2 ? -0.4 : 1.0);
        const double y = i % 2 ? r_.uniform(-0.3, 0.4) * h : -r_.uniform(0.9, 1.8) * h;
        last->points.push_back(pt(x, y, r_.normal(0.3)));
      }
    } else if (f == "encircle") {  // a large loop around the end of the name
      const double cx = x0 + r_.uniform(0.4, 0.75) * W, rx = r_.uniform(0.35, 0.6) * W;
      const double cy = 0.5 * (y0 + y1), ry = 0.5 * (y1 - y0) + r_.uniform(0.3, 0.9) * h;
      last->points.push_back(pt(cx + rx, cy + 0.2 * ry));
      for (int i = 1; i <= 4; ++i) {
        const double a = 0.2 + i * 1.45;
        last->points.push_back(pt(cx + rx * std::cos(a), cy + ry * std::sin(a), 0.5));
      }
    }
  }

  WriterPlan& p_;
  WriterStyle& st_;
  Rng& r_;
  std::vector<PlanPart> parts_;
  double cap_width_ = 0.7, letter_gap_ = 0.1, scribble_amp_ = 0.6, scribble_width_ = 1;
  bool dash_dots_ = false;
};

// Applies the slant, the baseline's slope and a scale to every point and letter of the plan.
void shape_plan(WriterPlan& p, double shear, double slope, double scale) {
  const double c = std::cos(slope), s = std::sin(slope);
  for (PlanPart& part : p.parts)
    for (PlanPoint& q : part.points) {
      const double x = (q.x + q.y * shear) * scale, y = q.y * scale;
      q.x = c * x - s * y;
      q.y = s * x + c * y;
    }
  for (PlanLetter& l : p.letters) {
    l.origin *= scale * c;
    l.width *= scale * c;
  }
  p.style.x_height_mm *= scale;
}

// Turning of the stroke from points[i-1] to points[i]: half the polygon's turn at each end, except
// at cusps (reversals), which stay sharp.
constexpr double kCuspTurn = 105 * kDeg;

std::vector<double> smoothing_bends(const std::vector<PlanPoint>& pts) {
  const size_t n = pts.size();
  std::vector<double> turn(n, 0.0), bend(n, 0.0);
  for (size_t k = 1; k + 1 < n; ++k) {
    const double a = std::atan2(pts[k].y - pts[k - 1].y, pts[k].x - pts[k - 1].x);
    const double b = std::atan2(pts[k + 1].y - pts[k].y, pts[k + 1].x - pts[k].x);
    const double t = wrap(b - a);
    turn[k] = std::fabs(t) < kCuspTurn ? t : 0;
  }
  for (size_t i = 1; i < n; ++i) bend[i] = 0.5 * (turn[i - 1] + turn[i]);
  return bend;
}

bool is_cusp(const std::vector<PlanPoint>& pts, size_t k) {
  if (k == 0 || k + 1 >= pts.size()) return false;
  const double a = std::atan2(pts[k].y - pts[k - 1].y, pts[k].x - pts[k - 1].x);
  const double b = std::atan2(pts[k + 1].y - pts[k].y, pts[k + 1].x - pts[k].x);
  return std::fabs(wrap(b - a)) >= kCuspTurn;
}

// How a signing deviates from the plan (all in the plan's units, mm and radians).
struct Deformation {
  double scale = 1, aspect = 1, shear = 0, rotation = 0;
  std::vector<double> letter_sx, letter_sy, letter_dy, letter_gap;
  double point_sd = 0, flourish_sd = 0, mark_sd = 0;
  double curviness = 1, bend_sd = 0;
  double tempo = 1, sigma_add = 0, overlap_add = 0, mu_sd = 0, sigma_sd = 0;
  double d_sd = 0, theta_sd = 0;
  double tremor_mm = 0;
  int hesitations = 0;
  double flying = 0;
  bool drop_flourish = false;
  double drop_mark = 0;
};

// Components (strokes from the deformed virtual targets) of a plan under a deformation.
struct Built {
  std::vector<Component> components;
  std::vector<PartKind> kinds;
};

Built build_components(const WriterPlan& plan, const Deformation& d, Rng& r) {
  const WriterStyle& st = plan.style;
  const double h = st.x_height_mm;
  // Letters: new origins from the scaled widths and gaps, so that the word stays connected.
  const size_t nl = plan.letters.size();
  std::vector<double> origin(nl);
  for (size_t j = 0; j < nl; ++j) {
    const double jitter = j < d.letter_gap.size() ? d.letter_gap[j] : 0;
    origin[j] =
        j == 0 ? plan.letters[0].origin + jitter
               : origin[j - 1] +
                     (plan.letters[j].origin - plan.letters[j - 1].origin) * d.letter_sx[j - 1] +
                     jitter;
  }
  double stretch = 1;
  if (nl > 1) {
    const double a = plan.letters.back().origin - plan.letters[0].origin;
    if (a > 1e-6) stretch = (origin.back() - origin[0]) / a;
  }
  const double cr = std::cos(d.rotation), sr = std::sin(d.rotation);
  auto place = [&](const PlanPoint& q, double sd) {
    double x = q.x, y = q.y;
    if (q.letter >= 0 && size_t(q.letter) < nl) {
      const size_t j = size_t(q.letter);
      x = origin[j] + (q.x - plan.letters[j].origin) * d.letter_sx[j];
      y = q.y * d.letter_sy[j] + d.letter_dy[j];
    } else if (nl > 0) {
      x = origin[0] + (q.x - plan.letters[0].origin) * stretch;
    }
    x += r.normal(sd);
    y += r.normal(sd);
    y *= d.aspect;
    x += y * d.shear;
    x *= d.scale;
    y *= d.scale;
    return PlanPoint{cr * x - sr * y, sr * x + cr * y, q.bend, q.letter};
  };

  // Deformed parts, then the forger's hesitations: a pen lift inside a part, the pen landing again
  // near where it stopped (sometimes a little back, retracing).
  std::vector<PlanPart> parts;
  for (const PlanPart& part : plan.parts) {
    if (part.kind == PartKind::kFlourish && d.drop_flourish) continue;
    if ((part.kind == PartKind::kDot || part.kind == PartKind::kCross) && r.chance(d.drop_mark))
      continue;
    const double sd = part.kind == PartKind::kName       ? d.point_sd
                      : part.kind == PartKind::kFlourish ? d.flourish_sd
                                                         : d.mark_sd;
    PlanPart out{part.kind, {}};
    const Vec2 shift{r.normal(part.kind == PartKind::kName ? 0 : sd),
                     r.normal(part.kind == PartKind::kName ? 0 : sd)};
    for (const PlanPoint& q : part.points) {
      const bool flourish_point = q.letter < 0 && part.kind == PartKind::kName;
      PlanPoint p = place(q, flourish_point ? d.flourish_sd : sd);
      p.x += shift.x;
      p.y += shift.y;
      out.points.push_back(p);
    }
    parts.push_back(out);
  }
  for (int k = 0; k < d.hesitations; ++k) {
    std::vector<size_t> candidates;
    for (size_t i = 0; i < parts.size(); ++i)
      if (parts[i].kind == PartKind::kName && parts[i].points.size() >= 5) candidates.push_back(i);
    if (candidates.empty()) break;
    const size_t i = candidates[size_t(r.integer(0, int(candidates.size()) - 1))];
    const size_t at = size_t(r.integer(2, int(parts[i].points.size()) - 3));
    PlanPart second{PartKind::kName, {}};
    const size_t from = r.chance(0.4) ? at - 1 : at;  // retouching: back over the last stroke
    second.points.assign(parts[i].points.begin() + long(from), parts[i].points.end());
    second.points[0].x += r.normal(0.06 * h);
    second.points[0].y += r.normal(0.06 * h);
    parts[i].points.resize(at + 1);
    parts.insert(parts.begin() + long(i) + 1, second);
  }

  Built b;
  const double tempo = st.tempo_s * d.tempo;
  const double sigma = clamp(st.sigma + d.sigma_add, 0.12, 0.6);
  const double overlap = clamp(st.overlap + d.overlap_add, 0.3, 1.6);
  for (const PlanPart& part : parts) {
    std::vector<PlanPoint> pts;
    for (const PlanPoint& q : part.points)  // drop targets on top of each other
      if (pts.empty() || std::hypot(q.x - pts.back().x, q.y - pts.back().y) > 1e-3 * h)
        pts.push_back(q);
    if (pts.size() < 2) continue;
    const std::vector<double> smooth = smoothing_bends(pts);
    Component c;
    c.start = {pts[0].x, pts[0].y};
    double t0 = 0;
    for (size_t i = 1; i < pts.size(); ++i) {
      const double bend =
          clamp(d.curviness * st.curviness * smooth[i] + pts[i].bend + r.normal(d.bend_sd),
                -1.6 * kPi, 1.6 * kPi);
      const double chord = std::hypot(pts[i].x - pts[i - 1].x, pts[i].y - pts[i - 1].y);
      // Longer strokes take longer, less than proportionally (exp(mu) ~ D^0.35).
      const double mu =
          std::log(tempo) + 0.35 * std::log(std::max(0.2, chord / h)) + r.normal(d.mu_sd);
      const double sg = clamp(sigma + r.normal(d.sigma_sd), 0.1, 0.7);
      Stroke s = bpkit_sigma::arc_stroke({pts[i - 1].x, pts[i - 1].y}, {pts[i].x, pts[i].y}, bend,
                                         t0, mu, sg);
      s.D *= std::exp(r.normal(d.d_sd));
      s.theta_s += r.normal(d.theta_sd);
      s.theta_e += r.normal(d.theta_sd);
      c.strokes.push_back(s);
      // The next command: after a fraction of this stroke's duration; later at a cusp, where the
      // pen nearly stops to reverse.
      t0 += std::exp(mu) * overlap * (is_cusp(pts, i) ? 1.35 : 1.0);
    }
    b.components.push_back(c);
    b.kinds.push_back(part.kind);
  }
  return b;
}

constexpr double kRateHz = 500;

// Pen-down traces of the components: tremor added to the positions, pressure tapered over the
// first and last `flying` mm (the pen lands and lifts while moving).
Signing trace(const Built& b, const Deformation& d, double h, Rng& r) {
  Signing s;
  s.components = b.components;
  // Tremor: a sum of three sinusoids per axis at 4-11 Hz (a forger's physiological and
  // control tremor), continuous over the whole signing.
  double fx[3], fy[3], px[3], py[3];
  for (int k = 0; k < 3; ++k) {
    fx[k] = r.uniform(4, 11);
    fy[k] = r.uniform(4, 11);
    px[k] = r.uniform(0, 2 * kPi);
    py[k] = r.uniform(0, 2 * kPi);
  }
  double clock = 0;
  for (size_t ci = 0; ci < b.components.size(); ++ci) {
    const std::vector<PenSample> path = bpkit_sigma::trajectory(b.components[ci], kRateHz);
    if (path.size() < 2) continue;
    InkTrace t;
    t.reserve(path.size());
    double total = 0;
    std::vector<double> along(path.size(), 0.0);
    for (size_t i = 1; i < path.size(); ++i) {
      total += std::hypot(path[i].x - path[i - 1].x, path[i].y - path[i - 1].y);
      along[i] = total;
    }
    const bool mark = b.kinds[ci] == PartKind::kDot;
    const double taper_in = mark ? 0 : d.flying * r.uniform(0.3, 1.2) * h;
    const double taper_out = mark ? 0 : d.flying * r.uniform(0.3, 1.5) * h;
    for (size_t i = 0; i < path.size(); ++i) {
      const double tt = clock + path[i].t - path[0].t;
      double ox = 0, oy = 0;
      for (int k = 0; k < 3; ++k) {
        ox += std::sin(2 * kPi * fx[k] * tt + px[k]);
        oy += std::sin(2 * kPi * fy[k] * tt + py[k]);
      }
      auto ramp = [](double x) {
        x = clamp(x, 0, 1);
        return x * x * (3 - 2 * x);
      };
      double pressure = 1;
      if (taper_in > 0) pressure *= ramp(along[i] / std::min(taper_in, 0.45 * total));
      if (taper_out > 0) pressure *= ramp((total - along[i]) / std::min(taper_out, 0.45 * total));
      t.push_back({path[i].x + d.tremor_mm * ox / std::sqrt(3.0),
                   path[i].y + d.tremor_mm * oy / std::sqrt(3.0), path[i].speed, pressure});
    }
    const double dur = path.back().t - path[0].t;
    s.duration_s += dur;
    clock += dur + 0.2;
    s.traces.push_back(std::move(t));
  }
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

WriterPlan make_writer(uint64_t seed, int64_t index) {
  Rng r(item_seed(seed, uint64_t(index), 0x5717e5));
  WriterPlan p;
  p.index = index;
  WriterStyle& st = p.style;
  st.x_height_mm = r.uniform(2.5, 6.5);
  const int slant = r.choose({0.7, 0.2, 0.1});
  st.slant_deg = slant == 0 ? r.uniform(5, 35) : slant == 1 ? r.uniform(-5, 5) : r.uniform(-20, -5);
  st.width_ratio = r.uniform(0.7, 1.4);
  st.capital_height = r.uniform(1.7, 3.4);
  const int leg = r.choose({0.15, 0.3, 0.55});
  st.legibility = leg == 0   ? r.uniform(0, 0.35)
                  : leg == 1 ? r.uniform(0.35, 0.7)
                             : r.uniform(0.7, 1);
  st.curviness = r.uniform(0.75, 1.25);
  st.tempo_s = r.uniform(0.06, 0.15);
  st.sigma = r.uniform(0.18, 0.38);
  st.overlap = r.uniform(0.45, 0.9) + 0.2 * st.legibility;
  st.flying = r.uniform(0, 1);
  st.lift = r.chance(0.3) ? r.uniform(0.05, 0.35) : 0;
  st.variability = clamp(std::exp(r.normal(0.35)), 0.5, 2);
  st.dots = r.chance(0.8);
  const int layout = r.choose({0.45, 0.3, 0.25});
  st.layout = layout == 0 ? "full" : layout == 1 ? "initial" : "last";
  const int fl = r.choose({0.2, 0.27, 0.27, 0.18, 0.08});
  st.flourish = fl == 0   ? "none"
                : fl == 1 ? "underline-return"
                : fl == 2 ? "underline"
                : fl == 3 ? "zigzag"
                          : "encircle";
  st.lead_in = r.chance(0.2);
  const std::string first = name_word(r, 3, 8), last = name_word(r, 4, 10);
  p.name = st.layout == "full"      ? first + " " + last
           : st.layout == "initial" ? first.substr(0, 1) + ". " + last
                                    : last;
  PlanBuilder(p, r).build(first, last);
  // Slant and baseline, then the size: a signature 30-90 mm wide.
  shape_plan(p, std::tan(st.slant_deg * kDeg), r.normal(2.5) * kDeg, 1);
  double x0 = 1e9, x1 = -1e9;
  for (const PlanPart& part : p.parts)
    for (const PlanPoint& q : part.points) {
      x0 = std::min(x0, q.x);
      x1 = std::max(x1, q.x);
    }
  const double width = x1 - x0, fitted = clamp(width, 30, 90);
  if (width > 0) shape_plan(p, 0, 0, fitted / width);
  return p;
}

std::vector<Component> plan_components(const WriterPlan& plan) {
  Deformation d;
  const size_t nl = plan.letters.size();
  d.letter_sx.assign(nl, 1);
  d.letter_sy.assign(nl, 1);
  d.letter_dy.assign(nl, 0);
  d.letter_gap.assign(nl, 0);
  Rng r(0);
  return build_components(plan, d, r).components;
}

Signing sign(const WriterPlan& plan, SampleKind kind, int64_t n, uint64_t seed,
             const SampleOptions& o) {
  const WriterStyle& st = plan.style;
  const double h = st.x_height_mm;
  const size_t nl = plan.letters.size();
  Rng r(item_seed(seed, uint64_t(plan.index), kind == SampleKind::kGenuine ? 1 : 2, uint64_t(n)));
  Deformation d;
  d.letter_sx.assign(nl, 1);
  d.letter_sy.assign(nl, 1);
  d.letter_dy.assign(nl, 0);
  d.letter_gap.assign(nl, 0);
  d.flying = st.flying;
  // The writer's own variation: every genuine signing (and, below, every forgery on top of the
  // forger's systematic changes).
  auto natural = [&](double v) {
    d.scale *= std::exp(r.normal(0.04 * v));
    d.aspect *= std::exp(r.normal(0.04 * v));
    d.shear += std::tan(r.normal(2.5 * kDeg * v));
    d.rotation += r.normal(1.5 * kDeg * v);
    for (size_t j = 0; j < nl; ++j) {
      d.letter_sx[j] *= std::exp(r.normal(0.06 * v));
      d.letter_sy[j] *= std::exp(r.normal(0.06 * v));
      d.letter_dy[j] += r.normal(0.05 * h * v);
      d.letter_gap[j] += r.normal(0.05 * h * v);
    }
    d.point_sd = 0.03 * h * v;
    d.flourish_sd = 0.12 * h * v;
    d.mark_sd = 0.15 * h * v;
    d.bend_sd = 0.08 * v;
    d.curviness *= std::exp(r.normal(0.05 * v));
    d.tempo *= std::exp(r.normal(0.06 * v));
    d.overlap_add += r.normal(0.04 * v);
    d.sigma_add += r.normal(0.02 * v);
    d.mu_sd = 0.05 * v;
    d.sigma_sd = 0.02 * v;
    d.d_sd = 0.015 * v;
    d.theta_sd = 0.02 * v;
    d.drop_mark = 0.05;
  };
  Signing s;
  if (kind == SampleKind::kGenuine) {
    natural(st.variability * o.variation);
    const Built b = build_components(plan, d, r);
    s = trace(b, d, h, r);
  } else {
    // The forger (4 consecutive forgeries each) imitates the shape with a systematic error of
    // proportions, slant and size that grows as the skill falls, and signs slowly.
    const int forger = int(n / 4);
    Rng fr(item_seed(seed, uint64_t(plan.index), 3, uint64_t(forger)));
    const double skill = clamp(o.forgery_skill + fr.normal(0.12), 0, 1), a = 1 - skill;
    d.scale *= std::exp(fr.normal(0.05 + 0.12 * a));
    d.aspect *= std::exp(fr.normal(0.05 + 0.15 * a));
    d.shear += std::tan(fr.normal((3 + 10 * a) * kDeg));
    d.rotation += fr.normal((1 + 3 * a) * kDeg);
    for (size_t j = 0; j < nl; ++j) {
      d.letter_sx[j] *= std::exp(fr.normal(0.05 + 0.18 * a));
      d.letter_sy[j] *= std::exp(fr.normal(0.05 + 0.18 * a));
      d.letter_dy[j] += fr.normal((0.03 + 0.12 * a) * h);
    }
    d.curviness *= std::exp(fr.normal(0.08 + 0.25 * a));
    const double slowness = (1.5 + 2.5 * a) * std::exp(fr.normal(0.15));
    const double overlap = 0.1 + 0.3 * a;
    const double flying = st.flying * 0.3 * skill;
    const double tremor = (0.004 + 0.018 * a) * h * std::exp(fr.normal(0.3));
    const double hesitation = 0.3 + 2.5 * a;
    const bool drops_flourish = fr.chance(0.3 * a);
    // This forgery: the writer-like variation, larger, and the forger's movement.
    natural(1 + 1.5 * a);
    d.point_sd = (0.04 + 0.08 * a) * h;
    d.flourish_sd = (0.2 + 0.4 * a) * h;
    d.bend_sd = 0.1 + 0.25 * a;
    d.tempo *= slowness;
    d.overlap_add += overlap;
    d.sigma_add += 0.04 + 0.08 * a;
    d.flying = flying;
    d.tremor_mm = tremor;
    d.hesitations = r.poisson(hesitation);
    d.drop_flourish = drops_flourish;
    d.drop_mark = 0.02;
    const Built b = build_components(plan, d, r);
    s = trace(b, d, h, r);
    s.forger = forger;
    s.skill = skill;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Scans.

namespace {

struct Pen {
  std::string type;
  double width_mm;
  double grain;       // ballpoint: ink skipping the paper's valleys
  double gappiness;   // ballpoint: gaps on fast strokes
  double width_slow;  // how much wider at rest than fast
  double dark_fast;   // darkness of fast strokes (1 at rest)
  double strength;    // ink density
};

Pen draw_pen(Rng& r) {
  Pen p;
  const int k = r.choose({0.6, 0.22, 0.18});
  if (k == 0) {
    p = {"ballpoint",           r.uniform(0.3, 0.7), r.uniform(0.15, 0.45), r.uniform(0, 1),
         r.uniform(0.15, 0.35), r.uniform(0.4, 0.7), r.uniform(0.75, 1)};
  } else if (k == 1) {
    p = {"felt-tip",          r.uniform(0.5, 1.0),  r.uniform(0, 0.1), 0,
         r.uniform(0.3, 0.6), r.uniform(0.8, 0.95), r.uniform(0.85, 1)};
  } else {
    p = {"gel",
         r.uniform(0.35, 0.7),
         r.uniform(0, 0.1),
         0,
         r.uniform(0.1, 0.2),
         r.uniform(0.85, 0.95),
         r.uniform(0.9, 1)};
  }
  return p;
}

struct Ink {
  std::string name;
  cv::Vec3f bgr;  // transmitted colour of a full layer, 0..1
};

Ink draw_ink(Rng& r) {
  const int k = r.choose({0.35, 0.35, 0.2, 0.1});
  // A shade per pen: mostly a common offset, a little per channel (no green tint in black).
  const double common = r.normal(0.03);
  auto j = [&](double v) { return float(clamp(v + common + r.normal(0.008), 0, 1)); };
  switch (k) {
    case 1:
      return {"blue", {j(0.65), j(0.25), j(0.1)}};
    case 2:
      return {"dark-blue", {j(0.4), j(0.12), j(0.08)}};
    case 3:
      return {"violet", {j(0.55), j(0.12), j(0.35)}};
    default:
      return {"black", {j(0.06), j(0.06), j(0.07)}};
  }
}

// 1D value noise (0..1) along a stroke, from a hash of the cell.
double value_noise(uint64_t seed, double s) {
  const double f = std::floor(s);
  auto cell = [&](double c) {
    return double(bpkit_tools::mix(seed ^ uint64_t(int64_t(c))) >> 11) / double(1ULL << 53);
  };
  const double t = s - f, a = cell(f), b = cell(f + 1);
  return a + (b - a) * t * t * (3 - 2 * t);
}

// Draws a segment with linearly varying radius and darkness into `dens` (max compositing),
// coverage from the distance to the segment (a one-pixel anti-aliasing ramp).
void draw_segment(cv::Mat& dens, cv::Point2d a, cv::Point2d b, double ra, double rb, double da,
                  double db) {
  const double rm = std::max(ra, rb) + 1;
  const int x0 = std::max(0, int(std::floor(std::min(a.x, b.x) - rm)));
  const int x1 = std::min(dens.cols - 1, int(std::ceil(std::max(a.x, b.x) + rm)));
  const int y0 = std::max(0, int(std::floor(std::min(a.y, b.y) - rm)));
  const int y1 = std::min(dens.rows - 1, int(std::ceil(std::max(a.y, b.y) + rm)));
  const double ex = b.x - a.x, ey = b.y - a.y, l2 = ex * ex + ey * ey;
  for (int y = y0; y <= y1; ++y) {
    float* row = dens.ptr<float>(y);
    const double py = y + 0.5 - a.y;
    for (int x = x0; x <= x1; ++x) {
      const double px = x + 0.5 - a.x;
      const double t = l2 > 0 ? clamp((px * ex + py * ey) / l2, 0, 1) : 0;
      const double dx = px - t * ex, dy = py - t * ey;
      const double cov = clamp(ra + (rb - ra) * t + 0.5 - std::sqrt(dx * dx + dy * dy), 0, 1);
      if (cov <= 0) continue;
      const float v = float(cov * (da + (db - da) * t));
      if (v > row[x]) row[x] = v;
    }
  }
}

// Multiplies the transmittance `T` by a layer: alpha * mask (0..255) of colour `bgr`.
void compose(cv::Mat& T, const cv::Mat& mask, cv::Vec3f bgr, double alpha) {
  const cv::Rect box = cv::boundingRect(mask);
  for (int y = box.y; y < box.y + box.height; ++y) {
    const uchar* m = mask.ptr<uchar>(y);
    cv::Vec3f* t = T.ptr<cv::Vec3f>(y);
    for (int x = box.x; x < box.x + box.width; ++x) {
      if (!m[x]) continue;
      const float a = float(alpha * m[x] / 255.0);
      for (int c = 0; c < 3; ++c) t[x][c] *= 1 - a * (1 - bgr[c]);
    }
  }
}

// Text drawn upright into a patch and pasted into `mask` rotated by `angle_deg` (OpenCV's sense)
// with its centre at `center` (max compositing).
void paste_text(cv::Mat& mask, const std::string& text, int font, double scale, int thickness,
                cv::Point2d center, double angle_deg, bool mirror = false) {
  int base = 0;
  const cv::Size ts = cv::getTextSize(text, font, scale, thickness, &base);
  const int pad = thickness + 4;
  cv::Mat patch(ts.height + base + 2 * pad, ts.width + 2 * pad, CV_8U, cv::Scalar(0));
  cv::putText(patch, text, {pad, pad + ts.height}, font, scale, cv::Scalar(255), thickness,
              cv::LINE_AA);
  if (mirror) cv::flip(patch, patch, 1);
  const double diag = std::hypot(patch.cols, patch.rows);
  const cv::Rect want(int(center.x - diag / 2), int(center.y - diag / 2), int(diag) + 1,
                      int(diag) + 1);
  const cv::Rect roi = want & cv::Rect(0, 0, mask.cols, mask.rows);
  if (roi.area() <= 0) return;
  cv::Mat M = cv::getRotationMatrix2D({patch.cols / 2.0f, patch.rows / 2.0f}, angle_deg, 1.0);
  M.at<double>(0, 2) += center.x - patch.cols / 2.0 - roi.x;
  M.at<double>(1, 2) += center.y - patch.rows / 2.0 - roi.y;
  cv::Mat warped;
  cv::warpAffine(patch, warped, M, roi.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                 cv::Scalar(0));
  cv::Mat dst = mask(roi);
  cv::max(dst, warped, dst);
}

// A fast generator for per-pixel noise (xorshift64*); OpenCV's RNG is several times slower.
struct PixelNoise {
  uint64_t s;
  uint32_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return uint32_t((s * 0x2545F4914F6CDD1DULL) >> 32);
  }
  float uniform() { return float(next()) * (1.0f / 4294967296.0f); }
  // About standard normal: the sum of four uniforms (16 bits each), centred and scaled.
  float normal() {
    const uint32_t a = next(), b = next();
    const float sum = float((a & 0xffff) + (a >> 16) + (b & 0xffff) + (b >> 16)) / 65536.0f;
    return (sum - 2.0f) * 1.7320508f;
  }
};

void fill_normal(cv::Mat& m, double sd, uint64_t seed) {
  PixelNoise pn{seed | 1};
  for (int y = 0; y < m.rows; ++y) {
    float* row = m.ptr<float>(y);
    for (int x = 0; x < m.cols; ++x) row[x] = float(sd) * pn.normal();
  }
}

// Smooth noise in [0, 1] with features about `cell` pixels wide: uniform values on a coarse grid,
// interpolated (bicubic).
cv::Mat smooth_noise(int H, int W, double cell, Rng& r) {
  PixelNoise pn{r.bits() | 1};
  if (cell <= 1.5) {
    cv::Mat m(H, W, CV_32F);
    for (int y = 0; y < H; ++y) {
      float* row = m.ptr<float>(y);
      for (int x = 0; x < W; ++x) row[x] = pn.uniform();
    }
    return m;
  }
  cv::Mat coarse(std::max(2, int(H / cell) + 2), std::max(2, int(W / cell) + 2), CV_32F);
  for (int y = 0; y < coarse.rows; ++y)
    for (int x = 0; x < coarse.cols; ++x) coarse.at<float>(y, x) = pn.uniform();
  cv::Mat fine;
  cv::resize(coarse, fine, cv::Size(W, H), 0, 0, cv::INTER_CUBIC);
  cv::min(cv::max(fine, 0), 1, fine);
  return fine;
}

const int kFonts[] = {cv::FONT_HERSHEY_SIMPLEX, cv::FONT_HERSHEY_DUPLEX,
                      cv::FONT_HERSHEY_COMPLEX, cv::FONT_HERSHEY_TRIPLEX,
                      cv::FONT_HERSHEY_PLAIN,   cv::FONT_HERSHEY_COMPLEX_SMALL};

// The font scale that makes capitals `mm` high at `ppm` pixels per mm.
double font_scale(int font, double mm, double ppm) {
  int base = 0;
  const cv::Size s = cv::getTextSize("H", font, 1.0, 1, &base);
  return mm * ppm / std::max(1, s.height);
}

}  // namespace

Scan render_scan(const Signing& sg, uint64_t image_seed, const ScanOptions& o) {
  Rng r(image_seed);
  Scan out;
  const bool clean = o.clean;
  out.dpi = int(std::lround(o.dpi_lo >= o.dpi_hi
                                ? o.dpi_lo
                                : std::exp(r.uniform(std::log(o.dpi_lo), std::log(o.dpi_hi)))));
  const double ppm = out.dpi / 25.4;
  const Pen pen = draw_pen(r);
  const Ink ink = draw_ink(r);
  char pen_name[48];
  std::snprintf(pen_name, sizeof pen_name, "%s-%.2fmm", pen.type.c_str(), pen.width_mm);
  out.pen = pen_name;
  out.ink = ink.name;
  out.rotation_deg = clean ? 0 : r.chance(0.6) ? clamp(r.normal(1.5), -10, 10) : r.uniform(-10, 10);

  // The signature's extent in mm (y up) and the page's upright pixel frame (y down).
  double x0 = 1e9, x1 = -1e9, y0 = 1e9, y1 = -1e9;
  for (const InkTrace& t : sg.traces)
    for (const InkPoint& p : t) {
      x0 = std::min(x0, p.x);
      x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y);
      y1 = std::max(y1, p.y);
    }
  if (x1 < x0) x0 = x1 = y0 = y1 = 0;
  const double pad = pen.width_mm;
  x0 -= pad;
  x1 += pad;
  y0 -= pad;
  y1 += pad;
  out.width_mm = x1 - x0;
  const double w0 = (x1 - x0) * ppm, h0 = (y1 - y0) * ppm;
  auto upright = [&](double x, double y) { return cv::Point2d((x - x0) * ppm, (y1 - y) * ppm); };
  // Rotation about the signature's centre, then margins of 3-20 mm on each side.
  const double th = out.rotation_deg * kDeg, c = std::cos(th), s = std::sin(th);
  const double rw = std::fabs(w0 * c) + std::fabs(h0 * s),
               rh = std::fabs(w0 * s) + std::fabs(h0 * c);
  double margin[4];
  for (double& m : margin) m = (clean ? 5 : r.uniform(3, 20)) * ppm;
  const int W = int(std::ceil(rw + margin[0] + margin[1]));
  const int H = int(std::ceil(rh + margin[2] + margin[3]));
  const cv::Point2d center_up(w0 / 2, h0 / 2), center(margin[0] + rw / 2, margin[2] + rh / 2);
  // OpenCV's angle sense (counter-clockwise on screen, y down) for points and text alike.
  auto to_image = [&](cv::Point2d p) {
    const double dx = p.x - center_up.x, dy = p.y - center_up.y;
    return cv::Point2d(center.x + c * dx + s * dy, center.y - s * dx + c * dy);
  };

  // Ink density, from speed and pressure (slow: darker and wider; fast ballpoint: faint, gaps).
  cv::Mat dens(H, W, CV_32F, cv::Scalar(0));
  const double px_w = pen.width_mm * ppm;
  const uint64_t gap_seed = r.bits();
  const double gap_cell = r.uniform(0.25, 0.7);  // mm
  for (const InkTrace& t : sg.traces) {
    double along = 0;
    std::vector<cv::Point2d> p(t.size());
    std::vector<double> rad(t.size()), dark(t.size());
    for (size_t i = 0; i < t.size(); ++i) {
      p[i] = to_image(upright(t[i].x, t[i].y));
      if (i) along += std::hypot(t[i].x - t[i - 1].x, t[i].y - t[i - 1].y);
      const double q = std::exp(-t[i].speed / 60.0);  // 1 at rest, 0.37 at 60 mm/s
      const double pr = t[i].pressure;
      rad[i] = 0.5 * px_w * (1 - pen.width_slow + pen.width_slow * (0.5 + q)) * std::sqrt(pr);
      double dk = pen.strength * (pen.dark_fast + (1 - pen.dark_fast) * q) * std::sqrt(pr);
      if (pen.gappiness > 0 && t[i].speed > 90) {
        const double g = clamp((t[i].speed - 90) / 400, 0, 0.4) * pen.gappiness;
        if (value_noise(gap_seed, along / gap_cell) < g) dk *= 0.45;
      }
      dark[i] = pr < 0.05 ? 0 : dk;
    }
    for (size_t i = 1; i < t.size(); ++i)
      if (dark[i - 1] > 0 || dark[i] > 0)
        draw_segment(dens, p[i - 1], p[i], rad[i - 1], rad[i], dark[i - 1], dark[i]);
  }
  if (pen.grain > 0 && !clean) {  // ink missing the paper's valleys (cells of ~0.05 mm)
    const cv::Mat grain = smooth_noise(H, W, std::max(1.0, 0.05 * ppm), r);
    dens = dens.mul(1 - pen.grain * grain);
  }

  cv::Mat T(H, W, CV_32FC3, cv::Scalar(1, 1, 1));  // transmittance of what lies on the paper
  std::vector<std::string> clutter;
  cv::Mat light;  // the fold's shading, when there is one
  if (!clean) {
    auto gray_ink = [&] {
      const float g = float(r.uniform(0.05, 0.5));
      return cv::Vec3f(g, g, g);
    };
    auto line_colour = [&] {
      switch (r.choose({0.45, 0.2, 0.15, 0.1, 0.1})) {
        case 1:
          return cv::Vec3f(0.85f, 0.55f, 0.3f);  // blue
        case 2:
          return cv::Vec3f(0.3f, 0.3f, 0.85f);  // red
        case 3:
          return cv::Vec3f(0.35f, 0.65f, 0.35f);  // green
        case 4:
          return cv::Vec3f(0.7f, 0.7f, 0.7f);  // light gray
        default:
          return gray_ink();
      }
    };
    const double base_y = y1 * ppm;  // the baseline (plan y = 0) in the upright frame
    cv::Mat mask(H, W, CV_8U);
    auto line = [&](cv::Point2d a, cv::Point2d b, double width_mm, bool dashed) {
      const int th_px = std::max(1, int(std::lround(width_mm * ppm)));
      if (!dashed) {
        cv::line(mask, to_image(a), to_image(b), cv::Scalar(255), th_px, cv::LINE_AA);
        return;
      }
      const double len = std::hypot(b.x - a.x, b.y - a.y), dash = r.uniform(0.5, 2.5) * ppm;
      for (double u = 0; u < len; u += 2 * dash) {
        const double v = std::min(len, u + dash);
        cv::line(mask, to_image(a + (b - a) * (u / len)), to_image(a + (b - a) * (v / len)),
                 cv::Scalar(255), th_px, cv::LINE_AA);
      }
    };
    const double far = 200 * ppm;
    if (r.chance(0.35)) {  // the signature line
      clutter.push_back("line");
      mask.setTo(0);
      const double y = base_y + r.uniform(0.02, 0.3) * h0;
      const double ext = r.chance(0.5) ? far : r.uniform(3, 30) * ppm;
      line({-r.uniform(0, 1) * ext, y}, {w0 + r.uniform(0, 1) * ext, y}, r.uniform(0.08, 0.35),
           r.chance(0.25));
      compose(T, mask, line_colour(), r.uniform(0.5, 1));
    }
    if (r.chance(0.1)) {  // a box for the signature
      clutter.push_back("box");
      mask.setTo(0);
      const double m = r.uniform(1, 12) * ppm;
      const cv::Point2d a(-m - r.uniform(0, 10) * ppm, -m),
          b(w0 + m + r.uniform(0, 10) * ppm, h0 + m);
      const double wmm = r.uniform(0.1, 0.4);
      line(a, {b.x, a.y}, wmm, false);
      line({b.x, a.y}, b, wmm, false);
      line(b, {a.x, b.y}, wmm, false);
      line({a.x, b.y}, a, wmm, false);
      compose(T, mask, line_colour(), r.uniform(0.5, 1));
    }
    if (r.chance(0.06)) {  // ruled paper
      clutter.push_back("ruled");
      mask.setTo(0);
      const double step = r.uniform(6, 9) * ppm, off = r.uniform(0, step);
      for (double y = -far + off; y < h0 + far; y += step)
        if (y > -3 * H && y < 3 * H) line({-far, y}, {w0 + far, y}, 0.1, false);
      compose(T, mask, {0.9f, 0.75f, 0.55f}, r.uniform(0.4, 0.9));
    }
    if (r.chance(0.35)) {  // printed text near the signature
      clutter.push_back("text");
      mask.setTo(0);
      static const char* const labels[] = {
          "Signature:",           "Sign here", "Signed:", "Signature",
          "Authorized signature", "X",         "Date:",   "Customer"};
      Rng names(r.bits());
      std::string text;
      switch (r.integer(0, 3)) {
        case 0:
          text = labels[r.integer(0, 7)];
          break;
        case 1:
          text = name_word(names, 3, 8) + " " + name_word(names, 4, 10);
          break;
        case 2: {
          char d[32];
          std::snprintf(d, sizeof d, "Date: %02d/%02d/%04d", r.integer(1, 28), r.integer(1, 12),
                        r.integer(1990, 2026));
          text = d;
          break;
        }
        default:
          text = "Name: " + name_word(names, 3, 8) + " " + name_word(names, 4, 10);
      }
      const int font = kFonts[r.integer(0, 5)] | (r.chance(0.2) ? cv::FONT_ITALIC : 0);
      const double size_mm = r.uniform(1.8, 3.5);
      const double sc = font_scale(font, size_mm, ppm);
      const int thick = std::max(1, int(std::lround(r.uniform(0.1, 0.3) * ppm)));
      int base = 0;
      const cv::Size ts = cv::getTextSize(text, font, sc, thick, &base);
      cv::Point2d at;
      switch (r.integer(0, 2)) {
        case 0:
          at = {-ts.width / 2.0 - r.uniform(2, 8) * ppm, base_y - ts.height / 2.0};
          break;
        case 1:
          at = {w0 * r.uniform(0.2, 0.8), h0 + r.uniform(1, 6) * ppm + ts.height};
          break;
        default:
          at = {w0 * r.uniform(0.2, 0.8), -r.uniform(1, 6) * ppm - ts.height};
      }
      paste_text(mask, text, font, sc, thick, to_image(at), out.rotation_deg);
      compose(T, mask, gray_ink(), r.uniform(0.7, 1));
    }
    if (r.chance(0.08)) {  // a stamp, often over the signature's edge
      clutter.push_back("stamp");
      mask.setTo(0);
      const cv::Point2d at(r.chance(0.5) ? r.uniform(-0.1, 0.2) * w0 : r.uniform(0.8, 1.1) * w0,
                           r.uniform(-0.2, 1.2) * h0);
      const double rad = r.uniform(9, 18) * ppm;
      const int th_px = std::max(1, int(std::lround(r.uniform(0.3, 0.7) * ppm)));
      static const char* const words[] = {"RECEIVED", "APPROVED", "PAID",
                                          "COPY",     "VERIFIED", "ORIGINAL"};
      const std::string word = words[r.integer(0, 5)];
      const double ang = out.rotation_deg + r.uniform(-25, 25);
      if (r.chance(0.5)) {
        cv::circle(mask, to_image(at), int(rad), cv::Scalar(255), th_px, cv::LINE_AA);
        cv::circle(mask, to_image(at), int(rad * 0.8), cv::Scalar(255), std::max(1, th_px / 2),
                   cv::LINE_AA);
        paste_text(
            mask, word, cv::FONT_HERSHEY_DUPLEX,
            1.4 * rad /
                std::max(1, cv::getTextSize(word, cv::FONT_HERSHEY_DUPLEX, 1, 1, nullptr).width),
            th_px, to_image(at), ang);
      } else {
        const cv::RotatedRect rr(to_image(at), cv::Size2f(float(2.6 * rad), float(rad)),
                                 float(-ang));
        cv::Point2f v[4];
        rr.points(v);
        for (int k = 0; k < 4; ++k)
          cv::line(mask, v[k], v[(k + 1) % 4], cv::Scalar(255), th_px, cv::LINE_AA);
        paste_text(
            mask, word, cv::FONT_HERSHEY_DUPLEX,
            2.2 * rad /
                std::max(1, cv::getTextSize(word, cv::FONT_HERSHEY_DUPLEX, 1, 1, nullptr).width),
            th_px, to_image(at), ang);
      }
      // Stamp ink is patchy: half to full strength in blotches of about a millimetre.
      const cv::Mat blotch = smooth_noise(H, W, 1.0 * ppm, r);
      for (int y = 0; y < H; ++y) {
        uchar* m = mask.ptr<uchar>(y);
        const float* b = blotch.ptr<float>(y);
        for (int x = 0; x < W; ++x) m[x] = uchar(m[x] * (0.5f + 0.5f * b[x]));
      }
      const cv::Vec3f colours[] = {{0.3f, 0.25f, 0.9f}, {0.85f, 0.4f, 0.2f}, {0.7f, 0.3f, 0.6f}};
      compose(T, mask, colours[r.integer(0, 2)], r.uniform(0.3, 0.7));
    }
    if (r.chance(0.08)) {  // text printed on the back, seen through the paper
      clutter.push_back("bleed-through");
      mask.setTo(0);
      Rng words(r.bits());
      const double size_mm = r.uniform(2, 3.5);
      const int font = kFonts[r.integer(0, 3)];
      const double sc = font_scale(font, size_mm, ppm);
      const double y_start = r.uniform(-0.3, 0.6) * H;
      const int lines = r.integer(2, 5);
      for (int k = 0; k < lines; ++k) {
        std::string text;
        for (int w = 0; w < 6; ++w) text += name_word(words, 2, 9) + " ";
        paste_text(mask, text, font, sc, 1,
                   {W * r.uniform(0.3, 0.7), y_start + k * size_mm * 2 * ppm}, out.rotation_deg,
                   true);
      }
      cv::GaussianBlur(mask, mask, cv::Size(0, 0), 0.3 * ppm);
      compose(T, mask, {0.3f, 0.3f, 0.3f}, r.uniform(0.05, 0.15));
    }
    if (r.chance(0.5)) {  // specks and dust
      clutter.push_back("specks");
      mask.setTo(0);
      const int n = r.integer(3, 40);
      for (int k = 0; k < n; ++k)
        cv::circle(mask, {r.integer(0, W - 1), r.integer(0, H - 1)},
                   std::max(0, int(r.uniform(0.02, 0.25) * ppm)), cv::Scalar(r.integer(80, 255)),
                   -1, cv::LINE_AA);
      if (r.chance(0.3)) {  // a hair
        std::vector<cv::Point> hair;
        cv::Point2d p(r.uniform(0, W), r.uniform(0, H));
        double dir = r.uniform(0, 2 * kPi);
        for (int k = 0; k < 30; ++k) {
          hair.push_back(p);
          dir += r.normal(0.15);
          p += cv::Point2d(std::cos(dir), std::sin(dir)) * (0.5 * ppm);
        }
        cv::polylines(mask, hair, false, cv::Scalar(160), 1, cv::LINE_AA);
      }
      compose(T, mask, gray_ink(), 1);
    }
    if (r.chance(0.08)) {  // a fold: a shaded crease across the sheet
      clutter.push_back("fold");
      const bool horizontal = r.chance(0.6);
      const double a = (horizontal ? 0 : 90) * kDeg + r.normal(3 * kDeg);
      const cv::Point2d p(r.uniform(0.1, 0.9) * W, r.uniform(0.1, 0.9) * H);
      const double nx = -std::sin(a), ny = std::cos(a), wpx = r.uniform(0.3, 1.5) * ppm;
      const double depth = r.uniform(0.04, 0.12);
      light.create(H, W, CV_32F);
      for (int y = 0; y < H; ++y) {
        float* l = light.ptr<float>(y);
        for (int x = 0; x < W; ++x) {
          const double d = ((x - p.x) * nx + (y - p.y) * ny) / wpx;
          l[x] = float(1 - depth * std::exp(-d * d) +
                       0.4 * depth * std::tanh(d) * std::exp(-0.1 * d * d));
        }
      }
    }
  }

  // Ink over everything printed (the signer signs last).
  for (int y = 0; y < H; ++y) {
    const float* d = dens.ptr<float>(y);
    cv::Vec3f* t = T.ptr<cv::Vec3f>(y);
    for (int x = 0; x < W; ++x) {
      const float a = std::min(1.0f, d[x]);
      if (a <= 0) continue;
      for (int k = 0; k < 3; ++k) t[x][k] *= 1 - a * (1 - ink.bgr[k]);
    }
  }

  const bool gray = r.chance(0.5);
  cv::Mat img;  // 8-bit
  if (clean) {
    T.convertTo(img, CV_8UC3, 255.0);
    if (gray) cv::cvtColor(img, img, cv::COLOR_BGR2GRAY);
  } else {
    // Paper: near white, sometimes yellowed; cloudy texture, grain, sometimes fibres.
    const double white = 1 - std::min(0.12, std::fabs(r.normal(0.035)));
    const double yellow = r.chance(0.25) ? r.uniform(0.02, 0.1) : 0;
    const cv::Vec3f paper(float(white - yellow), float(white - 0.4 * yellow), float(white));
    cv::Mat tex(r.integer(3, 8), r.integer(3, 8), CV_32F);
    cv::RNG(r.bits()).fill(tex, cv::RNG::NORMAL, 0, r.uniform(0.002, 0.012));
    cv::resize(tex, tex, cv::Size(W, H), 0, 0, cv::INTER_CUBIC);
    {
      cv::Mat grain(H, W, CV_32F);
      fill_normal(grain, r.uniform(0.003, 0.015), r.bits());
      if (out.dpi >= 300) {  // paper grain is about 0.1 mm: blur it at high resolutions
        cv::blur(grain, grain, cv::Size(3, 3));
        grain *= 3;
      }
      tex += grain;
    }
    if (r.chance(0.3)) {  // fibres
      clutter.push_back("fibres");
      const int n = r.integer(5, 30);
      for (int k = 0; k < n; ++k) {
        std::vector<cv::Point> f;
        cv::Point2d p(r.uniform(0, W), r.uniform(0, H));
        double dir = r.uniform(0, 2 * kPi);
        const int steps = r.integer(4, 20);
        for (int i = 0; i < steps; ++i) {
          f.push_back(p);
          dir += r.normal(0.3);
          p += cv::Point2d(std::cos(dir), std::sin(dir)) * (0.25 * ppm);
        }
        cv::polylines(tex, f, false, cv::Scalar(r.uniform(-0.04, 0.03)), 1, cv::LINE_AA);
      }
    }
    // Uneven lighting: a gradient, sometimes vignetting, sometimes a shadow along an edge; all
    // separable into a row and a column factor (plus the fold's map).
    const double ga = r.uniform(0, 2 * kPi), gs = r.uniform(0, 0.08);
    const bool vignette = r.chance(0.3), shadow = r.chance(0.1);
    const double vs = vignette ? r.uniform(0.05, 0.15) : 0, ss = r.uniform(0.1, 0.35);
    const int edge = r.integer(0, 3);
    const double sw = r.uniform(0.03, 0.15);
    if (vignette) clutter.push_back("vignette");
    if (shadow) clutter.push_back("shadow");
    const size_t nw = size_t(W), nh = size_t(H);
    std::vector<float> gx(nw), vx(nw), sx(nw, 1.f), gy(nh), vy(nh), sy(nh, 1.f);
    for (int x = 0; x < W; ++x) {
      const double u = (x + 0.5) / W;
      gx[size_t(x)] = float((u - 0.5) * std::cos(ga));
      vx[size_t(x)] = float((u - 0.5) * (u - 0.5));
      if (shadow && edge < 2) sx[size_t(x)] = float(1 - ss * std::exp(-(edge ? 1 - u : u) / sw));
    }
    for (int y = 0; y < H; ++y) {
      const double v = (y + 0.5) / H;
      gy[size_t(y)] = float((v - 0.5) * std::sin(ga));
      vy[size_t(y)] = float((v - 0.5) * (v - 0.5));
      if (shadow && edge >= 2)
        sy[size_t(y)] = float(1 - ss * std::exp(-(edge == 3 ? 1 - v : v) / sw));
    }
    cv::Mat lit(H, W, CV_32FC3);
    for (int y = 0; y < H; ++y) {
      const cv::Vec3f* t = T.ptr<cv::Vec3f>(y);
      const float* tx = tex.ptr<float>(y);
      const float* l = light.empty() ? nullptr : light.ptr<float>(y);
      cv::Vec3f* o_ = lit.ptr<cv::Vec3f>(y);
      const size_t yy = size_t(y);
      for (int x = 0; x < W; ++x) {
        const size_t xx = size_t(x);
        float L = float(1 - gs * (0.5 + 0.5 * (gx[xx] + gy[yy])));
        L *= float(1 - 2 * vs * (vx[xx] + vy[yy])) * sx[xx] * sy[yy] * (1 + tx[x]);
        if (l) L *= l[x];
        for (int k = 0; k < 3; ++k) o_[x][k] = paper[k] * L * t[x][k];
      }
    }
    lit.convertTo(img, CV_8UC3, 255.0);
    if (gray) cv::cvtColor(img, img, cv::COLOR_BGR2GRAY);
    // The scanner: optics blur, tone curve, noise.
    if (r.chance(0.7)) {
      const double sb = r.uniform(0.3, 1.0) * std::max(1.0, out.dpi / 300.0);
      cv::GaussianBlur(img, img, cv::Size(0, 0), sb);
    }
    cv::Mat lut(1, 256, CV_8U);
    const double gamma = r.chance(0.4) ? r.uniform(0.8, 1.25) : 1;
    for (int v = 0; v < 256; ++v)
      lut.at<uchar>(v) = cv::saturate_cast<uchar>(255 * std::pow(v / 255.0, gamma));
    const float sd = float(r.uniform(0.5, 3));  // levels
    PixelNoise pn{r.bits() | 1};
    const uchar* tone = lut.ptr<uchar>();
    for (int y = 0; y < H; ++y) {
      uchar* row = img.ptr<uchar>(y);
      const int n = W * img.channels();
      for (int x = 0; x < n; ++x)
        row[x] = tone[cv::saturate_cast<uchar>(row[x] + sd * pn.normal())];
    }
  }
  if (!clean && gray && r.chance(0.08)) {  // a bilevel scan
    clutter.push_back("bilevel");
    cv::threshold(img, img, 0, 255, cv::THRESH_BINARY | cv::THRESH_OTSU);
  }
  out.image = img;
  out.jpeg = !clean && r.chance(gray ? 0.3 : 0.7);  // colour scans are mostly JPEG
  out.jpeg_quality = out.jpeg ? r.integer(60, 95) : 0;
  if (out.jpeg) clutter.push_back("jpeg");
  std::string cl;
  for (const std::string& c_ : clutter) cl += (cl.empty() ? "" : ",") + c_;
  out.clutter = cl.empty() ? "none" : cl;
  return out;
}

}  // namespace bpkit_signatures
