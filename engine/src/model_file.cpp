#include "bpkit/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

#include "bpkit/error.h"

namespace bpkit {
namespace {

constexpr char kMagic[8] = {'B', 'P', 'K', 'I', 'T', 'M', 'D', 'L'};
constexpr const char* kExtraPrefix = "extra:";
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "model files are little-endian");

template <class V>
void put(std::string& out, V v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

void put_bytes(std::string& out, const std::string& s, bool wide) {
  if (wide)
    put<uint64_t>(out, s.size());
  else
    put<uint32_t>(out, uint32_t(s.size()));
  out += s;
}

std::string shape_csv(const Shape& s) {
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r;
}

// Messages quote names read from the file; a corrupted name may hold control bytes (a NUL would
// cut the message short), so those are shown as \xNN.
std::string printable(const std::string& s) {
  std::string r;
  for (unsigned char c : s) {
    if (c >= 0x20 && c != 0x7F) {
      r += char(c);
    } else {
      static const char kHex[] = "0123456789abcdef";
      r += "\\x";
      r += kHex[c >> 4];
      r += kHex[c & 15];
    }
  }
  return r;
}

// Bounds-checked reading of the file's bytes; every failure names the file, the offset and what
// was being read.
class Reader {
 public:
  Reader(const std::string& path, std::string_view bytes) : path_(path), b_(bytes) {}
  [[noreturn]] void fail(const std::string& what) const {
    throw FileError("model file '" + path_ + "': " + printable(what));
  }
  void need(uint64_t n, const std::string& what) const {
    if (n > b_.size() - pos_)
      fail("truncated or corrupted: " + what + " needs " + std::to_string(n) + " bytes at offset " +
           std::to_string(pos_) + " but only " + std::to_string(b_.size() - pos_) + " remain");
  }
  template <class V>
  V get(const std::string& what) {
    need(sizeof(V), what);
    V v;
    std::memcpy(&v, b_.data() + pos_, sizeof v);
    pos_ += sizeof v;
    return v;
  }
  std::string bytes(uint64_t n, const std::string& what) {
    need(n, what);
    std::string s(b_.substr(pos_, n));
    pos_ += n;
    return s;
  }
  const char* here() const { return b_.data() + pos_; }
  void skip(uint64_t n) { pos_ += n; }
  size_t pos() const { return pos_; }
  size_t remaining() const { return b_.size() - pos_; }

 private:
  const std::string& path_;
  std::string_view b_;
  size_t pos_ = 0;
};

// A model file mapped read-only: its pages come straight from the page cache, with no buffer to
// zero and no copy (a model is read once, into the layers). bpkit replaces model files by
// renaming (the mapping keeps the old file); a file truncated in place by another program while
// it is being read would end the process with SIGBUS.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw FileError("cannot open model file '" + path + "': " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      throw FileError("model path '" + path + "' is not a regular file");
    }
    size_ = size_t(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (p == MAP_FAILED) {
        const std::string err = std::strerror(errno);
        ::close(fd);
        throw FileError("cannot read model file '" + path + "': " + err);
      }
      data_ = static_cast<const char*>(p);
    }
    ::close(fd);
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  std::string_view bytes() const { return {data_ ? data_ : "", size_}; }

 private:
  const char* data_ = nullptr;
  size_t size_ = 0;
};

// Copies n stored elements of `dtype` bytes (4: float, 8: double) into `out`.
template <class T>
void copy_stored(const char* src, uint32_t dtype, int64_t n, T* out) {
  // Large destinations are fresh pages: fault them in with one call rather than one fault per
  // page (Linux 5.14+; elsewhere the copy faults them as usual).
  if (n <= 0) return;
  const size_t bytes = size_t(n) * sizeof(T);
#ifdef MADV_POPULATE_WRITE
  if (bytes >= (size_t(1) << 16)) {
    static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
    const uintptr_t from = (reinterpret_cast<uintptr_t>(out) + page - 1) & ~(page - 1),
                    to = (reinterpret_cast<uintptr_t>(out) + bytes) & ~(page - 1);
    if (to > from) ::madvise(reinterpret_cast<void*>(from), to - from, MADV_POPULATE_WRITE);
  }
#endif
  if (dtype == sizeof(T)) {
    std::memcpy(out, src, size_t(n) * sizeof(T));
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    if (dtype == 4) {
      float v;
      std::memcpy(&v, src + 4 * k, 4);
      out[k] = T(v);
    } else {
      double v;
      std::memcpy(&v, src + 8 * k, 8);
      out[k] = T(v);
    }
  }
}

