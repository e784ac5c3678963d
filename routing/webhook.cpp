#include "routing/webhook.h"

#include <exception>
#include <functional>
#include <limits>
#include <optional>
#include <tuple>

// Boost.JSON's SAX parser. It is a template, so its implementation is instantiated here.
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/error.hpp>
#include <boost/json/parse_options.hpp>

namespace alertrouter::routing {
namespace {

namespace json = boost::json;

// Deeper documents are rejected by the parser itself. Alertmanager's bodies are 4 deep.
constexpr std::size_t kMaxDepth = 32;

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

// Where the handler is in the (fixed) shape of a webhook body.
enum class level : std::uint8_t { document, root, alerts, alert, map, done };

// What kind of JSON value arrived.
enum class kind : std::uint8_t { string, integer, number, boolean, null, object, array };

// Builds a `webhook` straight from the parser's events: no DOM, and strings are copied once,
// from the input into their final place. Decoding this way is about 2.5x faster than parsing
// into a boost::json::value and walking it (measured on realistic bodies), and decoding is most
// of the per-alert cost. On a wrong type it records `error` and stops the parser.
class webhook_handler {
 public:
  static constexpr std::size_t max_object_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_array_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_key_size = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_string_size = std::numeric_limits<std::size_t>::max();

  explicit webhook_handler(std::string_view body) : body_(body) {
    // A realistic alert is 0.5 to 1 KiB of JSON; a guess saves most regrowths.
    out.alerts.reserve(body.size() / 512 + 1);
  }

  webhook out;
  std::optional<decode_error> error;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_object_begin(json::error_code& ec) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    return on_value(kind::object, {}, 0, ec);
  }

  bool on_array_begin(json::error_code& ec) {
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return true;
    }
    return on_value(kind::array, {}, 0, ec);
  }

  bool on_object_end(std::size_t, json::error_code& ec) {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    switch (level_) {
      case level::map:
        return end_map();
      case level::alert:
        return end_alert(ec);
      case level::root:
        if (!has_alerts_) return fail(ec, "alerts", "required");
        level_ = level::done;
        return true;
      default:
        return true;  // unreachable: objects elsewhere are skipped or rejected
    }
  }

