// Fixed-point recurrent backpropagation (Almeida–Pineda). Shapes: B batch, F input features, N
// units, O output units. The forward relaxation and the adjoint relaxation share one driver
// (relax), which advances the samples still iterating as one block of rows, so each iteration is
// one GEMM over the active rows; a sample that reaches the tolerance is frozen and swapped out of
// the block. The math is in fixed_point.h.
#include "bpkit/fixed_point.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "bpkit/gemm.h"
#include "bpkit/threading.h"

namespace bpkit {

const char* fixed_point_activation_name(FixedPointActivation a) {
  return a == FixedPointActivation::kSigmoid ? "sigmoid" : "tanh";
}

FixedPointActivation parse_fixed_point_activation(const std::string& name,
                                                  const std::string& context) {
  if (name == "sigmoid") return FixedPointActivation::kSigmoid;
  if (name == "tanh") return FixedPointActivation::kTanh;
  throw ShapeError(context + ": attribute 'activation' must be sigmoid or tanh, got '" + name +
                   "'");
}

namespace {

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

void check_options(const FixedPointOptions& o, const std::string& who) {
  if (!(o.tol > 0) || !std::isfinite(o.tol))
    throw ShapeError(who + ": tol must be a positive number, got " + fmt(o.tol));
  if (!(o.adjoint_tol > 0) || !std::isfinite(o.adjoint_tol))
    throw ShapeError(who + ": adjoint_tol must be a positive number, got " + fmt(o.adjoint_tol));
  if (o.max_iter < 1)
    throw ShapeError(who + ": max_iter must be at least 1, got " + std::to_string(o.max_iter));
  if (!(o.damping > 0 && o.damping <= 1))
    throw ShapeError(who + ": damping must be in (0, 1], got " + fmt(o.damping));
}

template <class T>
void swap_rows(Tensor<T>& t, int64_t r, int64_t q, int64_t n) {
  std::swap_ranges(t.data() + r * n, t.data() + (r + 1) * n, t.data() + q * n);
}

}  // namespace

template <class T>
FixedPoint<T>::FixedPoint(int64_t units, int64_t outputs, FixedPointActivation activation,
                          FixedPointOptions options, bool symmetric, bool zero_diagonal,
                          double init_radius, int64_t in_features)
    : n_(units),
      out_(outputs == 0 ? units : outputs),
      in_(in_features),
      act_(activation),
      opt_(options),
      symmetric_(symmetric),
      zero_diag_(zero_diagonal),
      init_radius_(init_radius) {
  if (units < 1)
    throw ShapeError("fixed_point: units must be at least 1, got " + std::to_string(units));
  if (outputs < 0 || outputs > units)
    throw ShapeError("fixed_point: outputs must be in [0, units=" + std::to_string(units) +
                     "] (0 = all units), got " + std::to_string(outputs));
  if (!(init_radius >= 0) || !std::isfinite(init_radius))
    throw ShapeError("fixed_point: init_radius must be a non-negative number, got " +
                     fmt(init_radius));
  check_options(options, "fixed_point");
}

template <class T>
void FixedPoint<T>::set_options(const FixedPointOptions& options) {
  check_options(options, this->describe());
  opt_ = options;
}

template <class T>
Attrs FixedPoint<T>::attrs() const {
  Attrs a;
  a.set("units", static_cast<long long>(n_)).set("outputs", static_cast<long long>(out_));
  a.set("in", static_cast<long long>(in_)).set("activation", fixed_point_activation_name(act_));
  a.set("symmetric", symmetric_ ? 1 : 0).set("zero_diagonal", zero_diag_ ? 1 : 0);
  a.set("tol", opt_.tol).set("adjoint_tol", opt_.adjoint_tol);
  a.set("max_iter", static_cast<long long>(opt_.max_iter));
  a.set("damping", opt_.damping).set("init_radius", init_radius_);
  return a;
}

template <class T>
Shape FixedPoint<T>::build(const Shape& input) {
  if (input.size() != 1)
    throw ShapeError(this->describe() + ": expects a flat input [features], got " +
                     to_string(input) + " (add a flatten layer before it)");
  if (in_ >= 0 && input[0] != in_)
    throw ShapeError(this->describe() + ": declared input " + to_string({in_}) +
                     " but the previous layer gives " + to_string(input));
  in_ = input[0];
  w_ = Tensor<T>({n_, n_});
  dw_ = Tensor<T>({n_, n_});
  u_ = Tensor<T>({n_, in_});
  du_ = Tensor<T>({n_, in_});
  b_ = Tensor<T>({n_});
  db_ = Tensor<T>({n_});
  return {out_};
}

// W: entries of standard deviation σ give a spectral radius of about σ·√N for a random matrix
// (circular law) and 2σ·√N for a symmetric one (semicircle law). U: Glorot uniform.
template <class T>
void FixedPoint<T>::init(Rng& rng) {
  const double sd = init_radius_ / std::sqrt(double(n_)) / (symmetric_ ? 2.0 : 1.0);
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j < n_; ++j) {
      if (symmetric_ && j < i) {
        w_[i * n_ + j] = w_[j * n_ + i];
        continue;
      }
      const T v = T(rng.normal() * sd);
      w_[i * n_ + j] = zero_diag_ && i == j ? T(0) : v;
    }
  const double a = std::sqrt(6.0 / double(in_ + n_));
  for (T& v : u_) v = T((2 * rng.uniform() - 1) * a);
  b_.zero();
}

