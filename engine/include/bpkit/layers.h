// The static layers. Shapes: B batch, F features, C channels, H×W spatial. Each layer's forward and
// backward sit side by side in engine/src/layers/<kind>.cpp.
#pragma once

#include <vector>

#include "bpkit/layer.h"

namespace bpkit {

enum class Init { kHe, kGlorot };
Init parse_init(const std::string& name, const std::string& context);
const char* init_name(Init init);

// y[B,U] = x[B,F] · W + b, W[F,U] (one row per input feature). F is taken from the input; give
// `in_features` to have the network check it.
template <class T>
class Dense : public Layer<T> {
 public:
  explicit Dense(int64_t units, int64_t in_features = -1, Init init = Init::kHe, bool bias = true);
  std::string kind() const override { return "dense"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;

 private:
  int64_t units_, in_;
  Init init_;
  bool bias_;
  Tensor<T> w_, b_, dw_, db_;
};

namespace winograd {
struct Geometry;
}

// How a convolution is computed. kAuto: Winograd F(2×2, 3×3) for 3×3 stride-1 kernels (2.25×
// fewer multiplies), im2col + GEMM otherwise. Not stored in model files: results agree to rounding.
enum class ConvAlgorithm { kAuto, kIm2col };

// 2-D convolution (cross-correlation): x[B,C,H,W] → y[B,K,OH,OW], W[K,C,k,k], square kernel,
// OH = (H + 2·pad − k)/stride + 1.
// Variable width: built on {C, H, kDynamic} the layer takes any W (at least the kernel, with the
// padding) and outputs {K, OH, kDynamic}; sequence lengths are then widths, mapped by
// output_length() as OW is. Right padding: when the columns beyond a sample's width are zeros (the
// network input's padding), its valid output columns are exactly what it gets alone, the padded
// zeros being the zeros its own zero padding supplies. Deeper in a network the padded columns hold
// other values (bias, activations), which reach only the valid columns within the receptive field
// of the right edge (for 3×3 kernels with padding 1: one column per layer, scaled by the strides).
template <class T>
class Pool2d;

template <class T>
class Conv2d : public Layer<T> {
 public:
  void set_algorithm(ConvAlgorithm a) { algorithm_ = a; }
  // fused_relu: the layer outputs max(0, conv(x)), applied while each sample's output is still in
  // cache (saves the separate activation layer's two passes over the whole batch).
  Conv2d(int64_t filters, int64_t kernel, int64_t stride = 1, int64_t padding = 0,
         Init init = Init::kHe, bool fused_relu = false);
  std::string kind() const override { return "conv2d"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  void gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                             Tensor<T>& dx) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;
  int32_t output_length(int32_t width) const override;

  // Fusion with the 2×2, stride-2 max pooling that follows a ReLU-fused convolution (Network runs
  // such a pair through these calls): each sample's convolution output stays in a per-thread
  // buffer, in cache, and only the pooled output and the pool's winners are written; the backward
  // pass builds each sample's output gradient there from the pooled gradient. Same results as the
  // two layers one after the other (the same operations in the same order), without the
  // full-size activation, its ReLU mask pass and the pool's two passes over it.
  // can_fuse: requires both layers built, `pool` on this layer's output shape.
  bool can_fuse(const Pool2d<T>& pool) const;
  // y: the pool's output (Pool2d::forward's y, winners recorded when training).
  void forward_pooled(const Tensor<T>& x, Pool2d<T>& pool, Tensor<T>& y, Mode mode);
  // y, dy: the pool's output and its gradient. Adds the parameter gradients; writes the input
  // gradient when dx is not null.
  void backprop_pooled(const Tensor<T>& x, const Pool2d<T>& pool, const Tensor<T>& y,
                       const Tensor<T>& dy, Tensor<T>* dx);

