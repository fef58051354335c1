// The engine's kernels, compiled once per instruction-set level and called through
// BPKIT_ISA_CALL (see bpkit/cpu.h for how the level is chosen).
//
// Each source in engine/src/kernels/ except scratch.cpp is compiled three times (engine/
// CMakeLists.txt), with BPKIT_ISA_NS defined as isa_baseline, isa_avx2 or isa_avx512 and the
// flags of plain x86-64, x86-64-v3 or x86-64-v4; it defines everything inside namespace
// bpkit::BPKIT_ISA_NS (helpers in an anonymous namespace there). Nothing with external linkage
// outside that namespace may be compiled with the wider instructions: an inline function of a
// library header emitted out of line (a std::vector member, say) would be one symbol shared with
// the baseline code, and the linker could keep the AVX-512 copy. So kernels take plain pointers
// and use only what the compiler inlines (memcpy, min, max, fill); thread-local scratch memory
// comes from kernel_scratch. The test isa_kernels_self_contained reads the objects' symbol tables
// and fails if a kernel object defines anything else.
#pragma once

#include <cstddef>
#include <cstdint>

#include "bpkit/cpu.h"
#include "winograd.h"

namespace bpkit {

enum class Activation;

// A thread's scratch buffer number `slot` (0..3), at least n elements, valid until the same
// thread asks for the same slot and type again. Compiled once, for the baseline.
template <class T>
T* kernel_scratch(int slot, size_t n);

#define BPKIT_KERNEL_NS isa_baseline
namespace BPKIT_KERNEL_NS {
#include "api.inc"
}
#undef BPKIT_KERNEL_NS
#define BPKIT_KERNEL_NS isa_avx2
namespace BPKIT_KERNEL_NS {
#include "api.inc"
}
#undef BPKIT_KERNEL_NS
#define BPKIT_KERNEL_NS isa_avx512
namespace BPKIT_KERNEL_NS {
#include "api.inc"
}
#undef BPKIT_KERNEL_NS

}  // namespace bpkit

// Calls the active level's version of a kernel: BPKIT_ISA_CALL(winograd::transform_input<T>, x,
// g, V, ld, t0) calls bpkit::isa_avx512::winograd::transform_input<T>(x, g, V, ld, t0) on an
// AVX-512 machine.
#define BPKIT_ISA_CALL(fn, ...)                                                         \
  (::bpkit::active_isa() == ::bpkit::Isa::avx512 ? ::bpkit::isa_avx512::fn(__VA_ARGS__) \
   : ::bpkit::active_isa() == ::bpkit::Isa::avx2 ? ::bpkit::isa_avx2::fn(__VA_ARGS__)   \
                                                 : ::bpkit::isa_baseline::fn(__VA_ARGS__))
