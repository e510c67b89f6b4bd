#include "engine/op_stats.h"

#include <atomic>
#include <mutex>
#include <unordered_map>

namespace asap {
namespace {
std::mutex g_mu;
// Keyed by the literal's address first so the hot path does not hash strings.
std::unordered_map<const char*, uint64_t>& fast_counts() {
  static auto* m = new std::unordered_map<const char*, uint64_t>();
  return *m;
}
std::atomic<uint64_t> g_total{0};
}  // namespace

void count_op(const char* name) {
  g_total.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_mu);
  ++fast_counts()[name];
}

uint64_t op_count(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mu);
  uint64_t n = 0;
  for (auto& kv : fast_counts())
    if (name == kv.first) n += kv.second;
  return n;
}

uint64_t op_count_total() { return g_total.load(); }

void reset_op_counts() {
  std::lock_guard<std::mutex> lock(g_mu);
  fast_counts().clear();
  g_total.store(0);
}

}  // namespace asap
