// The engine's exception types. Every message says what failed, where (layer, file, key) and what
// was expected, so a user can act on it without a debugger.
#pragma once

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
// Training stopped because the loss or a gradient stopped being finite.
struct DivergenceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace bpkit
