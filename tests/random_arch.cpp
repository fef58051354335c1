#include "random_arch.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include "bpkit/attrs.h"
#include "bpkit/error.h"
#include "bpkit/random.h"
#include "bpkit/recurrent.h"

namespace bpkit_test {

using bpkit::kDynamic;
using bpkit::Network;
using bpkit::Rng;
using bpkit::Shape;

namespace {

std::string str(int64_t v) {
  return std::to_string(v);
}
// Short decimals (0.15, not 0.15000000000000002): the layer is built from this text, so a replay
// of the printed YAML builds the same layer.
std::string str(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

template <class T>
void add_layer(Network<T>& net, const ArchLayer& l) {
  bpkit::Attrs a;
  for (const auto& [k, v] : l.attrs) a.set(k, v);
  net.add(bpkit::make_layer<T>(l.kind, a));
}

// The valid length of every sample (the concrete size of a dynamic dimension when there are no
// lengths) mapped through layers [0, upto), or empty when there are neither.
std::vector<int32_t> lengths_below(const Arch& arch, const Network<double>& net, size_t upto) {
  std::vector<int32_t> len = arch.lengths;
  if (len.empty()) {  // a dynamic dimension without lengths: every sample has the concrete size
    const Shape in = arch.concrete_input();
    for (size_t i = 0; i < arch.input.size(); ++i)
      if (arch.input[i] == kDynamic) len.assign(size_t(arch.batch), int32_t(in[i]));
    if (len.empty()) return {};
  }
  for (size_t i = 0; i < upto; ++i)
    for (int32_t& l : len) l = net.layer(i).output_length(l);
  return len;
}

// Draws architectures: a body of random layers valid for the shape below each, then (usually) a
// head that makes the output fit the classification and sequence losses.
class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed * 0x9E3779B97F4A7C15ull + 1) { arch_.seed = seed; }

  Arch draw() {
    draw_input();
    const int depth = pick(1, 6);
    for (int d = 0, tries = 0; d < depth && tries < 60; ++tries)
      if (try_add(propose())) ++d;
    if (chance(0.75)) add_head();
    // A body and head that all failed to fit (rare): one layer that fits any input.
    if (arch_.layers.empty() && !try_add({"dense", {{"units", "2"}}}) &&
        !try_add({"frame_dense", {{"units", "2"}}}))
      try_add({"conv2d", {{"filters", "2"}, {"kernel", "1"}}});
    finish();
    return arch_;
  }

 private:
  int pick(int lo, int hi) { return lo + int(rng_.below(uint64_t(hi - lo + 1))); }
  bool chance(double p) { return rng_.uniform() < p; }
  template <class V>
  const V& one_of(const std::vector<V>& v) {
    return v[rng_.below(v.size())];
  }

  void draw_input() {
    const int kind = pick(0, 99);
    Arch& a = arch_;
    if (kind < 25) {  // flat features
      a.input = {pick(1, 9)};
    } else if (kind < 60) {  // an image; 8+ channels send 3×3 convolutions to Winograd
      a.input = {chance(0.3) ? pick(8, 9) : pick(1, 3), pick(3, 10), pick(3, 10)};
    } else if (kind < 75) {  // a line image of variable width
      a.input = {chance(0.2) ? 8 : pick(1, 2), pick(3, 6), kDynamic};
      draw_lengths(pick(3, 10));
    } else {  // a sequence [T, F], variable length or fixed
      const bool dynamic = chance(0.5);
      const int T = pick(2, 7);
      a.input = {dynamic ? kDynamic : T, pick(1, 5)};
      if (dynamic || chance(0.5)) draw_lengths(T);
    }
    a.batch = pick(1, 4);
    if (!a.lengths.empty()) a.lengths.resize(size_t(a.batch), a.lengths[0]);
    a.threads = pick(1, 3);
  }

  // Lengths in [1, longest] for up to 4 samples, the first one the longest.
  void draw_lengths(int longest) {
    arch_.lengths.clear();
    arch_.lengths.push_back(longest);
    for (int b = 1; b < 4; ++b) arch_.lengths.push_back(pick(std::max(1, longest / 2), longest));
    // Not always the first: the longest anywhere in the batch.
    std::swap(arch_.lengths[0], arch_.lengths[size_t(pick(0, 3))]);
  }

  // The per-sample shape after the layers so far.
  Shape current() const { return net_ ? net_->output_shape() : arch_.input; }
  bool dynamic(const Shape& s) const { return std::find(s.begin(), s.end(), kDynamic) != s.end(); }

