// The 2×2, stride-2 max pooling kernels (api.inc), compiled once per instruction-set level
// (kernels.h).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace pool {
namespace {

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

}  // namespace

// 2×2, stride-2 max pooling of one plane [H][W] into [OH][OW], recording winners in `win` when
// it is not null.
template <class T>
void max_plane_2x2(const T* x, T* y, uint8_t* win, int64_t W, int64_t OH, int64_t OW) {
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

template void max_plane_2x2<float>(const float*, float*, uint8_t*, int64_t, int64_t, int64_t);
template void max_plane_2x2<double>(const double*, double*, uint8_t*, int64_t, int64_t, int64_t);
template void unpool_plane_2x2<float>(const float*, const float*, const uint8_t*, float*, int64_t,
                                      int64_t, int64_t, int64_t);
template void unpool_plane_2x2<double>(const double*, const double*, const uint8_t*, double*,
                                       int64_t, int64_t, int64_t, int64_t);

}  // namespace pool
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
