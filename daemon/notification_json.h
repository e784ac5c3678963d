#pragma once

#include <optional>
#include <string>

#include "routing/planner.h"
#include "routing/time.h"

namespace alertrouter::daemon {

// The JSON body alertrouterd POSTs to a webhook contact for one routing::notification, sent with
// `Content-Type: application/json` and `Idempotency-Key: <id>`.
//
// Format, version "1" (top-level keys in this order; every key is always present unless noted):
//
//   {
//     "version": "1",
//     "id": "page-42-9f3c0a1b2c3d4e5f",   // notification_context::id, see make_notification_id
//     "kind": "page" | "resolve",
//     "route": "wmcs-page",               // first of "routes"; "" when there is none
//     "routes": ["wmcs-page", ...],       // the routes that led here, in first-seen order
//     "target": {
//       "type": "schedule" | "receiver" | "project",
//       "name": "wmcs-primary",           // schedule / receiver name, or the alert's project
//       "person": "alice"                 // present only when type is "schedule"
//     },
//     "ownership": "owned",               // the first alert's `ownership` label ("owned", "user",
//                                         // "unowned"); "" when absent or there are no alerts
//     "severity": "page",                 // see "Severity" below; "" when no alert has one
//     "summary": "[PAGE] CephClusterInError (2 alerts) tools",   // see "Summary" below
//     "group_key": "{}:{alertname=\"CephClusterInError\"}",     // the webhook's groupKey
//     "external_url": "https://alerts.wikimedia.org",           // the webhook's externalURL
//     "sent_at": "2026-01-07T16:00:00.500000Z",  // only when notification_context::sent_at is set
//     "alerts": [                         // notification order (parallel to its incident ids)
//       {
//         "status": "firing" | "resolved",
//         "labels": {"alertname": "...", ...},       // sorted by name
//         "annotations": {"summary": "...", ...},    // sorted by name
//         "startsAt": "2026-01-07T15:55:00Z",   // RFC 3339 UTC; 6-digit fraction if non-zero
//         "endsAt": "0001-01-01T00:00:00Z",          // Go's zero time when unset (see below)
//         "generatorURL": "https://...",
//         "fingerprint": "0123456789abcdef"          // 16 lowercase hex digits
//       }
//     ]
//   }
//
// Alerts carry Alertmanager's own field names and spellings (camelCase), so a receiver can reuse
// Alertmanager webhook code for them. An `endsAt`/`startsAt` equal to the Unix epoch (the decoder's
// default for a missing field) is written as Go's zero time "0001-01-01T00:00:00Z", which is what
// Alertmanager sends for "not set"; every other instant is written as is (including a zero time
// that came in as such).
//
// Severity: the highest `severity` label value among the alerts, ranked
//   page > critical > warning > task > info > any other non-empty value > absent/empty.
// Comparison is exact and case-sensitive (the classifier has already rewritten "warn" to
// "warning"); among equal ranks the first alert's value wins, so two unknown values yield the
// first one's. The value is sent as spelled in the label.
//
// Summary: one line, "<PREFIX> <title>[ <project>]":
//   PREFIX  "[PAGE]" for a page, "[RESOLVED]" for a resolve.
//   title   one alert: its `summary` annotation when non-empty, else its `alertname` label, else
//           "alert <fingerprint>". Several alerts: the distinct alert names (the `alertname`
//           label, or "alert <fingerprint>" without one) in first-seen order, the first three
//           joined by ", " and " +K more" when there are K further names, then " (N alerts)".
//           "(no alerts)" for an empty notification.
//   project appended when every alert carries the same non-empty project label (the label named
//           by notification_context::project_label).
// In the title and the project, control characters (newlines, tabs, ...) become spaces, runs of
// spaces collapse to one and leading/trailing spaces are trimmed; each is then cut to at most 200
// bytes, at a UTF-8 code point boundary, ending with "…" (U+2026) when cut. PREFIX always
// survives.

// What a notification does not carry itself. Plain value; the caller fills it per delivery.
struct notification_context {
  // Sent as "id" and as the Idempotency-Key header: make_notification_id(n) unless the caller has
  // a better one. Must be the same on every retry of the same notification.
  std::string id;
  std::string group_key;     // the webhook's groupKey
  std::string external_url;  // the webhook's externalURL
  // When set, "sent_at" is written: the time of this delivery attempt (so it differs between
  // retries; "id" does not).
  std::optional<routing::timestamp> sent_at;
  // The label naming an alert's project (config().ownership.label); used only for the summary.
  std::string project_label = "project";
};

// Encodes `n` in the format above. Pure; safe from any thread; never throws on any content of
// `n` (label values are expected to be valid UTF-8, which the webhook decoder guarantees; other
// bytes are copied through unchanged). Throws only std::bad_alloc.
std::string encode_notification(const routing::notification& n, const notification_context& ctx);

// A deterministic id for `n`: "<kind>-<first incident id>-<16 lowercase hex>", e.g.
// "page-42-9f3c0a1b2c3d4e5f" ("0" in the middle when there are no incidents). The hash is a 64-bit
// FNV-1a (with a final avalanche) over an unambiguous, length-prefixed encoding of the kind, the
// target (type, name, person) and, for every incident in order, its id, its alert's fingerprint
// and its alert's startsAt.
//
// Stable across retries: it depends only on the notification's content, never on time, the
// attempt or the process, so a retry, or the same notification re-read from an outbox after a
// restart, gets the same id.
// Unique: incident ids are unique per incident table, so notifications about different incidents
// differ in their ids; page and resolve differ in kind; the several targets of one incident differ
// in the target fields. Incident ids restart at 1 when the process restarts, which is why the
// alerts' fingerprints and startsAt are hashed too: a new incident that reuses an old id still
// gets a different id (barring a 64-bit hash collision), while a repeat of the very same
// notification keeps its id. Routes and contacts are not part of it. Pure; safe from any thread.
std::string make_notification_id(const routing::notification& n);

}  // namespace alertrouter::daemon
