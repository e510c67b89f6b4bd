#include "engine/io/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

extern char** environ;

namespace asap {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

bool is_executable_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0;
}

// posix_spawn's file actions; destroyed on every path out of run_program.
struct SpawnActions {
  posix_spawn_file_actions_t a;
  SpawnActions() { posix_spawn_file_actions_init(&a); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&a); }
};

}  // namespace

std::string ProgramResult::summary() const {
  if (!started) return "not started: " + output;
  std::string last;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) last = line;
  std::string s = "exit " + std::to_string(exit_code);
  if (!last.empty()) s += ": " + last;
  return s;
}

bool program_available(const std::string& name) {
  if (name.empty()) return false;
  if (name.find('/') != std::string::npos) return is_executable_file(name);
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');)
    if (!d.empty() && is_executable_file(d + "/" + name)) return true;
  return false;
}

ProgramResult run_program(const std::vector<std::string>& argv) {
  ProgramResult r;
  if (argv.empty()) {
    r.output = "empty argument vector";
    return r;
  }
  if (!program_available(argv[0])) {
    r.output = argv[0] + " not found";
    return r;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    r.output = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  SpawnActions fa;
  posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa.a, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa.a, pipefd[1], 2);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa.a, nullptr, args.data(), environ);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    r.output = argv[0] + ": " + std::strerror(rc);
    return r;
  }
  r.started = true;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.output.append(buf, static_cast<size_t>(n));
    if (r.output.size() > 2 * kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
  }
  ::close(pipefd[0]);
  if (r.output.size() > kMaxOutput) r.output.erase(0, r.output.size() - kMaxOutput);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      r.exit_code = -1;
      return r;
    }
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  return r;
}

ProgramResult run_program_logged(const std::vector<std::string>& argv, const std::string& log_path,
                                 const std::function<void(int pid)>& on_start) {
  ProgramResult r;
  if (argv.empty()) {
    r.output = "empty argument vector";
    return r;
  }
  if (!program_available(argv[0])) {
    r.output = argv[0] + " not found";
    return r;
  }
  SpawnActions fa;
  posix_spawn_file_actions_addopen(&fa.a, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa.a, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa.a, 1, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  std::vector<char*> args;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, args[0], &fa.a, &attr, args.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    r.output = argv[0] + ": " + std::strerror(rc);
    return r;
  }
  r.started = true;
  if (on_start) on_start(static_cast<int>(pid));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return r;
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
  return r;
}

}  // namespace asap
