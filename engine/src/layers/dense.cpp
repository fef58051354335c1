// Dense (fully connected) layer. Shapes: B batch, F input features, U units. W is stored [F,U], one
// row per input feature: the batch products are as fast either way, and at batch 1 this layout
// lets the forward pass skip the rows of inputs that are zero (background pixels, inactive ReLUs).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "bpkit/error.h"
#include "bpkit/gemm.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {

Init parse_init(const std::string& name, const std::string& context) {
  if (name == "he") return Init::kHe;
  if (name == "glorot") return Init::kGlorot;
  throw ShapeError(context + ": unknown initializer '" + name + "' (expected he or glorot)");
}

const char* init_name(Init init) {
  return init == Init::kHe ? "he" : "glorot";
}

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
  w_.resize({in_, units_});
  dw_ = Tensor<T>({in_, units_});
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
  const int64_t B = x.rows(), U = units_, F = in_;
  y.resize({B, U});
  T* yp = y.data();
  if (B == 1) {
    const T* xp = x.data();
    const T* wp = w_.data();
    const T* bp = bias_ ? b_.data() : nullptr;
    // Blocks of 16 units (one cache line of floats). Waking a second thread costs about a
    // microsecond here, more than it saves below ~256k weights (the reference MLP's first layer,
    // 200k, runs faster on one thread).
    const int64_t blocks = (U + 15) / 16;
    const int max_threads = F * U >= (1 << 18) ? int(blocks) : 1;
    parallel(max_threads, [=](int t, int nt) {
      const int64_t u0 = std::min(U, blocks * t / nt * 16),
                    u1 = std::min(U, blocks * (t + 1) / nt * 16);
      if (u0 >= u1) return;
      thread_local std::vector<int64_t> nz;
      if (nz.size() < size_t(F)) nz.resize(size_t(F));
      BPKIT_ISA_CALL(dense::single<T>, xp, wp, bp, yp, F, U, u0, u1, nz.data());
    });
    return;
  }
  if (bias_)
    for (int64_t b = 0; b < B; ++b) std::copy(b_.begin(), b_.end(), yp + b * U);
  gemm_parallel<T>(false, false, B, U, F, T(1), x.data(), F, w_.data(), U, bias_ ? T(1) : T(0), yp,
                   U);
}

template <class T>
void Dense<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy, Tensor<T>& dx) {
  const int64_t B = dy.rows();
  dx.resize(x.shape());
  gemm_parallel<T>(false, true, B, in_, units_, T(1), dy.data(), units_, w_.data(), units_, T(0),
                   dx.data(), in_);
}

template <class T>
void Dense<T>::gradient(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy) {
  const int64_t B = dy.rows();
  gemm_parallel<T>(true, false, in_, units_, B, T(1), x.data(), in_, dy.data(), units_, T(1),
                   dw_.data(), units_);
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

template <class T>
std::vector<std::pair<std::string, Shape>> Dense<T>::stored_shapes(const Shape& input) const {
  if (input.size() != 1 || input[0] < 1) return {};
  std::vector<std::pair<std::string, Shape>> s{{this->name() + ".weight", {input[0], units_}}};
  if (bias_) s.push_back({this->name() + ".bias", {units_}});
  return s;
}

template class Dense<float>;
template class Dense<double>;

}  // namespace bpkit