  bool on_array_end(std::size_t, json::error_code&) {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    if (level_ == level::alerts) level_ = level::root;
    return true;
  }

  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    if (skip_depth_ > 0) return true;
    if (!key_in_parts_) key_buf_.clear();
    key_in_parts_ = true;
    key_buf_.append(s.data(), s.size());
    return true;
  }

  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    if (skip_depth_ > 0) return true;
    std::string_view key(s.data(), s.size());
    if (key_in_parts_) {
      key_buf_.append(key);
      key = key_buf_;
      key_in_parts_ = false;
    } else if (!in_body(key)) {
      // The parser's own buffer (an unescaped key), which the value may overwrite.
      key_buf_.assign(key);
      key = key_buf_;
    }
    switch (level_) {
      case level::root:
        field_ = root_field(key);
        break;
      case level::alert:
        field_ = alert_field(key);
        break;
      case level::map:
        // Points into the body or key_buf_, both stable until the value has been read.
        key_ = key;
        break;
      default:
        break;
    }
    return true;
  }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    if (skip_depth_ == 0) str_buf_.append(s.data(), s.size());
    return true;
  }

  bool on_string(json::string_view s, std::size_t, json::error_code& ec) {
    if (skip_depth_ > 0) return true;
    std::string_view value(s.data(), s.size());
    if (!str_buf_.empty()) {
      str_buf_.append(value);
      value = str_buf_;
    }
    const bool ok = on_value(kind::string, value, 0, ec);
    str_buf_.clear();
    return ok;
  }

  bool on_number_part(json::string_view, json::error_code&) { return true; }

  bool on_int64(std::int64_t i, json::string_view, json::error_code& ec) {
    if (skip_depth_ > 0) return true;
    return on_value(i >= 0 ? kind::integer : kind::number, {}, i, ec);
  }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code& ec) {
    // Only produced for values above INT64_MAX.
    if (skip_depth_ > 0) return true;
    return on_value(kind::number, {}, 0, ec);
  }
  bool on_double(double, json::string_view, json::error_code& ec) {
    if (skip_depth_ > 0) return true;
    return on_value(kind::number, {}, 0, ec);
  }
  bool on_bool(bool, json::error_code& ec) {
    if (skip_depth_ > 0) return true;
    return on_value(kind::boolean, {}, 0, ec);
  }
  bool on_null(json::error_code& ec) {
    if (skip_depth_ > 0) return true;
    return on_value(kind::null, {}, 0, ec);
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  bool in_body(std::string_view s) const {
    const std::less<const char*> before;
    return !before(s.data(), body_.data()) && !before(body_.data() + body_.size(), s.data());
  }

  bool fail(json::error_code& ec, std::string field_path, std::string message) {
    error = decode_error{std::move(field_path), std::move(message)};
    // Any failing code stops the parser; decode_webhook reports `error` instead of it.
    ec = json::error::exception;
    return false;
  }

  std::string alert_path() const { return "alerts[" + std::to_string(out.alerts.size()) + "]"; }

  // The JSON path of the value for field_ at the current level.
  std::string field_path(field f) const {
    if (level_ == level::alert || f >= field::alert_status) {
      return alert_path() + "." + std::string(field_name(f));
    }
    return std::string(field_name(f));
  }

  bool expected(json::error_code& ec, std::string_view what) {
    return fail(ec, field_path(field_), "expected " + std::string(what));
  }

  bool on_value(kind k, std::string_view s, std::int64_t i, json::error_code& ec) {
    switch (level_) {
      case level::document:
        if (k != kind::object) return fail(ec, "", "expected a JSON object");
        level_ = level::root;
        return true;
      case level::alerts:
        if (k != kind::object) return fail(ec, alert_path(), "expected an object");
        alert_ = alert{};
        has_status_ = has_labels_ = has_starts_at_ = has_fingerprint_ = false;
        level_ = level::alert;
        return true;
      case level::map:
        if (k != kind::string) {
          return fail(ec, field_path(map_field_) + "." + std::string(key_), "expected a string");
        }
        map_.emplace_back(std::piecewise_construct, std::forward_as_tuple(key_),
                          std::forward_as_tuple(s));
        return true;
      case level::root:
      case level::alert:
        return on_field(k, s, i, ec);
      case level::done:
        return true;
    }
    return true;
  }

  bool string_field(kind k, std::string_view s, std::string& target, json::error_code& ec) {
    if (k == kind::string) {
      target.assign(s);
      return true;
    }
    if (k == kind::null) return true;
    return expected(ec, "a string");
  }

  bool begin_map(kind k, bool required, json::error_code& ec) {
    if (k == kind::object) {
      map_field_ = field_;
      map_parent_ = level_;
      // Sized like the last map of this field: alerts of one group look alike, so this is
      // usually the one allocation the label_set keeps.
      map_.clear();
      map_.reserve(size_hint_[static_cast<std::size_t>(field_)]);
      level_ = level::map;
      return true;
    }
    if (k == kind::null && !required) return true;
    return expected(ec, "an object of strings");
  }

  bool timestamp_field(kind k, std::string_view s, timestamp& target, bool required,
                       json::error_code& ec) {
    if (k == kind::string) {
      if (auto t = parse_rfc3339(s)) {
        target = *t;
        return true;
      }
    } else if (k == kind::null && !required) {
      return true;
    }
    return expected(ec, "an RFC 3339 string");
  }

  bool on_field(kind k, std::string_view s, std::int64_t i, json::error_code& ec) {
    switch (field_) {
      case field::unknown:
        // Fields Alertmanager may add later are ignored, whatever they hold.
        if (k == kind::object || k == kind::array) skip_depth_ = 1;
        return true;
      case field::version:
        return string_field(k, s, out.version, ec);
      case field::group_key:
        return string_field(k, s, out.group_key, ec);
      case field::receiver:
        return string_field(k, s, out.receiver, ec);
      case field::external_url:
        return string_field(k, s, out.external_url, ec);
      case field::generator_url:
        return string_field(k, s, alert_.generator_url, ec);
      case field::truncated_alerts:
        if (k == kind::integer) {
          out.truncated_alerts = i;
          return true;
        }
        if (k == kind::null) return true;
        return expected(ec, "a non-negative integer");
      case field::status:
      case field::alert_status: {
        const bool in_alert = field_ == field::alert_status;
        if (k == kind::string) {
          if (auto st = parse_status(s)) {
            (in_alert ? alert_.status : out.status) = *st;
            has_status_ = has_status_ || in_alert;
            return true;
          }
        } else if (k == kind::null && !in_alert) {
          return true;
        }
        return expected(ec, "\"firing\" or \"resolved\"");
      }
      case field::group_labels:
      case field::common_labels:
      case field::common_annotations:
      case field::alert_annotations:
        return begin_map(k, false, ec);
      case field::alert_labels:
        return begin_map(k, true, ec);
      case field::alerts:
        if (k != kind::array) return expected(ec, "an array");
        out.alerts.clear();  // a repeated key replaces, as in Go's encoding/json
        has_alerts_ = true;
        level_ = level::alerts;
        return true;
      case field::starts_at:
        if (!timestamp_field(k, s, alert_.starts_at, true, ec)) return false;
        has_starts_at_ = true;
        return true;
      case field::ends_at:
        return timestamp_field(k, s, alert_.ends_at, false, ec);
      case field::fingerprint:
        if (k == kind::string) {
          if (auto fp = parse_fingerprint(s)) {
            alert_.fp = *fp;
            has_fingerprint_ = true;
            return true;
          }
        } else if (k == kind::null) {
          return true;
        }
        return expected(ec, "1 to 16 hex digits");
    }
    return true;
  }

  bool end_map() {
    label_set labels(std::move(map_));
    map_ = {};
    size_hint_[static_cast<std::size_t>(map_field_)] = labels.size();
    switch (map_field_) {
      case field::group_labels:
        out.group_labels = std::move(labels);
        break;
      case field::common_labels:
        out.common_labels = std::move(labels);
        break;
      case field::common_annotations:
        out.common_annotations = std::move(labels);
        break;
      case field::alert_labels:
        alert_.labels = std::move(labels);
        has_labels_ = true;
        break;
      case field::alert_annotations:
        alert_.annotations = std::move(labels);
        break;
      default:
        break;
    }
    level_ = map_parent_;
    return true;
  }

  bool end_alert(json::error_code& ec) {
    if (!has_status_) return fail(ec, alert_path() + ".status", "required");
    if (!has_labels_) return fail(ec, alert_path() + ".labels", "required");
    if (!has_starts_at_) return fail(ec, alert_path() + ".startsAt", "required");
    if (!has_fingerprint_) alert_.fp = compute_fingerprint(alert_.labels);
    out.alerts.push_back(std::move(alert_));
    level_ = level::alerts;
    return true;
  }

  level level_ = level::document;
  level map_parent_ = level::root;
  field field_ = field::unknown;
  field map_field_ = field::unknown;
  std::size_t skip_depth_ = 0;  // > 0 while inside the value of an unknown field
  bool has_alerts_ = false;
  bool has_status_ = false;
  bool has_labels_ = false;
  bool has_starts_at_ = false;
  bool has_fingerprint_ = false;
  std::string_view body_;
  bool key_in_parts_ = false;
  std::string key_buf_;   // a key split across parser buffers or unescaped by the parser
  std::string_view key_;  // the label name whose value comes next
  std::string str_buf_;   // the same for a string value
  std::vector<label_set::label> map_;  // the map being read; its last label awaits its value
  std::size_t size_hint_[static_cast<std::size_t>(field::fingerprint) + 1] = {
      0, 0, 0, 0, 0, 4, 4, 4, 0, 0, 0, 0, 12, 4};  // group/common labels+annotations, alert maps
  alert alert_;
};

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