template <class T>
const T* FixedPoint<T>::effective_w() {
  if (!symmetric_ && !zero_diag_) return w_.data();
  w_eff_.resize({n_, n_});
  const T* p = w_.data();
  T* e = w_eff_.data();
  for (int64_t i = 0; i < n_; ++i)
    for (int64_t j = 0; j < n_; ++j)
      e[i * n_ + j] = symmetric_ ? T(0.5) * (p[i * n_ + j] + p[j * n_ + i]) : p[i * n_ + j];
  if (zero_diag_)
    for (int64_t i = 0; i < n_; ++i) e[i * n_ + i] = T(0);
  return e;
}

template <class T>
void FixedPoint<T>::fail(const char* phase, double tol, int64_t sample, int64_t batch,
                         double residual, double first_residual, int64_t iterations,
                         int64_t unconverged) const {
  const bool adjoint = phase[0] == 'a';
  std::string msg = this->describe() + ": " + phase + " did not converge: sample " +
                    std::to_string(sample) + " of a batch of " + std::to_string(batch) + " has " +
                    (adjoint ? "relative residual " : "residual ") + fmt(residual) + " after " +
                    std::to_string(iterations) + " iterations (" + fmt(first_residual) +
                    " at the start; tolerance " + fmt(tol) + ", max_iter " +
                    std::to_string(opt_.max_iter) + ", damping " + fmt(opt_.damping) + "; " +
                    std::to_string(unconverged) + " samples unconverged)";
  if (!std::isfinite(residual))
    msg += "; the state is no longer finite (non-finite input or weights?)";
  else if (residual >= first_residual && adjoint)
    msg +=
        "; the residual grows: the forward equilibrium is unstable (spectral radius of D·W above "
        "1), so the loss has no gradient there; reduce the recurrent weights";
  else if (residual >= first_residual)
    msg +=
        "; the iteration does not settle (oscillation or a cycle): lower the damping or reduce "
        "the recurrent weights";
  else
    msg +=
        "; the residual falls too slowly (an eigenvalue of D·W near 1) or has stalled at "
        "rounding level: raise max_iter or the tolerance";
  throw ConvergenceError(msg);
}

// The shared driver. The samples are split into one contiguous block of work rows per thread, and
// each thread relaxes its block on its own (single-threaded GEMMs on the block's active rows) from
// the first iteration to the last: one parallel region per relaxation rather than several per
// iteration, which matters because an iteration is only tens of microseconds of work. Inside a
// block, rows [r0, active) are the samples still iterating; a converged row is swapped to the end.
// compute(r0, r1) fills res_[r] for the work rows r0 <= r < r1; freeze(r) stores work row r's
// result for sample order_[r]; swap(r, q) exchanges two work rows; update(r0, r1) takes one damped
// step on those rows. Fills iters_ and final_res_; throws ConvergenceError through fail().
template <class T>
void FixedPoint<T>::prepare_rows(int64_t B) {
  order_.resize(size_t(B));
  res_.assign(size_t(B), 0.0);
  iters_.assign(size_t(B), 0);
  final_res_.assign(size_t(B), 0.0);
  first_res_.assign(size_t(B), 0.0);
}

