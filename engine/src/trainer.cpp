#include "bpkit/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>
#include <ostream>

#include "bpkit/ctc.h"
#include "bpkit/error.h"
#include "bpkit/threading.h"

namespace bpkit {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Copies of every parameter and buffer, to restore the best epoch's weights.
struct Snapshot {
  std::vector<Tensor<float>> values;
  void take(Network<float>& net) {
    values.clear();
    for (size_t i = 0; i < net.size(); ++i) {
      for (auto& p : net.layer(i).params()) values.push_back(*p.value);
      for (auto& b : net.layer(i).buffers()) values.push_back(*b.second);
    }
  }
  void restore(Network<float>& net) const {
    size_t k = 0;
    for (size_t i = 0; i < net.size(); ++i) {
      for (auto& p : net.layer(i).params()) *p.value = values[k++];
      for (auto& b : net.layer(i).buffers()) *b.second = values[k++];
    }
  }
};

// Copies of the non-trained buffers (batch-norm running statistics), which forward(kTrain) updates
// before the loss of the batch is known: a batch that diverges must not leave them changed.
struct BufferBackup {
  std::vector<Tensor<float>*> live;
  std::vector<Tensor<float>> saved;
  explicit BufferBackup(Network<float>& net) {
    for (size_t i = 0; i < net.size(); ++i)
      for (auto& b : net.layer(i).buffers()) live.push_back(b.second);
    saved.resize(live.size());
  }
  // Copy assignment reuses the saved tensors' storage, so this allocates only the first time.
  void take() {
    for (size_t k = 0; k < live.size(); ++k) saved[k] = *live[k];
  }
  void restore() const {
    for (size_t k = 0; k < live.size(); ++k) *live[k] = saved[k];
  }
};

// The first parameter with a non-finite gradient, or null. g·0 is ±0 for a finite g and NaN for
// ±inf and NaN; sixteen independent partial sums let the compiler vectorize the scan (a single sum
// would be a serial dependency chain), so the check costs one pass over memory.
// True when g[0..n) holds a NaN or an infinity: g·0 is ±0 for a finite g and NaN otherwise;
// sixteen independent partial sums let the compiler vectorize the scan.
bool has_non_finite(const float* g, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int k = 0; k < 16; ++k) acc[k] += g[i + k] * 0.0f;
  float sum = 0;
  for (; i < n; ++i) sum += g[i] * 0.0f;
  for (float a : acc) sum += a;
  return std::isnan(sum);
}

// The first parameter with a non-finite gradient, or null. Runs before every optimizer step, so
// large tensors are scanned by all threads (a fixed split: the answer does not depend on timing).
const Param<float>* first_non_finite_grad(const std::vector<Param<float>>& params) {
  for (const auto& p : params) {
    const float* g = p.grad->data();
    std::atomic<bool> bad{false};
    parallel_for(p.grad->size(), 1 << 15, [&](int64_t b, int64_t e) {
      if (has_non_finite(g + b, e - b)) bad.store(true, std::memory_order_relaxed);
    });
    if (bad.load()) return &p;
  }
  return nullptr;
}

// Redraws the progress line in place ("\r", then ESC[K to clear what a longer line left behind).
void draw_bar(std::ostream& os, int epoch, int epochs, int64_t done, int64_t total, double loss,
              double sps) {
  const int width = 28;
  const int filled = int(double(width) * double(done) / double(std::max<int64_t>(total, 1)));
  char bar[width + 1];
  for (int i = 0; i < width; ++i) bar[i] = i < filled ? '=' : (i == filled ? '>' : ' ');
  bar[width] = '\0';
  const double eta = sps > 0 ? double(total - done) / sps : 0;
  char line[200];
  std::snprintf(line, sizeof line,
                "\r\033[Kepoch %d/%d [%s] %3d%% %7.0f samples/s loss %.4f ETA %.0fs", epoch, epochs,
                bar, int(100 * done / std::max<int64_t>(total, 1)), sps, loss, eta);
  os << line << std::flush;
}

