// The engine's thread pool. Workers are started once and wait for work by spinning for a short
// while (a parallel region a few microseconds after the last one finds them awake: a training step
// runs dozens of regions, an app's batch-1 inference one or two) and then sleep on a condition
// variable. The calling thread always takes part as thread 0.
#include "bpkit/threading.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);

namespace bpkit {
namespace {

int default_threads() {
  if (const char* env = std::getenv("BPKIT_NUM_THREADS")) {
    char* end = nullptr;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 1024u));
}

thread_local bool t_in_region = false;

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  void run(int n, void (*fn)(int, int, void*), void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    n_ = n;
    error_ = nullptr;
    pending_.store(int(workers_.size()));
    generation_.fetch_add(1);  // publishes fn_, ctx_, n_ (sequentially consistent)
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    // Every worker acknowledges every region, so none can still be reading this region's job
    // when the next one overwrites it: the caller waits for them even when its own part throws.
    t_in_region = true;
    try {
      fn(0, n, ctx);
    } catch (...) {
      wait_for_workers();
      throw;
    }
    wait_for_workers();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void wait_for_workers() {
    t_in_region = false;
    while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
  }

  void work(int index) {
    uint64_t seen = 0;
    t_in_region = true;  // a region started from inside a worker runs on that worker alone
    for (;;) {
      // Spin first (about a millisecond), then sleep until the next region or shutdown.
      for (int spin = 0; generation_.load() == seen && spin < (1 << 15); ++spin) _mm_pause();
      if (generation_.load() == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        sleepers_.fetch_sub(1);
      }
      seen = generation_.load();
      if (stop_) return;
      if (index < n_) {
        // An exception (std::bad_alloc from a scratch buffer, say) is carried to the caller of
        // the region, which rethrows it; the first one wins.
        try {
          fn_(index, n_, ctx_);
        } catch (...) {
          std::lock_guard<std::mutex> lock(mutex_);
          if (!error_) error_ = std::current_exception();
        }
      }
      pending_.fetch_sub(1, std::memory_order_release);
    }
  }

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // written under mutex_ before the last generation change
  void (*fn_)(int, int, void*) = nullptr;
  void* ctx_ = nullptr;
  int n_ = 0;
  std::exception_ptr error_;  // first exception thrown on a worker in the current region
};

// The BLAS never starts threads of its own: the engine splits work itself.
int init_policy() {
  openblas_set_num_threads(1);
  return default_threads();
}

int g_threads = init_policy();
Pool* g_pool = nullptr;  // created on first use; replaced when the thread count changes
// One region runs on the pool at a time: a second application thread that starts one waits for
// the first (its result is the same as if it had run alone).
std::mutex g_region_mutex;

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(1);
  std::lock_guard<std::mutex> lock(g_region_mutex);
  if (n != g_threads) {
    delete g_pool;
    g_pool = nullptr;
  }
  g_threads = n;
}

int num_threads() { return g_threads; }

void parallel_region(int max_threads, void (*fn)(int, int, void*), void* ctx) {
  const int n = std::max(1, std::min(g_threads, max_threads));
  if (n == 1 || t_in_region) {
    fn(0, 1, ctx);
    return;
  }
  std::lock_guard<std::mutex> lock(g_region_mutex);
  if (!g_pool) g_pool = new Pool(g_threads);
  g_pool->run(n, fn, ctx);
}

}  // namespace bpkit
