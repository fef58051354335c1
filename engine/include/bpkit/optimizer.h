// Optimizers own their state (momentum, Adam moments, RPROP step sizes) and update parameters in
// place from the gradients the network accumulated.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bpkit/layer.h"

namespace bpkit {

template <class T>
class Optimizer {
 public:
  explicit Optimizer(std::vector<Param<T>> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual std::string kind() const = 0;
  // One update from the current gradients.
  virtual void step() = 0;
  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  const std::vector<Param<T>>& params() const { return params_; }
  // Optimizer state tensors, for checkpoints.
  virtual std::vector<Tensor<T>*> state() { return {}; }
  // Steps taken (Adam's bias correction depends on it), for checkpoints.
  virtual int64_t steps() const { return 0; }
  virtual void set_steps(int64_t) {}

 protected:
  std::vector<Param<T>> params_;
  double lr_ = 0.01;
};

// SGD with momentum, the "delta rule with momentum": v ← μ·v + g (+ λ·w), w ← w − η·v.
// With nesterov: w ← w − η·(g + μ·v). Same convention as torch.optim.SGD.
template <class T>
class Sgd : public Optimizer<T> {
 public:
  Sgd(std::vector<Param<T>> params, double lr, double momentum = 0, bool nesterov = false,
      double weight_decay = 0);
  std::string kind() const override { return nesterov_ ? "nesterov" : "sgd"; }
  void step() override;
  std::vector<Tensor<T>*> state() override;

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
  std::vector<Tensor<T>> velocity_;
};

// Adam (Kingma & Ba) with bias correction. weight_decay is decoupled (AdamW) when `decoupled`,
// otherwise added to the gradient (L2).
template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Param<T>> params, double lr = 1e-3, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0, bool decoupled = true);
  std::string kind() const override { return "adam"; }
  void step() override;
  std::vector<Tensor<T>*> state() override;
  int64_t steps() const override { return t_; }
  void set_steps(int64_t t) override { t_ = t; }

 private:
  double beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_;
  int64_t t_ = 0;
  std::vector<Tensor<T>> m_, v_;
};

// RPROP (Riedmiller & Braun), the iRprop− variant: each weight has its own step size, grown by
// eta_plus while the gradient keeps its sign and shrunk by eta_minus when it flips (and that
// step's update skipped). Meant for full-batch or large-batch training. lr is the initial step.
template <class T>
class Rprop : public Optimizer<T> {
 public:
  Rprop(std::vector<Param<T>> params, double initial_step = 0.01, double eta_minus = 0.5,
        double eta_plus = 1.2, double step_min = 1e-6, double step_max = 50);
  std::string kind() const override { return "rprop"; }
  void step() override;
  std::vector<Tensor<T>*> state() override;

 private:
  double eta_minus_, eta_plus_, step_min_, step_max_;
  std::vector<Tensor<T>> step_, prev_grad_;
};

// Learning-rate schedules. `epoch` counts from 0 and may be fractional (epoch + the fraction of its
// batches done): the training loop updates the rate before every batch, so a cosine schedule decays
// smoothly within epochs while a step schedule changes only at epoch boundaries.
struct Schedule {
  enum Kind { kConstant, kStep, kCosine } kind = kConstant;
  int step_size = 1;  // step: multiply by gamma every step_size epochs
  double gamma = 0.1;
  int total_epochs = 1;  // cosine: anneal from base to min_lr over total_epochs
  double min_lr = 0;
  double lr_at(double base_lr, double epoch) const;
};

// Scales all gradients so that their global L2 norm is at most max_norm (no-op when max_norm <= 0).
// Returns the norm before clipping.
template <class T>
double clip_grad_norm(const std::vector<Param<T>>& params, double max_norm);

}  // namespace bpkit
