// What every data generator in tools/ shares: command-line values and per-sample seeds.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bpkit_tools {

// splitmix64: a per-sample seed from (seed, index).
inline uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
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
