#pragma once

// webhook_sender: the `delivery` that POSTs notifications to webhook URLs over HTTP/1.1, with
// timeouts, keep-alive connection reuse, bounded concurrency per destination and retries.
// Beast and Asio live in webhook_sender.cpp; this header names only the io_context.
//
// The request, per attempt:
//
//   POST <path?query> HTTP/1.1
//   Host: <host[:port]>            (port omitted when 80)
//   User-Agent: alertrouter/<version>
//   Content-Type: application/json
//   Idempotency-Key: <delivery_request::id>   (the same on every attempt)
//   Content-Length: <n>
//   Connection: keep-alive
//
//   <delivery_request::body>
//
// Retry policy (all numbers are webhook_sender_options, defaults in brackets):
//
//   * Outcome of one attempt, from the response status line:
//       2xx                   delivered; done.
//       429, 5xx              retryable.
//       anything else         rejected (1xx, 3xx, 4xx other than 429); done, never retried;
//                             redirects are not followed. The detail is "HTTP <status>", plus
//                             ": <up to 200 printable bytes of the body>" for a rejection.
//     Without a status line: a resolve or connect failure or timeout, a connection reset or
//     closed before the response, a malformed response, or no response header within
//     request_timeout [10s] counted from the start of sending: retryable. Once the header has
//     arrived the status decides, even if the body then fails to arrive (too large, cut off,
//     timed out: request_timeout covers the whole response).
//   * Attempts: at most max_attempts [8] per request, the first included. When the last one
//     fails retryably the request is given up (gave_up).
//   * Delay before attempt n+1 (n failed attempts so far), "full jitter": uniform in
//     [0, min(backoff_cap, backoff_initial * backoff_factor^(n-1))] [0.5s, x2, cap 60s], i.e.
//     up to 0.5s, 1s, 2s, 4s, 8s, 16s, 32s: with the defaults a request is retried for at most
//     63.5s (about half that on average) before it is given up. If a retryable response carries
//     `Retry-After: <seconds>` that value is used instead, capped at backoff_cap (an HTTP-date
//     Retry-After is ignored: the jittered backoff applies). When the last attempt gets such an
//     answer, on_done(gave_up) passes the capped value on, for a caller that retries itself (the
//     outbox, which runs the sender with max_attempts 1).
//   * A keep-alive connection taken from the idle pool that turns out to be closed by the peer
//     before any response byte arrives (end of stream, reset, broken pipe) is expected (the
//     receiver's idle timeout won the race): the request is sent again at once on a fresh
//     connection, within the same attempt; this is not a failed attempt and is done at most once
//     per attempt. A timeout on a reused connection is a normal failure.
//   * A waiting retry holds no connection and no concurrency slot; when due it goes to the front
//     of its destination's queue.
//
// Connections: one pool per destination (lower-cased host and port). At most
// max_in_flight_per_destination [4] attempts run at once per destination (resolve and connect
// included); further requests wait in that destination's queue, in order. After a complete
// response that allows keep-alive, the connection is kept idle for reuse (at most
// max_in_flight_per_destination per destination, most recently used first) and closed after
// idle_timeout [30s] unused. Any error, timeout or incomplete/oversized response closes it.
// Response headers are read up to max_response_header [16 KiB] (more is a malformed response)
// and bodies up to max_response_body [64 KiB] (the rest is discarded by closing the connection).
// Host names are resolved asynchronously on every new connection; connect_timeout [5s] bounds
// resolve and connect together.
//
// Bounds: at most max_pending [100000] requests are pending (queued, in flight, waiting to
// retry) across all destinations; a submit beyond that is dropped ("queue full").
//
// Logging: every degraded event (retry, rejected, gave_up, dropped) is one warn line and a
// counter in webhook_sender_stats. Log lines and details name the destination as host:port and
// never the URL's path or query, which often carry a secret token.

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/delivery.h"

