#include "tools/data_parallel.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "engine/distributed/agreement.h"
#include "engine/error.h"
#include "nas/eval_train.h"
#include "nas/search.h"
#include "tools/config.h"
#include "tools/run_files.h"

namespace fs = std::filesystem;

namespace asap::run {

std::string peek_distributed_mode(const std::string& config, const std::string& resume_dir,
                                  const std::vector<std::string>& sets, double* timeout_s) {
  // Any problem here is reported by the real load that follows; a peek only picks the launch.
  for (const std::string& path : {config, resume_dir.empty() ? std::string() : resume_dir + "/config.yaml"}) {
    if (path.empty()) continue;
    try {
      const RunConfig c = load_config(path, sets);
      *timeout_s = c.distributed.timeout_s;
      return c.run.distributed;
    } catch (const Error&) {
    }
  }
  *timeout_s = DistributedSection().timeout_s;
  return "auto";
}

namespace {

// What a resume needs from the folder: everything but the lock, pictures, TensorBoard files and
// temporaries of an interrupted write.
bool travels(const fs::path& rel) {
  const std::string s = rel.generic_string(), name = rel.filename().string();
  if (s.rfind("tensorboard/", 0) == 0 || name == "asap_run.lock") return false;
  if (name.find(".tmp.") != std::string::npos) return false;
  return rel.extension() != ".png";
}

void broadcast_folder(dist::Communicator& host, const std::string& src, const std::string& dst) {
  std::string manifest;
  if (host.rank() == 0) {
    nlohmann::json files = nlohmann::json::array();
    if (fs::is_directory(src))
      for (const auto& e : fs::recursive_directory_iterator(src))
        if (e.is_regular_file() && travels(fs::relative(e.path(), src)))
          files.push_back(fs::relative(e.path(), src).generic_string());
    manifest = files.dump();
  }
  dist::broadcast_string(host, manifest, 0);
  for (const auto& f : nlohmann::json::parse(manifest)) {
    const std::string rel = f.get<std::string>();
    std::string bytes = host.rank() == 0 ? read_file((fs::path(src) / rel).string()) : std::string();
    dist::broadcast_string(host, bytes, 0);
    if (host.rank() == 0) continue;
    const fs::path out = fs::path(dst) / rel;
    fs::create_directories(out.parent_path());
    write_file_atomic(out.string(), bytes);
  }
}

}  // namespace

namespace {

// Scratch folders of ranks that were killed (SIGKILL leaves no chance to clean up): named
// asap_run-rankK-PID, removed when that process no longer exists.
void remove_dead_scratch(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("asap_run-rank", 0) != 0) continue;
    const size_t dash = name.rfind('-');
    const long pid = std::atol(name.c_str() + dash + 1);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

std::string setup_rank_folder(DataParallel& dp, const std::string& resume_dir) {
  if (!dp.root()) {
    const char* tmp = std::getenv("TMPDIR");
    const fs::path base(tmp && *tmp ? tmp : "/tmp");
    remove_dead_scratch(base);
    dp.scratch = (base / ("asap_run-rank" + std::to_string(dp.rank()) + "-" + std::to_string(::getpid()))).string();
    fs::remove_all(dp.scratch);
    fs::create_directories(dp.scratch);
  }
  if (!resume_dir.empty()) broadcast_folder(*dp.host, resume_dir, dp.scratch);
  return dp.root() ? resume_dir : dp.scratch;
}

void remove_rank_folder(const DataParallel& dp) noexcept {
  if (dp.scratch.empty()) return;
  std::error_code ec;
  fs::remove_all(dp.scratch, ec);
}

void take_shard(nas::Batch& b, const DataParallel& dp) {
  const int64_t n = b.x.dim(0);
  if (n < dp.size())
    throw dist::DistributedError("distributed: a batch of " + std::to_string(n) + " samples cannot feed " +
                                 std::to_string(dp.size()) + " ranks (the last batch of an epoch is the data size "
                                 "modulo batch_size): choose sizes that leave every rank at least one sample");
  const dist::Shard s = dist::shard_of(n, dp.rank(), dp.size());
  b.x = b.x.narrow(0, s.start, s.count).contiguous();
  b.y = b.y.narrow(0, s.start, s.count).contiguous();
  b.total = n;  // drop-path draws the global batch's masks (EvalNetwork::set_sample_window)
  b.first = s.start;
}

void check_search_agreement(const DataParallel& dp, const nas::Searcher& s, int epoch) {
  const nas::SearchNetwork& net = s.network();
  uint64_t h = dist::digest_tensors({net.alpha(nas::CellType::Normal), net.alpha(nas::CellType::Reduce)});
  for (auto t : {nas::CellType::Normal, nas::CellType::Reduce})
    for (const auto& row : net.alive_mask(t)) h = dist::digest_bytes(row.data(), row.size(), h);
  dist::check_agreement(*dp.host, h, "search epoch " + std::to_string(epoch), "alphas or alive ops");
}

void check_train_agreement(const DataParallel& dp, nas::EvalTrainer& t, int epoch) {
  std::vector<Tensor> ws;
  for (auto& [n, w] : t.network().named_parameters()) ws.push_back(w);
  dist::check_agreement(*dp.host, dist::digest_tensors(ws), "train epoch " + std::to_string(epoch), "weights");
}

}  // namespace asap::run
