// Max and average pooling. Shapes: B batch, C channels, H×W input, k window, s stride, OH×OW
// output. Max pooling remembers the winner of each window for the backward pass (the 2×2, stride-2
// window as a one-byte position, others as an input offset); ties go to the first maximum in
// row-major window order.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

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
// not null); the common 2×2, stride-2 window has its own loops (pool_plane_2x2).
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

// 2×2, stride-2 max pooling, N outputs of a row at a time (GCC vector extensions). Rows are short
// here (14 and 7 outputs in the Fashion-MNIST CNN), too short for the compiler's own vectorized
// loops, which start at 16 lanes; a row of OW >= N outputs is covered by vectors at 0, N, ... and
// one ending at OW (overlapping the one before it: it writes the same values again).
template <class T, int N>
struct Lanes {
  typedef T V __attribute__((vector_size(N * sizeof(T))));
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> Int;
  typedef Int I __attribute__((vector_size(N * sizeof(T))));
  typedef uint8_t C __attribute__((vector_size(N)));
};

template <int N, class V>
inline void deinterleave(V lo, V hi, V& even, V& odd) {
  if constexpr (N == 8) {
    even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
    odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
  } else {
    even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6);
    odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7);
  }
}

template <int N, class V>
inline void interleave(V a, V b, V& lo, V& hi) {
  if constexpr (N == 8) {
    lo = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
    hi = __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
  } else {
    lo = __builtin_shufflevector(a, b, 0, 4, 1, 5);
    hi = __builtin_shufflevector(a, b, 2, 6, 3, 7);
  }
}

// N winners widened to the lanes of T. GCC 12 widens a byte vector one element at a time, so
// float gets the one-instruction widening where the target has it.
template <class T, int N>
inline typename Lanes<T, N>::I load_winners(const uint8_t* w) {
  using I = typename Lanes<T, N>::I;
#if defined(__AVX2__)
  if constexpr (sizeof(T) == 4 && N == 8)
    return I(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(w))));
#endif
#if defined(__SSE4_1__)
  if constexpr (sizeof(T) == 4 && N == 4) {
    int32_t b;
    std::memcpy(&b, w, sizeof(b));
    return I(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(b)));
  }
#endif
  typename Lanes<T, N>::C c;
  std::memcpy(&c, w, sizeof(c));
  return __builtin_convertvector(c, I);
}

// One output row: y[ox] = max(a, b, d, e) of the window (a b / d e); with `win` (training), the
// window position of the first of a, b, d equal to the maximum, else e (3), as 0..3. One byte per
// output is a sixteenth of the input (four values per window) and a quarter of the output that the
// backward pass would otherwise read to find the winners again.
template <class T, int N>
void pool_row_2x2(const T* r0, const T* r1, T* y, uint8_t* win, int64_t OW) {
  using V = typename Lanes<T, N>::V;
  for (int64_t ox = 0;; ox += N) {
    ox = std::min(ox, OW - N);
    V l0, h0, l1, h1, a, b, d, e;
    std::memcpy(&l0, r0 + 2 * ox, sizeof(V));
    std::memcpy(&h0, r0 + 2 * ox + N, sizeof(V));
    std::memcpy(&l1, r1 + 2 * ox, sizeof(V));
    std::memcpy(&h1, r1 + 2 * ox + N, sizeof(V));
    deinterleave<N>(l0, h0, a, b);
    deinterleave<N>(l1, h1, d, e);
    // std::max(p, q) is p < q ? q : p; the same order as the scalar loop.
    const V ab = a < b ? b : a, de = d < e ? e : d;
    const V m = ab < de ? de : ab;
    std::memcpy(y + ox, &m, sizeof(V));
    if (win) {
      const auto na = (a != m) & 1, nb = (b != m) & 1, nd = (d != m) & 1;
      const auto c = __builtin_convertvector(na * (1 + nb * (1 + nd)), typename Lanes<T, N>::C);
      std::memcpy(win + ox, &c, sizeof(c));
    }
    if (ox + N >= OW) break;
  }
}

