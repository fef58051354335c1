// Model files (.bpk): one network, its weights and free-form metadata.
//
// Format version 1, all integers little-endian:
//   magic      8 bytes  "BPKITMDL"
//   version    u32      1
//   dtype      u32      4 = float32, 8 = float64 (tensor element size)
//   arch       u64 n + n bytes UTF-8: line 1 "input D0,D1,...", line 2 "seed S", then one line per
//              layer "<kind> name=<name> key=value ..." (the layer's attrs)
//   tensors    u32 count, then per tensor: u32 name length, name, u32 rank, rank × i64 dims,
//              elements (dtype size each)
//   metadata   u64 n + n bytes: "key=value" lines (training settings, accuracy, dates)
//   checksum   u32      CRC-32 (zlib polynomial) of every byte before it
// Readers refuse a newer version, a foreign magic, a bad checksum, a truncated file, and any
// length that exceeds what remains of the file, naming the file and the problem. Before a layer
// is built (and allocates), the parameters its attributes declare (Layer::stored_shapes) must be
// stored in the file with those shapes, so a few bytes declaring a huge layer allocate nothing;
// attribute integers outside 1..2^31-1 (or their own range) are errors naming the layer and the
// attribute. A NaN or infinite value in any stored tensor is refused, naming the tensor.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bpkit/network.h"

namespace bpkit {

constexpr uint32_t kModelFormatVersion = 1;

using Metadata = std::vector<std::pair<std::string, std::string>>;

// Named tensors stored besides the layers' own (checkpoints: optimizer state, best weights).
template <class T>
using ExtraTensors = std::vector<std::pair<std::string, Tensor<T>>>;

// Writes atomically: a temporary file in the same directory, fsync, rename. Throws FileError.
// `extra` tensors are stored under "extra:<name>" (a checkpoint is a model file with extras).
template <class T>
void save_model(const Network<T>& net, const std::string& path, const Metadata& meta = {},
                const ExtraTensors<T>& extra = {});

template <class T>
struct LoadedModel {
  Network<T> net;
  Metadata meta;
  ExtraTensors<T> extra;  // sorted by name, without the "extra:" prefix
};

// Throws FileError naming `path` and what is wrong with it.
template <class T>
LoadedModel<T> load_model(const std::string& path);

// Writes `bytes` to `path` atomically: a temporary file under a unique name (O_EXCL, so threads
// and processes writing the same path never share one), fsync, rename, fsync of the directory.
// Readers see the old file or the new one, never a part. Throws FileError.
void write_file_atomically(const std::string& path, const std::string& bytes);

}  // namespace bpkit
