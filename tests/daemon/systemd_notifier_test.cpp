#include "daemon/systemd_notifier.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace alertrouter::daemon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto deadline = 2s;  // bound on every wait; never reached when the notifier behaves

// One message as systemd would receive it.
struct datagram {
  std::string text;
  pid_t sender = 0;  // from SCM_CREDENTIALS: NotifyAccess=main accepts only the main process
};

// A real AF_UNIX datagram socket in a fresh temporary directory, standing in for systemd's
// notification socket. Credentials are requested, as systemd does.
class notify_socket {
 public:
  notify_socket() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "alertrouter-notify-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = pattern;
    path_ = dir_ + "/notify.sock";
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path_.size() >= sizeof(addr.sun_path)) throw std::runtime_error("socket path too long");
    std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
      throw std::runtime_error(std::string("bind failed: ") + std::strerror(errno));
    }
    const int on = 1;
    setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on));
  }
  ~notify_socket() {
    close(fd_);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  notify_socket(const notify_socket&) = delete;
  notify_socket& operator=(const notify_socket&) = delete;

  const std::string& path() const { return path_; }
  const std::string& dir() const { return dir_; }

  // The next datagram, waiting at most `wait` for it; nullopt if none came.
  std::optional<datagram> receive(std::chrono::milliseconds wait = deadline) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(wait.count())) != 1) return std::nullopt;
    std::vector<char> buffer(4096);
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t n = recvmsg(fd_, &msg, MSG_DONTWAIT);
    if (n < 0 || (msg.msg_flags & MSG_TRUNC) != 0) return std::nullopt;
    datagram d;
    d.text.assign(buffer.data(), static_cast<std::size_t>(n));
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred cred{};
        std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
        d.sender = cred.pid;
      }
    }
    return d;
  }

  // A datagram already queued, without waiting. Sends are synchronous, so after a call returns
  // its message is either queued here or was never sent.
  std::optional<datagram> queued() { return receive(0ms); }

 private:
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

// Sets (or, with nullopt, unsets) an environment variable for one scope.
class scoped_env {
 public:
  scoped_env(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

// Collects the warn callback's lines.
struct warnings {
  std::vector<std::string> lines;
  systemd_warn_log log() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
};

class systemd_notifier_test : public ::testing::Test {
 protected:
  notify_socket socket_;
  scoped_env notify_{"NOTIFY_SOCKET", socket_.path()};
  // A watchdog only where a test asks for one.
  scoped_env watchdog_usec_{"WATCHDOG_USEC", std::nullopt};
  scoped_env watchdog_pid_{"WATCHDOG_PID", std::nullopt};
  asio::io_context io_;
  warnings warnings_;
};

TEST_F(systemd_notifier_test, SendsEachStateAsOneExactDatagramFromThisProcess) {
  systemd_notifier notifier(io_, warnings_.log());
  ASSERT_TRUE(notifier.enabled());

  notifier.ready();
  auto d = socket_.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "READY=1");
  EXPECT_EQ(d->sender, getpid());

  const std::uint64_t before = monotonic_usec();
  notifier.reloading();
  const std::uint64_t after = monotonic_usec();
  d = socket_.receive();
  ASSERT_TRUE(d);
  const std::string prefix = "RELOADING=1\nMONOTONIC_USEC=";
  ASSERT_EQ(d->text.substr(0, prefix.size()), prefix) << d->text;
  const std::string usec = d->text.substr(prefix.size());
  ASSERT_FALSE(usec.empty());
  ASSERT_EQ(usec.find_first_not_of("0123456789"), std::string::npos) << usec;
  const std::uint64_t stamp = std::stoull(usec);
  EXPECT_GE(stamp, before);  // CLOCK_MONOTONIC, read during the call
  EXPECT_LE(stamp, after);

  notifier.ready();  // the reload is over
  d = socket_.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "READY=1");

  notifier.status("serving 7 routes");
  d = socket_.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "STATUS=serving 7 routes");

  notifier.stopping();
  d = socket_.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "STOPPING=1");

  EXPECT_FALSE(socket_.queued());
  EXPECT_EQ(notifier.stats().sent, 5u);
  EXPECT_EQ(notifier.stats().failed, 0u);
  EXPECT_TRUE(warnings_.lines.empty());
}

TEST_F(systemd_notifier_test, StatusTextCannotAddAssignments) {
  systemd_notifier notifier(io_, warnings_.log());
  using namespace std::string_view_literals;
  notifier.status("config rejected\nREADY=1\r\nMAINPID=1\0rest"sv);
  const auto d = socket_.receive();
  ASSERT_TRUE(d);
  EXPECT_EQ(d->text, "STATUS=config rejected READY=1  MAINPID=1 rest");
  EXPECT_FALSE(socket_.queued());
}

TEST_F(systemd_notifier_test, WithoutNotifySocketNothingIsSentAndNothingFails) {
  scoped_env unset("NOTIFY_SOCKET", std::nullopt);
  scoped_env usec("WATCHDOG_USEC", "200000");
  scoped_env pid("WATCHDOG_PID", std::to_string(getpid()));
  systemd_notifier notifier(io_, warnings_.log());
  EXPECT_FALSE(notifier.enabled());

  notifier.ready();
  notifier.reloading();
  notifier.ready();
  notifier.status("anything");
  notifier.stopping();
  EXPECT_EQ(notifier.start_watchdog(), std::nullopt);
  // No timer was armed: run() has no work and returns at once.
  EXPECT_EQ(io_.run_for(deadline), 0u);
  EXPECT_TRUE(io_.stopped());

  EXPECT_FALSE(socket_.queued());
  EXPECT_EQ(notifier.stats().sent, 0u);
  EXPECT_EQ(notifier.stats().failed, 0u);
  EXPECT_TRUE(warnings_.lines.empty());
}

