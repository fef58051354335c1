// Measures single-precision GEMM throughput for the shapes the engine's benchmarks use, with each
// candidate kernel: OpenBLAS (its own threads), OpenBLAS single-threaded under the engine's split,
// and Eigen. Prints GFLOP/s per shape; BENCHMARKS.md records why the engine uses what it uses.
#include <cblas.h>
#include <omp.h>

#include <Eigen/Core>
#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "bpkit/version.h"
extern "C" void openblas_set_num_threads(int);

struct Shape {
  const char* name;
  int M, N, K;
  bool ta, tb;
};

static double seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class F>
static double gflops(const Shape& s, F&& f) {
  f();
  int reps = 0;
  double t0 = seconds(), t;
  do {
    f();
    ++reps;
    t = seconds() - t0;
  } while (t < 0.3);
  return 2.0 * s.M * s.N * s.K * reps / t / 1e9;
}

static const char kProgram[] = "bench_gemm";

static const char kUsage[] =
    "usage: bench_gemm\n"
    "\n"
    "Measures single-precision GEMM throughput (GFLOP/s) for the shapes of the engine's\n"
    "benchmarks with each candidate kernel: OpenBLAS with its own threads, OpenBLAS\n"
    "single-threaded, OpenBLAS single-threaded under the engine's split of C's columns, and\n"
    "Eigen; one line per shape, each kernel run for at least 0.3 s. Threads: OMP_NUM_THREADS\n"
    "(default every hardware thread).\n"
    "\n"
    "  -h, --help  this text\n"
    "  --version   the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

static int run_program(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    std::fprintf(stderr, "%s: %s '%s' (it takes none; run '%s --help' for usage)\n", kProgram,
                 a.size() > 1 && a[0] == '-' ? "unknown option" : "unexpected argument", a.c_str(),
                 kProgram);
    return 2;
  }
  const Shape shapes[] = {
      {"mlp fc1 fwd  64x256x784", 64, 256, 784, false, true},
      {"mlp fc1 dW  256x784x64", 256, 784, 64, true, false},
      {"mlp fc2 fwd  64x128x256", 64, 128, 256, false, true},
      {"mlp fc2 dX   64x256x128", 64, 256, 128, false, false},
      {"cnn conv2 fwd 64x6272x288", 64, 6272, 288, false, false},
      {"cnn conv2 dW 64x288x6272", 64, 288, 6272, false, true},
      {"cnn conv2 dX 288x6272x64", 288, 6272, 64, true, false},
      {"big 1024^3", 1024, 1024, 1024, false, false},
  };
  int nt = omp_get_max_threads();
  for (const Shape& s : shapes) {
    std::vector<float> A(size_t(s.M) * s.K, 0.5f), B(size_t(s.K) * s.N, 0.25f),
        C(size_t(s.M) * s.N);
    int lda = s.ta ? s.M : s.K, ldb = s.tb ? s.K : s.N;
    auto ta = s.ta ? CblasTrans : CblasNoTrans, tb = s.tb ? CblasTrans : CblasNoTrans;
    openblas_set_num_threads(nt);
    double blas_mt = gflops(s, [&] {
      cblas_sgemm(CblasRowMajor, ta, tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, 0.f,
                  C.data(), s.N);
    });
    openblas_set_num_threads(1);
    double blas_1 = gflops(s, [&] {
      cblas_sgemm(CblasRowMajor, ta, tb, s.M, s.N, s.K, 1.f, A.data(), lda, B.data(), ldb, 0.f,
                  C.data(), s.N);
    });
    // Engine split: each thread computes a block of C's columns with a single-threaded BLAS call.
    double blas_split = gflops(s, [&] {
#pragma omp parallel num_threads(nt)
      {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int n0 = s.N * t / n, n1 = s.N * (t + 1) / n;
        const float* b = s.tb ? B.data() + size_t(n0) * ldb : B.data() + n0;
        cblas_sgemm(CblasRowMajor, ta, tb, s.M, n1 - n0, s.K, 1.f, A.data(), lda, b, ldb, 0.f,
                    C.data() + n0, s.N);
      }
    });
    using RM = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<RM> a(A.data(), s.ta ? s.K : s.M, s.ta ? s.M : s.K),
        b(B.data(), s.tb ? s.N : s.K, s.tb ? s.K : s.N), c(C.data(), s.M, s.N);
    Eigen::setNbThreads(nt);
    double eig = gflops(s, [&] {
      if (s.ta && !s.tb)
        c.noalias() = a.transpose() * b;
      else if (!s.ta && s.tb)
        c.noalias() = a * b.transpose();
      else
        c.noalias() = a * b;
    });
    std::printf(
        "%-28s openblas(%dthr) %6.1f  openblas(1thr) %6.1f  openblas1-split(%d) %6.1f  eigen(%d) "
        "%6.1f GFLOP/s\n",
        s.name, nt, blas_mt, blas_1, nt, blas_split, nt, eig);
  }
  return 0;
}

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  try {
    return run_program(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", kProgram, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown error\n", kProgram);
  }
  return 1;
}
