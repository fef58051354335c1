#include "bpkit/network.h"

#include <algorithm>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

namespace bpkit {

template <class T>
Network<T>::Network(Shape input, uint64_t seed)
    : input_(std::move(input)), seed_(seed), rng_(seed) {
  for (int64_t d : input_) {
    if (d < 1 && d != kDynamic)
      throw ShapeError("network input shape " + to_string(input_) +
                       " has a dimension < 1 (other than kDynamic, -1)");
    if (d == kDynamic) dynamic_ = true;
  }
  shapes_.push_back(input_);
}

template <class T>
Layer<T>& Network<T>::add(std::unique_ptr<Layer<T>> layer, const std::string& name) {
  layer->set_name(name.empty() ? layer->kind() + std::to_string(layers_.size() + 1) : name);
  for (const auto& l : layers_)
    if (l->name() == layer->name())
      throw ShapeError("two layers are named '" + layer->name() + "'");
  Shape out = layer->build(shapes_.back());
  if (initialize_) layer->init(rng_);
  shapes_.push_back(out);
  if (lowest_trained_ == kNone && !layer->params().empty()) lowest_trained_ = layers_.size();
  // A dynamic dimension counts as 1 here: such inputs never run in chunks.
  auto fixed_size = [](Shape s) {
    for (int64_t& d : s) d = d == kDynamic ? 1 : d;
    return shape_size(s);
  };
  widest_ = std::max({widest_, fixed_size(input_), fixed_size(out)});
  layers_.push_back(std::move(layer));
  acts_.emplace_back();
  pooled_.push_back(0);
  if (layers_.size() >= 2) {
    const size_t i = layers_.size() - 2;
    const auto* conv = dynamic_cast<const Conv2d<T>*>(layers_[i].get());
    const auto* pool = dynamic_cast<const Pool2d<T>*>(layers_[i + 1].get());
    pooled_[i] = conv && pool && conv->can_fuse(*pool);
  }
  return *layers_.back();
}

template <class T>
const Tensor<T>& Network<T>::forward(const Tensor<T>& x, Mode mode) {
  return forward(x, mode, nullptr);
}

template <class T>
const Tensor<T>& Network<T>::forward(const Tensor<T>& x, Mode mode,
                                     const std::vector<int32_t>* lengths) {
  if (layers_.empty()) throw ShapeError("forward through a network without layers");
  bool ok = x.rank() == int(input_.size()) + 1;
  for (size_t i = 0; ok && i < input_.size(); ++i)
    ok = x.dim(int(i) + 1) == input_[i] || (input_[i] == kDynamic && x.dim(int(i) + 1) >= 0);
  if (!ok)
    throw ShapeError("network input: expected [batch," + to_string(input_).substr(1) + ", got " +
                     to_string(x.shape()));
  for (size_t i = 0; i < input_.size(); ++i)
    if (input_[i] == kDynamic && x.dim(int(i) + 1) == 0)
      throw ShapeError("network input " + to_string(x.shape()) +
                       ": empty sequence (a dynamic dimension needs at least one frame)");
  const int64_t B = x.rows();
  // Sequence lengths: checked here, handed to each layer, mapped through it for the next one.
  if (lengths) {
    if (x.rank() < 3)
      throw ShapeError("network input " + to_string(x.shape()) +
                       ": sequence lengths need a [batch, time, features...] input");
    if (int64_t(lengths->size()) != B)
      throw ShapeError("network input " + to_string(x.shape()) + ": " +
                       std::to_string(lengths->size()) + " sequence lengths for a batch of " +
                       std::to_string(B));
    // Lengths count frames of the first dynamic dimension (the width of a line image {C, H, -1}),
    // or of the first per-sample dimension (the time of [B, T, F] sequences).
    int64_t dim = 1;
    for (size_t i = 0; i < input_.size(); ++i)
      if (input_[i] == kDynamic) {
        dim = int64_t(i) + 1;
        break;
      }
    const int64_t frames = x.dim(int(dim));
    for (size_t b = 0; b < lengths->size(); ++b)
      if ((*lengths)[b] < 1 || (*lengths)[b] > frames)
        throw ShapeError("network input " + to_string(x.shape()) + ": sample " + std::to_string(b) +
                         " has length " + std::to_string((*lengths)[b]) + " (each must be 1.." +
                         std::to_string(frames) + ", the padded length)");
  }
  lengths_.resize(layers_.size() + 1);
  if (lengths) lengths_[0].assign(lengths->begin(), lengths->end());
  // A layer whose output has no frames (flat features: a recurrent layer's last state or mean)
  // ends the lengths: a sequence made again above it (reshape) has frames of its own, all valid.
  bool framed = lengths != nullptr;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (!framed) {
      layers_[i]->set_lengths(nullptr);
      continue;
    }
    layers_[i]->set_lengths(&lengths_[i]);
    lengths_[i + 1].resize(lengths_[i].size());
    for (size_t b = 0; b < lengths_[i].size(); ++b)
      lengths_[i + 1][b] = layers_[i]->output_length(lengths_[i][b]);
    framed = shapes_[i + 1].size() >= 2;
  }
  if (framed)
    out_lengths_ = lengths_.back();
  else
    out_lengths_.clear();
  // Chunk size: about 2 MB of the widest activation (measured best for the MLP: larger chunks
  // fall out of the cache), at least kInferChunk samples.
  const int64_t chunk =
      std::max<int64_t>(kInferChunk, (int64_t(2) << 20) / int64_t(sizeof(T)) / widest_);
  // Only a training pass leaves what backward() needs (masks, winners, normalized inputs).
  last_input_ = mode == Mode::kTrain ? &x : nullptr;
  if (mode == Mode::kTrain || B <= chunk || lengths || dynamic_) {
    const Tensor<T>& y = run_layers(x, mode);
    if (out_lengths_.empty() && y.rank() >= 3) out_lengths_.assign(size_t(B), int32_t(y.dim(1)));
    return y;
  }
  // A large inference batch runs in chunks: memory stays bounded by the chunk's activations and
  // each chunk's activations stay in cache between layers.
  Shape out_shape{B};
  out_shape.insert(out_shape.end(), shapes_.back().begin(), shapes_.back().end());
  infer_out_.resize(out_shape);
  const int64_t in_row = x.cols(), out_row = infer_out_.cols();
  for (int64_t b = 0; b < B; b += chunk) {
    const int64_t n = std::min(chunk, B - b);
    Shape cs = x.shape();
    cs[0] = n;
    chunk_.resize(cs);
    std::copy(x.data() + b * in_row, x.data() + (b + n) * in_row, chunk_.data());
    const Tensor<T>& y = run_layers(chunk_, mode);
    std::copy(y.begin(), y.end(), infer_out_.data() + b * out_row);
  }
  return infer_out_;
}

