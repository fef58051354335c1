// Kaldi archives and Sphinx cepstra; see feature_files.h.
#include "feature_files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>

namespace bpkit_audio {

namespace fs = std::filesystem;
using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Tensor;
using bpkit::Value;

namespace {

[[noreturn]] void fail(const std::string& msg) {
  throw std::runtime_error(msg);
}

// For messages: control and non-ASCII bytes as \xNN, at most `max` bytes shown.
std::string printable(const std::string& s, size_t max = 48) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += char(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > max) out += "...";
  return out;
}

std::string number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", d);
  return buf;
}

std::string whole(double d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.0f", d);
  return buf;
}

std::string byte_name(int c) {
  if (c < 0) return "the end of the file";
  return "'" + printable(std::string(1, char(c))) + "'";
}

bool is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

// A file opened for reading with its size and our position in it.
class Source {
 public:
  explicit Source(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) fail(path + ": cannot open: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) {
      std::fclose(f_);
      fail(path + ": not a regular file");
    }
    size_ = int64_t(st.st_size);
  }
  ~Source() { std::fclose(f_); }
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }
  int64_t pos() const { return pos_; }
  int64_t remaining() const { return size_ - pos_; }
  int peek() {
    const int c = std::getc(f_);
    if (c != EOF) std::ungetc(c, f_);
    return c == EOF ? -1 : c;
  }
  int get() {
    const int c = std::getc(f_);
    if (c == EOF) return -1;
    ++pos_;
    return c;
  }
  bool read(void* dst, size_t n) {
    const size_t got = std::fread(dst, 1, n, f_);
    pos_ += int64_t(got);
    return got == n;
  }
  void seek(int64_t offset) {
    if (offset < 0 || offset > size_)
      fail(path_ + ": byte offset " + std::to_string(offset) + " is outside the file (" +
           std::to_string(size_) + " bytes)");
    if (::fseeko(f_, off_t(offset), SEEK_SET) != 0)
      fail(path_ + ": cannot seek to byte " + std::to_string(offset) + ": " + std::strerror(errno));
    pos_ = offset;
  }
  void skip_space() {
    while (is_space(peek())) get();
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
  int64_t size_ = 0, pos_ = 0;
};

