// Recurrent layers (Elman, LSTM, GRU) trained by backpropagation through time.
//
// Shapes: B batch, T frames, F features, H units, D directions, G gates, GH = G·H. Buffers are
// [B, T, D, ·] row-major, so frame t of sample b in direction d starts at ((b·T + t)·D + d)·width.
//
// Forward: per direction, one GEMM computes the input projections of every frame of the batch
// block (x[B·T, F] · Wx[F, d]) into gates_; then the direction walks its frames, adding h₋·Wh[d]
// to the frame's gate block with a GEMM over the block's rows (strided: ldc = T·D·GH; a GEMV at
// batch 1), and applies the cell's element-wise math row by row. Backward walks the frames the
// other way, forming the gate gradients dg_ frame by frame (the only part that must be
// sequential); the weight gradients and the input gradient are then one GEMM each over all frames.
//
// Padded frames (t >= length) are skipped: their states are written as zeros, their gate
// gradients are zero, and the backward direction of a padded sample starts at its own last frame
// with a zero state, exactly as it would alone.
#include "bpkit/recurrent.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "bpkit/error.h"
#include "bpkit/gemm.h"
#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {
namespace {

void check_lengths(const std::vector<int32_t>& lengths, int64_t B, int64_t T,
                   const std::string& who) {
  if (int64_t(lengths.size()) != B)
    throw ShapeError(who + ": " + std::to_string(lengths.size()) +
                     " sequence lengths for a batch of " + std::to_string(B));
  for (size_t b = 0; b < lengths.size(); ++b)
    if (lengths[b] < 1 || lengths[b] > T)
      throw ShapeError(who + ": sample " + std::to_string(b) + " has length " +
                       std::to_string(lengths[b]) + " (each must be 1.." + std::to_string(T) +
                       ", the padded length)");
}

// What to put before a sequence layer that was given something else.
std::string sequence_hint(const Shape& input) {
  if (input.size() == 3)
    return " (an image [channels, height, width]: add a 'columns' layer before it, which makes "
           "one frame of channels x height features per column)";
  if (input.size() == 1)
    return " (a flat vector: sequence layers need features that come as frames, such as "
           "audio.mfcc's [frames, coefficients] or an image read by columns)";
  return "";
}

}  // namespace

const char* sequence_output_name(SequenceOutput o) {
  switch (o) {
    case SequenceOutput::kSequence:
      return "sequence";
    case SequenceOutput::kLast:
      return "last";
    case SequenceOutput::kMean:
      return "mean";
  }
  return "sequence";
}

SequenceOutput parse_sequence_output(const std::string& name, const std::string& context) {
  if (name == "sequence") return SequenceOutput::kSequence;
  if (name == "last") return SequenceOutput::kLast;
  if (name == "mean") return SequenceOutput::kMean;
  throw ShapeError(context + ": attribute 'output' must be sequence, last or mean, got '" + name +
                   "'");
}

// ---- Recurrent ----------------------------------------------------------------------------------

template <class T>
Recurrent<T>::Recurrent(Cell cell, int64_t units, RecurrentOptions options)
    : cell_(cell), h_(units), opt_(options) {
  if (units < 1)
    throw ShapeError(kind() + ": units must be at least 1, got " + std::to_string(units));
  if (opt_.bptt < 0)
    throw ShapeError(kind() + ": bptt must be 0 (full) or a number of frames, got " +
                     std::to_string(opt_.bptt));
}

template <class T>
std::string Recurrent<T>::kind() const {
  return cell_ == Cell::kLstm ? "lstm" : cell_ == Cell::kGru ? "gru" : "rnn";
}

template <class T>
Attrs Recurrent<T>::attrs() const {
  Attrs a;
  a.set("units", static_cast<long long>(h_)).set("in", static_cast<long long>(opt_.in_features));
  a.set("bidirectional", opt_.bidirectional ? 1 : 0);
  a.set("output", sequence_output_name(opt_.output));
  a.set("bptt", static_cast<long long>(opt_.bptt));
  return a;
}