// Where batches come from: fixed-shape samples (Dataset) or variable-length ones (SequenceDataset).
class Source {
 public:
  virtual ~Source() = default;
  virtual int64_t size() const = 0;
  // Copies the samples idx[0..b) into x, their valid lengths into `lengths` (left empty for
  // fixed-shape data) and their labels or label sequences into t.
  virtual void gather(const int64_t* idx, int64_t b, Tensor<float>& x,
                      std::vector<int32_t>& lengths, Targets<float>& t) const = 0;
  // Sample i's size in its padded dimension; -1 for fixed-shape data.
  virtual int64_t length(int64_t /*i*/) const { return -1; }
  // The dataset indices of the samples (sequences; null for fixed-shape data).
  virtual const std::vector<int64_t>* dataset_ids() const { return nullptr; }
  // Before training epoch e: a source whose samples are drawn per epoch draws them.
  virtual void begin_epoch(int /*epoch*/) {}
};

class DatasetSource : public Source {
 public:
  explicit DatasetSource(const Dataset& d) : d_(d) {}
  int64_t size() const override { return d_.size(); }
  void gather(const int64_t* idx, int64_t b, Tensor<float>& x, std::vector<int32_t>& lengths,
              Targets<float>& t) const override {
    lengths.clear();
    bpkit::gather(d_, idx, b, x, t.labels);
  }

 private:
  const Dataset& d_;
};

// The per-sample dimension whose size varies: the network input's first kDynamic dimension (the
// width of line images {C, H, -1}), else the first (the time of {T, F} sequences).
int dynamic_dim(const Network<float>& net) {
  const Shape& in = net.input_shape();
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] == kDynamic) return int(i);
  return 0;
}

class SequenceSource : public Source {
 public:
  // Batches are padded with zeros at the end of per-sample dimension `dim`; the valid lengths are
  // the samples' sizes in that dimension.
  SequenceSource(const SequenceDataset& d, std::vector<int64_t> ids, int dim)
      : d_(d), ids_(std::move(ids)), dim_(dim) {}
  int64_t size() const override { return int64_t(ids_.size()); }
  int64_t length(int64_t i) const override { return d_.x[size_t(ids_[size_t(i)])].dim(dim_); }
  const std::vector<int64_t>* dataset_ids() const override { return &ids_; }
  void gather(const int64_t* idx, int64_t b, Tensor<float>& x, std::vector<int32_t>& lengths,
              Targets<float>& t) const override {
    const Tensor<float>& first = d_.x[size_t(ids_[size_t(idx[0])])];
    if (dim_ >= first.rank())
      throw std::invalid_argument("samples of shape " + to_string(first.shape()) +
                                  " have no dimension " + std::to_string(dim_) + " to pad");
    int64_t tmax = 0;
    for (int64_t r = 0; r < b; ++r)
      tmax = std::max(tmax, d_.x[size_t(ids_[size_t(idx[r])])].dim(dim_));
    Shape shape = first.shape();
    shape[size_t(dim_)] = tmax;
    // A sample is `outer` blocks of len·inner values (len = its size in dimension dim_), each
    // copied to the start of a block of tmax·inner values of the padded sample.
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < first.rank(); ++i)
      if (i < dim_)
        outer *= first.dim(i);
      else if (i > dim_)
        inner *= first.dim(i);
    shape.insert(shape.begin(), b);
    x.resize(shape);
    std::fill(x.data(), x.data() + x.size(), 0.0f);
    lengths.resize(size_t(b));
    t.labels.clear();
    t.sequences.resize(d_.sequences.empty() ? 0 : size_t(b));
    for (int64_t r = 0; r < b; ++r) {
      const size_t k = size_t(ids_[size_t(idx[r])]);
      const Tensor<float>& s = d_.x[k];
      const int64_t len = s.dim(dim_);
      if (s.size() != outer * len * inner)
        throw std::invalid_argument("sample " + std::to_string(k) + " has shape " +
                                    to_string(s.shape()) + ", but the batch's first has " +
                                    to_string(first.shape()) + " (only dimension " +
                                    std::to_string(dim_) + " may differ)");
      float* dst = x.data() + r * outer * tmax * inner;
      for (int64_t o = 0; o < outer; ++o)
        std::copy(s.data() + o * len * inner, s.data() + (o + 1) * len * inner,
                  dst + o * tmax * inner);
      lengths[size_t(r)] = int32_t(len);
      if (d_.sequences.empty())
        t.labels.push_back(d_.y[k]);
      else
        t.sequences[size_t(r)] = d_.sequences[k];
    }
  }

 private:
  const SequenceDataset& d_;
  std::vector<int64_t> ids_;
  int dim_;
};