uint32_t le32(const unsigned char* b) {
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}
uint32_t be32(const unsigned char* b) {
  return uint32_t(b[3]) | uint32_t(b[2]) << 8 | uint32_t(b[1]) << 16 | uint32_t(b[0]) << 24;
}
uint64_t le64(const unsigned char* b) {
  return uint64_t(le32(b)) | uint64_t(le32(b + 4)) << 32;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
double double_of(uint64_t u) {
  double d;
  std::memcpy(&d, &u, 8);
  return d;
}
void put_le32(std::string& out, uint32_t u) {
  for (int i = 0; i < 4; ++i) out += char((u >> (8 * i)) & 0xff);
}
void put_be32(std::string& out, uint32_t u) {
  for (int i = 3; i >= 0; --i) out += char((u >> (8 * i)) & 0xff);
}
uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// "FILE: key 'k' (byte N)" for messages.
std::string where(const Source& s, const std::string& key, int64_t at) {
  std::string w = s.path();
  if (!key.empty()) w += ": key '" + printable(key) + "'";
  return w + " (byte " + std::to_string(at) + ")";
}

void check_shape(int64_t rows, int64_t cols, const std::string& w) {
  if (rows <= 0 || cols <= 0)
    fail(w + ": the matrix is " + std::to_string(rows) + " x " + std::to_string(cols) +
         "; expected at least one row and one column");
  if (cols > kMaxFeatureColumns)
    fail(w + ": the matrix claims " + std::to_string(cols) + " columns, more than " +
         std::to_string(kMaxFeatureColumns) + " (damaged or not a feature matrix)");
  if (rows > kMaxFeatureValues / cols)
    fail(w + ": the matrix claims " + std::to_string(rows) + " x " + std::to_string(cols) +
         " values, more than " + std::to_string(kMaxFeatureValues) + " (damaged?)");
}

void check_finite(const Tensor<float>& m, const std::string& w) {
  const int64_t cols = m.dim(1);
  for (int64_t i = 0; i < m.size(); ++i)
    if (!std::isfinite(m[i]))
      fail(w + ": value " + (std::isnan(m[i]) ? "nan" : "inf") + " at row " +
           std::to_string(i / cols) + ", column " + std::to_string(i % cols) +
           "; features must be finite");
}

// A Kaldi binary token ("FM") and the one space after it.
std::string read_token(Source& s, const std::string& w) {
  std::string t;
  for (;;) {
    const int c = s.get();
    if (c < 0) fail(w + ": truncated in the matrix header");
    if (c == ' ') break;
    if (c < 0x21 || c > 0x7e || t.size() >= 8)
      fail(w + ": expected a matrix type ('FM' or 'DM') after '\\0B', got '" +
           printable(t + char(c)) + "' (not a Kaldi matrix, or damaged)");
    t += char(c);
  }
  return t;
}

int32_t read_binary_int32(Source& s, const std::string& what, const std::string& w) {
  unsigned char b[5];
  if (!s.read(b, 5)) fail(w + ": truncated in the matrix header (" + what + ")");
  if (b[0] != 4)
    fail(w + ": the matrix header's " + what + " has size byte " + std::to_string(int(b[0])) +
         ", expected 4 (int32): damaged, or not a Kaldi matrix");
  return int32_t(le32(b + 1));
}

// A binary matrix after its "\0B" (at byte `at`). `skip`: check the header and seek past the data.
Tensor<float> read_binary_matrix(Source& s, const std::string& key, int64_t at, bool skip) {
  const std::string w = where(s, key, at);
  const std::string token = read_token(s, w);
  if (token == "CM" || token == "CM2" || token == "CM3")
    fail(w + ": a compressed matrix ('" + token +
         "'), which is not supported; rewrite the features uncompressed with Kaldi's copy-feats, "
         "e.g. `copy-feats ark:IN.ark ark,scp:OUT.ark,OUT.scp` (no --compress=true)");
  if (token == "FV" || token == "DV")
    fail(w + ": a vector ('" + token + "'), not a matrix; sequence features are matrices");
  if (token != "FM" && token != "DM")
    fail(w + ": unknown object type '" + printable(token) + "', expected 'FM' or 'DM' (a matrix)");
  const int64_t rows = read_binary_int32(s, "row count", w);
  const int64_t cols = read_binary_int32(s, "column count", w);
  if (rows <= 0 || cols <= 0) check_shape(rows, cols, w);
  const int64_t elem = token == "FM" ? 4 : 8;
  // In double: 2^31 x 2^31 x 8 overflows int64; exact below 2^53, far above any file.
  const double bytes = double(rows) * double(cols) * double(elem);
  if (bytes > double(s.remaining()))
    fail(w + ": truncated: the header says " + std::to_string(rows) + " x " + std::to_string(cols) +
         " values (" + whole(bytes) + " bytes), but only " + std::to_string(s.remaining()) +
         " bytes follow");
  check_shape(rows, cols, w);
  Tensor<float> m;
  if (skip) {
    s.seek(s.pos() + rows * cols * elem);
    return m;
  }
  m.resize({rows, cols});
  std::vector<unsigned char> row(size_t(cols * elem));
  for (int64_t r = 0; r < rows; ++r) {
    if (!s.read(row.data(), row.size()))
      fail(w + ": truncated in row " + std::to_string(r) + " (read error)");
    float* out = m.data() + r * cols;
    if (elem == 4) {
      for (int64_t c = 0; c < cols; ++c) out[c] = float_of(le32(row.data() + 4 * c));
    } else {
      for (int64_t c = 0; c < cols; ++c) {
        const double d = double_of(le64(row.data() + 8 * c));
        if (std::isfinite(d) && std::fabs(d) > double(std::numeric_limits<float>::max()))
          fail(w + ": value " + number(d) + " at row " + std::to_string(r) + ", column " +
               std::to_string(c) + " is out of the float range");
        out[c] = float(d);
      }
    }
  }
  check_finite(m, w);
  return m;
}

// A text matrix: whitespace, '[', rows ended by newlines (or ';'), ']'.
Tensor<float> read_text_matrix(Source& s, const std::string& key) {
  s.skip_space();
  const int64_t at = s.pos();
  const std::string w = where(s, key, at);
  const int first = s.get();
  if (first != '[')
    fail(w + ": expected '[' (a text matrix) or '\\0B' (a binary one), got " + byte_name(first) +
         (key.empty() ? "" : " (not a Kaldi archive, or damaged)"));
  std::vector<float> values;
  int64_t cols = -1, rows = 0, in_row = 0;
  auto end_row = [&] {
    if (in_row == 0) return;
    if (cols < 0) cols = in_row;
    if (in_row != cols)
      fail(w + ": row " + std::to_string(rows) + " has " + std::to_string(in_row) +
           " values, row 0 has " + std::to_string(cols));
    ++rows;
    in_row = 0;
  };
  for (;;) {
    const int c = s.peek();
    if (c < 0) fail(w + ": truncated: the text matrix has no closing ']'");
    if (c == ']') {
      s.get();
      end_row();
      if (s.peek() == '\r') s.get();
      if (s.peek() == '\n') s.get();
      break;
    }
    if (c == '\n' || c == ';') {
      s.get();
      end_row();
      continue;
    }
    if (is_space(c)) {
      s.get();
      continue;
    }
    const int64_t tok_at = s.pos();
    std::string tok;
    while (s.peek() >= 0 && !is_space(s.peek()) && s.peek() != ']' && s.peek() != ';') {
      tok += char(s.get());
      if (tok.size() > 64)
        fail(s.path() + ": byte " + std::to_string(tok_at) + ": '" + printable(tok) +
             "' is not a number (not a Kaldi text matrix, or damaged)");
    }
    const char* b = tok.data() + (tok[0] == '+' ? 1 : 0);
    const char* e = tok.data() + tok.size();
    float v = 0;
    auto res = std::from_chars(b, e, v);
    if (res.ec == std::errc::result_out_of_range) {
      // Too small for a float is (nearly) zero, as Kaldi's reader takes it; too large is refused.
      double d = 0;
      const auto rd = std::from_chars(b, e, d);
      if ((rd.ec == std::errc() || rd.ec == std::errc::result_out_of_range) && rd.ptr == e &&
          std::fabs(d) < 1) {
        v = float(d);
        res.ec = std::errc();
      }
    }
    if (res.ec == std::errc::result_out_of_range)
      fail(s.path() + ": byte " + std::to_string(tok_at) + ": '" + printable(tok) +
           "' is out of the float range");
    if (res.ec != std::errc() || res.ptr != e)
      fail(s.path() + ": byte " + std::to_string(tok_at) + ": expected a number in the matrix" +
           (key.empty() ? "" : " of key '" + printable(key) + "'") + ", got '" + printable(tok) +
           "'");
    if (!std::isfinite(v))
      fail(s.path() + ": byte " + std::to_string(tok_at) + ": value '" + printable(tok) +
           "' in row " + std::to_string(rows) +
           (key.empty() ? "" : " of key '" + printable(key) + "'") + "; features must be finite");
    values.push_back(v);
    ++in_row;
    if (in_row > kMaxFeatureColumns)
      fail(w + ": row " + std::to_string(rows) + " has more than " +
           std::to_string(kMaxFeatureColumns) + " values (damaged or not a feature matrix)");
    if (int64_t(values.size()) > kMaxFeatureValues)
      fail(w + ": more than " + std::to_string(kMaxFeatureValues) + " values (damaged?)");
  }
  if (rows == 0) fail(w + ": the matrix is empty; expected at least one row and one column");
  Tensor<float> m({rows, cols});
  std::copy(values.begin(), values.end(), m.data());
  return m;
}

// The matrix at the reader's position: "\0B" + binary matrix, or a text matrix.
Tensor<float> read_object(Source& s, const std::string& key, bool skip = false) {
  if (s.peek() == '\0') {
    const int64_t at = s.pos();
    s.get();
    const int b = s.get();
    if (b != 'B')
      fail(where(s, key, at) + ": '\\0' followed by " + byte_name(b) +
           ", expected 'B' (Kaldi's binary marker)");
    return read_binary_matrix(s, key, at, skip);
  }
  return read_text_matrix(s, key);
}

// An archive's next key and the separator after it; false at the end of the file.
bool read_key(Source& s, std::string& key) {
  s.skip_space();
  if (s.peek() < 0) return false;
  const int64_t at = s.pos();
  key.clear();
  while (s.peek() >= 0 && !is_space(s.peek())) {
    const int c = s.get();
    if (c < 0x20 || c == 0x7f || c == 0xff)
      fail(s.path() + ": byte " + std::to_string(at) + ": '" + printable(key + char(c)) +
           "' is not a key (control byte): not a Kaldi archive, or damaged");
    key += char(c);
    if (key.size() > 4096)
      fail(s.path() + ": byte " + std::to_string(at) +
           ": a key longer than 4096 bytes: not a Kaldi archive, or damaged");
  }
  const int c = s.peek();
  if (c < 0)
    fail(s.path() + ": truncated after key '" + printable(key) + "' (byte " + std::to_string(at) +
         "): no matrix follows");
  if (c == ' ' || c == '\t') s.get();
  return true;
}

bool has_suffix(const std::string& s, const std::string& suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[s.size() - suffix.size() + i])) != suffix[i])
      return false;
  return true;
}

