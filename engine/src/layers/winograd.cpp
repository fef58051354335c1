#include "winograd.h"

#include <algorithm>
#include <vector>

namespace bpkit {
namespace winograd {
namespace {

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

// The four tile transforms work on a zero-bordered copy of each plane (a thread-local scratch
// buffer), so every tile is "inside" and the loop over a row of tiles has no bounds checks: it
// vectorizes across tiles, whose transformed values are contiguous in V and M.

template <class T>
T* scratch(size_t n) {
  thread_local std::vector<T> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// One output row of Bᵀ·d·B for a row of tiles: the row combination A + s·B (s = ±1, exact) at
// columns 2b..2b+3, then the column combination into the four planes. Every pointer is its own
// restrict parameter so that the loop over tiles vectorizes (16 planes behind one pointer exceed
// the compiler's alias-check budget).
template <class T>
void input_row(const T* __restrict ea, const T* __restrict oa, const T* __restrict eb,
               const T* __restrict ob, T s, T* __restrict v0, T* __restrict v1, T* __restrict v2,
               T* __restrict v3, int64_t tx) {
  for (int64_t b = 0; b < tx; ++b) {
    const T x0 = ea[b] + s * eb[b], x1 = oa[b] + s * ob[b];
    const T x2 = ea[b + 1] + s * eb[b + 1], x3 = oa[b + 1] + s * ob[b + 1];
    v0[b] = x0 - x2;
    v1[b] = x1 + x2;
    v2[b] = x2 - x1;
    v3[b] = x1 - x3;
  }
}

template <class T>
void transform_input(const T* x, const Geometry& g, T* V, int64_t ld, int64_t t0) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Cld = g.C * ld;
  // Padded plane covering every tile's patch, each row stored de-interleaved (even columns, then
  // odd columns): tile b reads columns 2b..2b+3 = even[b], odd[b], even[b+1], odd[b+1], all unit
  // stride in b, so the loop over a row of tiles vectorizes.
  const int64_t PH = 2 * ty + 2, half = tx + 1, RW = 2 * half;
  T* P = scratch<T>(size_t(PH * RW));
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + c * g.H * g.W;
    std::fill(P, P + PH * RW, T(0));
    for (int64_t iy = 0; iy < g.H && iy + g.pad < PH; ++iy) {
      T* row = P + (iy + g.pad) * RW;
      for (int64_t ix = 0; ix < g.W; ++ix) {
        const int64_t px = ix + g.pad;
        row[(px & 1) * half + (px >> 1)] = xc[iy * g.W + ix];
      }
    }
    for (int64_t a = 0; a < ty; ++a) {
      const T* r[4] = {P + 2 * a * RW, P + (2 * a + 1) * RW, P + (2 * a + 2) * RW,
                       P + (2 * a + 3) * RW};
      T* v = V + c * ld + t0 + a * tx;
      // Output row i of Bᵀ·d·B comes from input rows (A, B) combined as A + s·B:
      // (r0 − r2), (r1 + r2), (r2 − r1), (r1 − r3).
      const int rows[4][2] = {{0, 2}, {1, 2}, {2, 1}, {1, 3}};
      const T sign[4] = {T(-1), T(1), T(-1), T(-1)};
      for (int i = 0; i < 4; ++i) {
        const T* A = r[rows[i][0]];
        const T* B = r[rows[i][1]];
        input_row(A, A + half, B, B + half, sign[i], v + (i * 4) * Cld, v + (i * 4 + 1) * Cld,
                  v + (i * 4 + 2) * Cld, v + (i * 4 + 3) * Cld, tx);
      }
    }
  }
}

// B·t applied plane-wise over a row of tiles (the adjoint of bt4): y0 = t0, y1 = t1 − t2 + t3,
// y2 = −t0 + t1 + t2, y3 = −t3.
template <class T>
void adjoint_b(const T* __restrict t0, const T* __restrict t1, const T* __restrict t2,
               const T* __restrict t3, T* __restrict y0, T* __restrict y1, T* __restrict y2,
               T* __restrict y3, int64_t tx) {
  for (int64_t b = 0; b < tx; ++b) {
    y0[b] = t0[b];
    y1[b] = t1[b] - t2[b] + t3[b];
    y2[b] = t1[b] + t2[b] - t0[b];
    y3[b] = -t3[b];
  }
}

template <class T>
void add_to(T* __restrict dst, const T* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

template <class T>
void accumulate_input_grad(const T* dV, const Geometry& g, int64_t ld, int64_t t0, T* dx) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Cld = g.C * ld;
  // Padded plane, rows de-interleaved as in transform_input; C and D hold the 16 planes of a row
  // of tiles between the two adjoint passes.
  const int64_t PH = 2 * ty + 2, half = tx + 1, RW = 2 * half;
  T* P = scratch<T>(size_t(PH * RW + 32 * tx));
  T* Cp = P + PH * RW;
  T* Dp = Cp + 16 * tx;
  for (int64_t c = 0; c < g.C; ++c) {
    std::fill(P, P + PH * RW, T(0));
    for (int64_t a = 0; a < ty; ++a) {
      const T* v = dV + c * ld + t0 + a * tx;
      // Adjoint of the column pass (over j) for each patch row i: C[i][j].
      for (int i = 0; i < 4; ++i)
        adjoint_b(v + (i * 4) * Cld, v + (i * 4 + 1) * Cld, v + (i * 4 + 2) * Cld,
                  v + (i * 4 + 3) * Cld, Cp + (i * 4) * tx, Cp + (i * 4 + 1) * tx,
                  Cp + (i * 4 + 2) * tx, Cp + (i * 4 + 3) * tx, tx);
      // Adjoint of the row pass (over i) for each patch column j: D[i][j].
      for (int j = 0; j < 4; ++j)
        adjoint_b(Cp + j * tx, Cp + (4 + j) * tx, Cp + (8 + j) * tx, Cp + (12 + j) * tx,
                  Dp + j * tx, Dp + (4 + j) * tx, Dp + (8 + j) * tx, Dp + (12 + j) * tx, tx);
      // Patch (i, j) of tile b lands on padded row 2a + i, column 2b + j: even[b] for j = 0,
      // odd[b] for j = 1, even[b + 1] for j = 2, odd[b + 1] for j = 3.
      for (int i = 0; i < 4; ++i) {
        T* even = P + (2 * a + i) * RW;
        T* odd = even + half;
        const T* D = Dp + (i * 4) * tx;
        add_to(even, D, tx);
        add_to(odd, D + tx, tx);
        add_to(even + 1, D + 2 * tx, tx);
        add_to(odd + 1, D + 3 * tx, tx);
      }
    }
    T* dxc = dx + c * g.H * g.W;
    for (int64_t iy = 0; iy < g.H && iy + g.pad < PH; ++iy) {
      const T* row = P + (iy + g.pad) * RW;
      for (int64_t ix = 0; ix < g.W; ++ix) {
        const int64_t px = ix + g.pad;
        dxc[iy * g.W + ix] += row[(px & 1) * half + (px >> 1)];
      }
    }
  }
}

// Aᵀ·m, row part, for one column j of a row of tiles: r0 = m0 + m1 + m2, r1 = m1 − m2 − m3.
template <class T>
void output_rows(const T* __restrict m0, const T* __restrict m1, const T* __restrict m2,
                 const T* __restrict m3, T* __restrict r0, T* __restrict r1, int64_t tx) {
  for (int64_t b = 0; b < tx; ++b) {
    r0[b] = m0[b] + m1[b] + m2[b];
    r1[b] = m1[b] - m2[b] - m3[b];
  }
}

// ·A, column part, for one output row: even = r0 + r1 + r2 + bias, odd = r1 − r2 − r3 + bias.
template <class T>
void output_cols(const T* __restrict r0, const T* __restrict r1, const T* __restrict r2,
                 const T* __restrict r3, T bias, T* __restrict even, T* __restrict odd,
                 int64_t tx) {
  for (int64_t b = 0; b < tx; ++b) {
    even[b] = r0[b] + r1[b] + r2[b] + bias;
    odd[b] = r1[b] - r2[b] - r3[b] + bias;
  }
}

template <class T>
void transform_output(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias, T* y) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Kld = g.K * ld;
  // Scratch: R[2][4][tx] (row part of a row of tiles), then the output rows, de-interleaved.
  T* R = scratch<T>(size_t(8 * tx + 2 * tx * 2 * ty));
  T* P = R + 8 * tx;
  for (int64_t k = 0; k < g.K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    for (int64_t a = 0; a < ty; ++a) {
      const T* m = M + k * ld + t0 + a * tx;
      for (int j = 0; j < 4; ++j)
        output_rows(m + j * Kld, m + (4 + j) * Kld, m + (8 + j) * Kld, m + (12 + j) * Kld,
                    R + j * tx, R + (4 + j) * tx, tx);
      for (int i = 0; i < 2; ++i) {
        const T* Ri = R + 4 * i * tx;
        T* row = P + (2 * a + i) * 2 * tx;
        output_cols(Ri, Ri + tx, Ri + 2 * tx, Ri + 3 * tx, bk, row, row + tx, tx);
      }
    }
    T* yk = y + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy) {
      const T* row = P + oy * 2 * tx;
      for (int64_t ox = 0; ox < g.OW; ++ox) yk[oy * g.OW + ox] = row[(ox & 1) * tx + (ox >> 1)];
    }
  }
}

