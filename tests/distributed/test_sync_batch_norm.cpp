// Synchronised batch norm against one process over the whole batch: every rank holds an uneven
// shard of one batch whose channels have a large mean (where float rounding of the statistics
// shows), normalises it with distributed.sync_bn and back-propagates its own loss; the outputs,
// the running statistics, dx (scaled by the rank's share) and the summed dgamma / dbeta must be
// the single process's.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/distributed/agreement.h"
#include "engine/distributed/sync_batch_norm.h"
#include "engine/ops.h"
#include "tests/distributed/dist_test_world.h"
#include "tests/test_util.h"

using namespace asap;

namespace {

struct BnResult {
  std::vector<double> y, dx, dgamma, dbeta, rm, rv;
};

// loss = sum(conv3x3(bn(x))) / n: a gradient that varies over samples, channels and pixels.
BnResult run_bn(const Tensor& x_in, const Tensor& w, DType dt) {
  Tensor x = x_in.clone();
  x.set_requires_grad(true);
  const int64_t C = x.dim(1);
  Tensor gamma = test::random_tensor({C}, 11, dt, 0.5, 1.5).set_requires_grad(true);
  Tensor beta = test::random_tensor({C}, 12, dt, -0.5, 0.5).set_requires_grad(true);
  Tensor rm = Tensor::zeros({C}, dt), rv = Tensor::full({C}, 1.0, dt);
  Tensor y = ops::batch_norm(x, gamma, beta, rm, rv, true);
  Conv2dParams cp;
  cp.padding = 1;
  Tensor loss = ops::mul_scalar(ops::sum(ops::conv2d(y, w, cp)), 1.0 / double(x.dim(0)));
  backward(loss);
  return {y.to_vector_f64(), x.grad().to_vector_f64(), gamma.grad().to_vector_f64(), beta.grad().to_vector_f64(),
          rm.to_vector_f64(), rv.to_vector_f64()};
}

void check_sync_bn(DType dt, double tol) {
  dist::Communicator& world = test_world();
  const int W = world.size(), r = world.rank();
  const int64_t N = 3 * W + 1, C = 5, H = 6;  // N % W != 0: uneven shards
  Tensor x = test::random_tensor({N, C, H, H}, 7, dt, 49.0, 51.0);  // mean ~50, std ~0.6
  Tensor w = test::random_tensor({1, C, 3, 3}, 8, dt);

  dist::set_sync_batch_norm(nullptr);
  const BnResult ref = run_bn(x, w, dt);

  const dist::Shard s = dist::shard_of(N, r, W);
  dist::set_sync_batch_norm(&world);
  BnResult mine;
  try {
    mine = run_bn(x.narrow(0, s.start, s.count).contiguous(), w, dt);
  } catch (...) {
    dist::set_sync_batch_norm(nullptr);
    throw;
  }
  dist::set_sync_batch_norm(nullptr);

  const int64_t per = C * H * H;
  const double share = double(s.count) / double(N);
  std::vector<double> y_ref(ref.y.begin() + s.start * per, ref.y.begin() + (s.start + s.count) * per);
  std::vector<double> dx_ref(ref.dx.begin() + s.start * per, ref.dx.begin() + (s.start + s.count) * per);
  std::vector<double> dx_scaled(mine.dx);
  for (double& v : dx_scaled) v *= share;
  CHECK(test::max_rel_error(mine.y, y_ref) < tol);
  CHECK(test::max_rel_error(dx_scaled, dx_ref) < tol);
  CHECK(test::max_rel_error(mine.rm, ref.rm) < tol);
  CHECK(test::max_rel_error(mine.rv, ref.rv) < tol);
  // Parameter gradients: each rank's share, weighed and summed as the gradient all-reduce does.
  std::vector<double> dg(mine.dgamma), db(mine.dbeta);
  for (double& v : dg) v *= share;
  for (double& v : db) v *= share;
  world.allreduce_sum(dg.data(), dg.size());
  world.allreduce_sum(db.data(), db.size());
  CHECK(test::max_rel_error(dg, ref.dgamma) < tol);
  CHECK(test::max_rel_error(db, ref.dbeta) < tol);
}

}  // namespace

TEST_CASE("sync BN over uneven shards equals one process over the batch (float64)", "[dist]") {
  check_sync_bn(DType::F64, 1e-10);
}

TEST_CASE("sync BN over uneven shards equals one process over the batch (float32)", "[dist]") {
  check_sync_bn(DType::F32, 2e-5);
}

TEST_CASE("without sync BN each rank normalises its own shard", "[dist]") {
  // The control: per-rank statistics differ from the batch's, so the test above can fail.
  dist::Communicator& world = test_world();
  if (world.size() == 1) return;
  const int64_t N = 3 * world.size() + 1;
  Tensor x = test::random_tensor({N, 5, 6, 6}, 7, DType::F64, 49.0, 51.0);
  Tensor w = test::random_tensor({1, 5, 3, 3}, 8, DType::F64);
  const BnResult ref = run_bn(x, w, DType::F64);
  const dist::Shard s = dist::shard_of(N, world.rank(), world.size());
  const BnResult mine = run_bn(x.narrow(0, s.start, s.count).contiguous(), w, DType::F64);
  const int64_t per = 5 * 36;
  std::vector<double> y_ref(ref.y.begin() + s.start * per, ref.y.begin() + (s.start + s.count) * per);
  CHECK(test::max_rel_error(mine.y, y_ref) > 1e-3);
}
