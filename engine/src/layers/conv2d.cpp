// 2-D convolution by im2col. Shapes: B batch, C input channels, H×W input, K filters, k kernel,
// OH×OW output, P = OH·OW output positions, Q = C·k·k patch length. Per sample, the patches form
// col[Q,P] and the output is W[K,Q]·col + b, one BLAS call; samples are split across threads, each
// with its own col buffer, and weight gradients are summed per thread and then in thread order so
// the result is deterministic for a fixed thread count.
#include <algorithm>
#include <cstring>

#include "bpkit/error.h"
#include "bpkit/gemm.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {

template <class T>
void init_weights(Tensor<T>& w, Init init, int64_t fan_in, int64_t fan_out, Rng& rng);

template <class T>
Conv2d<T>::Conv2d(int64_t filters, int64_t kernel, int64_t stride, int64_t padding, Init init,
                  bool fused_relu)
    : filters_(filters),
      k_(kernel),
      stride_(stride),
      pad_(padding),
      init_(init),
      relu_(fused_relu) {
  if (filters < 1 || kernel < 1 || stride < 1 || padding < 0)
    throw ShapeError(
        "conv2d: filters, kernel and stride must be at least 1 and padding at least "
        "0, got filters=" +
        std::to_string(filters) + " kernel=" + std::to_string(kernel) +
        " stride=" + std::to_string(stride) + " padding=" + std::to_string(padding));
}

template <class T>
Attrs Conv2d<T>::attrs() const {
  Attrs a;
  a.set("filters", static_cast<long long>(filters_)).set("kernel", static_cast<long long>(k_));
  a.set("stride", static_cast<long long>(stride_)).set("padding", static_cast<long long>(pad_));
  a.set("init", init_name(init_));
  if (relu_) a.set("activation", "relu");
  return a;
}

template <class T>
const T* Conv2d<T>::conv_grad(const Tensor<T>& y, const Tensor<T>& dy, int64_t s, int t,
                              const Pool2d<T>* pool) {
  const int64_t n = filters_ * oh_ * ow_;
  if (pool) {
    Tensor<T>& m = sample_[size_t(t)];
    m.resize({n});
    const int64_t pn = y.size() / y.rows();
    pool->unpool_sample(dy.data() + s * pn, y.data() + s * pn, s, m.data());
    return m.data();
  }
  const T* g = dy.data() + s * n;
  if (!relu_) return g;
  Tensor<T>& m = sample_[size_t(t)];
  m.resize({n});
  BPKIT_ISA_CALL(conv::relu_mask<T>, g, y.data() + s * n, n, m.data());
  return m.data();
}

template <class T>
Shape Conv2d<T>::build(const Shape& input) {
  if (input.size() != 3)
    throw ShapeError(this->describe() + ": expects an input [channels,height,width], got " +
                     to_string(input));
  c_ = input[0];
  h_ = input[1];
  dynamic_width_ = input[2] == kDynamic;
  w_in_ = dynamic_width_ ? k_ : input[2];  // a dynamic width is set by each batch (fit_width)
  if (c_ < 1 || h_ < 1 || h_ + 2 * pad_ < k_ || w_in_ + 2 * pad_ < k_)
    throw ShapeError(this->describe() + ": kernel " + std::to_string(k_) + "x" +
                     std::to_string(k_) + " with padding " + std::to_string(pad_) +
                     " does not fit the input " + to_string(input) +
                     " (only the width may be dynamic, -1)");
  oh_ = (h_ + 2 * pad_ - k_) / stride_ + 1;
  ow_ = (w_in_ + 2 * pad_ - k_) / stride_ + 1;
  w_ = Tensor<T>({filters_, c_, k_, k_});
  dw_ = Tensor<T>({filters_, c_, k_, k_});
  b_ = Tensor<T>({filters_});
  db_ = Tensor<T>({filters_});
  return {filters_, oh_, dynamic_width_ ? kDynamic : ow_};
}

template <class T>
void Conv2d<T>::fit_width(const Tensor<T>& x) {
  if (!dynamic_width_) return;
  const int64_t w = x.dim(3);
  if (w + 2 * pad_ < k_)
    throw ShapeError(this->describe() + ": input " + to_string(x.shape()) +
                     " is narrower than the " + std::to_string(k_) + "x" + std::to_string(k_) +
                     " kernel with padding " + std::to_string(pad_));
  w_in_ = w;
  ow_ = (w + 2 * pad_ - k_) / stride_ + 1;
}

