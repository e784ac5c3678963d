#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "routing/alert.h"

namespace alertrouter::routing {

// Alertmanager's webhook payload, version "4". Unknown fields are ignored.
struct webhook {
  std::string version;
  std::string group_key;
  std::int64_t truncated_alerts = 0;
  alert_status status = alert_status::firing;
  std::string receiver;
  label_set group_labels;
  label_set common_labels;
  label_set common_annotations;
  std::string external_url;
  std::vector<alert> alerts;

  friend bool operator==(const webhook&, const webhook&) = default;
};

// Why a body was rejected. `field` is a JSON path such as `alerts[3].startsAt` ("" for the
// document itself); `message` says what was wrong with it.
struct decode_error {
  std::string field;
  std::string message;
  std::string to_string() const;  // "alerts[3].startsAt: expected an RFC 3339 string"

  friend bool operator==(const decode_error&, const decode_error&) = default;
};

// Decodes and validates one webhook body. `version`, when present, must be "4". Required:
// `alerts` (array), and per alert `status`
// ("firing"|"resolved"), `labels` (object of strings), `startsAt` (RFC 3339). Optional fields
// keep their defaults when absent or null; `fingerprint` is computed when absent and rejected
// when malformed. The whole body must be valid JSON first, unknown fields included: malformed
// JSON, invalid UTF-8, nesting deeper than 32, and numbers beyond 64-bit integers or double's
// range are errors wherever they appear (and win over a wrong field earlier in the body); then
// any wrong type is an error, the first in document order reported. Never throws. Safe from any
// thread: each thread reuses its own parser buffers (kept up to ~16 MiB; a body over 1 MiB gets
// buffers of its own, freed after), and keeps what it read of up to 8,192 recent bodies (16 MiB
// at most, plus 1 MiB of slots; bodies up to 1 MiB) to decode their groups' resends from
// (json_index_cache.h).
std::variant<webhook, decode_error> decode_webhook(std::string_view body);

// Spares the decoder copies its caller will not use. After an alert has been validated,
// keep_details says whether its annotations and generatorURL are wanted; when not, they are left
// empty and the alert's `details_omitted` is set. Validation is the same either way. Called on the
// decoding thread, once per alert, in document order.
//
// With a filter, groupLabels, commonLabels and commonAnnotations are validated but left empty:
// routing reads only each alert's own labels.
//
// When keep_details is false and the body carried the alert's fingerprint, keep_labels is asked
// too; when it is false as well, the labels are left empty and `labels_omitted` is set.
class detail_filter {
 public:
  virtual bool keep_details(fingerprint fp, alert_status status, timestamp starts_at) const = 0;
  virtual bool keep_labels(fingerprint fp, alert_status status, timestamp starts_at) const {
    (void)fp;
    (void)status;
    (void)starts_at;
    return true;
  }

 protected:
  ~detail_filter() = default;
};

// As above; `filter` may be nullptr (keep everything).
std::variant<webhook, decode_error> decode_webhook(std::string_view body,
                                                   const detail_filter* filter);

// As decode_webhook(body, filter), into `out`, whatever it held before: for a caller that keeps
// the webhook inside a larger result (saving a move) or decodes body after body into one webhook
// (its strings and vectors keep their capacity). True on success; false with `error` set
// otherwise, `out` then holding an unspecified part of the body.
bool decode_webhook_into(std::string_view body, const detail_filter* filter, webhook& out,
                         decode_error& error);

// How the calling thread's decode_webhook calls have indexed the bodies they read with the fast
// path, since the thread started: by running simdjson's first stage, or from the index of their
// group's last body (json_index_cache.h), as is (`reused`: the same bytes) or derived
// (`derived`: strings differ). Of those two, how many were decoded from what the scan of that
// last body had read (`replayed`: both decoded with a detail_filter, and no string differing
// that the scan kept, such as a status, a time or a fingerprint). Bodies the first stage
// rejects are not counted.
struct index_counts {
  std::uint64_t first_stage = 0;
  std::uint64_t reused = 0;
  std::uint64_t derived = 0;
  std::uint64_t replayed = 0;
};
index_counts thread_index_counts();

namespace detail {

// The two ways decode_webhook decodes a body, for tests and fuzzers that hold them to each other.
// scan_webhook is the fast path, straight from simdjson's first stage: nullopt when it declines
// the body (every invalid body, and valid ones using JSON it leaves to the DOM: numbers other
// than small integers, UTF-16 surrogate escapes, nesting deeper than 16). decode_webhook_dom is
// the DOM path alone, which decides every body the scanner declines. Where the scanner accepts a
// body, the DOM path must decode it to the same webhook.
std::optional<webhook> scan_webhook(std::string_view body, const detail_filter* filter);
std::variant<webhook, decode_error> decode_webhook_dom(std::string_view body,
                                                       const detail_filter* filter);

// simdjson's first stage alone on `body`: the offset where each token starts, then the body's
// length; nullopt when the first stage or json_escapes rejects the body.
std::optional<std::vector<std::uint32_t>> first_stage_tokens(std::string_view body);

// Whether the calling thread's decode_webhook calls may start from recent bodies' indexes (by
// default they may); benchmarks turn it off to time the first stage.
void reuse_indexes(bool on);

}  // namespace detail

}  // namespace alertrouter::routing