  ArchLayer activation() {
    static const std::vector<std::string> kinds{"sigmoid", "tanh", "relu", "leaky_relu", "softmax"};
    ArchLayer l{one_of(kinds), {}};
    if (l.kind == "leaky_relu") l.attrs.push_back({"slope", str(0.05 * pick(1, 6))});
    return l;
  }

  ArchLayer propose() {
    const Shape s = current();
    const std::string last = arch_.layers.empty() ? "" : arch_.layers.back().kind;
    const bool relu_conv =
        last == "conv2d" &&
        std::find(arch_.layers.back().attrs.begin(), arch_.layers.back().attrs.end(),
                  std::pair<std::string, std::string>{"activation", "relu"}) !=
            arch_.layers.back().attrs.end();
    if (relu_conv && chance(0.6)) return {"maxpool2d", {{"kernel", "2"}}};  // fused pair
    const int r = pick(0, 99);
    if (chance(0.12)) return {"dropout", {{"p", str(0.1 * pick(1, 5))}}};
    // Softmax over hundreds of features gives nearly equal values of about 1/F, which batch
    // normalization above it divides by their tiny spread: ill-conditioned, so finite differences
    // lose their digits. Softmax is drawn over at most 32 features.
    if (chance(0.15)) {
      const ArchLayer l = activation();
      if (l.kind != "softmax" || (!dynamic(s) && bpkit::shape_size(s) <= 32)) return l;
    }
    if (s.size() == 3) {
      if (r < 40) {
        ArchLayer l{"conv2d", {}};
        const int k = chance(0.6) ? 3 : pick(1, 2);
        l.attrs.push_back({"filters", str(int64_t(chance(0.35) ? pick(8, 9) : pick(1, 4)))});
        l.attrs.push_back({"kernel", str(int64_t(k))});
        if (chance(0.3)) l.attrs.push_back({"stride", "2"});
        const int pad = pick(0, std::min(k, 2));
        if (pad) l.attrs.push_back({"padding", str(int64_t(pad))});
        if (chance(0.5)) l.attrs.push_back({"activation", "relu"});
        return l;
      }
      if (r < 60) {
        ArchLayer l{chance(0.6) ? "maxpool2d" : "avgpool2d", {}};
        l.attrs.push_back({"kernel", str(int64_t(pick(2, 3)))});
        if (chance(0.3)) l.attrs.push_back({"stride", str(int64_t(pick(1, 3)))});
        if (chance(0.25)) l.attrs.push_back({"kernel_w", str(int64_t(pick(1, 2)))});
        return l;
      }
      if (r < 75) return {"batchnorm", {}};
      if (r < 88 || dynamic(s)) return {"columns", {}};
      if (r < 94) return {"flatten", {}};
      return {"reshape", {{"shape", str(s[0] * s[1]) + "," + str(s[2])}}};
    }
    if (s.size() == 2) {
      if (r < 55) {
        static const std::vector<std::string> cells{"rnn", "lstm", "gru"};
        static const std::vector<std::string> outputs{"sequence", "sequence", "last", "mean"};
        ArchLayer l{one_of(cells), {{"units", str(int64_t(pick(1, 4)))}}};
        if (chance(0.5)) l.attrs.push_back({"bidirectional", "1"});
        const std::string out = one_of(outputs);
        if (out != "sequence") l.attrs.push_back({"output", out});
        if (chance(0.25)) l.attrs.push_back({"bptt", str(int64_t(pick(1, 4)))});
        return l;
      }
      if (r < 85) {
        ArchLayer l{"frame_dense", {{"units", str(int64_t(pick(1, 5)))}}};
        if (chance(0.2)) l.attrs.push_back({"bias", "0"});
        return l;
      }
      if (!dynamic(s) && arch_.lengths.empty()) return {"flatten", {}};
      return activation();
    }
    // Flat features.
    if (r < 45) {
      ArchLayer l{"dense", {{"units", str(int64_t(pick(1, 8)))}}};
      if (chance(0.2)) l.attrs.push_back({"bias", "0"});
      if (chance(0.2)) l.attrs.push_back({"init", "glorot"});
      return l;
    }
    if (r < 60) return {"batchnorm", {}};
    if (r < 75) {
      const int units = pick(2, 6);
      ArchLayer l{"fixed_point", {{"units", str(int64_t(units))}}};
      if (chance(0.5)) l.attrs.push_back({"outputs", str(int64_t(pick(1, units)))});
      if (chance(0.5)) l.attrs.push_back({"activation", "tanh"});
      if (chance(0.3)) l.attrs.push_back({"symmetric", "1"});
      if (chance(0.3)) l.attrs.push_back({"zero_diagonal", "1"});
      // Relaxed far below the finite-difference step: the gradient is exact at the fixed point.
      l.attrs.push_back({"tol", "1e-13"});
      l.attrs.push_back({"adjoint_tol", "1e-11"});
      l.attrs.push_back({"max_iter", "20000"});
      return l;
    }
    const int64_t F = s[0];
    if (r < 80 && F >= 2) return {"l2_normalize", {}};  // an embedding's normalization
    // Reshape a flat vector into an image or a sequence when its size factors.
    for (int64_t h = 2; h * 2 <= F; ++h)
      if (F % h == 0 && chance(0.5)) {
        const int64_t w = F / h;
        if (chance(0.5) || w < 2) return {"reshape", {{"shape", str(h) + "," + str(w)}}};
        return {"reshape", {{"shape", "1," + str(h) + "," + str(w)}}};
      }
    return {"dense", {{"units", str(int64_t(pick(2, 8)))}}};
  }