// ---- atomic output ----

class AtomicFile {
 public:
  explicit AtomicFile(std::string path) : path_(std::move(path)) {
    const fs::path p(path_);
    const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
    std::string pattern = (dir / ("." + p.filename().string() + ".tmp-XXXXXX")).string();
    const int fd = ::mkstemp(&pattern[0]);
    if (fd < 0) fail(path_ + ": cannot write (creating a temporary file): " + std::strerror(errno));
    ::fchmod(fd, 0644);
    tmp_ = pattern;
    f_ = ::fdopen(fd, "wb");
    if (!f_) {
      ::close(fd);
      ::unlink(tmp_.c_str());
      fail(path_ + ": cannot write: " + std::strerror(errno));
    }
  }
  ~AtomicFile() {
    if (f_) std::fclose(f_);
    if (!done_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const std::string& bytes) {
    if (std::fwrite(bytes.data(), 1, bytes.size(), f_) != bytes.size())
      fail(path_ + ": write failed: " + std::strerror(errno));
    written_ += int64_t(bytes.size());
  }
  int64_t written() const { return written_; }
  // Flushes, syncs and closes the temporary file (the data is safe, not yet in place).
  void close() {
    if (!f_) return;
    int err = 0;
    if (std::fflush(f_) != 0 || ::fsync(::fileno(f_)) != 0) err = errno;
    if (std::fclose(f_) != 0 && err == 0) err = errno;
    f_ = nullptr;
    if (err != 0) fail(path_ + ": write failed: " + std::strerror(err));
  }
  void rename_into_place() {
    close();
    if (::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail(path_ + ": cannot replace: " + std::strerror(errno));
    done_ = true;
  }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool done_ = false;
  int64_t written_ = 0;
};

// A tensor as {rows, cols}: rank 2, or rank 1 as one row.
void matrix_shape(const Tensor<float>& m, int64_t& rows, int64_t& cols, const std::string& w) {
  if (m.rank() == 2) {
    rows = m.dim(0);
    cols = m.dim(1);
  } else if (m.rank() == 1) {
    rows = 1;
    cols = m.dim(0);
  } else {
    fail(w + ": expected a matrix {rows, cols}, got shape " + bpkit::to_string(m.shape()));
  }
  if (rows < 1 || cols < 1)
    fail(w + ": cannot write an empty matrix (shape " + bpkit::to_string(m.shape()) + ")");
  for (int64_t i = 0; i < m.size(); ++i)
    if (!std::isfinite(m[i]))
      fail(w + ": value " + number(m[i]) + " at row " + std::to_string(i / cols) + ", column " +
           std::to_string(i % cols) + " is not finite");
}

}  // namespace

// ---- Kaldi reading ----------------------------------------------------------------------------

bool is_kaldi_key(const std::string& key) {
  if (key.empty()) return false;
  for (const char ch : key) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7f || c == 0xff) return false;
  }
  return true;
}

