// The Winograd transforms (winograd.h), a kernel source compiled once per instruction-set level
// (kernels.h).
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace winograd {
namespace {

// Geometry's tile counts, computed here: its inline members, if the compiler emitted them out of
// line in this object, would be built with this object's instructions (kernels.h).
inline int64_t tiles_y(const Geometry& g) {
  return (g.OH + 1) / 2;
}
inline int64_t tiles_x(const Geometry& g) {
  return (g.OW + 1) / 2;
}

// Bᵀ·d for a 4×4 block d (row-major), applied along one axis: rows r0..r3 → t0..t3.
template <class T>
inline void bt4(T d0, T d1, T d2, T d3, T* t) {
  t[0] = d0 - d2;
  t[1] = d1 + d2;
  t[2] = d2 - d1;
  t[3] = d1 - d3;
}
// B·v, the adjoint of bt4: given t0..t3 returns contributions to d0..d3.
template <class T>
inline void b4(T t0, T t1, T t2, T t3, T* d) {
  d[0] = t0;
  d[1] = t1 - t2 + t3;
  d[2] = -t0 + t1 + t2;
  d[3] = -t3;
}

}  // namespace

template <class T>
void transform_weights(const T* w, int64_t K, int64_t C, T* U) {
  const int64_t KC = K * C;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      const T* g = w + (k * C + c) * 9;
      T tmp[4][3];  // G·g
      for (int j = 0; j < 3; ++j) {
        tmp[0][j] = g[j];
        tmp[1][j] = T(0.5) * (g[j] + g[3 + j] + g[6 + j]);
        tmp[2][j] = T(0.5) * (g[j] - g[3 + j] + g[6 + j]);
        tmp[3][j] = g[6 + j];
      }
      for (int i = 0; i < 4; ++i) {  // (G·g)·Gᵀ
        const T a = tmp[i][0], b = tmp[i][1], c2 = tmp[i][2];
        T* u = U + (i * 4) * KC + k * C + c;
        u[0 * KC] = a;
        u[1 * KC] = T(0.5) * (a + b + c2);
        u[2 * KC] = T(0.5) * (a - b + c2);
        u[3 * KC] = c2;
      }
    }
}

template <class T>
void accumulate_weight_grad(const T* dU, int64_t K, int64_t C, T* dw) {
  const int64_t KC = K * C;
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c) {
      T u[4][4];
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) u[i][j] = dU[(i * 4 + j) * KC + k * C + c];
      // dg = Gᵀ·u·G. Gᵀ rows: [1, .5, .5, 0], [0, .5, -.5, 0], [0, .5, .5, 1].
      T tmp[3][4];
      for (int j = 0; j < 4; ++j) {
        tmp[0][j] = u[0][j] + T(0.5) * (u[1][j] + u[2][j]);
        tmp[1][j] = T(0.5) * (u[1][j] - u[2][j]);
        tmp[2][j] = T(0.5) * (u[1][j] + u[2][j]) + u[3][j];
      }
      T* g = dw + (k * C + c) * 9;
      for (int i = 0; i < 3; ++i) {
        g[i * 3 + 0] += tmp[i][0] + T(0.5) * (tmp[i][1] + tmp[i][2]);
        g[i * 3 + 1] += T(0.5) * (tmp[i][1] - tmp[i][2]);
        g[i * 3 + 2] += T(0.5) * (tmp[i][1] + tmp[i][2]) + tmp[i][3];
      }
    }
}

// The four tile transforms work plane by plane. A plane's tiles are few per row (7 for a 14×14
// output), too few for vectors across a row, so each transform is split in two: a scalar pass
// that gathers every tile's patch elements into rows over all tiles of the plane (or scatters them
// back), and the transform itself as one loop over all tiles, whose 16 streams in and out are
// contiguous rows: it vectorizes across tiles. The gathering works on a zero-bordered copy of the
// plane (a thread-local scratch buffer), so every patch lies inside it.

template <class T>
T* scratch(size_t n) {
  return kernel_scratch<T>(0, n);
}