decode_error syntax_error(std::string_view body, const json::error_code& ec, std::size_t offset) {
  if (ec == json::error::too_deep) {
    return {"", "nesting deeper than " + std::to_string(kMaxDepth) + " levels"};
  }
  if (ec == json::error::incomplete) return {"", "truncated JSON: unexpected end of input"};
  if (ec == json::error::extra_data) {
    return {"", "unexpected data after the JSON document at byte " + std::to_string(offset)};
  }
  // Boost.JSON reports bad UTF-8 as a plain syntax error; name the real cause.
  if (const std::size_t bad = first_invalid_utf8(body); bad != std::string_view::npos) {
    return {"", "invalid UTF-8 at byte " + std::to_string(bad)};
  }
  return {"", "invalid JSON at byte " + std::to_string(offset) + ": " + ec.message()};
}

}  // namespace

std::string decode_error::to_string() const {
  if (field.empty()) return message;
  return field + ": " + message;
}

std::variant<webhook, decode_error> decode_webhook(std::string_view body) {
  try {
    json::parse_options options;
    options.max_depth = kMaxDepth;
    options.allow_invalid_utf8 = false;  // the default, stated: labels must be valid UTF-8
    options.allow_comments = false;
    options.allow_trailing_commas = false;
    json::basic_parser<webhook_handler> parser(options, body);
    json::error_code ec;
    const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
    webhook_handler& h = parser.handler();
    if (h.error) return std::move(*h.error);
    if (ec) return syntax_error(body, ec, used);
    if (used != body.size()) {
      return decode_error{
          "", "unexpected data after the JSON document at byte " + std::to_string(used)};
    }
    return std::move(h.out);
  } catch (const std::exception& e) {
    // Allocation failure on a huge body; anything else from Boost is converted the same way.
    return decode_error{"", std::string("cannot decode body: ") + e.what()};
  }
}

}  // namespace alertrouter::routing
