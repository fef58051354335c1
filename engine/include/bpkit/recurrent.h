// Recurrent layers trained by backpropagation through time, and the per-frame dense layer.
//
// Shapes: B batch, T frames, F input features, H units per direction, D directions (1, or 2 when
// bidirectional), G gates (Elman 1, GRU 3, LSTM 4). Sequences are batch-first [B, T, F]; the
// per-sample shape is {T, F}, where T may be kDynamic (any length). A batch of sequences of
// different lengths is padded to the longest; Network::forward(x, mode, &lengths) hands the valid
// lengths to every layer. Padded frames give zero outputs and receive no gradient, so a padded
// sequence gets the same outputs and gradients as the same sequence alone (to rounding).
// docs/recurrent.md describes the convention, the attributes and the model-file names.
#pragma once

#include <vector>

#include "bpkit/layers.h"

namespace bpkit {

enum class Cell {
  kElman,  // h = tanh(Wx·x + Wh·h₋ + b)
  kLstm,   // gates [i f g o]; c = f⊙c₋ + i⊙g, h = o⊙tanh(c); forget-gate bias starts at 1
  kGru,  // gates [r z n]; n = tanh(Wx_n·x + b_n + r⊙(Wh_n·h₋ + b_hn)), h = (1−z)⊙n + z⊙h₋
};

// What a recurrent layer outputs.
enum class SequenceOutput {
  kSequence,  // every frame: [B, T, D·H] (sequence to sequence)
  kLast,      // the final state of each direction: forward at the last valid frame, backward at
              // frame 0: [B, D·H] (sequence to label)
  kMean,      // the mean of the states over the valid frames: [B, D·H]
};

struct RecurrentOptions {
  bool bidirectional = false;  // a second direction runs from the last valid frame to the first;
                               // outputs are concatenated [forward, backward]
  SequenceOutput output = SequenceOutput::kSequence;
  int64_t bptt = 0;          // truncated BPTT: gradients through the recurrent state stop every
                             // `bptt` frames of each direction's processing order (0 = full BPTT)
  int64_t in_features = -1;  // F, checked against the previous layer when given
};

// An Elman, LSTM or GRU layer, optionally bidirectional. Parameters (names "<layer>.<suffix>"):
//   weight_ih [F, D·G·H]  input projections of every direction, gates side by side (one GEMM
//                         per direction over all the frames computes them)
//   weight_hh [D, H, G·H] recurrent weights of each direction, gates fused
//   bias      [D·G·H]
//   bias_hn   [D·H]       GRU only: the recurrent bias inside r⊙(·)
// Initialized uniform in ±1/√H (as torch.nn.LSTM/GRU/RNN), biases 0, LSTM forget-gate bias 1.
// Threads: one parallel region per pass; with two directions and two threads each direction
// runs on its own thread (projections, time loop and its parameter gradients), otherwise the
// batch is split; batch 1 runs on the calling thread. Nothing is allocated once the buffers have
// grown to the batch's size.
template <class T>
class Recurrent : public Layer<T> {
 public:
  Recurrent(Cell cell, int64_t units, RecurrentOptions options = {});
  std::string kind() const override;  // "rnn", "lstm", "gru"
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void set_lengths(const std::vector<int32_t>* lengths) override;
  // Requires x [B, T, F] with T >= 1 and the lengths of set_lengths() (if any) sized B, in 1..T.
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  void gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                             Tensor<T>& dx) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;

  Cell cell() const { return cell_; }
  int64_t units() const { return h_; }
  const RecurrentOptions& options() const { return opt_; }

 private:
  int64_t gates() const { return cell_ == Cell::kLstm ? 4 : cell_ == Cell::kGru ? 3 : 1; }
  int64_t dirs() const { return opt_.bidirectional ? 2 : 1; }
  int32_t len(int64_t b) const { return has_lengths_ ? lengths_[size_t(b)] : int32_t(t_); }
  void check_input(const Tensor<T>& x) const;
  // The per-frame states [B, T, D·H]: y itself for sequence output, else an internal buffer.
  const T* states(const Tensor<T>& y) const;
  // Runs fn(direction, b0, b1) for each (direction, batch block) of the work split.
  template <class F>
  void split_work(F&& fn);
  void forward_block(const Tensor<T>& x, int64_t d, int64_t b0, int64_t b1, T* hs);
  // Back through time: fills dg_ (and dgh_ for the GRU) from the output gradient, and adds the
  // parameter gradients when `params`.
  void backprop_time(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy, bool params);
  void backward_block(int64_t d, int64_t b0, int64_t b1, const T* hs, const T* dhs);
  // Direction d's parameter gradients; the products on all threads or on the calling one.
  void param_gradients(const Tensor<T>& x, const T* hs, int64_t d, bool all_threads);
  void input_gradient(const Tensor<T>& x, Tensor<T>& dx);