template <class T>
Shape Recurrent<T>::build(const Shape& input) {
  if (input.size() != 2 || (input[0] < 1 && input[0] != kDynamic) || input[1] < 1)
    throw ShapeError(this->describe() + ": expects a sequence [time, features], got " +
                     to_string(input) + sequence_hint(input));
  if (opt_.in_features >= 0 && input[1] != opt_.in_features)
    throw ShapeError(this->describe() + ": declared input [time," +
                     std::to_string(opt_.in_features) + "] but the previous layer gives " +
                     to_string(input));
  f_ = input[1];
  const int64_t D = dirs(), GH = gates() * h_;
  wx_ = Tensor<T>({f_, D * GH});
  dwx_ = Tensor<T>({f_, D * GH});
  wh_ = Tensor<T>({D, h_, GH});
  dwh_ = Tensor<T>({D, h_, GH});
  bias_ = Tensor<T>({D * GH});
  dbias_ = Tensor<T>({D * GH});
  if (cell_ == Cell::kGru) {
    bhn_ = Tensor<T>({D * h_});
    dbhn_ = Tensor<T>({D * h_});
  }
  zeros_ = Tensor<T>({h_});
  if (opt_.output == SequenceOutput::kSequence) return {input[0], D * h_};
  return {D * h_};
}

template <class T>
void Recurrent<T>::init(Rng& rng) {
  const double a = 1.0 / std::sqrt(double(h_));
  for (T& v : wx_) v = T((2 * rng.uniform() - 1) * a);
  for (T& v : wh_) v = T((2 * rng.uniform() - 1) * a);
  bias_.zero();
  bhn_.zero();
  if (cell_ == Cell::kLstm)  // forget gate: remember by default
    for (int64_t d = 0; d < dirs(); ++d)
      for (int64_t j = 0; j < h_; ++j) bias_[d * 4 * h_ + h_ + j] = T(1);
}

template <class T>
void Recurrent<T>::set_lengths(const std::vector<int32_t>* lengths) {
  has_lengths_ = lengths != nullptr;
  if (lengths) lengths_.assign(lengths->begin(), lengths->end());
}

template <class T>
std::vector<Param<T>> Recurrent<T>::params() {
  const std::string& n = this->name();
  std::vector<Param<T>> p{{n + ".weight_ih", &wx_, &dwx_, true},
                          {n + ".weight_hh", &wh_, &dwh_, true},
                          {n + ".bias", &bias_, &dbias_, false}};
  if (cell_ == Cell::kGru) p.push_back({n + ".bias_hn", &bhn_, &dbhn_, false});
  return p;
}

template <class T>
std::vector<std::pair<std::string, Shape>> Recurrent<T>::stored_shapes(const Shape& input) const {
  if (input.size() != 2 || input[1] < 1) return {};
  const std::string& n = this->name();
  const int64_t D = dirs(), GH = gates() * h_;
  std::vector<std::pair<std::string, Shape>> s{{n + ".weight_ih", {input[1], D * GH}},
                                               {n + ".weight_hh", {D, h_, GH}},
                                               {n + ".bias", {D * GH}}};
  if (cell_ == Cell::kGru) s.push_back({n + ".bias_hn", {D * h_}});
  return s;
}

template <class T>
void Recurrent<T>::check_input(const Tensor<T>& x) const {
  if (x.rank() != 3 || x.dim(2) != f_)
    throw ShapeError(this->describe() + ": expects input [batch,time," + std::to_string(f_) +
                     "], got " + to_string(x.shape()));
  if (x.dim(1) == 0)
    throw ShapeError(this->describe() + ": empty sequence (no frames) in input " +
                     to_string(x.shape()));
  if (has_lengths_) check_lengths(lengths_, x.dim(0), x.dim(1), this->describe());
}

template <class T>
const T* Recurrent<T>::states(const Tensor<T>& y) const {
  return opt_.output == SequenceOutput::kSequence ? y.data() : hs_.data();
}