// Tuples (pairs, triplets) for twin networks: a "sample" is a tuple, gathered as its members'
// consecutive rows.
class TupleSource : public Source {
 public:
  TupleSource(TupleDataset d, std::function<void(int, TupleDataset&)> draw)
      : d_(std::move(d)), draw_(std::move(draw)) {
    check();
  }
  int64_t size() const override { return d_.size(); }
  void begin_epoch(int epoch) override {
    if (!draw_) return;
    draw_(epoch, d_);
    check();
  }
  void gather(const int64_t* idx, int64_t b, Tensor<float>& x, std::vector<int32_t>& lengths,
              Targets<float>& t) const override {
    lengths.clear();
    const int k = d_.arity;
    const int64_t per = d_.x.size() / d_.x.rows();
    Shape shape = d_.x.shape();
    shape[0] = b * k;
    x.resize(shape);
    t.labels.clear();
    for (int64_t r = 0; r < b; ++r) {
      const int64_t tuple = idx[r];
      for (int m = 0; m < k; ++m) {
        const int64_t row = d_.tuples[size_t(tuple * k + m)];
        std::copy(d_.x.data() + row * per, d_.x.data() + (row + 1) * per,
                  x.data() + (r * k + m) * per);
      }
      if (!d_.labels.empty()) t.labels.push_back(d_.labels[size_t(tuple)]);
    }
  }

 private:
  void check() const {
    if (d_.arity < 2) throw std::invalid_argument("tuples need at least two members");
    if (d_.tuples.size() % size_t(d_.arity) != 0)
      throw std::invalid_argument("the tuple list's length is not a multiple of the arity");
    const int64_t n = d_.x.rank() ? d_.x.rows() : 0;
    for (int64_t i : d_.tuples)
      if (i < 0 || i >= n)
        throw std::invalid_argument("a tuple names sample " + std::to_string(i) + " of " +
                                    std::to_string(n));
    if (!d_.labels.empty() && int64_t(d_.labels.size()) != d_.size())
      throw std::invalid_argument("tuple labels: " + std::to_string(d_.labels.size()) + " for " +
                                  std::to_string(d_.size()) + " tuples");
  }
  TupleDataset d_;
  std::function<void(int, TupleDataset&)> draw_;
};

// The CTC blank of label-sequence losses; −1 for a class per frame (FrameCrossEntropy).
int ctc_blank(const Loss<float>& loss) {
  if (dynamic_cast<const FrameCrossEntropy<float>*>(&loss)) return -1;
  const auto* ctc = dynamic_cast<const CtcLoss<float>*>(&loss);
  return ctc ? ctc->blank() : 0;
}

// Forward pass of one batch; for label sequences, t.lengths gets the network's output lengths.
const Tensor<float>& run_batch(Network<float>& net, const Tensor<float>& x,
                               const std::vector<int32_t>& lengths, Targets<float>& t, Mode mode) {
  const Tensor<float>& out = net.forward(x, mode, lengths.empty() ? nullptr : &lengths);
  if (!t.sequences.empty()) t.lengths = net.output_lengths();
  return out;
}

