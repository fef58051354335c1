// The engine's exception types. Every message says what failed, where (layer, file, key) and what
// was expected, so a user can act on it without a debugger.
#pragma once

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace bpkit {

// A network was assembled from parts that do not fit (shapes, unknown layer kind, bad attribute).
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// A file could not be read or written, or its content is not what was expected.
struct FileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// A BPKIT_* environment variable holds a value the engine cannot use (BPKIT_NUM_THREADS=abc,
// BPKIT_ISA=avx9, or an instruction set this CPU lacks): a configuration mistake, exit code 2 in
// every program.
struct EnvironmentError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Training stopped because the loss or a gradient stopped being finite.
struct DivergenceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Why `path` could not be opened for reading, for messages: "a directory, not a file", or the
// system's reason for `err` (errno after the failed open: "No such file or directory",
// "Permission denied", ...).
inline std::string open_failure(const std::string& path, int err) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return "a directory, not a file";
  return err ? std::strerror(err) : "cannot open it";
}

}  // namespace bpkit