template <class U, class T>
inline U load(const T* p) {
  U u;
  std::memcpy(&u, p, sizeof(U));
  return u;
}
template <class U, class T>
inline void store(T* p, U u) {
  std::memcpy(p, &u, sizeof(U));
}

// dst[0..n) = src[0..n) for the short rows of a plane (14 values in the CNN): a call to memmove
// per row, which is what GCC makes of std::copy or a plain loop, cost more than the copy itself
// (5% of a training step by perf). Vectors at 0, L, ... and one ending at n, overlapping the one
// before it; src and dst must not overlap.
template <class T>
inline void copy_row(const T* src, int64_t n, T* dst) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t L = int64_t(sizeof(V) / sizeof(T));
  if (n < L) {
    typedef T H __attribute__((vector_size(16)));
    constexpr int64_t L2 = L / 2;
    if (n >= L2) {
      store(dst, load<H>(src));
      store(dst + n - L2, load<H>(src + n - L2));
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
    }
    return;
  }
  for (int64_t i = 0;; i += L) {
    i = std::min(i, n - L);
    store(dst + i, load<V>(src + i));
    if (i + L >= n) break;
  }
}

// Calls f(t, U{}) for the tiles t .. t + lanes(U) − 1, U a vector of T (GCC vector extensions;
// GCC 12 does not vectorize these loops itself: 16 streams at run-time strides) or T alone for
// planes of fewer tiles than lanes. Vectors start at 0, L, ... and the last one ends at tp,
// overlapping the one before it: f must write each tile's results from that tile's inputs only.
template <class T, class F>
inline void for_tiles(int64_t tp, F&& f) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t L = int64_t(sizeof(V) / sizeof(T));
  if (tp < L) {
    for (int64_t t = 0; t < tp; ++t) f(t, T{});
    return;
  }
  for (int64_t t = 0;; t += L) {
    t = std::min(t, tp - L);
    f(t, V{});
    if (t + L >= tp) break;
  }
}

// One padded row r of a tile row: D0[b] = r[2b], D1[b] = r[2b + 1], D2[b] = r[2b + 2],
// D3[b] = r[2b + 3] for the row's tx tiles, 8 tiles at a time (even and odd elements split by
// shuffles). Reads up to 24 elements past the row and writes up to 7 past d·[tx]: the caller
// leaves room for both, and a tile row's overflow is rewritten by the next tile row.
template <class T>
inline void gather_patch_row(const T* r, int64_t tx, T* d0, T* d1, T* d2, T* d3) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  for (int64_t b = 0; b < tx; b += 8) {
    const V lo = load<V>(r + 2 * b), hi = load<V>(r + 2 * b + 8), next = load<V>(r + 2 * b + 16);
    const V e = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
    const V o = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
    store(d0 + b, e);
    store(d1 + b, o);
    store(d2 + b, __builtin_shufflevector(e, next, 1, 2, 3, 4, 5, 6, 7, 8));
    store(d3 + b, __builtin_shufflevector(o, next, 1, 2, 3, 4, 5, 6, 7, 9));
  }
}

