// Dense (fully connected) layer. Shapes: B batch, F input features, U units; W is [U,F] so one row
// per unit, as in torch.nn.Linear and in the model file.
#include <cmath>

#include "bpkit/error.h"
#include "bpkit/gemm.h"
#include "bpkit/layers.h"

namespace bpkit {

Init parse_init(const std::string& name, const std::string& context) {
  if (name == "he") return Init::kHe;
  if (name == "glorot") return Init::kGlorot;
  throw ShapeError(context + ": unknown initializer '" + name + "' (expected he or glorot)");
}

const char* init_name(Init init) { return init == Init::kHe ? "he" : "glorot"; }

// He: N(0, 2/fan_in), for ReLU family. Glorot: U(±√(6/(fan_in+fan_out))), for sigmoid/tanh.
template <class T>
void init_weights(Tensor<T>& w, Init init, int64_t fan_in, int64_t fan_out, Rng& rng) {
  if (init == Init::kHe) {
    const double sd = std::sqrt(2.0 / double(fan_in));
    for (T& v : w) v = T(rng.normal() * sd);
  } else {
    const double a = std::sqrt(6.0 / double(fan_in + fan_out));
    for (T& v : w) v = T((2 * rng.uniform() - 1) * a);
  }
}
template void init_weights(Tensor<float>&, Init, int64_t, int64_t, Rng&);
template void init_weights(Tensor<double>&, Init, int64_t, int64_t, Rng&);

template <class T>
Dense<T>::Dense(int64_t units, int64_t in_features, Init init, bool bias)
    : units_(units), in_(in_features), init_(init), bias_(bias) {
  if (units < 1) throw ShapeError("dense: units must be at least 1, got " + std::to_string(units));
}

template <class T>
Attrs Dense<T>::attrs() const {
  Attrs a;
  a.set("units", static_cast<long long>(units_)).set("in", static_cast<long long>(in_));
  a.set("init", init_name(init_)).set("bias", bias_ ? 1 : 0);
  return a;
}

template <class T>
Shape Dense<T>::build(const Shape& input) {
  if (input.size() != 1)
    throw ShapeError(this->describe() + ": expects a flat input [features], got " +
                     to_string(input) + " (add a flatten layer before it)");
  if (in_ >= 0 && input[0] != in_)
    throw ShapeError(this->describe() + ": declared input " + to_string({in_}) +
                     " but the previous layer gives " + to_string(input));
  in_ = input[0];
  w_.resize({units_, in_});
  dw_ = Tensor<T>({units_, in_});
  if (bias_) {
    b_ = Tensor<T>({units_});
    db_ = Tensor<T>({units_});
  }
  return {units_};
}

template <class T>
void Dense<T>::init(Rng& rng) {
  init_weights(w_, init_, in_, units_, rng);
  b_.zero();
}

template <class T>
void Dense<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  const int64_t B = x.rows();
  y.resize({B, units_});
  T* yp = y.data();
  if (bias_)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t u = 0; u < units_; ++u) yp[b * units_ + u] = b_[u];
  gemm_parallel<T>(false, true, B, units_, in_, T(1), x.data(), in_, w_.data(), in_,
                   bias_ ? T(1) : T(0), yp, units_);
}

template <class T>
void Dense<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>& dx) {
  const int64_t B = dy.rows();
  dx.resize(x.shape());
  gemm_parallel<T>(false, false, B, in_, units_, T(1), dy.data(), units_, w_.data(), in_, T(0),
                   dx.data(), in_);
}

template <class T>
void Dense<T>::gradient(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy) {
  const int64_t B = dy.rows();
  gemm_parallel<T>(true, false, units_, in_, B, T(1), dy.data(), units_, x.data(), in_, T(1),
                   dw_.data(), in_);
  if (bias_) {
    const T* g = dy.data();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t u = 0; u < units_; ++u) db_[u] += g[b * units_ + u];
  }
}

template <class T>
std::vector<Param<T>> Dense<T>::params() {
  std::vector<Param<T>> p{{this->name() + ".weight", &w_, &dw_, true}};
  if (bias_) p.push_back({this->name() + ".bias", &b_, &db_, false});
  return p;
}

template class Dense<float>;
template class Dense<double>;

}  // namespace bpkit