  // Adds `l` when the network builds with it and every sample keeps at least one valid frame.
  bool try_add(const ArchLayer& l) {
    arch_.layers.push_back(l);
    try {
      auto net = std::make_unique<Network<double>>(build_network<double>(arch_));
      const std::vector<int32_t> len = lengths_below(arch_, *net, net->size());
      if (std::all_of(len.begin(), len.end(), [](int32_t v) { return v >= 1; })) {
        // The padded batch must fit too (a window wider than the longest sample is an error).
        net->forward(bpkit::Tensor<double>(arch_.batch_shape(), 0.5), bpkit::Mode::kInfer,
                     arch_.lengths.empty() ? nullptr : &arch_.lengths);
        net_ = std::move(net);
        return true;
      }
    } catch (const bpkit::ShapeError&) {
    }
    arch_.layers.pop_back();
    return false;
  }

  void add_head() {
    const Shape s = current();
    const int K = pick(1, 5);
    if (s.size() == 1) {
      try_add({"dense", {{"units", str(int64_t(K))}}});
      if (chance(0.3))
        try_add({"sigmoid", {}});
      else if (K >= 2 && chance(0.2))
        try_add({"softmax", {}});
    } else if (s.size() == 2) {
      try_add({"frame_dense", {{"units", str(int64_t(std::max(K, 2)))}}});
    } else if (!dynamic(s) && chance(0.5)) {
      if (try_add({"flatten", {}})) try_add({"dense", {{"units", str(int64_t(K))}}});
    } else if (try_add({"columns", {}})) {
      try_add({"frame_dense", {{"units", str(int64_t(std::max(K, 2)))}}});
    }
  }

  void finish() {
    Arch& a = arch_;
    for (const auto& l : a.layers)
      // A batch to normalize: of two samples, the normalized values are exactly ±1 and their
      // gradient is zero up to rounding amplified by 1/σ (a check of noise).
      if (l.kind == "batchnorm") a.batch = std::max<int64_t>(a.batch, 3);
    if (!a.lengths.empty())
      a.lengths.resize(size_t(a.batch), *std::max_element(a.lengths.begin(), a.lengths.end()));
    const Shape out = current();
    a.losses = {"mse", "bce_logits"};
    const std::string last = a.layers.back().kind;
    if (last == "sigmoid") a.losses.push_back("bce");
    if (out.size() == 1 && out[0] >= 2) a.losses.push_back("softmax_cross_entropy");
    if (out.size() == 2 && out[1] >= 2) a.losses.push_back("ctc");
    // Metric losses over the batch's rows as pairs or triplets (a twin network's stacked batch).
    if (out.size() == 1 && a.lengths.empty()) {
      if (a.batch % 2 == 0) a.losses.push_back("contrastive");
      if (a.batch % 3 == 0) a.losses.push_back("triplet");
    }
  }

  Rng rng_;
  Arch arch_;
  std::unique_ptr<Network<double>> net_;
};

std::string join(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s;
}

}  // namespace

Shape Arch::concrete_input() const {
  Shape s = input;
  for (int64_t& d : s)
    if (d == kDynamic) d = lengths.empty() ? 7 : *std::max_element(lengths.begin(), lengths.end());
  return s;
}

Shape Arch::batch_shape() const {
  Shape s{batch};
  const Shape in = concrete_input();
  s.insert(s.end(), in.begin(), in.end());
  return s;
}

