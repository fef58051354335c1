// Synthetic handwritten signatures: writers' plans, their genuine signatures and skilled forgeries
// drawn with the sigma-lognormal model (sigma_lognormal.h), rendered as scans.
//
// A writer's plan is a list of pen-down parts (name words, i-dots and t-bars, flourishes), each a
// sequence of virtual targets in mm (y up, baseline at y = 0) taken from simple cursive letter
// shapes; consecutive targets become lognormal strokes (arcs whose turning smooths the path), with
// the writer's timing. A genuine signature perturbs the plan by the writer's own variability; a
// skilled forgery perturbs it more and differently (proportions, slant, slower and less fluent
// movement, tremor, hesitations), less so the more skilled the forger. Parameter ranges and
// probabilities are listed in docs/signature-data.md.
//
// Determinism: make_writer depends only on (seed, index); sign only on (seed, plan, kind, n,
// options); render_scan only on (its input, image_seed, options). No state is shared: every
// function may run concurrently on different arguments.
#pragma once

#include <cstdint>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "sigma_lognormal.h"

namespace bpkit_signatures {

// A seed for one item from a run's seed and up to three indices (splitmix64 chained).
uint64_t item_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0);

// A virtual target of the plan, in mm.
struct PlanPoint {
  double x = 0, y = 0;
  double bend = 0;  // turning (rad) of the stroke arriving here, added to the smoothing's
  int letter = -1;  // index into WriterPlan::letters, -1 outside letters (flourishes)
};

enum class PartKind { kName, kDot, kCross, kFlourish };
const char* part_name(PartKind k);

struct PlanPart {
  PartKind kind = PartKind::kName;
  std::vector<PlanPoint> points;  // at least 2
};

// A letter of the plan: its left edge (mm) and width; scribbled letters (illegible) are kept as
// letters so that they are perturbed like the others.
struct PlanLetter {
  double origin = 0, width = 0;
  char ch = '?';  // the letter, upper case for capitals, '~' for a scribbled one
};

struct WriterStyle {
  double x_height_mm = 4;       // after fitting the signature's width into 30-90 mm
  double slant_deg = 10;        // shear of the letters, positive to the right
  double width_ratio = 1;       // letter width relative to the model letters
  double capital_height = 2.5;  // capitals' height in x-heights
  double legibility = 1;        // 1 every letter written, 0 the first letter and a scribble
  double curviness = 1;         // multiplies the turning that smooths the path between targets
  double tempo_s = 0.1;         // exp(mu) of a stroke one x-height long
  double sigma = 0.3;           // lognormal sigma of the strokes
  double overlap = 0.7;    // onset spacing of consecutive strokes in units of exp(mu): smaller is
                           // smoother (strokes overlap more) and less legible
  double flying = 0.5;     // 0 pen lands and lifts at rest (blunt ends), 1 long tapered ends
  double lift = 0;         // probability of a pen lift between two letters of a word
  double variability = 1;  // scales the genuine signatures' perturbations (consistent < 1)
  bool dots = true;        // dots its i and j and crosses its t
  std::string layout;      // "full", "initial" (initial and last name) or "last"
  std::string flourish;    // "none", "underline-return", "underline", "zigzag", "encircle"
  bool lead_in = false;    // a long entry stroke into the first capital
};

struct WriterPlan {
  int64_t index = 0;
  std::string name;  // the text the signature traces, e.g. "Belora Tanik"
  WriterStyle style;
  std::vector<PlanLetter> letters;
  std::vector<PlanPart> parts;  // in writing order
  int strokes() const;          // strokes of the unperturbed plan (points minus one per part)
};

// A writer: its name, style and plan, from (seed, index) only.
WriterPlan make_writer(uint64_t seed, int64_t index);

// The unperturbed plan as pen-down components (for analysis and tests).
std::vector<bpkit_sigma::Component> plan_components(const WriterPlan& plan);

// One pen-down trace: positions in mm, speed in mm/s, pen pressure 0..1 (0: the pen does not
// touch the paper: the tapered start and end of a flying stroke).
struct InkPoint {
  double x = 0, y = 0, speed = 0, pressure = 1;
};
using InkTrace = std::vector<InkPoint>;

enum class SampleKind { kGenuine, kForgery };

struct SampleOptions {
  // Skilled forgeries: 0 a careless forger (large changes of shape, slow, shaky), 1 an expert
  // (close to the genuine shape, still slower and with blunt ends). Each forger's skill is drawn
  // around this value (standard deviation 0.12).
  double forgery_skill = 0.5;
  // Multiplies every writer's genuine variability.
  double variation = 1;
};

struct Signing {
  std::vector<InkTrace> traces;                    // pen-down traces, in writing order
  std::vector<bpkit_sigma::Component> components;  // the strokes they were sampled from
  int forger = -1;                                 // forgeries: forger n / 4 of this writer
  double skill = -1;                               // forgeries: that forger's skill
  double duration_s = 0;                           // total pen-down time
};

// Signature n of `kind` by the writer of `plan` (or its forger), from (seed, plan, kind, n,
// options) only. Requires options in range (skill 0..1, variation 0..4).
Signing sign(const WriterPlan& plan, SampleKind kind, int64_t n, uint64_t seed,
             const SampleOptions& options);

struct ScanOptions {
  bool clean = false;  // white paper, no clutter, noise, blur, lighting or rotation; PNG
  double dpi_lo = 150, dpi_hi = 600;
};

struct Scan {
  cv::Mat image;  // 8-bit, 1 channel (gray) or 3 (BGR)
  bool jpeg = false;
  int jpeg_quality = 0;
  int dpi = 0;
  double rotation_deg = 0, width_mm = 0;
  std::string pen, ink;  // pen type and width, ink colour name
  std::string clutter;   // comma-separated clutter and scan effects, "none" without
};

// A scan of the signing: pen and ink, paper, clutter and scanner effects drawn from image_seed.
// The signature keeps its physical size; dpi is drawn log-uniformly in [dpi_lo, dpi_hi].
Scan render_scan(const Signing& signing, uint64_t image_seed, const ScanOptions& options);

}  // namespace bpkit_signatures
