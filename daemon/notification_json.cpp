#include "daemon/notification_json.h"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "routing/alert.h"
#include "routing/json_text.h"
#include "routing/ownership.h"

namespace alertrouter::daemon {
namespace {

using routing::alert;
using routing::label_set;
using routing::notification;
using routing::notification_kind;

constexpr std::string_view kFormatVersion = "1";
constexpr std::size_t kMaxLineBytes = 200;  // title and project in the summary, each
constexpr std::size_t kMaxNamesInTitle = 3;
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";  // U+2026, 3 bytes of UTF-8

// --- severity -----------------------------------------------------------------------------------

int severity_rank(std::string_view s) {
  if (s.empty()) return -1;
  if (s == "page") return 5;
  if (s == "critical") return 4;
  if (s == "warning") return 3;
  if (s == "task") return 2;
  if (s == "info") return 1;
  return 0;
}

std::string_view highest_severity(const std::vector<alert>& alerts) {
  std::string_view best;
  int best_rank = -1;
  for (const alert& a : alerts) {
    const std::string_view s = a.labels.get("severity");
    const int rank = severity_rank(s);
    if (rank > best_rank) {  // strict: the first of equal ranks wins
      best = s;
      best_rank = rank;
    }
  }
  return best;
}

// --- summary ------------------------------------------------------------------------------------

// Appends `text` to `out` as part of one line: control bytes become spaces and spaces never
// repeat or lead. Bytes >= 0x80 (UTF-8 sequences) are copied untouched.
void append_one_line(std::string& out, std::string_view text) {
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool space = u < 0x20 || u == 0x7F || c == ' ';
    if (space) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
}

// Trims the trailing space append_one_line may leave and cuts `s` to kMaxLineBytes, ending with
// an ellipsis when cut.
void finish_line(std::string& s) {
  if (!s.empty() && s.back() == ' ') s.pop_back();
  if (s.size() <= kMaxLineBytes) return;
  std::size_t cut = kMaxLineBytes - kEllipsis.size();
  // s[cut] is the first byte dropped; never drop only the tail of a multi-byte sequence.
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  if (!s.empty() && s.back() == ' ') s.pop_back();
  s.append(kEllipsis);
}

std::string alert_name(const alert& a) {
  const std::string_view name = a.labels.get("alertname");
  if (!name.empty()) return std::string(name);
  return "alert " + routing::to_hex(a.fp);
}

std::string title(const std::vector<alert>& alerts) {
  std::string raw;
  if (alerts.empty()) {
    raw = "(no alerts)";
  } else if (alerts.size() == 1) {
    const std::string_view summary = alerts.front().annotations.get("summary");
    raw = summary.empty() ? alert_name(alerts.front()) : std::string(summary);
  } else {
    std::vector<std::string> names;  // distinct, first-seen order; notifications are small
    for (const alert& a : alerts) {
      std::string name = alert_name(a);
      bool seen = false;
      for (const std::string& n : names) seen = seen || n == name;
      if (!seen) names.push_back(std::move(name));
    }
    for (std::size_t i = 0; i < names.size() && i < kMaxNamesInTitle; ++i) {
      if (i > 0) raw += ", ";
      raw += names[i];
    }
    if (names.size() > kMaxNamesInTitle) {
      raw += " +" + std::to_string(names.size() - kMaxNamesInTitle) + " more";
    }
    raw += " (" + std::to_string(alerts.size()) + " alerts)";
  }
  std::string line;
  line.reserve(raw.size());
  append_one_line(line, raw);
  finish_line(line);
  return line;
}

// The project every alert shares, or "" when they differ or one has none.
std::string_view common_project(const std::vector<alert>& alerts, std::string_view label) {
  if (alerts.empty() || label.empty()) return {};
  const std::string_view first = alerts.front().labels.get(label);
  for (const alert& a : alerts) {
    if (a.labels.get(label) != first) return {};
  }
  return first;
}

std::string summary(const notification& n, std::string_view project_label) {
  std::string out = n.kind == notification_kind::page ? "[PAGE] " : "[RESOLVED] ";
  out += title(n.alerts);
  const std::string_view project = common_project(n.alerts, project_label);
  std::string scope;
  append_one_line(scope, project);
  finish_line(scope);
  if (!scope.empty()) {
    out.push_back(' ');
    out += scope;
  }
  return out;
}

// --- alerts -------------------------------------------------------------------------------------

std::string format_time(routing::timestamp t) {
  // The decoder leaves a missing time at the epoch; Alertmanager spells "unset" as Go's zero time.
  if (t == routing::timestamp{}) return "0001-01-01T00:00:00Z";
  return routing::format_rfc3339(t);
}

// Bytes the alerts' part of a notification takes, about: to reserve its text once.
std::size_t text_size(const alert& a) {
  std::size_t n = 200 + a.generator_url.size();
  for (const auto& [name, value] : a.labels) n += name.size() + value.size() + 6;
  for (const auto& [name, value] : a.annotations) n += name.size() + value.size() + 6;
  return n;
}

// --- id -----------------------------------------------------------------------------------------

// 64-bit FNV-1a over a length-prefixed byte encoding, finished with MurmurHash3's fmix64 so that
// every input bit moves every hex digit. Not cryptographic: the id also embeds the incident id.
class id_hash {
 public:
  void u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      byte(static_cast<unsigned char>(v & 0xFF));
      v >>= 8;
    }
  }
  void str(std::string_view s) {
    u64(s.size());  // length first: ("ab","c") and ("a","bc") must differ
    for (const char c : s) byte(static_cast<unsigned char>(c));
  }
  std::uint64_t finish() const {
    std::uint64_t h = h_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
  }

