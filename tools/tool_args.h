// What every data generator in tools/ shares: command-line values and per-sample seeds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

// Programs that link the engine also map its environment errors (BPKIT_NUM_THREADS, BPKIT_ISA) to
// the configuration exit status; the data generators that do not link it have none to map.
#if __has_include("bpkit/error.h")
#include "bpkit/error.h"
#define BPKIT_TOOLS_ENGINE 1
#endif

namespace bpkit_tools {

// splitmix64: a per-sample seed from (seed, index).
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// "PROGRAM: MSG (run 'PROGRAM --help' for usage)" on stderr, exit status 2.
[[noreturn]] inline void usage_error(const char* program, const std::string& msg) {
  std::fprintf(stderr, "%s: %s (run '%s --help' for usage)\n", program, msg.c_str(), program);
  std::exit(2);
}

// "PROGRAM: PATH: why" on stderr; returns 1 (the exit status of a runtime failure).
inline int fail(const char* program, const std::string& path, const std::string& why) {
  std::fprintf(stderr, "%s: %s: %s\n", program, path.c_str(), why.c_str());
  return 1;
}

// main's body: `body()`'s status, or, when an exception escapes it, "PROGRAM: what" and status 1
// (2 for a BPKIT_* environment variable the engine cannot use; never an abort).
template <class Body>
int guarded(const char* program, Body&& body) {
  try {
    return body();
#ifdef BPKIT_TOOLS_ENGINE
  } catch (const bpkit::EnvironmentError& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 2;
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
  } catch (...) {
    std::fprintf(stderr, "%s: unknown error\n", program);
  }
  return 1;
}

// Command-line values for the tools: argv[i]'s value, integers and reals in a range; a missing or
// bad value prints "PROGRAM: OPTION ..." and exits with 2.
struct ArgReader {
  const char* program;
  int argc;
  char** argv;
  int i = 0;
  std::string value() {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n", program, argv[i]);
      std::exit(2);
    }
    return argv[++i];
  }
  long long number(const std::string& option, const std::string& v, long long lo,
                   long long hi) const {
    char* end = nullptr;
    const long long n = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end || n < lo || n > hi) {
      std::fprintf(stderr, "%s: %s expects a number in %lld..%lld, got '%s'\n", program,
                   option.c_str(), lo, hi, v.c_str());
      std::exit(2);
    }
    return n;
  }
  double real(const std::string& option, const std::string& v, double lo, double hi) const {
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(x >= lo && x <= hi)) {
      std::fprintf(stderr, "%s: %s expects a number in %g..%g, got '%s'\n", program, option.c_str(),
                   lo, hi, v.c_str());
      std::exit(2);
    }
    return x;
  }
};

}  // namespace bpkit_tools
