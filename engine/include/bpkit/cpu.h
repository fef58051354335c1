// Which instruction set the engine's own kernels use, chosen at run time.
//
// The default build compiles for plain x86-64, so its programs run on any x86-64 machine. The
// kernels that gain from wider vectors (engine/CMakeLists.txt lists them as BPKIT_ISA_SOURCES) are
// compiled once more for AVX2 + FMA (x86-64-v3) and once more for AVX-512 F/VL/BW/DQ/CD
// (x86-64-v4); each call goes to the best version this CPU and its operating system support.
// BPKIT_ISA=baseline|avx2|avx512 caps the choice (to compare or test the versions on one machine);
// asking for more than the CPU has is an error. OpenBLAS makes the same choice for the matrix
// products on its own.
#pragma once

namespace bpkit {

enum class Isa : int { baseline = 0, avx2 = 1, avx512 = 2 };

// "baseline", "avx2" or "avx512".
const char* isa_name(Isa isa);
// The best level this CPU and operating system run.
Isa cpu_isa();
// The level the kernels use: cpu_isa(), or BPKIT_ISA when set (read once; an unknown value or one
// the CPU lacks throws EnvironmentError (error.h), naming the variable and what this CPU offers).
Isa active_isa();
// Selects the kernels' level for the rest of the process (tests and benchmarks compare levels
// with it). Throws std::invalid_argument when the CPU cannot run it. Not thread-safe: call it
// between computations, like set_num_threads.
void set_active_isa(Isa isa);

}  // namespace bpkit