std::vector<KaldiMatrix> read_kaldi_ark(const std::string& path) {
  Source s(path);
  std::vector<KaldiMatrix> out;
  std::string key;
  while (read_key(s, key)) {
    KaldiMatrix m;
    m.matrix = read_object(s, key);
    m.key = key;
    out.push_back(std::move(m));
  }
  if (out.empty()) fail(path + ": the archive holds no matrix (empty file)");
  return out;
}

KaldiMatrix read_kaldi_ark_entry(const std::string& path, const std::string& key) {
  Source s(path);
  std::string k;
  std::vector<std::string> seen;
  while (read_key(s, k)) {
    if (key.empty() || k == key) {
      KaldiMatrix m;
      m.matrix = read_object(s, k);
      m.key = k;
      return m;
    }
    read_object(s, k, /*skip=*/true);
    if (seen.size() < 6) seen.push_back(k);
  }
  if (seen.empty()) fail(path + ": the archive holds no matrix (empty file)");
  std::string list;
  for (size_t i = 0; i < seen.size() && i < 5; ++i)
    list += (i ? ", " : "") + std::string("'") + printable(seen[i]) + "'";
  if (seen.size() > 5) list += ", ...";
  fail(path + ": no matrix with key '" + printable(key) + "' (the archive holds " + list + ")");
}

