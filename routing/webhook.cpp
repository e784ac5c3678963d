#include "routing/webhook.h"

#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <tuple>
#include <utility>

namespace alertrouter::routing {
namespace {

namespace dom = simdjson::dom;

// Deeper documents are rejected by the parser itself. Alertmanager's bodies are 4 deep.
constexpr std::size_t kMaxDepth = 32;

// Parser buffers start this big and double as bodies grow, up to kRetainedCapacity. They cost
// about 15 bytes per byte of capacity, so a thread keeps at most ~15 MiB (resident only as far
// as bodies have touched it); a larger body gets buffers of its own, freed when it is decoded.
constexpr std::size_t kMinCapacity = std::size_t{16} << 10;
constexpr std::size_t kRetainedCapacity = std::size_t{1} << 20;

// simdjson's DOM parser with its buffers and a padded copy of the input (simdjson reads up to
// SIMDJSON_PADDING bytes past the end, which a caller's string_view does not promise). Reused
// for every body a thread decodes, so steady-state parsing allocates nothing.
class json_reader {
 public:
  // Parses and fully validates `body` (structure, strings, numbers, literals, UTF-8, depth).
  // On success `root` points into this reader, valid until the next parse.
  simdjson::error_code parse(std::string_view body, dom::element& root) {
    if (body.size() > capacity_ || capacity_ == 0) {
      if (const auto err = grow(body.size())) return err;
    }
    std::memcpy(input_.get(), body.data(), body.size());
    return parser_.parse_into_document(doc_, input_.get(), body.size(), false).get(root);
  }

 private:
  simdjson::error_code grow(std::size_t needed) {
    std::size_t capacity = std::max(needed, kMinCapacity);
    if (needed <= kRetainedCapacity) {
      capacity = std::max(capacity, std::min(capacity_ * 2, kRetainedCapacity));
    }
    capacity_ = 0;  // until every buffer has been reallocated
    input_.reset(new (std::nothrow) char[capacity + simdjson::SIMDJSON_PADDING]());
    if (!input_) return simdjson::MEMALLOC;
    if (const auto err = parser_.allocate(capacity, kMaxDepth)) return err;
    if (const auto err = doc_.allocate(capacity)) return err;
    capacity_ = capacity;
    return simdjson::SUCCESS;
  }

  dom::parser parser_;
  dom::document doc_;
  std::unique_ptr<char[]> input_;
  std::size_t capacity_ = 0;  // the longest body all three buffers can hold
};

// Text reserved for each spare label slot: the `ownership` label and its longest value.
constexpr std::size_t kSpareBytes = 16;

// Fields we read. The root's and an alert's are disjoint so one enum serves both levels.
enum class field : std::uint8_t {
  unknown,
  version,
  group_key,
  truncated_alerts,
  status,
  receiver,
  group_labels,
  common_labels,
  common_annotations,
  external_url,
  alerts,
  alert_status,
  alert_labels,
  alert_annotations,
  starts_at,
  ends_at,
  generator_url,
  fingerprint,
};

std::string_view field_name(field f) {
  switch (f) {
    case field::unknown:
      return "";
    case field::version:
      return "version";
    case field::group_key:
      return "groupKey";
    case field::truncated_alerts:
      return "truncatedAlerts";
    case field::status:
    case field::alert_status:
      return "status";
    case field::receiver:
      return "receiver";
    case field::group_labels:
      return "groupLabels";
    case field::common_labels:
      return "commonLabels";
    case field::common_annotations:
      return "commonAnnotations";
    case field::external_url:
      return "externalURL";
    case field::alerts:
      return "alerts";
    case field::alert_labels:
      return "labels";
    case field::alert_annotations:
      return "annotations";
    case field::starts_at:
      return "startsAt";
    case field::ends_at:
      return "endsAt";
    case field::generator_url:
      return "generatorURL";
    case field::fingerprint:
      return "fingerprint";
  }
  return "";
}

field root_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (key == "status") return field::status;
      if (key == "alerts") return field::alerts;
      break;
    case 7:
      if (key == "version") return field::version;
      break;
    case 8:
      if (key == "groupKey") return field::group_key;
      if (key == "receiver") return field::receiver;
      break;
    case 11:
      if (key == "groupLabels") return field::group_labels;
      if (key == "externalURL") return field::external_url;
      break;
    case 12:
      if (key == "commonLabels") return field::common_labels;
      break;
    case 15:
      if (key == "truncatedAlerts") return field::truncated_alerts;
      break;
    case 17:
      if (key == "commonAnnotations") return field::common_annotations;
      break;
    default:
      break;
  }
  return field::unknown;
}