TEST_F(systemd_notifier_test, WatchdogPingsRepeatedlyWhileTheIoContextRuns) {
  scoped_env usec("WATCHDOG_USEC", "200000");
  scoped_env pid("WATCHDOG_PID", std::to_string(getpid()));
  systemd_notifier notifier(io_, warnings_.log());
  EXPECT_EQ(notifier.start_watchdog(), std::chrono::microseconds(100000));  // half
  EXPECT_EQ(notifier.start_watchdog(), std::chrono::microseconds(100000));  // already running

  std::promise<void> ran;
  auto finished = ran.get_future();
  std::thread io_thread([&] {
    io_.run();
    ran.set_value();
  });
  for (int i = 0; i < 3; ++i) {
    const auto d = socket_.receive();
    ASSERT_TRUE(d) << "ping " << i;
    EXPECT_EQ(d->text, "WATCHDOG=1");
    EXPECT_EQ(d->sender, getpid());
  }

  // Once stopped, the watchdog holds no work: run() returns by itself.
  asio::post(io_, [&] { notifier.stop_watchdog(); });
  const bool returned = finished.wait_for(deadline) == std::future_status::ready;
  if (!returned) io_.stop();
  io_thread.join();
  EXPECT_TRUE(returned) << "the watchdog timer kept the io_context busy after stop_watchdog()";
  EXPECT_GE(notifier.stats().watchdog_pings, 3u);
  EXPECT_EQ(notifier.stats().failed, 0u);
}

TEST_F(systemd_notifier_test, EachTimerExpirySendsOnePingAndNothingIsSentWithoutTheIoContext) {
  scoped_env usec("WATCHDOG_USEC", "20000");
  scoped_env pid("WATCHDOG_PID", std::to_string(getpid()));
  systemd_notifier notifier(io_, warnings_.log());
  ASSERT_EQ(notifier.start_watchdog(), std::chrono::microseconds(10000));
  EXPECT_FALSE(socket_.queued());  // pings come from the io thread only

  for (std::uint64_t i = 1; i <= 3; ++i) {
    ASSERT_EQ(io_.run_one_for(deadline), 1u) << "timer " << i << " never fired";
    const auto d = socket_.queued();
    ASSERT_TRUE(d);
    EXPECT_EQ(d->text, "WATCHDOG=1");
    EXPECT_FALSE(socket_.queued());
    EXPECT_EQ(notifier.stats().watchdog_pings, i);
  }
}

TEST_F(systemd_notifier_test, WatchdogMeantForAnotherProcessIsNotStarted) {
  // A child that inherited the parent's environment must not ping on its behalf.
  scoped_env usec("WATCHDOG_USEC", "200000");
  scoped_env pid("WATCHDOG_PID", std::to_string(getpid() + 1));
  systemd_notifier notifier(io_, warnings_.log());
  EXPECT_EQ(notifier.start_watchdog(), std::nullopt);
  EXPECT_EQ(io_.run_for(deadline), 0u);
  EXPECT_TRUE(io_.stopped());
  EXPECT_FALSE(socket_.queued());
  EXPECT_TRUE(warnings_.lines.empty());
}

TEST_F(systemd_notifier_test, NoWatchdogWithoutWatchdogUsec) {
  systemd_notifier notifier(io_, warnings_.log());
  EXPECT_EQ(notifier.start_watchdog(), std::nullopt);
  EXPECT_EQ(io_.run_for(deadline), 0u);
  EXPECT_TRUE(io_.stopped());
  EXPECT_TRUE(warnings_.lines.empty());
}

TEST_F(systemd_notifier_test, MalformedWatchdogUsecIsReportedAndCountedNotThrown) {
  scoped_env usec("WATCHDOG_USEC", "thirty seconds");
  systemd_notifier notifier(io_, warnings_.log());
  EXPECT_EQ(notifier.start_watchdog(), std::nullopt);
  EXPECT_EQ(notifier.stats().failed, 1u);
  EXPECT_EQ(warnings_.lines.size(), 1u);
  EXPECT_EQ(io_.run_for(deadline), 0u);
  EXPECT_FALSE(socket_.queued());
}

TEST_F(systemd_notifier_test, UnreachableSocketIsReportedAndCountedNotThrown) {
  scoped_env gone("NOTIFY_SOCKET", socket_.dir() + "/no-such.sock");
  systemd_notifier notifier(io_, warnings_.log());
  ASSERT_TRUE(notifier.enabled());
  notifier.ready();
  notifier.stopping();
  EXPECT_EQ(notifier.stats().sent, 0u);
  EXPECT_EQ(notifier.stats().failed, 2u);
  EXPECT_EQ(warnings_.lines.size(), 2u);
  EXPECT_FALSE(socket_.queued());
}

TEST_F(systemd_notifier_test, DestroyingTheNotifierStopsTheWatchdog) {
  scoped_env usec("WATCHDOG_USEC", "20000");
  scoped_env pid("WATCHDOG_PID", std::to_string(getpid()));
  {
    systemd_notifier notifier(io_, warnings_.log());
    ASSERT_TRUE(notifier.start_watchdog());
    ASSERT_EQ(io_.run_one_for(deadline), 1u);  // one ping, the next wait is pending
    ASSERT_TRUE(socket_.queued());
  }
  // The pending wait completes as cancelled without touching the destroyed notifier (ASan
  // checks), and no work is left.
  io_.run_for(deadline);
  EXPECT_TRUE(io_.stopped());
  EXPECT_FALSE(socket_.queued());
}

}  // namespace
}  // namespace alertrouter::daemon