template <class T>
int32_t Conv2d<T>::output_length(int32_t width) const {
  // Outputs whose window starts inside the valid columns (or the left padding); at least 1.
  return int32_t(std::max<int64_t>(1, (width + 2 * pad_ - k_) / stride_ + 1));
}

template <class T>
void Conv2d<T>::init(Rng& rng) {
  init_weights(w_, init_, c_ * k_ * k_, filters_ * k_ * k_, rng);
  b_.zero();
}

template <class T>
bool Conv2d<T>::can_fuse(const Pool2d<T>& pool) const {
  return relu_ && !dynamic_width_ && pool.fusable();
}

template <class T>
T* Conv2d<T>::output_of(Tensor<T>& y, int64_t s, int t, const Pool2d<T>* pool) {
  const int64_t n = filters_ * oh_ * ow_;
  if (!pool) return y.data() + s * n;
  Tensor<T>& z = sample_[size_t(t)];
  z.resize({n});
  return z.data();
}

template <class T>
void Conv2d<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  forward_impl(x, y, mode, nullptr);
}

template <class T>
void Conv2d<T>::forward_pooled(const Tensor<T>& x, Pool2d<T>& pool, Tensor<T>& y, Mode mode) {
  forward_impl(x, y, mode, &pool);
}

template <class T>
void Conv2d<T>::forward_impl(const Tensor<T>& x, Tensor<T>& y, Mode mode, Pool2d<T>* pool) {
  fit_width(x);
  const int64_t B = x.rows();
  if (pool)
    pool->begin_fused(B, y, mode);
  else
    y.resize({B, filters_, oh_, ow_});
  if (use_winograd()) return winograd_forward(x, y, mode, pool);
  const int64_t Q = c_ * k_ * k_, P = oh_ * ow_;
  const int64_t in_size = c_ * h_ * w_in_, out_size = filters_ * P;
  prepare_threads();
  // Few samples: one at a time, each product split across threads. Otherwise samples in parallel.
  const bool per_sample_threads = B < num_threads();
  parallel(per_sample_threads ? 1 : int(B), [&](int t, int nt) {
    Tensor<T>& col = col_[size_t(t)];
    col.resize({Q, P});
    for (int64_t s = B * t / nt; s < B * (t + 1) / nt; ++s) {
      BPKIT_ISA_CALL(conv::im2col<T>, x.data() + s * in_size, c_, h_, w_in_, k_, stride_, pad_, oh_,
                     ow_, col.data());
      T* ys = output_of(y, s, t, pool);
      for (int64_t f = 0; f < filters_; ++f) std::fill(ys + f * P, ys + (f + 1) * P, b_[f]);
      if (per_sample_threads)
        gemm_parallel<T>(false, false, filters_, P, Q, T(1), w_.data(), Q, col.data(), P, T(1), ys,
                         P);
      else
        gemm<T>(false, false, filters_, P, Q, T(1), w_.data(), Q, col.data(), P, T(1), ys, P);
      if (relu_)
        for (int64_t i = 0; i < out_size; ++i) ys[i] = std::max(ys[i], T(0));
      if (pool) pool->pool_sample(ys, s, y, mode);
    }
  });
}

template <class T>
void Conv2d<T>::backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                         Tensor<T>& dx) {
  backward_impl(x, y, dy, dx, nullptr);
}

template <class T>
void Conv2d<T>::backward_impl(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                              Tensor<T>& dx, const Pool2d<T>* pool) {
  fit_width(x);
  if (use_winograd()) return winograd_backprop(x, y, dy, false, &dx, pool);
  const int64_t B = dy.rows(), Q = c_ * k_ * k_, P = oh_ * ow_;
  const int64_t in_size = c_ * h_ * w_in_;
  dx.resize(x.shape());
  prepare_threads();
  parallel(int(B), [&](int t, int nt) {
    Tensor<T>& dcol = col_[size_t(t)];
    dcol.resize({Q, P});
    for (int64_t s = B * t / nt; s < B * (t + 1) / nt; ++s) {
      gemm<T>(true, false, Q, P, filters_, T(1), w_.data(), Q, conv_grad(y, dy, s, t, pool), P,
              T(0), dcol.data(), P);
      T* dxs = dx.data() + s * in_size;
      std::fill(dxs, dxs + in_size, T(0));
      BPKIT_ISA_CALL(conv::col2im<T>, dcol.data(), c_, h_, w_in_, k_, stride_, pad_, oh_, ow_, dxs);
    }
  });
}

