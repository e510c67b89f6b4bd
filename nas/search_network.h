// The DARTS search supernet with ASAP's structural pruning. Alphas are shared by all cells of one
// type (normal / reduce); pruning an (edge, op) of a type removes that op from every such cell.
// The ExecutionPlan (alive ops per edge + the tensors that gather their weights) is rebuilt
// after each prune and is static in between, so a dead op costs no kernel, no tape node, no memory.
#pragma once
#include <array>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "nas/module.h"

namespace asap::nas {

enum class CellType { Normal = 0, Reduce = 1 };
const char* cell_type_name(CellType t);
CellType parse_cell_type(const std::string& s);

int num_edges(int nodes);                     // 2 + 3 + ... + (nodes + 1)
int edge_index(int node, int input);          // input 0,1 = cell inputs, 2.. = earlier nodes
std::pair<int, int> edge_endpoints(int edge);  // (node, input)

struct SearchNetworkConfig {
  int64_t C = 16;
  int layers = 8;
  int nodes = 4;
  int stem_multiplier = 3;
  int64_t in_channels = 3;
  int num_classes = 10;
  std::vector<int> reduction_cells;  // empty: {layers/3, 2*layers/3}
  std::vector<std::string> primitives;  // empty: the DARTS order
  // Alphas of decided entries (pruned ops, and the lone op of a converged edge) stay where they
  // were when decided: keep_decided_alphas() undoes what weight decay alone would do to them.
  bool freeze_decided_alphas = true;
};

// Per cell type: which op indices run on each edge and where their weights come from.
struct ExecutionPlan {
  struct Edge {
    std::vector<int> exec_ops;  // alive ops other than `none`, ascending
    int64_t offset = 0;         // start of this edge's weights in the gathered vector
    bool dead() const { return exec_ops.empty(); }
  };
  std::vector<Edge> edges;
  int64_t total_exec = 0;
  Tensor mask;    // [E, O]: 0 where alive, -1e30 where pruned (softmax over alive ops only)
  Tensor select;  // [E*O, total_exec] one-hot columns picking the executed ops' Phi
};

class MixedOp;

class Cell : public Module {
 public:
  Cell(const SearchNetworkConfig& cfg, int64_t c_pp, int64_t c_p, int64_t c, bool reduction,
       bool reduction_prev, const std::vector<std::string>& prims, Generator& gen, Device dev);
  // weights[e]: 1-D weights of edge e's executed ops (undefined for dead edges).
  Tensor forward(const Tensor& s0, const Tensor& s1, const ExecutionPlan& plan,
                 const std::vector<Tensor>& weights);
  bool reduction() const { return reduction_; }
  MixedOp& edge(int e) { return *edges_[e]; }
  int64_t out_channels() const { return c_ * nodes_; }

 private:
  int nodes_;
  int64_t c_;
  bool reduction_;
  Module* pre0_;
  Module* pre1_;
  std::vector<MixedOp*> edges_;
};

class MixedOp : public Module {
 public:
  MixedOp(int64_t c, int stride, const std::vector<std::string>& prims, Generator& gen, Device dev);
  Tensor forward(const Tensor& x, const std::vector<int>& exec_ops, const Tensor& w);
  // Destroys op i; returns its parameters so that optimizers can drop their state.
  std::vector<Tensor> release(int op);
  bool has_op(int op) const { return ops_[op] != nullptr; }

 private:
  std::vector<std::string> names_;
  std::vector<Module*> ops_;  // owned as children; null once pruned
};

class SearchNetwork : public Module {
 public:
  SearchNetwork(const SearchNetworkConfig& cfg, Generator& gen, Device dev = Device::cpu());
  Tensor forward(const Tensor& x) override;  // logits [N, classes]

  const SearchNetworkConfig& config() const { return cfg_; }
  const std::vector<std::string>& primitives() const { return prims_; }
  int num_ops() const { return static_cast<int>(prims_.size()); }
  int num_edges() const { return edges_; }
  int none_index() const { return none_; }  // -1 when `none` is not in the list
  Device device() const { return dev_; }

