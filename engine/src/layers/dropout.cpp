// Inverted dropout. The mask is drawn sequentially from the layer's own random stream, so a fixed
// seed gives the same masks whatever the thread count.
#include "bpkit/error.h"
#include "bpkit/layers.h"

namespace bpkit {

template <class T>
Dropout<T>::Dropout(double p) : p_(p) {
  if (!(p >= 0 && p < 1))
    throw ShapeError("dropout: probability must be in [0, 1), got " + std::to_string(p));
}

template <class T>
Attrs Dropout<T>::attrs() const {
  Attrs a;
  a.set("p", p_);
  return a;
}

template <class T>
void Dropout<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  y.resize(x.shape());
  const int64_t n = x.size();
  if (mode == Mode::kInfer || p_ == 0) {
    std::copy(x.begin(), x.end(), y.begin());
    if (mode == Mode::kTrain) mask_.assign(size_t(n), T(1));
    return;
  }
  if (!hold_ || int64_t(mask_.size()) != n) {
    mask_.resize(size_t(n));
    const T keep = T(1 / (1 - p_));
    // 24 random bits per draw are plenty for a keep/drop decision and halve the generator calls.
    const uint64_t threshold = uint64_t(p_ * double(1 << 24));
    for (int64_t i = 0; i < n; i += 2) {
      const uint64_t r = rng_.next_u64();
      mask_[size_t(i)] = ((r & 0xffffff) >= threshold) ? keep : T(0);
      if (i + 1 < n) mask_[size_t(i + 1)] = (((r >> 32) & 0xffffff) >= threshold) ? keep : T(0);
    }
  }
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mask_[size_t(i)];
}

template <class T>
void Dropout<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                          Tensor<T>& dx) {
  dx.resize(x.shape());
  for (int64_t i = 0; i < dy.size(); ++i) dx[i] = dy[i] * mask_[size_t(i)];
}

template class Dropout<float>;
template class Dropout<double>;

}  // namespace bpkit
