// Network: an ordered stack of layers (a static, feed-forward network).
//
// The network owns one activation and one gradient buffer per layer boundary; after the first
// batch of a given size they are reused, so a training step allocates nothing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpkit/layer.h"

namespace bpkit {

template <class T>
class Network {
 public:
  static constexpr int64_t kInferChunk = 256;

  // `input` is the per-sample input shape, e.g. {1, 28, 28}. `seed` drives every random draw of
  // initialization and of stochastic layers.
  Network(Shape input, uint64_t seed);
  Network(Network&&) noexcept = default;
  Network& operator=(Network&&) noexcept = default;

  // Builds the layer against the current output shape, names it ("<kind><index>" unless named),
  // and initializes it from the network's random stream. Throws ShapeError naming the layer and
  // both shapes on a mismatch.
  Layer<T>& add(std::unique_ptr<Layer<T>> layer, const std::string& name = "");
  // Loaders that overwrite every parameter and buffer (model files) turn the initialization off:
  // layers added afterwards keep their zeros until loaded, and the random stream is not drawn.
  void set_initialize(bool on) { initialize_ = on; }
  template <class L, class... Args>
  L& emplace(Args&&... args) {
    return static_cast<L&>(add(std::make_unique<L>(std::forward<Args>(args)...)));
  }

  // Runs every layer. x is [B, input...]; the result lives until the next forward(). Large
  // inference batches run in chunks of at least kInferChunk samples (about 2 MB of the widest
  // activation), so memory does not grow with the batch.
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode);
  // Sequences: x is [B, T, F...] padded to the longest sequence, `lengths` (when not null) the
  // valid frames of each sample, each in 1..T. When the input shape has a kDynamic dimension, T is
  // that dimension (the width W of line images {C, H, kDynamic}), else the first one. Layers see
  // the lengths through set_lengths(); a dimension declared kDynamic in the input shape accepts any
  // size >= 1. Throws ShapeError for a count of lengths other than B, a length outside 1..T, or an
  // empty sequence. Inference batches with lengths or dynamic dimensions run whole (not in chunks).
  // A layer whose per-sample output is flat (rank 1: a recurrent layer's last or mean state) ends
  // the lengths: the layers above it get none.
  const Tensor<T>& forward(const Tensor<T>& x, Mode mode, const std::vector<int32_t>* lengths);
  // Valid output frames per sample of the latest forward(): the given lengths mapped through every
  // layer's output_length(); without lengths (or when a flat layer ended them), the output's time
  // dimension for every sample when the output is a sequence (per-sample rank >= 2), else empty.
  const std::vector<int32_t>& output_lengths() const { return out_lengths_; }
  // Back-propagates dloss (gradient of the loss w.r.t. the latest forward(kTrain) output),
  // accumulating parameter gradients. The input gradient is not formed (nothing consumes it)
  // unless `input_grad` is given.
  void backward(const Tensor<T>& dloss, Tensor<T>* input_grad = nullptr);
  void zero_grad();
  // Restarts the random streams of stochastic layers (dropout) from `seed`.
  void reseed(uint64_t seed);

  std::vector<Param<T>> params();
  int64_t param_count();
  const Shape& input_shape() const { return input_; }
  const Shape& output_shape() const { return shapes_.back(); }
  // Per-sample output shape of layer i.
  const Shape& shape_after(size_t i) const { return shapes_[i + 1]; }
  size_t size() const { return layers_.size(); }
  Layer<T>& layer(size_t i) { return *layers_[i]; }
  const Layer<T>& layer(size_t i) const { return *layers_[i]; }
  uint64_t seed() const { return seed_; }

 private:
  // Runs the layers on x (forward's loop); returns the last output.
  const Tensor<T>& run_layers(const Tensor<T>& x, Mode mode);

  Shape input_;
  uint64_t seed_;
  Rng rng_;
  bool initialize_ = true;
  std::vector<std::unique_ptr<Layer<T>>> layers_;
  std::vector<Shape> shapes_;  // shapes_[0] = input, shapes_[i+1] = after layer i
  static constexpr size_t kNone = size_t(-1);
  size_t lowest_trained_ = kNone;  // first layer with parameters
  int64_t widest_ = 1;             // largest per-sample size of the input or any layer's output
  std::vector<Tensor<T>> acts_;    // acts_[i] = output of layer i (empty for a pooled convolution)
  // pooled_[i]: layer i is a ReLU-fused convolution that runs together with the 2×2 max pooling
  // after it (Conv2d::forward_pooled): its own output is never stored.
  std::vector<char> pooled_;
  Tensor<T> grads_[2];                         // ping-pong buffers for gradients between layers
  const Tensor<T>* last_input_ = nullptr;      // input of the latest forward(kTrain)
  Tensor<T> chunk_, infer_out_;                // chunked inference: input slice and whole output
  bool dynamic_ = false;                       // the input shape holds a kDynamic dimension
  std::vector<std::vector<int32_t>> lengths_;  // lengths_[0] given, lengths_[i+1] after layer i
  std::vector<int32_t> out_lengths_;
};

}  // namespace bpkit