template <class T>
void Conv2d<T>::gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) {
  gradient_impl(x, y, dy, nullptr);
}

template <class T>
void Conv2d<T>::gradient_impl(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                              const Pool2d<T>* pool) {
  fit_width(x);
  if (use_winograd()) return winograd_backprop(x, y, dy, true, nullptr, pool);
  const int64_t B = dy.rows(), Q = c_ * k_ * k_, P = oh_ * ow_;
  const int64_t in_size = c_ * h_ * w_in_;
  prepare_threads();
  int used = 1;
  parallel(int(B), [&](int t, int nt) {
    if (t == 0) used = nt;
    Tensor<T>& col = col_[size_t(t)];
    Tensor<T>& part = dw_part_[size_t(t)];
    Tensor<T>& bpart = db_part_[size_t(t)];
    col.resize({Q, P});
    part.resize({filters_, Q});
    part.zero();
    bpart.resize({filters_});
    bpart.zero();
    for (int64_t s = B * t / nt; s < B * (t + 1) / nt; ++s) {
      const T* dys = conv_grad(y, dy, s, t, pool);
      BPKIT_ISA_CALL(conv::im2col<T>, x.data() + s * in_size, c_, h_, w_in_, k_, stride_, pad_, oh_,
                     ow_, col.data());
      if (c_ == 1)
        BPKIT_ISA_CALL(conv::weight_grad_small<T>, dys, col.data(), filters_, Q, P, part.data());
      else
        gemm<T>(false, true, filters_, Q, P, T(1), dys, P, col.data(), P, T(1), part.data(), Q);
      BPKIT_ISA_CALL(conv::add_bias_grad<T>, dys, filters_, P, bpart.data());
    }
  });
  // Partial sums are added in thread order, so the result depends only on the thread count.
  for (int t = 0; t < used; ++t) {
    const T* p = dw_part_[size_t(t)].data();
    for (int64_t i = 0; i < filters_ * Q; ++i) dw_[i] += p[i];
  }
  add_bias_parts(used);
}

template <class T>
void Conv2d<T>::add_bias_parts(int used) {
  for (int t = 0; t < used; ++t)
    for (int64_t f = 0; f < filters_; ++f) db_[f] += db_part_[size_t(t)][f];
}

template <class T>
std::vector<Param<T>> Conv2d<T>::params() {
  return {{this->name() + ".weight", &w_, &dw_, true}, {this->name() + ".bias", &b_, &db_, false}};
}

template <class T>
std::vector<std::pair<std::string, Shape>> Conv2d<T>::stored_shapes(const Shape& input) const {
  if (input.size() != 3 || input[0] < 1) return {};
  return {{this->name() + ".weight", {filters_, input[0], k_, k_}},
          {this->name() + ".bias", {filters_}}};
}

// ---- Winograd F(2×2, 3×3) path (3×3 kernels, stride 1); see winograd.h for the algebra. Each
// thread takes a contiguous block of samples and works through it in chunks of a few samples, so
// the transformed inputs V[16][C][T] and products M[16][K][T] of a chunk stay in cache; T is the
// chunk's tile count. ----

template <class T>
bool Conv2d<T>::use_winograd() const {
  // With few input channels the 16 products degenerate into outer products that the BLAS runs
  // slowly; im2col measured faster below 8 channels (BENCHMARKS.md).
  return k_ == 3 && stride_ == 1 && c_ >= 8 && algorithm_ != ConvAlgorithm::kIm2col;
}

template <class T>
winograd::Geometry Conv2d<T>::geometry() const {
  return {c_, filters_, h_, w_in_, pad_, oh_, ow_};
}

template <class T>
int64_t Conv2d<T>::winograd_chunk() const {
  // About 1 MB of V and M per chunk: measured fastest (larger chunks fall out of the cache).
  const int64_t per_sample = 16 * (c_ + filters_) * geometry().tiles() * int64_t(sizeof(T));
  return std::max<int64_t>(1, (int64_t(1) << 20) / per_sample);
}