template <class T>
void transform_input(const T* x, const Geometry& g, T* V, int64_t ld, int64_t t0) {
  const int64_t ty = tiles_y(g), tx = tiles_x(g), tp = ty * tx, Cld = g.C * ld;
  const int64_t PH = 2 * ty + 2, PW = 2 * tx + 2;  // padded plane covering every tile's patch
  const int64_t ds = tp + 8;                       // D's row stride: room for gather overflow
  T* P = scratch<T>(size_t(PH * PW + 24 + 16 * ds));
  T* D = P + PH * PW + 24;  // D[i·4 + j][t]: element (i, j) of tile t's 4×4 patch
  // Every channel fills the same interior: the border is cleared once.
  std::fill(P, P + PH * PW, T(0));
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + c * g.H * g.W;
    for (int64_t iy = 0; iy < g.H; ++iy) {
      const int64_t py = iy + g.pad;
      if (py >= PH) break;
      copy_row(xc + iy * g.W, std::min(g.W, PW - g.pad), P + py * PW + g.pad);
    }
    for (int64_t a = 0; a < ty; ++a)
      for (int i = 0; i < 4; ++i) {
        T* d = D + i * 4 * ds + a * tx;
        gather_patch_row(P + (2 * a + i) * PW, tx, d, d + ds, d + 2 * ds, d + 3 * ds);
      }
    T* v = V + c * ld + t0;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      U e[4][4];
      for (int j = 0; j < 4; ++j) {  // Bᵀ·d, column by column
        U u[4];
        bt4(load<U>(D + (0 + j) * ds + t), load<U>(D + (4 + j) * ds + t),
            load<U>(D + (8 + j) * ds + t), load<U>(D + (12 + j) * ds + t), u);
        for (int i = 0; i < 4; ++i) e[i][j] = u[i];
      }
      for (int i = 0; i < 4; ++i) {  // (Bᵀ·d)·B, row by row
        U u[4];
        bt4(e[i][0], e[i][1], e[i][2], e[i][3], u);
        for (int j = 0; j < 4; ++j) store(v + (i * 4 + j) * Cld + t, u[j]);
      }
    });
  }
}

// One row r of the padded plane from a tile row's patch rows d0..d3 (columns 0..3 of the tx
// patches, which overlap by two columns): r[2b] += d0[b] + d2[b − 1], r[2b + 1] += d1[b] + d3[b −
// 1] for b = 0..tx (terms outside 0..tx−1 are 0), 8 values of b at a time with one read and one
// write of r each. Lanes outside the tile row add +0: the plane's entries start at +0 and never
// become −0, so that leaves them as they are. Touches up to 15 elements past r[2·tx + 1] and reads
// d·[−1 .. tx + 7]: the caller leaves room.
template <class T>
inline void add_patch_row(const T* d0, const T* d1, const T* d2, const T* d3, int64_t tx, T* r) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  typedef std::conditional_t<sizeof(T) == 4, int32_t, int64_t> Int;
  typedef Int I __attribute__((vector_size(8 * sizeof(T))));
  const I lane = {0, 1, 2, 3, 4, 5, 6, 7};
  const V zero = {};
  for (int64_t b = 0; b <= tx; b += 8) {
    const I own = lane < Int(tx - b), left = (lane >= Int(1 - b)) & (lane < Int(tx + 1 - b));
    const V e = (own ? load<V>(d0 + b) : zero) + (left ? load<V>(d2 + b - 1) : zero);
    const V o = (own ? load<V>(d1 + b) : zero) + (left ? load<V>(d3 + b - 1) : zero);
    store(r + 2 * b, load<V>(r + 2 * b) + __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11));
    store(r + 2 * b + 8,
          load<V>(r + 2 * b + 8) + __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15));
  }
}

template <class T>
void accumulate_input_grad(const T* dV, const Geometry& g, int64_t ld, int64_t t0, T* dx) {
  const int64_t ty = tiles_y(g), tx = tiles_x(g), tp = ty * tx, Cld = g.C * ld;
  const int64_t PH = 2 * ty + 2, PW = 2 * tx + 2;
  const int64_t ds = tp + 8;  // D's row stride: room for add_patch_row's reads
  T* P = scratch<T>(size_t(PH * PW + 16 + 16 * ds));
  T* D = P + PH * PW + 16;  // D[i·4 + j][t]: gradient of element (i, j) of tile t's patch
  for (int64_t c = 0; c < g.C; ++c) {
    const T* v = dV + c * ld + t0;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      U e[4][4];
      for (int i = 0; i < 4; ++i) {  // adjoint of the row pass
        U u[4];
        b4(load<U>(v + (i * 4 + 0) * Cld + t), load<U>(v + (i * 4 + 1) * Cld + t),
           load<U>(v + (i * 4 + 2) * Cld + t), load<U>(v + (i * 4 + 3) * Cld + t), u);
        for (int j = 0; j < 4; ++j) e[i][j] = u[j];
      }
      for (int j = 0; j < 4; ++j) {  // adjoint of the column pass
        U u[4];
        b4(e[0][j], e[1][j], e[2][j], e[3][j], u);
        for (int i = 0; i < 4; ++i) store(D + (i * 4 + j) * ds + t, u[i]);
      }
    });
    // Neighbouring patches overlap by two rows and columns: added tile row by tile row, in a fixed
    // order.
    std::fill(P, P + PH * PW + 16, T(0));
    for (int64_t a = 0; a < ty; ++a)
      for (int i = 0; i < 4; ++i) {
        T* r = P + (2 * a + i) * PW;
        const T* d = D + i * 4 * ds + a * tx;
        add_patch_row(d, d + ds, d + 2 * ds, d + 3 * ds, tx, r);
      }
    T* dxc = dx + c * g.H * g.W;
    for (int64_t iy = 0; iy < g.H; ++iy) {
      const int64_t py = iy + g.pad;
      if (py >= PH) break;
      const int64_t n = std::min(g.W, PW - g.pad);
      const T* src = P + py * PW + g.pad;
      for (int64_t ix = 0; ix < n; ++ix) dxc[iy * g.W + ix] += src[ix];
    }
  }
}

