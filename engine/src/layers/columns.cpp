// Feature-map columns as a sequence. Shapes: B batch, C channels, H height, W width (the frames).
// forward: y[b][w][c·H + h] = x[b][c][h][w]; backward is the same transposition of dy into dx.
#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

namespace bpkit {

template <class T>
Shape Columns<T>::build(const Shape& input) {
  if (input.size() != 3 || input[0] < 1 || input[1] < 1 || (input[2] < 1 && input[2] != kDynamic))
    throw ShapeError(this->describe() +
                     ": expects an input [channels,height,width] (the width may be dynamic, -1), "
                     "got " +
                     to_string(input));
  c_ = input[0];
  h_ = input[1];
  return {input[2], c_ * h_};
}

namespace {

// One sample: out[w][q] = in[q][w] for q < Q = C·H rows of W values (and its adjoint, the same
// transposition the other way). Rows of the input are read in order so each is streamed once.
template <class T>
void rows_to_columns(const T* __restrict in, int64_t Q, int64_t W, T* __restrict out) {
  for (int64_t q = 0; q < Q; ++q) {
    const T* row = in + q * W;
    for (int64_t w = 0; w < W; ++w) out[w * Q + q] = row[w];
  }
}

template <class T>
void columns_to_rows(const T* __restrict in, int64_t Q, int64_t W, T* __restrict out) {
  for (int64_t q = 0; q < Q; ++q) {
    T* row = out + q * W;
    for (int64_t w = 0; w < W; ++w) row[w] = in[w * Q + q];
  }
}

}  // namespace

template <class T>
void Columns<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode) {
  const int64_t B = x.rows(), W = x.dim(3), Q = c_ * h_;
  y.resize({B, W, Q});
  const T* xp = x.data();
  T* yp = y.data();
  parallel_for(B, 1, [=](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) rows_to_columns(xp + b * Q * W, Q, W, yp + b * Q * W);
  });
}

template <class T>
void Columns<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                          Tensor<T>& dx) {
  const int64_t B = x.rows(), W = x.dim(3), Q = c_ * h_;
  dx.resize(x.shape());
  const T* g = dy.data();
  T* d = dx.data();
  parallel_for(B, 1, [=](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) columns_to_rows(g + b * Q * W, Q, W, d + b * Q * W);
  });
}

template class Columns<float>;
template class Columns<double>;

}  // namespace bpkit
