#pragma once

// The outbox: every accepted notification until it is delivered or dead-lettered.
//
// Ingest commits a notification to the state store first and only then hands it to the outbox
// (submit), so a notification the outbox holds is already durable; after a restart the daemon
// gives the outbox the store's pending ones again (resume), with their attempts and original id.
// The outbox records each attempt's outcome in an outbox_journal (the store, through its writer
// thread); losing such a record in a crash only means one more attempt, with the same id.
//
// Policy, per notification:
//   * Order: notifications to the same URL are delivered one at a time, in the order they were
//     accepted (a resolve never overtakes its page). A notification waiting for its retry holds
//     up the ones behind it; other URLs are not affected.
//   * One attempt at a time through the transport (a webhook_sender with max_attempts 1):
//       delivered            -> journal.delivered, done.
//       rejected (4xx ...)   -> dead-lettered at once: journal.dead, logged, counted.
//       gave_up (5xx, 429, connection error or timeout) or dropped by the transport
//                            -> retried after a "full jitter" delay, uniform in
//                               [0, min(max_backoff, initial_backoff * 2^(attempts-1))],
//                               or after the receiver's `Retry-After: <seconds>` (capped at
//                               max_backoff) when its answer carried one,
//                               until delivered, or until give_up_after has passed since it was
//                               accepted or max_attempts (if not 0) were made: then dead.
//   * stop(): no new attempt starts; the ones in flight may finish within the grace. Whatever
//     is left stays pending in the store for the next start (not dead, not reported dropped).
//
// Threading: single-threaded, on the io thread, like the transport.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/delivery.h"

namespace alertrouter::daemon {

// Where the outbox records delivery progress. Calls come on the io thread and must not block
// (the store's writer queues them). Times are Unix milliseconds.
class outbox_journal {
 public:
  virtual ~outbox_journal() = default;
  // An attempt failed retryably; the next one is due at `next_attempt_ms`.
  virtual void attempted(const std::string& id, std::uint32_t attempts,
                         std::int64_t next_attempt_ms, std::string_view last_error) = 0;
  virtual void delivered(const std::string& id, std::uint32_t attempts, std::int64_t at_ms) = 0;
  virtual void dead(const std::string& id, std::uint32_t attempts, std::int64_t at_ms,
                    std::string_view last_error) = 0;
};

struct outbox_options {
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{std::chrono::seconds(60)};
  std::chrono::milliseconds give_up_after{std::chrono::hours(12)};
  std::uint32_t max_attempts = 0;         // 0: no limit but give_up_after
  std::optional<std::uint64_t> rng_seed;  // jitter; unset: std::random_device
  std::size_t max_dead_listed = 1000;     // dead-lettered entries kept for list()
};

// One notification as the outbox holds it. created_ms and the attempt fields are what the
// store keeps, so a resumed entry picks up where it was.
struct outbox_entry {
  delivery_request req;
  std::int64_t created_ms = 0;  // Unix ms when the webhook that caused it was accepted
  std::uint32_t attempts = 0;   // made so far
  std::int64_t next_attempt_ms = 0;
  std::string last_error;
  bool dead = false;
  std::int64_t finished_ms = 0;  // when dead-lettered
};

class outbox final : public delivery, public delivery_observer {
 public:
  // `observer` gets the outbox's view of each notification: on_attempt per attempt (numbered
  // across restarts), on_retry per scheduled retry, on_done once at the end (delivered, rejected
  // for a 4xx, gave_up when dead-lettered after retries). `wall_clock` gives Unix time (tests
  // pin it); timers run on the steady clock.
  outbox(
      boost::asio::io_context& io, outbox_journal& journal, outbox_options options,
      delivery_observer& observer,
      std::function<std::chrono::system_clock::time_point()> wall_clock = [] {
        return std::chrono::system_clock::now();
      });
  ~outbox() override;
  outbox(const outbox&) = delete;
  outbox& operator=(const outbox&) = delete;

  // The transport attempts go through; its observer must be this outbox. Call before submit().
  void set_transport(delivery& transport);

  // delivery: takes a notification already committed to the store, accepted now.
  void submit(delivery_request req) override;
  // Takes a notification recovered from the store, in the store's order.
  void resume(outbox_entry entry);
  // Lists a dead-lettered notification recovered from the store (for list() only).
  void remember_dead(outbox_entry entry);

  // Pending: queued, in flight or waiting for a retry.
  std::size_t pending() const override;
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) override;

  // Dead-lettered notifications the store holds: those it held at start (set_dead_count), plus
  // those dead-lettered since, less those pruned since (forget_dead).
  std::uint64_t dead_count() const;
  void set_dead_count(std::uint64_t n);
  void forget_dead(std::uint64_t n);
  // Unix ms of the oldest pending notification's acceptance; nullopt when none is pending.
  std::optional<std::int64_t> oldest_pending_ms() const;
  // Pending entries (oldest first per destination) then the most recent dead ones, up to `limit`.
  std::vector<outbox_entry> list(std::size_t limit) const;

  // delivery_observer, for the transport.
  void on_attempt(const delivery_request& req, unsigned attempt_no) override;
  void on_done(const delivery_request& req, delivery_result result, unsigned attempts,
               std::chrono::steady_clock::duration latency, std::string_view detail,
               std::optional<std::chrono::milliseconds> retry_after) override;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace alertrouter::daemon
