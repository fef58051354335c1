// text_render.h: what the text renderers (render_lines, render_page) share: the font table of
// training and held-out families from Debian font packages, a generator of printable-ASCII text,
// and FreeType rendering of one line of text.
#pragma once

#include <ft2build.h>
#include FT_FREETYPE_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <opencv2/core.hpp>
#include <random>
#include <string>
#include <vector>

#include "tool_args.h"

namespace bpkit_tools {

// The font table: Debian packages, families and their use. Held-out families share no design with
// a training family (Arimo/Tinos/Cousine are metric clones of Liberation, so they train).
struct FontFile {
  const char* family;
  const char* path;  // relative to --font-dir
  bool heldout;
  // Training faces added after the first recognizer's data (set `extra`): `train` stays the set
  // it was rendered from, so its lines stay reproducible.
  bool extra = false;
};
extern const FontFile kFonts[];
extern const size_t kFontCount;

// Text from a built-in vocabulary: words (some capitalized or upper case), numbers, dates, prices,
// punctuation and brackets. Draws only from `rng`, so the same generator state gives the same text.
class TextGenerator {
 public:
  explicit TextGenerator(std::mt19937_64& rng) : rng_(rng) {}

  // One line of 1–max_chars printable ASCII characters, no leading, trailing or double spaces;
  // 12% of the lines are random character strings instead of words.
  std::string line(int max_chars);

  // A line of running text for pages: words, some numbers, the punctuation and brackets of prose
  // (never random strings or rare symbols), cut only between tokens. Requires 1 <= min_chars <=
  // max_chars; ensures a size in [min_chars, max_chars] unless a single token is longer than
  // max_chars (then it is cut).
  std::string prose_line(int min_chars, int max_chars);

 private:
  double uniform(double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng_); }
  int below(int n) { return int(std::uniform_int_distribution<int>(0, n - 1)(rng_)); }
  bool chance(double p) { return uniform(0, 1) < p; }
  std::string digits(int n);
  std::string number();
  std::string word();
  std::string token();
  std::string prose_token();  // token() with the punctuation and brackets of running text
  std::string random_string();

  std::mt19937_64& rng_;
};

struct Face {
  std::string family, path;
  FT_Face face = nullptr;
};

// The fonts of --fonts SPEC: `train`, `heldout`, `all`, or a comma-separated list of families of
// the table (every file of the family) or font file paths. Loads them with FreeType; on failure
// prints "PROGRAM: reason" to stderr and open() returns the exit status (2: bad SPEC, 1: a font
// file cannot be loaded), else 0. Faces are released with the set.
class FaceSet {
 public:
  FaceSet() = default;
  FaceSet(const FaceSet&) = delete;
  FaceSet& operator=(const FaceSet&) = delete;
  ~FaceSet();
  int open(const char* program, const std::string& spec, const std::string& font_dir);
  const std::vector<Face>& faces() const { return faces_; }

 private:
  FT_Library ft_ = nullptr;
  std::vector<Face> faces_;
};

// Renders `text` with `face` at `px` pixels per em into an 8-bit canvas (0 = background, 255 =
// ink). Returns false when a character has no glyph. The canvas spans the font's ascender to
// descender (so lines of one font and size have the same vertical extent whatever their
// characters), plus the ink that overhangs it, and the text's advance width.
bool render_text(FT_Face face, const std::string& text, int px, cv::Mat& out, int& baseline_top,
                 int& ascender_px, int& descender_px);

}  // namespace bpkit_tools