field alert_field(std::string_view key) {
  switch (key.size()) {
    case 6:
      if (key == "status") return field::alert_status;
      if (key == "labels") return field::alert_labels;
      if (key == "endsAt") return field::ends_at;
      break;
    case 8:
      if (key == "startsAt") return field::starts_at;
      break;
    case 11:
      if (key == "annotations") return field::alert_annotations;
      if (key == "fingerprint") return field::fingerprint;
      break;
    case 12:
      if (key == "generatorURL") return field::generator_url;
      break;
    default:
      break;
  }
  return field::unknown;
}

std::optional<alert_status> parse_status(std::string_view s) {
  if (s == "firing") return alert_status::firing;
  if (s == "resolved") return alert_status::resolved;
  return std::nullopt;
}

// Builds a `webhook` from a validated DOM, walking each object's fields in document order so
// that the first wrong field is the one reported and a repeated key's last value wins. Strings
// are copied once, from the parser's buffer into their final place. Paths for error messages
// are only built on failure.
class webhook_builder {
 public:
  explicit webhook_builder(const detail_filter* filter) : filter_(filter) {}

  webhook out;
  decode_error error;

  // False, with `error` set, when the document is not a valid webhook.
  bool build(dom::element root) {
    dom::object object;
    if (root.get(object) != simdjson::SUCCESS) return fail("", "expected a JSON object");
    bool has_alerts = false;
    for (const dom::key_value_pair& kv : object) {
      const field f = root_field(kv.key);
      switch (f) {
        case field::unknown:
          break;  // fields Alertmanager may add later are ignored, whatever they hold
        case field::version:
          if (!string_field(kv.value, f, out.version)) return false;
          // Version 4 is the only format there is; another would change what fields mean.
          if (!out.version.empty() && out.version != "4") {
            return fail("version", "unsupported webhook version \"" + out.version.substr(0, 32) +
                                       "\" (expected \"4\")");
          }
          break;
        case field::group_key:
          if (!string_field(kv.value, f, out.group_key)) return false;
          break;
        case field::receiver:
          if (!string_field(kv.value, f, out.receiver)) return false;
          break;
        case field::external_url:
          if (!string_field(kv.value, f, out.external_url)) return false;
          break;
        case field::truncated_alerts: {
          std::int64_t n = 0;
          if (kv.value.is_null()) break;
          // simdjson types integers above INT64_MAX as uint64 and anything with a fraction or
          // exponent as double; both are rejected.
          if (kv.value.type() == dom::element_type::INT64 && kv.value.get(n) == simdjson::SUCCESS &&
              n >= 0) {
            out.truncated_alerts = n;
            break;
          }
          return expected(f, "a non-negative integer");
        }
        case field::status: {
          if (kv.value.is_null()) break;
          std::string_view s;
          std::optional<alert_status> st;
          if (kv.value.get(s) == simdjson::SUCCESS) st = parse_status(s);
          if (!st) return expected(f, "\"firing\" or \"resolved\"");
          out.status = *st;
          break;
        }
        case field::group_labels:
        case field::common_labels:
        case field::common_annotations:
          // Routing reads only each alert's own labels: with a filter these are checked, not kept.
          if (filter_ != nullptr) {
            if (!check_map(kv.value, f, false)) return false;
            break;
          }
          if (!map_field(kv.value, f, false,
                         f == field::group_labels    ? out.group_labels
                         : f == field::common_labels ? out.common_labels
                                                     : out.common_annotations)) {
            return false;
          }
          break;
        case field::alerts:
          if (!alerts(kv.value)) return false;
          has_alerts = true;
          break;
        default:
          break;  // alert fields: not looked up at this level
      }
    }
    if (!has_alerts) return fail("alerts", "required");
    return true;
  }

 private:
  bool fail(std::string path, std::string message) {
    error = decode_error{std::move(path), std::move(message)};
    return false;
  }

  std::string alert_path() const { return "alerts[" + std::to_string(alert_index_) + "]"; }

  // The JSON path of field `f` in the current alert, or at the root.
  std::string field_path(field f) const {
    if (f >= field::alert_status) return alert_path() + "." + std::string(field_name(f));
    return std::string(field_name(f));
  }

