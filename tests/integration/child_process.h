#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alertrouter::integration {

// One real program started by a test (alertrouterd, prometheus-alertmanager), with its stdout
// and stderr written to `<log_dir>/<name>.stdout` and `<name>.stderr`.
//
// The child gets SIGKILL if the test process dies (PR_SET_PDEATHSIG), so a crashed test leaves
// no daemon behind. The destructor terminates it (SIGTERM, then SIGKILL after a grace period),
// reaps it and, when the current gtest test has failed, prints both logs to stderr.
//
// Threading: owned and used by one thread (the one that started it, since the death signal is
// tied to that thread).
class child_process {
 public:
  // Starts `argv[0]` (a path, not searched in PATH) with `argv`. Throws std::runtime_error when
  // the logs cannot be created or fork fails; a failing exec shows as an exit with status 127
  // and a message in the stderr log.
  child_process(std::string name, std::vector<std::string> argv,
                const std::filesystem::path& log_dir);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  const std::string& name() const { return name_; }
  pid_t pid() const { return pid_; }

  // True while the child has not exited (reaps it, without blocking, if it has).
  bool running();

  // The exit status once exited: the exit code, or 128 + signal number if killed by a signal.
  std::optional<int> exit_status() const { return exit_status_; }

  // Sends `sig` to the child if it is still running.
  void signal(int sig);

  // Sends SIGTERM and waits up to `grace` for the exit, then SIGKILLs. Returns the exit status
  // (see exit_status()). Idempotent.
  int terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));

  // Waits up to `timeout` for the child to exit by itself. Returns its exit status, or nullopt
  // if it is still running.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  // Waits until `needle` appears in the stderr log (or stdout when `in_stdout`), the child exits
  // or `timeout` passes. Returns the line that contains it, or nullopt.
  std::optional<std::string> wait_for_log(std::string_view needle,
                                          std::chrono::milliseconds timeout,
                                          bool in_stdout = false);

  std::string stdout_text() const;
  std::string stderr_text() const;
  // The last `max_bytes` of both logs, labelled, for failure messages.
  std::string log_tail(std::size_t max_bytes = 8192) const;

 private:
  std::string name_;
  std::filesystem::path stdout_path_;
  std::filesystem::path stderr_path_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

}  // namespace alertrouter::integration
