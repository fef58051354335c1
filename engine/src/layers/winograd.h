// Winograd minimal filtering F(2×2, 3×3) (Lavin & Gray, 2016) for 3×3, stride-1 convolutions.
//
// Each 2×2 block of outputs ("tile") is computed from a 4×4 input patch with 16 multiplies per
// input/output channel pair instead of 36: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Over channels the 16
// element-wise products become 16 independent matrix products, M[ξ] = U[ξ] · V[ξ], with
//   U[ξ] [K×C]  transformed weights,   V[ξ] [C×T] transformed input patches (T tiles),
// so a convolution layer is three cheap transforms around 16 BLAS calls. The backward passes use
// the exact adjoints of the same transforms: dM = A dY Aᵀ, dV[ξ] = U[ξ]ᵀ·dM[ξ] then d(patch) = B dV
// Bᵀ, and dU[ξ] = dM[ξ]·V[ξ]ᵀ then dg = Gᵀ dU G.
#pragma once

#include <cstdint>

namespace bpkit {
namespace winograd {

// Geometry of one sample: C input channels of H×W, K filters, padding p, output OH×OW (stride 1).
struct Geometry {
  int64_t C, K, H, W, pad, OH, OW;
  int64_t tiles_y() const { return (OH + 1) / 2; }
  int64_t tiles_x() const { return (OW + 1) / 2; }
  int64_t tiles() const { return tiles_y() * tiles_x(); }
};

// U[16][K][C] = G g Gᵀ for each filter g = w[k][c] (3×3).
template <class T>
void transform_weights(const T* w, int64_t K, int64_t C, T* U);
// dw[k][c] += Gᵀ dU[·][k][c] G.
template <class T>
void accumulate_weight_grad(const T* dU, int64_t K, int64_t C, T* dw);

// V[ξ][c][t0 + t] = (Bᵀ d B)[ξ] for the patches of one sample x[C][H][W]; ld is V's row length.
template <class T>
void transform_input(const T* x, const Geometry& g, T* V, int64_t ld, int64_t t0);
// dx[C][H][W] += B dV Bᵀ for every patch of one sample (dx must be cleared by the caller).
template <class T>
void accumulate_input_grad(const T* dV, const Geometry& g, int64_t ld, int64_t t0, T* dx);

// y[K][OH][OW] = Aᵀ M A + bias for one sample (tiles t0 .. t0 + tiles).
template <class T>
void transform_output(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias, T* y);
// dM[ξ][k][t0 + t] = (A dY Aᵀ)[ξ] for one sample's output gradient dy[K][OH][OW].
template <class T>
void transform_output_grad(const T* dy, const Geometry& g, T* dM, int64_t ld, int64_t t0);

// The output transform fused with the ReLU and a 2×2, stride-2 max pooling, for even OH and OW
// (a tile's four outputs are then one pooling window, and tile t is pooled output t):
// y[K][OH/2][OW/2] = the windows' maxima of max(0, Aᵀ M A + bias), and when win is not null the
// winners as Pool2d records them (win[K][OH/2][OW/2], 0..3). The same values as transform_output,
// the ReLU and the pooling one after the other.
template <class T>
void transform_output_pooled(const T* M, const Geometry& g, int64_t ld, int64_t t0, const T* bias,
                             T* y, uint8_t* win);
// Its adjoint: dM[ξ][k][t0 + t] from the pooled gradient dy, sent to each window's winner where
// the pooled output y is positive; adds the bias gradient (Σ of those values per filter) to db.
template <class T>
void transform_pooled_grad(const T* dy, const T* y, const uint8_t* win, const Geometry& g, T* dM,
                           int64_t ld, int64_t t0, T* db);

}  // namespace winograd
}  // namespace bpkit