// Correct predictions in a batch: argmax against class labels, or greedy CTC decodings equal to
// the label sequences (adding their edit distances and label counts to `edits` and `total`).
int64_t count_right(const Tensor<float>& out, const Targets<float>& t, int64_t b, int blank,
                    ConfusionMatrix* cm, int64_t* edits = nullptr, int64_t* total = nullptr,
                    const MetricLoss<float>* metric = nullptr) {
  int64_t right = 0;
  if (metric) return metric->count_right(out, t);
  if (t.sequences.empty()) {
    for (int64_t r = 0; r < b; ++r) right += argmax_row(out, r) == t.labels[size_t(r)];
    if (cm) cm->add(out, t.labels.data());
    return right;
  }
  if (blank < 0) {  // a class per frame: a sequence is right when every frame is
    const int64_t T = out.dim(1), C = out.dim(2);
    for (int64_t r = 0; r < b; ++r) {
      const std::vector<int32_t>& want = t.sequences[size_t(r)];
      int64_t wrong = 0;
      for (size_t f = 0; f < want.size(); ++f) {
        const float* z = out.data() + (r * T + int64_t(f)) * C;
        wrong += int32_t(std::max_element(z, z + C) - z) != want[f];
      }
      right += wrong == 0;
      if (edits) *edits += wrong;
      if (total) *total += int64_t(want.size());
    }
    return right;
  }
  for (int64_t r = 0; r < b; ++r) {
    const int64_t len = t.lengths.empty() ? -1 : t.lengths[size_t(r)];
    const std::vector<int32_t> got = ctc_greedy_decode(out, r, len, blank).labels();
    const std::vector<int32_t>& want = t.sequences[size_t(r)];
    right += got == want;
    if (edits) *edits += edit_distance(got, want);
    if (total) *total += int64_t(want.size());
  }
  return right;
}

EvalResult evaluate_source(Network<float>& net, Loss<float>& loss, const Source& data,
                           int64_t batch, ConfusionMatrix* cm) {
  const int64_t n = data.size();
  if (n == 0) return {std::numeric_limits<double>::quiet_NaN(), 0};
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), 0);
  Tensor<float> xb, grad;
  Targets<float> t;
  std::vector<int32_t> lengths;
  double total = 0;
  int64_t right = 0, edits = 0, labels = 0;
  const int blank = ctc_blank(loss);
  const auto* metric = dynamic_cast<const MetricLoss<float>*>(&loss);
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t b = std::min(batch, n - i);
    data.gather(idx.data() + i, b, xb, lengths, t);
    const Tensor<float>& out = run_batch(net, xb, lengths, t, Mode::kInfer);
    total += loss.compute(out, t, grad) * double(b);
    right += count_right(out, t, b, blank, cm, &edits, &labels, metric);
  }
  EvalResult r{total / double(n), double(right) / double(n)};
  if (!t.sequences.empty()) r.error_rate = labels ? double(edits) / double(labels) : 0.0;
  return r;
}

