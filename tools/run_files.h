// The run folder: checked before work starts, files written atomically (temporary file, fsync,
// rename) so a crash never leaves a torn config, genotype, summary or checkpoint behind.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asap::run {

// Creates `dir` (and parents) and proves it writable with a probe file; throws asap::IoError
// naming the folder and the reason (permission, read-only or full file system) otherwise.
void prepare_out_dir(const std::string& dir);

// Writes `content` to `path` atomically.
void write_file_atomic(const std::string& path, const std::string& content);
std::string read_file(const std::string& path);  // throws asap::IoError
bool file_exists(const std::string& path);

// Appends one JSON object as a line and flushes it to disk (metrics.jsonl, prune_events.jsonl).
void append_jsonl(const std::string& path, const nlohmann::json& line);
// Rewrites `path` keeping only the lines for which keep(line) is true (resume drops the lines of
// epochs after the checkpoint so the file equals an uninterrupted run's). Missing file: no-op.
// Malformed lines (a torn last line after a crash) are dropped.
void filter_jsonl(const std::string& path, const std::function<bool(const nlohmann::json&)>& keep);

// One writer per run folder: an exclusive flock on DIR/asap_run.lock, held while the object
// lives (the kernel drops it when the process dies, so a crash never leaves a stale lock). The
// file holds the owner's PID; a second writer gets asap::IoError naming that PID.
class RunLock {
 public:
  explicit RunLock(const std::string& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

// The run files present in `dir` (config.yaml, metrics.jsonl, prune_events.jsonl, genotype.*,
// summary.json, checkpoints/): a folder holding any of them is never reused by a fresh run.
std::vector<std::string> run_files_in(const std::string& dir);

// Removes the temporary files (NAME.tmp.*) a crashed writer left in `dir` and `dir`/checkpoints;
// call it with the RunLock held. Returns the names removed.
std::vector<std::string> remove_stale_temporaries(const std::string& dir);

}  // namespace asap::run
