// Batch normalization. Shapes: B batch, C channels (features for flat inputs), S = H·W spatial
// positions per channel (1 for flat inputs), N = B·S values per channel. With sequence lengths
// (valid widths of right-padded line images), N counts only the valid columns V: μ and σ² are
// taken over V, every position is normalized with them, and the backward pass becomes
// dx_j = γ/σ · (dy_j − [j∈V]·(Σ dy + x̂_j·Σ dy·x̂)/N), the sums over all positions (padded outputs
// depend on μ and σ too). The backward pass uses the closed
// form dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)), with means over the N values of a channel.
#include <algorithm>
#include <cmath>

#include "bpkit/error.h"
#include "bpkit/layers.h"
#include "bpkit/threading.h"

namespace bpkit {

template <class T>
BatchNorm<T>::BatchNorm(double momentum, double eps) : momentum_(momentum), eps_(eps) {
  if (!(momentum >= 0 && momentum <= 1) || !(eps > 0))
    throw ShapeError("batchnorm: momentum must be in [0, 1] and eps positive, got momentum=" +
                     std::to_string(momentum) + " eps=" + std::to_string(eps));
}

template <class T>
Attrs BatchNorm<T>::attrs() const {
  Attrs a;
  a.set("momentum", momentum_).set("eps", eps_);
  return a;
}

template <class T>
Shape BatchNorm<T>::build(const Shape& input) {
  if (input.size() != 1 && input.size() != 3)
    throw ShapeError(this->describe() + ": expects [features] or [channels,height,width], got " +
                     to_string(input));
  if (input.size() == 1 && input[0] == kDynamic)
    throw ShapeError(this->describe() + ": the features cannot be dynamic, got " +
                     to_string(input));
  if (input.size() == 3 && (input[0] < 1 || input[1] < 1))
    throw ShapeError(this->describe() + ": only the width of [channels,height,width] may be " +
                     "dynamic (-1), got " + to_string(input));
  channels_ = input[0];
  dynamic_width_ = input.size() == 3 && input[2] == kDynamic;
  height_ = input.size() == 3 ? input[1] : 1;
  spatial_ = input.size() == 3 ? input[1] * (dynamic_width_ ? 1 : input[2]) : 1;
  gamma_ = Tensor<T>({channels_}, T(1));
  beta_ = Tensor<T>({channels_});
  dgamma_ = Tensor<T>({channels_});
  dbeta_ = Tensor<T>({channels_});
  running_mean_ = Tensor<T>({channels_});
  running_var_ = Tensor<T>({channels_}, T(1));
  return input;
}

template <class T>
void BatchNorm<T>::set_lengths(const std::vector<int32_t>* lengths) {
  if (lengths && dynamic_width_)
    lengths_.assign(lengths->begin(), lengths->end());
  else
    lengths_.clear();
}

template <class T>
void BatchNorm<T>::forward(const Tensor<T>& x, Tensor<T>& y, Mode mode) {
  if (dynamic_width_) spatial_ = x.cols() / channels_;
  const int64_t B = x.rows(), C = channels_, S = spatial_, W = S / height_;
  // Valid columns per sample (W each without lengths) and the count of valid values per channel.
  const bool masked = !lengths_.empty() && int64_t(lengths_.size()) == B;
  auto valid = [&](int64_t b) { return masked ? std::min<int64_t>(W, lengths_[size_t(b)]) : W; };
  int64_t N = 0;
  for (int64_t b = 0; b < B; ++b) N += valid(b) * height_;
  y.resize(x.shape());
  const T* xp = x.data();
  T* yp = y.data();
  // Channels are independent: each thread takes a block of them (a fixed partition, so results do
  // not depend on timing).
  const int64_t grain = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, N));
  if (mode == Mode::kInfer) {
    parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const T scale = gamma_[c] / std::sqrt(running_var_[c] + T(eps_));
        const T shift = beta_[c] - running_mean_[c] * scale;
        for (int64_t b = 0; b < B; ++b) {
          const T* xr = xp + (b * C + c) * S;
          T* yr = yp + (b * C + c) * S;
          for (int64_t s = 0; s < S; ++s) yr[s] = xr[s] * scale + shift;
        }
      }
    });
    return;
  }
  if (N < 2)
    throw ShapeError(this->describe() +
                     ": training needs at least 2 values per channel, got a "
                     "batch of " +
                     std::to_string(B));
  mean_.assign(size_t(C), T(0));
  inv_std_.assign(size_t(C), T(0));
  xhat_.resize(size_t(x.size()));
  parallel_for(C, grain, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      // Two passes (mean, then centred squares) keep the variance accurate in float.
      // Rows of W values; only the first valid(b) of each count.
      double sum = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < height_; ++r) {
          const T* xr = xp + (b * C + c) * S + r * W;
          for (int64_t w = 0, n = valid(b); w < n; ++w) sum += xr[w];
        }
      const double mean = sum / double(N);
      double sq = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t r = 0; r < height_; ++r) {
          const T* xr = xp + (b * C + c) * S + r * W;
          for (int64_t w = 0, n = valid(b); w < n; ++w) {
            const double d = xr[w] - mean;
            sq += d * d;
          }
        }
      const double var = sq / double(N);
      const T inv = T(1 / std::sqrt(var + eps_));
      mean_[size_t(c)] = T(mean);
      inv_std_[size_t(c)] = inv;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (b * C + c) * S + s;
          const T xh = (xp[i] - T(mean)) * inv;
          xhat_[size_t(i)] = xh;
          yp[i] = gamma_[c] * xh + beta_[c];
        }
      // Running variance uses the unbiased estimate, as torch does.
      running_mean_[c] = T((1 - momentum_) * running_mean_[c] + momentum_ * mean);
      running_var_[c] = T((1 - momentum_) * running_var_[c] + momentum_ * var * N / double(N - 1));
    }
  });
}