template <class T>
template <class F>
void Recurrent<T>::split_work(F&& fn) {
  const int64_t B = b_, D = dirs();
  // Batch 1 (an app's utterance): everything on the calling thread. A region costs a wake-up of
  // the other core, which takes milliseconds when that core is busy elsewhere, more than the whole
  // utterance's work.
  if (B == 1) {
    for (int64_t d = 0; d < D; ++d) fn(d, int64_t(0), B);
    return;
  }
  // Two directions on two threads: one each, so each thread also owns its direction's parameter
  // gradients. Otherwise blocks of the batch, each thread running every direction of its block:
  // samples never wait for one another.
  if (D == 2 && num_threads() == 2) {
    // Each thread takes the next direction not yet taken: when the other core is busy elsewhere
    // and its thread starts late, the calling thread runs both. A direction's result does not
    // depend on the thread that runs it.
    std::atomic<int> next{0};
    parallel(2, [&](int, int) {
      for (int d; (d = next.fetch_add(1)) < 2;) fn(int64_t(d), int64_t(0), B);
    });
    return;
  }
  parallel(int(std::min<int64_t>(B, 1024)), [&](int t, int n) {
    const int64_t b0 = B * t / n, b1 = B * (t + 1) / n;
    if (b0 < b1)
      for (int64_t d = 0; d < D; ++d) fn(d, b0, b1);
  });
}

template <class T>
void Recurrent<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  check_input(x);
  const int64_t B = x.dim(0), TT = x.dim(1), D = dirs(), H = h_, GH = gates() * h_;
  b_ = B;
  t_ = TT;
  gates_.resize({B, TT, D * GH});
  T* hs;
  if (opt_.output == SequenceOutput::kSequence) {
    y.resize({B, TT, D * H});
    hs = y.data();
  } else {
    hs_.resize({B, TT, D * H});
    hs = hs_.data();
    y.resize({B, D * H});
  }
  if (cell_ == Cell::kLstm) {
    cell_state_.resize({B, TT, D * H});
    cell_tanh_.resize({B, TT, D * H});
  } else if (cell_ == Cell::kGru) {
    hn_.resize({B, TT, D * H});
    rec_.resize({B, D * GH});
  }
  split_work([&](int64_t d, int64_t b0, int64_t b1) { forward_block(x, d, b0, b1, hs); });

  if (opt_.output == SequenceOutput::kSequence) return;
  const int64_t hrow = D * H;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = len(b);
    T* out = y.data() + b * hrow;
    if (opt_.output == SequenceOutput::kLast) {
      std::copy(hs + (b * TT + L - 1) * hrow, hs + (b * TT + L - 1) * hrow + H, out);
      if (D == 2) std::copy(hs + b * TT * hrow + H, hs + b * TT * hrow + 2 * H, out + H);
    } else {
      std::fill(out, out + hrow, T(0));
      for (int64_t t = 0; t < L; ++t)
        BPKIT_ISA_CALL(rnn::add_to<T>, out, hs + (b * TT + t) * hrow, hrow);
      const T inv = T(1) / T(L);
      for (int64_t k = 0; k < hrow; ++k) out[k] *= inv;
    }
  }
}

