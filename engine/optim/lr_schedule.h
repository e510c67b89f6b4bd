// Epoch-indexed learning-rate schedules. lr_at(epoch) is a pure function of the 0-based epoch, so
// a resumed run gets the same rate without replaying scheduler steps.
#pragma once
#include <cstdint>

namespace asap {

class Optimizer;

class LrSchedule {
 public:
  virtual ~LrSchedule() = default;
  virtual double lr_at(int64_t epoch) const = 0;
  // Sets the optimizer's rate for this epoch (call at the start of each epoch).
  void apply(Optimizer& opt, int64_t epoch) const;
};

class ConstantLR : public LrSchedule {
 public:
  explicit ConstantLR(double lr) : lr_(lr) {}
  double lr_at(int64_t) const override { return lr_; }

 private:
  double lr_;
};

// torch.optim.lr_scheduler.CosineAnnealingLR in closed form:
// lr_min + (lr_max - lr_min) * (1 + cos(pi * epoch / t_max)) / 2. DARTS: lr_max 0.025,
// lr_min 0.001, t_max = epochs. As PyTorch's closed form, epochs past t_max continue the cosine.
class CosineAnnealingLR : public LrSchedule {
 public:
  CosineAnnealingLR(double lr_max, int64_t t_max, double lr_min = 0.0);
  double lr_at(int64_t epoch) const override;

 private:
  double lr_max_;
  int64_t t_max_;
  double lr_min_;
};

}  // namespace asap