// A row r of 2·tx outputs and the tile rows holding them: d0[b] = r[2b], d1[b] = r[2b + 1]
// (split_row) or back (join_row), 8 tiles at a time. Both touch up to 14 elements past the row's
// end and 7 past d·[tx]: the callers leave room, and an overflow into the next row is rewritten
// when that row's turn comes.
template <class T>
inline void split_row(const T* r, int64_t tx, T* d0, T* d1) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  for (int64_t b = 0; b < tx; b += 8) {
    const V lo = load<V>(r + 2 * b), hi = load<V>(r + 2 * b + 8);
    store(d0 + b, __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14));
    store(d1 + b, __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15));
  }
}
template <class T>
inline void join_row(const T* d0, const T* d1, int64_t tx, T* r) {
  typedef T V __attribute__((vector_size(8 * sizeof(T))));
  for (int64_t b = 0; b < tx; b += 8) {
    const V e = load<V>(d0 + b), o = load<V>(d1 + b);
    store(r + 2 * b, __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11));
    store(r + 2 * b + 8, __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15));
  }
}

template <class T>
void transform_output(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias, T* y) {
  const int64_t ty = tiles_y(g), tx = tiles_x(g), tp = ty * tx, Kld = g.K * ld;
  const int64_t PW = 2 * tx, os = tp + 8;  // os: O's row stride, with room for overflow
  T* O = scratch<T>(size_t(4 * os + 2 * ty * PW + 16));  // O[i·2 + j][t]: output (i, j) of tile t
  T* P = O + 4 * os;                                     // the tiles' outputs as a plane
  for (int64_t k = 0; k < g.K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    const T* m = M + k * ld + t0;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      U r[2][4];  // Aᵀ·m: rows m0 + m1 + m2 and m1 − m2 − m3
      for (int j = 0; j < 4; ++j) {
        const U m0 = load<U>(m + (0 + j) * Kld + t), m1 = load<U>(m + (4 + j) * Kld + t),
                m2 = load<U>(m + (8 + j) * Kld + t), m3 = load<U>(m + (12 + j) * Kld + t);
        r[0][j] = m0 + m1 + m2;
        r[1][j] = m1 - m2 - m3;
      }
      store(O + 0 * os + t, r[0][0] + r[0][1] + r[0][2] + bk);
      store(O + 1 * os + t, r[0][1] - r[0][2] - r[0][3] + bk);
      store(O + 2 * os + t, r[1][0] + r[1][1] + r[1][2] + bk);
      store(O + 3 * os + t, r[1][1] - r[1][2] - r[1][3] + bk);
    });
    for (int64_t a = 0; a < ty; ++a)
      for (int i = 0; i < 2; ++i)
        join_row(O + 2 * i * os + a * tx, O + (2 * i + 1) * os + a * tx, tx, P + (2 * a + i) * PW);
    // Outputs past the output's edge (odd sizes) are dropped.
    T* yk = y + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy) copy_row(P + oy * PW, g.OW, yk + oy * g.OW);
  }
}

