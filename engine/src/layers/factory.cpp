// make_layer: rebuilds a layer from the kind and attributes a model file stores.
#include <sstream>

#include "bpkit/error.h"
#include "bpkit/fixed_point.h"
#include "bpkit/layers.h"
#include "bpkit/recurrent.h"

namespace bpkit {

template <class T>
std::unique_ptr<Layer<T>> make_layer(const std::string& kind, const Attrs& attrs_in) {
  Attrs a = attrs_in;
  a.context = "layer kind '" + kind + "'";
  if (kind == "dense")
    return std::make_unique<Dense<T>>(a.get_int("units", 0), a.get_int("in", -1),
                                      parse_init(a.get_string("init", "he"), a.context),
                                      a.get_int("bias", 1) != 0);
  if (kind == "conv2d") {
    const std::string act = a.get_string("activation", "none");
    if (act != "none" && act != "relu")
      throw ShapeError(a.context + ": attribute 'activation' must be none or relu, got '" + act +
                       "'");
    return std::make_unique<Conv2d<T>>(
        a.get_int("filters", 0), a.get_int("kernel", 0), a.get_int("stride", 1),
        a.get_int("padding", 0), parse_init(a.get_string("init", "he"), a.context), act == "relu");
  }
  if (kind == "maxpool2d" || kind == "avgpool2d")
    return std::make_unique<Pool2d<T>>(kind == "maxpool2d" ? PoolKind::kMax : PoolKind::kAverage,
                                       a.get_int("kernel", 2), a.get_int("stride", -1),
                                       a.get_int("kernel_w", -1), a.get_int("stride_w", -1));
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
      const long long d = std::strtoll(tok.c_str(), &end, 10);
      if (tok.empty() || *end != '\0' || d < 1)
        throw ShapeError(a.context +
                         ": attribute 'shape' must be positive integers separated by "
                         "commas, got '" +
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
    o.max_iter = a.get_int("max_iter", o.max_iter);
    o.damping = a.get_double("damping", o.damping);
    return std::make_unique<FixedPoint<T>>(
        a.get_int("units", 0), a.get_int("outputs", 0),
        parse_fixed_point_activation(a.get_string("activation", "sigmoid"), a.context), o,
        a.get_int("symmetric", 0) != 0, a.get_int("zero_diagonal", 0) != 0,
        a.get_double("init_radius", 0.5), a.get_int("in", -1));
  }
  if (kind == "rnn" || kind == "lstm" || kind == "gru") {
    RecurrentOptions o;
    o.in_features = a.get_int("in", -1);
    o.bidirectional = a.get_int("bidirectional", 0) != 0;
    o.output = parse_sequence_output(a.get_string("output", "sequence"), a.context);
    o.bptt = a.get_int("bptt", 0);
    const Cell cell = kind == "lstm" ? Cell::kLstm : kind == "gru" ? Cell::kGru : Cell::kElman;
    return std::make_unique<Recurrent<T>>(cell, a.get_int("units", 0), o);
  }
  if (kind == "frame_dense")
    return std::make_unique<FrameDense<T>>(a.get_int("units", 0), a.get_int("in", -1),
                                           a.get_int("bias", 1) != 0);
  throw ShapeError("unknown layer kind '" + kind +
                   "' (known: dense, conv2d, maxpool2d, avgpool2d, dropout, batchnorm, flatten, "
                   "reshape, columns, sigmoid, tanh, relu, leaky_relu, softmax, rnn, lstm, gru, "
                   "frame_dense, fixed_point)");
}

template std::unique_ptr<Layer<float>> make_layer<float>(const std::string&, const Attrs&);
template std::unique_ptr<Layer<double>> make_layer<double>(const std::string&, const Attrs&);

}  // namespace bpkit
