#include "config/loader.h"

#include <date/tz.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <sstream>
#include <system_error>
#include <tuple>
#include <utility>

#include "config/duration.h"
#include "config/matcher_parse.h"

namespace alertrouter::config {
namespace {

using namespace std::string_view_literals;

// Deeper YAML is rejected before yaml-cpp builds a tree: its parser recurses once per level and
// can exhaust the stack (notably under sanitizers). No real configuration nests beyond ~6.
constexpr int max_nesting = 64;
constexpr std::uintmax_t max_file_bytes = 16u << 20;

constexpr std::array top_keys{"listen"sv,    "timezone"sv,  "ownership"sv,   "people"sv,
                              "schedules"sv, "receivers"sv, "projects"sv,    "routes"sv,
                              "dedup"sv,     "limits"sv,    "auth"sv,        "delivery"sv,
                              "state_dir"sv, "retention"sv, "commit_delay"sv};
constexpr std::array ownership_keys{"label"sv, "owned"sv, "owned_regex"sv, "infrastructure"sv};
constexpr std::array contact_keys{"webhook"sv, "email"sv, "irc"sv};
constexpr std::array schedule_keys{"timezone"sv, "layers"sv, "overrides"sv};
constexpr std::array layer_keys{"name"sv, "members"sv, "start"sv, "shift"sv, "active"sv};
constexpr std::array override_keys{"person"sv, "from"sv, "to"sv};
constexpr std::array route_keys{"name"sv, "match"sv, "notify"sv, "continue"sv};
constexpr std::array dedup_keys{"retention"sv, "max_incidents"sv};
// max_pending_notifications: max_pending's name before the outbox (accepted, with a warning).
constexpr std::array limits_keys{"max_body"sv,     "max_connections"sv,
                                 "read_timeout"sv, "idle_timeout"sv,
                                 "max_pending"sv,  "max_pending_notifications"sv};
constexpr std::array auth_keys{"bearer_token_file"sv};
constexpr std::array delivery_keys{"connect_timeout"sv, "request_timeout"sv,
                                   "max_attempts"sv,    "initial_backoff"sv,
                                   "max_backoff"sv,     "max_in_flight_per_destination"sv,
                                   "give_up_after"sv};

std::string quote(std::string_view s) { return "'" + std::string(s) + "'"; }

position to_position(const YAML::Mark& mark) {
  if (mark.is_null() || mark.line < 0 || mark.column < 0) return {};
  return {mark.line + 1, mark.column + 1};
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions, so that
// `shfit` is one edit from `shift`).
std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rolling rows of the DP table: the transposition step looks two rows back.
  std::vector<std::size_t> before(b.size() + 1);
  std::vector<std::size_t> previous(b.size() + 1);
  std::vector<std::size_t> current(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) previous[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    current[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        current[j] = std::min(current[j], before[j - 2] + 1);
      }
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[b.size()];
}

// The closest of `candidates` within two edits of `word`, or empty.
template <typename Range>
std::string closest(std::string_view word, const Range& candidates) {
  // Long garbage keys cannot be two edits from a short known word; skip the quadratic work.
  constexpr std::size_t max_distance = 2;
  std::string best;
  std::size_t best_distance = max_distance + 1;
  for (const auto& c : candidates) {
    const std::string_view candidate(c);
    const std::size_t longer = std::max(candidate.size(), word.size());
    const std::size_t shorter = std::min(candidate.size(), word.size());
    if (longer - shorter > max_distance) continue;
    const std::size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = std::string(candidate);
    }
  }
  return best;
}

template <typename Range>
std::string join(const Range& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ", ";
    out += std::string_view(w);
  }
  return out;
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a string";
    case YAML::NodeType::Null:
      return "nothing (null)";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// Thrown by depth_check, caught in load_string; never escapes this file.
struct nesting_too_deep {
  YAML::Mark mark;
};

// A first pass over the parser's events that rejects deep nesting and counts documents, before
// YAML::Load recurses through the same structure.
class depth_check final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    ++documents_;
    if (documents_ > 1 && mark.pos == last_document_.pos) stuck_ = true;
    if (documents_ == 2) second_document_ = mark;
    last_document_ = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnSequenceEnd() override { --depth_; }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    enter(mark);
  }
  void OnMapEnd() override { --depth_; }

  int documents() const { return documents_; }
  const YAML::Mark& second_document() const { return second_document_; }
  // yaml-cpp 0.7 does not consume a stray token such as a top-level ',' (jbeder/yaml-cpp#1040):
  // it reports an empty document at the same place forever. True once that was seen.
  bool stuck() const { return stuck_; }
  const YAML::Mark& stuck_at() const { return last_document_; }

 private:
  void enter(const YAML::Mark& mark) {
    if (++depth_ > max_nesting) throw nesting_too_deep{mark};
  }

  int depth_ = 0;
  int documents_ = 0;
  YAML::Mark second_document_ = YAML::Mark::null_mark();
  YAML::Mark last_document_ = YAML::Mark::null_mark();
  bool stuck_ = false;
};

bool is_label_name(std::string_view name) {
  if (name.empty()) return false;
  const auto start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  if (!start(name[0])) return false;
  return std::all_of(name.begin(), name.end(),
                     [&](char c) { return start(c) || (c >= '0' && c <= '9'); });
}

bool has_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

// Parses exactly `width` decimal digits at s[at..].
std::optional<int> digits(std::string_view s, std::size_t at, std::size_t width) {
  if (at + width > s.size()) return std::nullopt;
  int value = 0;
  for (std::size_t i = at; i < at + width; ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    value = value * 10 + (s[i] - '0');
  }
  return value;
}

