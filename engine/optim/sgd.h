// SGD with momentum, L2 weight decay and optional Nesterov, as torch.optim.SGD (dampening 0):
// the DARTS weight optimizer (lr 0.025 cosine, momentum 0.9, wd 3e-4).
#pragma once
#include "engine/optim/optimizer.h"

namespace asap {

class SGD : public Optimizer {
 public:
  // State keys: "sgd.momentum.<name>" (only when momentum != 0), "sgd.step[.<name>]".
  SGD(std::vector<Tensor> params, double lr, double momentum = 0.0, double weight_decay = 0.0,
      bool nesterov = false, std::vector<std::string> names = {});
  void step() override;

  double momentum() const { return momentum_; }
  double weight_decay() const { return weight_decay_; }

 private:
  double momentum_, weight_decay_;
  bool nesterov_;
};

}  // namespace asap
