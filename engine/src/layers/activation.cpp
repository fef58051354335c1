// Activations. Element-wise ones take their derivative from the saved output where that is exact
// (sigmoid: y(1−y), tanh: 1−y²) and from the input for the ReLU family. Softmax runs over each
// sample's features with the max subtracted first; its backward is y ⊙ (dy − Σ dy·y).
#include <algorithm>
#include <cmath>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {

namespace {
constexpr int64_t kGrain = 1 << 15;  // elements per thread below which one thread is faster
}

template <class T>
ActivationLayer<T>::ActivationLayer(Activation a, double slope) : a_(a), slope_(slope) {}

template <class T>
std::string ActivationLayer<T>::kind() const {
  switch (a_) {
    case Activation::kSigmoid:
      return "sigmoid";
    case Activation::kTanh:
      return "tanh";
    case Activation::kRelu:
      return "relu";
    case Activation::kLeakyRelu:
      return "leaky_relu";
    case Activation::kSoftmax:
      return "softmax";
  }
  return "?";
}

template <class T>
Attrs ActivationLayer<T>::attrs() const {
  Attrs a;
  if (a_ == Activation::kLeakyRelu) a.set("slope", slope_);
  return a;
}

template <class T>
void ActivationLayer<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  y.resize(x.shape());
  const T* xp = x.data();
  T* yp = y.data();
  if (a_ == Activation::kSoftmax) {
    const int64_t B = x.rows(), F = x.cols();
    for (int64_t b = 0; b < B; ++b) {
      const T* xr = xp + b * F;
      T* yr = yp + b * F;
      const T m = *std::max_element(xr, xr + F);
      T sum = 0;
      for (int64_t f = 0; f < F; ++f) sum += (yr[f] = std::exp(xr[f] - m));
      const T inv = T(1) / sum;
      for (int64_t f = 0; f < F; ++f) yr[f] *= inv;
    }
    return;
  }
  const Activation a = a_;
  const T slope = T(slope_);
  parallel_for(x.size(), kGrain, [=](int64_t b, int64_t e) {
    BPKIT_ISA_CALL(act::forward<T>, a, slope, xp + b, yp + b, e - b);
  });
}

template <class T>
void ActivationLayer<T>::backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                                  Tensor<T>& dx) {
  dx.resize(x.shape());
  const T* xp = x.data();
  const T* yp = y.data();
  const T* g = dy.data();
  T* d = dx.data();
  if (a_ == Activation::kSoftmax) {
    const int64_t B = x.rows(), F = x.cols();
    for (int64_t b = 0; b < B; ++b) {
      T dot = 0;
      for (int64_t f = 0; f < F; ++f) dot += g[b * F + f] * yp[b * F + f];
      for (int64_t f = 0; f < F; ++f) d[b * F + f] = yp[b * F + f] * (g[b * F + f] - dot);
    }
    return;
  }
  const Activation a = a_;
  const T slope = T(slope_);
  parallel_for(x.size(), kGrain, [=](int64_t b, int64_t e) {
    BPKIT_ISA_CALL(act::backward<T>, a, slope, xp + b, yp + b, g + b, d + b, e - b);
  });
}

template class ActivationLayer<float>;
template class ActivationLayer<double>;

}  // namespace bpkit
