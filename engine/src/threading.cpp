// The engine's thread pool. Workers are started once and wait for work by spinning for a short
// while (a parallel region a few microseconds after the last one finds them awake: a training step
// runs dozens of regions, an app's batch-1 inference one or two) and then sleep on a condition
// variable. The calling thread always takes part and runs task 0; the other tasks go to whichever
// thread claims them first.
#include "bpkit/threading.h"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bpkit/cpu.h"
#include "bpkit/error.h"

extern "C" void openblas_set_num_threads(int);

namespace bpkit {
namespace {

// A BPKIT_NUM_THREADS that is not a thread count. A static initializer cannot report it, so the
// first num_threads() or parallel region throws it, unless set_num_threads overrides the variable
// first (a program's --threads).
std::string g_env_error;

int default_threads() {
  if (const char* env = std::getenv("BPKIT_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    errno = 0;
    long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && errno == 0 && n >= 1 && n <= 1024) return static_cast<int>(n);
    g_env_error = std::string("BPKIT_NUM_THREADS=") + env +
                  ": expected a whole number of threads from 1 to 1024";
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min(hw, 1024u));
}

thread_local bool t_in_region = false;

// A region of n tasks: task t is fn(t, n, ctx). The split of the work into tasks is fixed by n, so
// the results do not depend on which thread runs which task; any thread of the pool claims the
// next unclaimed task. When the other core is busy elsewhere and a worker starts late (or not at
// all before the caller is done with its own task), the caller runs the worker's task itself
// instead of waiting a scheduler time slice for it.
class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      state_.store(pack(++generation_, 0, 0));
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return int(workers_.size()) + 1; }

  void run(int n, void (*fn)(int, int, void*), void* ctx) {
    fn_ = fn;
    ctx_ = ctx;
    error_ = nullptr;
    done_.store(0, std::memory_order_relaxed);
    // Task 0 is the caller's. Publishes fn_, ctx_ (sequentially consistent).
    state_.store(pack(++generation_, uint32_t(n), 1));
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    t_in_region = true;
    run_task(0, n);
    for (int t, m; (t = claim(generation_, m)) >= 0;) run_task(t, m);
    t_in_region = false;
    // Every claimed task must finish before fn_ and ctx_ are overwritten by the next region.
    // Spinning keeps a hand-off short; yielding lets a worker that holds a task but lost its core
    // to another process run on this one.
    for (int spin = 0; done_.load(std::memory_order_acquire) != n; ++spin) {
      if (spin < 4096)
        _mm_pause();
      else
        std::this_thread::yield();
    }
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // state_: the region's generation (32 bits), its task count (16) and the tasks claimed (16).
  static uint64_t pack(uint32_t gen, uint32_t n, uint32_t claimed) {
    return uint64_t(gen) << 32 | uint64_t(n) << 16 | claimed;
  }
  static uint32_t generation_of(uint64_t s) { return uint32_t(s >> 32); }

  // The next unclaimed task of region `gen` (n: the region's task count), or -1 when none is left
  // or another region began.
  int claim(uint32_t gen, int& n) {
    uint64_t s = state_.load();
    for (;;) {
      const uint32_t tasks = uint32_t(s >> 16) & 0xffff, claimed = uint32_t(s) & 0xffff;
      if (generation_of(s) != gen || claimed >= tasks) return -1;
      if (state_.compare_exchange_weak(s, s + 1)) {
        n = int(tasks);
        return int(claimed);
      }
    }
  }

  // An exception (std::bad_alloc from a scratch buffer, say) is carried to the caller of the
  // region, which rethrows it; the first one wins. The other tasks still run.
  void run_task(int t, int n) {
    try {
      fn_(t, n, ctx_);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    done_.fetch_add(1, std::memory_order_release);
  }

  void work() {
    uint32_t seen = 0;
    t_in_region = true;  // a region started from inside a worker runs on that worker alone
    for (;;) {
      // Spin first (about a millisecond), then sleep until the next region or shutdown.
      for (int spin = 0; generation_of(state_.load()) == seen && spin < (1 << 15); ++spin)
        _mm_pause();
      if (generation_of(state_.load()) == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleepers_.fetch_add(1);
        wake_.wait(lock, [&] { return generation_of(state_.load()) != seen; });
        sleepers_.fetch_sub(1);
      }
      seen = generation_of(state_.load());
      if (stop_) return;
      // A task claimed here keeps the region (and fn_, ctx_) alive until it is done.
      for (int t, n; (t = claim(seen, n)) >= 0;) run_task(t, n);
    }
  }

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> state_{0};
  uint32_t generation_ = 0;   // the caller's count of regions (state_ carries it to the workers)
  std::atomic<int> done_{0};  // tasks of the current region finished
  std::atomic<int> sleepers_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  // Set before the last generation change. Atomic: a worker still on its way from the previous
  // region (it claimed no task, so the caller did not wait for it) reads it while the destructor
  // writes it.
  std::atomic<bool> stop_{false};
  void (*fn_)(int, int, void*) = nullptr;
  void* ctx_ = nullptr;
  std::exception_ptr error_;  // first exception thrown by a task of the current region
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
  if (n < 1)
    throw std::invalid_argument("thread count must be at least 1, got " + std::to_string(n));
  openblas_set_num_threads(1);
  std::lock_guard<std::mutex> lock(g_region_mutex);
  g_env_error.clear();  // the program's own setting replaces BPKIT_NUM_THREADS
  if (n != g_threads) {
    delete g_pool;
    g_pool = nullptr;
  }
  g_threads = n;
}

void check_environment() {
  (void)num_threads();
  (void)active_isa();
}

int num_threads() {
  if (!g_env_error.empty()) throw EnvironmentError(g_env_error);
  return g_threads;
}

void parallel_region(int max_threads, void (*fn)(int, int, void*), void* ctx) {
  if (!g_env_error.empty()) throw EnvironmentError(g_env_error);
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