template <class T>
void Recurrent<T>::forward_block(const Tensor<T>& x, int64_t d, int64_t b0, int64_t b1, T* hs) {
  const int64_t TT = t_, H = h_, GH = gates() * h_, D = dirs();
  const int64_t prow = D * GH, hrow = D * H;  // per-frame widths of gates_ and the states
  T* P = gates_.data();
  const T* wh = wh_.data() + d * H * GH;
  // The input projections of all the block's frames in one product (biases are added in the
  // cell math).
  gemm<T>(false, false, (b1 - b0) * TT, GH, f_, T(1), x.data() + b0 * TT * f_, f_,
          wx_.data() + d * GH, prow, T(0), P + b0 * TT * prow + d * GH, prow);
  const bool single = b1 - b0 == 1;
  const T* bias = bias_.data() + d * GH;
  const T* zeros = zeros_.data();
  for (int64_t s = 0; s < TT; ++s) {
    const int64_t t = d == 0 ? s : TT - 1 - s;
    const int64_t tp = d == 0 ? t - 1 : t + 1;  // the previous frame in this direction's order
    // The recurrent product for the block's rows (rows of padded samples compute unused values;
    // their previous state is zero, so a sample's first valid frame sees h₋ = 0).
    if (single && s > 0) {  // batch 1: a matrix-vector product
      T* out = cell_ == Cell::kGru ? rec_.data() + b0 * prow + d * GH
                                   : P + (b0 * TT + t) * prow + d * GH;
      if (cell_ == Cell::kGru) std::fill(out, out + GH, T(0));
      BPKIT_ISA_CALL(rnn::gemv_add<T>, hs + (b0 * TT + tp) * hrow + d * H, wh, out, H, GH);
    } else if (cell_ == Cell::kGru) {
      T* R = rec_.data() + b0 * prow + d * GH;
      if (s > 0)
        gemm<T>(false, false, b1 - b0, GH, H, T(1), hs + (b0 * TT + tp) * hrow + d * H, TT * hrow,
                wh, GH, T(0), R, prow);
      else
        for (int64_t b = b0; b < b1; ++b)
          std::fill(R + (b - b0) * prow, R + (b - b0) * prow + GH, T(0));
    } else if (s > 0) {
      gemm<T>(false, false, b1 - b0, GH, H, T(1), hs + (b0 * TT + tp) * hrow + d * H, TT * hrow, wh,
              GH, T(1), P + (b0 * TT + t) * prow + d * GH, TT * prow);
    }
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t L = len(b), at = (b * TT + t) * hrow + d * H;
      T* h = hs + at;
      if (t >= L) {  // padding
        std::fill(h, h + H, T(0));
        if (cell_ == Cell::kLstm) {
          std::fill(cell_state_.data() + at, cell_state_.data() + at + H, T(0));
          std::fill(cell_tanh_.data() + at, cell_tanh_.data() + at + H, T(0));
        } else if (cell_ == Cell::kGru) {
          std::fill(hn_.data() + at, hn_.data() + at + H, T(0));
        }
        continue;
      }
      const bool start = d == 0 ? t == 0 : t == L - 1;
      const int64_t prev = (b * TT + tp) * hrow + d * H;
      T* a = P + (b * TT + t) * prow + d * GH;
      switch (cell_) {
        case Cell::kElman:
          BPKIT_ISA_CALL(rnn::elman_forward_row<T>, a, bias, h, H);
          break;
        case Cell::kLstm:
          BPKIT_ISA_CALL(rnn::lstm_forward_row<T>, a, bias,
                         start ? zeros : cell_state_.data() + prev, cell_state_.data() + at,
                         cell_tanh_.data() + at, h, H);
          break;
        case Cell::kGru:
          BPKIT_ISA_CALL(rnn::gru_forward_row<T>, a, rec_.data() + b * prow + d * GH, bias,
                         bhn_.data() + d * H, start ? zeros : hs + prev, hn_.data() + at, h, H);
          break;
      }
    }
  }
}

template <class T>
void Recurrent<T>::backprop_time(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                                 bool params) {
  const int64_t B = b_, TT = t_, D = dirs(), H = h_, GH = gates() * h_, hrow = D * H;
  if (dy.shape() != y.shape())
    throw ShapeError(this->describe() + ": output gradient " + to_string(dy.shape()) +
                     " does not match the output " + to_string(y.shape()));
  const T* dhs = dy.data();
  if (opt_.output != SequenceOutput::kSequence) {  // spread the gradient over the frames
    dhs_.resize({B, TT, hrow});
    dhs_.zero();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = len(b);
      const T* g = dy.data() + b * hrow;
      T* o = dhs_.data() + b * TT * hrow;
      if (opt_.output == SequenceOutput::kLast) {
        std::copy(g, g + H, o + (L - 1) * hrow);
        if (D == 2) std::copy(g + H, g + 2 * H, o + H);
      } else {
        const T inv = T(1) / T(L);
        for (int64_t t = 0; t < L; ++t)
          for (int64_t k = 0; k < hrow; ++k) o[t * hrow + k] = g[k] * inv;
      }
    }
    dhs = dhs_.data();
  }
  dg_.resize({B, TT, D * GH});
  if (cell_ == Cell::kGru) dgh_.resize({B, TT, D * GH});
  dh_next_.resize({B, hrow});
  dh_.resize({B, hrow});
  if (cell_ == Cell::kLstm) dc_next_.resize({B, hrow});
  const T* hs = states(y);
  if (params) hprev_.resize({B, TT, hrow});
  // A thread that ran a whole direction forms that direction's parameter gradients right away;
  // after a split of the batch they are formed below, each product on all threads.
  bool done[2] = {false, false};
  split_work([&](int64_t d, int64_t b0, int64_t b1) {
    backward_block(d, b0, b1, hs, dhs);
    if (params && b0 == 0 && b1 == B) {
      param_gradients(x, hs, d, false);
      done[d] = true;
    }
  });
  if (params)
    for (int64_t d = 0; d < D; ++d)
      if (!done[d]) param_gradients(x, hs, d, true);
}

