// Matrix products on row-major data, the engine's only heavy kernel.
//
// C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, with op = transpose when the flag is set;
// lda/ldb/ldc are row strides as stored. Backed by a single-threaded OpenBLAS call per block
// (BENCHMARKS.md records the measurements behind this choice).
#pragma once

#include <cstdint>

namespace bpkit {

// On the calling thread only.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
          int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

// Same contract; splits C into column blocks across the engine's threads when the product is large
// enough to pay for the hand-off. Deterministic for a fixed thread count.
template <class T>
void gemm_parallel(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                   int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace bpkit
