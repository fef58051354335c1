// Reference architectures used by the command line, the benchmarks and the tests, so that all of
// them train exactly the same networks.
#pragma once

#include <string>

#include "bpkit/network.h"

namespace bpkit {

// "mlp": 784-256-128-10, ReLU (the peer benchmark's MLP).
// "cnn": conv3x3(32,pad 1)-relu-maxpool2-conv3x3(64,pad 1)-relu-maxpool2-fc128-relu-fc10 (the
// convolutions' ReLUs fused into the convolution layers).
// "mlp_bn" / "cnn_bn": the same with batch normalization after each hidden layer and dropout
// before the classifier (the engine's best recipe).
// Input [1,28,28], output 10 logits. Throws ShapeError for an unknown name.
Network<float> make_reference_net(const std::string& name, uint64_t seed);

}  // namespace bpkit
