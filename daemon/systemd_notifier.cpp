#include "daemon/systemd_notifier.h"

#include <systemd/sd-daemon.h>
#include <time.h>

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <system_error>
#include <utility>

namespace alertrouter::daemon {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

namespace {

// Microseconds on CLOCK_MONOTONIC, the clock systemd reads for MONOTONIC_USEC.
std::uint64_t monotonic_usec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1'000u;
}

std::string errno_text(int negative_errno) {
  return std::generic_category().message(-negative_errno);
}

}  // namespace

struct systemd_notifier::state : std::enable_shared_from_this<systemd_notifier::state> {
  state(asio::io_context& io, systemd_warn_log w) : timer(io), warn(std::move(w)) {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled = socket != nullptr && *socket != '\0';
  }

  void report(const std::string& message) {
    ++stats.failed;
    if (warn) warn(message);
  }

  // True when systemd's socket took the message.
  bool send(const std::string& message) {
    if (!enabled) return false;
    // unset_environment = 0: unsetenv is not safe while other threads may read the
    // environment, and a later message needs NOTIFY_SOCKET again.
    const int r = sd_notify(0, message.c_str());
    if (r > 0) {
      ++stats.sent;
      return true;
    }
    std::string what = message.substr(0, message.find('\n'));
    // 0: NOTIFY_SOCKET was unset after construction, so nothing went out.
    report("sd_notify(" + what +
           ") failed: " + (r == 0 ? std::string("NOTIFY_SOCKET is no longer set") : errno_text(r)));
    return false;
  }

  void arm() {
    timer.expires_after(period);
    // The handler holds the state, not the notifier, which may be gone when it runs.
    timer.async_wait([self = shared_from_this()](const error_code& ec) {
      // Stopped: cancelled, or it had expired and was queued before stop_watchdog().
      if (ec || !self->watchdog_running) return;
      if (self->send("WATCHDOG=1")) ++self->stats.watchdog_pings;
      self->arm();
    });
  }

  asio::steady_timer timer;
  systemd_warn_log warn;
  bool enabled = false;
  bool watchdog_running = false;
  std::chrono::microseconds period{0};
  systemd_notifier_stats stats;
};

systemd_notifier::systemd_notifier(asio::io_context& io, systemd_warn_log warn)
    : state_(std::make_shared<state>(io, std::move(warn))) {}

systemd_notifier::~systemd_notifier() { stop_watchdog(); }

bool systemd_notifier::enabled() const { return state_->enabled; }

void systemd_notifier::ready() { state_->send("READY=1"); }

void systemd_notifier::reloading() {
  if (!state_->enabled) return;
  state_->send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(monotonic_usec()));
}

void systemd_notifier::stopping() { state_->send("STOPPING=1"); }

void systemd_notifier::status(std::string_view text) {
  if (!state_->enabled) return;
  constexpr std::string_view key = "STATUS=";
  std::string message(key);
  message.append(text);
  // systemd splits a message at '\n' into assignments; sd_notify stops at the first NUL.
  std::replace_if(
      message.begin() + static_cast<std::ptrdiff_t>(key.size()), message.end(),
      [](char c) { return c == '\n' || c == '\r' || c == '\0'; }, ' ');
  state_->send(message);
}

std::optional<std::chrono::microseconds> systemd_notifier::start_watchdog() {
  state& s = *state_;
  if (!s.enabled) return std::nullopt;
  if (s.watchdog_running) return s.period;
  std::uint64_t usec = 0;
  // > 0: WATCHDOG_USEC is set and WATCHDOG_PID, if set, is this process; 0: no watchdog for us.
  const int r = sd_watchdog_enabled(0, &usec);
  if (r < 0) {
    s.report("systemd watchdog not started: cannot read WATCHDOG_USEC/WATCHDOG_PID: " +
             errno_text(r));
    return std::nullopt;
  }
  if (r == 0) return std::nullopt;
  // Half the interval, as sd_watchdog_enabled(3) advises: one late ping is not yet a restart.
  // At least 1 ms, so an absurd WATCHDOG_USEC=1 cannot turn the timer into a busy loop.
  s.period = std::max(std::chrono::microseconds(static_cast<std::int64_t>(usec / 2)),
                      std::chrono::microseconds(std::chrono::milliseconds(1)));
  s.watchdog_running = true;
  s.arm();
  return s.period;
}

void systemd_notifier::stop_watchdog() {
  state_->watchdog_running = false;
  state_->timer.cancel();
}

const systemd_notifier_stats& systemd_notifier::stats() const { return state_->stats; }

}  // namespace alertrouter::daemon
