// make_layer: rebuilds a layer from the kind and attributes a model file stores.
#include <cerrno>
#include <sstream>

#include "bpkit/error.h"
#include "bpkit/fixed_point.h"
#include "bpkit/layers.h"
#include "bpkit/recurrent.h"

namespace bpkit {

namespace {

// The largest size an attribute may give (units, filters, kernels, strides, paddings, declared
// inputs): 32-bit, so sums such as H + 2·padding cannot overflow, and shape_size() checks every
// product. Larger values are errors, never clamped.
constexpr long long kMaxSize = (1LL << 31) - 1;

}  // namespace

template <class T>
std::unique_ptr<Layer<T>> make_layer(const std::string& kind, const Attrs& attrs_in) {
  Attrs a = attrs_in;
  if (a.context.empty()) a.context = "layer kind '" + kind + "'";
  // A missing size keeps its fallback (the layer's constructor names a required one).
  auto size = [&](const char* key, long long fallback, long long lo = 1) {
    return a.has(key) ? a.get_int(key, fallback, lo, kMaxSize) : fallback;
  };
  auto flag = [&](const char* key, long long fallback) { return a.get_int(key, fallback, 0, 1); };
  if (kind == "dense")
    return std::make_unique<Dense<T>>(size("units", 0), size("in", -1, -1),
                                      parse_init(a.get_string("init", "he"), a.context),
                                      flag("bias", 1) != 0);
  if (kind == "conv2d") {
    const std::string act = a.get_string("activation", "none");
    if (act != "none" && act != "relu")
      throw ShapeError(a.context + ": attribute 'activation' must be none or relu, got '" + act +
                       "'");
    return std::make_unique<Conv2d<T>>(
        size("filters", 0), size("kernel", 0), size("stride", 1), size("padding", 0, 0),
        parse_init(a.get_string("init", "he"), a.context), act == "relu");
  }
  if (kind == "maxpool2d" || kind == "avgpool2d")
    return std::make_unique<Pool2d<T>>(kind == "maxpool2d" ? PoolKind::kMax : PoolKind::kAverage,
                                       size("kernel", 2), size("stride", -1, -1),
                                       size("kernel_w", -1, -1), size("stride_w", -1, -1));
  if (kind == "columns") return std::make_unique<Columns<T>>();
  if (kind == "dropout") return std::make_unique<Dropout<T>>(a.get_double("p", 0.5));
  if (kind == "batchnorm")
    return std::make_unique<BatchNorm<T>>(a.get_double("momentum", 0.1), a.get_double("eps", 1e-5));
  if (kind == "l2_normalize") return std::make_unique<L2Normalize<T>>(a.get_double("eps", 1e-12));
  if (kind == "flatten") return std::make_unique<Reshape<T>>();
  if (kind == "reshape") {
    Shape target;
    std::stringstream ss(a.get_string("shape", ""));
    std::string tok;
    while (std::getline(ss, tok, ',')) {
      char* end = nullptr;
      errno = 0;
      const long long d = std::strtoll(tok.c_str(), &end, 10);
      if (tok.empty() || *end != '\0' || d < 1 || d > kMaxSize || errno == ERANGE)
        throw ShapeError(a.context + ": attribute 'shape' must be integers in 1.." +
                         std::to_string(kMaxSize) + " separated by commas, got '" +
                         a.get_string("shape", "") + "'");
      target.push_back(d);
    }
    if (target.empty()) throw ShapeError(a.context + ": attribute 'shape' is required");
    return std::make_unique<Reshape<T>>(target);
  }
  if (kind == "sigmoid") return std::make_unique<ActivationLayer<T>>(Activation::kSigmoid);
  if (kind == "tanh") return std::make_unique<ActivationLayer<T>>(Activation::kTanh);
  if (kind == "relu") return std::make_unique<ActivationLayer<T>>(Activation::kRelu);
  if (kind == "leaky_relu")
    return std::make_unique<ActivationLayer<T>>(Activation::kLeakyRelu,
                                                a.get_double("slope", 0.01));
  if (kind == "softmax") return std::make_unique<ActivationLayer<T>>(Activation::kSoftmax);
  if (kind == "fixed_point") {
    FixedPointOptions o;
    o.tol = a.get_double("tol", o.tol);
    o.adjoint_tol = a.get_double("adjoint_tol", o.adjoint_tol);
    o.max_iter = size("max_iter", o.max_iter);
    o.damping = a.get_double("damping", o.damping);
    return std::make_unique<FixedPoint<T>>(
        size("units", 0), size("outputs", 0, 0),
        parse_fixed_point_activation(a.get_string("activation", "sigmoid"), a.context), o,
        flag("symmetric", 0) != 0, flag("zero_diagonal", 0) != 0, a.get_double("init_radius", 0.5),
        size("in", -1, -1));
  }
  if (kind == "rnn" || kind == "lstm" || kind == "gru") {
    RecurrentOptions o;
    o.in_features = size("in", -1, -1);
    o.bidirectional = flag("bidirectional", 0) != 0;
    o.output = parse_sequence_output(a.get_string("output", "sequence"), a.context);
    o.bptt = size("bptt", 0, 0);
    const Cell cell = kind == "lstm" ? Cell::kLstm : kind == "gru" ? Cell::kGru : Cell::kElman;
    return std::make_unique<Recurrent<T>>(cell, size("units", 0), o);
  }
  if (kind == "frame_dense")
    return std::make_unique<FrameDense<T>>(size("units", 0), size("in", -1, -1),
                                           flag("bias", 1) != 0);
  throw ShapeError("unknown layer kind '" + kind +
                   "' (known: dense, conv2d, maxpool2d, avgpool2d, dropout, batchnorm, flatten, "
                   "reshape, columns, sigmoid, tanh, relu, leaky_relu, softmax, rnn, lstm, gru, "
                   "frame_dense, fixed_point)");
}

template std::unique_ptr<Layer<float>> make_layer<float>(const std::string&, const Attrs&);
template std::unique_ptr<Layer<double>> make_layer<double>(const std::string&, const Attrs&);

}  // namespace bpkit
