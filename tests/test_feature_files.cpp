// Feature files of other toolkits (plugins/audio/feature_files.h): Kaldi archives (binary and
// text), scp files, Sphinx cepstra in both byte orders (and a real sphinx_fe file against its text
// dump, tests/data/feature_files), hostile and damaged files, atomic writing, the sequence.read
// plugin loaded from the build's plugin directory, and the export_features tool.
#include <sys/resource.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"
#include "feature_files.h"
#include "plugin_stage.h"
#include "temp_dir.h"

namespace ff = bpkit_audio;
using bpkit::Kind;
using bpkit::Tensor;
using bpkit::Value;
using bpkit_test::read_bytes;
using bpkit_test::write_bytes;
using Catch::Matchers::Contains;

namespace {

const std::string kPluginDir = BPKIT_AUDIO_PLUGIN_DIR;
const std::string kData = BPKIT_FEATURE_FILES_TEST_DATA;
const std::string kExportFeatures = BPKIT_EXPORT_FEATURES;
constexpr double kPi = 3.14159265358979323846;

// ---- bytes as Kaldi writes them (little-endian) ----

std::string le32(uint32_t u) {
  std::string s;
  for (int i = 0; i < 4; ++i) s += char((u >> (8 * i)) & 0xff);
  return s;
}
std::string be32(uint32_t u) {
  std::string s;
  for (int i = 3; i >= 0; --i) s += char((u >> (8 * i)) & 0xff);
  return s;
}
std::string f32(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return le32(u);
}
std::string f64(double d) {
  uint64_t u;
  std::memcpy(&u, &d, 8);
  return le32(uint32_t(u)) + le32(uint32_t(u >> 32));
}
// "KEY \0B" + "FM " + '\4' rows + '\4' cols + the values, as Kaldi's archive writer does.
std::string binary_entry(const std::string& key, int32_t rows, int32_t cols,
                         const std::vector<float>& values, const std::string& token = "FM") {
  std::string s = key + ' ' + std::string("\0B", 2) + token + ' ';
  s += char(4) + le32(uint32_t(rows)) + char(4) + le32(uint32_t(cols));
  for (float v : values) s += token == "DM" ? f64(v) : f32(v);
  return s;
}

Tensor<float> matrix(int64_t rows, int64_t cols, const std::vector<float>& v) {
  Tensor<float> m({rows, cols});
  REQUIRE(int64_t(v.size()) == rows * cols);
  std::copy(v.begin(), v.end(), m.data());
  return m;
}

// Deterministic values of every magnitude and sign, including ones 7 digits cannot hold.
Tensor<float> pattern(int64_t rows, int64_t cols, uint32_t seed) {
  Tensor<float> m({rows, cols});
  uint32_t x = seed * 2654435761u + 1;
  for (int64_t i = 0; i < m.size(); ++i) {
    x = x * 1664525u + 1013904223u;
    const float mant = float(x >> 8) / float(1 << 24) * 2.f - 1.f;
    m[i] = mant * std::pow(10.f, float(int(x % 9) - 4)) + (i % 7 == 0 ? 1.f / 3.f : 0.f);
  }
  return m;
}

bool same(const Tensor<float>& a, const Tensor<float>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(float) * size_t(a.size())) == 0;
}

// ---- the plugin host ----

const bpkit::PluginRegistry& registry() {
  static const bpkit::PluginRegistry reg = [] {
    bpkit::PluginRegistry r;
    r.load_library(kPluginDir + "/libbpkit_audio.so");
    return r;
  }();
  return reg;
}

using bpkit_test::file_value;
using bpkit_test::max_rss_kb;
using bpkit_test::Params;

std::shared_ptr<bpkit::FeaturePlugin> stage(const std::string& name, const Params& params = {}) {
  return bpkit_test::configured_stage(registry(), name, params);
}

// 16-bit mono PCM WAV.
void write_wav(const std::string& path, const std::vector<float>& x, int rate) {
  auto le16 = [](int v) { return std::string{char(v & 0xff), char((v >> 8) & 0xff)}; };
  const uint32_t data = uint32_t(2 * x.size());
  std::string b = "RIFF" + le32(36 + data) + "WAVEfmt " + le32(16) + le16(1) + le16(1) +
                  le32(uint32_t(rate)) + le32(uint32_t(2 * rate)) + le16(2) + le16(16) + "data" +
                  le32(data);
  for (float s : x) b += le16(int(std::lround(std::max(-1.f, std::min(1.f, s)) * 32767)));
  write_bytes(path, b);
}

