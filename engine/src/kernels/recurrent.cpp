// The recurrent cells' element-wise math and the batch-1 recurrent product (api.inc), compiled
// once per instruction-set level (kernels.h).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels.h"

namespace bpkit {
namespace BPKIT_ISA_NS {
namespace rnn {
namespace {

// exp for float in a form GCC vectorizes (no libm call, no branch): Cephes' range reduction to
// r in [−ln2/2, ln2/2] and degree-6 polynomial (about 1 ulp), the power of two built in the
// exponent bits. n is rounded by adding and subtracting 1.5·2²³ (std::floor would be a call that
// stops vectorization). Inputs are clamped to the range where the result is a normal float.
inline float exp_fast(float x) {
  x = std::min(std::max(x, -87.3f), 88.3f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

// Float: the vectorizable forms (training and inference speed); double: libm (gradient checks).
inline float sigmoid(float x) {
  return 1.0f / (1.0f + exp_fast(-x));
}
inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline float tanh_act(float x) {
  return 2.0f / (1.0f + exp_fast(-2.0f * x)) - 1.0f;
}
inline double tanh_act(double x) {
  return std::tanh(x);
}

}  // namespace

// ---- Cell math, one sample's row at a time. Plain loops over restrict pointers, so each loop
// ---- compiles to vector code (a lambda capturing the pointers by reference would not).

// Elman: a[H] holds Wx·x + Wh·h₋; h = tanh(a + b).
template <class T>
void elman_forward_row(const T* __restrict a, const T* __restrict bias, T* __restrict h,
                       int64_t H) {
  for (int64_t j = 0; j < H; ++j) h[j] = tanh_act(a[j] + bias[j]);
}
template <class T>
void elman_backward_row(const T* __restrict h, const T* __restrict dh, T* __restrict dg,
                        int64_t H) {
  for (int64_t j = 0; j < H; ++j) dg[j] = dh[j] * (T(1) - h[j] * h[j]);
}

// LSTM: a[4H] = [i f g o] pre-activations without bias in, activations out.
template <class T>
void lstm_forward_row(T* __restrict a, const T* __restrict bias, const T* __restrict cp,
                      T* __restrict c, T* __restrict tc, T* __restrict h, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) a[j] = sigmoid(a[j] + bias[j]);
  for (int64_t j = 2 * H; j < 3 * H; ++j) a[j] = tanh_act(a[j] + bias[j]);
  for (int64_t j = 3 * H; j < 4 * H; ++j) a[j] = sigmoid(a[j] + bias[j]);
  const T* __restrict i = a;
  const T* __restrict f = a + H;
  const T* __restrict g = a + 2 * H;
  const T* __restrict o = a + 3 * H;
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * cp[j] + i[j] * g[j];
  for (int64_t j = 0; j < H; ++j) tc[j] = tanh_act(c[j]);
  for (int64_t j = 0; j < H; ++j) h[j] = o[j] * tc[j];
}
// dh: gradient at h; dc: in, the gradient reaching c from the next frame; out, the gradient for
// c₋. dg[4H]: gradient of the pre-activations.
template <class T>
void lstm_backward_row(const T* __restrict a, const T* __restrict cp, const T* __restrict tc,
                       const T* __restrict dh, T* __restrict dc, T* __restrict dg, int64_t H) {
  const T* __restrict i = a;
  const T* __restrict f = a + H;
  const T* __restrict g = a + 2 * H;
  const T* __restrict o = a + 3 * H;
  for (int64_t j = 0; j < H; ++j) {
    const T dcj = dc[j] + dh[j] * o[j] * (T(1) - tc[j] * tc[j]);
    dg[j] = dcj * g[j] * i[j] * (T(1) - i[j]);
    dg[H + j] = dcj * cp[j] * f[j] * (T(1) - f[j]);
    dg[2 * H + j] = dcj * i[j] * (T(1) - g[j] * g[j]);
    dg[3 * H + j] = dh[j] * tc[j] * o[j] * (T(1) - o[j]);
    dc[j] = dcj * f[j];
  }
}

// GRU: p[3H] = Wx·x (input side, [r z n]) in, activations [r z n] out; rec[3H] = Wh·h₋ without
// bias; hn = rec_n + b_hn is kept for backward.
template <class T>
void gru_forward_row(T* __restrict p, const T* __restrict rec, const T* __restrict bias,
                     const T* __restrict bhn, const T* __restrict hp, T* __restrict hn,
                     T* __restrict h, int64_t H) {
  for (int64_t j = 0; j < 2 * H; ++j) p[j] = sigmoid(p[j] + bias[j] + rec[j]);
  const T* __restrict r = p;
  const T* __restrict z = p + H;
  T* __restrict n = p + 2 * H;
  for (int64_t j = 0; j < H; ++j) hn[j] = rec[2 * H + j] + bhn[j];
  for (int64_t j = 0; j < H; ++j) n[j] = tanh_act(n[j] + bias[2 * H + j] + r[j] * hn[j]);
  for (int64_t j = 0; j < H; ++j) h[j] = n[j] + z[j] * (hp[j] - n[j]);
}
// dgx: gradient of the input-side pre-activations; dgh: of the recurrent products; dhp: the
// direct part of the gradient for h₋ (the rest is dgh·Whᵀ).
template <class T>
void gru_backward_row(const T* __restrict a, const T* __restrict hn, const T* __restrict hp,
                      const T* __restrict dh, T* __restrict dgx, T* __restrict dgh,
                      T* __restrict dhp, int64_t H) {
  const T* __restrict r = a;
  const T* __restrict z = a + H;
  const T* __restrict n = a + 2 * H;
  for (int64_t j = 0; j < H; ++j) {
    const T dnp = dh[j] * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
    const T drp = dnp * hn[j] * r[j] * (T(1) - r[j]);
    const T dzp = dh[j] * (hp[j] - n[j]) * z[j] * (T(1) - z[j]);
    dgx[j] = drp;
    dgx[H + j] = dzp;
    dgx[2 * H + j] = dnp;
    dgh[j] = drp;
    dgh[H + j] = dzp;
    dgh[2 * H + j] = dnp * r[j];
    dhp[j] = dh[j] * z[j];
  }
}

// y[N] += Σ_k x[k]·W[k, :] for W [K, N] row-major: eight rows of W per pass over y, so y stays in
// L1 while W streams (at batch 1 the recurrent step is this product, 128×512 for the benchmark's
// LSTM).
template <class T>
void gemv_add(const T* __restrict x, const T* __restrict w, T* __restrict y, int64_t K, int64_t N) {
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    const T* __restrict w0 = w + k * N;
    const T x0 = x[k], x1 = x[k + 1], x2 = x[k + 2], x3 = x[k + 3];
    const T x4 = x[k + 4], x5 = x[k + 5], x6 = x[k + 6], x7 = x[k + 7];
    for (int64_t n = 0; n < N; ++n)
      y[n] += (x0 * w0[n] + x1 * w0[N + n]) + (x2 * w0[2 * N + n] + x3 * w0[3 * N + n]) +
              (x4 * w0[4 * N + n] + x5 * w0[5 * N + n]) + (x6 * w0[6 * N + n] + x7 * w0[7 * N + n]);
  }
  for (; k < K; ++k) {
    const T xk = x[k];
    const T* __restrict wk = w + k * N;
    for (int64_t n = 0; n < N; ++n) y[n] += xk * wk[n];
  }
}

// out += a.
template <class T>
void add_to(T* __restrict out, const T* __restrict a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] += a[j];
}

template <class T>
void add_rows(const T* __restrict a, const T* __restrict b, T* __restrict out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = a[j] + b[j];
}

// out[k] += Σ_r m[r·ld + k] for k in [k0, k1).
template <class T>
void add_column_sums(const T* __restrict m, int64_t rows, int64_t ld, int64_t k0, int64_t k1,
                     T* __restrict out) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* __restrict row = m + r * ld;
    for (int64_t k = k0; k < k1; ++k) out[k] += row[k];
  }
}

#define BPKIT_RNN_KERNELS(T)                                                                      \
  template void elman_forward_row<T>(const T*, const T*, T*, int64_t);                            \
  template void elman_backward_row<T>(const T*, const T*, T*, int64_t);                           \
  template void lstm_forward_row<T>(T*, const T*, const T*, T*, T*, T*, int64_t);                 \
  template void lstm_backward_row<T>(const T*, const T*, const T*, const T*, T*, T*, int64_t);    \
  template void gru_forward_row<T>(T*, const T*, const T*, const T*, const T*, T*, T*, int64_t);  \
  template void gru_backward_row<T>(const T*, const T*, const T*, const T*, T*, T*, T*, int64_t); \
  template void gemv_add<T>(const T*, const T*, T*, int64_t, int64_t);                            \
  template void add_to<T>(T*, const T*, int64_t);                                                 \
  template void add_rows<T>(const T*, const T*, T*, int64_t);                                     \
  template void add_column_sums<T>(const T*, int64_t, int64_t, int64_t, int64_t, T*);
BPKIT_RNN_KERNELS(float)
BPKIT_RNN_KERNELS(double)

}  // namespace rnn
}  // namespace BPKIT_ISA_NS
}  // namespace bpkit