template <class T>
void Recurrent<T>::backward_block(int64_t d, int64_t b0, int64_t b1, const T* hs, const T* dhs) {
  const int64_t TT = t_, H = h_, GH = gates() * h_, D = dirs();
  const int64_t prow = D * GH, hrow = D * H;
  const T* P = gates_.data();
  const T* wh = wh_.data() + d * H * GH;
  const T* zeros = zeros_.data();
  const bool gru = cell_ == Cell::kGru, lstm = cell_ == Cell::kLstm;
  T* dgr = gru ? dgh_.data() : dg_.data();  // what multiplies Whᵀ
  for (int64_t b = b0; b < b1; ++b) {
    std::fill(dh_next_.data() + b * hrow + d * H, dh_next_.data() + b * hrow + d * H + H, T(0));
    if (lstm)
      std::fill(dc_next_.data() + b * hrow + d * H, dc_next_.data() + b * hrow + d * H + H, T(0));
  }
  // Frames in the reverse of the direction's processing order.
  for (int64_t s = TT - 1; s >= 0; --s) {
    const int64_t t = d == 0 ? s : TT - 1 - s;
    const int64_t tp = d == 0 ? t - 1 : t + 1;
    bool any_live = false;  // does any row pass a gradient to its previous state?
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t L = len(b), at = (b * TT + t) * hrow + d * H;
      T* dg = dg_.data() + (b * TT + t) * prow + d * GH;
      if (t >= L) {  // padding: no gradient
        std::fill(dg, dg + GH, T(0));
        if (gru)
          std::fill(dgh_.data() + (b * TT + t) * prow + d * GH,
                    dgh_.data() + (b * TT + t) * prow + d * GH + GH, T(0));
        continue;
      }
      const int64_t sb = d == 0 ? t : L - 1 - t;  // this sample's processing step
      const int64_t prev = (b * TT + tp) * hrow + d * H;
      T* dh = dh_.data() + b * hrow + d * H;
      T* dhn = dh_next_.data() + b * hrow + d * H;
      BPKIT_ISA_CALL(rnn::add_rows<T>, dhs + at, dhn, dh, H);
      const T* a = P + (b * TT + t) * prow + d * GH;
      switch (cell_) {
        case Cell::kElman:
          BPKIT_ISA_CALL(rnn::elman_backward_row<T>, hs + at, dh, dg, H);
          break;
        case Cell::kLstm:
          BPKIT_ISA_CALL(rnn::lstm_backward_row<T>, a, sb == 0 ? zeros : cell_state_.data() + prev,
                         cell_tanh_.data() + at, dh, dc_next_.data() + b * hrow + d * H, dg, H);
          break;
        case Cell::kGru:
          BPKIT_ISA_CALL(rnn::gru_backward_row<T>, a, hn_.data() + at, sb == 0 ? zeros : hs + prev,
                         dh, dg, dgh_.data() + (b * TT + t) * prow + d * GH, dhn, H);
          break;
      }
      // The first frame has no previous state; truncated BPTT stops the gradient every `bptt`
      // steps of the processing order (the state is then taken as a constant).
      const bool cut = sb == 0 || (opt_.bptt > 0 && sb % opt_.bptt == 0);
      if (cut) {
        std::fill(dhn, dhn + H, T(0));
        if (lstm)
          std::fill(dc_next_.data() + b * hrow + d * H, dc_next_.data() + b * hrow + d * H + H,
                    T(0));
      } else {
        any_live = true;
      }
    }
    if (!any_live) continue;
    // dh₋ (+)= dg·Whᵀ for the block's rows. The GRU's direct term is already in dh_next_; cut
    // rows and padded rows have zero gradients and are zeroed again below.
    gemm<T>(false, true, b1 - b0, H, GH, T(1), dgr + (b0 * TT + t) * prow + d * GH, TT * prow, wh,
            GH, gru ? T(1) : T(0), dh_next_.data() + b0 * hrow + d * H, hrow);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t L = len(b);
      if (t >= L) continue;
      const int64_t sb = d == 0 ? t : L - 1 - t;
      if (sb == 0 || (opt_.bptt > 0 && sb % opt_.bptt == 0)) {
        T* dhn = dh_next_.data() + b * hrow + d * H;
        std::fill(dhn, dhn + H, T(0));
      }
    }
  }
}