namespace alertrouter::daemon {

// "alertrouter/<version>", the default User-Agent.
std::string default_user_agent();

// Tunables; see the policy above. Out-of-range values are clamped in the constructor:
// max_attempts, max_in_flight_per_destination and max_pending at least 1, backoff_factor at
// least 1, negative durations to 0.
struct webhook_sender_options {
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};   // resolve + connect
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};  // send + whole response
  unsigned max_attempts = 8;
  std::chrono::milliseconds backoff_initial{500};
  double backoff_factor = 2.0;
  std::chrono::milliseconds backoff_cap{std::chrono::seconds(60)};
  // Seed of the jitter RNG, for reproducible tests; unset: seeded from std::random_device.
  std::optional<std::uint64_t> rng_seed;
  std::size_t max_in_flight_per_destination = 4;
  std::size_t max_pending = 100000;
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(30)};  // 0: never keep idle ones
  std::size_t max_response_header = 16 * 1024;
  std::size_t max_response_body = 64 * 1024;
  std::string user_agent = default_user_agent();
};

// A parsed "http://host[:port]/path[?query]" URL.
struct http_url {
  std::string host;         // lower-cased; an IPv6 literal without its brackets
  std::uint16_t port = 80;  // 1..65535
  std::string target;       // path and query as written, "/" when the URL has no path
  std::string host_header;  // value for the Host field: host ("[v6]"), ":port" unless 80
};

// Either a URL or the reason it is unusable.
struct http_url_result {
  std::optional<http_url> url;
  std::string error;  // empty when url is set, e.g. "https is not supported yet (only http://)"
};

// Parses an absolute http:// URL: scheme case-insensitive; host a name (letters, digits, '-',
// '.', '_') or an IP literal ("[::1]" for IPv6); port optional; a fragment is dropped. Rejects
// other schemes (https included), user info ("user:pass@"), spaces and control characters, an
// empty host and a bad port. Never throws except std::bad_alloc. Pure; any thread.
http_url_result parse_http_url(std::string_view url);

// Receives one line per degraded event. Called on the io thread.
using delivery_warn_log = std::function<void(std::string_view message)>;

// Counters for the daemon's metrics. Plain integers, owned by the io thread.
struct webhook_sender_stats {
  std::uint64_t submitted = 0;            // submit() calls
  std::uint64_t delivered = 0;            // on_done(delivered)
  std::uint64_t rejected = 0;             // on_done(rejected): non-retryable answer, bad request
  std::uint64_t gave_up = 0;              // on_done(gave_up)
  std::uint64_t dropped = 0;              // on_done(dropped): queue full or shutdown
  std::uint64_t attempts = 0;             // attempts started
  std::uint64_t retries = 0;              // retries scheduled after a retryable failure
  std::uint64_t stale_resends = 0;        // reused connection found closed; resent on a new one
  std::uint64_t connections_opened = 0;   // TCP connections established
  std::uint64_t connections_reused = 0;   // attempts that started on an idle keep-alive one
  std::uint64_t idle_closed = 0;          // idle connections closed by idle_timeout
  std::uint64_t responses_truncated = 0;  // bodies over max_response_body or cut off
};

// The HTTP webhook delivery. All state lives on one io thread, the one that runs the
// HTTP server.
//
// Threading: the io_context must be run by exactly one thread; every member function must be
// called on it (or before it runs). Observer and warn callbacks run on it too. The destructor
// abandons pending work without reporting it (call stop() first for on_done(dropped) reports),
// closes every connection and never calls the observer again; call it on the io thread or after
// the io_context has stopped. `observer` (may be null) must outlive the sender; callbacks must
// not destroy the sender.
class webhook_sender final : public delivery {
 public:
  webhook_sender(boost::asio::io_context& io, webhook_sender_options options,
                 delivery_observer* observer, delivery_warn_log warn = {});
  ~webhook_sender() override;
  webhook_sender(const webhook_sender&) = delete;
  webhook_sender& operator=(const webhook_sender&) = delete;

  // Queues `req` and returns; nothing is sent before control returns to the io_context. A
  // request with an unusable URL (see parse_http_url) or an empty id or one with control
  // characters is rejected without an attempt; over max_pending, or after stop(), it is dropped.
  // Those outcomes too are reported by on_done later, from the io loop, never inside submit().
  void submit(delivery_request req) override;

  std::size_t pending() const override;

  // See delivery::stop. Connections kept for reuse are closed once nothing is pending.
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped = {}) override;

  const webhook_sender_stats& stats() const;
  // Open TCP connections, in use or idle.
  std::size_t connection_count() const;

 private:
  friend class webhook_attempt;  // one attempt of one request, defined in webhook_sender.cpp
  struct state;
  // Shared with every pending operation, so they stay valid if the sender goes first.
  std::shared_ptr<state> state_;
};

}  // namespace alertrouter::daemon