Shape parse_csv_shape(const std::string& csv, Reader& r) {
  Shape s;
  std::stringstream ss(csv);
  std::string tok;
  while (std::getline(ss, tok, ',')) {
    char* end = nullptr;
    errno = 0;
    const long long d = std::strtoll(tok.c_str(), &end, 10);
    // Each dimension fits 32 bits (as layer attributes do) and their product 2^40 (shape_size).
    if (tok.empty() || *end != '\0' || (d < 1 && d != kDynamic) || d > INT32_MAX || errno == ERANGE)
      r.fail("bad input shape '" + csv + "' (dimensions are 1.." + std::to_string(INT32_MAX) +
             " or -1)");
    s.push_back(d);
  }
  if (s.empty()) r.fail("empty input shape");
  try {
    Shape fixed = s;
    for (int64_t& d : fixed) d = d == kDynamic ? 1 : d;
    shape_size(fixed);
  } catch (const std::invalid_argument& e) {
    r.fail("bad input shape '" + csv + "': " + e.what());
  }
  return s;
}

// A NaN or infinite weight makes every output it reaches NaN (a classifier then answers class 0
// for everything): such a file is refused at load, naming the tensor and the first bad element.
template <class T>
void require_finite(const Tensor<T>& t, const std::string& name, Reader& r) {
  for (int64_t i = 0; i < t.size(); ++i)
    if (!std::isfinite(t[i]))
      r.fail("tensor '" + name + "' holds " + (std::isnan(t[i]) ? "NaN" : "an infinite value") +
             " at element " + std::to_string(i) + " (a model's weights must be finite numbers)");
}

struct StoredTensor {
  Shape shape;
  uint32_t dtype;
  const char* data;
};

}  // namespace

namespace {

// The file-creation mask, read without changing it (umask(2) can only read it by setting it,
// which would race with other threads creating files).
mode_t process_umask() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Umask:", 0) == 0) return mode_t(std::strtoul(line.c_str() + 6, nullptr, 8));
  return mode_t(022);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes) {
  // A temporary name no other writer (thread or process) can hold: created with O_EXCL.
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) throw FileError("cannot write '" + path + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string err = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw FileError(what + " '" + path + "': " + err);
  };
  if (::fchmod(fd, 0666 & ~process_umask()) != 0) fail("cannot write");
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) fail("cannot write");
    done += size_t(n);
  }
  if (::fsync(fd) != 0) fail("cannot write");
  if (::close(fd) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw FileError("cannot write '" + path + "': " + err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw FileError("cannot replace '" + path + "': " + err);
  }
  // Make the rename itself durable. The file is in place by now: a directory that cannot be
  // opened or synced (no read permission; filesystems without directory sync say EINVAL,
  // ENOTSUP, ...) leaves only the rename's durability to the filesystem, but an I/O error is one.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return;
  const int r = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  if (r != 0 && err == EIO)
    throw FileError("cannot sync the directory of '" + path + "': " + std::strerror(err));
}

template <class T>
void save_model(const Network<T>& cnet, const std::string& path, const Metadata& meta,
                const ExtraTensors<T>& extra) {
  auto& net = const_cast<Network<T>&>(cnet);  // params() hands out mutable pointers; only read here
  std::string arch =
      "input " + shape_csv(net.input_shape()) + "\nseed " + std::to_string(net.seed()) + "\n";
  std::vector<std::pair<std::string, const Tensor<T>*>> tensors;
  for (size_t i = 0; i < net.size(); ++i) {
    Layer<T>& l = net.layer(i);
    const std::string attrs = l.attrs().to_string();
    arch += l.kind() + " name=" + l.name() + (attrs.empty() ? "" : " " + attrs) + "\n";
    for (auto& p : l.params()) tensors.emplace_back(p.name, p.value);
    for (auto& b : l.buffers()) tensors.emplace_back(b.first, b.second);
  }
  for (const auto& [name, t] : extra) tensors.emplace_back(kExtraPrefix + name, &t);
  std::string out(kMagic, sizeof kMagic);
  put<uint32_t>(out, kModelFormatVersion);
  put<uint32_t>(out, uint32_t(sizeof(T)));
  put_bytes(out, arch, true);
  put<uint32_t>(out, uint32_t(tensors.size()));
  for (const auto& [name, t] : tensors) {
    put_bytes(out, name, false);
    put<uint32_t>(out, uint32_t(t->rank()));
    for (int d = 0; d < t->rank(); ++d) put<int64_t>(out, t->dim(d));
    out.append(reinterpret_cast<const char*>(t->data()), sizeof(T) * size_t(t->size()));
  }
  std::string m;
  for (const auto& [k, v] : meta) {
    if (k.find_first_of("=\n") != std::string::npos || v.find('\n') != std::string::npos)
      throw FileError("cannot write '" + path + "': metadata key '" + k +
                      "' or its value holds '=' or a newline");
    m += k + "=" + v + "\n";
  }
  put_bytes(out, m, true);
  const uint32_t crc =
      uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(out.data()), out.size()));
  put<uint32_t>(out, crc);
  write_file_atomically(path, out);
}

