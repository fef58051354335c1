// The kernels of im2col convolution (api.inc), compiled once per instruction-set level
// (kernels.h).
#include <algorithm>
#include <cstring>

#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace conv {
namespace {

// For input column ix = ox·s − pad + j: the first ox with ix >= 0 (num = pad − j) and one past the
// last ox with ix <= W − 1 (num = W − 1 + pad − j), both clamped to [0, OW].
inline int64_t first_inside(int64_t num, int64_t s, int64_t OW) {
  return num <= 0 ? 0 : std::min(OW, (num + s - 1) / s);
}
inline int64_t end_inside(int64_t num, int64_t s, int64_t OW) {
  return num < 0 ? 0 : std::min(OW, num / s + 1);
}

// dw[f][q] += Σ_p g[f][p]·col[q][p] for an nf×nq block of outputs, with nf·nq vector
// accumulators held in registers across the whole row of P positions.
template <int NF, int NQ, class T>
void weight_grad_block(const T* __restrict g, const T* __restrict col, int64_t P, int64_t Q,
                       T* __restrict dw) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t L = int64_t(sizeof(V) / sizeof(T));
  V acc[NF][NQ] = {};
  int64_t p = 0;
  for (; p + L <= P; p += L) {
    V c[NQ];
    for (int j = 0; j < NQ; ++j) std::memcpy(&c[j], col + j * P + p, sizeof(V));
    for (int i = 0; i < NF; ++i) {
      V gv;
      std::memcpy(&gv, g + i * P + p, sizeof(V));
      for (int j = 0; j < NQ; ++j) acc[i][j] += gv * c[j];
    }
  }
  for (int i = 0; i < NF; ++i)
    for (int j = 0; j < NQ; ++j) {
      T sum = 0;
      for (int64_t l = 0; l < L; ++l) sum += acc[i][j][l];
      for (int64_t r = p; r < P; ++r) sum += g[i * P + r] * col[j * P + r];
      dw[i * Q + j] += sum;
    }
}

}  // namespace

// col[(c·k + i)·k + j][oy·OW + ox] = x[c][oy·s − pad + i][ox·s − pad + j], zero outside the image.
template <class T>
void im2col(const T* x, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, int64_t pad,
            int64_t OH, int64_t OW, T* col) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        T* out = col + ((c * k + i) * k + j) * OH * OW;
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * s - pad + i;
          T* row = out + oy * OW;
          if (iy < 0 || iy >= H) {
            std::fill(row, row + OW, T(0));
            continue;
          }
          const T* xr = x + (c * H + iy) * W;
          // ox range whose input column lies inside the image; the loop body then has no branch
          // and vectorizes for stride 1.
          const int64_t lo = first_inside(pad - j, s, OW);
          const int64_t hi = std::max(lo, end_inside(W - 1 + pad - j, s, OW));
          std::fill(row, row + lo, T(0));
          if (s == 1)
            std::copy(xr + lo - pad + j, xr + hi - pad + j, row + lo);
          else
            for (int64_t ox = lo; ox < hi; ++ox) row[ox] = xr[ox * s - pad + j];
          std::fill(row + hi, row + OW, T(0));
        }
      }
}

// The adjoint of im2col: adds each col entry back onto the input position it was copied from.
template <class T>
void col2im(const T* col, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, int64_t pad,
            int64_t OH, int64_t OW, T* x) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t i = 0; i < k; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const T* in = col + ((c * k + i) * k + j) * OH * OW;
        for (int64_t oy = 0; oy < OH; ++oy) {
          const int64_t iy = oy * s - pad + i;
          if (iy < 0 || iy >= H) continue;
          T* xr = x + (c * H + iy) * W;
          const T* row = in + oy * OW;
          const int64_t lo = first_inside(pad - j, s, OW);
          const int64_t hi = std::max(lo, end_inside(W - 1 + pad - j, s, OW));
          if (s == 1) {
            T* __restrict dst = xr - pad + j;
            const T* __restrict src = row;
            for (int64_t ox = lo; ox < hi; ++ox) dst[ox] += src[ox];
          } else {
            for (int64_t ox = lo; ox < hi; ++ox) xr[ox * s - pad + j] += row[ox];
          }
        }
      }
}

// db[f] += Σ_p dy[f][p] for one sample. One running sum would be a chain of dependent additions
// that the compiler may not reorder (no -ffast-math): one add per 3-4 cycles. A vector of partial
// sums (lane l sums p ≡ l mod L), added up in a fixed order, keeps the result deterministic.
template <class T>
void add_bias_grad(const T* dy, int64_t K, int64_t P, T* db) {
  typedef T V __attribute__((vector_size(32)));
  constexpr int64_t L = int64_t(sizeof(V) / sizeof(T));
  for (int64_t f = 0; f < K; ++f) {
    const T* row = dy + f * P;
    V part = {};
    int64_t p = 0;
    for (; p + L <= P; p += L) {
      V v;
      std::memcpy(&v, row + p, sizeof(V));
      part += v;
    }
    T sum = 0;
    for (int64_t l = 0; l < L; ++l) sum += part[l];
    for (; p < P; ++p) sum += row[p];
    db[f] += sum;
  }
}

// dw[F][Q] += g[F][P]·col[Q][P]ᵀ when Q is small (a convolution over one input channel: Q = k·k).
// The BLAS packs both operands for every call and runs its 16-wide micro-kernel on a 9-wide
// product, which measured at a fifth of peak; blocks of 4 filters × 3 patch rows keep 12
// accumulators in registers and read g and col once per block row.
template <class T>
void weight_grad_small(const T* g, const T* col, int64_t F, int64_t Q, int64_t P, T* dw) {
  int64_t f = 0;
  for (; f + 4 <= F; f += 4) {
    int64_t q = 0;
    for (; q + 3 <= Q; q += 3)
      weight_grad_block<4, 3>(g + f * P, col + q * P, P, Q, dw + f * Q + q);
    for (; q < Q; ++q) weight_grad_block<4, 1>(g + f * P, col + q * P, P, Q, dw + f * Q + q);
  }
  for (; f < F; ++f)
    for (int64_t q = 0; q < Q; ++q)
      weight_grad_block<1, 1>(g + f * P, col + q * P, P, Q, dw + f * Q + q);
}

// m[n] = g where y > 0, else 0.
template <class T>
void relu_mask(const T* __restrict g, const T* __restrict y, int64_t n, T* __restrict m) {
  for (int64_t i = 0; i < n; ++i) m[i] = y[i] > T(0) ? g[i] : T(0);
}

#define BPKIT_CONV_KERNELS(T)                                                                      \
  template void im2col<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                          int64_t, T*);                                                            \
  template void col2im<T>(const T*, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, \
                          int64_t, T*);                                                            \
  template void add_bias_grad<T>(const T*, int64_t, int64_t, T*);                                  \
  template void weight_grad_small<T>(const T*, const T*, int64_t, int64_t, int64_t, T*);           \
  template void relu_mask<T>(const T*, const T*, int64_t, T*);
BPKIT_CONV_KERNELS(float)
BPKIT_CONV_KERNELS(double)

}  // namespace conv
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
