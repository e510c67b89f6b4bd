// Counter storage for kernels/cuda/stats.h. Launch sites form an intrusive list built during
// static initialisation (and on the first launch from each site), so counting a launch is one
// relaxed atomic add; the maps are only built when a snapshot is taken.
#include "kernels/cuda/stats.h"

#include <mutex>

namespace asap::cuda::stats {
namespace {

struct Registry {
  std::mutex mu;
  LaunchSite* sites = nullptr;
  std::map<std::string, uint64_t> syncs, blas;
  uint64_t host_syncs = 0;
  std::atomic<uint64_t> h2d{0}, d2h{0}, d2d{0}, blas_calls{0}, graph_launches{0}, graph_kernel_nodes{0}, staged{0};
};

Registry& reg() {
  static Registry* r = new Registry();  // leaked: launch sites may count during static teardown
  return *r;
}

}  // namespace

LaunchSite::LaunchSite(const char* kernel, const char* file, int line) : kernel_(kernel), file_(file), line_(line) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  next = r.sites;
  r.sites = this;
}

void count_sync(const char* reason) {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  ++r.host_syncs;
  ++r.syncs[reason];
}

void count_copy(Copy kind, uint64_t bytes) {
  Registry& r = reg();
  switch (kind) {
    case Copy::HostToDevice: r.h2d.fetch_add(bytes, std::memory_order_relaxed); break;
    case Copy::DeviceToHost: r.d2h.fetch_add(bytes, std::memory_order_relaxed); break;
    case Copy::DeviceToDevice: r.d2d.fetch_add(bytes, std::memory_order_relaxed); break;
  }
}

void count_blas(const char*) { reg().blas_calls.fetch_add(1, std::memory_order_relaxed); }
void count_staged(uint64_t bytes) { reg().staged.fetch_add(bytes, std::memory_order_relaxed); }
void count_graph_launch(uint64_t kernel_nodes) {
  reg().graph_launches.fetch_add(1, std::memory_order_relaxed);
  reg().graph_kernel_nodes.fetch_add(kernel_nodes, std::memory_order_relaxed);
}

Snapshot snapshot() {
  Registry& r = reg();
  Snapshot s;
  std::lock_guard<std::mutex> lock(r.mu);
  for (LaunchSite* p = r.sites; p; p = p->next) {
    const uint64_t c = p->count();
    if (c == 0) continue;
    s.launches += c;
    s.launches_by_kernel[p->kernel()] += c;
  }
  s.host_syncs = r.host_syncs;
  s.syncs_by_reason = r.syncs;
  s.bytes_h2d = r.h2d.load();
  s.bytes_d2h = r.d2h.load();
  s.bytes_d2d = r.d2d.load();
  s.blas_calls = r.blas_calls.load();
  s.graph_launches = r.graph_launches.load();
  s.graph_kernel_nodes = r.graph_kernel_nodes.load();
  s.bytes_h2d_staged = r.staged.load();
  return s;
}

void reset() {
  Registry& r = reg();
  std::lock_guard<std::mutex> lock(r.mu);
  for (LaunchSite* p = r.sites; p; p = p->next) p->reset();
  r.host_syncs = 0;
  r.syncs.clear();
  r.h2d = r.d2h = r.d2d = r.blas_calls = r.graph_launches = r.graph_kernel_nodes = r.staged = 0;
}

namespace {
std::map<std::string, uint64_t> diff_map(const std::map<std::string, uint64_t>& a,
                                         const std::map<std::string, uint64_t>& b) {
  std::map<std::string, uint64_t> d;
  for (const auto& [k, v] : a) {
    auto it = b.find(k);
    const uint64_t before = it == b.end() ? 0 : it->second;
    if (v > before) d[k] = v - before;
  }
  return d;
}
}  // namespace

Snapshot diff(const Snapshot& after, const Snapshot& before) {
  Snapshot d;
  d.launches = after.launches - before.launches;
  d.launches_by_kernel = diff_map(after.launches_by_kernel, before.launches_by_kernel);
  d.host_syncs = after.host_syncs - before.host_syncs;
  d.syncs_by_reason = diff_map(after.syncs_by_reason, before.syncs_by_reason);
  d.bytes_h2d = after.bytes_h2d - before.bytes_h2d;
  d.bytes_d2h = after.bytes_d2h - before.bytes_d2h;
  d.bytes_d2d = after.bytes_d2d - before.bytes_d2d;
  d.blas_calls = after.blas_calls - before.blas_calls;
  d.graph_launches = after.graph_launches - before.graph_launches;
  d.graph_kernel_nodes = after.graph_kernel_nodes - before.graph_kernel_nodes;
  d.bytes_h2d_staged = after.bytes_h2d_staged - before.bytes_h2d_staged;
  return d;
}

}  // namespace asap::cuda::stats