 private:
  void byte(unsigned char b) {
    h_ ^= b;
    h_ *= 0x100000001b3ULL;
  }
  std::uint64_t h_ = 0xcbf29ce484222325ULL;
};

}  // namespace

std::string encode_notification(const notification& n, const notification_context& ctx) {
  // Written straight into its text (no DOM): every page and resolve is encoded on the io thread.
  std::size_t reserve = 512 + ctx.group_key.size() + ctx.external_url.size();
  for (const alert& a : n.alerts) reserve += text_size(a);
  routing::json_text out(reserve);
  out.key("version", '{').string(kFormatVersion);
  out.key("id").string(ctx.id);
  out.key("kind").string(routing::to_string(n.kind));
  out.key("route").string(n.routes.empty() ? std::string_view() : n.routes.front());
  out.key("routes").open('[');
  for (const std::string& r : n.routes) out.item().string(r);
  out.close(']');
  out.key("target").open('{');
  out.key("type").string(to_string(n.target.type));
  out.key("name").string(n.target.name);
  if (n.target.type == config::target_type::schedule) out.key("person").string(n.target.person);
  out.close('}');
  out.key("ownership")
      .string(n.alerts.empty() ? std::string_view()
                               : n.alerts.front().labels.get(routing::kOwnershipLabel));
  out.key("severity").string(highest_severity(n.alerts));
  out.key("summary").string(summary(n, ctx.project_label));
  out.key("group_key").string(ctx.group_key);
  out.key("external_url").string(ctx.external_url);
  if (ctx.sent_at) out.key("sent_at").string(routing::format_rfc3339(*ctx.sent_at));
  out.key("alerts").open('[');
  for (const alert& a : n.alerts) {
    out.item().open('{');
    out.key("status").string(routing::to_string(a.status));
    out.key("labels").labels(a.labels);
    out.key("annotations").labels(a.annotations);
    out.key("startsAt").string(format_time(a.starts_at));
    out.key("endsAt").string(format_time(a.ends_at));
    out.key("generatorURL").string(a.generator_url);
    out.key("fingerprint").string(routing::to_hex(a.fp));
    out.close('}');
  }
  out.close(']');
  out.close('}');
  return std::move(out).text();
}

std::string make_notification_id(const notification& n) {
  id_hash h;
  h.str(routing::to_string(n.kind));
  h.str(to_string(n.target.type));
  h.str(n.target.name);
  h.str(n.target.person);
  h.u64(n.incident_ids.size());
  for (std::size_t i = 0; i < n.incident_ids.size(); ++i) {
    h.u64(n.incident_ids[i]);
    if (i < n.alerts.size()) {
      h.u64(n.alerts[i].fp.value);
      h.u64(static_cast<std::uint64_t>(n.alerts[i].starts_at.time_since_epoch().count()));
    }
  }
  const std::uint64_t first = n.incident_ids.empty() ? 0 : n.incident_ids.front();
  std::string id(routing::to_string(n.kind));
  id += '-';
  id += std::to_string(first);
  id += '-';
  id += routing::to_hex(routing::fingerprint{h.finish()});
  return id;
}

}  // namespace alertrouter::daemon
