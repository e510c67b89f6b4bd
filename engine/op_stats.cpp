#include "engine/op_stats.h"

#include <atomic>
#include <deque>
#include <mutex>
#include <unordered_map>

namespace asap {
namespace {

// One counter per op name (keyed by the literal's address: OpScope is always given a literal).
struct Counter {
  const char* name = nullptr;
  std::atomic<uint64_t> calls{0};
};

// The registry only grows (a deque keeps the counters where they are), so a thread can cache a
// counter's address: after a thread's first call of an op, counting it is one relaxed atomic add,
// with no lock (the mutex is taken only on that first call and by the queries).
std::mutex g_mu;
std::deque<Counter>& registry() {
  static auto* d = new std::deque<Counter>();
  return *d;
}
std::atomic<uint64_t> g_total{0};

Counter* counter_for(const char* name) {
  thread_local std::unordered_map<const char*, Counter*> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second;
  std::lock_guard<std::mutex> lock(g_mu);
  Counter* c = nullptr;
  for (Counter& k : registry())
    if (k.name == name) c = &k;
  if (!c) {
    c = &registry().emplace_back();
    c->name = name;
  }
  cache.emplace(name, c);
  return c;
}

}  // namespace

void count_op(const char* name) {
  g_total.fetch_add(1, std::memory_order_relaxed);
  counter_for(name)->calls.fetch_add(1, std::memory_order_relaxed);
}

uint64_t op_count(const std::string& name) {
  std::lock_guard<std::mutex> lock(g_mu);
  uint64_t n = 0;
  for (const Counter& k : registry())  // equal strings at different addresses count together
    if (name == k.name) n += k.calls.load(std::memory_order_relaxed);
  return n;
}

uint64_t op_count_total() { return g_total.load(); }

void reset_op_counts() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (Counter& k : registry()) k.calls.store(0, std::memory_order_relaxed);
  g_total.store(0);
}

}  // namespace asap