template <class T>
template <class Compute, class Freeze, class Swap, class Update>
RelaxationStats FixedPoint<T>::relax(const char* phase, int64_t B, double tol, Compute&& compute,
                                     Freeze&& freeze, Swap&& swap, Update&& update) {
  std::iota(order_.begin(), order_.end(), int64_t(0));
  RelaxationStats st;
  if (B == 0) return st;
  // A block below about 2^17 multiply-adds per iteration is not worth a thread of its own.
  const int64_t rows_per_thread = std::max<int64_t>(4, (int64_t(1) << 17) / (n_ * n_));
  const int max_threads = int(std::max<int64_t>(1, std::min<int64_t>(B / rows_per_thread, 1024)));
  struct Failure {
    int64_t sample = -1, iterations = 0, unconverged = 0;
    double residual = 0, first = 0;
  };
  std::vector<Failure> failures(size_t(std::min(max_threads, num_threads())));
  const int64_t max_iter = opt_.max_iter;
  parallel(max_threads, [&](int t, int nt) {
    const int64_t r0 = B * t / nt, r1 = B * (t + 1) / nt;
    int64_t* order = order_.data();
    double* res = res_.data();
    Failure& f = failures[size_t(t)];
    int64_t active = r1;
    for (int64_t it = 0; active > r0; ++it) {
      compute(r0, active);
      if (it == 0)
        for (int64_t r = r0; r < active; ++r) first_res_[size_t(order[r])] = res[r];
      for (int64_t r = r0; r < active; ++r)
        if (!std::isfinite(res[r])) {
          f = {order[r], it, active - r0, res[r], first_res_[size_t(order[r])]};
          return;
        }
      for (int64_t r = r0; r < active;) {
        if (res[r] < tol) {
          freeze(r);
          iters_[size_t(order[r])] = it;
          final_res_[size_t(order[r])] = res[r];
          if (r != --active) {
            swap(r, active);
            std::swap(order[r], order[active]);
            std::swap(res[r], res[active]);
          }
        } else {
          ++r;
        }
      }
      if (active > r0 && it == max_iter) {
        int64_t worst = r0;
        for (int64_t r = r0 + 1; r < active; ++r)
          if (res[r] > res[worst]) worst = r;
        f = {order[worst], it, active - r0, res[worst], first_res_[size_t(order[worst])]};
        return;
      }
      if (active > r0) update(r0, active);
    }
  });
  // Report the worst failure of all blocks (a non-finite state before a slow one), counting the
  // unconverged samples of every block.
  const Failure* worst = nullptr;
  int64_t unconverged = 0;
  for (const Failure& f : failures) {
    if (f.sample < 0) continue;
    unconverged += f.unconverged;
    if (!worst || !std::isfinite(f.residual) ||
        (std::isfinite(worst->residual) && f.residual > worst->residual))
      worst = &f;
  }
  if (worst)
    fail(phase, tol, worst->sample, B, worst->residual, worst->first, worst->iterations,
         unconverged);
  for (int64_t b = 0; b < B; ++b) {
    st.max_iterations = std::max(st.max_iterations, iters_[size_t(b)]);
    st.mean_iterations += double(iters_[size_t(b)]) / double(B);
    st.max_residual = std::max(st.max_residual, final_res_[size_t(b)]);
  }
  return st;
}

// ---- Forward relaxation ------------------------------------------------------------------------

