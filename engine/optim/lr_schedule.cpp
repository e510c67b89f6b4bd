#include "engine/optim/lr_schedule.h"

#include <cmath>

#include "engine/error.h"
#include "engine/optim/optimizer.h"

namespace asap {

void LrSchedule::apply(Optimizer& opt, int64_t epoch) const { opt.set_lr(lr_at(epoch)); }

CosineAnnealingLR::CosineAnnealingLR(double lr_max, int64_t t_max, double lr_min)
    : lr_max_(lr_max), t_max_(t_max), lr_min_(lr_min) {
  ASAP_CHECK(t_max > 0, "CosineAnnealingLR: t_max must be > 0, got ", t_max);
}

double CosineAnnealingLR::lr_at(int64_t epoch) const {
  ASAP_CHECK(epoch >= 0, "CosineAnnealingLR: negative epoch ", epoch);
  const double pi = std::acos(-1.0);
  return lr_min_ + (lr_max_ - lr_min_) * (1.0 + std::cos(pi * static_cast<double>(epoch) / t_max_)) / 2.0;
}

}  // namespace asap
