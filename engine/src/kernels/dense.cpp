// The dense layer's batch-1 kernel (api.inc), compiled once per instruction-set level
// (kernels.h).
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace dense {
namespace {

// Batch 1 in float: a block of units whose sums stay in registers while every nonzero input's
// row of W streams past, so the only memory traffic is the weights themselves (one load and one
// fused multiply-add per vector of weights). AVX-512 has 32 registers of 16 floats: 16
// accumulators hold 256 units; AVX and SSE have 16 registers: 12 accumulators.
#if defined(__AVX512F__)
constexpr int kLanes = 16, kAccs = 16;
#elif defined(__AVX__)
constexpr int kLanes = 8, kAccs = 12;
#else
constexpr int kLanes = 4, kAccs = 12;
#endif
typedef float VecF __attribute__((vector_size(kLanes * sizeof(float))));

inline VecF fma_lanes(VecF a, VecF b, VecF c) {
#if defined(__AVX512F__)
  return _mm512_fmadd_ps(a, b, c);
#elif defined(__FMA__)
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

// y[0, NV·kLanes) += Σ_i x[nz[i]]·w[nz[i]·U + ...], w and y already offset to the block.
template <int NV>
void dense_rows(const float* __restrict x, const int64_t* __restrict nz, size_t n,
                const float* __restrict w, int64_t U, float* __restrict y) {
  VecF acc[NV];
  for (int v = 0; v < NV; ++v) std::memcpy(&acc[v], y + v * kLanes, sizeof(VecF));
  for (size_t i = 0; i < n; ++i) {
    const float* wr = w + nz[i] * U;
    const VecF xk = VecF{} + x[nz[i]];  // broadcast
    for (int v = 0; v < NV; ++v) {
      VecF wv;
      std::memcpy(&wv, wr + v * kLanes, sizeof(VecF));
      acc[v] = fma_lanes(xk, wv, acc[v]);
    }
  }
  for (int v = 0; v < NV; ++v) std::memcpy(y + v * kLanes, &acc[v], sizeof(VecF));
}

// Units [u, u1) in blocks of NV vectors, then smaller blocks; returns where the vectors end.
template <int NV>
int64_t dense_blocks(const float* x, const int64_t* nz, size_t n, const float* w, int64_t U,
                     float* y, int64_t u, int64_t u1) {
  for (; u + NV * kLanes <= u1; u += NV * kLanes) dense_rows<NV>(x, nz, n, w + u, U, y + u);
  if constexpr (NV > 1) return dense_blocks<(NV > 4 ? 4 : NV / 2)>(x, nz, n, w, U, y, u, u1);
  return u;
}

// The indices of x's nonzero entries (NaN counts as nonzero) into nz[0, F); returns how many.
// Without a branch: an image alternates ink and background too often to predict.
template <class T>
size_t nonzero_indices(const T* __restrict x, int64_t F, int64_t* __restrict nz) {
  size_t n = 0;
  int64_t k = 0;
#if defined(__AVX512F__) && defined(__AVX512VL__)
  if constexpr (std::is_same_v<T, float>) {
    // Eight at a time: a compare to a mask, the mask's indices packed in a register, stored whole
    // (n never passes k, so the eight slots written lie within [0, k + 8)).
    __m512i idx = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    for (; k + 8 <= F; k += 8) {
      const __mmask8 m =
          _mm256_cmp_ps_mask(_mm256_loadu_ps(x + k), _mm256_setzero_ps(), _CMP_NEQ_UQ);
      _mm512_storeu_si512(nz + n, _mm512_maskz_compress_epi64(m, idx));
      n += size_t(__builtin_popcount(m));
      idx = _mm512_add_epi64(idx, _mm512_set1_epi64(8));
    }
  }
#endif
  for (; k < F; ++k) {
    nz[n] = k;
    n += x[k] != T(0);
  }
  return n;
}

}  // namespace

// Batch 1: y = b + Σ_k x[k]·W[k,:] over the nonzero x[k], each thread owning a block of units so
// it streams only its columns of W. Skipping a zero input drops only terms that are exactly zero
// (unless a weight is already infinite or NaN, where the batched product would give NaN).
template <class T>
void single(const T* __restrict x, const T* __restrict w, const T* __restrict b, T* __restrict y,
            int64_t F, int64_t U, int64_t u0, int64_t u1, int64_t* __restrict nz) {
  const size_t n = nonzero_indices(x, F, nz);
  for (int64_t u = u0; u < u1; ++u) y[u] = b ? b[u] : T(0);
  if constexpr (std::is_same_v<T, float>) {
    u0 = dense_blocks<kAccs>(x, nz, n, w, U, y, u0, u1);
    if (u0 == u1) return;
  }
  // Eight (then four) rows per pass over y: fewer loads and stores of y per weight read.
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const T* wr[8];
    T xr[8];
    for (int r = 0; r < 8; ++r) {
      xr[r] = x[nz[i + size_t(r)]];
      wr[r] = w + nz[i + size_t(r)] * U;
    }
    for (int64_t u = u0; u < u1; ++u)
      y[u] += (xr[0] * wr[0][u] + xr[1] * wr[1][u]) + (xr[2] * wr[2][u] + xr[3] * wr[3][u]) +
              (xr[4] * wr[4][u] + xr[5] * wr[5][u]) + (xr[6] * wr[6][u] + xr[7] * wr[7][u]);
  }
  for (; i + 4 <= n; i += 4) {
    const T x0 = x[nz[i]], x1 = x[nz[i + 1]], x2 = x[nz[i + 2]], x3 = x[nz[i + 3]];
    const T* w0 = w + nz[i] * U;
    const T* w1 = w + nz[i + 1] * U;
    const T* w2 = w + nz[i + 2] * U;
    const T* w3 = w + nz[i + 3] * U;
    for (int64_t u = u0; u < u1; ++u) y[u] += x0 * w0[u] + x1 * w1[u] + x2 * w2[u] + x3 * w3[u];
  }
  for (; i < n; ++i) {
    const T xk = x[nz[i]];
    const T* wk = w + nz[i] * U;
    for (int64_t u = u0; u < u1; ++u) y[u] += xk * wk[u];
  }
}

template void single<float>(const float*, const float*, const float*, float*, int64_t, int64_t,
                            int64_t, int64_t, int64_t*);
template void single<double>(const double*, const double*, const double*, double*, int64_t, int64_t,
                             int64_t, int64_t, int64_t*);

}  // namespace dense
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