// A·e·Aᵀ with A = [[1,0],[1,1],[1,−1],[0,−1]]: the 4×4 transformed gradient of a 2×2 output
// tile e00 e01 / e10 e11 (vectors over tiles), its 16 elements `ld` apart from `m`.
template <class U, class T>
inline void store_output_grad_tile(U e00, U e01, U e10, U e11, T* m, int64_t ld) {
  const U r[4][2] = {{e00, e01}, {e00 + e10, e01 + e11}, {e00 - e10, e01 - e11}, {-e10, -e11}};
  for (int i = 0; i < 4; ++i) {
    store(m + (i * 4 + 0) * ld, r[i][0]);
    store(m + (i * 4 + 1) * ld, r[i][0] + r[i][1]);
    store(m + (i * 4 + 2) * ld, r[i][0] - r[i][1]);
    store(m + (i * 4 + 3) * ld, -r[i][1]);
  }
}

template <class T>
void transform_output_grad(const T* dy, const Geometry& g, T* dM, int64_t ld, int64_t t0) {
  const int64_t ty = tiles_y(g), tx = tiles_x(g), tp = ty * tx, Kld = g.K * ld;
  const int64_t PW = 2 * tx, es = tp + 8;  // es: E's row stride, with room for overflow
  T* P = scratch<T>(size_t(2 * ty * PW + 16 + 4 * es));  // dy's plane, zero-padded to whole tiles
  T* E = P + 2 * ty * PW + 16;  // E[i·2 + j][t]: output gradient (i, j) of tile t
  // Outputs past the output's edge (odd sizes) stay zero.
  std::fill(P, P + 2 * ty * PW + 16, T(0));
  for (int64_t k = 0; k < g.K; ++k) {
    const T* dyk = dy + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy) copy_row(dyk + oy * g.OW, g.OW, P + oy * PW);
    for (int64_t a = 0; a < ty; ++a)
      for (int i = 0; i < 2; ++i)
        split_row(P + (2 * a + i) * PW, tx, E + 2 * i * es + a * tx, E + (2 * i + 1) * es + a * tx);
    T* m = dM + k * ld + t0;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      const U e00 = load<U>(E + t), e01 = load<U>(E + es + t), e10 = load<U>(E + 2 * es + t),
              e11 = load<U>(E + 3 * es + t);
      store_output_grad_tile(e00, e01, e10, e11, m + t, Kld);
    });
  }
}

// A tile's window position code as the 2×2 max pooling records it (0..3: the first of a, b, d
// equal to the maximum m, else e), stored as bytes; lanes: a vector of T or T alone.
template <class U>
inline void store_winners(uint8_t* w, U code) {
  if constexpr (std::is_arithmetic_v<U>) {
    *w = uint8_t(code);
  } else {
    constexpr int N = int(sizeof(U) / sizeof(code[0]));
    typedef uint8_t C __attribute__((vector_size(N)));
    const C c = __builtin_convertvector(code, C);
    std::memcpy(w, &c, sizeof(C));
  }
}

template <class T>
void transform_output_pooled(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias,
                             T* y, uint8_t* win) {
  const int64_t tp = tiles_y(g) * tiles_x(g), Kld = g.K * ld;
  for (int64_t k = 0; k < g.K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    const T* m = M + k * ld + t0;
    T* yk = y + k * tp;
    uint8_t* wk = win ? win + k * tp : nullptr;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      U r[2][4];  // as transform_output, the same operations in the same order
      for (int j = 0; j < 4; ++j) {
        const U m0 = load<U>(m + (0 + j) * Kld + t), m1 = load<U>(m + (4 + j) * Kld + t),
                m2 = load<U>(m + (8 + j) * Kld + t), m3 = load<U>(m + (12 + j) * Kld + t);
        r[0][j] = m0 + m1 + m2;
        r[1][j] = m1 - m2 - m3;
      }
      const U zero = U{};
      U a = r[0][0] + r[0][1] + r[0][2] + bk, b = r[0][1] - r[0][2] - r[0][3] + bk,
        d = r[1][0] + r[1][1] + r[1][2] + bk, e = r[1][1] - r[1][2] - r[1][3] + bk;
      // The ReLU as std::max(v, 0) and the pooling as pool_row_2x2 (pool2d.cpp) compute them.
      a = a < zero ? zero : a;
      b = b < zero ? zero : b;
      d = d < zero ? zero : d;
      e = e < zero ? zero : e;
      const U ab = a < b ? b : a, de = d < e ? e : d;
      const U mx = ab < de ? de : ab;
      store(yk + t, mx);
      if (wk) {
        const U one = zero + T(1);
        const U na = a != mx ? one : zero, nb = b != mx ? one : zero, nd = d != mx ? one : zero;
        store_winners(wk + t, na * (one + nb * (one + nd)));
      }
    });
  }
}