// The adjoint of one output row: each window's gradient to its winner, zeros to the other three.
// With `pos` (not null: the row's outputs), a window whose output is not positive sends 0 (the
// ReLU before the pool).
template <class T, int N>
void unpool_row_2x2(const T* g, const T* pos, const uint8_t* win, T* d0, T* d1, int64_t OW) {
  using V = typename Lanes<T, N>::V;
  for (int64_t ox = 0;; ox += N) {
    ox = std::min(ox, OW - N);
    V gv;
    std::memcpy(&gv, g + ox, sizeof(V));
    const typename Lanes<T, N>::I c = load_winners<T, N>(win + ox);
    const V z = {};
    if (pos) {
      V yv;
      std::memcpy(&yv, pos + ox, sizeof(V));
      gv = yv > z ? gv : z;
    }
    const V va = c == 0 ? gv : z, vb = c == 1 ? gv : z, vd = c == 2 ? gv : z, ve = c == 3 ? gv : z;
    V lo, hi;
    interleave<N>(va, vb, lo, hi);
    std::memcpy(d0 + 2 * ox, &lo, sizeof(V));
    std::memcpy(d0 + 2 * ox + N, &hi, sizeof(V));
    interleave<N>(vd, ve, lo, hi);
    std::memcpy(d1 + 2 * ox, &lo, sizeof(V));
    std::memcpy(d1 + 2 * ox + N, &hi, sizeof(V));
    if (ox + N >= OW) break;
  }
}

// 2×2, stride-2 max pooling of one plane [H][W] into [OH][OW], recording winners in `win` when
// it is not null.
template <class T>
void pool_plane_2x2(const T* x, T* y, uint8_t* win, int64_t W, int64_t OH, int64_t OW) {
  for (int64_t oy = 0; oy < OH; ++oy) {
    const T* r0 = x + 2 * oy * W;
    const T* r1 = r0 + W;
    T* yr = y + oy * OW;
    uint8_t* wr = win ? win + oy * OW : nullptr;
    if (OW >= 8) {
      pool_row_2x2<T, 8>(r0, r1, yr, wr, OW);
    } else if (OW >= 4) {
      pool_row_2x2<T, 4>(r0, r1, yr, wr, OW);
    } else {
      for (int64_t ox = 0; ox < OW; ++ox) {
        const T a = r0[2 * ox], b = r0[2 * ox + 1], d = r1[2 * ox], e = r1[2 * ox + 1];
        const T m = std::max(std::max(a, b), std::max(d, e));
        yr[ox] = m;
        if (wr) wr[ox] = uint8_t(a == m ? 0 : b == m ? 1 : d == m ? 2 : 3);
      }
    }
  }
}

// The adjoint of pool_plane_2x2: dx[H][W] = dy at each window's winner, 0 elsewhere (and where
// the output y is not positive, when y is given). Writes every element of dx once, row by row (no
// clearing pass, no scattered stores); a last odd row or column that no window covers gets zeros.
template <class T>
void unpool_plane_2x2(const T* dy, const T* y, const uint8_t* win, T* dx, int64_t H, int64_t W,
                      int64_t OH, int64_t OW) {
  for (int64_t oy = 0; oy < OH; ++oy) {
    T* d0 = dx + 2 * oy * W;
    T* d1 = d0 + W;
    const T* g = dy + oy * OW;
    const T* pos = y ? y + oy * OW : nullptr;
    const uint8_t* wr = win + oy * OW;
    if (OW >= 8) {
      unpool_row_2x2<T, 8>(g, pos, wr, d0, d1, OW);
    } else if (OW >= 4) {
      unpool_row_2x2<T, 4>(g, pos, wr, d0, d1, OW);
    } else {
      for (int64_t ox = 0; ox < OW; ++ox) {
        const T v = !pos || pos[ox] > T(0) ? g[ox] : T(0);
        d0[2 * ox] = wr[ox] == 0 ? v : T(0);
        d0[2 * ox + 1] = wr[ox] == 1 ? v : T(0);
        d1[2 * ox] = wr[ox] == 2 ? v : T(0);
        d1[2 * ox + 1] = wr[ox] == 3 ? v : T(0);
      }
    }
    if (W > 2 * OW) {
      std::fill(d0 + 2 * OW, d0 + W, T(0));
      std::fill(d1 + 2 * OW, d1 + W, T(0));
    }
  }
  std::fill(dx + 2 * OH * W, dx + H * W, T(0));
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
        pool_plane_2x2(xp + p * H * W, yp + p * OH * OW, wp ? wp + p * OH * OW : nullptr, W, OH,
                       OW);
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
        unpool_plane_2x2(g, static_cast<const T*>(nullptr), wp + p * OH * OW, d, H, W, OH, OW);
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
    pool_plane_2x2(x + c * h_ * w_, y.data() + p * n,
                   mode == Mode::kTrain ? winner_.data() + p * n : nullptr, w_, oh_, ow_);
  }
}

template <class T>
void Pool2d<T>::unpool_sample(const T* dy, const T* y, int64_t s, T* dx) const {
  const int64_t n = oh_ * ow_;
  for (int64_t c = 0; c < c_; ++c)
    unpool_plane_2x2(dy + c * n, y + c * n, winner_.data() + (s * c_ + c) * n, dx + c * h_ * w_, h_,
                     w_, oh_, ow_);
}

template class Pool2d<float>;
template class Pool2d<double>;

}  // namespace bpkit
