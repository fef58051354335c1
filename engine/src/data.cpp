#include "bpkit/data.h"

#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <numeric>

#include "bpkit/error.h"

namespace bpkit {
namespace {

constexpr size_t kMaxDatasetBytes = size_t(8) << 30;  // refuse to inflate more than 8 GiB

// Reads a whole file, inflating it when gzip-compressed (zlib reads plain files unchanged).
std::vector<uint8_t> read_maybe_gz(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0)
    throw FileError("cannot read dataset file '" + path + "': " + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) throw FileError("dataset path '" + path + "' is not a regular file");
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw FileError("cannot open dataset file '" + path + "': " + std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) {
    out.insert(out.end(), buf, buf + n);
    if (out.size() > kMaxDatasetBytes) {
      gzclose(f);
      throw FileError("dataset file '" + path + "' inflates to more than 8 GiB");
    }
  }
  int err = 0;
  const char* msg = n < 0 ? gzerror(f, &err) : nullptr;
  const std::string what = msg ? msg : "";
  gzclose(f);
  if (n < 0) throw FileError("dataset file '" + path + "' is corrupt: " + what);
  return out;
}

uint32_t be32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

}  // namespace

Dataset load_idx(const std::string& images_path, const std::string& labels_path) {
  const std::vector<uint8_t> im = read_maybe_gz(images_path);
  const std::vector<uint8_t> lb = read_maybe_gz(labels_path);
  if (im.size() < 16 || be32(im.data()) != 0x803)
    throw FileError("'" + images_path +
                    "' is not an IDX image file (expected magic 0x00000803 "
                    "for unsigned bytes of rank 3)");
  if (lb.size() < 8 || be32(lb.data()) != 0x801)
    throw FileError("'" + labels_path + "' is not an IDX label file (expected magic 0x00000801)");
  const int64_t n = be32(im.data() + 4), h = be32(im.data() + 8), w = be32(im.data() + 12);
  if (int64_t(im.size()) - 16 != n * h * w)
    throw FileError("'" + images_path + "' is truncated or padded: header says " +
                    std::to_string(n) + " images of " + std::to_string(h) + "x" +
                    std::to_string(w) + " but the file holds " + std::to_string(im.size() - 16) +
                    " pixel bytes");
  const int64_t nl = be32(lb.data() + 4);
  if (nl != n || int64_t(lb.size()) - 8 != nl)
    throw FileError("'" + labels_path + "' holds " + std::to_string(lb.size() - 8) +
                    " labels (header " + std::to_string(nl) + ") for " + std::to_string(n) +
                    " images in '" + images_path + "'");
  Dataset d;
  d.x.resize({n, 1, h, w});
  for (int64_t i = 0; i < n * h * w; ++i) d.x[i] = float(im[size_t(16 + i)]) / 255.0f;
  d.y.resize(size_t(n));
  int max_label = -1;
  for (int64_t i = 0; i < n; ++i) {
    d.y[size_t(i)] = lb[size_t(8 + i)];
    max_label = std::max(max_label, int(d.y[size_t(i)]));
  }
  d.classes = max_label + 1;
  return d;
}

Dataset load_mnist_dir(const std::string& dir, const std::string& split) {
  auto pick = [&](const std::string& stem) {
    const std::string plain = dir + "/" + split + "-" + stem;
    struct stat st;
    if (stat((plain + ".gz").c_str(), &st) == 0) return plain + ".gz";
    return plain;
  };
  return load_idx(pick("images-idx3-ubyte"), pick("labels-idx1-ubyte"));
}

void gather(const Dataset& from, const int64_t* idx, int64_t n, Tensor<float>& x,
            std::vector<int32_t>& y) {
  Shape s = from.x.shape();
  s[0] = n;
  x.resize(s);
  y.resize(size_t(n));
  const int64_t row = from.x.cols();
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(x.data() + i * row, from.x.data() + idx[i] * row, sizeof(float) * size_t(row));
    y[size_t(i)] = from.y[size_t(idx[i])];
  }
}

void split_validation(const Dataset& all, double fraction, uint64_t seed, Dataset& train,
                      Dataset& validation) {
  const int64_t n = all.size();
  const int64_t nv = int64_t(double(n) * fraction);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  Rng rng(seed ^ 0x76616c6964ULL);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[size_t(i)], perm[rng.below(uint64_t(i + 1))]);
  gather(all, perm.data(), n - nv, train.x, train.y);
  gather(all, perm.data() + (n - nv), nv, validation.x, validation.y);
  train.classes = validation.classes = all.classes;
}

}  // namespace bpkit
