// L2 normalization of each sample (embedding layers): forward and backward side by side.
// Shapes: x, y, dy, dx [B, F] (any per-sample shape, read as F values).
#include <cmath>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

namespace bpkit {

template <class T>
L2Normalize<T>::L2Normalize(double eps) : eps_(eps) {
  if (!(eps > 0) || !std::isfinite(eps))
    throw ShapeError("l2_normalize: eps must be a positive number, got " + std::to_string(eps));
}

template <class T>
Attrs L2Normalize<T>::attrs() const {
  Attrs a;
  if (eps_ != 1e-12) a.set("eps", eps_);
  return a;
}

template <class T>
Shape L2Normalize<T>::build(const Shape& input) {
  for (int64_t d : input)
    if (d == kDynamic)
      throw ShapeError(this->describe() + ": normalizes fixed-size samples, got " +
                       to_string(input) + " whose size varies");
  return input;
}

// The norm in double: sums of a few hundred float squares lose digits that the gradient check's
// tolerance would notice in float.
template <class T>
static double norm_of(const T* x, int64_t f, double eps) {
  double s = 0;
  for (int64_t i = 0; i < f; ++i) s += double(x[i]) * double(x[i]);
  return std::sqrt(s + eps);
}

template <class T>
void L2Normalize<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  y.resize(x.shape());
  const int64_t B = x.rows(), F = B ? x.size() / B : 0;
  parallel_for(B, std::max<int64_t>(1, 4096 / std::max<int64_t>(F, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* xr = x.data() + r * F;
      T* yr = y.data() + r * F;
      const T inv = T(1.0 / norm_of(xr, F, eps_));
      for (int64_t i = 0; i < F; ++i) yr[i] = xr[i] * inv;
    }
  });
}

template <class T>
void L2Normalize<T>::backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                              Tensor<T>& dx) {
  dx.resize(x.shape());
  const int64_t B = x.rows(), F = B ? x.size() / B : 0;
  parallel_for(B, std::max<int64_t>(1, 4096 / std::max<int64_t>(F, 1)), [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const T* yr = y.data() + r * F;
      const T* g = dy.data() + r * F;
      T* d = dx.data() + r * F;
      double dot = 0;
      for (int64_t i = 0; i < F; ++i) dot += double(yr[i]) * double(g[i]);
      const T inv = T(1.0 / norm_of(x.data() + r * F, F, eps_));
      const T proj = T(dot);
      for (int64_t i = 0; i < F; ++i) d[i] = (g[i] - yr[i] * proj) * inv;
    }
  });
}

template class L2Normalize<float>;
template class L2Normalize<double>;

}  // namespace bpkit
