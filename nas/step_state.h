// The search loop's device-resident state (engine/search_kernels.h): the step's losses,
// accuracies, NaN guard and ASAP's prune decisions are recorded on the compute device and read by
// the host only at log points, in one copy. On the CPU the same code runs with free reads.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/distributed/communicator.h"
#include "engine/search_kernels.h"
#include "nas/annealer.h"

namespace asap::nas {

// One read of the state vector at a log point.
struct StepReport {
  int64_t step = 0;        // completed steps
  int64_t first_bad = -1;  // first step with a non-finite loss or gradient norm, -1: none
  int bad_kind = 0;        // 1: weight step, 2: alpha step
  double loss_sum[2] = {0, 0}, acc_sum[2] = {0, 0};  // since the epoch started: train, val
  int64_t steps[2] = {0, 0};
  struct Pruned {
    CellType cell_type;
    int edge, op;
    int64_t step;
    double phi, T, theta;
    int winner;  // the edge's best op at that step
    double winner_phi, alpha_gap;
  };
  std::vector<Pruned> pruned;  // every op the device pruned, ordered by (step, cell type, edge, op)
  double mean_loss(int slot) const { return steps[slot] ? loss_sum[slot] / double(steps[slot]) : 0.0; }
  double mean_acc(int slot) const { return steps[slot] ? acc_sum[slot] / double(steps[slot]) : 0.0; }
};

// Data parallel: the epoch's loss and accuracy sums become the means over the ranks of each rank's
// sums (one host all-reduce at a log point). With equal shards that is the global batch's mean;
// the prune records need nothing, every rank's are the same.
void average_over_ranks(StepReport& r, dist::Communicator& comm);

ScheduleConsts schedule_consts(const AnnealConfig& a, int edges, int ops);

class StepState {
 public:
  StepState(Device dev, int edges, int ops, const AnnealConfig& anneal);
  Tensor& tensor() { return state_; }
  const ScheduleConsts& consts() const { return consts_; }

  // At an epoch start (a log point): zero the accumulators, set epoch, step and T (one launch).
  void begin_epoch(int epoch, int64_t step, double T);
  // One half-step; see SearchKernels::record_step.
  void record(const Tensor& loss, const Tensor& logits, const Tensor& labels, const Tensor& norm, int slot,
              bool advance);
  // The prune rule on the device for one cell type; masks the pruned ops' Phi at once.
  void prune_test(const Tensor& alpha, Tensor& mask, CellType t);
  // One device-to-host copy (a host synchronisation on a GPU).
  StepReport read() const;

 private:
  Device dev_;
  ScheduleConsts consts_;
  Tensor state_;
};

}  // namespace asap::nas
