#pragma once

// The typed form of alertrouter's YAML configuration. Plain data: no I/O, no behaviour beyond
// what a value type needs. `config/loader.h` builds it from a file and validates it; `routing/`
// compiles it into immutable lookup tables.

#include <date/date.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace alertrouter::config {

// Where a value came from in its YAML file. 1-based; {0,0} when it was defaulted.
struct position {
  int line = 0;
  int column = 0;
};

// Local wall-clock time in some time zone (a schedule's), at second resolution.
using local_time = date::local_seconds;

enum class matcher_op {
  equal,      // =
  not_equal,  // !=
  regex,      // =~  (RE2, fully anchored)
  not_regex,  // !~
};

// One Alertmanager-style label matcher, e.g. `severity=~"critical|task"`. `value` is unquoted
// and unescaped. Regex syntax has been checked by the loader.
struct matcher_spec {
  std::string name;
  matcher_op op = matcher_op::equal;
  std::string value;
  position where;
};

// How to reach a person, receiver or project. Empty strings are "not set".
struct contact {
  std::string webhook;
  std::string email;
  std::string irc;
};

struct person {
  std::string name;
  contact reach;
  position where;
};

// A daily window in a schedule's time zone, as offsets from local midnight. `begin == end` is
// rejected by the loader; `begin > end` wraps midnight ("15:00-03:00").
struct daily_window {
  std::chrono::seconds begin{0};
  std::chrono::seconds end{0};
};

// One rotation: shifts start at `start + k*shift` on the schedule's wall clock; member k mod n.
struct layer {
  std::string name;  // defaults to "layer-N" (1-based) when not given
  std::vector<std::string> members;
  local_time start{};
  std::chrono::seconds shift = std::chrono::hours(24 * 7);
  std::optional<daily_window> active;
  position where;
};

// `person` is on call for the half-open local interval [from, to).
struct schedule_override {
  std::string person;
  local_time from{};
  local_time to{};
  position where;
};

struct schedule {
  std::string name;
  std::string timezone;  // IANA name; inherited from the top-level `timezone` when omitted
  std::vector<layer> layers;
  std::vector<schedule_override> overrides;
  position where;
};

// A named destination that is not a person: a channel feed, a ticket queue, ...
struct receiver {
  std::string name;
  contact reach;
  position where;
};

// The contacts of one user (not team-owned) Cloud VPS project.
struct project_contact {
  std::string name;
  contact reach;
  position where;
};

enum class target_type {
  schedule,  // `schedule:NAME`: whoever is on call in NAME
  receiver,  // `receiver:NAME`
  project,   // `project`: the contacts of the alert's own project
};

// "schedule", "receiver", "project": as written in `notify` and in notifications.
std::string_view to_string(target_type t);

struct target {
  target_type type = target_type::receiver;
  std::string name;  // empty for target_type::project
  position where;
};

struct route {
  std::string name;
  std::vector<matcher_spec> match;  // all must match; empty matches everything
  std::vector<target> notify;
  bool continue_matching = false;  // YAML key `continue`
  position where;
};

struct ownership_config {
  std::string label = "project";
  std::vector<std::string> owned;
  std::vector<std::string> owned_regex;      // fully anchored RE2 patterns
  std::vector<matcher_spec> infrastructure;  // all must match an alert without `label`
  position where;
};

struct dedup_config {
  std::chrono::seconds retention = std::chrono::hours(24);
  std::size_t max_incidents = 1'000'000;
};

// Bounds of the daemon's HTTP server and delivery queue (YAML `limits`). The loader keeps every
// value within the bounds noted; changing them takes a restart.
struct limits_config {
  std::size_t max_body = 4 * 1024 * 1024;          // bytes per request body; 1KiB..1GiB
  std::size_t max_connections = 1024;              // open connections; 1..1000000
  std::chrono::seconds read_timeout{10};           // whole request, from its first byte; 1s..10m
  std::chrono::seconds idle_timeout{60};           // keep-alive wait for the next request; 1s..10m
  std::size_t max_pending_notifications = 100000;  // delivery queue bound (webhooks get 503
                                                   // beyond it); 1..100000000
};

// Bearer-token authentication of incoming requests (YAML `auth`). The loader does not read the
// file: it only checks that the path is absolute; the daemon reads it at start and on reload.
struct auth_config {
  std::string bearer_token_file;  // empty: no authentication. Absolute path of a file holding
                                  // the bearer token.
  position where;                 // of the `bearer_token_file` value; {0,0} when not set
};

// Outgoing notification delivery (YAML `delivery`). The loader keeps every value within the
// bounds noted, and initial_backoff <= max_backoff.
struct delivery_config {
  std::chrono::milliseconds connect_timeout{5000};   // resolve + connect; 100ms..10m
  std::chrono::milliseconds request_timeout{10000};  // send + response header; 100ms..10m
  // Attempts per notification, the first included, 1..100; 0 (the default): no limit, retry until
  // give_up_after. Then the notification is dead-lettered (kept and listed, not delivered).
  int max_attempts = 0;
  std::chrono::seconds give_up_after = std::chrono::hours(12);  // from acceptance; 1s..52w
  // Retry delays: random, bounded by initial_backoff after the first failure, doubling after
  // each further one, never above max_backoff. Each 10ms..1h.
  std::chrono::milliseconds initial_backoff{500};
  std::chrono::milliseconds max_backoff{60000};
  std::size_t max_in_flight_per_destination = 4;  // concurrent attempts per host:port; 1..1000
};

// The whole file. Vectors keep the file's order (routes and overrides depend on it).
struct config {
  std::string source;  // the path it was read from, for messages
  std::string listen = "127.0.0.1:9595";
  std::string timezone = "UTC";
  ownership_config ownership;
  std::vector<person> people;
  std::vector<schedule> schedules;
  std::vector<receiver> receivers;
  std::vector<project_contact> projects;
  std::vector<route> routes;
  dedup_config dedup;
  limits_config limits;
  auth_config auth;
  delivery_config delivery;
  // Where the durable state lives (incidents, outbox, delivery log): an absolute path; the
  // daemon's --state-dir overrides it. systemd's StateDirectory=alertrouter gives the default.
  std::string state_dir = "/var/lib/alertrouter";
  // How long the store keeps closed incidents and finished (delivered or dead) notifications;
  // 1h..520w.
  std::chrono::seconds retention = std::chrono::hours(24 * 7);
  // How long a webhook's changes wait for others to share their commit (one fsync); 0..100ms.
  std::chrono::milliseconds commit_delay{1};

  // Lookups by name; nullptr when absent. The pointer is valid while this config is alive and
  // its vectors are not modified.
  const person* find_person(std::string_view name) const;
  const schedule* find_schedule(std::string_view name) const;
  const receiver* find_receiver(std::string_view name) const;
  const project_contact* find_project(std::string_view name) const;
};

}  // namespace alertrouter::config