template <class T>
void Conv2d<T>::prepare_threads() {
  const size_t nt = size_t(num_threads());
  if (col_.size() < nt) col_.resize(nt);
  if (sample_.size() < nt) sample_.resize(nt);
  if (wv_.size() < nt) wv_.resize(nt);
  if (wm_.size() < nt) wm_.resize(nt);
  if (dw_part_.size() < nt) dw_part_.resize(nt);
  if (db_part_.size() < nt) db_part_.resize(nt);
}

template <class T>
void Conv2d<T>::transform_weights() {
  // The backward pass follows a forward pass with the same weights, and inference calls repeat
  // with them: the weights of the last transform are kept and compared (a bitwise comparison of
  // w_, a few microseconds, against the transform's strided writes to 16 planes).
  if (u_src_.shape() == w_.shape() &&
      std::memcmp(u_src_.data(), w_.data(), size_t(w_.size()) * sizeof(T)) == 0)
    return;
  u_.resize({16, filters_, c_});
  BPKIT_ISA_CALL(winograd::transform_weights<T>, w_.data(), filters_, c_, u_.data());
  u_src_ = w_;
}

template <class T>
void Conv2d<T>::winograd_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode, Pool2d<T>* pool) {
  const winograd::Geometry g = geometry();
  const int64_t B = x.rows(), tp = g.tiles(), chunk = winograd_chunk();
  const int64_t K = filters_, C = c_, in_size = C * h_ * w_in_, out_size = K * oh_ * ow_;
  transform_weights();
  prepare_threads();
  const bool few = B < num_threads();  // batch 1: one sample, its products split across threads
  parallel(few ? 1 : int(B), [&](int t, int nt) {
    Tensor<T>& V = wv_[size_t(t)];
    Tensor<T>& M = wm_[size_t(t)];
    for (int64_t s0 = B * t / nt, end = B * (t + 1) / nt; s0 < end; s0 += chunk) {
      const int64_t n = std::min(chunk, end - s0), ld = n * tp;
      V.resize({16, C, ld});
      M.resize({16, K, ld});
      for (int64_t s = 0; s < n; ++s)
        BPKIT_ISA_CALL(winograd::transform_input<T>, x.data() + (s0 + s) * in_size, g, V.data(), ld,
                       s * tp);
      for (int64_t xi = 0; xi < 16; ++xi) {
        const T* u = u_.data() + xi * K * C;
        const T* v = V.data() + xi * C * ld;
        T* m = M.data() + xi * K * ld;
        if (few)
          gemm_parallel<T>(false, false, K, ld, C, T(1), u, C, v, ld, T(0), m, ld);
        else
          gemm<T>(false, false, K, ld, C, T(1), u, C, v, ld, T(0), m, ld);
      }
      for (int64_t s = 0; s < n; ++s) {
        if (pools_tiles(pool)) {
          BPKIT_ISA_CALL(winograd::transform_output_pooled<T>, M.data(), g, ld, s * tp, b_.data(),
                         y.data() + (s0 + s) * K * tp,
                         mode == Mode::kTrain ? pool->winners(s0 + s) : nullptr);
          continue;
        }
        T* ys = output_of(y, s0 + s, t, pool);
        BPKIT_ISA_CALL(winograd::transform_output<T>, M.data(), g, ld, s * tp, b_.data(), ys);
        if (relu_)
          for (int64_t i = 0; i < out_size; ++i) ys[i] = std::max(ys[i], T(0));
        if (pool) pool->pool_sample(ys, s0 + s, y, mode);
      }
    }
  });
}

template <class T>
void Conv2d<T>::gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                                      Tensor<T>& dx) {
  fit_width(x);
  if (!use_winograd()) {
    gradient(x, y, dy);
    backward(x, y, dy, dx);
    return;
  }
  winograd_backprop(x, y, dy, true, &dx, nullptr);
}

template <class T>
void Conv2d<T>::backprop_pooled(const Tensor<T>& x, const Pool2d<T>& pool, const Tensor<T>& y,
                                const Tensor<T>& dy, Tensor<T>* dx) {
  fit_width(x);
  if (use_winograd()) return winograd_backprop(x, y, dy, true, dx, &pool);
  gradient_impl(x, y, dy, &pool);
  if (dx) backward_impl(x, y, dy, *dx, &pool);
}

