#pragma once

// Tells systemd what the daemon is doing, over the sd_notify(3) protocol: startup done, reload
// begun and done, shutdown begun, a status line, and the watchdog keep-alive. With Type=notify
// and WatchdogSec= (systemd/alertrouterd.service.in), systemd counts the service as started
// only after ready(), shows the reload and stop states, and restarts the daemon when the
// keep-alive stops.
//
// libsystemd stays inside systemd_notifier.cpp; this header needs only Asio.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>

namespace alertrouter::daemon {

// Receives one line per failed notification (socket gone, systemd not reading, a malformed
// WATCHDOG_USEC). Called on the thread that sent; must not throw.
using systemd_warn_log = std::function<void(std::string_view message)>;

// Counters for the daemon's metrics. Plain integers, owned by the io thread.
struct systemd_notifier_stats {
  std::uint64_t sent = 0;    // messages systemd's socket accepted (watchdog pings included)
  std::uint64_t failed = 0;  // sends that failed, and a WATCHDOG_USEC that could not be read
  std::uint64_t watchdog_pings = 0;  // "WATCHDOG=1" sent (also counted in `sent`)
};

// One notifier per process. Every message is one datagram to the socket named by
// NOTIFY_SOCKET, sent synchronously (a local send that does not wait for systemd to act);
// a failure is counted and reported to `warn`, never thrown. When NOTIFY_SOCKET is unset or
// empty at construction (run by hand, by a test, under Type=simple), every member is a no-op
// that costs a branch.
//
// Threading: every member must be called on the io thread, or before the io_context runs (the
// watchdog timer runs on the io thread). Destroy on the io thread or after the io_context has
// stopped; a watchdog still running is stopped.
class systemd_notifier {
 public:
  systemd_notifier(boost::asio::io_context& io, systemd_warn_log warn = {});
  ~systemd_notifier();
  systemd_notifier(const systemd_notifier&) = delete;
  systemd_notifier& operator=(const systemd_notifier&) = delete;

  // True when NOTIFY_SOCKET was set at construction, i.e. messages are sent at all.
  bool enabled() const;

  // "READY=1": startup is complete (configuration loaded, listening), or a reload that began
  // with reloading() is over, whether the new configuration was taken or the old one kept.
  void ready();

  // "RELOADING=1" and "MONOTONIC_USEC=<CLOCK_MONOTONIC now in µs>", in one message: a reload has
  // begun (on SIGHUP); call ready() when it is over. The timestamp is what Type=notify-reload
  // (systemd >= 253) needs to match the message to the reload it asked for; Type=notify ignores
  // it.
  void reloading();

  // "STOPPING=1": shutdown has begun.
  void stopping();

  // "STATUS=<text>": a one-line status for `systemctl status`. Line breaks and NULs in `text`
  // become spaces, so the text cannot add assignments of its own.
  void status(std::string_view text);

  // Starts the keep-alive if systemd asked for one (WatchdogSec= sets WATCHDOG_USEC, and
  // WATCHDOG_PID names this process): a timer on the io_context sends "WATCHDOG=1" every half
  // interval. The pings come from the io thread, so an io thread that hangs stops them and
  // systemd restarts the daemon. Returns the ping period (half of WATCHDOG_USEC), also when
  // already running; nullopt when no watchdog is asked for, NOTIFY_SOCKET is unset, or
  // WATCHDOG_USEC is malformed (counted as failed and reported to `warn`).
  std::optional<std::chrono::microseconds> start_watchdog();

  // Stops the keep-alive; its pending timer is cancelled, so it no longer keeps io_context::run
  // from returning. Call when shutting down. A later start_watchdog() starts it again.
  void stop_watchdog();

  const systemd_notifier_stats& stats() const;

 private:
  struct state;
  // Shared with the pending watchdog handler, so a handler already queued when the notifier is
  // destroyed finds valid (stopped) state.
  std::shared_ptr<state> state_;
};

}  // namespace alertrouter::daemon