  bool expected(field f, std::string_view what) {
    return fail(field_path(f), "expected " + std::string(what));
  }

  bool string_field(dom::element value, field f, std::string& target) {
    std::string_view s;
    if (value.get(s) == simdjson::SUCCESS) {
      target.assign(s);
      return true;
    }
    if (value.is_null()) return true;
    return expected(f, "a string");
  }

  bool timestamp_field(dom::element value, field f, bool required, timestamp& target) {
    std::string_view s;
    if (value.get(s) == simdjson::SUCCESS) {
      // The alerts of a group mostly share their times (endsAt is Go's zero time until they
      // resolve), so the last text parsed for each field usually comes again.
      memo_timestamp& memo = f == field::starts_at ? last_starts_at_ : last_ends_at_;
      if (!memo.text.empty() && memo.text == s) {
        target = memo.value;
        return true;
      }
      if (auto t = parse_rfc3339(s)) {
        target = *t;
        memo = {s, *t};  // `s` points into the parser's document, which outlives the builder
        return true;
      }
    } else if (value.is_null() && !required) {
      return true;
    }
    return expected(f, "an RFC 3339 string");
  }

  // An object of strings into `target`, replacing what it held. `spare` slots are reserved for
  // labels added later.
  bool map_field(dom::element value, field f, bool required, label_set& target,
                 std::size_t spare = 0) {
    dom::object object;
    if (value.get(object) != simdjson::SUCCESS) {
      if (value.is_null() && !required) return true;
      return expected(f, "an object of strings");
    }
    // simdjson stores the size (saturating at 2^24 - 1, where it is only a hint). The text is
    // guessed from the last set of this field (the alerts of a group are alike) so that the
    // buffer is usually allocated once, without a first pass to measure it.
    std::size_t& last_bytes = f == field::alert_labels        ? last_label_bytes_
                              : f == field::alert_annotations ? last_annotation_bytes_
                                                              : last_other_bytes_;
    const std::size_t count = object.size();
    const std::size_t guess = last_bytes != 0 ? last_bytes + last_bytes / 8 : count * 32;
    label_set::builder labels;
    labels.reserve(count + spare, guess + spare * kSpareBytes);
    std::size_t bytes = 0;
    for (const dom::key_value_pair& kv : object) {
      std::string_view s;
      if (kv.value.get(s) != simdjson::SUCCESS) {
        return fail(field_path(f) + "." + std::string(kv.key), "expected a string");
      }
      bytes += kv.key.size() + s.size();
      labels.add(kv.key, s);
    }
    last_bytes = bytes;
    // Alertmanager sends keys sorted, which the builder checks for and then keeps as they are.
    target = std::move(labels).build();
    return true;
  }

  // Checks that `value` is an object of strings (or null when not required) without copying it.
  bool check_map(dom::element value, field f, bool required) {
    dom::object object;
    if (value.get(object) != simdjson::SUCCESS) {
      if (value.is_null() && !required) return true;
      return expected(f, "an object of strings");
    }
    for (const dom::key_value_pair& kv : object) {
      if (!kv.value.is_string()) {
        return fail(field_path(f) + "." + std::string(kv.key), "expected a string");
      }
    }
    return true;
  }

  bool copy_labels(dom::element value, alert& a) {
    // make_plan adds the `ownership` label to every alert; a spare slot (entry and text) saves it
    // from reallocating the set.
    return map_field(value, field::alert_labels, true, a.labels, 1);
  }

  bool alerts(dom::element value) {
    dom::array array;
    if (value.get(array) != simdjson::SUCCESS) return expected(field::alerts, "an array");
    out.alerts.clear();  // a repeated key replaces, as in Go's encoding/json
    out.alerts.reserve(array.size());
    alert_index_ = 0;
    for (const dom::element item : array) {
      dom::object object;
      if (item.get(object) != simdjson::SUCCESS) return fail(alert_path(), "expected an object");
      if (!one_alert(object, out.alerts.emplace_back())) return false;
      ++alert_index_;
    }
    return true;
  }

