#include "bpkit/optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "bpkit/threading.h"
#include "kernels/kernels.h"

namespace bpkit {
namespace {

template <class T>
std::vector<Tensor<T>> zeros_like(const std::vector<Param<T>>& params, T fill = T(0)) {
  std::vector<Tensor<T>> out;
  out.reserve(params.size());
  for (const auto& p : params) out.emplace_back(p.value->shape(), fill);
  return out;
}

template <class T>
std::vector<Tensor<T>*> pointers(std::vector<Tensor<T>>& a, std::vector<Tensor<T>>* b = nullptr) {
  std::vector<Tensor<T>*> out;
  for (auto& t : a) out.push_back(&t);
  if (b)
    for (auto& t : *b) out.push_back(&t);
  return out;
}

// Parameter updates are memory-bound streams; below this many elements one thread is faster.
constexpr int64_t kGrain = 1 << 14;

void check_lr(double lr, const char* who) {
  if (!(lr > 0) || !std::isfinite(lr))
    throw std::invalid_argument(std::string(who) +
                                ": learning rate must be positive and finite, "
                                "got " +
                                std::to_string(lr));
}

}  // namespace

template <class T>
Sgd<T>::Sgd(std::vector<Param<T>> params, double lr, double momentum, bool nesterov,
            double weight_decay)
    : Optimizer<T>(std::move(params)),
      momentum_(momentum),
      weight_decay_(weight_decay),
      nesterov_(nesterov) {
  check_lr(lr, "sgd");
  if (!(momentum >= 0 && momentum < 1))
    throw std::invalid_argument("sgd: momentum must be in [0, 1), got " + std::to_string(momentum));
  if (nesterov && momentum == 0)
    throw std::invalid_argument("sgd: nesterov needs a momentum above 0");
  this->lr_ = lr;
  velocity_ = zeros_like(this->params_);
}

template <class T>
void Sgd<T>::step() {
  const T lr = T(this->lr_), mu = T(momentum_);
  for (size_t k = 0; k < this->params_.size(); ++k) {
    const Param<T>& p = this->params_[k];
    T* w = p.value->data();
    const T* g = p.grad->data();
    T* v = velocity_[k].data();
    const T wd = p.decay ? T(weight_decay_) : T(0);
    const bool nesterov = nesterov_;
    parallel_for(p.value->size(), kGrain, [=](int64_t b, int64_t e) {
      BPKIT_ISA_CALL(opt::sgd<T>, w + b, g + b, v + b, e - b, lr, mu, wd, nesterov);
    });
  }
}

template <class T>
std::vector<Tensor<T>*> Sgd<T>::state() {
  return pointers(velocity_);
}

template <class T>
Adam<T>::Adam(std::vector<Param<T>> params, double lr, double beta1, double beta2, double eps,
              double weight_decay, bool decoupled)
    : Optimizer<T>(std::move(params)),
      beta1_(beta1),
      beta2_(beta2),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_(decoupled) {
  check_lr(lr, "adam");
  if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps > 0))
    throw std::invalid_argument("adam: betas must be in [0, 1) and eps positive");
  this->lr_ = lr;
  m_ = zeros_like(this->params_);
  v_ = zeros_like(this->params_);
}

template <class T>
void Adam<T>::step() {
  ++t_;
  const double c1 = 1 - std::pow(beta1_, double(t_)), c2 = 1 - std::pow(beta2_, double(t_));
  // Folding the bias corrections into the step size and epsilon: w −= lr/c1 · m / (√(v/c2) + ε).
  const T step = T(this->lr_ / c1), inv_c2 = T(1 / c2), b1 = T(beta1_), b2 = T(beta2_);
  const T eps = T(eps_);
  for (size_t k = 0; k < this->params_.size(); ++k) {
    const Param<T>& p = this->params_[k];
    T* w = p.value->data();
    const T* g = p.grad->data();
    T* m = m_[k].data();
    T* v = v_[k].data();
    const T wd = p.decay ? T(weight_decay_) : T(0);
    const T l2 = decoupled_ ? T(0) : wd, shrink = decoupled_ ? T(1) - T(this->lr_) * wd : T(1);
    parallel_for(p.value->size(), kGrain, [=](int64_t b, int64_t e) {
      BPKIT_ISA_CALL(opt::adam<T>, w + b, g + b, m + b, v + b, e - b, l2, shrink, b1, b2, step,
                     inv_c2, eps);
    });
  }
}

template <class T>
std::vector<Tensor<T>*> Adam<T>::state() {
  return pointers(m_, &v_);
}

template <class T>
Rprop<T>::Rprop(std::vector<Param<T>> params, double initial_step, double eta_minus,
                double eta_plus, double step_min, double step_max)
    : Optimizer<T>(std::move(params)),
      eta_minus_(eta_minus),
      eta_plus_(eta_plus),
      step_min_(step_min),
      step_max_(step_max) {
  check_lr(initial_step, "rprop");
  if (!(eta_minus > 0 && eta_minus < 1) || !(eta_plus > 1) || !(step_min > 0) ||
      !(step_max >= step_min))
    throw std::invalid_argument(
        "rprop: need 0 < eta_minus < 1 < eta_plus and 0 < step_min <= "
        "step_max");
  this->lr_ = initial_step;
  step_ = zeros_like(this->params_, T(initial_step));
  prev_grad_ = zeros_like(this->params_);
}

template <class T>
void Rprop<T>::step() {
  const T up = T(eta_plus_), down = T(eta_minus_), lo = T(step_min_), hi = T(step_max_);
  for (size_t k = 0; k < this->params_.size(); ++k) {
    const Param<T>& p = this->params_[k];
    T* w = p.value->data();
    const T* g = p.grad->data();
    T* s = step_[k].data();
    T* prev = prev_grad_[k].data();
    const int64_t n = p.value->size();
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      const T sign_change = gi * prev[i];
      if (sign_change > 0) {
        s[i] = std::min(s[i] * up, hi);
      } else if (sign_change < 0) {
        s[i] = std::max(s[i] * down, lo);
        gi = 0;  // iRprop−: no step after a sign change, and no sign comparison next time
      }
      w[i] -= gi > 0 ? s[i] : (gi < 0 ? -s[i] : T(0));
      prev[i] = gi;
    }
  }
}

template <class T>
std::vector<Tensor<T>*> Rprop<T>::state() {
  return pointers(step_, &prev_grad_);
}

double Schedule::lr_at(double base_lr, double epoch) const {
  switch (kind) {
    case kConstant:
      return base_lr;
    case kStep:
      return base_lr * std::pow(gamma, std::floor(std::floor(epoch) / std::max(1, step_size)));
    case kCosine: {
      const double t = std::min(1.0, epoch / std::max(1, total_epochs));
      return min_lr + (base_lr - min_lr) * 0.5 * (1 + std::cos(M_PI * t));
    }
  }
  return base_lr;
}

template <class T>
double clip_grad_norm(const std::vector<Param<T>>& params, double max_norm) {
  double sq = 0;
  for (const auto& p : params)
    for (T g : *p.grad) sq += double(g) * double(g);
  const double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    const T scale = T(max_norm / norm);
    for (const auto& p : params)
      for (T& g : *p.grad) g *= scale;
  }
  return norm;
}

#define BPKIT_OPT(T)       \
  template class Sgd<T>;   \
  template class Adam<T>;  \
  template class Rprop<T>; \
  template double clip_grad_norm<T>(const std::vector<Param<T>>&, double);
BPKIT_OPT(float)
BPKIT_OPT(double)

}  // namespace bpkit
