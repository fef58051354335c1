// Max and average pooling. Shapes: B batch, C channels, H×W input, k window, s stride, OH×OW
// output. Max pooling remembers the winner of each window for the backward pass (the 2×2, stride-2
// window as a one-byte position, others as an input offset); ties go to the first maximum in
// row-major window order.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {

template <class T>
Pool2d<T>::Pool2d(PoolKind kind, int64_t kernel, int64_t stride, int64_t kernel_w, int64_t stride_w)
    : kind_(kind),
      k_(kernel),
      stride_(stride < 0 ? kernel : stride),
      kw_(kernel_w < 0 ? kernel : kernel_w),
      sw_(stride_w >= 0   ? stride_w
          : kernel_w >= 0 ? kernel_w
                          : stride_) {
  if (kernel < 1 || stride_ < 1 || kw_ < 1 || sw_ < 1)
    throw ShapeError("pool2d: kernel and stride must be at least 1, got kernel=" +
                     std::to_string(kernel) + " stride=" + std::to_string(stride_) +
                     " kernel_w=" + std::to_string(kw_) + " stride_w=" + std::to_string(sw_));
}

template <class T>
Attrs Pool2d<T>::attrs() const {
  Attrs a;
  a.set("kernel", static_cast<long long>(k_)).set("stride", static_cast<long long>(stride_));
  // Square windows keep the model-file line they always had.
  if (kw_ != k_ || sw_ != stride_)
    a.set("kernel_w", static_cast<long long>(kw_)).set("stride_w", static_cast<long long>(sw_));
  return a;
}

template <class T>
Shape Pool2d<T>::build(const Shape& input) {
  if (input.size() != 3)
    throw ShapeError(this->describe() + ": expects an input [channels,height,width], got " +
                     to_string(input));
  c_ = input[0];
  h_ = input[1];
  dynamic_width_ = input[2] == kDynamic;
  w_ = dynamic_width_ ? kw_ : input[2];  // a dynamic width is set by each batch (fit_width)
  if (c_ < 1 || h_ < k_ || w_ < kw_)
    throw ShapeError(this->describe() + ": window " + std::to_string(k_) + "x" +
                     std::to_string(kw_) + " is larger than the input " + to_string(input) +
                     " (only the width may be dynamic, -1)");
  oh_ = (h_ - k_) / stride_ + 1;
  ow_ = (w_ - kw_) / sw_ + 1;
  return {c_, oh_, dynamic_width_ ? kDynamic : ow_};
}

template <class T>
void Pool2d<T>::fit_width(const Tensor<T>& x) {
  if (!dynamic_width_) return;
  if (x.dim(3) < kw_)
    throw ShapeError(this->describe() + ": input " + to_string(x.shape()) +
                     " is narrower than the window width " + std::to_string(kw_));
  w_ = x.dim(3);
  ow_ = (w_ - kw_) / sw_ + 1;
}

template <class T>
int32_t Pool2d<T>::output_length(int32_t width) const {
  return int32_t(std::max<int64_t>(1, (width - kw_) / sw_ + 1));
}

namespace {

// One channel plane. Max pooling records the winning input offset of each output in `arg` (when
// not null); the common 2×2, stride-2 window has its own kernels (pool::max_plane_2x2).
template <class T>
void pool_plane(PoolKind kind, const T* __restrict x, T* __restrict y, int32_t* __restrict arg,
                int64_t W, int64_t k, int64_t s, int64_t kw, int64_t sw, int64_t OH, int64_t OW) {
  const T inv = T(1) / T(k * kw);
  for (int64_t oy = 0; oy < OH; ++oy)
    for (int64_t ox = 0; ox < OW; ++ox) {
      const int64_t y0 = oy * s, x0 = ox * sw;
      if (kind == PoolKind::kMax) {
        T best = -std::numeric_limits<T>::infinity();
        int64_t at = y0 * W + x0;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t off = (y0 + i) * W + x0 + j;
            if (x[off] > best) {
              best = x[off];
              at = off;
            }
          }
        y[oy * OW + ox] = best;
        if (arg) arg[oy * OW + ox] = int32_t(at);
      } else {
        T sum = 0;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < kw; ++j) sum += x[(y0 + i) * W + x0 + j];
        y[oy * OW + ox] = sum * inv;
      }
    }
}

}  // namespace