constexpr std::chrono::seconds kMinShift = std::chrono::minutes(1);
constexpr std::chrono::seconds kMaxShift = std::chrono::weeks(52);
constexpr std::chrono::seconds kMinRetention = std::chrono::minutes(1);
constexpr std::chrono::seconds kMaxRetention = std::chrono::weeks(52);
// Daemon settings: wide enough for any real deployment, narrow enough that a unit typo
// (`max_body: 4` meaning 4 MiB, `read_timeout: 10m` meaning 10s x 60) does not pass silently
// into a server that cannot work.
constexpr std::uint64_t kMinBody = 1024;
constexpr std::uint64_t kMaxBody = 1024 * 1024 * 1024;
constexpr std::uint64_t kMaxConnections = 1'000'000;
constexpr std::uint64_t kMaxPendingNotifications = 100'000'000;
constexpr std::chrono::seconds kMinServerTimeout = std::chrono::seconds(1);
constexpr std::chrono::seconds kMaxServerTimeout = std::chrono::minutes(10);
constexpr std::chrono::milliseconds kMinDeliveryTimeout = std::chrono::milliseconds(100);
constexpr std::chrono::milliseconds kMaxDeliveryTimeout = std::chrono::minutes(10);
constexpr std::uint64_t kMaxAttempts = 100;
constexpr std::chrono::seconds kMinGiveUpAfter = std::chrono::seconds(1);
constexpr std::chrono::seconds kMaxGiveUpAfter = std::chrono::weeks(52);
constexpr std::chrono::seconds kMinStateRetention = std::chrono::hours(1);
constexpr std::chrono::seconds kMaxStateRetention = std::chrono::weeks(520);
constexpr std::chrono::milliseconds kMinBackoff = std::chrono::milliseconds(10);
constexpr std::chrono::milliseconds kMaxBackoff = std::chrono::hours(1);
constexpr std::uint64_t kMaxInFlightPerDestination = 1000;
// Schedule times outside these years are typos, and keep all time arithmetic far from overflow.
constexpr int kMinYear = 1970;
constexpr int kMaxYear = 2200;

// `YYYY-MM-DDTHH:MM` or `YYYY-MM-DDTHH:MM:SS`, a wall-clock time without offset, in the years
// kMinYear..kMaxYear.
std::optional<local_time> parse_local_time(std::string_view s) {
  if (s.size() != 16 && s.size() != 19) return std::nullopt;
  if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':') return std::nullopt;
  const auto y = digits(s, 0, 4);
  const auto mo = digits(s, 5, 2);
  const auto d = digits(s, 8, 2);
  const auto h = digits(s, 11, 2);
  const auto mi = digits(s, 14, 2);
  std::optional<int> sec = 0;
  if (s.size() == 19) sec = s[16] == ':' ? digits(s, 17, 2) : std::nullopt;
  if (!y || !mo || !d || !h || !mi || !sec) return std::nullopt;
  if (*h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  if (*y < kMinYear || *y > kMaxYear) return std::nullopt;
  const date::year_month_day ymd{date::year{*y}, date::month{static_cast<unsigned>(*mo)},
                                 date::day{static_cast<unsigned>(*d)}};
  if (!ymd.ok()) return std::nullopt;
  return local_time{date::local_days{ymd}} + std::chrono::hours(*h) + std::chrono::minutes(*mi) +
         std::chrono::seconds(*sec);
}

// A non-negative integer: digits only (no sign, exponent or separators), at most 18 of them so
// that it cannot overflow.
std::optional<std::uint64_t> parse_count(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  std::uint64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

// A size in bytes: an integer, optionally followed by B, KiB, MiB or GiB (`4194304`, `512KiB`,
// `4MiB`). Binary units only, spelled exactly: `4MB` and `4mib` are rejected rather than guessed.
std::optional<std::uint64_t> parse_size(std::string_view s) {
  const auto digits_end = s.find_first_not_of("0123456789");
  const auto number = parse_count(s.substr(0, digits_end));
  if (!number) return std::nullopt;
  const std::string_view suffix =
      digits_end == std::string_view::npos ? std::string_view() : s.substr(digits_end);
  std::uint64_t unit = 0;
  if (suffix.empty() || suffix == "B") {
    unit = 1;
  } else if (suffix == "KiB") {
    unit = std::uint64_t{1} << 10;
  } else if (suffix == "MiB") {
    unit = std::uint64_t{1} << 20;
  } else if (suffix == "GiB") {
    unit = std::uint64_t{1} << 30;
  } else {
    return std::nullopt;
  }
  // At most 18 digits times 2^30 can exceed 64 bits.
  if (*number > std::numeric_limits<std::uint64_t>::max() / unit) return std::nullopt;
  return *number * unit;
}

std::string format_local_time(local_time t) { return date::format("%Y-%m-%dT%H:%M", t); }

// `HH:MM` as seconds after midnight; 24:00 only when `allow_24` (the end of a window).
std::optional<std::chrono::seconds> parse_clock(std::string_view s, bool allow_24) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  const auto h = digits(s, 0, 2);
  const auto m = digits(s, 3, 2);
  if (!h || !m || *m > 59) return std::nullopt;
  if (*h > 24 || (*h == 24 && (!allow_24 || *m != 0))) return std::nullopt;
  return std::chrono::hours(*h) + std::chrono::minutes(*m);
}

bool valid_listen(std::string_view s) {
  const auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view host = s.substr(0, colon);
  const std::string_view port = s.substr(colon + 1);
  if (host.empty() || port.empty() || port.size() > 5 || has_space(host)) return false;
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
  } else if (host.find_first_of(":[]") != std::string_view::npos) {
    return false;
  }
  const auto p = digits(port, 0, port.size());
  return p && *p <= 65535;
}

bool zone_exists(const std::string& name) {
  try {
    return date::locate_zone(name) != nullptr;
  } catch (const std::exception&) {
    // date reports an unknown zone (or an unreadable tzdb) by throwing std::runtime_error.
    return false;
  }
}

std::string unknown_zone_message(const std::string& name) {
  // Built once; the tzdb does not change while the process runs.
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    try {
      for (const auto& zone : date::get_tzdb().zones) out.emplace_back(zone.name());
    } catch (const std::exception&) {
      // Without a tzdb there is nothing to suggest; the error itself still stands.
    }
    return out;
  }();
  const std::string suggestion = closest(name, names);
  return "unknown time zone " + quote(name) +
         (suggestion.empty() ? " (expected an IANA name such as UTC or Europe/Berlin)"
                             : " (did you mean " + quote(suggestion) + "?)");
}

// A reference from one part of the file to a named thing elsewhere; checked once all names
// are known, since YAML maps may appear in any order.
enum class reference_kind { person, schedule, receiver };

struct reference {
  reference_kind kind;
  std::string name;
  position where;
};

class loader {
 public:
  explicit loader(std::string source) : source_(std::move(source)) {}

  load_result run(std::string_view text) {
    try {
      parse(text);
    } catch (const std::exception& e) {
      // yaml-cpp signals misuse by throwing; the tree walk below checks types first, so this is
      // a last line of defence that keeps load_* from throwing, reported as an error.
      error(position{}, std::string("internal error while reading the configuration: ") + e.what());
    }
    std::stable_sort(
        diagnostics_.begin(), diagnostics_.end(), [](const diagnostic& a, const diagnostic& b) {
          return std::pair(a.where.line, a.where.column) < std::pair(b.where.line, b.where.column);
        });
    load_result result;
    if (!has_errors(diagnostics_)) result.value = std::move(config_);
    result.diagnostics = std::move(diagnostics_);
    return result;
  }