 private:
  int64_t filters_, k_, stride_, pad_;
  Init init_;
  bool relu_;
  bool dynamic_width_ = false;
  // Dynamic width: takes the width of x (a batch in forward/backward) and sets w_in_ and ow_.
  void fit_width(const Tensor<T>& x);
  int64_t c_ = 0, h_ = 0, w_in_ = 0, oh_ = 0, ow_ = 0;
  // Per-thread buffers of one sample's output: its gradient masked by y > 0 in the backward pass,
  // the output before pooling in forward_pooled.
  std::vector<Tensor<T>> sample_;
  // The output gradient of sample s as the convolution sees it: dy itself, or with the fused ReLU
  // dy where y > 0 and 0 elsewhere (written to sample_[t]). With `pool`, y and dy are the pool's
  // output and gradient, and the pooled gradient is sent to each window's winner where the pooled
  // output is positive (the same values: a window's winner is its maximum).
  const T* conv_grad(const Tensor<T>& y, const Tensor<T>& dy, int64_t s, int t,
                     const Pool2d<T>* pool);
  // The layer's passes; with `pool` (not null), fused with it as described at can_fuse().
  void forward_impl(const Tensor<T>& x, Tensor<T>& y, Mode mode, Pool2d<T>* pool);
  void backward_impl(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy, Tensor<T>& dx,
                     const Pool2d<T>* pool);
  void gradient_impl(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                     const Pool2d<T>* pool);
  // Where sample s's output goes: y itself, or sample_[t] when it is pooled afterwards.
  T* output_of(Tensor<T>& y, int64_t s, int t, const Pool2d<T>* pool);
  Tensor<T> w_, b_, dw_, db_;
  std::vector<Tensor<T>> col_;      // per-thread im2col buffers [C·k·k, OH·OW]
  std::vector<Tensor<T>> dw_part_;  // per-thread partial weight gradients
  std::vector<Tensor<T>> db_part_;  // per-thread partial bias gradients
  // Winograd path
  ConvAlgorithm algorithm_ = ConvAlgorithm::kAuto;
  Tensor<T> u_;                     // transformed weights [16,K,C]
  Tensor<T> u_src_;                 // the weights u_ was computed from
  void transform_weights();         // u_ from w_, unless u_src_ equals w_
  std::vector<Tensor<T>> wv_, wm_;  // per-thread V [16,C,T] and M [16,K,T] of a chunk
  bool use_winograd() const;
  // Winograd with a fused pooling whose windows are the output tiles (even OH and OW).
  bool pools_tiles(const Pool2d<T>* pool) const { return pool && oh_ % 2 == 0 && ow_ % 2 == 0; }
  winograd::Geometry geometry() const;
  int64_t winograd_chunk() const;
  void prepare_threads();
  // db += the per-thread bias partials of threads 0..used−1, in thread order.
  void add_bias_parts(int used);
  void winograd_forward(const Tensor<T>& x, Tensor<T>& y, Mode mode, Pool2d<T>* pool);
  // Parameter gradients when `weights`, the input gradient when dx is not null.
  void winograd_backprop(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy, bool weights,
                         Tensor<T>* dx, const Pool2d<T>* pool);
};

enum class PoolKind { kMax, kAverage };

// Max or average pooling over kh×kw windows with strides sh, sw, no padding. `kernel` and `stride`
// (default: the kernel) set both directions unless kernel_w / stride_w (default: kernel_w) give
// the width's: {kernel 2, kernel_w 1} halves the height and keeps the width (line recognizers).
// Built on {C, H, kDynamic} it takes any width >= kw; lengths are widths, mapped by
// output_length().
template <class T>
class Pool2d : public Layer<T> {
 public:
  Pool2d(PoolKind kind, int64_t kernel, int64_t stride = -1, int64_t kernel_w = -1,
         int64_t stride_w = -1);
  std::string kind() const override { return kind_ == PoolKind::kMax ? "maxpool2d" : "avgpool2d"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  int32_t output_length(int32_t width) const override;

  // For a convolution fused with this pool (Conv2d::forward_pooled). fusable: 2×2, stride-2 max
  // pooling of a fixed-size input. begin_fused: sizes y [B, C, OH, OW] (and the winners when
  // training). pool_sample: pools sample s's input planes x [C][H][W] into y, recording the
  // winners when training. unpool_sample: sample s's input gradient dx [C][H][W] from its output
  // gradient dy, sent to each window's winner where the output y is positive (the gradient through
  // the ReLU before the pool), 0 elsewhere. The winners are those of the latest training pass.
  bool fusable() const { return fast_max() && !dynamic_width_; }
  void begin_fused(int64_t B, Tensor<T>& y, Mode mode);
  void pool_sample(const T* x, int64_t s, Tensor<T>& y, Mode mode);
  void unpool_sample(const T* dy, const T* y, int64_t s, T* dx) const;
  // Sample s's winners [C][OH][OW] (0..3, row-major in the window), for a convolution that pools
  // its own tiles; valid after begin_fused(kTrain).
  uint8_t* winners(int64_t s) { return winner_.data() + s * c_ * oh_ * ow_; }
  const uint8_t* winners(int64_t s) const { return winner_.data() + s * c_ * oh_ * ow_; }

 private:
  bool fast_max() const {
    return kind_ == PoolKind::kMax && k_ == 2 && stride_ == 2 && kw_ == 2 && sw_ == 2;
  }
  void fit_width(const Tensor<T>& x);
  PoolKind kind_;
  int64_t k_, stride_, kw_, sw_;  // k_, stride_: the height's
  bool dynamic_width_ = false;
  int64_t c_ = 0, h_ = 0, w_ = 0, oh_ = 0, ow_ = 0;
  std::vector<int32_t> argmax_;  // max pooling (other than 2×2/2): input offset of each output
  std::vector<uint8_t> winner_;  // 2×2/2 max pooling: window position (0..3, row-major) of each max
};

// Inverted dropout: in training, zeroes each input with probability p and scales the rest by
// 1/(1−p); identity at inference.
template <class T>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(double p);
  std::string kind() const override { return "dropout"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override { return input; }
  void init(Rng& rng) override { rng_ = rng.split(); }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void hold_randomness(bool hold) override { hold_ = hold; }
  void reseed(Rng& rng) override { rng_ = rng.split(); }

 private:
  double p_;
  Rng rng_;
  bool hold_ = false;
  std::vector<T> mask_;  // 0 or 1/(1−p) per element of the latest training batch
};

// Batch normalization over the batch (and, for [C,H,W] inputs, the spatial positions) of each
// feature/channel: y = γ·(x − μ)/√(σ² + ε) + β. Training uses batch statistics (biased variance)
// and updates running averages with `momentum`; inference uses the running averages. [C,H,W]
// inputs may have a dynamic width (kDynamic); with sequence lengths (widths), training statistics
// cover only each sample's valid columns, so right padding does not shift them.
template <class T>
class BatchNorm : public Layer<T> {
 public:
  explicit BatchNorm(double momentum = 0.1, double eps = 1e-5);
  std::string kind() const override { return "batchnorm"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;
  void gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                             Tensor<T>& dx) override;
  std::vector<std::pair<std::string, Tensor<T>*>> buffers() override;
  void set_lengths(const std::vector<int32_t>* lengths) override;