// The two per-channel sums every backward quantity needs: Σ dy (= dβ) and Σ dy·x̂ (= dγ). With
// dx given, also dx = γ/σ · (dy − mean(dy) − x̂·mean(dy·x̂)); with `params`, the sums are added to
// the parameter gradients. One pass computes both when the network asks for both.
template <class T>
void BatchNorm<T>::backprop(const Tensor<T>& dy, bool params, Tensor<T>* dx) {
  const int64_t B = dy.rows(), C = channels_, S = spatial_, W = S / height_;
  const bool masked = !lengths_.empty() && int64_t(lengths_.size()) == B;
  auto valid = [&](int64_t b) { return masked ? std::min<int64_t>(W, lengths_[size_t(b)]) : W; };
  int64_t N = 0;
  for (int64_t b = 0; b < B; ++b) N += valid(b) * height_;
  const T* g = dy.data();
  parallel_for(
      C, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, N)), [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          T sum_g = 0, sum_gx = 0;
          for (int64_t b = 0; b < B; ++b)
            for (int64_t s = 0; s < S; ++s) {
              const int64_t i = (b * C + c) * S + s;
              sum_g += g[i];
              sum_gx += g[i] * xhat_[size_t(i)];
            }
          if (params) {
            dbeta_[c] += sum_g;
            dgamma_[c] += sum_gx;
          }
          if (!dx) continue;
          const T mg = sum_g / T(N), mgx = sum_gx / T(N), k = gamma_[c] * inv_std_[size_t(c)];
          for (int64_t b = 0; b < B; ++b)
            for (int64_t s = 0; s < S; ++s) {
              const int64_t i = (b * C + c) * S + s;
              const bool in = !masked || s % W < valid(b);
              (*dx)[i] = in ? k * (g[i] - mg - xhat_[size_t(i)] * mgx) : k * g[i];
            }
        }
      });
}

template <class T>
void BatchNorm<T>::backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                            Tensor<T>& dx) {
  dx.resize(x.shape());
  backprop(dy, false, &dx);
}

template <class T>
void BatchNorm<T>::gradient(const Tensor<T>&, const Tensor<T>&, const Tensor<T>& dy) {
  backprop(dy, true, nullptr);
}

template <class T>
void BatchNorm<T>::gradient_and_backward(const Tensor<T>& x, const Tensor<T>&, const Tensor<T>& dy,
                                         Tensor<T>& dx) {
  dx.resize(x.shape());
  backprop(dy, true, &dx);
}

template <class T>
std::vector<Param<T>> BatchNorm<T>::params() {
  return {{this->name() + ".gamma", &gamma_, &dgamma_, false},
          {this->name() + ".beta", &beta_, &dbeta_, false}};
}

template <class T>
std::vector<std::pair<std::string, Tensor<T>*>> BatchNorm<T>::buffers() {
  return {{this->name() + ".running_mean", &running_mean_},
          {this->name() + ".running_var", &running_var_}};
}

template <class T>
std::vector<std::pair<std::string, Shape>> BatchNorm<T>::stored_shapes(const Shape& input) const {
  if ((input.size() != 1 && input.size() != 3) || input[0] < 1) return {};
  const Shape c{input[0]};
  const std::string& n = this->name();
  return {{n + ".gamma", c}, {n + ".beta", c}, {n + ".running_mean", c}, {n + ".running_var", c}};
}

template class BatchNorm<float>;
template class BatchNorm<double>;

}  // namespace bpkit