Tensor<float> read_kaldi_matrix_file(const std::string& path) {
  Source s(path);
  if (s.size() == 0) fail(path + ": empty file");
  return read_object(s, "");
}

std::vector<KaldiScpEntry> read_kaldi_scp(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > (size_t(1) << 30)) {
      std::fclose(f);
      fail(path + ": larger than 1 GiB: not a script file");
    }
  }
  std::fclose(f);
  const fs::path dir = fs::path(path).parent_path();
  std::vector<KaldiScpEntry> out;
  std::set<std::string> keys;
  size_t pos = 0;
  int line_no = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    const std::string w = path + ":" + std::to_string(line_no);
    if (line.find('\0') != std::string::npos) fail(w + ": a NUL byte: not a Kaldi script file");
    while (!line.empty() && is_space(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t b = 0;
    while (b < line.size() && is_space(static_cast<unsigned char>(line[b]))) ++b;
    if (b == line.size()) continue;
    size_t k = b;
    while (k < line.size() && !is_space(static_cast<unsigned char>(line[k]))) ++k;
    KaldiScpEntry e;
    e.key = line.substr(b, k - b);
    e.where = w;
    if (!is_kaldi_key(e.key)) fail(w + ": '" + printable(e.key) + "' is not a valid key");
    while (k < line.size() && is_space(static_cast<unsigned char>(line[k]))) ++k;
    std::string rx = line.substr(k);
    if (rx.empty())
      fail(w + ": expected 'KEY PATH[:OFFSET]', got only the key '" + printable(e.key) + "'");
    if (rx.back() == '|' || rx.front() == '|' || rx == "-")
      fail(w + ": '" + printable(rx) +
           "' is a pipe or standard input, which is not supported; "
           "write the features to an archive first");
    if (rx.back() == ']')
      fail(w + ": '" + printable(rx) + "' has a range specifier, which is not supported");
    const size_t colon = rx.rfind(':');
    if (colon != std::string::npos && colon + 1 < rx.size() &&
        rx.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
      const std::string digits = rx.substr(colon + 1);
      if (digits.size() > 18) fail(w + ": byte offset '" + digits + "' is too large");
      e.offset = std::stoll(digits);
      rx = rx.substr(0, colon);
    }
    if (rx.empty()) fail(w + ": no file name before the offset");
    e.path = rx;
    std::error_code ec;
    if (fs::path(rx).is_relative() && !fs::exists(rx, ec) && !dir.empty() &&
        fs::exists(dir / rx, ec))
      e.path = (dir / rx).lexically_normal().string();
    if (!keys.insert(e.key).second) fail(w + ": duplicate key '" + printable(e.key) + "'");
    out.push_back(std::move(e));
  }
  if (out.empty()) fail(path + ": the script file lists no matrix");
  return out;
}

Tensor<float> read_kaldi_scp_entry(const KaldiScpEntry& entry) {
  try {
    Source s(entry.path);
    if (entry.offset < 0) {
      if (s.size() == 0) fail(entry.path + ": empty file");
      return read_object(s, entry.key);
    }
    if (entry.offset >= s.size())
      fail(entry.path + ": byte offset " + std::to_string(entry.offset) +
           " is at or past the end of the file (" + std::to_string(s.size()) + " bytes)");
    s.seek(entry.offset);
    return read_object(s, entry.key);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string(e.what()) + " (entry '" + printable(entry.key) + "' at " +
                             entry.where + ")");
  }
}

std::vector<KaldiMatrix> read_kaldi_scp_matrices(const std::string& path) {
  std::vector<KaldiMatrix> out;
  for (const KaldiScpEntry& e : read_kaldi_scp(path)) {
    KaldiMatrix m;
    m.key = e.key;
    m.matrix = read_kaldi_scp_entry(e);
    out.push_back(std::move(m));
  }
  return out;
}

// ---- Kaldi writing ----------------------------------------------------------------------------

