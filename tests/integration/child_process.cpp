#include "tests/integration/child_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

#include "tests/integration/temp_dir.h"

namespace alertrouter::integration {
namespace {

using namespace std::chrono_literals;

// How often a wait re-checks a log file or the child's state. Short: nothing here is timed,
// the interval only bounds how late a wait notices an event.
constexpr auto poll_interval = 10ms;

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

std::string tail(const std::string& text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  return "..." + text.substr(text.size() - max_bytes);
}

}  // namespace

child_process::child_process(std::string name, std::vector<std::string> argv,
                             const std::filesystem::path& log_dir)
    : name_(std::move(name)),
      stdout_path_(log_dir / (name_ + ".stdout")),
      stderr_path_(log_dir / (name_ + ".stderr")) {
  if (argv.empty()) throw std::invalid_argument("child_process: empty argv");
  // Everything the child needs is prepared before fork: between fork and exec only
  // async-signal-safe calls are allowed (the test process has other threads).
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int out = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0 || err < 0) {
    const std::string why = std::strerror(errno);
    if (out >= 0) ::close(out);
    if (err >= 0) ::close(err);
    throw std::runtime_error("cannot create logs for " + name_ + " in " + log_dir.string() + ": " +
                             why);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);  // the parent died before prctl took effect
    ::setpgid(0, 0);             // a terminal's Ctrl-C reaches the test, which then ends the child
    ::dup2(out, STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the copies
    ::dup2(err, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, STDIN_FILENO);
    ::execv(args[0], args.data());
    const char msg[] = "child_process: exec failed\n";
    [[maybe_unused]] const auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(out);
  ::close(err);
  if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(fork_errno)));
  pid_ = pid;
}

child_process::~child_process() {
  terminate();
  if (::testing::Test::HasFailure()) {
    std::cerr << "===== " << name_ << " (pid " << pid_ << ", exit "
              << (exit_status_ ? std::to_string(*exit_status_) : "?") << ") logs =====\n"
              << log_tail(64 * 1024) << "===== end of " << name_ << " logs =====\n";
  }
}

bool child_process::running() {
  if (exit_status_ || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_status_ = decode_status(status);
    return false;
  }
  return r == 0;
}

void child_process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(poll_interval);
  }
  return exit_status_;
}

int child_process::terminate(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return -1;
  if (running()) {
    ::kill(pid_, SIGTERM);
    if (!wait_exit(grace)) {
      std::cerr << name_ << " did not exit within " << grace.count()
                << " ms of SIGTERM: killing it\n";
      ::kill(pid_, SIGKILL);
      int status = 0;
      if (::waitpid(pid_, &status, 0) == pid_) exit_status_ = decode_status(status);
    }
  }
  return exit_status_.value_or(-1);
}

std::optional<std::string> child_process::wait_for_log(std::string_view needle,
                                                       std::chrono::milliseconds timeout,
                                                       bool in_stdout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Check the log once more after the child exited: its last words may be the answer.
    const bool alive = running();
    const std::string text = read_file(in_stdout ? stdout_path_ : stderr_path_);
    const auto at = text.find(needle);
    if (at != std::string::npos) {
      const auto begin = text.rfind('\n', at);
      const auto end = text.find('\n', at);
      const auto from = begin == std::string::npos ? 0 : begin + 1;
      return text.substr(from, end == std::string::npos ? std::string::npos : end - from);
    }
    if (!alive || std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(poll_interval);
  }
}

std::string child_process::stdout_text() const { return read_file(stdout_path_); }
std::string child_process::stderr_text() const { return read_file(stderr_path_); }

std::string child_process::log_tail(std::size_t max_bytes) const {
  return "--- " + name_ + " stdout ---\n" + tail(stdout_text(), max_bytes) + "\n--- " + name_ +
         " stderr ---\n" + tail(stderr_text(), max_bytes) + "\n";
}

}  // namespace alertrouter::integration