  bool one_alert(dom::object object, alert& a) {
    bool has_status = false, has_labels = false, has_starts_at = false, has_fingerprint = false;
    // With a filter, labels, annotations and generatorURL are validated in document order but
    // copied only once the filter has seen the alert; the last occurrence of a repeated key wins.
    std::optional<dom::element> labels, annotations, generator_url;
    for (const dom::key_value_pair& kv : object) {
      const field f = alert_field(kv.key);
      switch (f) {
        case field::unknown:
          break;
        case field::alert_status: {
          std::string_view s;
          std::optional<alert_status> st;
          if (kv.value.get(s) == simdjson::SUCCESS) st = parse_status(s);
          if (!st) return expected(f, "\"firing\" or \"resolved\"");
          a.status = *st;
          has_status = true;
          break;
        }
        case field::alert_labels:
          if (filter_ != nullptr) {
            if (!check_map(kv.value, f, true)) return false;
            labels = kv.value;
          } else if (!copy_labels(kv.value, a)) {
            return false;
          }
          has_labels = true;
          break;
        case field::alert_annotations:
          if (!check_map(kv.value, f, false)) return false;
          annotations = kv.value;
          break;
        case field::starts_at:
          if (!timestamp_field(kv.value, f, true, a.starts_at)) return false;
          has_starts_at = true;
          break;
        case field::ends_at:
          if (!timestamp_field(kv.value, f, false, a.ends_at)) return false;
          break;
        case field::generator_url:
          if (!kv.value.is_string() && !kv.value.is_null()) return expected(f, "a string");
          generator_url = kv.value;
          break;
        case field::fingerprint: {
          if (kv.value.is_null()) break;
          std::string_view s;
          std::optional<fingerprint> fp;
          if (kv.value.get(s) == simdjson::SUCCESS) fp = parse_fingerprint(s);
          if (!fp) return expected(f, "1 to 16 hex digits");
          a.fp = *fp;
          has_fingerprint = true;
          break;
        }
        default:
          break;  // root fields: not looked up at this level
      }
    }
    if (!has_status) return fail(alert_path() + ".status", "required");
    if (!has_labels) return fail(alert_path() + ".labels", "required");
    if (!has_starts_at) return fail(alert_path() + ".startsAt", "required");
    // Everything was validated above, so no copy below can fail.
    if (!has_fingerprint) {
      // The fingerprint is computed from the labels, which are then needed whatever the filter
      // says.
      if (labels && !copy_labels(*labels, a)) return false;
      labels.reset();
      a.fp = compute_fingerprint(a.labels);
    }
    if (filter_ != nullptr && !filter_->keep_details(a.fp, a.status, a.starts_at)) {
      a.details_omitted = true;
      if (labels && !filter_->keep_labels(a.fp, a.status, a.starts_at)) {
        a.labels_omitted = true;
        return true;
      }
      return !labels || copy_labels(*labels, a);
    }
    if (labels && !copy_labels(*labels, a)) return false;
    if (annotations && !map_field(*annotations, field::alert_annotations, false, a.annotations)) {
      return false;
    }
    if (generator_url && !string_field(*generator_url, field::generator_url, a.generator_url)) {
      return false;
    }
    return true;
  }

  struct memo_timestamp {
    std::string_view text;
    timestamp value{};
  };

  const detail_filter* const filter_;
  std::size_t alert_index_ = 0;
  // Text in the last set decoded for alerts' labels, alerts' annotations, and other maps.
  std::size_t last_label_bytes_ = 0;
  std::size_t last_annotation_bytes_ = 0;
  std::size_t last_other_bytes_ = 0;
  memo_timestamp last_starts_at_;
  memo_timestamp last_ends_at_;
};

// ---------------------------------------------------------------------------------------------
// Error path only: simdjson says what kind of error a document has but not where, so the
// messages that need a position come from small scalar scans of the body.

