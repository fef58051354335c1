// Layer: the unit a network is built from.
//
// Three duties, kept apart as in mlpack: forward (x → y), backward (dy → dx, the gradient for the
// input) and gradient (dy → parameter gradients, accumulated with += into grad buffers that only
// Network::zero_grad() clears). Tensors carry the batch as their first dimension; shapes passed to
// build() are per-sample.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpkit/attrs.h"
#include "bpkit/random.h"
#include "bpkit/tensor.h"

namespace bpkit {

enum class Mode { kTrain, kInfer };

template <class T>
struct Param {
  std::string name;   // "fc1.weight"
  Tensor<T>* value;   // updated in place by optimizers
  Tensor<T>* grad;    // same shape as value
  bool decay = true;  // weight decay applies (false for biases and normalization parameters)
};

template <class T>
class Layer {
 public:
  virtual ~Layer() = default;

  // The kind as written in model files: "dense", "conv2d", "relu", ...
  virtual std::string kind() const = 0;
  // Configuration that, with kind(), rebuilds this layer through make_layer().
  virtual Attrs attrs() const { return {}; }

  // Takes the per-sample input shape, allocates parameters and returns the per-sample output shape.
  // Called once, by Network::add. Throws ShapeError naming the layer and both shapes on a mismatch.
  virtual Shape build(const Shape& input) = 0;
  // Draws initial parameters (and seeds stochastic layers). Called once, after build.
  virtual void init(Rng&) {}

  // Requires x's per-sample shape to equal build()'s input. Resizes y.
  virtual void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) = 0;
  // Requires the x, y of the latest forward(kTrain) and dy shaped like y, dx sharing storage with
  // none of them (a layer may resize or write dx before it has read all of dy). Resizes and writes
  // dx.
  virtual void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                        Tensor<T>& dx) = 0;
  // Adds this batch's parameter gradients to the grad buffers. Same requirements as backward.
  virtual void gradient(const Tensor<T>& /*x*/, const Tensor<T>& /*y*/, const Tensor<T>& /*dy*/) {}
  // gradient() then backward(), for the network's use when it needs both; a layer that shares
  // work between the two (a convolution's transformed output gradient) overrides it.
  virtual void gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                                     Tensor<T>& dx) {
    gradient(x, y, dy);
    backward(x, y, dy, dx);
  }

  virtual std::vector<Param<T>> params() { return {}; }
  // Non-trained tensors that a model file must keep (batch-norm running statistics).
  virtual std::vector<std::pair<std::string, Tensor<T>*>> buffers() { return {}; }
  // The names and shapes of the params() and buffers() that build(input) would allocate, in that
  // order, computed without allocating: a model loader compares them with the tensors a file
  // stores before building, so a few bytes declaring a huge layer cannot make it allocate. Needs
  // the name set. On an input build() refuses, the result is unspecified (build() then throws),
  // but never overflows: attributes made by make_layer() are at most 2^31 − 1.
  virtual std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& /*input*/) const {
    return {};
  }
  // Sequence layers ([B, T, F] inputs, batches padded to the longest sequence): the per-sample
  // valid lengths of the next forward(), each in 1..T, or null when every frame is valid. The
  // network calls it before every forward(); a layer that honours it copies the values and keeps
  // them for backward(). Layers that treat frames independently need not override it.
  virtual void set_lengths(const std::vector<int32_t>* /*lengths*/) {}
  // The valid output length for an input of `length` valid frames (strided layers over time
  // override it).
  virtual int32_t output_length(int32_t length) const { return length; }
  // Stochastic layers keep their current random draws for every later forward while held
  // (gradient checks need the same function on every evaluation). No effect on other layers.
  virtual void hold_randomness(bool) {}
  // Stochastic layers restart their random stream from `rng` (the trainer does this at the start of
  // every epoch, so an epoch's draws do not depend on the epochs before it). No effect on others.
  virtual void reseed(Rng&) {}

  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  // "layer 'fc1' (dense)", for error messages.
  std::string describe() const { return "layer '" + name_ + "' (" + kind() + ")"; }

 private:
  std::string name_;
};

// Builds a layer of the given kind from its attributes (the inverse of kind() + attrs()).
// Throws ShapeError for an unknown kind or a bad attribute.
template <class T>
std::unique_ptr<Layer<T>> make_layer(const std::string& kind, const Attrs& attrs);

}  // namespace bpkit
