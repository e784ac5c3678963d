#pragma once

// Delivery: how a rendered notification leaves the daemon. Ingest hands each notification to a
// `delivery` and moves on; the delivery owns it from then on (retries, timeouts, shutdown) and
// reports its fate through a `delivery_observer`.
//
// This header is the seam between routing and the network: it names no Beast or Asio type, so
// the ingest path, main.cpp and a durable outbox (which will sit behind this same interface)
// need neither. webhook_sender.h is the HTTP implementation.

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "routing/planner.h"

namespace alertrouter::daemon {

// One message to one destination. Plain value; the delivery keeps its own copy.
struct delivery_request {
  // Idempotency key: sent as `Idempotency-Key` and identical on every retry of this message, so
  // a receiver can drop a repeat (a retry after a lost response). See make_notification_id.
  std::string id;
  std::string url;      // "http://host[:port]/path[?query]"
  std::string body;     // the rendered JSON (encode_notification), sent as is
  std::string channel;  // "webhook"; names the channel in logs and metrics
  routing::notification_kind kind = routing::notification_kind::page;
  // When the webhook that caused this message arrived; latency is measured from here.
  std::chrono::steady_clock::time_point received_at{};
};

// The final fate of one delivery_request. Exactly one per submitted request.
enum class delivery_result {
  delivered,  // the receiver answered 2xx
  rejected,   // a non-retryable answer (3xx, 4xx other than 429) or an unusable request/URL
  gave_up,    // every allowed attempt failed with a retryable error
  dropped,    // never completed: the queue was full, or shutdown came first
};

inline std::string_view to_string(delivery_result r) {
  switch (r) {
    case delivery_result::delivered:
      return "delivered";
    case delivery_result::rejected:
      return "rejected";
    case delivery_result::gave_up:
      return "gave_up";
    case delivery_result::dropped:
      return "dropped";
  }
  return "unknown";
}

// Receives progress and outcomes, for metrics and logs. Every callback runs on the delivery's
// thread (the io thread), never inside submit() or stop(), and must not block. The request
// reference is valid only during the call. Defaults do nothing. A callback may call submit().
class delivery_observer {
 public:
  virtual ~delivery_observer() = default;

  // Attempt `attempt_no` (1, 2, ...) of `req` is starting.
  virtual void on_attempt(const delivery_request& req, unsigned attempt_no) {
    (void)req;
    (void)attempt_no;
  }

  // Attempt `attempt_no` failed with a retryable error (`reason`, e.g. "HTTP 503",
  // "connect: Connection refused"); the next attempt starts after `delay`.
  virtual void on_retry(const delivery_request& req, unsigned attempt_no, std::string_view reason,
                        std::chrono::milliseconds delay) {
    (void)req;
    (void)attempt_no;
    (void)reason;
    (void)delay;
  }

  // `req` is finished. `attempts` is how many attempts were made (0 if none was: a bad URL, a
  // full queue); `latency` runs from req.received_at to now; `detail` says why, e.g. "HTTP 200",
  // "HTTP 400", "connect: Connection refused", "queue full", "shutdown". `retry_after`, for
  // gave_up only: how long the receiver's last answer asked to wait before trying again
  // (`Retry-After: <seconds>` on a 429 or 5xx), if it said.
  virtual void on_done(const delivery_request& req, delivery_result result, unsigned attempts,
                       std::chrono::steady_clock::duration latency, std::string_view detail,
                       std::optional<std::chrono::milliseconds> retry_after) {
    (void)req;
    (void)result;
    (void)attempts;
    (void)latency;
    (void)detail;
    (void)retry_after;
  }
};

// Something that takes notifications off ingest's hands and delivers them asynchronously.
// Implementations document their thread; none blocks its caller on a receiver.
class delivery {
 public:
  virtual ~delivery() = default;

  // Takes `req` and returns at once: it never waits on the network and never calls the observer
  // itself. Every submitted request later gets exactly one on_done, unless the delivery is
  // destroyed first. After stop(), requests are reported dropped.
  virtual void submit(delivery_request req) = 0;

  // Requests accepted and not yet finished: queued, in flight or waiting to be retried.
  virtual std::size_t pending() const = 0;

  // Graceful shutdown: accepts nothing new, keeps working on queued, in-flight and retrying
  // requests for up to `grace`, then reports each one still unfinished as dropped (detail
  // "shutdown") and abandons it. `on_stopped` (optional) runs once nothing is pending, which may
  // be well before `grace` ends. Only the first call counts.
  virtual void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) = 0;
};

}  // namespace alertrouter::daemon