TrainResult fit_source(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt, Source& train,
                       const Source* val, const TrainOptions& o) {
  const bool has_val = val != nullptr;
  const int blank = ctc_blank(loss);
  const auto* metric = dynamic_cast<const MetricLoss<float>*>(&loss);
  std::vector<int32_t> lengths;
  int64_t n = train.size();
  if (n == 0 && !o.draw_tuples) throw std::invalid_argument("no training samples");

  const double base_lr = opt.lr();
  std::vector<Param<float>> params = net.params();
  std::vector<int64_t> perm(static_cast<size_t>(n));
  Tensor<float> xb, grad;
  Targets<float> t;
  TrainProgress state;
  if (o.resume) state = *o.resume;
  TrainResult& result = state.result;
  Snapshot best;
  best.values = state.best;
  BufferBackup buffers(net);
  double& best_val = state.best_val;
  int& since_best = state.since_best;

  for (int epoch = state.epochs_done; epoch < o.epochs; ++epoch) {
    const double lr = o.schedule.lr_at(base_lr, epoch);
    opt.set_lr(lr);
    // The epoch's order and dropout draws depend only on (seed, epoch): resumable.
    Rng epoch_rng(o.seed ^ (0x9E3779B97F4A7C15ull * uint64_t(epoch + 1)));
    net.reseed(epoch_rng.next_u64());
    // A stream of its own, so that turning augmentation on leaves the order and dropout unchanged.
    Rng augment_rng(o.seed ^ 0x6175676d656e74ull ^ (0xD1B54A32D192ED03ull * uint64_t(epoch + 1)));
    if (o.before_epoch) {
      const std::vector<int64_t>* ids = train.dataset_ids();
      if (!ids) throw std::invalid_argument("before_epoch is for variable-length samples");
      o.before_epoch(epoch, *ids);
    }
    train.begin_epoch(epoch);
    n = train.size();
    if (n == 0)
      throw std::invalid_argument("no training samples (tuples) in epoch " +
                                  std::to_string(epoch + 1));
    perm.resize(size_t(n));
    std::iota(perm.begin(), perm.end(), 0);
    if (o.shuffle)
      for (int64_t i = n - 1; i > 0; --i)
        std::swap(perm[size_t(i)], perm[epoch_rng.below(uint64_t(i + 1))]);
    // Variable lengths: within each window of 16 batches of the shuffled order the samples are
    // sorted by length, so that a batch holds samples of similar lengths and little padding (text
    // lines of 4 to 40 characters: about half the work of random batches).
    if (o.shuffle && train.length(0) >= 0)
      for (int64_t w = 0; w < n; w += 16 * o.batch)
        std::stable_sort(perm.begin() + w, perm.begin() + std::min(n, w + 16 * o.batch),
                         [&](int64_t a, int64_t b) { return train.length(a) < train.length(b); });
    const double t0 = now_s();
    double loss_sum = 0, last_draw = t0;
    int64_t right = 0, done = 0, edits = 0, labels = 0;
    for (int64_t i = 0; i < n; i += o.batch) {
      const int64_t b = std::min(o.batch, n - i);
      if (o.schedule.kind == Schedule::kCosine)
        opt.set_lr(o.schedule.lr_at(base_lr, double(epoch) + double(i) / double(n)));
      train.gather(perm.data() + i, b, xb, lengths, t);
      augment_batch(xb, o.augment, augment_rng);
      buffers.take();
      const Tensor<float>& out = run_batch(net, xb, lengths, t, Mode::kTrain);
      const double l = loss.compute(out, t, grad);
      const int64_t batch_no = i / o.batch + 1;
      if (!std::isfinite(l)) {
        buffers.restore();
        throw DivergenceError("training diverged at epoch " + std::to_string(epoch + 1) +
                              ", batch " + std::to_string(batch_no) + ": the loss is " +
                              std::to_string(l) +
                              "; the weights from before this batch are kept "
                              "(try a lower learning rate or gradient clipping)");
      }
      right += count_right(out, t, b, blank, nullptr, &edits, &labels, metric);
      net.zero_grad();
      net.backward(grad);
      // A finite loss does not make finite gradients: a ReLU maps a NaN activation to 0, so a NaN
      // input reaches the first layer's weight gradient and nothing after it.
      if (o.clip_norm > 0) {
        const double norm = clip_grad_norm(params, o.clip_norm);
        if (!std::isfinite(norm)) {
          buffers.restore();
          throw DivergenceError("training diverged at epoch " + std::to_string(epoch + 1) +
                                ", batch " + std::to_string(batch_no) +
                                ": the gradient norm is not finite; the weights from before this "
                                "batch are kept (check the data for NaN or infinity, or try a "
                                "lower learning rate)");
        }
      } else if (const Param<float>* bad = first_non_finite_grad(params)) {
        buffers.restore();
        throw DivergenceError("training diverged at epoch " + std::to_string(epoch + 1) +
                              ", batch " + std::to_string(batch_no) + ": the gradient of '" +
                              bad->name +
                              "' is not finite; the weights from before this batch "
                              "are kept (check the data for NaN or infinity, or try a lower "
                              "learning rate)");
      }
      opt.step();
      loss_sum += l * double(b);
      done += b;
      // Ten redraws a second at most; the epoch's summary line replaces the last one.
      if (o.progress && o.progress_is_terminal && done < n && now_s() - last_draw > 0.1) {
        last_draw = now_s();
        draw_bar(*o.progress, epoch + 1, o.epochs, done, n, loss_sum / double(done),
                 double(done) / (last_draw - t0));
      }
    }
    const double secs = now_s() - t0;
    EpochStats s{epoch + 1,
                 lr,
                 loss_sum / double(n),
                 double(right) / double(n),
                 std::numeric_limits<double>::quiet_NaN(),
                 std::numeric_limits<double>::quiet_NaN(),
                 secs,
                 double(n) / secs};
    if (labels > 0) s.train_cer = double(edits) / double(labels);
    if (has_val) {
      const EvalResult v = evaluate_source(net, loss, *val, 256, nullptr);
      s.val_loss = v.loss;
      s.val_acc = v.accuracy;
      s.val_cer = v.error_rate;
    }
    const double val_cer = s.val_cer;
    result.history.push_back(s);
    if (o.progress) {
      char line[256];
      std::snprintf(
          line, sizeof line, "%sepoch %d/%d lr %.4g loss %.4f acc %.4f%s %.1fs %.0f samples/s\n",
          o.progress_is_terminal ? "\r\033[K" : "", s.epoch, o.epochs, lr, s.train_loss,
          s.train_acc,
          has_val ? (" val_loss " + std::to_string(s.val_loss).substr(0, 6) + " val_acc " +
                     std::to_string(s.val_acc).substr(0, 6) +
                     (std::isnan(val_cer) ? std::string()
                                          : " val_cer " + std::to_string(val_cer).substr(0, 6)))
                        .c_str()
                  : "",
          secs, s.samples_per_s);
      *o.progress << line << std::flush;
    }
    if (has_val) {
      if (s.val_acc > best_val) {
        best_val = s.val_acc;
        result.best_epoch = s.epoch;
        since_best = 0;
        if (o.patience > 0) best.take(net);
      } else if (o.patience > 0 && ++since_best >= o.patience) {
        result.stopped_early = true;
        break;
      }
    } else {
      result.best_epoch = s.epoch;
    }
    state.epochs_done = epoch + 1;
    if (o.on_epoch_end) {
      state.best = best.values;
      o.on_epoch_end(state);
    }
  }
  if (has_val && o.patience > 0 && !best.values.empty()) best.restore(net);
  opt.set_lr(base_lr);
  return std::move(result);
}

}  // namespace

