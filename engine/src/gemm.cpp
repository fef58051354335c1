#include "bpkit/gemm.h"

#include <cblas.h>

#include <algorithm>

#include "bpkit/threading.h"

namespace bpkit {
namespace {

// The precision-specific CBLAS entry points behind one name each.
void cblas_gemv(CBLAS_TRANSPOSE t, int m, int n, float alpha, const float* a, int lda,
                const float* x, int incx, float beta, float* y, int incy) {
  cblas_sgemv(CblasRowMajor, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
void cblas_gemv(CBLAS_TRANSPOSE t, int m, int n, double alpha, const double* a, int lda,
                const double* x, int incx, double beta, double* y, int incy) {
  cblas_dgemv(CblasRowMajor, t, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha,
                const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void cblas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
                const double* a, int lda, const double* b, int ldb, double beta, double* c,
                int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// A matrix-vector product when one side of C is a single row or column: OpenBLAS's GEMM would pack
// the whole matrix first, which costs more than the product itself at batch 1.
template <class T>
void blas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 1) {  // c[N] = op(B)ᵀ · a: a is A's only row (or column when ta)
    cblas_gemv(tb ? CblasNoTrans : CblasTrans, int(tb ? N : K), int(tb ? K : N), alpha, B, int(ldb),
               A, ta ? int(lda) : 1, beta, C, 1);
  } else if (N == 1) {  // c[M] = op(A) · b: b is B's only column (or row when tb)
    cblas_gemv(ta ? CblasTrans : CblasNoTrans, int(ta ? K : M), int(ta ? M : K), alpha, A, int(lda),
               B, tb ? 1 : int(ldb), beta, C, int(ldc));
  } else {
    cblas_gemm(ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N),
               int(K), alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
  }
}

// Below this many multiply-adds a second thread costs more to wake than it saves. Matrix-vector
// products are bound by reading the matrix, so splitting pays off sooner: each core then streams
// only its half from its own cache.
constexpr int64_t kParallelMacs = 1 << 18;
constexpr int64_t kParallelGemvMacs = 1 << 15;

}  // namespace

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <class T>
void gemm_parallel(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  const int64_t macs = M * N * K;
  const bool vector = M == 1 || N == 1;
  if (num_threads() == 1 || macs < (vector ? kParallelGemvMacs : kParallelMacs)) {
    blas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // Split the larger of C's two dimensions into blocks of whole 16-element panels, so every thread
  // runs the BLAS's full-width kernels on its own block and no reduction is needed.
  const bool by_cols = N >= M;
  const int64_t extent = by_cols ? N : M;
  const int64_t panels = (extent + 15) / 16;
  parallel(int(std::min<int64_t>(panels, 1024)), [&](int t, int nt) {
    const int64_t b = std::min(extent, panels * t / nt * 16);
    const int64_t e = std::min(extent, panels * (t + 1) / nt * 16);
    if (b >= e) return;
    if (by_cols) {
      const T* Bb = tb ? B + b * ldb : B + b;
      blas(ta, tb, M, e - b, K, alpha, A, lda, Bb, ldb, beta, C + b, ldc);
    } else {
      const T* Ab = ta ? A + b : A + b * lda;
      blas(ta, tb, e - b, N, K, alpha, Ab, lda, B, ldb, beta, C + b * ldc, ldc);
    }
  });
}

#define BPKIT_GEMM(T)                                                                          \
  template void gemm<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t, const T*, \
                        int64_t, T, T*, int64_t);                                              \
  template void gemm_parallel<T>(bool, bool, int64_t, int64_t, int64_t, T, const T*, int64_t,  \
                                 const T*, int64_t, T, T*, int64_t);
BPKIT_GEMM(float)
BPKIT_GEMM(double)

}  // namespace bpkit