template <class T>
void FixedPoint<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  const int64_t B = x.rows(), N = n_, F = in_;
  if (x.rank() != 2 || x.dim(1) != F)
    throw ShapeError(this->describe() + ": expects " + std::to_string(F) +
                     " input features per sample, got " + to_string(x.shape()));
  batch_ = -1;  // a failed relaxation leaves nothing for backward
  const T* W = effective_w();
  s_.resize({B, N});
  d_.resize({B, N});
  c_.resize({B, N});
  sw_.resize({B, N});
  f_.resize({B, N});
  // c = U·x + b for every sample, once; s starts at 0.
  for (int64_t b = 0; b < B; ++b) std::copy(b_.begin(), b_.end(), c_.data() + b * N);
  if (B > 0)
    gemm_parallel<T>(false, true, B, N, F, T(1), x.data(), F, u_.data(), F, T(1), c_.data(), N);
  sw_.zero();

  const bool sigmoid = act_ == FixedPointActivation::kSigmoid;
  const T lambda = T(opt_.damping), keep = T(1) - lambda;
  T* sw = sw_.data();
  T* fw = f_.data();
  const T* cw = c_.data();
  prepare_rows(B);
  double* res = res_.data();
  auto compute = [=](int64_t r0, int64_t r1) {
    // f = f(c + s·Wᵀ) for the active rows, and each row's residual max|s − f|.
    std::copy(cw + r0 * N, cw + r1 * N, fw + r0 * N);
    gemm<T>(false, true, r1 - r0, N, N, T(1), sw + r0 * N, N, W, N, T(1), fw + r0 * N, N);
    for (int64_t r = r0; r < r1; ++r) {
      T* __restrict f = fw + r * N;
      const T* __restrict s = sw + r * N;
      if (sigmoid)
        for (int64_t i = 0; i < N; ++i) f[i] = T(1) / (T(1) + std::exp(-f[i]));
      else
        for (int64_t i = 0; i < N; ++i) f[i] = std::tanh(f[i]);
      T worst = 0;
      for (int64_t i = 0; i < N; ++i) worst = std::max(worst, std::abs(s[i] - f[i]));
      // NaN compares false with everything: pass it on explicitly.
      for (int64_t i = 0; i < N; ++i)
        if (std::isnan(f[i])) worst = f[i];
      res[r] = double(worst);
    }
  };
  auto freeze = [&](int64_t r) {
    const int64_t b = order_[size_t(r)];  // each thread touches only its own samples
    std::copy(sw + r * N, sw + (r + 1) * N, s_.data() + b * N);
    T* d = d_.data() + b * N;
    const T* f = fw + r * N;
    for (int64_t i = 0; i < N; ++i) d[i] = sigmoid ? f[i] * (T(1) - f[i]) : T(1) - f[i] * f[i];
  };
  auto swap = [&](int64_t r, int64_t q) {
    swap_rows(sw_, r, q, N);
    swap_rows(f_, r, q, N);
    swap_rows(c_, r, q, N);
  };
  auto update = [=](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * N; i < r1 * N; ++i) sw[i] = keep * sw[i] + lambda * fw[i];
  };
  fwd_stats_ = relax("forward relaxation", B, opt_.tol, compute, freeze, swap, update);

  y.resize({B, out_});
  for (int64_t b = 0; b < B; ++b)
    std::copy(s_.data() + b * N, s_.data() + b * N + out_, y.data() + b * out_);
  if (mode == Mode::kTrain) batch_ = B;
}

// ---- Adjoint relaxation and gradients ----------------------------------------------------------

template <class T>
void FixedPoint<T>::adjoint(const Tensor<T>& dy) {
  const int64_t N = n_, O = out_;
  if (batch_ < 0)
    throw ShapeError(this->describe() +
                     ": backward needs a completed forward pass in training mode just before it");
  if (dy.rank() != 2 || dy.rows() != batch_ || dy.cols() != O)
    throw ShapeError(this->describe() + ": output gradient " + to_string(dy.shape()) +
                     " does not match the latest forward output " + to_string({batch_, O}));
  const int64_t B = batch_;
  const T* W = effective_w();
  c_.resize({B, N});        // e
  sw_.resize({B, N});       // z
  dw_work_.resize({B, N});  // D
  p_.resize({B, N});        // D·z
  f_.resize({B, N});        // Wᵀ·D·z + e
  delta_.resize({B, N});
  std::vector<double>& scale = scale_;
  scale.resize(size_t(B));
  for (int64_t b = 0; b < B; ++b) {
    T* e = c_.data() + b * N;
    std::copy(dy.data() + b * O, dy.data() + (b + 1) * O, e);
    std::fill(e + O, e + N, T(0));
    double m = 0;
    for (int64_t i = 0; i < O; ++i) m = std::max(m, double(std::abs(e[i])));
    scale[size_t(b)] = m;
  }
  std::copy(c_.begin(), c_.end(), sw_.data());  // z starts at e
  std::copy(d_.begin(), d_.end(), dw_work_.data());

  const T lambda = T(opt_.damping), keep = T(1) - lambda;
  T* zw = sw_.data();
  T* tw = f_.data();
  T* pw = p_.data();
  const T* ew = c_.data();
  const T* dd = dw_work_.data();
  prepare_rows(B);
  double* res = res_.data();
  const int64_t* order = order_.data();
  const double* sc = scale.data();
  auto compute = [=](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * N; i < r1 * N; ++i) pw[i] = dd[i] * zw[i];
    // Row form of Wᵀ·(D·z): (D·z)ᵀ·W.
    std::copy(ew + r0 * N, ew + r1 * N, tw + r0 * N);
    gemm<T>(false, false, r1 - r0, N, N, T(1), pw + r0 * N, N, W, N, T(1), tw + r0 * N, N);
    for (int64_t r = r0; r < r1; ++r) {
      const T* __restrict z = zw + r * N;
      const T* __restrict t = tw + r * N;
      T worst = 0;
      for (int64_t i = 0; i < N; ++i) worst = std::max(worst, std::abs(z[i] - t[i]));
      for (int64_t i = 0; i < N; ++i)
        if (std::isnan(t[i])) worst = t[i];
      const double s = sc[order[r]];
      res[r] = s > 0 ? double(worst) / s : double(worst);  // e = 0: z = 0 at once
    }
  };
  auto freeze = [&](int64_t r) {
    std::copy(pw + r * N, pw + (r + 1) * N, delta_.data() + order_[size_t(r)] * N);
  };
  auto swap = [&](int64_t r, int64_t q) {
    swap_rows(sw_, r, q, N);
    swap_rows(f_, r, q, N);
    swap_rows(c_, r, q, N);
    swap_rows(dw_work_, r, q, N);
    swap_rows(p_, r, q, N);
  };
  auto update = [=](int64_t r0, int64_t r1) {
    for (int64_t i = r0 * N; i < r1 * N; ++i) zw[i] = keep * zw[i] + lambda * tw[i];
  };
  adj_stats_ = relax("adjoint relaxation", B, opt_.adjoint_tol, compute, freeze, swap, update);
}

