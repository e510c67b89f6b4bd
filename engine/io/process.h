// Starting external programs (Graphviz `dot`, python3 for plots) without a shell: the program
// gets an argument vector, so no path or config value is ever parsed as shell syntax.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace asap {

struct ProgramResult {
  bool started = false;  // false: the program was not found or could not be started
  int exit_code = -1;    // exit status; 128 + N when killed by signal N
  std::string output;    // stdout and stderr together, at most the last 64 KiB
  bool ok() const { return started && exit_code == 0; }
  // One line for a warning: "exit 1: <last output line>" or "not started: <reason>".
  std::string summary() const;
};

// Runs argv[0] (looked up on PATH when it holds no '/') with posix_spawn, stdin from /dev/null,
// stdout and stderr captured. Never throws for a failing program; the caller decides whether its
// failure matters (for pictures and plots it is a warning).
ProgramResult run_program(const std::vector<std::string>& argv);

// Like run_program, but for long children (asap_sweep's asap_run): stdout and stderr are appended
// to `log_path` (created when missing; nothing is captured), the child runs in its own process
// group (a terminal's Ctrl-C reaches only the parent, which forwards what it decides to), and
// `on_start` gets the child's pid right after the spawn (for forwarding signals). `output` holds
// only a reason when the child could not start.
ProgramResult run_program_logged(const std::vector<std::string>& argv, const std::string& log_path,
                                 const std::function<void(int pid)>& on_start = {});

// True when `name` (no '/') is an executable file in a PATH folder, or `name` (with '/') is one.
bool program_available(const std::string& name);

}  // namespace asap