EvalResult evaluate(Network<float>& net, Loss<float>& loss, const Dataset& data, int64_t batch,
                    ConfusionMatrix* cm) {
  return evaluate_source(net, loss, DatasetSource(data), batch, cm);
}

EvalResult evaluate(Network<float>& net, Loss<float>& loss, const SequenceDataset& data,
                    int64_t batch, ConfusionMatrix* cm) {
  std::vector<int64_t> ids(size_t(data.size()));
  std::iota(ids.begin(), ids.end(), 0);
  return evaluate_source(net, loss, SequenceSource(data, std::move(ids), dynamic_dim(net)), batch,
                         cm);
}

static void check_options(const TrainOptions& o) {
  if (o.batch < 1) throw std::invalid_argument("batch size must be at least 1");
  if (o.epochs < 1) throw std::invalid_argument("epochs must be at least 1");
}

TrainResult fit(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt, const Dataset& all,
                const TrainOptions& o) {
  check_options(o);
  if (o.augment.enabled() && all.x.rank() != 4)
    throw std::invalid_argument("augmentation needs image-shaped samples {C, H, W}, got " +
                                std::to_string(all.x.rank() - 1) + "-dimensional ones");
  if (int64_t(all.y.size()) != all.size())
    throw std::invalid_argument("the dataset holds " + std::to_string(all.size()) +
                                " samples but " + std::to_string(all.y.size()) + " labels");
  if (o.validation_split > 0) {
    Dataset train, val;
    split_validation(all, o.validation_split, o.seed, train, val);
    DatasetSource train_source(train), val_source(val);
    return fit_source(net, loss, opt, train_source, &val_source, o);
  }
  DatasetSource source(all);
  return fit_source(net, loss, opt, source, nullptr, o);
}