 private:
  void backprop(const Tensor<T>& dy, bool params, Tensor<T>* dx);
  double momentum_, eps_;
  int64_t channels_ = 0, spatial_ = 1, height_ = 1;  // spatial_ = H·W (W of the latest batch)
  bool dynamic_width_ = false;
  std::vector<int32_t> lengths_;  // valid widths of the latest batch, or empty (all valid)
  Tensor<T> gamma_, beta_, dgamma_, dbeta_, running_mean_, running_var_;
  std::vector<T> mean_, inv_std_;  // of the latest training batch
  std::vector<T> xhat_;            // normalized input of the latest training batch
};

// Flattens the per-sample shape to [F] (reshape to `target` when given). Data is copied once.
template <class T>
class Reshape : public Layer<T> {
 public:
  explicit Reshape(Shape target = {});  // empty target = flatten
  std::string kind() const override { return target_.empty() ? "flatten" : "reshape"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;

 private:
  Shape target_, in_, out_;
};

// Scales each sample to unit Euclidean length: y = x / √(Σx² + ε), over all of the sample's values
// (embeddings for metric learning: distances between them then lie in [0, 2]). Backward:
// dx = (dy − y·(y·dy)) / √(Σx² + ε). ε (default 1e-12) keeps an all-zero sample finite.
template <class T>
class L2Normalize : public Layer<T> {
 public:
  explicit L2Normalize(double eps = 1e-12);
  std::string kind() const override { return "l2_normalize"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;

 private:
  double eps_;
};

// The columns of a feature map as a sequence, for line recognizers (CRNN): x[B,C,H,W] →
// y[B,W,C·H], y[b][w][c·H + h] = x[b][c][h][w]. The width may be dynamic (kDynamic): the output is
// then {kDynamic, C·H}, a sequence for recurrent layers, and sequence lengths (widths) pass
// through unchanged.
template <class T>
class Columns : public Layer<T> {
 public:
  std::string kind() const override { return "columns"; }
  Shape build(const Shape& input) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;

 private:
  int64_t c_ = 0, h_ = 0;
};

enum class Activation { kSigmoid, kTanh, kRelu, kLeakyRelu, kSoftmax };

// Element-wise activations, and softmax over each sample's features.
template <class T>
class ActivationLayer : public Layer<T> {
 public:
  explicit ActivationLayer(Activation a, double slope = 0.01);
  std::string kind() const override;
  Attrs attrs() const override;
  Shape build(const Shape& input) override { return input; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;

 private:
  Activation a_;
  double slope_;  // leaky ReLU's slope for negative inputs
};

}  // namespace bpkit
