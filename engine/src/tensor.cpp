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
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("negative dimension in shape " + to_string(shape));
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