// dL/dW = Σ_b δ_b·s*_bᵀ (projected onto the constraint), dL/dU = Σ_b δ_b·x_bᵀ, dL/db = Σ_b δ_b.
template <class T>
void FixedPoint<T>::accumulate_gradients(const Tensor<T>& x) {
  const int64_t B = batch_, N = n_, F = in_;
  if (B == 0) return;
  const bool constrained = symmetric_ || zero_diag_;
  if (constrained) g_.resize({N, N});
  gemm_parallel<T>(true, false, N, N, B, T(1), delta_.data(), N, s_.data(), N,
                   constrained ? T(0) : T(1), constrained ? g_.data() : dw_.data(), N);
  if (constrained) {
    const T* g = g_.data();
    T* dw = dw_.data();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < N; ++j)
        if (!(zero_diag_ && i == j))
          dw[i * N + j] += symmetric_ ? T(0.5) * (g[i * N + j] + g[j * N + i]) : g[i * N + j];
  }
  gemm_parallel<T>(true, false, N, F, B, T(1), delta_.data(), N, x.data(), F, T(1), du_.data(), F);
  const T* dl = delta_.data();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i) db_[i] += dl[b * N + i];
}

// dL/dx = Uᵀ·δ, in row form δ·U.
template <class T>
void FixedPoint<T>::input_gradient(const Tensor<T>& x, Tensor<T>& dx) {
  dx.resize(x.shape());
  if (batch_ == 0) return;
  gemm_parallel<T>(false, false, batch_, in_, n_, T(1), delta_.data(), n_, u_.data(), in_, T(0),
                   dx.data(), in_);
}

template <class T>
void FixedPoint<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                             Tensor<T>& dx) {
  adjoint(dy);
  input_gradient(x, dx);
}

template <class T>
void FixedPoint<T>::gradient(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy) {
  adjoint(dy);
  accumulate_gradients(x);
}

template <class T>
void FixedPoint<T>::gradient_and_backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                          Tensor<T>& dx) {
  adjoint(dy);
  accumulate_gradients(x);
  input_gradient(x, dx);
}

template <class T>
std::vector<Param<T>> FixedPoint<T>::params() {
  return {{this->name() + ".recurrent_weight", &w_, &dw_, true},
          {this->name() + ".input_weight", &u_, &du_, true},
          {this->name() + ".bias", &b_, &db_, false}};
}

template <class T>
std::vector<std::pair<std::string, Shape>> FixedPoint<T>::stored_shapes(const Shape& input) const {
  if (input.size() != 1 || input[0] < 1) return {};
  return {{this->name() + ".recurrent_weight", {n_, n_}},
          {this->name() + ".input_weight", {n_, input[0]}},
          {this->name() + ".bias", {n_}}};
}

template class FixedPoint<float>;
template class FixedPoint<double>;

}  // namespace bpkit
