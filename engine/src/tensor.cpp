#include "bpkit/tensor.h"

#include <stdexcept>

namespace bpkit {

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_size(const Shape& shape) {
  // 2^40 elements (4 TiB of floats) is far beyond any real tensor and keeps products of shapes
  // read from files or configurations from overflowing.
  constexpr int64_t kMax = int64_t(1) << 40;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + to_string(shape));
    if (d > 0 && n > kMax / d)
      throw std::invalid_argument("shape " + to_string(shape) + " has more than 2^40 elements");
    n *= d;
  }
  return n;
}

template <class T>
void Tensor<T>::reshape(const Shape& shape) {
  if (shape_size(shape) != size())
    throw std::invalid_argument("cannot reshape " + to_string(shape_) + " to " + to_string(shape));
  shape_ = shape;
}

template class Tensor<float>;
template class Tensor<double>;

}  // namespace bpkit
