// Winograd minimal filtering F(2×2, 3×3) (Lavin & Gray, 2016) for 3×3, stride-1 convolutions.
//
// Each 2×2 block of outputs ("tile") is computed from a 4×4 input patch with 16 multiplies per
// input/output channel pair instead of 36: Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A. Over channels the 16
// element-wise products become 16 independent matrix products, M[ξ] = U[ξ] · V[ξ], with
//   U[ξ] [K×C]  transformed weights,   V[ξ] [C×T] transformed input patches (T tiles),
// so a convolution layer is three cheap transforms around 16 BLAS calls. The backward passes use
// the exact adjoints of the same transforms: dM = A dY Aᵀ, dV[ξ] = U[ξ]ᵀ·dM[ξ] then d(patch) = B dV
// Bᵀ, and dU[ξ] = dM[ξ]·V[ξ]ᵀ then dg = Gᵀ dU G. The transforms are kernels (api.inc).
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

}  // namespace winograd
}  // namespace bpkit
