// The arithmetic of the search loop's device bookkeeping, written once for the CPU kernels and the
// CUDA kernels (host-and-device functions over raw pointers). It must equal nas::Annealer and
// nas::accuracy step for step, in double: the device makes the same prune decisions as the host.
#pragma once
#include <cmath>
#include <cstdint>

#include "engine/search_kernels.h"

#if defined(__CUDACC__)
#define ASAP_HD __host__ __device__
#else
#define ASAP_HD
#endif

namespace asap::search_math {

#if !defined(__CUDA_ARCH__)
using std::exp;
using std::isfinite;
using std::pow;
#endif

// Number of rows of logits [N, K] whose first maximum is the label.
ASAP_HD inline int64_t correct_rows(const float* logits, const int32_t* labels, int64_t row0, int64_t row1,
                                    int64_t stride_rows, int64_t K) {
  int64_t correct = 0;
  for (int64_t i = row0; i < row1; i += stride_rows) {
    int64_t best = 0;
    for (int64_t j = 1; j < K; ++j)
      if (logits[i * K + j] > logits[i * K + best]) best = j;
    correct += best == static_cast<int64_t>(labels[i]);
  }
  return correct;
}

ASAP_HD inline double temperature_at(const ScheduleConsts& s, double t) {
  if (s.constant_T) return s.T0;
  const double T = s.T0 * pow(s.beta, t);
  return T > s.T_min ? T : s.T_min;
}

// Accumulation of one half-step; `correct` from correct_rows over all N rows.
ASAP_HD inline void record(double* st, double loss, double norm, int64_t correct, int64_t N, int slot,
                           bool advance, const ScheduleConsts& s) {
  using namespace step_state;
  const bool finite = isfinite(loss) && isfinite(norm);
  if (finite) {
    st[kAccum + 3 * slot] += loss;
    st[kAccum + 3 * slot + 1] += N ? double(correct) / double(N) : 0.0;
    st[kAccum + 3 * slot + 2] += 1.0;
  } else if (st[kFirstBad] < 0) {
    st[kFirstBad] = st[kStep];
    st[kBadKind] = slot + 1;
  }
  if (advance) {
    st[kStep] += 1.0;
    if (s.per_step_T) {
      st[kT] = temperature_at(s, st[kStep]);
      st[kInvT] = 1.0 / st[kT];
    }
  }
}

// The prune rule of nas::Annealer::prune for one cell type (see there).
ASAP_HD inline void prune_cell(const float* alpha, float* mask, double* st, int t, const ScheduleConsts& s) {
  using namespace step_state;
  const double T = st[kT], step = st[kStep], epoch = st[kEpoch];
  for (int e = 0; e < s.edges; ++e) {
    const float* a = alpha + e * s.ops;
    float* m = mask + e * s.ops;
    int alive = 0;
    double mx = -INFINITY;
    for (int o = 0; o < s.ops; ++o)
      if (m[o] == 0.f) {
        ++alive;
        const double v = double(a[o]) / T;
        mx = v > mx ? v : mx;
      }
    if (alive <= 1) continue;
    double sum = 0;
    for (int o = 0; o < s.ops; ++o)
      if (m[o] == 0.f) sum += exp(double(a[o]) / T - mx);
    const double theta = s.fraction ? s.c / alive : s.theta0 * pow(s.gamma, s.theta_per_step ? step : epoch);
    // phi(o) exactly as SearchNetwork::phi: exp(a/T - max) / sum.
    int best = -1;
    double best_phi = 0;
    for (int o = 0; o < s.ops; ++o) {
      if (m[o] != 0.f) continue;
      const double phi = exp(double(a[o]) / T - mx) / sum;
      if (best < 0 || phi > best_phi) { best = o; best_phi = phi; }
    }
    for (int o = 0; o < s.ops; ++o) {
      if (o == best || m[o] != 0.f) continue;
      const double phi = exp(double(a[o]) / T - mx) / sum;
      if (!(phi < theta)) continue;
      m[o] = -1e30f;
      double* log = st + log_index(t, e, o, s.edges, s.ops);
      log[0] = step;
      log[1] = phi;
      log[2] = T;
      log[3] = theta;
      log[4] = best;
      log[5] = best_phi;
      log[6] = double(a[best]) - double(a[o]);
    }
  }
}

}  // namespace asap::search_math