  void error(position where, std::string message) {
    diagnostics_.push_back({severity::error, source_, where, std::move(message)});
  }
  void error(const YAML::Node& at, std::string message) {
    error(to_position(at.Mark()), std::move(message));
  }
  void warning(position where, std::string message) {
    diagnostics_.push_back({severity::warning, source_, where, std::move(message)});
  }

 private:
  void parse(std::string_view text) {
    config_.source = source_;
    YAML::Node root;
    try {
      std::istringstream events_in{std::string(text)};
      YAML::Parser parser(events_in);
      depth_check check;
      // Only whether there is a second document matters; stopping there also bounds the loop
      // when yaml-cpp makes no progress (see depth_check::stuck).
      for (int i = 0; i < 3 && parser.HandleNextDocument(check); ++i) {
      }
      if (check.stuck()) {
        const auto at = static_cast<std::size_t>(check.stuck_at().pos);
        const std::string token = at < text.size() ? std::string(1, text[at]) : "end of input";
        error(to_position(check.stuck_at()), "YAML syntax error: unexpected " + quote(token));
        return;
      }
      if (check.documents() > 1) {
        error(to_position(check.second_document()),
              "only one YAML document is allowed in a configuration file");
        return;
      }
      root = YAML::Load(std::string(text));
    } catch (const nesting_too_deep& e) {
      error(to_position(e.mark), "YAML nested deeper than " + std::to_string(max_nesting) +
                                     " levels; refusing to parse further");
      return;
    } catch (const YAML::Exception& e) {
      error(to_position(e.mark), "YAML syntax error: " + e.msg);
      return;
    }

    if (root.IsNull() || !root.IsDefined()) {
      error(position{1, 1}, "the configuration is empty (expected a map of settings)");
      return;
    }
    if (!root.IsMap()) {
      error(root, "the configuration must be a map of settings, got " + describe(root));
      return;
    }

    std::optional<position> routes_at;
    for_each_field(root, top_keys, [&](std::string_view key, const YAML::Node& value) {
      if (key == "listen") {
        if (auto s = scalar(value, key)) {
          if (valid_listen(*s)) {
            config_.listen = *s;
          } else {
            error(value,
                  "listen: " + quote(*s) + " must look like HOST:PORT (e.g. 127.0.0.1:9595)");
          }
        }
      } else if (key == "timezone") {
        if (auto s = scalar(value, key)) {
          config_.timezone = *s;
          if (!zone_exists(*s)) error(value, unknown_zone_message(*s));
        }
      } else if (key == "ownership") {
        parse_ownership(value);
      } else if (key == "people") {
        for_each_named(
            value, "person", [&](std::string name, const YAML::Node& k, const YAML::Node& v) {
              person p{std::move(name), parse_contact(v, "person", k), to_position(k.Mark())};
              config_.people.push_back(std::move(p));
            });
      } else if (key == "schedules") {
        for_each_named(value, "schedule",
                       [&](std::string name, const YAML::Node& k, const YAML::Node& v) {
                         parse_schedule(std::move(name), k, v);
                       });
      } else if (key == "receivers") {
        for_each_named(
            value, "receiver", [&](std::string name, const YAML::Node& k, const YAML::Node& v) {
              receiver r{std::move(name), parse_contact(v, "receiver", k), to_position(k.Mark())};
              config_.receivers.push_back(std::move(r));
            });
      } else if (key == "projects") {
        for_each_named(value, "project",
                       [&](std::string name, const YAML::Node& k, const YAML::Node& v) {
                         project_contact p{std::move(name), parse_contact(v, "project", k),
                                           to_position(k.Mark())};
                         config_.projects.push_back(std::move(p));
                       });
      } else if (key == "routes") {
        routes_at = to_position(value.Mark());
        parse_routes(value);
      } else if (key == "dedup") {
        parse_dedup(value);
      } else if (key == "limits") {
        parse_limits(value);
      } else if (key == "auth") {
        parse_auth(value);
      } else if (key == "delivery") {
        parse_delivery(value);
      } else if (key == "state_dir") {
        if (auto s = scalar(value, key)) {
          if (s->empty() || s->front() != '/') {
            error(value, "state_dir " + quote(*s) + " must be an absolute path (starting with /)");
          } else if (s->find('\0') != std::string::npos) {
            error(value, "state_dir must not contain a NUL character");
          } else {
            config_.state_dir = *s;
          }
        }
      } else if (key == "commit_delay") {
        if (auto d = duration_ms_value(value, key, "commit_delay", std::chrono::milliseconds(0),
                                       std::chrono::milliseconds(100))) {
          config_.commit_delay = *d;
        }
      } else if (key == "retention") {
        if (auto d = duration_value(value, key)) {
          if (*d < kMinStateRetention || *d > kMaxStateRetention) {
            error(value, "retention must be between 1h and 520w, got " + quote(value.Scalar()));
          } else {
            config_.retention = *d;
          }
        }
      }
    });

    for (schedule& s : config_.schedules) {
      if (s.timezone.empty()) s.timezone = config_.timezone;
    }
    check_references();
    check_routes(routes_at);
  }

  // --- generic shape helpers -------------------------------------------------------------

  // The string value of a scalar node, or nullopt after reporting what was found instead.
  std::optional<std::string> scalar(const YAML::Node& node, std::string_view key) {
    if (node.IsScalar()) return node.Scalar();
    error(node, quote(key) + " must be a string, got " + describe(node));
    return std::nullopt;
  }

