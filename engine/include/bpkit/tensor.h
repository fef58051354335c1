// Tensor: a contiguous, row-major N-d array of float or double.
//
// Layout: the first dimension is the batch (B) wherever a tensor flows through a network; a layer's
// "per-sample shape" is the shape without it. Storage is 64-byte aligned so kernels can use aligned
// vector loads. resize() keeps the allocation when it is large enough, so buffers reused batch
// after batch never allocate in the training loop.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace bpkit {

using Shape = std::vector<int64_t>;

// A per-sample dimension of any size: a network built on input shape {kDynamic, 40} takes sequences
// of any number of frames (the time dimension of [B, T, F] tensors; see docs/recurrent.md).
constexpr int64_t kDynamic = -1;

struct PluginAbiLayout;  // plugin.h: the layouts the plugin ABI version stands for

// "[64,1,28,28]"
std::string to_string(const Shape& shape);
// Product of the dimensions (1 for a rank-0 shape). Throws std::invalid_argument on a negative dim.
int64_t shape_size(const Shape& shape);

// Part of the plugin ABI (plugin.h): a tensor a plugin fills is freed by the program and the other
// way round, so the way a block is laid out here (alignment, the start kept before it) may only
// change together with kPluginAbiVersion.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  static constexpr size_t kAlignment = 64;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  // Zeroed memory from calloc, aligned by hand (the block's start is kept just before the
  // aligned address): calloc takes a large block straight from the kernel, whose pages are zero
  // and cost nothing until first written, so buffers that stay unused (an inference network's
  // gradients) are never touched.
  T* allocate(size_t n) {
    if (n > (SIZE_MAX - kAlignment - sizeof(void*)) / sizeof(T)) throw std::bad_alloc();
    void* raw = std::calloc(1, n * sizeof(T) + kAlignment + sizeof(void*));
    if (!raw) throw std::bad_alloc();
    const uintptr_t at = (reinterpret_cast<uintptr_t>(raw) + sizeof(void*) + kAlignment - 1) &
                         ~uintptr_t(kAlignment - 1);
    reinterpret_cast<void**>(at)[-1] = raw;
    return reinterpret_cast<T*>(at);
  }
  void deallocate(T* p, size_t) {
    if (p) std::free(reinterpret_cast<void**>(p)[-1]);
  }
  // Growing a buffer leaves the new elements uninitialized (default-initialized) instead of
  // zero-filling them: every kernel writes its whole output, and a buffer shared by layers of
  // different sizes would otherwise be cleared again each time it grows.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
  template <class U>
  bool operator!=(const AlignedAllocator<U>&) const {
    return false;
  }
};

template <class T>
class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(Shape shape, T fill = T(0)) : shape_(std::move(shape)) {
    // The allocator's memory is zeroed: zeros need no pass over it (and touch no page).
    if (fill == T(0))
      data_.resize(static_cast<size_t>(shape_size(shape_)));
    else
      data_.assign(static_cast<size_t>(shape_size(shape_)), fill);
  }

  const Shape& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t dim(int i) const { return shape_[static_cast<size_t>(i)]; }
  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }
  // Batch-major 2-D view: rows() = first dimension, cols() = product of the others.
  int64_t rows() const { return shape_.empty() ? 1 : shape_[0]; }
  int64_t cols() const { return rows() == 0 ? 0 : size() / rows(); }

  T* data() { return data_.data(); }
  const T* data() const { return data_.data(); }
  T& operator[](int64_t i) { return data_[static_cast<size_t>(i)]; }
  const T& operator[](int64_t i) const { return data_[static_cast<size_t>(i)]; }
  T* begin() { return data(); }
  T* end() { return data() + size(); }
  const T* begin() const { return data(); }
  const T* end() const { return data() + size(); }

  // Changes the shape; contents are unspecified afterwards (kept where the size is unchanged).
  // Never shrinks the allocation.
  void resize(const Shape& shape) {
    if (shape_ != shape) shape_ = shape;
    data_.resize(static_cast<size_t>(shape_size(shape_)));
  }
  // Same data, new shape of the same size. Throws std::invalid_argument otherwise.
  void reshape(const Shape& shape);
  void fill(T v) {
    for (T& x : data_) x = v;
  }
  void zero() { fill(T(0)); }

 private:
  friend struct PluginAbiLayout;  // checks these members against the plugin ABI's record
  Shape shape_;
  std::vector<T, AlignedAllocator<T>> data_;
};

}  // namespace bpkit