struct KaldiArkWriter::State {
  std::string ark_path, scp_path;
  Options options;
  std::unique_ptr<AtomicFile> ark, scp;
  std::set<std::string> keys;
  bool committed = false;
};

KaldiArkWriter::KaldiArkWriter(const std::string& ark_path, const std::string& scp_path,
                               const Options& options)
    : s_(std::make_unique<State>()) {
  if (ark_path.empty()) fail("KaldiArkWriter: no archive path");
  if (options.precision < 1 || options.precision > 17)
    fail("KaldiArkWriter: text precision must be 1 to 17 digits");
  if (!scp_path.empty() &&
      fs::path(scp_path).lexically_normal() == fs::path(ark_path).lexically_normal())
    fail(ark_path + ": the archive and its scp file cannot be the same file");
  s_->ark_path = ark_path;
  s_->scp_path = scp_path;
  s_->options = options;
  s_->ark = std::make_unique<AtomicFile>(ark_path);
  if (!scp_path.empty()) s_->scp = std::make_unique<AtomicFile>(scp_path);
}

KaldiArkWriter::~KaldiArkWriter() = default;

void KaldiArkWriter::write(const std::string& key, const Tensor<float>& matrix) {
  if (s_->committed) fail(s_->ark_path + ": written after commit()");
  if (!is_kaldi_key(key))
    fail(s_->ark_path + ": '" + printable(key) +
         "' is not a valid Kaldi key (empty, or with whitespace or control characters)");
  if (!s_->keys.insert(key).second) fail(s_->ark_path + ": duplicate key '" + printable(key) + "'");
  int64_t rows = 0, cols = 0;
  matrix_shape(matrix, rows, cols, s_->ark_path + ": key '" + printable(key) + "'");
  if (rows > INT32_MAX || cols > INT32_MAX)
    fail(s_->ark_path + ": key '" + key + "': too large for a Kaldi matrix (int32 sizes)");
  std::string bytes = key + ' ';
  const int64_t offset = s_->ark->written() + int64_t(bytes.size());
  if (!s_->options.text) {
    bytes += std::string("\0B", 2);
    bytes += "FM ";
    bytes += char(4);
    put_le32(bytes, uint32_t(rows));
    bytes += char(4);
    put_le32(bytes, uint32_t(cols));
    bytes.reserve(bytes.size() + size_t(rows * cols * 4));
    for (int64_t i = 0; i < rows * cols; ++i) put_le32(bytes, bits_of(matrix[i]));
  } else {
    bytes += " [";
    char num[64];
    for (int64_t r = 0; r < rows; ++r) {
      bytes += "\n  ";
      for (int64_t c = 0; c < cols; ++c) {
        const auto res = std::to_chars(num, num + sizeof num, matrix[r * cols + c],
                                       std::chars_format::general, s_->options.precision);
        bytes.append(num, res.ptr);
        bytes += ' ';
      }
    }
    bytes += "]\n";
  }
  if (s_->scp) {
    const std::string name =
        s_->options.scp_ark_name.empty() ? s_->ark_path : s_->options.scp_ark_name;
    s_->scp->write(key + ' ' + name + ':' + std::to_string(offset) + '\n');
  }
  s_->ark->write(bytes);
}

void KaldiArkWriter::commit() {
  if (s_->committed) return;
  s_->ark->close();
  if (s_->scp) s_->scp->close();
  s_->ark->rename_into_place();
  if (s_->scp) s_->scp->rename_into_place();
  s_->committed = true;
}

void write_kaldi_ark(const std::string& ark_path, const std::vector<KaldiMatrix>& matrices,
                     bool text, const std::string& scp_path) {
  KaldiArkWriter::Options o;
  o.text = text;
  KaldiArkWriter w(ark_path, scp_path, o);
  for (const KaldiMatrix& m : matrices) w.write(m.key, m.matrix);
  w.commit();
}

// ---- Sphinx -----------------------------------------------------------------------------------

