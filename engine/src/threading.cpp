#include "bpkit/threading.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>

extern "C" void openblas_set_num_threads(int);

namespace bpkit {
namespace {

int default_threads() {
  if (const char* env = std::getenv("BPKIT_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 4096) return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// The BLAS never starts threads of its own: the engine splits work itself.
int init_policy() {
  openblas_set_num_threads(1);
  return default_threads();
}

int g_threads = init_policy();

}  // namespace

void set_num_threads(int n) {
  if (n < 1)
    throw std::invalid_argument("thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(1);
  g_threads = n;
}

int num_threads() {
  return g_threads;
}

void parallel_region(int max_threads, void (*fn)(int, int, void*), void* ctx) {
  const int n = std::max(1, std::min(g_threads, max_threads));
  if (n == 1 || omp_in_parallel()) {
    fn(0, 1, ctx);
    return;
  }
#pragma omp parallel num_threads(n)
  fn(omp_get_thread_num(), omp_get_num_threads(), ctx);
}

}  // namespace bpkit
