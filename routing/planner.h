#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"
#include "routing/incident.h"
#include "routing/routing_table.h"
#include "routing/webhook.h"

namespace alertrouter::routing {

enum class notification_kind { page, resolve };
std::string_view to_string(notification_kind k);

// One message to send to one target: every new incident for it (page) or every closed one
// (resolve) from one webhook body.
struct notification {
  notification_kind kind = notification_kind::page;
  paged_target target;
  config::contact reach;            // where to send it (copied: outlives a reload)
  std::vector<std::string> routes;  // names of the routes that led here, in first-seen order
  std::vector<std::uint64_t> incident_ids;
  std::vector<alert> alerts;  // parallel to incident_ids
};

// Things the daemon must count and log but that do not stop the rest of the plan.
struct nobody_on_call {
  std::string schedule;
  std::string route;
  fingerprint fp;
};
struct no_contact {  // a resolved target with nowhere to send (e.g. a project with no contacts)
  paged_target target;
  std::string route;
  fingerprint fp;
};
struct blocked_target {  // a schedule target for a user-project alert: never pages the team
  std::string schedule;
  std::string route;
  fingerprint fp;
};

struct plan_counts {
  std::size_t received = 0;
  std::size_t opened = 0;    // "new" (including reopened)
  std::size_t reopened = 0;  // new incidents replacing an open one whose resolve was lost
  std::size_t duplicates = 0;
  std::size_t closed = 0;    // "resolved"
  std::size_t stale = 0;     // stale + unknown_resolve
  std::size_t unrouted = 0;  // new incidents that matched no route
};

struct plan {
  plan_counts counts;
  std::vector<notification> notifications;  // pages first, then resolves; deterministic order
  std::vector<nobody_on_call> nobody;
  std::vector<no_contact> no_contacts;
  std::vector<blocked_target> blocked;
  std::vector<observation> observations;  // parallel to the webhook's alerts
  std::vector<ownership> ownerships;      // parallel to the webhook's alerts
};

// Turns one webhook body into the notifications it implies: classify (annotates each alert's
// labels with `ownership`, normalises severity), dedup against `table`, route new incidents and
// resolve the on-call person at `now`; closed incidents go back to whoever was paged. Mutates
// `table` (first dropping closed incidents older than its retention) and `hook.alerts`
// (annotation). Deterministic for the same inputs. Same threading as
// the table.
plan make_plan(const routing_table& table_cfg, incident_table& table, webhook& hook, timestamp now);

// A decoded body and its plan.
struct routed_webhook {
  webhook hook;
  plan result;
};

// decode_webhook + make_plan in one step, for the daemon's hot path: alerts that will not open or
// close an incident (Alertmanager's resends) are decoded without their annotations and
// generatorURL, which nothing reads for them, and repeats of a known incident without their
// labels too (their ownership is the incident's; see plan::ownerships). Same plan as decoding in
// full and calling make_plan. A body that does not decode changes nothing but the expiry of old
// incidents. Same threading as the table.
std::variant<routed_webhook, decode_error> route_webhook(std::string_view body,
                                                         const routing_table& table_cfg,
                                                         incident_table& table, timestamp now);

// As route_webhook, into `out`, whatever it held before: its strings and vectors keep their
// capacity, so a caller that routes body after body with one routed_webhook (the daemon's
// webhook handler) allocates nothing for a body of repeats. True on success; false with `error`
// set otherwise, `out` then holding an unspecified part of the body.
bool route_webhook_into(std::string_view body, const routing_table& table_cfg,
                        incident_table& table, timestamp now, routed_webhook& out,
                        decode_error& error);

}  // namespace alertrouter::routing
