// Element-wise kernels of the activation layers and the optimizers (api.inc), compiled once per
// instruction-set level (kernels.h).
#include <algorithm>
#include <cmath>

#include "bpkit/layers.h"
#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace act {

// The element-wise kernels take restrict-qualified pointers by value: captured by reference inside
// a lambda they would be reloaded after every store (the compiler cannot rule out aliasing), which
// keeps the loops scalar. As written they vectorize.
template <class T>
void forward(Activation a, T slope, const T* __restrict x, T* __restrict y, int64_t n) {
  switch (a) {
    case Activation::kSigmoid:
      for (int64_t i = 0; i < n; ++i) y[i] = T(1) / (T(1) + std::exp(-x[i]));
      break;
    case Activation::kTanh:
      for (int64_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], T(0));
      break;
    case Activation::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
      break;
    case Activation::kSoftmax:
      break;
  }
}

template <class T>
void backward(Activation a, T slope, const T* __restrict x, const T* __restrict y,
              const T* __restrict g, T* __restrict d, int64_t n) {
  switch (a) {
    case Activation::kSigmoid:
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * y[i] * (T(1) - y[i]);
      break;
    case Activation::kTanh:
      for (int64_t i = 0; i < n; ++i) d[i] = g[i] * (T(1) - y[i] * y[i]);
      break;
    case Activation::kRelu:
      for (int64_t i = 0; i < n; ++i) d[i] = x[i] > T(0) ? g[i] : T(0);
      break;
    case Activation::kLeakyRelu:
      for (int64_t i = 0; i < n; ++i) d[i] = x[i] > T(0) ? g[i] : slope * g[i];
      break;
    case Activation::kSoftmax:
      break;
  }
}

template void forward<float>(Activation, float, const float*, float*, int64_t);
template void forward<double>(Activation, double, const double*, double*, int64_t);
template void backward<float>(Activation, float, const float*, const float*, const float*, float*,
                              int64_t);
template void backward<double>(Activation, double, const double*, const double*, const double*,
                               double*, int64_t);

}  // namespace act

namespace opt {

// The update kernels take restrict-qualified pointers as parameters: captured in a lambda the
// qualifier is lost, and with two output streams (v and w) the compiler then gives up on
// vectorizing. Memory-bound either way, but scalar code ran at half the bandwidth.
template <class T>
void sgd(T* __restrict w, const T* __restrict g, T* __restrict v, int64_t n, T lr, T mu, T wd,
         bool nesterov) {
  if (mu == T(0)) {
    for (int64_t i = 0; i < n; ++i) w[i] -= lr * (g[i] + wd * w[i]);
  } else if (nesterov) {
    for (int64_t i = 0; i < n; ++i) {
      const T gi = g[i] + wd * w[i];
      const T vi = mu * v[i] + gi;
      v[i] = vi;
      w[i] -= lr * (gi + mu * vi);
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const T vi = mu * v[i] + g[i] + wd * w[i];
      v[i] = vi;
      w[i] -= lr * vi;
    }
  }
}

template <class T>
void adam(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, int64_t n, T l2,
          T shrink, T b1, T b2, T step, T inv_c2, T eps) {
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + l2 * w[i];
    const T mi = b1 * m[i] + (T(1) - b1) * gi;
    const T vi = b2 * v[i] + (T(1) - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * shrink - step * mi / (std::sqrt(vi * inv_c2) + eps);
  }
}

template void sgd<float>(float*, const float*, float*, int64_t, float, float, float, bool);
template void sgd<double>(double*, const double*, double*, int64_t, double, double, double, bool);
template void adam<float>(float*, const float*, float*, float*, int64_t, float, float, float, float,
                          float, float, float);
template void adam<double>(double*, const double*, double*, double*, int64_t, double, double,
                           double, double, double, double, double);

}  // namespace opt
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