template <class T>
void Pool2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  fit_width(x);
  const int64_t B = x.rows(), planes = B * c_;
  y.resize({B, c_, oh_, ow_});
  const bool train = kind_ == PoolKind::kMax && mode == Mode::kTrain;
  const bool fast = fast_max();
  if (train && fast) winner_.resize(size_t(y.size()));
  if (train && !fast) argmax_.resize(size_t(y.size()));
  const T* xp = x.data();
  T* yp = y.data();
  uint8_t* wp = train && fast ? winner_.data() : nullptr;
  int32_t* ap = train && !fast ? argmax_.data() : nullptr;
  const PoolKind kind = kind_;
  const int64_t H = h_, W = w_, k = k_, s = stride_, kw = kw_, sw = sw_, OH = oh_, OW = ow_;
  parallel_for(planes, 16, [=](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      if (fast)
        BPKIT_ISA_CALL(pool::max_plane_2x2<T>, xp + p * H * W, yp + p * OH * OW,
                       wp ? wp + p * OH * OW : nullptr, W, OH, OW);
      else
        pool_plane(kind, xp + p * H * W, yp + p * OH * OW, ap ? ap + p * OH * OW : nullptr, W, k, s,
                   kw, sw, OH, OW);
    }
  });
}

template <class T>
void Pool2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>& dx) {
  fit_width(x);
  const int64_t B = dy.rows(), planes = B * c_;
  dx.resize(x.shape());
  const T inv = T(1) / T(k_ * kw_);
  const T* dyp = dy.data();
  T* dxp = dx.data();
  const int32_t* ap = argmax_.data();
  const uint8_t* wp = winner_.data();
  const bool fast = fast_max();
  const PoolKind kind = kind_;
  const int64_t H = h_, W = w_, k = k_, s = stride_, kw = kw_, sw = sw_, OH = oh_, OW = ow_;
  parallel_for(planes, 16, [=](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* __restrict d = dxp + p * H * W;
      const T* __restrict g = dyp + p * OH * OW;
      if (fast) {
        BPKIT_ISA_CALL(pool::unpool_plane_2x2<T>, g, static_cast<const T*>(nullptr),
                       wp + p * OH * OW, d, H, W, OH, OW);
        continue;
      }
      std::fill(d, d + H * W, T(0));
      if (kind == PoolKind::kMax) {
        const int32_t* a = ap + p * OH * OW;
        for (int64_t o = 0; o < OH * OW; ++o) d[a[o]] += g[o];
      } else {
        for (int64_t oy = 0; oy < OH; ++oy)
          for (int64_t ox = 0; ox < OW; ++ox) {
            const T v = g[oy * OW + ox] * inv;
            for (int64_t i = 0; i < k; ++i)
              for (int64_t j = 0; j < kw; ++j) d[(oy * s + i) * W + ox * sw + j] += v;
          }
      }
    }
  });
}

template <class T>
void Pool2d<T>::begin_fused(int64_t B, Tensor<T>& y, Mode mode) {
  y.resize({B, c_, oh_, ow_});
  if (mode == Mode::kTrain) winner_.resize(size_t(y.size()));
}

template <class T>
void Pool2d<T>::pool_sample(const T* x, int64_t s, Tensor<T>& y, Mode mode) {
  const int64_t n = oh_ * ow_;
  for (int64_t c = 0; c < c_; ++c) {
    const int64_t p = s * c_ + c;
    BPKIT_ISA_CALL(pool::max_plane_2x2<T>, x + c * h_ * w_, y.data() + p * n,
                   mode == Mode::kTrain ? winner_.data() + p * n : nullptr, w_, oh_, ow_);
  }
}

template <class T>
void Pool2d<T>::unpool_sample(const T* dy, const T* y, int64_t s, T* dx) const {
  const int64_t n = oh_ * ow_;
  for (int64_t c = 0; c < c_; ++c)
    BPKIT_ISA_CALL(pool::unpool_plane_2x2<T>, dy + c * n, y + c * n,
                   winner_.data() + (s * c_ + c) * n, dx + c * h_ * w_, h_, w_, oh_, ow_);
}

template class Pool2d<float>;
template class Pool2d<double>;

}  // namespace bpkit