// One row i of A·e·Aᵀ for a row of tiles: the row combination s0·e_top + s1·e_bottom (s = 0 or ±1,
// exact) at columns 2b, 2b+1, then the column combination into four planes. Restrict parameters
// for the same reason as input_row.
template <class T>
void output_grad_row(const T* __restrict et, const T* __restrict ot, const T* __restrict eb,
                     const T* __restrict ob, T s0, T s1, T* __restrict m0, T* __restrict m1,
                     T* __restrict m2, T* __restrict m3, int64_t tx) {
  for (int64_t b = 0; b < tx; ++b) {
    const T c0 = s0 * et[b] + s1 * eb[b], c1 = s0 * ot[b] + s1 * ob[b];
    m0[b] = c0;
    m1[b] = c0 + c1;
    m2[b] = c0 - c1;
    m3[b] = -c1;
  }
}

template <class T>
void transform_output_grad(const T* dy, const Geometry& g, T* dM, int64_t ld, int64_t t0) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Kld = g.K * ld;
  // The plane with rows and columns past the output's edge (odd sizes) zero, each row stored
  // de-interleaved: even columns (tx), then odd columns (tx).
  const int64_t RW = 2 * tx;
  T* P = scratch<T>(size_t(2 * ty * RW));
  std::fill(P, P + 2 * ty * RW, T(0));
  // A = [[1,0],[1,1],[1,−1],[0,−1]]: row i of A·e is s0·e_top + s1·e_bottom.
  const T s0[4] = {T(1), T(1), T(1), T(0)};
  const T s1[4] = {T(0), T(1), T(-1), T(-1)};
  for (int64_t k = 0; k < g.K; ++k) {
    const T* dyk = dy + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy) {
      T* row = P + oy * RW;
      for (int64_t ox = 0; ox < g.OW; ++ox) row[(ox & 1) * tx + (ox >> 1)] = dyk[oy * g.OW + ox];
    }
    for (int64_t a = 0; a < ty; ++a) {
      const T* top = P + 2 * a * RW;
      const T* bottom = top + RW;
      T* m = dM + k * ld + t0 + a * tx;
      for (int i = 0; i < 4; ++i)
        output_grad_row(top, top + tx, bottom, bottom + tx, s0[i], s1[i], m + (i * 4) * Kld,
                        m + (i * 4 + 1) * Kld, m + (i * 4 + 2) * Kld, m + (i * 4 + 3) * Kld, tx);
    }
  }
}

#define BPKIT_WINOGRAD(T)                                                                       \
  template void transform_weights<T>(const T*, int64_t, int64_t, T*);                           \
  template void accumulate_weight_grad<T>(const T*, int64_t, int64_t, T*);                      \
  template void transform_input<T>(const T*, const Geometry&, T*, int64_t, int64_t);            \
  template void accumulate_input_grad<T>(const T*, const Geometry&, int64_t, int64_t, T*);      \
  template void transform_output<T>(const T*, const Geometry&, int64_t, int64_t, const T*, T*); \
  template void transform_output_grad<T>(const T*, const Geometry&, T*, int64_t, int64_t);
BPKIT_WINOGRAD(float)
BPKIT_WINOGRAD(double)

}  // namespace winograd
}  // namespace bpkit
