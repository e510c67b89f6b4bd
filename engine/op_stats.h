// Per-op invocation counters and NVTX ranges. Every op opens an OpScope: it names an NVTX range
// (for Nsight) and counts the call, so tests can prove a pruned op is never executed.
#pragma once
#include <cstdint>
#include <string>

#include "engine/nvtx.h"

namespace asap {

void count_op(const char* name);
uint64_t op_count(const std::string& name);  // calls since the last reset
uint64_t op_count_total();
void reset_op_counts();

class OpScope {
 public:
  explicit OpScope(const char* name) : range_(name) { count_op(name); }

 private:
  NvtxRange range_;
};

}  // namespace asap