  // Architecture parameters [E, O] (requires_grad leaves, NOT in parameters()/weights()).
  Tensor& alpha(CellType t) { return alphas_[static_cast<int>(t)]; }
  const Tensor& alpha(CellType t) const { return alphas_[static_cast<int>(t)]; }
  std::vector<Tensor> arch_parameters() const { return {alphas_[0], alphas_[1]}; }
  std::vector<Tensor> weights() const { return parameters(); }

  double temperature() const { return temperature_; }
  // Writes the host value and, once bound, the device copy in the step state.
  void set_temperature(double t);
  // From now on the Phi softmax reads 1/T on the device from a StepState vector
  // (engine/search_kernels.h), so the device may anneal T itself and a captured graph follows it.
  void bind_temperature(Tensor step_state);
  // The device-side alive mask of a cell type (0 alive, -1e30 pruned); the device prune rule
  // writes it between re-plans. rebuild_plan() rewrites it from the host alive mask.
  Tensor& device_mask(CellType t) { return plans_[idx(t)].mask; }

  bool alive(CellType t, int edge, int op) const { return alive_[idx(t)][edge][op] != 0; }
  int alive_count(CellType t, int edge) const;
  bool edge_dead(CellType t, int edge) const;  // only `none` left
  const std::vector<std::vector<uint8_t>>& alive_mask(CellType t) const { return alive_[idx(t)]; }
  // Prunes (t, edge, op) in every cell of type t and rebuilds the plan. Throws when it is the last
  // alive op of the edge or already pruned. Returns the released parameters.
  std::vector<Tensor> prune(CellType t, int edge, int op);
  int64_t pruned_ops() const;
  int64_t total_ops() const { return 2LL * edges_ * num_ops(); }
  double sparsity() const { return double(pruned_ops()) / double(total_ops()); }
  bool converged() const;  // every edge of both types has exactly one alive op

  // Phi over the alive ops of each edge (0 for pruned ops), on the host, at the current T.
  std::vector<std::vector<double>> phi(CellType t) const;
  // The same from host alphas of type t (saves a device read when the caller holds them).
  std::vector<std::vector<double>> phi(CellType t, const std::vector<std::vector<double>>& alpha) const;
  std::vector<std::vector<double>> alpha_host(CellType t) const;

  // Runs `alpha_step` (the optimizer's update of the alphas), then puts every decided entry
  // (pruned op, lone op of a converged edge) back to its value before the step: their loss
  // gradient is exactly zero, so only weight decay would move them, and it would move the most
  // confident (earliest decided) edges the most. Device-side (one tiny matmul + add per cell type
  // with decided entries), one host read of the alphas after each prune; nothing extra while no
  // entry is decided or when config().freeze_decided_alphas is off. A pure function of the alphas
  // and alive masks, so a resumed search matches an uninterrupted one.
  void keep_decided_alphas(const std::function<void()>& alpha_step);
  const ExecutionPlan& plan(CellType t) const { return plans_[idx(t)]; }
  // Incremented by every re-plan: a captured step graph is valid for one plan version only.
  uint64_t plan_version() const { return plan_version_; }

 private:
  static int idx(CellType t) { return static_cast<int>(t); }
  void rebuild_plan(CellType t);
  std::vector<Tensor> edge_weights(CellType t) const;  // differentiable gather of Phi

  SearchNetworkConfig cfg_;
  std::vector<std::string> prims_;
  int edges_ = 0;
  int none_ = -1;
  Device dev_;
  Tensor stem_w_;
  Module* stem_bn_ = nullptr;
  std::vector<Cell*> cells_;
  Tensor fc_w_, fc_b_;
  std::array<Tensor, 2> alphas_;
  std::array<std::vector<std::vector<uint8_t>>, 2> alive_;
  std::array<ExecutionPlan, 2> plans_;
  double temperature_ = 1.0;
  Tensor step_state_, inv_temperature_;  // bound StepState vector and its 0-d 1/T view
  uint64_t plan_version_ = 0;
  // keep_decided_alphas: per type, [E*O, E*O] diagonal keeping undecided entries, [E, O] values
  // of decided ones; rebuilt from the current alphas before the first step after a prune.
  std::array<Tensor, 2> keep_diag_, decided_values_;
  std::array<bool, 2> decided_stale_ = {true, true};
};

}  // namespace asap::nas