std::vector<float> test_signal(int n, double f0, uint32_t seed) {
  std::vector<float> x(static_cast<size_t>(n));
  uint32_t r = seed;
  for (int i = 0; i < n; ++i) {
    r = r * 1664525u + 1013904223u;
    const double t = double(i) / 16000;
    x[size_t(i)] = float(0.3 * std::sin(2 * kPi * f0 * t) + 0.1 * std::sin(2 * kPi * 3.1 * f0 * t) +
                         0.02 * (double(r >> 8) / double(1 << 24) - 0.5));
  }
  return x;
}

// Runs a command; returns its exit status, with its stderr in `err`.
int run_tool(const std::string& args, std::string& err, const std::string& dir) {
  const std::string errfile = dir + "/tool.err";
  const int rc =
      std::system((kExportFeatures + " " + args + " >" + dir + "/tool.out 2>" + errfile).c_str());
  err = read_bytes(errfile);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

// ---- Kaldi ------------------------------------------------------------------------------------

TEST_CASE("a binary Kaldi archive is written byte for byte as Kaldi writes it", "[feature_files]") {
  bpkit_test::TempDir dir("ff-binary");
  const std::vector<float> v1 = {1.5f, -2.f, 0.25f, 1e-3f, 3e7f, -0.f};
  const std::vector<float> v2 = {7.f, 8.f};
  ff::write_kaldi_ark(dir.file("a.ark"),
                      {{"utt-1", matrix(2, 3, v1)}, {"utt_2", matrix(1, 2, v2)}});
  // Hand-built: key, space, "\0B", "FM ", '\4' int32 rows, '\4' int32 cols, float32 row-major.
  std::string want = "utt-1 ";
  want += std::string("\0BFM \x04", 6) + std::string("\x02\x00\x00\x00", 4) + "\x04" +
          std::string("\x03\x00\x00\x00", 4);
  for (float f : v1) want += f32(f);
  want += "utt_2 " + std::string("\0BFM \x04\x01\x00\x00\x00\x04\x02\x00\x00\x00", 15);
  for (float f : v2) want += f32(f);
  CHECK(read_bytes(dir.file("a.ark")) == want);
  CHECK(want.substr(0, 8) == std::string("utt-1 \0B", 8));

  // And a hand-built archive reads back.
  write_bytes(dir.file("b.ark"), want);
  const std::vector<ff::KaldiMatrix> all = ff::read_kaldi_ark(dir.file("b.ark"));
  REQUIRE(all.size() == 2);
  CHECK(all[0].key == "utt-1");
  CHECK(same(all[0].matrix, matrix(2, 3, v1)));
  CHECK(all[1].key == "utt_2");
  CHECK(same(all[1].matrix, matrix(1, 2, v2)));
  CHECK(same(ff::read_kaldi_ark_entry(dir.file("b.ark"), "utt_2").matrix, matrix(1, 2, v2)));
  CHECK(ff::read_kaldi_ark_entry(dir.file("b.ark"), "").key == "utt-1");  // empty: the first
  CHECK_THROWS_WITH(ff::read_kaldi_ark_entry(dir.file("b.ark"), "utt3"),
                    Contains("no matrix with key 'utt3'") && Contains("'utt-1', 'utt_2'"));
}

TEST_CASE("binary and text archives round-trip exactly", "[feature_files]") {
  bpkit_test::TempDir dir("ff-roundtrip");
  std::vector<ff::KaldiMatrix> ms;
  ms.push_back({"a", pattern(1, 1, 1)});
  ms.push_back({"b", pattern(57, 13, 2)});
  ms.push_back({"c", pattern(3, 40, 3)});
  for (const bool text : {false, true}) {
    INFO((text ? "text" : "binary"));
    const std::string path = dir.file(text ? "t.ark" : "b.ark");
    ff::write_kaldi_ark(path, ms, text);
    const std::vector<ff::KaldiMatrix> back = ff::read_kaldi_ark(path);
    REQUIRE(back.size() == ms.size());
    for (size_t i = 0; i < ms.size(); ++i) {
      CHECK(back[i].key == ms[i].key);
      CHECK(same(back[i].matrix, ms[i].matrix));
    }
    CHECK(same(ff::read_kaldi_ark_entry(path, "c").matrix, ms[2].matrix));
  }
  // The text layout: "KEY  [", each row "\n  v v v ", then "]\n".
  const std::string t = read_bytes(dir.file("t.ark"));
  CHECK(t.rfind("a  [\n  ", 0) == 0);
  CHECK(t.find(" ]\nb  [\n  ") != std::string::npos);
}

TEST_CASE("a text archive at Kaldi's precision matches Kaldi's output", "[feature_files]") {
  bpkit_test::TempDir dir("ff-text");
  ff::KaldiArkWriter::Options o;
  o.text = true;
  o.precision = 7;  // Kaldi's: `copy-feats ark:x.ark ark,t:-` prints these bytes
  ff::KaldiArkWriter w(dir.file("k.ark"), "", o);
  w.write("spk1_utt1", matrix(2, 3, {1.f, 2.5f, -3.f, 0.1f, 1e-05f, 123456.78f}));
  w.commit();
  CHECK(read_bytes(dir.file("k.ark")) == "spk1_utt1  [\n  1 2.5 -3 \n  0.1 1e-05 123456.8 ]\n");

  // What Kaldi's reader tolerates: the first row on the '[' line, CRLF, ';' as a row end, '+',
  // several matrices, binary and text mixed.
  write_bytes(dir.file("m.ark"), "x [ 1 2\r\n 3 4 ]\r\ny  [ 5 +6 ; 7 8e0 ]\n" +
                                     binary_entry("z", 1, 1, {9.f}) + "w [\n 1.5 1e-50 -1e-45 ]");
  const auto all = ff::read_kaldi_ark(dir.file("m.ark"));
  REQUIRE(all.size() == 4);
  CHECK(same(all[0].matrix, matrix(2, 2, {1, 2, 3, 4})));
  CHECK(same(all[1].matrix, matrix(2, 2, {5, 6, 7, 8})));
  CHECK(same(all[2].matrix, matrix(1, 1, {9})));
  CHECK(all[3].key == "w");
  REQUIRE(all[3].matrix.shape() == bpkit::Shape{1, 3});
  CHECK(all[3].matrix[0] == 1.5f);
  CHECK(all[3].matrix[1] == 0.f);  // below the float range: zero, as Kaldi reads it
  CHECK(all[3].matrix[2] == -1e-45f);
}

TEST_CASE("double matrices (DM) are read as float", "[feature_files]") {
  bpkit_test::TempDir dir("ff-dm");
  write_bytes(dir.file("d.ark"), binary_entry("u", 2, 2, {0.1f, -2.f, 3.f, 1e-20f}, "DM"));
  const auto all = ff::read_kaldi_ark(dir.file("d.ark"));
  REQUIRE(all.size() == 1);
  // Stored as the doubles of these floats: they convert back exactly.
  CHECK(same(all[0].matrix, matrix(2, 2, {0.1f, -2.f, 3.f, 1e-20f})));
  std::string big =
      "u " + std::string("\0BDM ", 5) + char(4) + le32(1) + char(4) + le32(1) + f64(1e300);
  write_bytes(dir.file("big.ark"), big);
  CHECK_THROWS_WITH(ff::read_kaldi_ark(dir.file("big.ark")), Contains("out of the float range"));
}

TEST_CASE("scp files point at several utterances by byte offset", "[feature_files]") {
  bpkit_test::TempDir dir("ff-scp");
  std::vector<ff::KaldiMatrix> ms;
  for (int i = 0; i < 4; ++i)
    ms.push_back({"utt" + std::to_string(i), pattern(5 + 7 * i, 13, uint32_t(i))});
  for (const bool text : {false, true}) {
    INFO((text ? "text" : "binary"));
    const std::string ark = dir.file(text ? "t.ark" : "b.ark"),
                      scp = dir.file(text ? "t.scp" : "b.scp");
    ff::write_kaldi_ark(ark, ms, text, scp);
    const std::vector<ff::KaldiScpEntry> entries = ff::read_kaldi_scp(scp);
    REQUIRE(entries.size() == 4);
    const std::string bytes = read_bytes(ark);
    for (size_t i = 0; i < entries.size(); ++i) {
      CHECK(entries[i].key == ms[i].key);
      CHECK(entries[i].path == ark);
      REQUIRE(entries[i].offset > 0);
      // As Kaldi's ark,scp writer: right after "KEY ", at the "\0B" or at the " [".
      CHECK(bytes.substr(size_t(entries[i].offset) - ms[i].key.size() - 1, ms[i].key.size() + 1) ==
            ms[i].key + " ");
      CHECK(bytes.substr(size_t(entries[i].offset), 2) ==
            (text ? std::string(" [") : std::string("\0B", 2)));
      CHECK(same(ff::read_kaldi_scp_entry(entries[i]), ms[i].matrix));
    }
    const auto all = ff::read_kaldi_scp_matrices(scp);
    REQUIRE(all.size() == 4);
    CHECK(same(all[3].matrix, ms[3].matrix));
  }
  // The scp line format, and a relative archive path resolved next to the scp.
  const std::string line =
      read_bytes(dir.file("b.scp")).substr(0, read_bytes(dir.file("b.scp")).find('\n'));
  CHECK(line == "utt0 " + dir.file("b.ark") + ":5");
  write_bytes(dir.file("rel.scp"),
              "u2 b.ark:" + std::to_string(ff::read_kaldi_scp(dir.file("b.scp"))[2].offset) +
                  "\n\n  u3   b.ark:" +
                  std::to_string(ff::read_kaldi_scp(dir.file("b.scp"))[3].offset) + "  \n");
  const auto rel = ff::read_kaldi_scp_matrices(dir.file("rel.scp"));
  REQUIRE(rel.size() == 2);
  CHECK(same(rel[0].matrix, ms[2].matrix));
  CHECK(same(rel[1].matrix, ms[3].matrix));
  // A lone matrix file (no key, no offset).
  write_bytes(dir.file("one.mat"),
              std::string("\0BFM ", 5) + char(4) + le32(1) + char(4) + le32(2) + f32(1) + f32(2));
  write_bytes(dir.file("one.scp"), "only " + dir.file("one.mat") + "\n");
  CHECK(same(ff::read_kaldi_scp_matrices(dir.file("one.scp"))[0].matrix, matrix(1, 2, {1, 2})));
  CHECK(same(ff::read_kaldi_matrix_file(dir.file("one.mat")), matrix(1, 2, {1, 2})));
}

TEST_CASE("hostile and damaged Kaldi files are refused before anything is allocated",
          "[feature_files]") {
  bpkit_test::TempDir dir("ff-kaldi-bad");
  // Looking for another key checks every header on the way, but skips binary data unread.
  auto refused = [&](const std::string& bytes, const std::string& what, bool skipped_too = true) {
    INFO(what);
    write_bytes(dir.file("x.ark"), bytes);
    CHECK_THROWS_WITH(ff::read_kaldi_ark(dir.file("x.ark")), Contains(what));
    if (skipped_too)
      CHECK_THROWS_WITH(ff::read_kaldi_ark_entry(dir.file("x.ark"), "nokey"), Contains(what));
  };
  const std::string hdr = "k " + std::string("\0BFM ", 5);
  const long before = max_rss_kb();
  // A header claiming 2^31 - 1 rows (then 2^31 read as a signed int32) in a 100-byte file.
  std::string huge = hdr + char(4) + le32(0x7fffffff) + char(4) + le32(13);
  huge.resize(100, '\0');
  refused(huge, "truncated: the header says 2147483647 x 13 values");
  refused(huge, "byte 2");  // where the matrix starts
  refused(hdr + char(4) + le32(0x80000000u) + char(4) + le32(13), "expected at least one row");
  refused(hdr + char(4) + le32(2) + char(4) + le32(0x7fffffff) + std::string(64, '\0'),
          "truncated");
  CHECK(max_rss_kb() - before < 64 * 1024);
  // Sizes that fit the file but are absurd.
  {
    std::string wide = hdr + char(4) + le32(1) + char(4) + le32(100000);
    wide += std::string(400000, '\0');
    refused(wide, "columns");
  }
  refused(hdr + char(4) + le32(0) + char(4) + le32(13), "0 x 13");
  // Truncated data, header, and after the key.
  refused(binary_entry("k", 3, 2, {1, 2, 3, 4, 5}), "truncated");
  refused(binary_entry("k", 3, 2, {1, 2, 3, 4, 5, 6}).substr(0, 12),
          "truncated in the matrix header");
  refused("k", "truncated after key 'k'");
  refused("k [ 1 2\n 3 4", "no closing ']'");
  // Compressed matrices: refused, saying what to do.
  for (const char* cm : {"CM", "CM2", "CM3"}) {
    refused("k " + std::string("\0B", 2) + cm + " " + std::string(40, '\x01'), "compressed matrix");
    refused("k " + std::string("\0B", 2) + cm + " " + std::string(40, '\x01'), "copy-feats");
  }
  // Other objects and damaged headers.
  refused("k " + std::string("\0BFV ", 5) + char(4) + le32(3), "a vector ('FV')");
  refused("k " + std::string("\0BXX ", 5), "unknown object type 'XX'");
  refused(hdr + char(8) + le32(2), "size byte 8");
  refused("k " + std::string("\0X", 2), "expected 'B'");
  // Garbage: binary noise, a text file, a PNG.
  std::string noise;
  for (int i = 0; i < 300; ++i) noise += char((i * 131 + 7) % 256);
  refused(noise, "not a Kaldi archive");
  refused("hello world, this is not an archive\n", "expected '[' (a text matrix)");
  refused("\x89PNG\r\n\x1a\n" + std::string(50, '\0'), "not a Kaldi archive");
  refused("", "no matrix");
  // Values: non-finite, not numbers, ragged rows, empty.
  refused(binary_entry("k", 1, 3, {1.f, std::nanf(""), 2.f}), "column 1; features must be finite",
          false);
  refused(binary_entry("k", 1, 2, {INFINITY, 2.f}), "must be finite", false);
  refused("k [ 1 nan 2 ]\n", "must be finite");
  refused("k [ 1 inf ]\n", "must be finite");
  refused("k [ 1 1e99 ]\n", "out of the float range");
  refused("k [ 1 two 3 ]\n", "expected a number in the matrix of key 'k', got 'two'");
  refused("k [ 1 2 3\n 4 5 ]\n", "row 1 has 2 values, row 0 has 3");
  refused("k [ ]\n", "empty");
  refused("k []\n", "empty");

  // scp problems.
  ff::write_kaldi_ark(dir.file("ok.ark"), {{"a", matrix(1, 1, {1})}}, false, dir.file("ok.scp"));
  auto scp_refused = [&](const std::string& text, const std::string& what) {
    INFO(text);
    write_bytes(dir.file("x.scp"), text);
    CHECK_THROWS_WITH(ff::read_kaldi_scp_matrices(dir.file("x.scp")), Contains(what));
  };
  const std::string ok_ark = dir.file("ok.ark");
  scp_refused("a " + ok_ark + ":999\n", "past the end of the file");
  scp_refused("a " + ok_ark + ":3\n", "expected '[' (a text matrix)");  // not at a matrix
  scp_refused("a " + ok_ark + ":3\n", "x.scp:1");                       // which entry
  scp_refused("a " + ok_ark + ":2\n\na " + ok_ark + ":2\n", "x.scp:3: duplicate key 'a'");
  scp_refused("a gunzip -c x.gz |\n", "pipe");
  scp_refused("a " + ok_ark + ":2[0:3]\n", "range specifier");
  scp_refused("a\n", "only the key");
  scp_refused("\n\n", "lists no matrix");
  scp_refused("a " + dir.file("missing.ark") + ":2\n", "cannot open");
}

TEST_CASE("Kaldi writers are atomic and check what they write", "[feature_files]") {
  bpkit_test::TempDir dir("ff-atomic");
  write_bytes(dir.file("out.ark"), "old");
  {
    ff::KaldiArkWriter w(dir.file("out.ark"), dir.file("out.scp"));
    w.write("a", matrix(1, 1, {1}));
    CHECK_THROWS_WITH(w.write("a", matrix(1, 1, {1})), Contains("duplicate key 'a'"));
    CHECK_THROWS_WITH(w.write("b c", matrix(1, 1, {1})), Contains("not a valid Kaldi key"));
    CHECK_THROWS_WITH(w.write("", matrix(1, 1, {1})), Contains("not a valid Kaldi key"));
    CHECK_THROWS_WITH(w.write("d", matrix(1, 2, {1, NAN})), Contains("not finite"));
    CHECK_THROWS_WITH(w.write("e", Tensor<float>({2, 0})), Contains("empty matrix"));
    CHECK_THROWS_WITH(w.write("f", Tensor<float>({1, 2, 3})), Contains("expected a matrix"));
    // No commit (as when an exception ends the export): nothing replaced, nothing left behind.
  }
  CHECK(read_bytes(dir.file("out.ark")) == "old");
  CHECK(dir.list() == std::vector<std::string>{"out.ark"});
  {
    ff::KaldiArkWriter w(dir.file("out.ark"), dir.file("out.scp"));
    w.write("a", Tensor<float>({3}, 2.f));  // a vector: one row
    w.commit();
  }
  CHECK(dir.list() == std::vector<std::string>{"out.ark", "out.scp"});
  CHECK(same(ff::read_kaldi_ark(dir.file("out.ark"))[0].matrix, matrix(1, 3, {2, 2, 2})));
  CHECK_THROWS_WITH(ff::write_kaldi_ark(dir.file("no/such/dir/x.ark"), {{"a", matrix(1, 1, {1})}}),
                    Contains("cannot write"));
}

// ---- Sphinx -----------------------------------------------------------------------------------

TEST_CASE("Sphinx cepstra round-trip in both byte orders", "[feature_files]") {
  bpkit_test::TempDir dir("ff-sphinx");
  const Tensor<float> m = pattern(31, 13, 7);
  for (const ff::ByteOrder order : {ff::ByteOrder::kLittle, ff::ByteOrder::kBig}) {
    const bool big = order == ff::ByteOrder::kBig;
    INFO((big ? "big" : "little"));
    const std::string path = dir.file(big ? "b.mfc" : "l.mfc");
    ff::write_sphinx_mfc(path, m, order);
    const std::string bytes = read_bytes(path);
    REQUIRE(bytes.size() == 4 + 31 * 13 * 4);
    CHECK(bytes.substr(0, 4) == (big ? be32(31 * 13) : le32(31 * 13)));
    ff::ByteOrder got = big ? ff::ByteOrder::kLittle : ff::ByteOrder::kBig;
    CHECK(same(ff::read_sphinx_mfc(path, 13, &got), m));
    CHECK(got == order);
  }
  // Another ncep: the same floats, other frames.
  CHECK(ff::read_sphinx_mfc(dir.file("l.mfc"), 31).shape() == bpkit::Shape{13, 31});
  CHECK(dir.list() == std::vector<std::string>{"b.mfc", "l.mfc"});  // no temporary files left
}

TEST_CASE("a sphinx_fe file reads back as its text dump", "[feature_files]") {
  // tests/data/feature_files/make.sh: sphinx_fe -ofmt sphinx and -ofmt text of one recording.
  ff::ByteOrder order = ff::ByteOrder::kBig;
  const Tensor<float> m = ff::read_sphinx_mfc(kData + "/seven_two.mfc", 13, &order);
  CHECK(order == ff::ByteOrder::kLittle);
  std::ifstream text(kData + "/seven_two.mfc.txt");
  std::vector<std::vector<double>> rows;
  std::string line;
  while (std::getline(text, line)) {
    std::istringstream in(line);
    std::vector<double> r;
    double v;
    while (in >> v) r.push_back(v);
    if (!r.empty()) rows.push_back(r);
  }
  REQUIRE(rows.size() > 50);
  REQUIRE(m.shape() == bpkit::Shape{int64_t(rows.size()), 13});
  double worst = 0;
  for (size_t t = 0; t < rows.size(); ++t) {
    REQUIRE(rows[t].size() == 13);
    for (size_t c = 0; c < 13; ++c) {
      const double got = m[int64_t(t * 13 + c)], want = rows[t][c];
      // The text dump has 5 significant digits.
      worst = std::max(worst, std::fabs(got - want) / (1e-4 * std::fabs(want) + 1e-7));
    }
  }
  CHECK(worst <= 1.0);
  // The same file byte-swapped (as a big-endian machine writes it) reads the same.
  std::string bytes = read_bytes(kData + "/seven_two.mfc");
  for (size_t i = 0; i + 3 < bytes.size(); i += 4) {
    std::swap(bytes[i], bytes[i + 3]);
    std::swap(bytes[i + 1], bytes[i + 2]);
  }
  bpkit_test::TempDir dir("ff-sphinx-fe");
  write_bytes(dir.file("be.mfc"), bytes);
  CHECK(same(ff::read_sphinx_mfc(dir.file("be.mfc"), 13, &order), m));
  CHECK(order == ff::ByteOrder::kBig);
}

TEST_CASE("hostile and damaged Sphinx files are refused", "[feature_files]") {
  bpkit_test::TempDir dir("ff-sphinx-bad");
  auto refused = [&](const std::string& bytes, const std::string& what, int ncep = 13) {
    INFO(what);
    write_bytes(dir.file("x.mfc"), bytes);
    CHECK_THROWS_WITH(ff::read_sphinx_mfc(dir.file("x.mfc"), ncep), Contains(what));
  };
  const long before = max_rss_kb();
  std::string huge = le32(0x7fffffff);
  huge.resize(100, '\0');
  refused(huge, "the header says 2147483647 floats (little-endian)");
  refused(huge, "truncated, or not a Sphinx cepstrum file");
  refused(be32(0x7fffffff) + std::string(96, '\0'), "2147483647 (big-endian)");
  CHECK(max_rss_kb() - before < 64 * 1024);
  std::string cut = le32(26);
  for (int i = 0; i < 20; ++i) cut += f32(1);
  refused(cut, "truncated");  // 26 claimed, 20 there
  refused(le32(0), "0 floats: no frames");
  refused("ab", "too short");
  refused("", "too short");
  std::string odd = le32(14);
  for (int i = 0; i < 14; ++i) odd += f32(1);
  refused(odd, "not a whole number of frames of 13");
  std::string nan = le32(13);
  for (int i = 0; i < 13; ++i) nan += f32(i == 5 ? NAN : 1.f);
  refused(nan, "column 5; features must be finite");
  refused("this is a text file, not cepstra\n", "not a Sphinx cepstrum file");
  CHECK_THROWS_WITH(ff::read_sphinx_mfc(dir.file("missing.mfc")), Contains("cannot open"));
  CHECK_THROWS_WITH(ff::read_sphinx_mfc(dir.path()), Contains("not a regular file"));
}

// ---- the plugin -------------------------------------------------------------------------------

TEST_CASE("sequence.read reads every format through the plugin host", "[feature_files]") {
  bpkit_test::TempDir dir("ff-plugin");
  const Tensor<float> a = pattern(20, 13, 11), b = pattern(9, 40, 12);
  ff::write_kaldi_ark(dir.file("x.ark"), {{"a", a}, {"b", b}}, false, dir.file("x.scp"));
  ff::write_kaldi_ark(dir.file("t.ark"), {{"a", a}, {"b", b}}, true);
  ff::write_sphinx_mfc(dir.file("s.mfc"), a, ff::ByteOrder::kBig);
  // Other names: found by content.
  ff::write_kaldi_ark(dir.file("ark.feats"), {{"b", b}});
  ff::write_kaldi_ark(dir.file("text.feats"), {{"b", b}}, true);
  ff::write_sphinx_mfc(dir.file("s.cep"), a);

  auto read = [&](const std::string& file, const Params& p = {}) {
    const Value v = stage("sequence.read", p)->process(file_value(dir.file(file)));
    REQUIRE(v.kind == Kind::kSequence);
    CHECK(v.path == dir.file(file));
    return v.tensor;
  };
  CHECK(same(read("x.ark"), a));  // the first matrix
  CHECK(same(read("x.ark", {{"key", "b"}}), b));
  CHECK(same(read("t.ark", {{"key", "b"}}), b));
  CHECK(same(read("x.scp", {{"key", "b"}}), b));
  CHECK(same(read("x.scp"), a));
  CHECK(same(read("s.mfc"), a));
  CHECK(same(read("ark.feats"), b));
  CHECK(same(read("text.feats"), b));
  CHECK(same(read("s.cep"), a));
  CHECK(same(read("s.cep", {{"format", "sphinx"}}), a));
  CHECK(same(read("x.ark", {{"format", "kaldi"}, {"key", "b"}}), b));
  CHECK(read("s.mfc", {{"ncep", "1"}}).shape() == bpkit::Shape{20 * 13, 1});

  auto fails = [&](const std::string& file, const Params& p, const std::string& what) {
    INFO(file);
    CHECK_THROWS_WITH(stage("sequence.read", p)->process(file_value(dir.file(file))),
                      Contains(what));
  };
  fails("x.ark", {{"key", "zz"}}, "no matrix with key 'zz'");
  fails("x.scp", {{"key", "zz"}}, "no entry with key 'zz'");
  fails("s.mfc", {{"ncep", "7"}}, "not a whole number of frames of 7");
  fails("s.mfc", {{"key", "a"}}, "applies to Kaldi archives only");
  fails("x.ark", {{"format", "sphinx"}}, "not a Sphinx cepstrum file");
  fails("s.cep", {{"format", "kaldi"}}, "not a Kaldi archive");
  write_bytes(dir.file("junk.bin"), std::string(64, '\x07'));
  fails("junk.bin", {}, "cannot tell the feature file's format");
  fails("missing.ark", {}, "cannot open");
  // Parameters are checked when the stage is configured.
  CHECK_THROWS_WITH(stage("sequence.read", {{"format", "sphinx"}, {"key", "a"}}),
                    Contains("Kaldi archives only"));
  CHECK_THROWS(stage("sequence.read", {{"format", "htk"}}));
  CHECK_THROWS(stage("sequence.read", {{"ncep", "0"}}));
}

TEST_CASE("a pipeline file starts from Kaldi features", "[feature_files]") {
  bpkit_test::TempDir dir("ff-pipeline");
  ff::write_kaldi_ark(dir.file("u.ark"), {{"u", pattern(30, 13, 5)}});
  const std::string yaml =
      "stages:\n"
      "  - plugin: sequence.read\n"
      "  - plugin: sequence.deltas\n"
      "  - plugin: sequence.cmvn\n";
  const bpkit::PipelineConfig c =
      bpkit::parse_pipeline_config(yaml, dir.file("p.yaml"), "", /*need_network=*/false);
  const bpkit::Pipeline p(c, registry());
  const Value v = p.run(dir.file("u.ark"));
  REQUIRE(v.kind == Kind::kSequence);
  CHECK(v.tensor.shape() == bpkit::Shape{30, 39});
}

// ---- export_features --------------------------------------------------------------------------

TEST_CASE("export_features writes a pipeline's features as Kaldi and Sphinx files",
          "[feature_files]") {
  bpkit_test::TempDir dir("ff-export");
  write_wav(dir.file("one.wav"), test_signal(8000, 220, 1), 16000);
  write_wav(dir.file("two.wav"), test_signal(12000, 330, 2), 16000);
  write_bytes(dir.file("list.tsv"), "# files\none.wav\tone\ntwo.wav\n");
  write_bytes(dir.file("p.yaml"),
              "stages:\n"
              "  - plugin: audio.read\n"
              "  - plugin: audio.mfcc\n"
              "    params: {preset: sphinx}\n"
              "  - plugin: sequence.deltas\n");
  const bpkit::PipelineConfig c = bpkit::load_pipeline_config(dir.file("p.yaml"), false);
  const bpkit::Pipeline full(c, registry(), false);
  std::string err;

  // The whole pipeline, binary archive + scp.
  REQUIRE(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --ark " + dir.file("f.ark") +
                       " --scp " + dir.file("f.scp"),
                   err, dir.path()) == 0);
  const auto ark = ff::read_kaldi_scp_matrices(dir.file("f.scp"));
  REQUIRE(ark.size() == 2);
  CHECK(ark[0].key == "one");
  CHECK(ark[1].key == "two");
  CHECK(same(ark[0].matrix, full.run(dir.file("one.wav")).tensor));
  CHECK(same(ark[1].matrix, full.run(dir.file("two.wav")).tensor));
  CHECK(ark[1].matrix.dim(1) == 39);

  // Only the first two stages (the MFCCs), as text and as Sphinx files.
  REQUIRE(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --upto 2 --text --ark " +
                       dir.file("t.ark"),
                   err, dir.path()) == 0);
  const Tensor<float> mfcc = full.run(bpkit::Value(file_value(dir.file("two.wav"))), 0, 2).tensor;
  CHECK(same(ff::read_kaldi_ark_entry(dir.file("t.ark"), "two").matrix, mfcc));
  REQUIRE(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") +
                       " --upto 2 --big-endian --mfc-dir " + dir.file("mfc"),
                   err, dir.path()) == 0);
  ff::ByteOrder order = ff::ByteOrder::kLittle;
  CHECK(same(ff::read_sphinx_mfc(dir.file("mfc/two.mfc"), 13, &order), mfcc));
  CHECK(order == ff::ByteOrder::kBig);

  // Usage errors: exit 2 with a message; failures: exit 1, and no output file.
  CHECK(run_tool("", err, dir.path()) == 2);
  CHECK_THAT(err, Contains("expected a pipeline file"));
  CHECK(run_tool("--help", err, dir.path()) == 0);
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv"), err, dir.path()) == 2);
  CHECK_THAT(err, Contains("give one output"));
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --ark a --mfc-dir b", err,
                 dir.path()) == 2);
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --ark a --upto x", err,
                 dir.path()) == 2);
  CHECK_THAT(err, Contains("--upto expects a number"));
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --ark a --upto 4", err,
                 dir.path()) == 2);
  CHECK_THAT(err, Contains("has 3 stage(s)"));
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --ark a --bogus", err,
                 dir.path()) == 2);
  CHECK_THAT(err, Contains("unknown option '--bogus'"));
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --mfc-dir m --scp s", err,
                 dir.path()) == 2);
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("list.tsv") + " --upto 1 --ark " +
                     dir.file("x.ark"),
                 err, dir.path()) == 1);
  CHECK_THAT(err, Contains("produces audio, not features"));
  write_bytes(dir.file("bad.tsv"), "one.wav\nmissing.wav\n");
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("bad.tsv") + " --ark " + dir.file("x.ark"),
                 err, dir.path()) == 1);
  CHECK_THAT(err, Contains("missing.wav"));
  write_bytes(dir.file("dup.tsv"), "one.wav\nmfc/../one.wav\n");
  CHECK(run_tool(dir.file("p.yaml") + " " + dir.file("dup.tsv") + " --ark " + dir.file("x.ark"),
                 err, dir.path()) == 1);
  CHECK_THAT(err, Contains("keys must be unique"));
  CHECK_FALSE(std::filesystem::exists(dir.file("x.ark")));
  CHECK(run_tool(
            dir.file("nothere.yaml") + " " + dir.file("list.tsv") + " --ark " + dir.file("x.ark"),
            err, dir.path()) == 1);
}