template <class T>
void Recurrent<T>::param_gradients(const Tensor<T>& x, const T* hs, int64_t d, bool all_threads) {
  const int64_t B = b_, TT = t_, D = dirs(), H = h_, GH = gates() * h_;
  const int64_t prow = D * GH, hrow = D * H, rows = B * TT;
  auto product = all_threads ? &gemm_parallel<T> : &gemm<T>;
  // dWx[:, d] += xᵀ·dg[d] over every frame at once.
  product(true, false, f_, GH, rows, T(1), x.data(), f_, dg_.data() + d * GH, prow, T(1),
          dwx_.data() + d * GH, prow);
  BPKIT_ISA_CALL(rnn::add_column_sums<T>, dg_.data(), rows, prow, d * GH, (d + 1) * GH,
                 dbias_.data());
  const T* dgr = cell_ == Cell::kGru ? dgh_.data() : dg_.data();
  if (cell_ == Cell::kGru)
    BPKIT_ISA_CALL(rnn::add_column_sums<T>, dgh_.data() + d * GH + 2 * H, rows, prow, 0, H,
                   dbhn_.data() + d * H);
  // dWh[d] += Σ h₋ᵀ·dg_rec: the previous states laid out frame by frame (zero before each
  // sample's first frame), then one product over all frames.
  T* hp = hprev_.data();
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = len(b);
    for (int64_t t = 0; t < TT; ++t) {
      T* out = hp + (b * TT + t) * hrow + d * H;
      const bool start = d == 0 ? t == 0 : t == L - 1;
      if (t >= L || start) {
        std::fill(out, out + H, T(0));
      } else {
        const T* src = hs + (b * TT + (d == 0 ? t - 1 : t + 1)) * hrow + d * H;
        std::copy(src, src + H, out);
      }
    }
  }
  product(true, false, H, GH, rows, T(1), hp + d * H, hrow, dgr + d * GH, prow, T(1),
          dwh_.data() + d * H * GH, GH);
}

template <class T>
void Recurrent<T>::input_gradient(const Tensor<T>& x, Tensor<T>& dx) {
  const int64_t prow = dirs() * gates() * h_;
  dx.resize(x.shape());
  gemm_parallel<T>(false, true, b_ * t_, f_, prow, T(1), dg_.data(), prow, wx_.data(), prow, T(0),
                   dx.data(), f_);
}

template <class T>
void Recurrent<T>::backward(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy,
                            Tensor<T>& dx) {
  backprop_time(x, y, dy, false);
  input_gradient(x, dx);
}

template <class T>
void Recurrent<T>::gradient(const Tensor<T>& x, const Tensor<T>& y, const Tensor<T>& dy) {
  backprop_time(x, y, dy, true);
}

template <class T>
void Recurrent<T>::gradient_and_backward(const Tensor<T>& x, const Tensor<T>& y,
                                         const Tensor<T>& dy, Tensor<T>& dx) {
  backprop_time(x, y, dy, true);
  input_gradient(x, dx);
}

template class Recurrent<float>;
template class Recurrent<double>;

// ---- FrameDense ---------------------------------------------------------------------------------

template <class T>
FrameDense<T>::FrameDense(int64_t units, int64_t in_features, bool bias)
    : units_(units), in_(in_features), bias_(bias) {
  if (units < 1)
    throw ShapeError("frame_dense: units must be at least 1, got " + std::to_string(units));
}

template <class T>
Attrs FrameDense<T>::attrs() const {
  Attrs a;
  a.set("units", static_cast<long long>(units_)).set("in", static_cast<long long>(in_));
  a.set("bias", bias_ ? 1 : 0);
  return a;
}