template <class T>
void transform_pooled_grad(const T* dy, const T* y, const uint8_t* win, const Geometry& g, T* dM,
                           int64_t ld, int64_t t0, T* db) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t L = int64_t(sizeof(V) / sizeof(T));
  const int64_t tp = tiles_y(g) * tiles_x(g), Kld = g.K * ld;
  for (int64_t k = 0; k < g.K; ++k) {
    const T* dyk = dy + k * tp;
    const T* yk = y + k * tp;
    const uint8_t* wk = win + k * tp;
    T* m = dM + k * ld + t0;
    for_tiles<T>(tp, [&](int64_t t, auto lanes) {
      using U = decltype(lanes);
      const U zero = U{};
      const U yv = load<U>(yk + t), gv = yv > zero ? load<U>(dyk + t) : zero;
      U c;  // the winners as T: small integers, exact
      if constexpr (std::is_arithmetic_v<U>) {
        c = U(wk[t]);
      } else {
        constexpr int N = int(sizeof(U) / sizeof(T));
        typedef uint8_t C __attribute__((vector_size(N)));
        C cw;
        std::memcpy(&cw, wk + t, sizeof(C));
        c = __builtin_convertvector(cw, U);
      }
      // The window's gradient at its winner: e00 e01 / e10 e11, then transformed.
      const U e00 = c == T(0) ? gv : zero, e01 = c == T(1) ? gv : zero, e10 = c == T(2) ? gv : zero,
              e11 = c == T(3) ? gv : zero;
      store_output_grad_tile(e00, e01, e10, e11, m + t, Kld);
    });
    // The bias gradient: the sum of the windows' gradients (each window sends its one value),
    // in L partial sums added in a fixed order.
    V part = {};
    int64_t t = 0;
    for (; t + L <= tp; t += L) {
      const V yv = load<V>(yk + t), gv = load<V>(dyk + t);
      part += yv > V{} ? gv : V{};
    }
    T sum = 0;
    for (int64_t l = 0; l < L; ++l) sum += part[l];
    for (; t < tp; ++t) sum += yk[t] > T(0) ? dyk[t] : T(0);
    db[k] += sum;
  }
}

#define BPKIT_WINOGRAD(T)                                                                         \
  template void transform_weights<T>(const T*, int64_t, int64_t, T*);                             \
  template void accumulate_weight_grad<T>(const T*, int64_t, int64_t, T*);                        \
  template void transform_input<T>(const T*, const Geometry&, T*, int64_t, int64_t);              \
  template void accumulate_input_grad<T>(const T*, const Geometry&, int64_t, int64_t, T*);        \
  template void transform_output<T>(const T*, const Geometry&, int64_t, int64_t, const T*, T*);   \
  template void transform_output_grad<T>(const T*, const Geometry&, T*, int64_t, int64_t);        \
  template void transform_output_pooled<T>(const T*, const Geometry&, int64_t, int64_t, const T*, \
                                           T*, uint8_t*);                                         \
  template void transform_pooled_grad<T>(const T*, const T*, const uint8_t*, const Geometry&, T*, \
                                         int64_t, int64_t, T*);
BPKIT_WINOGRAD(float)
BPKIT_WINOGRAD(double)

}  // namespace winograd
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
