#include "bpkit/zoo.h"

#include "bpkit/error.h"
#include "bpkit/layers.h"

namespace bpkit {

Network<float> make_reference_net(const std::string& name, uint64_t seed) {
  Network<float> net({1, 28, 28}, seed);
  const bool bn = name == "mlp_bn" || name == "cnn_bn";
  using Act = ActivationLayer<float>;
  if (name == "mlp" || name == "mlp_bn") {
    net.emplace<Reshape<float>>();
    for (int64_t units : {256, 128}) {
      net.emplace<Dense<float>>(units, -1, Init::kHe, !bn);
      if (bn) net.emplace<BatchNorm<float>>();
      net.emplace<Act>(Activation::kRelu);
      if (bn) net.emplace<Dropout<float>>(0.2);
    }
    net.emplace<Dense<float>>(10);
  } else if (name == "cnn" || name == "cnn_bn") {
    for (int64_t filters : {32, 64}) {
      // Without batch norm in between, the ReLU is fused into the convolution (same function).
      net.emplace<Conv2d<float>>(filters, 3, 1, 1, Init::kHe, /*fused_relu=*/!bn);
      if (bn) {
        net.emplace<BatchNorm<float>>();
        net.emplace<Act>(Activation::kRelu);
      }
      net.emplace<Pool2d<float>>(PoolKind::kMax, 2);
    }
    net.emplace<Reshape<float>>();
    net.emplace<Dense<float>>(128, -1, Init::kHe, !bn);
    if (bn) net.emplace<BatchNorm<float>>();
    net.emplace<Act>(Activation::kRelu);
    if (bn) net.emplace<Dropout<float>>(0.3);
    net.emplace<Dense<float>>(10);
  } else {
    throw ShapeError("unknown reference network '" + name + "' (known: mlp, cnn, mlp_bn, cnn_bn)");
  }
  return net;
}

}  // namespace bpkit
