// Max and average pooling. Shapes: B batch, C channels, H×W input, k window, s stride, OH×OW
// output. Max pooling remembers the winning input offset of each output for the backward pass; ties
// go to the first maximum in row-major window order.
#include <algorithm>
#include <limits>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

namespace bpkit {

template <class T>
Pool2d<T>::Pool2d(PoolKind kind, int64_t kernel, int64_t stride)
    : kind_(kind), k_(kernel), stride_(stride < 0 ? kernel : stride) {
  if (kernel < 1 || stride_ < 1)
    throw ShapeError("pool2d: kernel and stride must be at least 1, got kernel=" +
                     std::to_string(kernel) + " stride=" + std::to_string(stride_));
}

template <class T>
Attrs Pool2d<T>::attrs() const {
  Attrs a;
  a.set("kernel", static_cast<long long>(k_)).set("stride", static_cast<long long>(stride_));
  return a;
}

template <class T>
Shape Pool2d<T>::build(const Shape& input) {
  if (input.size() != 3)
    throw ShapeError(this->describe() + ": expects an input [channels,height,width], got " +
                     to_string(input));
  c_ = input[0];
  h_ = input[1];
  w_ = input[2];
  if (h_ < k_ || w_ < k_)
    throw ShapeError(this->describe() + ": window " + std::to_string(k_) + "x" +
                     std::to_string(k_) + " is larger than the input " + to_string(input));
  oh_ = (h_ - k_) / stride_ + 1;
  ow_ = (w_ - k_) / stride_ + 1;
  return {c_, oh_, ow_};
}

template <class T>
void Pool2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  const int64_t B = x.rows(), planes = B * c_;
  y.resize({B, c_, oh_, ow_});
  const bool keep = kind_ == PoolKind::kMax && mode == Mode::kTrain;
  if (keep) argmax_.resize(size_t(y.size()));
  const T inv = T(1) / T(k_ * k_);
  parallel_for(planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const T* xp = x.data() + p * h_ * w_;
      T* yp = y.data() + p * oh_ * ow_;
      int32_t* ap = keep ? argmax_.data() + p * oh_ * ow_ : nullptr;
      for (int64_t oy = 0; oy < oh_; ++oy)
        for (int64_t ox = 0; ox < ow_; ++ox) {
          const int64_t y0 = oy * stride_, x0 = ox * stride_;
          if (kind_ == PoolKind::kMax) {
            T best = -std::numeric_limits<T>::infinity();
            int64_t arg = y0 * w_ + x0;
            for (int64_t i = 0; i < k_; ++i)
              for (int64_t j = 0; j < k_; ++j) {
                const int64_t off = (y0 + i) * w_ + x0 + j;
                if (xp[off] > best) {
                  best = xp[off];
                  arg = off;
                }
              }
            yp[oy * ow_ + ox] = best;
            if (ap) ap[oy * ow_ + ox] = int32_t(arg);
          } else {
            T sum = 0;
            for (int64_t i = 0; i < k_; ++i)
              for (int64_t j = 0; j < k_; ++j) sum += xp[(y0 + i) * w_ + x0 + j];
            yp[oy * ow_ + ox] = sum * inv;
          }
        }
    }
  });
}

template <class T>
void Pool2d<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>& dx) {
  const int64_t B = dy.rows(), planes = B * c_;
  dx.resize(x.shape());
  const T inv = T(1) / T(k_ * k_);
  parallel_for(planes, 16, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      T* dxp = dx.data() + p * h_ * w_;
      const T* dyp = dy.data() + p * oh_ * ow_;
      std::fill(dxp, dxp + h_ * w_, T(0));
      if (kind_ == PoolKind::kMax) {
        const int32_t* ap = argmax_.data() + p * oh_ * ow_;
        for (int64_t o = 0; o < oh_ * ow_; ++o) dxp[ap[o]] += dyp[o];
      } else {
        for (int64_t oy = 0; oy < oh_; ++oy)
          for (int64_t ox = 0; ox < ow_; ++ox) {
            const T g = dyp[oy * ow_ + ox] * inv;
            for (int64_t i = 0; i < k_; ++i)
              for (int64_t j = 0; j < k_; ++j)
                dxp[(oy * stride_ + i) * w_ + ox * stride_ + j] += g;
          }
      }
    }
  });
}

template class Pool2d<float>;
template class Pool2d<double>;

}  // namespace bpkit