TrainResult fit(Network<float>& net, Loss<float>& loss, Optimizer<float>& opt,
                const SequenceDataset& all, const TrainOptions& o) {
  check_options(o);
  if (o.augment.enabled())
    throw std::invalid_argument("augmentation is for fixed-shape images, not sequences");
  const int64_t n = all.size();
  const bool seqs = !all.sequences.empty();
  if ((seqs ? int64_t(all.sequences.size()) : int64_t(all.y.size())) != n)
    throw std::invalid_argument("the dataset holds " + std::to_string(n) + " samples but " +
                                std::to_string(seqs ? all.sequences.size() : all.y.size()) +
                                (seqs ? " label sequences" : " labels"));
  for (int64_t i = 0; i < n; ++i)
    if (all.x[size_t(i)].rank() < 1 || all.x[size_t(i)].dim(0) < 1)
      throw std::invalid_argument("sample " + std::to_string(i) + " is an empty sequence");
  // The validation split: the last fraction of a seeded permutation, as for fixed-shape data.
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  const int64_t nv = int64_t(double(n) * o.validation_split);
  if (nv > 0) {
    Rng rng(o.seed ^ 0x76616c6964ULL);
    for (int64_t i = n - 1; i > 0; --i)
      std::swap(perm[size_t(i)], perm[rng.below(uint64_t(i + 1))]);
  }
  std::vector<int64_t> train_ids(perm.begin(), perm.end() - nv),
      val_ids(perm.end() - nv, perm.end());
  SequenceSource train(all, std::move(train_ids), dynamic_dim(net)),
      val(all, std::move(val_ids), dynamic_dim(net));
  return fit_source(net, loss, opt, train, nv > 0 ? &val : nullptr, o);
}

TrainResult fit(Network<float>& net, MetricLoss<float>& loss, Optimizer<float>& opt,
                TupleDataset train, const TupleDataset* validation, const TrainOptions& o) {
  check_options(o);
  if (o.augment.enabled())
    throw std::invalid_argument("training.augment moves images of a class dataset, not tuples");
  if (train.arity != loss.arity() || (validation && validation->arity != loss.arity()))
    throw std::invalid_argument("the " + loss.kind() + " loss takes tuples of " +
                                std::to_string(loss.arity()) + ", the data has " +
                                std::to_string(train.arity));
  TupleSource source(std::move(train), o.draw_tuples);
  if (validation && validation->size() > 0) {
    const TupleSource val(*validation, nullptr);
    return fit_source(net, loss, opt, source, &val, o);
  }
  return fit_source(net, loss, opt, source, nullptr, o);
}

EvalResult evaluate(Network<float>& net, MetricLoss<float>& loss, const TupleDataset& data,
                    int64_t batch) {
  return evaluate_source(net, loss, TupleSource(data, nullptr), batch, nullptr);
}

int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<int64_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), int64_t(0));
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];
    row[0] = int64_t(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

}  // namespace bpkit