  // Calls on_field(key, value) for each entry of the map `node`. Reports a non-map, non-string
  // keys, duplicate keys and unknown keys (with the closest known key as a suggestion).
  template <std::size_t n, typename F>
  void for_each_field(const YAML::Node& node, const std::array<std::string_view, n>& known,
                      F&& on_field, std::string_view what = "") {
    if (!node.IsMap()) {
      error(node, (what.empty() ? std::string("expected") : quote(what) + " must be") +
                      " a map with keys " + join(known) + ", got " + describe(node));
      return;
    }
    std::map<std::string, int, std::less<>> seen;  // key -> line of first occurrence
    for (const auto& entry : node) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) {
        error(key_node, "keys must be strings, got " + describe(key_node));
        continue;
      }
      const std::string& key = key_node.Scalar();
      const auto known_it = std::find(known.begin(), known.end(), key);
      if (known_it == known.end()) {
        const std::string suggestion = closest(key, known);
        error(key_node, "unknown key " + quote(key) +
                            (suggestion.empty() ? " (expected one of: " + join(known) + ")"
                                                : " (did you mean " + quote(suggestion) + "?)"));
        continue;
      }
      const position where = to_position(key_node.Mark());
      if (const auto [it, inserted] = seen.emplace(key, where.line); !inserted) {
        error(where, "duplicate key " + quote(key) + " (first given on line " +
                         std::to_string(it->second) + ")");
        continue;
      }
      on_field(*known_it, entry.second);
    }
  }

  // Calls on_entry(name, key_node, value_node) for each entry of a map keyed by user-chosen
  // names (people, schedules, ...). Null counts as an empty map. Reports duplicates.
  template <typename F>
  void for_each_named(const YAML::Node& node, std::string_view kind, F&& on_entry) {
    if (node.IsNull()) return;
    if (!node.IsMap()) {
      error(node, "expected a map of " + std::string(kind) + " names, got " + describe(node));
      return;
    }
    std::map<std::string, int, std::less<>> seen;
    for (const auto& entry : node) {
      const YAML::Node& key_node = entry.first;
      if (!key_node.IsScalar()) {
        error(key_node, std::string(kind) + " names must be strings, got " + describe(key_node));
        continue;
      }
      const std::string& name = key_node.Scalar();
      const position where = to_position(key_node.Mark());
      if (name.empty()) {
        error(where, std::string(kind) + " name must not be empty");
        continue;
      }
      if (const auto [it, inserted] = seen.emplace(name, where.line); !inserted) {
        error(where, "duplicate " + std::string(kind) + " " + quote(name) +
                         " (first defined on line " + std::to_string(it->second) + ")");
        continue;
      }
      on_entry(name, key_node, entry.second);
    }
  }

  // Calls on_item(item) for each element of a list. Null counts as an empty list.
  template <typename F>
  void for_each_item(const YAML::Node& node, std::string_view key, F&& on_item) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      error(node, quote(key) + " must be a list, got " + describe(node));
      return;
    }
    for (const auto& item : node) on_item(item);
  }

  // A list of strings, each passed with its node to on_string.
  template <typename F>
  void for_each_string(const YAML::Node& node, std::string_view key, F&& on_string) {
    for_each_item(node, key, [&](const YAML::Node& item) {
      if (!item.IsScalar()) {
        error(item, "items of " + quote(key) + " must be strings, got " + describe(item));
        return;
      }
      on_string(item.Scalar(), item);
    });
  }

  // A duration for a setting at second resolution. Written in milliseconds it is accepted only
  // when it is a whole number of seconds (`60000ms`); `500ms` is reported as sub-second.
  std::optional<std::chrono::seconds> duration_value(const YAML::Node& node, std::string_view key) {
    const auto s = scalar(node, key);
    if (!s) return std::nullopt;
    if (const auto d = parse_duration(*s)) return d;
    if (const auto ms = parse_duration_ms(*s)) {
      if (*ms % std::chrono::seconds(1) == std::chrono::milliseconds(0)) {
        return std::chrono::duration_cast<std::chrono::seconds>(*ms);
      }
      error(node, quote(key) + " must be a whole number of seconds, got " + quote(*s) +
                      " (sub-second durations are not allowed here)");
      return std::nullopt;
    }
    error(node, "invalid duration " + quote(*s) + " for " + quote(key) +
                    " (use e.g. 30s, 15m, 2h, 1d, 1w or 1h30m, largest unit first)");
    return std::nullopt;
  }

  // A duration at millisecond resolution in [lo, hi]; `what` names the setting in messages
  // (e.g. "delivery.connect_timeout"). Nullopt after reporting.
  std::optional<std::chrono::milliseconds> duration_ms_value(const YAML::Node& node,
                                                             std::string_view key,
                                                             const std::string& what,
                                                             std::chrono::milliseconds lo,
                                                             std::chrono::milliseconds hi) {
    const auto s = scalar(node, key);
    if (!s) return std::nullopt;
    const auto d = parse_duration_ms(*s);
    if (!d) {
      error(node, "invalid duration " + quote(*s) + " for " + quote(key) +
                      " (use e.g. 500ms, 30s, 15m or 1m30s, largest unit first)");
      return std::nullopt;
    }
    if (*d < lo || *d > hi) {
      error(node, what + " must be between " + format_duration_ms(lo) + " and " +
                      format_duration_ms(hi) + ", got " + quote(*s));
      return std::nullopt;
    }
    return d;
  }

  // A whole number in [lo, hi]; `what` names the setting in messages. Nullopt after reporting.
  std::optional<std::uint64_t> integer_value(const YAML::Node& node, std::string_view key,
                                             const std::string& what, std::uint64_t lo,
                                             std::uint64_t hi) {
    const auto s = scalar(node, key);
    if (!s) return std::nullopt;
    const auto n = parse_count(*s);
    if (!n || *n < lo || *n > hi) {
      error(node, what + " must be an integer from " + std::to_string(lo) + " to " +
                      std::to_string(hi) + ", got " + quote(*s));
      return std::nullopt;
    }
    return n;
  }

  // The `name` of a layer or route: a scalar that must not be empty.
  std::optional<std::string> name_value(const YAML::Node& node, std::string_view key,
                                        std::string_view what) {
    auto s = scalar(node, key);
    if (s && s->empty()) {
      error(node, std::string(what) + " name must not be empty");
      return std::nullopt;
    }
    return s;
  }

  std::optional<local_time> local_time_value(const YAML::Node& node, std::string_view key) {
    const auto s = scalar(node, key);
    if (!s) return std::nullopt;
    const auto t = parse_local_time(*s);
    if (!t) {
      error(node, "invalid time " + quote(*s) + " for " + quote(key) +
                      " (expected local wall-clock time YYYY-MM-DDTHH:MM[:SS], without offset, in "
                      "the years " +
                      std::to_string(kMinYear) + "-" + std::to_string(kMaxYear) + ")");
    }
    return t;
  }

  std::optional<matcher_spec> matcher_value(const std::string& text, const YAML::Node& node) {
    auto parsed = parse_matcher(text);
    if (auto* message = std::get_if<std::string>(&parsed)) {
      error(node, *message);
      return std::nullopt;
    }
    auto spec = std::get<matcher_spec>(std::move(parsed));
    spec.where = to_position(node.Mark());
    return spec;
  }

  // --- sections ----------------------------------------------------------------------------

  void parse_ownership(const YAML::Node& node) {
    config_.ownership.where = to_position(node.Mark());
    for_each_field(
        node, ownership_keys,
        [&](std::string_view key, const YAML::Node& value) {
          if (key == "label") {
            if (auto s = scalar(value, key)) {
              if (is_label_name(*s)) {
                config_.ownership.label = *s;
              } else {
                error(value, "ownership.label " + quote(*s) +
                                 " is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*)");
              }
            }
          } else if (key == "owned") {
            std::set<std::string, std::less<>> seen;
            for_each_string(value, key, [&](const std::string& project, const YAML::Node& item) {
              if (project.empty()) {
                error(item, "owned project name must not be empty");
              } else if (!seen.insert(project).second) {
                warning(to_position(item.Mark()),
                        "project " + quote(project) + " is listed twice in 'owned'");
              } else {
                config_.ownership.owned.push_back(project);
              }
            });
          } else if (key == "owned_regex") {
            for_each_string(value, key, [&](const std::string& pattern, const YAML::Node& item) {
              if (auto why = regex_error(pattern)) {
                error(item, "invalid regex " + quote(pattern) + " in 'owned_regex': " + *why);
              } else {
                config_.ownership.owned_regex.push_back(pattern);
              }
            });
          } else if (key == "infrastructure") {
            for_each_string(value, key, [&](const std::string& text, const YAML::Node& item) {
              if (auto spec = matcher_value(text, item)) {
                config_.ownership.infrastructure.push_back(std::move(*spec));
              }
            });
          }
        },
        "ownership");
  }

  contact parse_contact(const YAML::Node& node, std::string_view kind,
                        const YAML::Node& name_node) {
    contact c;
    const std::string& name = name_node.Scalar();
    bool attempted = false;  // a contact was given, even if invalid (and reported as such)
    if (!node.IsNull()) {
      attempted = !node.IsMap();
      for_each_field(
          node, contact_keys,
          [&](std::string_view key, const YAML::Node& value) {
            attempted =
                attempted || !(value.IsNull() || (value.IsScalar() && value.Scalar().empty()));
            const auto s = scalar(value, key);
            if (!s || s->empty()) return;
            if (key == "webhook") {
              const bool http = s->starts_with("http://") && s->size() > 7;
              const bool https = s->starts_with("https://") && s->size() > 8;
              if ((!http && !https) || has_space(*s)) {
                error(value, "webhook " + quote(*s) + " must be an http:// or https:// URL");
              } else {
                c.webhook = *s;
              }
            } else if (key == "email") {
              const auto at = s->find('@');
              if (at == 0 || at == std::string::npos || at + 1 == s->size() ||
                  s->find('@', at + 1) != std::string::npos || has_space(*s)) {
                error(value, "email " + quote(*s) + " is not an address like name@example.org");
              } else {
                c.email = *s;
              }
            } else if (key == "irc") {
              if (has_space(*s)) {
                error(value, "irc " + quote(*s) + " must be a single nick or #channel");
              } else {
                c.irc = *s;
              }
            }
          },
          std::string(kind) + " " + name);
    }
    if (!attempted) {
      warning(to_position(name_node.Mark()),
              std::string(kind) + " " + quote(name) +
                  " has no contact (webhook, email or irc) and cannot be notified");
    }
    return c;
  }

  void parse_schedule(std::string name, const YAML::Node& key_node, const YAML::Node& node) {
    schedule s;
    s.name = std::move(name);
    s.where = to_position(key_node.Mark());
    std::size_t layer_number = 0;
    bool listed_any = false;  // layers or overrides were given, even if broken (and reported)
    for_each_field(
        node, schedule_keys,
        [&](std::string_view key, const YAML::Node& value) {
          if (key == "timezone") {
            if (auto tz = scalar(value, key)) {
              if (zone_exists(*tz)) {
                s.timezone = *tz;
              } else {
                error(value, unknown_zone_message(*tz));
              }
            }
          } else if (key == "layers") {
            listed_any =
                listed_any || !(value.IsNull() || (value.IsSequence() && value.size() == 0));
            for_each_item(value, key, [&](const YAML::Node& item) {
              if (auto l = parse_layer(item, ++layer_number)) {
                if (std::any_of(s.layers.begin(), s.layers.end(),
                                [&](const layer& other) { return other.name == l->name; })) {
                  error(l->where,
                        "duplicate layer name " + quote(l->name) + " in schedule " + quote(s.name));
                }
                s.layers.push_back(std::move(*l));
              }
            });
          } else if (key == "overrides") {
            listed_any =
                listed_any || !(value.IsNull() || (value.IsSequence() && value.size() == 0));
            for_each_item(value, key, [&](const YAML::Node& item) {
              if (auto o = parse_override(item)) s.overrides.push_back(std::move(*o));
            });
          }
        },
        "schedule " + s.name);
    if (node.IsMap() && !listed_any) {
      error(s.where, "schedule " + quote(s.name) + " has no layers and no overrides");
    }
    check_overrides(s);
    config_.schedules.push_back(std::move(s));
  }

  std::optional<layer> parse_layer(const YAML::Node& node, std::size_t number) {
    layer l;
    l.name = "layer-" + std::to_string(number);
    l.where = to_position(node.Mark());
    bool ok = true;
    bool has_members = false;
    bool has_start = false;
    if (!node.IsMap()) {
      error(node,
            "a layer must be a map with keys " + join(layer_keys) + ", got " + describe(node));
      return std::nullopt;
    }
    for_each_field(node, layer_keys, [&](std::string_view key, const YAML::Node& value) {
      if (key == "name") {
        if (auto s = name_value(value, key, "layer")) l.name = std::move(*s);
      } else if (key == "members") {
        has_members = true;
        if (!value.IsNull() && !value.IsSequence()) {
          error(value, "'members' must be a list of people, got " + describe(value));
          ok = false;
          return;
        }
        for_each_string(value, key, [&](const std::string& member, const YAML::Node& item) {
          l.members.push_back(member);
          references_.push_back({reference_kind::person, member, to_position(item.Mark())});
        });
        if (l.members.empty()) {
          error(value.IsNull() ? l.where : to_position(value.Mark()),
                "layer " + quote(l.name) + " has an empty member list");
        }
      } else if (key == "start") {
        has_start = true;
        if (auto t = local_time_value(value, key)) {
          l.start = *t;
        } else {
          ok = false;
        }
      } else if (key == "shift") {
        if (auto d = duration_value(value, key)) {
          // Bounded so that shift arithmetic over centuries cannot overflow, and so that a
          // year of timeline stays a few thousand shifts.
          if (*d < kMinShift || *d > kMaxShift) {
            error(value, "shift must be between 1m and 52w, got " + quote(value.Scalar()));
          } else {
            l.shift = *d;
          }
        }
      } else if (key == "active") {
        l.active = parse_window(value);
      }
    });
    if (!has_members) error(l.where, "layer " + quote(l.name) + " needs 'members'");
    if (!has_start) {
      error(l.where, "layer " + quote(l.name) +
                         " needs 'start' (local time of a handoff, e.g. 2026-01-07T16:00)");
    }
    if (!ok) return std::nullopt;
    return l;
  }

  std::optional<daily_window> parse_window(const YAML::Node& node) {
    const auto s = scalar(node, "active");
    if (!s) return std::nullopt;
    const auto dash = s->find('-');
    std::optional<std::chrono::seconds> begin;
    std::optional<std::chrono::seconds> end;
    if (dash != std::string::npos) {
      begin = parse_clock(std::string_view(*s).substr(0, dash), false);
      end = parse_clock(std::string_view(*s).substr(dash + 1), true);
    }
    if (!begin || !end) {
      error(node,
            "invalid daily window " + quote(*s) +
                " for 'active' (expected HH:MM-HH:MM, e.g. 03:00-15:00; 24:00 only as an end)");
      return std::nullopt;
    }
    if (*begin == *end) {
      error(node, "daily window " + quote(*s) +
                      " is empty (begin equals end); omit 'active' for a layer active all day");
      return std::nullopt;
    }
    return daily_window{*begin, *end};
  }

  std::optional<schedule_override> parse_override(const YAML::Node& node) {
    if (!node.IsMap()) {
      error(node, "an override must be a map with keys " + join(override_keys) + ", got " +
                      describe(node));
      return std::nullopt;
    }
    schedule_override o;
    o.where = to_position(node.Mark());
    bool has_person = false;
    std::optional<local_time> from;
    std::optional<local_time> to;
    bool bad = false;
    for_each_field(node, override_keys, [&](std::string_view key, const YAML::Node& value) {
      if (key == "person") {
        if (auto s = scalar(value, key)) {
          has_person = true;
          o.person = *s;
          references_.push_back({reference_kind::person, *s, to_position(value.Mark())});
        } else {
          bad = true;
        }
      } else if (key == "from") {
        from = local_time_value(value, key);
        bad = bad || !from;
      } else if (key == "to") {
        to = local_time_value(value, key);
        bad = bad || !to;
      }
    });
    if (bad) return std::nullopt;
    std::vector<std::string> missing;
    if (!has_person) missing.push_back("person");
    if (!from) missing.push_back("from");
    if (!to) missing.push_back("to");
    if (!missing.empty()) {
      error(o.where, "override needs " + join(missing));
      return std::nullopt;
    }
    o.from = *from;
    o.to = *to;
    if (o.from >= o.to) {
      error(o.where, "inverted override: 'from' " + format_local_time(o.from) +
                         " is not before 'to' " + format_local_time(o.to));
      return std::nullopt;
    }
    return o;
  }

  // Overlapping overrides in one schedule are ambiguous; each one that overlaps an earlier-listed
  // override is reported at its own position. Sorted sweep: O(n log n).
  void check_overrides(const schedule& s) {
    std::vector<std::size_t> order(s.overrides.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return s.overrides[a].from < s.overrides[b].from;
    });
    std::optional<std::size_t> reach;  // the override with the latest `to` so far
    std::vector<std::pair<std::size_t, std::size_t>> clashes;  // (later-listed, other)
    for (std::size_t i : order) {
      if (reach && s.overrides[i].from < s.overrides[*reach].to) {
        clashes.emplace_back(std::max(i, *reach), std::min(i, *reach));
      }
      if (!reach || s.overrides[i].to > s.overrides[*reach].to) reach = i;
    }
    for (const auto& [later, earlier] : clashes) {
      const schedule_override& a = s.overrides[later];
      const schedule_override& b = s.overrides[earlier];
      error(a.where, "override " + format_local_time(a.from) + ".." + format_local_time(a.to) +
                         " for " + quote(a.person) + " overlaps the override on line " +
                         std::to_string(b.where.line) + " (" + format_local_time(b.from) + ".." +
                         format_local_time(b.to) + " for " + quote(b.person) + ") in schedule " +
                         quote(s.name));
    }
  }

  void parse_routes(const YAML::Node& node) {
    if (node.IsNull()) return;
    if (!node.IsSequence()) {
      error(node, "'routes' must be a list, got " + describe(node));
      return;
    }
    std::map<std::string, int, std::less<>> names;
    for (const auto& item : node) {
      const std::size_t number = config_.routes.size() + route_errors_ + 1;
      auto r = parse_route(item, number);
      if (!r) {
        ++route_errors_;
        continue;
      }
      if (const auto [it, inserted] = names.emplace(r->name, r->where.line); !inserted) {
        error(r->where, "duplicate route name " + quote(r->name) + " (first used on line " +
                            std::to_string(it->second) + ")");
      }
      config_.routes.push_back(std::move(*r));
      route_has_conditions_.push_back(route_had_conditions_);
    }
  }

  std::optional<route> parse_route(const YAML::Node& node, std::size_t number) {
    if (!node.IsMap()) {
      error(node,
            "a route must be a map with keys " + join(route_keys) + ", got " + describe(node));
      return std::nullopt;
    }
    route r;
    r.name = "route-" + std::to_string(number);
    r.where = to_position(node.Mark());
    bool has_notify = false;
    std::size_t notify_items = 0;
    route_had_conditions_ = false;
    for_each_field(node, route_keys, [&](std::string_view key, const YAML::Node& value) {
      if (key == "name") {
        if (auto s = name_value(value, key, "route")) r.name = std::move(*s);
      } else if (key == "match") {
        // A list of broken matchers is still a condition: the route is not a match-all.
        route_had_conditions_ = !(value.IsNull() || (value.IsSequence() && value.size() == 0));
        for_each_string(value, key, [&](const std::string& text, const YAML::Node& item) {
          if (auto spec = matcher_value(text, item)) {
            if (spec->name == "ownership" && spec->op == matcher_op::equal &&
                spec->value != "owned" && spec->value != "user" && spec->value != "unowned") {
              warning(spec->where, "matcher " + quote(text) +
                                       " never matches: ownership is owned, user or unowned");
            }
            r.match.push_back(std::move(*spec));
          }
        });
      } else if (key == "notify") {
        has_notify = true;
        for_each_string(value, key, [&](const std::string& text, const YAML::Node& item) {
          ++notify_items;
          if (auto t = parse_target(text, item)) {
            const bool repeated = std::any_of(
                r.notify.begin(), r.notify.end(),
                [&](const target& o) { return o.type == t->type && o.name == t->name; });
            if (repeated) {
              warning(t->where, "target " + quote(text) + " is listed twice");
            } else {
              r.notify.push_back(std::move(*t));
            }
          }
        });
      } else if (key == "continue") {
        if (auto s = scalar(value, key)) {
          if (*s == "true" || *s == "True" || *s == "TRUE") {
            r.continue_matching = true;
          } else if (*s == "false" || *s == "False" || *s == "FALSE") {
            r.continue_matching = false;
          } else {
            error(value, "'continue' must be a boolean (true or false), got " + quote(*s));
          }
        }
      }
    });
    if (!has_notify) {
      error(r.where, "route " + quote(r.name) +
                         " needs 'notify' (a list of schedule:NAME, receiver:NAME, project)");
    } else if (notify_items == 0 && (node["notify"].IsNull() || node["notify"].IsSequence())) {
      warning(r.where,
              "route " + quote(r.name) + " notifies nobody; alerts it matches are dropped");
    }
    return r;
  }

  std::optional<target> parse_target(const std::string& text, const YAML::Node& node) {
    target t;
    t.where = to_position(node.Mark());
    const auto colon = text.find(':');
    const std::string kind = text.substr(0, colon);
    const std::string name = colon == std::string::npos ? "" : text.substr(colon + 1);
    if (kind == "project") {
      if (colon != std::string::npos) {
        error(node, "target " + quote(text) +
                        ": 'project' takes no name (it notifies the alert's own project contacts)");
        return std::nullopt;
      }
      t.type = target_type::project;
      return t;
    }
    if (kind == "schedule" || kind == "receiver") {
      if (name.empty()) {
        error(node, "target " + quote(text) + " needs a name: " + kind + ":NAME");
        return std::nullopt;
      }
      t.type = kind == "schedule" ? target_type::schedule : target_type::receiver;
      t.name = name;
      references_.push_back(
          {kind == "schedule" ? reference_kind::schedule : reference_kind::receiver, name,
           t.where});
      return t;
    }
    error(node,
          "unknown target " + quote(text) + " (expected schedule:NAME, receiver:NAME or project)");
    return std::nullopt;
  }

  void parse_dedup(const YAML::Node& node) {
    for_each_field(
        node, dedup_keys,
        [&](std::string_view key, const YAML::Node& value) {
          if (key == "retention") {
            if (auto d = duration_value(value, key)) {
              if (*d < kMinRetention || *d > kMaxRetention) {
                error(value,
                      "dedup.retention must be between 1m and 52w, got " + quote(value.Scalar()));
              } else {
                config_.dedup.retention = *d;
              }
            }
          } else if (key == "max_incidents") {
            if (auto s = scalar(value, key)) {
              const auto n = parse_count(*s);
              if (!n || *n < 1) {
                error(value, "dedup.max_incidents must be an integer >= 1, got " + quote(*s));
              } else {
                config_.dedup.max_incidents = static_cast<std::size_t>(*n);
              }
            }
          }
        },
        "dedup");
  }

  void parse_limits(const YAML::Node& node) {
    limits_config& limits = config_.limits;
    std::optional<position> pending_new, pending_old;  // where max_pending and its old name are
    for_each_field(
        node, limits_keys,
        [&](std::string_view key, const YAML::Node& value) {
          const std::string what = "limits." + std::string(key);
          if (key == "max_body") {
            if (auto s = scalar(value, key)) {
              const auto n = parse_size(*s);
              if (!n) {
                error(value, "invalid size " + quote(*s) +
                                 " for 'max_body' (bytes, or an integer with B, KiB, MiB or GiB, "
                                 "e.g. 512KiB, 4MiB)");
              } else if (*n < kMinBody || *n > kMaxBody) {
                error(value, what + " must be between 1KiB and 1GiB, got " + quote(*s));
              } else {
                limits.max_body = static_cast<std::size_t>(*n);
              }
            }
          } else if (key == "max_connections") {
            if (auto n = integer_value(value, key, what, 1, kMaxConnections)) {
              limits.max_connections = static_cast<std::size_t>(*n);
            }
          } else if (key == "read_timeout" || key == "idle_timeout") {
            if (auto d = duration_value(value, key)) {
              if (*d < kMinServerTimeout || *d > kMaxServerTimeout) {
                error(value, what + " must be between " + format_duration(kMinServerTimeout) +
                                 " and " + format_duration(kMaxServerTimeout) + ", got " +
                                 quote(value.Scalar()));
              } else {
                (key == "read_timeout" ? limits.read_timeout : limits.idle_timeout) = *d;
              }
            }
          } else if (key == "max_pending" || key == "max_pending_notifications") {
            (key == "max_pending" ? pending_new : pending_old) = to_position(value.Mark());
            if (auto n = integer_value(value, key, what, 1, kMaxPendingNotifications)) {
              limits.max_pending_notifications = static_cast<std::size_t>(*n);
            }
          }
        },
        "limits");
    if (pending_new && pending_old) {
      const bool new_later = std::tie(pending_new->line, pending_new->column) >
                             std::tie(pending_old->line, pending_old->column);
      error(new_later ? *pending_new : *pending_old,
            "limits.max_pending and limits.max_pending_notifications (its old name) are the same "
            "setting: give only limits.max_pending");
    } else if (pending_old) {
      warning(*pending_old,
              "limits.max_pending_notifications is the old name of limits.max_pending; it still "
              "works");
    }
  }

  void parse_auth(const YAML::Node& node) {
    bool has_file = false;
    for_each_field(
        node, auth_keys,
        [&](std::string_view key, const YAML::Node& value) {
          if (key != "bearer_token_file") return;
          has_file = true;
          const auto s = scalar(value, key);
          if (!s) return;
          // Only the path's shape is checked: the loader reads nothing but the configuration
          // file, and the daemon reads the token (reporting failures at `auth.where`).
          if (s->empty()) {
            error(value,
                  "auth.bearer_token_file must not be empty (omit 'auth' to turn authentication "
                  "off)");
          } else if (s->front() != '/') {
            error(value, "auth.bearer_token_file " + quote(*s) +
                             " must be an absolute path (starting with /)");
          } else if (s->find('\0') != std::string::npos) {
            error(value, "auth.bearer_token_file must not contain a NUL character");
          } else {
            config_.auth.bearer_token_file = *s;
            config_.auth.where = to_position(value.Mark());
          }
        },
        "auth");
    // An `auth` section without a token file would silently leave the daemon unauthenticated.
    if (node.IsMap() && !has_file) {
      error(node, "auth needs 'bearer_token_file' (omit 'auth' to turn authentication off)");
    }
  }

  void parse_delivery(const YAML::Node& node) {
    delivery_config& delivery = config_.delivery;
    std::optional<position> initial_at;  // where each backoff was given, if it was valid
    std::optional<position> max_at;
    bool bad_backoff = false;  // a backoff was given but invalid (and reported)
    for_each_field(
        node, delivery_keys,
        [&](std::string_view key, const YAML::Node& value) {
          const std::string what = "delivery." + std::string(key);
          if (key == "connect_timeout" || key == "request_timeout") {
            if (auto d =
                    duration_ms_value(value, key, what, kMinDeliveryTimeout, kMaxDeliveryTimeout)) {
              (key == "connect_timeout" ? delivery.connect_timeout : delivery.request_timeout) = *d;
            }
          } else if (key == "max_attempts") {
            if (auto n = integer_value(value, key, what, 0, kMaxAttempts)) {
              delivery.max_attempts = static_cast<int>(*n);
            }
          } else if (key == "initial_backoff" || key == "max_backoff") {
            const bool initial = key == "initial_backoff";
            if (auto d = duration_ms_value(value, key, what, kMinBackoff, kMaxBackoff)) {
              (initial ? delivery.initial_backoff : delivery.max_backoff) = *d;
              (initial ? initial_at : max_at) = to_position(value.Mark());
            } else {
              bad_backoff = true;
            }
          } else if (key == "max_in_flight_per_destination") {
            if (auto n = integer_value(value, key, what, 1, kMaxInFlightPerDestination)) {
              delivery.max_in_flight_per_destination = static_cast<std::size_t>(*n);
            }
          } else if (key == "give_up_after") {
            if (auto d = duration_value(value, key)) {
              if (*d < kMinGiveUpAfter || *d > kMaxGiveUpAfter) {
                error(value, what + " must be between 1s and 52w, got " + quote(value.Scalar()));
              } else {
                delivery.give_up_after = *d;
              }
            }
          }
        },
        "delivery");
    // Compared only when both values are what the file meant: after an invalid one, the default
    // it left behind would make a confusing second error.
    if (!bad_backoff && delivery.initial_backoff > delivery.max_backoff) {
      // The defaults are ordered, so at least one of the two was given; report at it (at
      // initial_backoff when both were).
      const position at = initial_at ? *initial_at : max_at.value_or(position{});
      error(at,
            "delivery.initial_backoff (" + format_duration_ms(delivery.initial_backoff) +
                (initial_at ? "" : ", the default") + ") must not exceed delivery.max_backoff (" +
                format_duration_ms(delivery.max_backoff) + (max_at ? "" : ", the default") + ")");
    }
  }

  // --- cross-references ----------------------------------------------------------------------

  void check_references() {
    std::vector<std::string> people;
    std::vector<std::string> schedules;
    std::vector<std::string> receivers;
    for (const auto& p : config_.people) people.push_back(p.name);
    for (const auto& s : config_.schedules) schedules.push_back(s.name);
    for (const auto& r : config_.receivers) receivers.push_back(r.name);
    const std::set<std::string, std::less<>> people_set(people.begin(), people.end());
    const std::set<std::string, std::less<>> schedule_set(schedules.begin(), schedules.end());
    const std::set<std::string, std::less<>> receiver_set(receivers.begin(), receivers.end());
    for (const reference& ref : references_) {
      const std::vector<std::string>* names = &people;
      const std::set<std::string, std::less<>>* known = &people_set;
      std::string kind = "person";
      if (ref.kind == reference_kind::schedule) {
        names = &schedules;
        known = &schedule_set;
        kind = "schedule";
      } else if (ref.kind == reference_kind::receiver) {
        names = &receivers;
        known = &receiver_set;
        kind = "receiver";
      }
      if (known->contains(ref.name)) continue;
      const std::string suggestion = closest(ref.name, *names);
      error(ref.where,
            "unknown " + kind + " " + quote(ref.name) +
                (suggestion.empty() ? "" : " (did you mean " + quote(suggestion) + "?)"));
    }
  }

  void check_routes(const std::optional<position>& routes_at) {
    if (config_.routes.empty()) {
      if (route_errors_ > 0) return;  // the broken routes were reported already
      warning(routes_at.value_or(position{1, 1}),
              "routes: no routes are configured; no alert will be notified");
      return;
    }
    // A match-all route that stops matching hides every route after it.
    for (std::size_t i = 0; i + 1 < config_.routes.size(); ++i) {
      const route& r = config_.routes[i];
      if (!route_has_conditions_[i] && !r.continue_matching) {
        const route& next = config_.routes[i + 1];
        warning(next.where, "route " + quote(next.name) + " is unreachable: route " +
                                quote(r.name) + " on line " + std::to_string(r.where.line) +
                                " matches everything and does not continue");
        break;
      }
    }
    const route& last = config_.routes.back();
    if (route_has_conditions_.back()) {
      warning(last.where, "routes: last route " + quote(last.name) +
                              " is not a match-all fallback; alerts matching no route are not "
                              "notified");
    }
  }

  std::string source_;
  config config_;
  std::vector<diagnostic> diagnostics_;
  std::vector<reference> references_;
  std::size_t route_errors_ = 0;
  bool route_had_conditions_ = false;       // set by parse_route for the route it parses
  std::vector<bool> route_has_conditions_;  // per config_.routes entry: `match` was not empty
};

}  // namespace

load_result load_string(std::string_view yaml_text, const std::string& source_name) {
  loader l(source_name);
  return l.run(yaml_text);
}

load_result load_file(const std::string& path) {
  const auto unreadable = [&](const std::string& why) {
    load_result result;
    result.diagnostics.push_back({severity::error, path, position{}, "cannot read file: " + why});
    return result;
  };
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) return unreadable(ec.message());
  if (std::filesystem::is_directory(status)) return unreadable("is a directory");
  const auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > max_file_bytes) {
    return unreadable("larger than " + std::to_string(max_file_bytes >> 20) + " MiB");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return unreadable(std::error_code(errno, std::generic_category()).message());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return unreadable("read error");
  return load_string(text, path);
}

}  // namespace alertrouter::config
