// The spectrogram picture of speech_app --spectrogram: libpng and FreeType only, so that programs
// that recognize speech load no image-processing library.
#include <ft2build.h>
#include FT_FREETYPE_H
#include <png.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/model_file.h"
#include "bpkit/speech.h"

namespace bpkit {

namespace {

// A perceptually ordered dark-to-bright ramp (black, purple, red, orange, pale yellow).
void heat_color(float v, uint8_t* c) {
  static const float stops[5][3] = {
      {0, 0, 4}, {87, 16, 110}, {188, 55, 84}, {249, 142, 9}, {252, 255, 164}};
  const float p = v * 4;
  const int i = std::min(3, int(p));
  const float f = p - float(i);
  for (int k = 0; k < 3; ++k) c[k] = uint8_t(stops[i][k] + (stops[i + 1][k] - stops[i][k]) * f);
}

// Black text with FreeType (DejaVu Sans, from fonts-dejavu-core); draws nothing when the font is
// missing (the picture is still useful without its labels).
class TextPainter {
 public:
  explicit TextPainter(int px) {
    if (FT_Init_FreeType(&lib_)) return;
    for (const char* f : {"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                          "/usr/share/fonts/truetype/freefont/FreeSans.ttf"})
      if (!FT_New_Face(lib_, f, 0, &face_)) break;
    if (face_) FT_Set_Pixel_Sizes(face_, 0, FT_UInt(px));
  }
  ~TextPainter() {
    if (face_) FT_Done_Face(face_);
    if (lib_) FT_Done_FreeType(lib_);
  }
  TextPainter(const TextPainter&) = delete;
  TextPainter& operator=(const TextPainter&) = delete;

  void draw(const std::string& s, int x, int baseline, std::vector<uint8_t>& rgb, int w, int h) {
    if (!face_) return;
    for (unsigned char ch : s) {
      if (FT_Load_Char(face_, ch, FT_LOAD_RENDER)) continue;
      const FT_GlyphSlot g = face_->glyph;
      for (unsigned r = 0; r < g->bitmap.rows; ++r)
        for (unsigned col = 0; col < g->bitmap.width; ++col) {
          const int px = x + g->bitmap_left + int(col), py = baseline - g->bitmap_top + int(r);
          if (px < 0 || py < 0 || px >= w || py >= h) continue;
          const float a = g->bitmap.buffer[r * unsigned(g->bitmap.pitch) + col] / 255.f;
          uint8_t* d = rgb.data() + (size_t(py) * size_t(w) + size_t(px)) * 3;
          for (int k = 0; k < 3; ++k) d[k] = uint8_t(float(d[k]) * (1 - a));
        }
      x += int(g->advance.x >> 6);
    }
  }

 private:
  FT_Library lib_ = nullptr;
  FT_Face face_ = nullptr;
};

// RGB rows to a PNG file, written atomically.
void write_png(const std::string& path, const std::vector<uint8_t>& rgb, int w, int h) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  img.width = png_uint_32(w);
  img.height = png_uint_32(h);
  img.format = PNG_FORMAT_RGB;
  png_alloc_size_t size = 0;
  if (!png_image_write_get_memory_size(img, size, 0, rgb.data(), 0, nullptr))
    throw FileError(path + ": cannot encode the PNG: " + img.message);
  std::string bytes(size, '\0');
  if (!png_image_write_to_memory(&img, bytes.data(), &size, 0, rgb.data(), 0, nullptr))
    throw FileError(path + ": cannot encode the PNG: " + img.message);
  bytes.resize(size);
  write_file_atomically(path, bytes);
}

}  // namespace

void UtteranceRecognizer::write_spectrogram(const std::string& file, const Utterance& u,
                                            const std::string& png) const {
  // The file's audio through the model's reading stages (decoding, resampling; not the
  // endpointer, so that the picture covers the whole file), then 64 log-mel filters.
  const Pipeline& p = model_.pipeline();
  size_t read_end = 0;
  while (read_end < p.size() && p.stages()[read_end].info.consumes == Kind::kFile) ++read_end;
  if (read_end == 0 || p.stages()[read_end - 1].info.produces != Kind::kAudio)
    throw ConfigError(model_.config().file + ": the model's pipeline does not start with audio");
  Value in;
  in.path = file;
  const Value audio = p.run(std::move(in), 0, read_end);
  // A pipeline's first stage reads files: audio.read, then the filterbank run from stage 1.
  const PipelineConfig c = parse_pipeline_config(
      "stages:\n  - plugin: audio.read\n  - plugin: audio.mfcc\n    params: {output: fbank, "
      "num_bins: 64, sample_rate: " +
          std::to_string(audio.audio.sample_rate) + "}\n",
      "(spectrogram)", "", false);
  const Pipeline fbank(c, model_.registry());
  const Value mel = fbank.run(audio, 1);
  const int t = int(mel.tensor.dim(0)), b = int(mel.tensor.dim(1));
  float top = -1e30f;
  for (int64_t i = 0; i < mel.tensor.size(); ++i) top = std::max(top, mel.tensor.data()[i]);
  const float range = float(std::log(1e8));  // 80 dB of power below the loudest filter
  const int scale = 3, label_h = 40, width = t * scale, height = b * scale + label_h;
  std::vector<uint8_t> rgb(size_t(width) * size_t(height) * 3, 255);
  auto put = [&](int x, int y, const uint8_t* c) {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    std::copy(c, c + 3, rgb.data() + (size_t(y) * size_t(width) + size_t(x)) * 3);
  };
  for (int x = 0; x < width; ++x)
    for (int y = 0; y < b * scale; ++y) {
      const float v =
          (mel.tensor.data()[int64_t(x / scale) * b + (b - 1 - y / scale)] - (top - range)) / range;
      uint8_t c[3];
      heat_color(std::clamp(v, 0.f, 1.f), c);
      put(x, y, c);
    }
  // Each word: a white frame over its time span and its name below.
  const double px_per_s = double(width) / (double(t) * 0.01);
  const uint8_t white[3] = {255, 255, 255};
  TextPainter text(20);
  for (const RecognizedWord& w : u.words) {
    const int x0 = int(w.start * px_per_s), x1 = std::max(x0 + 1, int(w.end * px_per_s));
    for (int x = x0; x <= x1; ++x) {
      put(x, 0, white);
      put(x, b * scale - 1, white);
    }
    for (int y = 0; y < b * scale; ++y) {
      put(x0, y, white);
      put(x1, y, white);
    }
    text.draw(w.word, x0, b * scale + 28, rgb, width, height);
  }
  write_png(png, rgb, width, height);
}

}  // namespace bpkit