Tensor<float> read_sphinx_mfc(const std::string& path, int ncep, ByteOrder* order) {
  if (ncep < 1 || ncep > kMaxFeatureColumns)
    fail(path + ": ncep " + std::to_string(ncep) + " is out of range");
  Source s(path);
  if (s.size() < 4)
    fail(path + ": " + std::to_string(s.size()) +
         " bytes, too short for a Sphinx cepstrum file (4-byte header)");
  unsigned char h[4];
  if (!s.read(h, 4)) fail(path + ": cannot read the header");
  const int64_t floats = (s.size() - 4) / 4;
  const int64_t n_le = int32_t(le32(h)), n_be = int32_t(be32(h));
  bool big = false;
  int64_t n;
  if ((s.size() - 4) % 4 == 0 && n_le == floats) {
    n = n_le;
  } else if ((s.size() - 4) % 4 == 0 && n_be == floats) {
    n = n_be;
    big = true;
  } else {
    fail(path + ": the header says " + std::to_string(n_le) + " floats (little-endian) or " +
         std::to_string(n_be) + " (big-endian), but the file's " + std::to_string(s.size()) +
         " bytes hold " + std::to_string(s.size() - 4) +
         " bytes of data: truncated, or not a Sphinx cepstrum file (.mfc)");
  }
  if (n <= 0) fail(path + ": the header says 0 floats: no frames");
  if (n % ncep != 0)
    fail(path + ": " + std::to_string(n) + " floats are not a whole number of frames of " +
         std::to_string(ncep) + " (ncep; the file was made with another -ncep?)");
  if (n > kMaxFeatureValues)
    fail(path + ": " + std::to_string(n) + " floats, more than " +
         std::to_string(kMaxFeatureValues));
  const int64_t frames = n / ncep;
  Tensor<float> m({frames, int64_t(ncep)});
  std::vector<unsigned char> row(size_t(ncep) * 4);
  for (int64_t r = 0; r < frames; ++r) {
    if (!s.read(row.data(), row.size()))
      fail(path + ": truncated in frame " + std::to_string(r) + " (read error)");
    for (int c = 0; c < ncep; ++c)
      m[r * ncep + c] = float_of(big ? be32(row.data() + 4 * c) : le32(row.data() + 4 * c));
  }
  check_finite(m, path);
  if (order) *order = big ? ByteOrder::kBig : ByteOrder::kLittle;
  return m;
}

void write_sphinx_mfc(const std::string& path, const Tensor<float>& frames, ByteOrder order) {
  int64_t rows = 0, cols = 0;
  matrix_shape(frames, rows, cols, path);
  if (rows * cols > INT32_MAX) fail(path + ": too many values for a Sphinx file (int32 header)");
  std::string bytes;
  bytes.reserve(size_t(4 + 4 * rows * cols));
  auto put = order == ByteOrder::kBig ? put_be32 : put_le32;
  put(bytes, uint32_t(rows * cols));
  for (int64_t i = 0; i < rows * cols; ++i) put(bytes, bits_of(frames[i]));
  AtomicFile f(path);
  f.write(bytes);
  f.rename_into_place();
}

// ---- detection --------------------------------------------------------------------------------

FeatureFileFormat detect_feature_file(const std::string& path) {
  if (has_suffix(path, ".mfc") || has_suffix(path, ".mfcc")) return FeatureFileFormat::kSphinx;
  if (has_suffix(path, ".ark")) return FeatureFileFormat::kKaldiArk;
  if (has_suffix(path, ".scp")) return FeatureFileFormat::kKaldiScp;
  Source s(path);
  std::string head(size_t(std::min<int64_t>(s.size(), 4200)), '\0');
  if (!s.read(&head[0], head.size())) fail(path + ": cannot read");
  if (head.size() >= 2 && head[0] == '\0' && head[1] == 'B') return FeatureFileFormat::kKaldiMatrix;
  size_t i = 0;
  while (i < head.size() && is_space(static_cast<unsigned char>(head[i]))) ++i;
  if (i < head.size() && head[i] == '[') return FeatureFileFormat::kKaldiMatrix;
  // KEY, one space, then "\0B" or (spaces) "[".
  size_t k = i;
  while (k < head.size() && static_cast<unsigned char>(head[k]) > 0x20 &&
         static_cast<unsigned char>(head[k]) != 0x7f)
    ++k;
  if (k > i && k < head.size() && (head[k] == ' ' || head[k] == '\t')) {
    if (head.compare(k + 1, 2, std::string("\0B", 2)) == 0) return FeatureFileFormat::kKaldiArk;
    size_t j = k + 1;
    while (j < head.size() && is_space(static_cast<unsigned char>(head[j]))) ++j;
    if (j < head.size() && head[j] == '[') return FeatureFileFormat::kKaldiArk;
  }
  if (s.size() >= 8 && (s.size() - 4) % 4 == 0) {
    const auto* h = reinterpret_cast<const unsigned char*>(head.data());
    const int64_t floats = (s.size() - 4) / 4;
    if (int32_t(le32(h)) == floats || int32_t(be32(h)) == floats) return FeatureFileFormat::kSphinx;
  }
  fail(path +
       ": cannot tell the feature file's format: not a Kaldi archive (a key followed by "
       "\" \\0B\" or \" [\"), Kaldi matrix or Sphinx cepstrum file (a header counting the floats "
       "that follow); set `format`, or check the file");
}

