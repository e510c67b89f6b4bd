// Adam as torch.optim.Adam: weight decay is L2 (added to the gradient, not decoupled as AdamW),
// which is what DARTS uses for the architecture parameters (lr 3e-4, betas (0.5, 0.999), wd 1e-3).
// Each param keeps its own step count for bias correction (a param skipped for lack of a grad
// does not advance), as PyTorch.
#pragma once
#include "engine/optim/optimizer.h"

namespace asap {

class Adam : public Optimizer {
 public:
  // State keys: "adam.m.<name>", "adam.v.<name>", "adam.step.<name>", "adam.step".
  Adam(std::vector<Tensor> params, double lr, double beta1 = 0.9, double beta2 = 0.999,
       double eps = 1e-8, double weight_decay = 0.0, std::vector<std::string> names = {});
  void step() override;

 private:
  double beta1_, beta2_, eps_, weight_decay_;
};

}  // namespace asap
