// The process-wide thread policy.
//
// One setting, num_threads(), decides how many threads the engine uses (its own pool: workers
// spin briefly between parallel regions, then sleep); the BLAS always runs
// single-threaded underneath (its own pool is switched off at start-up), so the engine's threads
// and the BLAS's never compete for the cores. The default is BPKIT_NUM_THREADS when set, otherwise
// every hardware thread (a BPKIT_NUM_THREADS that is not a number from 1 to 1024 makes
// num_threads() and every parallel region throw EnvironmentError (error.h), naming it, until
// set_num_threads replaces it). Work is split statically: the same thread count gives the same
// partition and therefore bit-identical results.
#pragma once

#include <cstdint>

namespace bpkit {

// Requires n >= 1. Not thread-safe: call it before training or inference starts.
void set_num_threads(int n);
int num_threads();
// Checks the environment's engine settings now (BPKIT_NUM_THREADS unless set_num_threads replaced
// it, BPKIT_ISA), so that a program reports a bad value before it starts work. Throws
// EnvironmentError.
void check_environment();

// Runs f(thread_index, thread_count) on min(num_threads(), max_threads) threads and waits.
// thread_count is the same for every call with the same settings.
void parallel_region(int max_threads, void (*fn)(int, int, void*), void* ctx);

template <class F>
void parallel(int max_threads, F&& f) {
  parallel_region(
      max_threads, [](int t, int n, void* c) { (*static_cast<F*>(c))(t, n); },
      static_cast<void*>(&f));
}

// Splits [0, n) into contiguous blocks, one per thread, using no more threads than keep at least
// `grain` items each; calls f(begin, end) for each block.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t by_grain = grain > 0 ? n / grain : n;
  int max_threads = static_cast<int>(by_grain < 1 ? 1 : (by_grain > 1024 ? 1024 : by_grain));
  parallel(max_threads, [&](int t, int nt) {
    int64_t b = n * t / nt, e = n * (t + 1) / nt;
    if (b < e) f(b, e);
  });
}

}  // namespace bpkit
