#include "bpkit/cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "bpkit/error.h"

namespace bpkit {
namespace {

#if defined(__x86_64__) || defined(__i386__)
// What x86-64-v3 adds beyond AVX2, FMA and BMI1/2, read from CPUID directly (clang's
// __builtin_cpu_supports knows none of the three): F16C and MOVBE (leaf 1, ECX bits 29 and 22),
// LZCNT (leaf 0x80000001, ECX bit 5).
bool has_f16c_movbe_lzcnt() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool f16c = c & (1u << 29), movbe = c & (1u << 22);
  if (!__get_cpuid(0x80000001u, &a, &b, &c, &d)) return false;
  return f16c && movbe && (c & (1u << 5));
}
#endif

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // What -march=x86-64-v4 and -march=x86-64-v3 assume. libgcc's and compiler-rt's checks include
  // the operating system's support (XGETBV) for the wider registers.
  const bool v3 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  has_f16c_movbe_lzcnt();
  if (v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd"))
    return Isa::avx512;
  if (v3) return Isa::avx2;
#endif
  return Isa::baseline;
}

Isa from_environment() {
  const Isa cpu = cpu_isa();
  const char* env = std::getenv("BPKIT_ISA");
  if (!env || !*env) return cpu;
  const std::string v = env;
  Isa want;
  if (v == "baseline")
    want = Isa::baseline;
  else if (v == "avx2")
    want = Isa::avx2;
  else if (v == "avx512")
    want = Isa::avx512;
  else
    throw EnvironmentError("BPKIT_ISA=" + v +
                             ": expected baseline, avx2 or avx512 (this CPU runs up to " +
                             isa_name(cpu) + ")");
  if (int(want) > int(cpu))
    throw EnvironmentError("BPKIT_ISA=" + v + ": this CPU runs only up to " + isa_name(cpu));
  return want;
}

// -1 until first asked for.
std::atomic<int> g_active{-1};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline:
      return "baseline";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

Isa cpu_isa() {
  static const Isa isa = detect();
  return isa;
}

Isa active_isa() {
  int v = g_active.load(std::memory_order_relaxed);
  if (v < 0) {
    static const Isa env = from_environment();
    int expected = -1;
    g_active.compare_exchange_strong(expected, int(env));
    v = g_active.load(std::memory_order_relaxed);
  }
  return Isa(v);
}

void set_active_isa(Isa isa) {
  if (int(isa) > int(cpu_isa()))
    throw std::invalid_argument(std::string("set_active_isa: this CPU runs only up to ") +
                                isa_name(cpu_isa()) + ", not " + isa_name(isa));
  g_active.store(int(isa), std::memory_order_relaxed);
}

}  // namespace bpkit