// The index of the first byte that is not part of valid UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return i;
    }
    if (i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      const unsigned char min = k == 1 ? lo : 0x80;
      const unsigned char max = k == 1 ? hi : 0xBF;
      if (b < min || b > max) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

bool is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::size_t skip_space(std::string_view s, std::size_t i) {
  while (i < s.size() && is_json_space(s[i])) ++i;
  return i;
}

// The index of the quote closing the string that opens at `open`, or npos if the body ends first.
std::size_t string_end(std::string_view s, std::size_t open) {
  for (std::size_t i = open + 1; i < s.size(); ++i) {
    if (s[i] == '\\') {
      ++i;
    } else if (s[i] == '"') {
      return i;
    }
  }
  return std::string_view::npos;
}

decode_error truncated() { return {"", "truncated JSON: unexpected end of input"}; }

// Finds where the root value ends by matching brackets and skipping strings (the rest of the
// grammar is not checked): a body that ends first is truncated, and one with more after the
// root value has trailing data. Nullopt when neither, nor a mismatched bracket, is the problem.
std::optional<decode_error> structure_error(std::string_view body) {
  std::size_t i = skip_space(body, 0);
  if (i == body.size()) return truncated();
  const char first = body[i];
  std::size_t end = 0;  // one past the root value
  if (first == '{' || first == '[') {
    std::string open;  // brackets not closed yet
    for (; i < body.size() && end == 0; ++i) {
      const char c = body[i];
      if (c == '"') {
        i = string_end(body, i);
        if (i == std::string_view::npos) return truncated();
      } else if (c == '{' || c == '[') {
        open.push_back(c);
      } else if (c == '}' || c == ']') {
        if (open.back() != (c == '}' ? '{' : '[')) {
          return decode_error{"", "invalid JSON at byte " + std::to_string(i) + ": mismatched '" +
                                      std::string(1, c) + "'"};
        }
        open.pop_back();
        if (open.empty()) end = i + 1;
      }
    }
    if (end == 0) return truncated();
  } else if (first == '"') {
    const std::size_t close = string_end(body, i);
    if (close == std::string_view::npos) return truncated();
    end = close + 1;
  } else if (first == '-' || (first >= '0' && first <= '9') || first == 't' || first == 'f' ||
             first == 'n') {
    end = body.find_first_of(" \t\r\n,:[]{}\"", i);
    if (end == std::string_view::npos) end = body.size();
  } else {
    return decode_error{"", "invalid JSON at byte " + std::to_string(i) + ": expected a value"};
  }
  const std::size_t after = skip_space(body, end);
  if (after < body.size()) {
    return decode_error{"",
                        "unexpected data after the JSON document at byte " + std::to_string(after)};
  }
  return std::nullopt;
}

std::string_view describe(simdjson::error_code code) {
  switch (code) {
    case simdjson::TAPE_ERROR:
      return "misplaced or missing comma, colon, bracket or quote, or an unexpected character";
    case simdjson::STRING_ERROR:
      return "invalid escape sequence or unpaired surrogate in a string";
    case simdjson::UNESCAPED_CHARS:
      return "unescaped control character in a string";
    case simdjson::UNCLOSED_STRING:
      return "unterminated string";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
      return "invalid literal (expected true, false or null)";
    case simdjson::NUMBER_ERROR:
      // simdjson also rejects integers beyond 64 bits and numbers beyond double's range.
      return "malformed number, or one outside the 64-bit integer or double range";
    default:
      return simdjson::error_message(code);
  }
}

decode_error syntax_error(std::string_view body, simdjson::error_code code) {
  switch (code) {
    case simdjson::EMPTY:  // nothing but whitespace
      return truncated();
    case simdjson::UTF8_ERROR:
      if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
        return {"", "invalid UTF-8 at byte " + std::to_string(bad)};
      }
      return {"", "invalid UTF-8"};
    case simdjson::DEPTH_ERROR:
      return {"", "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
    case simdjson::MEMALLOC:
      return {"", "cannot decode body: out of memory"};
    case simdjson::CAPACITY:
      return {"", "cannot decode body: too large for the JSON parser"};
    default:
      break;
  }
  if (auto e = structure_error(body)) return std::move(*e);
  return {"", "invalid JSON: " + std::string(describe(code))};
}

std::variant<webhook, decode_error> decode_with(json_reader& reader, std::string_view body,
                                                const detail_filter* filter) {
  dom::element root;
  if (const auto err = reader.parse(body, root)) return syntax_error(body, err);
  webhook_builder builder(filter);
  if (!builder.build(root)) return std::move(builder.error);
  return std::move(builder.out);
}

}  // namespace

std::string decode_error::to_string() const {
  if (field.empty()) return message;
  return field + ": " + message;
}

std::variant<webhook, decode_error> decode_webhook(std::string_view body) {
  return decode_webhook(body, nullptr);
}

std::variant<webhook, decode_error> decode_webhook(std::string_view body,
                                                   const detail_filter* filter) {
  try {
    if (body.size() > kRetainedCapacity) {
      json_reader once;
      return decode_with(once, body, filter);
    }
    // One per thread: decode_webhook stays safe from any thread and never re-enters itself.
    thread_local json_reader reader;
    return decode_with(reader, body, filter);
  } catch (const std::exception& e) {
    // Allocation failure while building the result from a huge body.
    return decode_error{"", std::string("cannot decode body: ") + e.what()};
  }
}

}  // namespace alertrouter::routing
