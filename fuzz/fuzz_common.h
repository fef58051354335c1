// Shared by the fuzz targets (fuzz/*.cpp): a scratch directory per process for parsers that only
// take a path, and the check that a parser's error is one a user can act on.
//
// Every target runs one parser on bytes libFuzzer makes up. The parser must return or throw an
// error that says what is wrong; a crash, a sanitizer report, a leak, a hang (-timeout) or an
// allocation beyond -malloc_limit_mb is a bug, and so is an exception that escapes with a bare
// library message ("stoi", "vector::_M_range_check"), which tells a user nothing.
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>

namespace bpkit_fuzz {

// A directory of this process under $TMPDIR (or /tmp), removed at exit. Files in it are rewritten
// for every input.
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* env = std::getenv("TMPDIR");
    std::string pattern = std::string(env && *env ? env : "/tmp") + "/bpkit-fuzz-XXXXXX";
    if (!mkdtemp(&pattern[0])) {
      std::perror("bpkit fuzz: mkdtemp");
      std::abort();
    }
    static std::string to_remove;
    to_remove = pattern;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(to_remove, ec);
    });
    return pattern;
  }();
  return dir;
}

// Writes `size` bytes to `name` in the scratch directory; returns the file's path.
inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "bpkit fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// An error message that names nothing: the bare what() of a standard-library, std::sto* or JSON
// library failure that escaped the parser unchecked. Such messages start with the function's
// name; the parsers' own messages start with a file name or say what is wrong in words.
inline bool is_bare_library_message(const std::string& m) {
  static const char* const kExact[] = {"stoi", "stol", "stoll", "stoul",         "stoull",
                                       "stof", "stod", "stold", "std::bad_alloc"};
  static const char* const kStart[] = {"vector::", "basic_string", "map::at", "unordered_map",
                                       "bitset",   "array::at",    "deque::", "[json.exception"};
  if (m.empty()) return true;
  for (const char* b : kExact)
    if (m == b) return true;
  for (const char* b : kStart)
    if (m.rfind(b, 0) == 0) return true;
  return false;
}

// Runs `parse`; any exception is fine if its message says something (see above). Anything else
// escaping aborts, which libFuzzer reports as a crash with the input that caused it. With
// BPKIT_FUZZ_VERBOSE set, every error is printed (to see what a seed or a crash input gets).
template <class F>
void expect_clean(const char* target, F&& parse) {
  try {
    parse();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: std::bad_alloc escaped the parser\n", target);
    std::abort();
  } catch (const std::exception& e) {
    static const bool verbose = std::getenv("BPKIT_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "%s: %s\n", target, e.what());
    if (is_bare_library_message(e.what())) {
      std::fprintf(stderr, "%s: an error without context escaped the parser: '%s'\n", target,
                   e.what());
      std::abort();
    }
  }
}

}  // namespace bpkit_fuzz