template <class T>
Shape FrameDense<T>::build(const Shape& input) {
  if (input.size() != 2 || (input[0] < 1 && input[0] != kDynamic) || input[1] < 1)
    throw ShapeError(this->describe() + ": expects a sequence [time, features], got " +
                     to_string(input) + sequence_hint(input));
  if (in_ >= 0 && input[1] != in_)
    throw ShapeError(this->describe() + ": declared input [time," + std::to_string(in_) +
                     "] but the previous layer gives " + to_string(input));
  in_ = input[1];
  w_ = Tensor<T>({in_, units_});
  dw_ = Tensor<T>({in_, units_});
  if (bias_) {
    b_ = Tensor<T>({units_});
    db_ = Tensor<T>({units_});
  }
  return {input[0], units_};
}

// U(±1/√F), as torch.nn.Linear.
template <class T>
void FrameDense<T>::init(Rng& rng) {
  const double a = 1.0 / std::sqrt(double(in_));
  for (T& v : w_) v = T((2 * rng.uniform() - 1) * a);
  b_.zero();
}

template <class T>
void FrameDense<T>::set_lengths(const std::vector<int32_t>* lengths) {
  has_lengths_ = lengths != nullptr;
  if (lengths) lengths_.assign(lengths->begin(), lengths->end());
}

template <class T>
void FrameDense<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  if (x.rank() != 3 || x.dim(2) != in_)
    throw ShapeError(this->describe() + ": expects input [batch,time," + std::to_string(in_) +
                     "], got " + to_string(x.shape()));
  if (x.dim(1) == 0)
    throw ShapeError(this->describe() + ": empty sequence (no frames) in input " +
                     to_string(x.shape()));
  const int64_t B = x.dim(0), TT = x.dim(1), U = units_;
  if (has_lengths_) check_lengths(lengths_, B, TT, this->describe());
  y.resize({B, TT, U});
  // Batch 1 on the calling thread (see Recurrent::split_work).
  (B == 1 ? &gemm<T> : &gemm_parallel<T>)(false, false, B * TT, U, in_, T(1), x.data(), in_,
                                          w_.data(), U, T(0), y.data(), U);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = has_lengths_ ? lengths_[size_t(b)] : TT;
    for (int64_t t = 0; t < TT; ++t) {
      T* row = y.data() + (b * TT + t) * U;
      if (t >= L)
        std::fill(row, row + U, T(0));
      else if (bias_)
        BPKIT_ISA_CALL(rnn::add_to<T>, row, b_.data(), U);
    }
  }
}

template <class T>
const T* FrameDense<T>::masked(const Tensor<T>& dy) {
  if (!has_lengths_) return dy.data();
  const int64_t B = dy.dim(0), TT = dy.dim(1), U = units_;
  dy_masked_.resize(dy.shape());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lengths_[size_t(b)];
    const T* src = dy.data() + b * TT * U;
    T* dst = dy_masked_.data() + b * TT * U;
    std::copy(src, src + L * U, dst);
    std::fill(dst + L * U, dst + TT * U, T(0));
  }
  return dy_masked_.data();
}

template <class T>
void FrameDense<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                             Tensor<T>& dx) {
  const T* g = masked(dy);
  dx.resize(x.shape());
  gemm_parallel<T>(false, true, x.dim(0) * x.dim(1), in_, units_, T(1), g, units_, w_.data(),
                   units_, T(0), dx.data(), in_);
}

template <class T>
void FrameDense<T>::gradient(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy) {
  const T* g = masked(dy);
  const int64_t rows = x.dim(0) * x.dim(1);
  gemm_parallel<T>(true, false, in_, units_, rows, T(1), x.data(), in_, g, units_, T(1), dw_.data(),
                   units_);
  if (bias_) BPKIT_ISA_CALL(rnn::add_column_sums<T>, g, rows, units_, 0, units_, db_.data());
}

template <class T>
std::vector<Param<T>> FrameDense<T>::params() {
  std::vector<Param<T>> p{{this->name() + ".weight", &w_, &dw_, true}};
  if (bias_) p.push_back({this->name() + ".bias", &b_, &db_, false});
  return p;
}

template <class T>
std::vector<std::pair<std::string, Shape>> FrameDense<T>::stored_shapes(const Shape& input) const {
  if (input.size() != 2 || input[1] < 1) return {};
  std::vector<std::pair<std::string, Shape>> s{{this->name() + ".weight", {input[1], units_}}};
  if (bias_) s.push_back({this->name() + ".bias", {units_}});
  return s;
}

template class FrameDense<float>;
template class FrameDense<double>;

}  // namespace bpkit