std::string Arch::yaml() const {
  std::ostringstream os;
  os << "# random architecture " << seed
     << " (replay: BPKIT_GRADCHECK_REPLAY=this-file bpkit_gradsuite_tests)\nnetwork:\n  input: [";
  for (size_t i = 0; i < input.size(); ++i) os << (i ? ", " : "") << input[i];
  os << "]\n  layers:\n";
  for (const auto& l : layers) {
    os << "    - " << l.kind;
    if (!l.attrs.empty()) {
      os << ": {";
      for (size_t i = 0; i < l.attrs.size(); ++i)
        os << (i ? ", " : "") << l.attrs[i].first << ": " << l.attrs[i].second;
      os << "}";
    }
    os << "\n";
  }
  os << "check: {seed: " << seed << ", batch: " << batch << ", threads: " << threads;
  if (!lengths.empty()) os << ", lengths: [" << join(lengths) << "]";
  os << ", losses: [";
  for (size_t i = 0; i < losses.size(); ++i) os << (i ? ", " : "") << losses[i];
  os << "]}\n";
  return os.str();
}

Arch random_arch(uint64_t seed) {
  return Generator(seed).draw();
}

Arch arch_from_yaml(const std::string& text, const std::string& where) {
  auto fail = [&](const std::string& what) { throw std::runtime_error(where + ": " + what); };
  Arch a;
  try {
    const YAML::Node root = YAML::Load(text);
    const YAML::Node net = root["network"], check = root["check"];
    if (!net || !net["input"] || !net["layers"] || !check)
      fail("expected 'network' (with 'input' and 'layers') and 'check'");
    for (const auto& d : net["input"]) a.input.push_back(d.as<int64_t>());
    for (const auto& item : net["layers"]) {
      ArchLayer l;
      if (item.IsScalar()) {
        l.kind = item.as<std::string>();
      } else if (item.IsMap() && item.size() == 1) {
        const auto entry = *item.begin();
        l.kind = entry.first.as<std::string>();
        for (const auto& kv : entry.second)
          l.attrs.push_back({kv.first.as<std::string>(), kv.second.as<std::string>()});
      } else {
        fail("a layer is a kind or '- kind: {attributes}'");
      }
      a.layers.push_back(l);
    }
    a.seed = check["seed"].as<uint64_t>();
    a.batch = check["batch"].as<int64_t>();
    a.threads = check["threads"].as<int>();
    if (check["lengths"])
      for (const auto& v : check["lengths"]) a.lengths.push_back(v.as<int32_t>());
    if (check["losses"])
      for (const auto& v : check["losses"]) a.losses.push_back(v.as<std::string>());
  } catch (const YAML::Exception& e) {
    fail(e.what());
  }
  return a;
}

template <class T>
Network<T> build_network(const Arch& arch) {
  Network<T> net(arch.input, arch.seed);
  for (const auto& l : arch.layers) add_layer(net, l);
  // Biases start at zero, which puts a ReLU whose window is all padding exactly on its kink (where
  // finite differences see half a slope): biases and shifts are drawn away from zero, scales
  // around 1. Weights keep their random initialization.
  Rng rng(arch.seed ^ 0xB1A5ull);
  for (auto& p : net.params()) {
    if (p.decay) continue;  // weights
    const bool scale = p.name.size() > 6 && p.name.compare(p.name.size() - 6, 6, ".gamma") == 0;
    for (T& v : *p.value) {
      const double u = rng.uniform(), sign = rng.uniform() < 0.5 ? -1 : 1;
      v = T(scale ? 0.5 + u : sign * (0.05 + 0.45 * u));
    }
  }
  return net;
}

int highest_cut_layer(const Arch& arch) {
  const Network<double> net = build_network<double>(arch);
  int highest = -1;
  for (size_t i = 0; i < net.size(); ++i) {
    const auto* rec = dynamic_cast<const bpkit::Recurrent<double>*>(&net.layer(i));
    if (!rec || rec->options().bptt == 0) continue;
    const std::vector<int32_t> len = lengths_below(arch, net, i);
    // Without lengths, the frames are the layer's input time (fixed, or mapped from the input's).
    int64_t frames = len.empty() ? 0 : *std::max_element(len.begin(), len.end());
    const Shape in = i == 0 ? arch.input : net.shape_after(i - 1);
    if (arch.lengths.empty() && in[0] != kDynamic) frames = in[0];
    if (rec->options().bptt < frames) highest = int(i);
  }
  return highest;
}

template Network<float> build_network<float>(const Arch&);
template Network<double> build_network<double>(const Arch&);

}  // namespace bpkit_test
