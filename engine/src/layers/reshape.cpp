#include <algorithm>

#include "bpkit/error.h"
#include "bpkit/layers.h"

namespace bpkit {

template <class T>
Reshape<T>::Reshape(Shape target) : target_(std::move(target)) {}

template <class T>
Attrs Reshape<T>::attrs() const {
  Attrs a;
  if (!target_.empty()) {
    std::string s;
    for (size_t i = 0; i < target_.size(); ++i) s += (i ? "," : "") + std::to_string(target_[i]);
    a.set("shape", s);
  }
  return a;
}

template <class T>
Shape Reshape<T>::build(const Shape& input) {
  in_ = input;
  if (std::find(input.begin(), input.end(), kDynamic) != input.end())
    throw ShapeError(this->describe() + ": cannot " + kind() + " " + to_string(input) +
                     ", whose size varies (-1): a sequence keeps its frames; for the columns of "
                     "a variable-width image use a 'columns' layer");
  out_ = target_.empty() ? Shape{shape_size(input)} : target_;
  if (shape_size(out_) != shape_size(in_))
    throw ShapeError(this->describe() + ": cannot reshape " + to_string(in_) + " (" +
                     std::to_string(shape_size(in_)) + " values) to " + to_string(out_) + " (" +
                     std::to_string(shape_size(out_)) + " values)");
  return out_;
}

template <class T>
void Reshape<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  Shape s{x.rows()};
  s.insert(s.end(), out_.begin(), out_.end());
  y.resize(s);
  std::copy(x.begin(), x.end(), y.begin());
}

template <class T>
void Reshape<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                          Tensor<T>& dx) {
  dx.resize(x.shape());
  std::copy(dy.begin(), dy.end(), dx.begin());
}

template class Reshape<float>;
template class Reshape<double>;

}  // namespace bpkit