// Parameter gradients (when `weights`) and the input gradient (when dx is given) from one transform
// of the output gradient per chunk: dU[ξ] += dM[ξ]·V[ξ]ᵀ, then V's buffer is reused for
// dV[ξ] = U[ξ]ᵀ·dM[ξ].
template <class T>
void Conv2d<T>::winograd_backprop(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                                  bool weights, Tensor<T>* dx, const Pool2d<T>* pool) {
  const winograd::Geometry g = geometry();
  const int64_t B = dy.rows(), tp = g.tiles(), chunk = winograd_chunk();
  const int64_t K = filters_, C = c_, P = oh_ * ow_, in_size = C * h_ * w_in_;
  prepare_threads();
  if (dx) {
    dx->resize(x.shape());
    transform_weights();
  }
  int used = 1;
  parallel(int(B), [&](int t, int nt) {
    if (t == 0) used = nt;
    Tensor<T>& V = wv_[size_t(t)];
    Tensor<T>& dM = wm_[size_t(t)];
    Tensor<T>& dU = dw_part_[size_t(t)];
    Tensor<T>& bpart = db_part_[size_t(t)];
    dU.resize({16, K, C});
    dU.zero();
    bpart.resize({K});
    bpart.zero();
    for (int64_t s0 = B * t / nt, end = B * (t + 1) / nt; s0 < end; s0 += chunk) {
      const int64_t n = std::min(chunk, end - s0), ld = n * tp;
      V.resize({16, C, ld});
      dM.resize({16, K, ld});
      for (int64_t s = 0; s < n; ++s) {
        if (pools_tiles(pool)) {
          const int64_t at = (s0 + s) * K * tp;  // the sample's pooled outputs
          // (The bias gradient is added here: its sum runs over the windows, not the positions.)
          BPKIT_ISA_CALL(winograd::transform_pooled_grad<T>, dy.data() + at, y.data() + at,
                         pool->winners(s0 + s), g, dM.data(), ld, s * tp, bpart.data());
          if (weights)
            BPKIT_ISA_CALL(winograd::transform_input<T>, x.data() + (s0 + s) * in_size, g, V.data(),
                           ld, s * tp);
          continue;
        }
        const T* dys = conv_grad(y, dy, s0 + s, t, pool);
        BPKIT_ISA_CALL(winograd::transform_output_grad<T>, dys, g, dM.data(), ld, s * tp);
        if (!weights) continue;
        BPKIT_ISA_CALL(winograd::transform_input<T>, x.data() + (s0 + s) * in_size, g, V.data(), ld,
                       s * tp);
        BPKIT_ISA_CALL(conv::add_bias_grad<T>, dys, K, P, bpart.data());
      }
      if (weights)
        for (int64_t xi = 0; xi < 16; ++xi)
          gemm<T>(false, true, K, C, ld, T(1), dM.data() + xi * K * ld, ld, V.data() + xi * C * ld,
                  ld, T(1), dU.data() + xi * K * C, C);
      if (!dx) continue;
      for (int64_t xi = 0; xi < 16; ++xi)
        gemm<T>(true, false, C, ld, K, T(1), u_.data() + xi * K * C, C, dM.data() + xi * K * ld, ld,
                T(0), V.data() + xi * C * ld, ld);
      for (int64_t s = 0; s < n; ++s) {
        T* dxs = dx->data() + (s0 + s) * in_size;
        std::fill(dxs, dxs + in_size, T(0));
        BPKIT_ISA_CALL(winograd::accumulate_input_grad<T>, V.data(), g, ld, s * tp, dxs);
      }
    }
  });
  if (!weights) return;
  // Partial sums are added in thread order, so the result depends only on the thread count.
  Tensor<T>& total = dw_part_[0];
  for (int t = 1; t < used; ++t) {
    const T* p = dw_part_[size_t(t)].data();
    for (int64_t i = 0; i < total.size(); ++i) total[i] += p[i];
  }
  BPKIT_ISA_CALL(winograd::accumulate_weight_grad<T>, total.data(), K, C, dw_.data());
  add_bias_parts(used);
}

template class Conv2d<float>;
template class Conv2d<double>;

}  // namespace bpkit