  Cell cell_;
  int64_t h_;
  RecurrentOptions opt_;
  int64_t f_ = 0;          // input features
  int64_t b_ = 0, t_ = 0;  // batch and padded length of the latest forward
  bool has_lengths_ = false;
  std::vector<int32_t> lengths_;
  Tensor<T> wx_, wh_, bias_, bhn_, dwx_, dwh_, dbias_, dbhn_;
  // Caches of the latest forward, [B, T, D, ·]:
  Tensor<T> gates_;                   // pre-activations, then activations in place: [B, T, D·G·H]
  Tensor<T> cell_state_, cell_tanh_;  // LSTM: c and tanh(c), [B, T, D·H]
  Tensor<T> hn_;                      // GRU: Wh_n·h₋ + b_hn, [B, T, D·H]
  Tensor<T> hs_;                      // states when the output is not the sequence
  Tensor<T> rec_;                     // GRU: recurrent products of one step, [B, D·G·H]
  // Backward buffers.
  Tensor<T> dg_;       // gradient of the gate pre-activations (input side), [B, T, D·G·H]
  Tensor<T> dgh_;      // GRU: gradient of the recurrent products, [B, T, D·G·H]
  Tensor<T> dhs_;      // last/mean output: the output gradient spread over frames, [B, T, D·H]
  Tensor<T> dh_next_;  // gradient reaching the previous state, [B, D·H]
  Tensor<T> dc_next_;  // LSTM: gradient reaching the previous cell state, [B, D·H]
  Tensor<T> dh_;       // gradient at the current state, [B, D·H]
  Tensor<T> hprev_;    // each frame's previous state (0 before the first), [B, T, D·H]
  Tensor<T> zeros_;    // [H] zeros: the state before the first frame
};

template <class T>
class Lstm : public Recurrent<T> {
 public:
  explicit Lstm(int64_t units, RecurrentOptions options = {})
      : Recurrent<T>(Cell::kLstm, units, options) {}
};
template <class T>
class Gru : public Recurrent<T> {
 public:
  explicit Gru(int64_t units, RecurrentOptions options = {})
      : Recurrent<T>(Cell::kGru, units, options) {}
};
template <class T>
class ElmanRnn : public Recurrent<T> {
 public:
  explicit ElmanRnn(int64_t units, RecurrentOptions options = {})
      : Recurrent<T>(Cell::kElman, units, options) {}
};

// A dense layer applied to every frame of a sequence: y[B, T, U] = x[B, T, F]·W + b at valid frames
// and 0 at padded ones (which receive no gradient). Parameters as Dense: weight [F, U], bias [U].
// Use it between a recurrent layer and a per-frame loss (CTC): lstm → frame_dense → CTC.
template <class T>
class FrameDense : public Layer<T> {
 public:
  explicit FrameDense(int64_t units, int64_t in_features = -1, bool bias = true);
  std::string kind() const override { return "frame_dense"; }
  Attrs attrs() const override;
  Shape build(const Shape& input) override;
  void init(Rng& rng) override;
  void set_lengths(const std::vector<int32_t>* lengths) override;
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) override;
  void backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                Tensor<T>& dx) override;
  void gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) override;
  std::vector<Param<T>> params() override;
  std::vector<std::pair<std::string, Shape>> stored_shapes(const Shape& input) const override;

 private:
  // dy with padded frames zeroed (dy itself when every frame is valid).
  const T* masked(const Tensor<T>& dy);
  int64_t units_, in_;
  bool bias_;
  bool has_lengths_ = false;
  std::vector<int32_t> lengths_;
  Tensor<T> w_, b_, dw_, db_, dy_masked_;
};

const char* sequence_output_name(SequenceOutput o);
SequenceOutput parse_sequence_output(const std::string& name, const std::string& context);

}  // namespace bpkit