// ---- sequence.read ----------------------------------------------------------------------------

PluginInfo SequenceRead::info() {
  return {"sequence.read",
          "1.0",
          "reads precomputed features as a {frames, features} sequence: one float matrix of a "
          "Kaldi archive (.ark, binary or text; 'DM' double matrices converted; compressed ones "
          "refused), a Kaldi .scp (KEY ARK:OFFSET lines) or a lone Kaldi matrix file, or a Sphinx "
          "cepstrum file (.mfc, sphinx_fe's output, either byte order). Every size is checked "
          "against the file before anything is allocated",
          Kind::kFile,
          Kind::kSequence,
          {{"format",
            {"auto", "kaldi", "sphinx"},
            "auto",
            "auto: .mfc/.mfcc Sphinx, .ark/.scp Kaldi, else by the file's first bytes"},
           {"key", ParamType::kString, "",
            "the utterance to take from a Kaldi archive or scp; empty: the first one"},
           {"ncep", ParamType::kInt, "13", "Sphinx: values per frame (sphinx_fe -ncep)", 1,
            double(kMaxFeatureColumns)}}};
}

void SequenceRead::configure(const bpkit::ParamValues& p) {
  format_ = p.get_string("format");
  key_ = p.get_string("key");
  ncep_ = int(p.get_int("ncep"));
  if (!key_.empty() && !is_kaldi_key(key_))
    throw bpkit::ParamError(
        "key", "'" + printable(key_) + "' is not a Kaldi key (whitespace or control characters)");
  if (!key_.empty() && format_ == "sphinx")
    throw bpkit::ParamError("key",
                            "a Sphinx file holds one utterance: `key` applies to Kaldi "
                            "archives only");
}

Value SequenceRead::process(const Value& in) const {
  FeatureFileFormat f;
  if (format_ == "sphinx") {
    f = FeatureFileFormat::kSphinx;
  } else if (format_ == "kaldi") {
    f = has_suffix(in.path, ".scp") ? FeatureFileFormat::kKaldiScp : FeatureFileFormat::kKaldiArk;
    if (f == FeatureFileFormat::kKaldiArk) {
      // A lone matrix (no key) starts with "\0B" or '['.
      Source s(in.path);
      const int c = s.peek();
      if (c == '\0' || c == '[') f = FeatureFileFormat::kKaldiMatrix;
    }
  } else {
    f = detect_feature_file(in.path);
  }
  Value v;
  v.kind = Kind::kSequence;
  v.path = in.path;
  switch (f) {
    case FeatureFileFormat::kSphinx:
      if (!key_.empty())
        fail(in.path + ": a Sphinx cepstrum file holds one utterance; `key` ('" + key_ +
             "') applies to Kaldi archives only");
      v.tensor = read_sphinx_mfc(in.path, ncep_);
      break;
    case FeatureFileFormat::kKaldiArk:
      v.tensor = read_kaldi_ark_entry(in.path, key_).matrix;
      break;
    case FeatureFileFormat::kKaldiMatrix:
      if (!key_.empty())
        fail(in.path + ": a lone Kaldi matrix without a key; `key` ('" + key_ +
             "') applies to archives");
      v.tensor = read_kaldi_matrix_file(in.path);
      break;
    case FeatureFileFormat::kKaldiScp: {
      const std::vector<KaldiScpEntry> entries = read_kaldi_scp(in.path);
      const KaldiScpEntry* e = key_.empty() ? &entries[0] : nullptr;
      for (const KaldiScpEntry& x : entries)
        if (!e && x.key == key_) e = &x;
      if (!e) fail(in.path + ": no entry with key '" + key_ + "'");
      v.tensor = read_kaldi_scp_entry(*e);
      break;
    }
  }
  return v;
}

}  // namespace bpkit_audio
