#pragma once

// The running daemon's state and its HTTP API: the current compiled configuration, the incident
// table, ingest of Alertmanager webhooks into notifications for delivery, the operator endpoints
// and reload. main.cpp builds one, registers its handlers on the HTTP server and feeds it
// signals; nothing here opens sockets or reads anything but the configuration files.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "daemon/delivery.h"
#include "daemon/http_server.h"
#include "daemon/metrics.h"
#include "daemon/outbox.h"
#include "daemon/warn_limiter.h"
#include "routing/incident.h"
#include "routing/planner.h"
#include "routing/routing_table.h"
#include "store/group_commit.h"

namespace alertrouter::daemon {

// A configuration read, validated and compiled, with the secrets it names read too.
struct loaded_config {
  std::shared_ptr<const routing::routing_table> table;
  std::string bearer_token;  // contents of auth.bearer_token_file, trimmed; empty: auth off
};

// Reads `path`, validates and compiles it, and reads the bearer token file it names. On failure
// returns every problem, one "FILE:LINE:COL: message" (or "FILE: message") per entry. Blocking
// file I/O: call at start, or on reload (a small local file, read once).
std::variant<loaded_config, std::vector<std::string>> load_config(const std::string& path);

// Leveled log sink: main.cpp points it at spdlog. `message` is one line of logfmt key=value
// fields, each value as log_value() writes it.
enum class log_level { debug, info, warn, error };
using log_sink = std::function<void(log_level, std::string_view message)>;

// `v` as a logfmt value: as is when it is one non-empty token of printable ASCII without `"`,
// `=` or `\`; else in double quotes, with `"` and `\` escaped and control characters shown as
// spaces, so that one event stays one parseable line whatever the text. Pure.
std::string log_value(std::string_view v);

// What a reload did.
struct reload_outcome {
  bool ok = false;
  std::vector<std::string> errors;  // when !ok: why the new configuration was refused
};

// What the service needs to make webhooks durable (see service::enable_durability).
struct durable_state {
  // Commits change sets; its done callback must call service::committed on the io thread. Made
  // with options::hold_after_failure: the service resumes it once the table is rebuilt.
  store::group_committer* committer = nullptr;
  // Runs a task on the io thread (from the committer's worker).
  std::function<void(std::function<void()>)> post;
  // Runs a task on the io thread after a pause (a retry); optional.
  std::function<void(std::function<void()>)> retry_later;
};

// Threading: single-threaded. Every member runs on the io thread (HTTP handlers, signal
// handlers and delivery callbacks all do). The routing table is swapped whole on reload; a
// webhook being handled keeps the table it started with.
class service final : public delivery_observer {
 public:
  // `incidents`, `stats` and `out` must outlive the service. `clock` gives wall-clock time (a
  // test may pin it); schedules, dedup and the API use it.
  service(
      std::string config_path, loaded_config initial, routing::incident_table& incidents,
      metrics& stats, delivery& out, log_sink log,
      std::function<std::chrono::system_clock::time_point()> clock = [] {
        return std::chrono::system_clock::now();
      });
  // Unregisters the on-call scrape source it gave `stats`, so metrics may outlive the service.
  ~service() override;
  // Registered with `stats` by address: neither copied nor moved.
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  // POST /webhook/alertmanager: authorises, decodes, dedups and routes one Alertmanager webhook,
  // hands its notifications to delivery, and answers 200 with
  //   {"received":N,"new":X,"duplicates":Y,"resolved":Z,"stale":S,"notifications":K}.
  // 400 (body names the field) for a body that does not decode; 401 for a missing or wrong
  // bearer token; 503 with Retry-After while delivery has max_pending_notifications (of the
  // configuration the service started with) queued, counting those still waiting for their
  // commit. A refused body changes nothing.
  // A notification whose target has no contact at all is counted as no_contact; one with only
  // e-mail or IRC contacts is counted as dropped (those channels are not delivered yet).
  //
  // Durable mode (enable_durability): the answer waits until the body's changes (the incidents
  // it opened or closed, its notifications) are committed to the state store, and its
  // notifications reach `out` (the outbox) only then. A body with nothing to write waits for
  // the commits in flight that changed an incident it names, if any, and is answered at once
  // otherwise. A failed commit answers 503 (Retry-After), and every webhook gets 503 until the
  // incident table has been rebuilt from the store. A body is counted in the metrics when it is
  // answered: as accepted, with its alerts, incidents and dropped notifications, on a 200; as
  // unavailable, and nothing else, on a 503.
  void webhook(http_request& req, std::function<void(http_response)> respond);
  // The same for the in-memory mode, answering at once. Throws std::logic_error in durable mode.
  http_response webhook(http_request& req);

  // Turns on durable mode. Call before the first webhook.
  void enable_durability(durable_state d);
  // The outcome of commit `ticket` (from the committer's done callback, on the io thread).
  void committed(std::uint64_t ticket, std::exception_ptr error);

  // GET /api/v1/oncall[?at=RFC3339]: per schedule who is on call at `at` (default now). `at` is
  // form-urlencoded (an offset's '+' as %2B); 400 when it is not a well-encoded RFC 3339 time.
  http_response oncall(http_request& req);
  // GET /api/v1/incidents: the open incidents, oldest first.
  http_response incidents(http_request& req);
  // GET /metrics.
  http_response metrics_page(http_request& req);
  // POST /-/reload: 200 when the new configuration was taken, 400 with its errors when not; 401
  // (nothing reread) without the bearer token, when one is configured.
  http_response reload_endpoint(http_request& req);

