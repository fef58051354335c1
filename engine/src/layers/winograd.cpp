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

template <class T>
void transform_input(const T* x, const Geometry& g, T* V, int64_t ld, int64_t t0) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Cld = g.C * ld;
  const int64_t PH = 2 * ty + 2, PW = 2 * tx + 2;  // padded plane covering every tile's patch
  T* P = scratch<T>(size_t(PH * PW));
  for (int64_t c = 0; c < g.C; ++c) {
    const T* xc = x + c * g.H * g.W;
    std::fill(P, P + PH * PW, T(0));
    for (int64_t iy = 0; iy < g.H; ++iy) {
      const int64_t py = iy + g.pad;
      if (py >= PH) break;
      const int64_t n = std::min(g.W, PW - g.pad);
      std::copy(xc + iy * g.W, xc + iy * g.W + n, P + py * PW + g.pad);
    }
    for (int64_t a = 0; a < ty; ++a) {
      const T* r0 = P + 2 * a * PW;
      const T* r1 = r0 + PW;
      const T* r2 = r1 + PW;
      const T* r3 = r2 + PW;
      T* v = V + c * ld + t0 + a * tx;
      for (int64_t b = 0; b < tx; ++b) {
        const int64_t o = 2 * b;
        T d[4][4];
        for (int j = 0; j < 4; ++j) {  // Bᵀ·d, column by column
          T t[4];
          bt4(r0[o + j], r1[o + j], r2[o + j], r3[o + j], t);
          for (int i = 0; i < 4; ++i) d[i][j] = t[i];
        }
        for (int i = 0; i < 4; ++i) {  // (Bᵀ·d)·B, row by row
          T t[4];
          bt4(d[i][0], d[i][1], d[i][2], d[i][3], t);
          for (int j = 0; j < 4; ++j) v[(i * 4 + j) * Cld + b] = t[j];
        }
      }
    }
  }
}

template <class T>
void accumulate_input_grad(const T* dV, const Geometry& g, int64_t ld, int64_t t0, T* dx) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Cld = g.C * ld;
  const int64_t PH = 2 * ty + 2, PW = 2 * tx + 2;
  T* P = scratch<T>(size_t(PH * PW));
  for (int64_t c = 0; c < g.C; ++c) {
    std::fill(P, P + PH * PW, T(0));
    for (int64_t a = 0; a < ty; ++a) {
      T* r[4] = {P + 2 * a * PW, P + (2 * a + 1) * PW, P + (2 * a + 2) * PW, P + (2 * a + 3) * PW};
      const T* v = dV + c * ld + t0 + a * tx;
      // Neighbouring patches overlap by two columns, so the accumulation runs over even and odd
      // tiles separately: within one pass no two tiles touch the same element.
      for (int64_t parity = 0; parity < 2; ++parity)
        for (int64_t b = parity; b < tx; b += 2) {
          T e[4][4];
          for (int i = 0; i < 4; ++i) {  // adjoint of the row pass
            T t[4];
            b4(v[(i * 4 + 0) * Cld + b], v[(i * 4 + 1) * Cld + b], v[(i * 4 + 2) * Cld + b],
               v[(i * 4 + 3) * Cld + b], t);
            for (int j = 0; j < 4; ++j) e[i][j] = t[j];
          }
          for (int j = 0; j < 4; ++j) {  // adjoint of the column pass
            T t[4];
            b4(e[0][j], e[1][j], e[2][j], e[3][j], t);
            for (int i = 0; i < 4; ++i) r[i][2 * b + j] += t[i];
          }
        }
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

template <class T>
void transform_output(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias, T* y) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Kld = g.K * ld;
  const int64_t PW = 2 * tx;
  T* P = scratch<T>(size_t(2 * ty * PW));
  for (int64_t k = 0; k < g.K; ++k) {
    const T bk = bias ? bias[k] : T(0);
    for (int64_t a = 0; a < ty; ++a) {
      const T* m = M + k * ld + t0 + a * tx;
      T* o0 = P + 2 * a * PW;
      T* o1 = o0 + PW;
      for (int64_t b = 0; b < tx; ++b) {
        T r[2][4];  // Aᵀ·m: rows m0 + m1 + m2 and m1 − m2 − m3
        for (int j = 0; j < 4; ++j) {
          const T m0 = m[(0 + j) * Kld + b], m1 = m[(4 + j) * Kld + b], m2 = m[(8 + j) * Kld + b],
                  m3 = m[(12 + j) * Kld + b];
          r[0][j] = m0 + m1 + m2;
          r[1][j] = m1 - m2 - m3;
        }
        o0[2 * b] = r[0][0] + r[0][1] + r[0][2] + bk;
        o0[2 * b + 1] = r[0][1] - r[0][2] - r[0][3] + bk;
        o1[2 * b] = r[1][0] + r[1][1] + r[1][2] + bk;
        o1[2 * b + 1] = r[1][1] - r[1][2] - r[1][3] + bk;
      }
    }
    T* yk = y + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy)
      std::copy(P + oy * PW, P + oy * PW + g.OW, yk + oy * g.OW);
  }
}

template <class T>
void transform_output_grad(const T* dy, const Geometry& g, T* dM, int64_t ld, int64_t t0) {
  const int64_t ty = g.tiles_y(), tx = g.tiles_x(), Kld = g.K * ld;
  const int64_t PW = 2 * tx;
  T* P = scratch<T>(size_t(2 * ty * PW));
  // Rows and columns past the output's edge (odd sizes) stay zero.
  std::fill(P, P + 2 * ty * PW, T(0));
  for (int64_t k = 0; k < g.K; ++k) {
    const T* dyk = dy + k * g.OH * g.OW;
    for (int64_t oy = 0; oy < g.OH; ++oy)
      std::copy(dyk + oy * g.OW, dyk + (oy + 1) * g.OW, P + oy * PW);
    for (int64_t a = 0; a < ty; ++a) {
      const T* e0 = P + 2 * a * PW;
      const T* e1 = e0 + PW;
      T* m = dM + k * ld + t0 + a * tx;
      for (int64_t b = 0; b < tx; ++b) {
        // A·e·Aᵀ with A = [[1,0],[1,1],[1,−1],[0,−1]].
        const T e00 = e0[2 * b], e01 = e0[2 * b + 1], e10 = e1[2 * b], e11 = e1[2 * b + 1];
        const T r[4][2] = {
            {e00, e01}, {e00 + e10, e01 + e11}, {e00 - e10, e01 - e11}, {-e10, -e11}};
        for (int i = 0; i < 4; ++i) {
          m[(i * 4 + 0) * Kld + b] = r[i][0];
          m[(i * 4 + 1) * Kld + b] = r[i][0] + r[i][1];
          m[(i * 4 + 2) * Kld + b] = r[i][0] - r[i][1];
          m[(i * 4 + 3) * Kld + b] = -r[i][1];
        }
      }
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