template <class T>
LoadedModel<T> load_model(const std::string& path) {
  const MappedFile file(path);
  const std::string_view bytes = file.bytes();
  Reader r(path, bytes);
  if (bytes.size() < sizeof kMagic && std::memcmp(bytes.data(), kMagic, bytes.size()) == 0)
    r.fail("truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the header");
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
    r.fail("not a bpkit model (the file does not start with \"BPKITMDL\")");
  r.skip(sizeof kMagic);
  const uint32_t version = r.get<uint32_t>("format version");
  if (version > kModelFormatVersion)
    r.fail("format version " + std::to_string(version) + " is newer than this bpkit reads (" +
           std::to_string(kModelFormatVersion) + "); upgrade bpkit");
  if (version == 0) r.fail("invalid format version 0");
  if (bytes.size() < r.pos() + 4) r.fail("truncated: no checksum");
  const uint32_t dtype = r.get<uint32_t>("element type");
  if (dtype != 4 && dtype != 8)
    r.fail("unknown element size " + std::to_string(dtype) + " (expected 4 or 8)");
  const uint64_t arch_len = r.get<uint64_t>("architecture length");
  const std::string arch = r.bytes(arch_len, "architecture");
  const uint32_t count = r.get<uint32_t>("tensor count");
  std::map<std::string, StoredTensor> stored;
  for (uint32_t i = 0; i < count; ++i) {
    const std::string what = "tensor " + std::to_string(i);
    const std::string name = r.bytes(r.get<uint32_t>(what + " name length"), what + " name");
    const uint32_t rank = r.get<uint32_t>(what + " rank");
    if (rank > 8) r.fail("tensor '" + name + "' has rank " + std::to_string(rank) + " (max 8)");
    StoredTensor t{{}, dtype, nullptr};
    uint64_t n = 1;
    for (uint32_t d = 0; d < rank; ++d) {
      const int64_t dim = r.get<int64_t>("tensor '" + name + "' shape");
      if (dim < 0 || (dim > 0 && n > (uint64_t(1) << 40) / uint64_t(dim)))
        r.fail("tensor '" + name + "' has an impossible dimension " + std::to_string(dim));
      n *= uint64_t(dim);
      t.shape.push_back(dim);
    }
    r.need(n * dtype, "tensor '" + name + "' data");
    t.data = r.here();
    r.skip(n * dtype);
    if (!stored.emplace(name, t).second) r.fail("tensor '" + name + "' appears twice");
  }
  const std::string meta_text = r.bytes(r.get<uint64_t>("metadata length"), "metadata");
  if (r.remaining() != 4)
    r.fail("corrupted: " + std::to_string(r.remaining()) +
           " bytes after the metadata (expected "
           "the 4-byte checksum)");
  const uint32_t crc_file = r.get<uint32_t>("checksum");
  const uint32_t crc =
      uint32_t(crc32_z(0L, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size() - 4));
  if (crc != crc_file) r.fail("corrupted: checksum mismatch");

  // Architecture.
  std::istringstream lines(arch);
  std::string line, word;
  Shape input;
  uint64_t seed = 0;
  if (!std::getline(lines, line) || line.rfind("input ", 0) != 0)
    r.fail("architecture lacks 'input'");
  input = parse_csv_shape(line.substr(6), r);
  if (!std::getline(lines, line) || line.rfind("seed ", 0) != 0)
    r.fail("architecture lacks 'seed'");
  {
    const std::string text = line.substr(5);
    char* end = nullptr;
    errno = 0;
    seed = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || text[0] == '-')
      r.fail("architecture line 2: bad seed '" + text + "'");
  }
  LoadedModel<T> out{Network<T>(input, seed), {}, {}};
  // Every parameter and buffer comes from the file (checked below): no random initialization.
  out.net.set_initialize(false);
  int line_no = 2;
  while (std::getline(lines, line)) {
    ++line_no;
    if (line.empty()) continue;
    std::istringstream ls(line);
    std::string kind;
    ls >> kind;
    std::string rest;
    std::getline(ls, rest);
    try {
      Attrs a = Attrs::parse(rest);
      // Network::add's naming, applied here so that errors and stored_shapes() use the name.
      std::string name = a.get_string("name", "");
      if (name.empty()) name = kind + std::to_string(out.net.size() + 1);
      Attrs layer_attrs;
      for (const auto& kv : a.items())
        if (kv.first != "name") layer_attrs.set(kv.first, kv.second);
      layer_attrs.context = "layer '" + printable(name) + "' (" + printable(kind) + ")";
      std::unique_ptr<Layer<T>> layer = make_layer<T>(kind, layer_attrs);
      layer->set_name(name);
      // Before the layer allocates anything: what it would allocate must be stored in the file,
      // so a few bytes declaring a huge layer are refused instead of allocated.
      for (const auto& [tname, shape] : layer->stored_shapes(out.net.output_shape())) {
        auto it = stored.find(tname);
        if (it == stored.end())
          r.fail("architecture line " + std::to_string(line_no) + ": " + layer->describe() +
                 " needs tensor '" + tname + "' of shape " + to_string(shape) +
                 ", which is missing from the file");
        if (it->second.shape != shape)
          r.fail("architecture line " + std::to_string(line_no) + ": tensor '" + tname +
                 "' has shape " + to_string(it->second.shape) + ", " + layer->describe() +
                 " needs " + to_string(shape));
      }
      out.net.add(std::move(layer), name);
    } catch (const std::invalid_argument& e) {  // ShapeError, impossible shapes
      r.fail("architecture line " + std::to_string(line_no) + ": " + e.what());
    } catch (const std::bad_alloc&) {
      r.fail("architecture line " + std::to_string(line_no) +
             ": the layer is too large to allocate (corrupted sizes?)");
    }
  }
  // Tensors: every parameter and buffer the architecture declares, with matching shapes.
  size_t used = 0;
  for (size_t i = 0; i < out.net.size(); ++i) {
    Layer<T>& l = out.net.layer(i);
    std::vector<std::pair<std::string, Tensor<T>*>> want;
    for (auto& p : l.params()) want.emplace_back(p.name, p.value);
    for (auto& b : l.buffers()) want.push_back(b);
    for (auto& [name, t] : want) {
      auto it = stored.find(name);
      if (it == stored.end()) r.fail("tensor '" + name + "' is missing");
      if (it->second.shape != t->shape())
        r.fail("tensor '" + name + "' has shape " + to_string(it->second.shape) + ", " +
               l.describe() + " needs " + to_string(t->shape()));
      copy_stored(it->second.data, dtype, t->size(), t->data());
      require_finite(*t, name, r);
      ++used;
    }
  }
  for (const auto& [name, st] : stored) {
    if (name.rfind(kExtraPrefix, 0) != 0) continue;
    Tensor<T> t(st.shape);
    copy_stored(st.data, dtype, t.size(), t.data());
    require_finite(t, name, r);
    out.extra.emplace_back(name.substr(std::strlen(kExtraPrefix)), std::move(t));
    ++used;
  }
  if (used != stored.size()) r.fail("holds tensors that no layer uses");
  std::istringstream ms(meta_text);
  while (std::getline(ms, line)) {
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) r.fail("metadata line '" + line + "' lacks '='");
    out.meta.emplace_back(line.substr(0, eq), line.substr(eq + 1));
  }
  out.net.set_initialize(true);  // layers a caller adds later are initialized as usual
  return out;
}

template void save_model<float>(const Network<float>&, const std::string&, const Metadata&,
                                const ExtraTensors<float>&);
template void save_model<double>(const Network<double>&, const std::string&, const Metadata&,
                                 const ExtraTensors<double>&);
template LoadedModel<float> load_model<float>(const std::string&);
template LoadedModel<double> load_model<double>(const std::string&);

}  // namespace bpkit