  // When a bearer token is configured and `req` does not carry it: the 401 to answer; nullopt
  // when it may go on. For http_server::check_before_body() on /-/reload, so an unauthenticated
  // body is refused before it is read; the handlers check again (a body that came with its
  // header is not checked before).
  std::optional<http_response> check_token(const http_request& req) const;
  // check_token() for the webhook path: a refusal is also counted as an unauthorized webhook.
  std::optional<http_response> check_webhook_header(const http_request& head);
  // GET /-/healthy and GET /-/ready.
  http_response healthy(http_request& req);
  http_response ready(http_request& req);

  // Re-reads the configuration file. Atomic: on any error the running configuration stays, the
  // errors are logged and counted. Changes to `listen`, `limits`, `dedup` and `delivery` need a
  // restart (a warning says so); everything else takes effect for the next webhook.
  reload_outcome reload();

  // Events below `level` are not formatted at all (the hot path logs repeats at debug). Default:
  // everything goes to the sink.
  void set_log_level(log_level level) { min_level_ = level; }

  // No more webhooks are taken (503) once shutting down.
  void begin_shutdown() { shutting_down_ = true; }

  const routing::routing_table& table() const { return *current_.table; }
  std::shared_ptr<const routing::routing_table> table_ptr() const { return current_.table; }

  // delivery_observer: feeds metrics and logs.
  void on_attempt(const delivery_request& req, unsigned attempt_no) override;
  void on_retry(const delivery_request& req, unsigned attempt_no, std::string_view reason,
                std::chrono::milliseconds delay) override;
  void on_done(const delivery_request& req, delivery_result result, unsigned attempts,
               std::chrono::steady_clock::duration latency, std::string_view detail,
               std::optional<std::chrono::milliseconds> retry_after) override;

 private:
  bool authorized(const http_request& req) const;
  // A "webhook refused" or "reload refused" warn line, rate limited (a client can send one per
  // request).
  void warn_refused(std::string line);
  // What an accepted body adds to the ingest metrics, counted only once it is answered 200: a
  // body answered 503 (a failed commit) changed nothing, and Alertmanager sends it again.
  struct ingest_tally {
    // The plan's counts and degraded events (its notifications and observations left out).
    routing::plan plan;
    // Alerts received, [ownership][status] in the enums' order.
    std::array<std::array<std::uint64_t, 2>, 3> alerts{};
    // Notifications counted at render: targets without any contact, and those dropped for a
    // channel that is not delivered yet (channel, kind).
    std::vector<config::target_type> no_contact;
    std::vector<std::pair<std::string_view, routing::notification_kind>> dropped;
  };
  void count_accepted(const ingest_tally& t);

  // The delivery request for `n`, or nullopt (logged, and noted in `tally`) when it has no
  // webhook.
  std::optional<delivery_request> render(const routing::notification& n,
                                         const routing::webhook& hook,
                                         std::chrono::steady_clock::time_point received_at,
                                         ingest_tally& tally);
  void rebuild_from_store();

  // A body's answer, given (and counted) once the commit it waits for is done.
  struct waiter {
    std::function<void(http_response)> respond;
    http_response ok;  // the answer if the commit succeeds
    ingest_tally tally;
  };
  // One committed-or-not change set and everything waiting for it.
  struct pending_commit {
    std::uint64_t ticket = 0;
    std::vector<routing::fingerprint> fps;   // incidents it changes
    std::vector<delivery_request> requests;  // to the outbox once durable
    // Answers to give: this body's, then those of bodies with nothing to write that came after.
    std::vector<waiter> waiters;
  };

  const std::string config_path_;
  loaded_config current_;
  routing::incident_table& incidents_;
  metrics& stats_;
  warn_limiter refusals_log_{10};
  delivery& out_;
  log_sink log_;
  std::function<std::chrono::system_clock::time_point()> clock_;
  // limits.max_pending_notifications at start: the delivery was sized for it (limits take
  // effect at a restart).
  const std::size_t max_pending_;
  // Notifications of commits in flight: not in the delivery yet, counted against max_pending_.
  std::size_t committing_ = 0;
  bool shutting_down_ = false;
  durable_state durable_;
  std::deque<pending_commit> commits_;  // in ticket order
  // Incidents changed by a commit still in flight: fingerprint -> the newest such ticket.
  std::unordered_map<routing::fingerprint, std::uint64_t, routing::fingerprint_hash> unsynced_;
  std::string store_error_;  // non-empty: a commit failed, rebuilding
  log_level min_level_ = log_level::debug;
  // The body being handled, decoded and planned; reused so that a body of repeats allocates
  // nothing for it. Holds nothing a handler needs once it has returned.
  routing::routed_webhook routed_;
};

// GET /api/v1/outbox[?limit=N]: pending notifications (oldest first) and then the most recent
// dead-lettered ones, at most N (default 100, at most 1000), with their attempts and last error.
// Destinations are shown as host:port: a webhook URL's path often carries a secret.
http_response outbox_page(const outbox& box, http_request& req);

// Parses "HOST:PORT" / "[V6]:PORT" as `listen` takes it. False when malformed.
bool split_listen(std::string_view listen, std::string& host, std::uint16_t& port);

}  // namespace alertrouter::daemon
