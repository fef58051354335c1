#include "bpkit/cpu.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace bpkit {
namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // What -march=x86-64-v4 and -march=x86-64-v3 assume. libgcc's and compiler-rt's checks include
  // the operating system's support (XGETBV) for the wider registers.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi2"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
      __builtin_cpu_supports("f16c") && __builtin_cpu_supports("movbe"))
    return Isa::avx2;
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
    throw std::runtime_error("BPKIT_ISA=" + v +
                             ": expected baseline, avx2 or avx512 (this CPU runs up to " +
                             isa_name(cpu) + ")");
  if (int(want) > int(cpu))
    throw std::runtime_error("BPKIT_ISA=" + v + ": this CPU runs only up to " + isa_name(cpu));
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