template <class T>
const Tensor<T>& Network<T>::run_layers(const Tensor<T>& x, Mode mode) {
  const Tensor<T>* in = &x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    if (pooled_[i]) {
      auto& pool = static_cast<Pool2d<T>&>(*layers_[i + 1]);
      static_cast<Conv2d<T>&>(*layers_[i]).forward_pooled(*in, pool, acts_[i + 1], mode);
      in = &acts_[++i];
      continue;
    }
    layers_[i]->forward(*in, acts_[i], mode);
    in = &acts_[i];
  }
  return *in;
}

template <class T>
void Network<T>::backward(const Tensor<T>& dloss, Tensor<T>* input_grad) {
  if (!last_input_ || layers_.empty())
    throw ShapeError("backward needs a forward pass in training mode just before it");
  if (dloss.shape() != acts_.back().shape())
    throw ShapeError("loss gradient " + to_string(dloss.shape()) + " does not match the output " +
                     to_string(acts_.back().shape()));
  if (input_grad == &dloss)
    throw ShapeError("backward: the input gradient cannot be written over the loss gradient");
  // Below the lowest layer with parameters nothing needs a gradient (unless the caller wants the
  // input's): stopping there skips, for an MLP, the largest product of the whole backward pass.
  // (kNone: no layer has parameters, so the loop stops after the top layer.)
  const size_t lowest = input_grad ? layers_.size() : lowest_trained_;
  // Each step reads the output gradient g and writes its input gradient into the buffer that does
  // not hold g (dloss is the caller's): a layer may resize or write dx before it has read all of
  // dy, so the two must never share storage, whichever layers (fused pairs included) surround it.
  auto other_than = [this](const Tensor<T>* g) {
    return g == &grads_[0] ? &grads_[1] : &grads_[0];
  };
  const Tensor<T>* g = &dloss;
  for (size_t i = layers_.size(); i-- > 0;) {
    const bool pooled = i > 0 && pooled_[i - 1];  // the pool of a pooled convolution: both at once
    if (pooled) --i;
    const Tensor<T>& x = i == 0 ? *last_input_ : acts_[i - 1];
    const bool last = !input_grad && i <= lowest;
    Tensor<T>* dx = last ? nullptr : i == 0 ? input_grad : other_than(g);
    if (pooled) {
      static_cast<Conv2d<T>&>(*layers_[i])
          .backprop_pooled(x, static_cast<const Pool2d<T>&>(*layers_[i + 1]), acts_[i + 1], *g, dx);
    } else if (last) {
      layers_[i]->gradient(x, acts_[i], *g);
    } else {
      layers_[i]->gradient_and_backward(x, acts_[i], *g, *dx);
    }
    if (last) break;
    g = dx;
  }
}

template <class T>
void Network<T>::reseed(uint64_t seed) {
  Rng rng(seed);
  for (auto& l : layers_) l->reseed(rng);
}

template <class T>
void Network<T>::zero_grad() {
  for (auto& l : layers_)
    for (auto& p : l->params()) {
      T* g = p.grad->data();
      parallel_for(p.grad->size(), 1 << 15,
                   [=](int64_t b, int64_t e) { std::fill(g + b, g + e, T(0)); });
    }
}

template <class T>
std::vector<Param<T>> Network<T>::params() {
  std::vector<Param<T>> all;
  for (auto& l : layers_)
    for (auto& p : l->params()) all.push_back(p);
  return all;
}

template <class T>
int64_t Network<T>::param_count() {
  int64_t n = 0;
  for (auto& p : params()) n += p.value->size();
  return n;
}

template class Network<float>;
template class Network<double>;

}  // namespace bpkit
