#include "daemon/service.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "config/loader.h"
#include "daemon/notification_json.h"
#include "daemon/webhook_sender.h"
#include "routing/planner.h"
#include "routing/schedule.h"
#include "routing/time.h"
#include "routing/webhook.h"

namespace alertrouter::daemon {

namespace json = boost::json;

namespace {

constexpr std::string_view kJson = "application/json";
// A token file is a secret of a few dozen bytes; anything much larger is a wrong path.
constexpr std::size_t kMaxTokenBytes = 4096;

http_response json_response(unsigned status, const json::value& v) {
  http_response r;
  r.status = status;
  r.content_type = std::string(kJson);
  r.body = json::serialize(v);
  r.body += '\n';
  return r;
}

http_response error_response(unsigned status, std::string_view message) {
  return json_response(status, json::object{{"error", message}});
}

std::string trim(std::string s) {
  const auto space = [](unsigned char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
  };
  while (!s.empty() && space(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && space(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

// Compares without an early exit, so the time taken does not say how much of a guess was right.
bool constant_time_equal(std::string_view a, std::string_view b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The value of the first `name` in an application/x-www-form-urlencoded query.
struct query_value {
  bool present = false;  // `name` is in the query
  bool valid = false;    // and its value is well encoded (then `value` is decoded)
  std::string value;
};

query_value query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string_view raw = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    query_value out;
    out.present = true;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '+') {
        out.value += ' ';
      } else if (raw[i] == '%') {
        // A bad escape must not read as "absent": the caller would silently use its default.
        if (i + 2 >= raw.size()) return out;
        const int hi = hex_value(raw[i + 1]);
        const int lo = hex_value(raw[i + 2]);
        if (hi < 0 || lo < 0) return out;
        out.value += static_cast<char>(hi * 16 + lo);
        i += 2;
      } else {
        out.value += raw[i];
      }
    }
    out.valid = true;
    return out;
  }
  return {};
}

// "schedule:oncall(alice)", "receiver:cloud-feed", "project:deployment-prep".
std::string describe(const routing::paged_target& t) {
  std::string out(config::to_string(t.type));
  out += ':';
  out += t.name;
  if (!t.person.empty()) out += "(" + t.person + ")";
  return out;
}

// "host:port" of a webhook URL, for logs and the API: the path and query often carry a secret.
std::string destination_of(std::string_view url) {
  const http_url_result u = parse_http_url(url);
  if (!u.url) return "(unusable URL)";
  const std::string& h = u.url->host;
  return (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(u.url->port);
}

json::value opt_time(const std::optional<routing::sys_seconds>& t) {
  if (!t) return nullptr;
  return json::value(routing::format_rfc3339(*t));
}

json::object labels_json(const routing::label_set& labels) {
  json::object o;
  for (const auto& [k, v] : labels) o.emplace(k, v);
  return o;
}

// The incident table as the planner sees it in durable mode: everything goes to `inner`, and
// every incident an alert opens, reopens or closes is copied as it stands once the planner is
// done with that alert (its pages recorded), before a later alert of the same body can evict it
// from a full table. The copies are the rows the body's commit writes.
class change_capturing_table final : public routing::incident_table {
 public:
  explicit change_capturing_table(routing::incident_table& inner) : inner_(inner) {}

  // The incidents changed, one per fingerprint, each as it was last changed. Call once the
  // planner is done.
  std::vector<routing::incident> take_changed() {
    capture();
    return std::move(changed_);
  }

  result observe(const routing::alert& a, routing::ownership owner,
                 routing::timestamp now) override {
    capture();
    const result r = inner_.observe(a, owner, now);
    if (r.what == routing::observation::opened || r.what == routing::observation::reopened ||
        r.what == routing::observation::closed) {
      due_ = a.fp;
      due_id_ = r.subject->id;
    }
    return r;
  }
  // The planner records an incident's pages right after observing it, so the copy waits for
  // the next mutation. Pages recorded for an incident copied already update the copy too.
  void record_paged(std::uint64_t id, std::vector<std::string> routes,
                    std::vector<routing::paged_target> paged) override {
    if (!due_ || id != due_id_) {
      for (routing::incident& inc : changed_) {
        if (inc.id == id) {
          inc.routes = routes;
          inc.paged = paged;
        }
      }
    }
    inner_.record_paged(id, std::move(routes), std::move(paged));
  }
  const routing::incident* find(routing::fingerprint fp) const override { return inner_.find(fp); }
  routing::observation classify(routing::fingerprint fp, routing::alert_status status,
                                routing::timestamp starts_at) const override {
    return inner_.classify(fp, status, starts_at);
  }
  void restore(routing::incident inc) override {
    capture();
    inner_.restore(std::move(inc));
  }
  void clear() override {
    capture();
    inner_.clear();
  }
  void reserve_ids(std::uint64_t next) override { inner_.reserve_ids(next); }
  std::size_t expire(routing::timestamp now) override {
    capture();
    return inner_.expire(now);
  }
  std::size_t open_count() const override { return inner_.open_count(); }
  std::size_t size() const override { return inner_.size(); }
  std::uint64_t evictions() const override { return inner_.evictions(); }
  void for_each_open(const std::function<void(const routing::incident&)>& f) const override {
    inner_.for_each_open(f);
  }

 private:
  // Copies the incident changed by the last observation, if any. Nothing has mutated the table
  // since but record_paged, so it is still there.
  void capture() {
    if (!due_) return;
    const routing::incident* inc = inner_.find(*due_);
    due_.reset();
    if (inc == nullptr) return;  // cannot happen: see above
    const auto [it, added] = index_.try_emplace(inc->fp, changed_.size());
    if (added) {
      changed_.push_back(*inc);
    } else {
      changed_[it->second] = *inc;  // changed twice in one body: the later state is the row
    }
  }

  routing::incident_table& inner_;
  std::optional<routing::fingerprint> due_;  // changed by the last observation, not copied yet
  std::uint64_t due_id_ = 0;
  std::vector<routing::incident> changed_;
  std::unordered_map<routing::fingerprint, std::size_t, routing::fingerprint_hash> index_;
};

}  // namespace

std::string log_value(std::string_view v) {
  const bool bare = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
    return c > ' ' && c < 0x7f && c != '"' && c != '=' && c != '\\';
  });
  if (bare) return std::string(v);
  std::string out;
  out.reserve(v.size() + 2);
  out += '"';
  for (const char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c;
  }
  out += '"';
  return out;
}

bool split_listen(std::string_view listen, std::string& host, std::uint16_t& port) {
  const std::size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::string_view h = listen.substr(0, colon);
  const std::string_view p = listen.substr(colon + 1);
  if (h.size() >= 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || p.empty() || value > 65535) return false;
  host.assign(h);
  port = static_cast<std::uint16_t>(value);
  return !host.empty();
}

std::variant<loaded_config, std::vector<std::string>> load_config(const std::string& path) {
  std::vector<std::string> errors;
  config::load_result loaded = config::load_file(path);
  for (const config::diagnostic& d : loaded.diagnostics) {
    if (d.level == config::severity::error) errors.push_back(d.to_string());
  }
  if (!loaded.value || !errors.empty()) {
    if (errors.empty()) errors.push_back(path + ": cannot load the configuration");
    return errors;
  }
  loaded_config out;
  const std::string token_file = loaded.value->auth.bearer_token_file;
  auto compiled = routing::routing_table::compile(std::move(*loaded.value));
  if (auto* diags = std::get_if<std::vector<config::diagnostic>>(&compiled)) {
    for (const config::diagnostic& d : *diags) errors.push_back(d.to_string());
    return errors;
  }
  out.table = std::get<std::shared_ptr<const routing::routing_table>>(std::move(compiled));
  if (!token_file.empty()) {
    std::ifstream in(token_file, std::ios::binary);
    if (!in) {
      errors.push_back(path + ": auth.bearer_token_file: cannot read " + token_file + ": " +
                       std::strerror(errno));
      return errors;
    }
    std::string token(kMaxTokenBytes + 1, '\0');
    in.read(token.data(), static_cast<std::streamsize>(token.size()));
    token.resize(static_cast<std::size_t>(in.gcount()));
    if (token.size() > kMaxTokenBytes) {
      errors.push_back(path + ": auth.bearer_token_file: " + token_file + " is larger than " +
                       std::to_string(kMaxTokenBytes) + " bytes");
      return errors;
    }
    out.bearer_token = trim(std::move(token));
    if (out.bearer_token.empty()) {
      errors.push_back(path + ": auth.bearer_token_file: " + token_file + " is empty");
      return errors;
    }
  }
  return out;
}

service::service(std::string config_path, loaded_config initial, routing::incident_table& incidents,
                 metrics& stats, delivery& out, log_sink log,
                 std::function<std::chrono::system_clock::time_point()> clock)
    : config_path_(std::move(config_path)),
      current_(std::move(initial)),
      incidents_(incidents),
      stats_(stats),
      out_(out),
      log_(std::move(log)),
      clock_(std::move(clock)),
      max_pending_(current_.table->config().limits.max_pending_notifications) {
  std::vector<std::string> names;
  for (const routing::schedule& s : current_.table->schedules()) names.push_back(s.name());
  stats_.set_schedules(names);
  stats_.set_oncall_source([this] {
    std::vector<std::pair<std::string, std::string>> out_pairs;
    const auto now = std::chrono::floor<std::chrono::seconds>(clock_());
    for (const routing::schedule& s : current_.table->schedules()) {
      routing::on_call who = s.at(now);
      if (!who.person.empty()) out_pairs.emplace_back(s.name(), std::move(who.person));
    }
    return out_pairs;
  });
}

service::~service() {
  // The metrics object outlives us; its scrape-time source must not call into a dead service.
  stats_.set_oncall_source({});
}

bool service::authorized(const http_request& req) const {
  if (current_.bearer_token.empty()) return true;
  const std::string_view header = req.header("Authorization");
  constexpr std::string_view scheme = "Bearer ";
  // The scheme is case-insensitive (RFC 9110); the token is not.
  if (header.size() < scheme.size()) return false;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i]))) {
      return false;
    }
  }
  return constant_time_equal(header.substr(scheme.size()), current_.bearer_token);
}

std::optional<http_response> service::check_token(const http_request& req) const {
  if (authorized(req)) return std::nullopt;
  http_response r = error_response(401, "missing or wrong bearer token");
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

std::optional<http_response> service::check_webhook_header(const http_request& head) {
  std::optional<http_response> refusal = check_token(head);
  if (refusal) stats_.webhook_received(webhook_result::unauthorized);
  return refusal;
}

http_response service::webhook(http_request& req) {
  std::optional<http_response> answer;
  webhook(req, [&answer](http_response r) { answer = std::move(r); });
  if (!answer) {
    throw std::logic_error("service::webhook answers after a commit: use the responder overload");
  }
  return std::move(*answer);
}

void service::enable_durability(durable_state d) { durable_ = std::move(d); }

void service::warn_refused(std::string line) {
  if (auto admitted = refusals_log_.admit(std::move(line))) {
    log_(log_level::warn, *admitted);
  } else {
    stats_.webhook_warnings_suppressed();
  }
}

void service::webhook(http_request& req, std::function<void(http_response)> respond) {
  const auto received_at = std::chrono::steady_clock::now();
  if (std::optional<http_response> refusal = check_webhook_header(req)) {
    warn_refused("msg=\"webhook refused\" reason=unauthorized remote=" + req.remote);
    return respond(std::move(*refusal));
  }
  const char* refusal = nullptr;
  std::string detail;
  if (shutting_down_) {
    refusal = "shutting_down";
    detail = "shutting down";
  } else if (durable_.committer != nullptr && !store_error_.empty()) {
    // A commit failed: nothing more is accepted until the table is rebuilt from the store.
    refusal = "state_store";
    detail = "state store unavailable: " + store_error_;
  } else if (out_.pending() + committing_ >= max_pending_) {
    refusal = "delivery_backlog";
    detail = "delivery backlog full (" + std::to_string(out_.pending() + committing_) +
             " notifications pending); retry later";
  }
  if (refusal != nullptr) {
    stats_.webhook_received(webhook_result::unavailable);
    warn_refused(std::string("msg=\"webhook refused\" reason=") + refusal +
                 " pending=" + std::to_string(out_.pending() + committing_) +
                 " remote=" + req.remote + " detail=" + log_value(detail));
    http_response r = error_response(503, detail);
    r.headers.emplace_back("Retry-After", "5");
    return respond(std::move(r));
  }

  // The table in use for this body, kept alive even if a reload swaps it meanwhile.
  const std::shared_ptr<const routing::routing_table> table = current_.table;
  const auto now = clock_();
  const bool durable = durable_.committer != nullptr;
  // Durable: the rows this body's commit writes are copied as each alert leaves them.
  std::optional<change_capturing_table> capturing;
  if (durable) capturing.emplace(incidents_);
  routing::decode_error bad;
  const routing::index_counts indexed_before = routing::thread_index_counts();
  const bool decoded = routing::route_webhook_into(
      req.body, *table, capturing ? static_cast<routing::incident_table&>(*capturing) : incidents_,
      std::chrono::floor<std::chrono::microseconds>(now), routed_, bad);
  const routing::index_counts indexed = routing::thread_index_counts();
  stats_.webhook_bodies_indexed({
      .first_stage = indexed.first_stage - indexed_before.first_stage,
      .reused = indexed.reused - indexed_before.reused,
      .derived = indexed.derived - indexed_before.derived,
      .replayed = indexed.replayed - indexed_before.replayed,
  });
  if (!decoded) {
    stats_.webhook_received(webhook_result::bad_request);
    const std::string message = bad.to_string();
    warn_refused("msg=\"webhook refused\" reason=bad_request remote=" + req.remote +
                 " bytes=" + std::to_string(req.body.size()) + " error=" + log_value(message));
    return respond(error_response(400, message));
  }
  routing::routed_webhook& r = routed_;
  routing::plan& p = r.result;
  // The gauges follow the table, which holds this body's changes now; the counters wait for the
  // answer (see ingest_tally).
  stats_.set_incidents_open(incidents_.open_count());
  stats_.set_incident_evictions(incidents_.evictions());
  ingest_tally tally;
  for (std::size_t i = 0; i < r.hook.alerts.size(); ++i) {
    const auto o = static_cast<std::size_t>(p.ownerships[i]);
    const auto s = static_cast<std::size_t>(r.hook.alerts[i].status);
    if (o < tally.alerts.size() && s < tally.alerts[o].size()) ++tally.alerts[o][s];
  }

  for (const routing::nobody_on_call& n : p.nobody) {
    log_(log_level::warn, "msg=\"nobody on call\" schedule=" + n.schedule + " route=" + n.route +
                              " fingerprint=" + routing::to_hex(n.fp));
  }
  for (const routing::no_contact& n : p.no_contacts) {
    log_(log_level::warn, "msg=\"no contact\" target=" + log_value(describe(n.target)) +
                              " route=" + n.route + " fingerprint=" + routing::to_hex(n.fp));
  }
  for (const routing::blocked_target& b : p.blocked) {
    log_(log_level::warn,
         "msg=\"schedule target refused for a user project\" schedule=" + b.schedule +
             " route=" + b.route + " fingerprint=" + routing::to_hex(b.fp));
  }
  std::vector<delivery_request> requests;
  requests.reserve(p.notifications.size());
  for (const routing::notification& n : p.notifications) {
    if (auto req_out = render(n, r.hook, received_at, tally)) {
      requests.push_back(std::move(*req_out));
    }
  }

  const log_level summary_level =
      p.counts.opened + p.counts.closed > 0 ? log_level::info : log_level::debug;
  if (summary_level >= min_level_) {
    log_(summary_level, "msg=\"webhook\" group_key=" + log_value(r.hook.group_key) +
                            " received=" + std::to_string(p.counts.received) +
                            " new=" + std::to_string(p.counts.opened) +
                            " duplicates=" + std::to_string(p.counts.duplicates) +
                            " resolved=" + std::to_string(p.counts.closed) +
                            " stale=" + std::to_string(p.counts.stale) +
                            " notifications=" + std::to_string(p.notifications.size()));
  }
  // Every webhook gets this answer, so it is written by hand rather than through a JSON DOM.
  http_response ok;
  ok.content_type = std::string(kJson);
  ok.body.reserve(112);
  ok.body += "{\"received\":";
  ok.body += std::to_string(p.counts.received);
  ok.body += ",\"new\":";
  ok.body += std::to_string(p.counts.opened);
  ok.body += ",\"duplicates\":";
  ok.body += std::to_string(p.counts.duplicates);
  ok.body += ",\"resolved\":";
  ok.body += std::to_string(p.counts.closed);
  ok.body += ",\"stale\":";
  ok.body += std::to_string(p.counts.stale);
  ok.body += ",\"notifications\":";
  ok.body += std::to_string(p.notifications.size());
  ok.body += "}\n";

  tally.plan.counts = p.counts;
  tally.plan.nobody = std::move(p.nobody);
  tally.plan.no_contacts = std::move(p.no_contacts);
  tally.plan.blocked = std::move(p.blocked);

  if (!durable) {
    count_accepted(tally);
    for (delivery_request& d : requests) out_.submit(std::move(d));
    return respond(std::move(ok));
  }

  // Durable: the body's effects (the incidents it changed and its notifications) are committed
  // before the 200, and the notifications go to the outbox only once they are on disk.
  //
  // Each changed incident is written as the body left it, even if a later alert of the body
  // evicted it from a full table: a close must reach the store, or the store (and a restart)
  // would keep the incident open. An incident opened and evicted in the same body is written
  // open, with its pages, like one opened by an earlier body and evicted since: the store keeps
  // what was paged (this body's notifications name it), and a restart may restore it (one with
  // the same max_incidents evicts it again, restoring as observe() evicts), so that its resolve
  // still reaches whoever got the page rather than being an unknown resolve.
  store::change_set set;
  set.incidents = capturing->take_changed();
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  for (const delivery_request& d : requests) {
    store::outbox_message m;
    m.id = d.id;
    m.destination = d.url;
    m.url = d.url;
    m.channel = d.channel;
    m.kind = d.kind;
    m.body = d.body;
    m.created_ms = now_ms;
    m.next_attempt_ms = now_ms;
    set.messages.push_back(std::move(m));
  }
  // The newest commit in flight that changed an incident this body names: this body's answer
  // rests on it (a duplicate of an incident whose opening is not on disk yet is only a
  // duplicate if that opening survives).
  std::uint64_t rests_on = 0;
  if (!unsynced_.empty()) {
    for (const routing::alert& a : r.hook.alerts) {
      if (auto it = unsynced_.find(a.fp); it != unsynced_.end()) {
        rests_on = std::max(rests_on, it->second);
      }
    }
  }
  if (set.incidents.empty() && set.messages.empty()) {
    // Nothing to write (repeats, the common case): answer now, or with the commit it rests on.
    if (rests_on != 0) {
      for (auto it = commits_.rbegin(); it != commits_.rend(); ++it) {
        if (it->ticket == rests_on) {
          it->waiters.push_back({std::move(respond), std::move(ok), std::move(tally)});
          return;
        }
      }
      // cannot happen: unsynced_ only names commits in flight
    }
    count_accepted(tally);
    return respond(std::move(ok));
  }
  // Everything that can fail to allocate is done before the set is handed over: once queued it
  // will be committed, and its notifications must then reach the outbox.
  pending_commit& c = commits_.emplace_back();
  try {
    c.fps.reserve(set.incidents.size());
    for (const routing::incident& inc : set.incidents) c.fps.push_back(inc.fp);
    c.requests = std::move(requests);
    c.waiters.push_back({std::move(respond), std::move(ok), std::move(tally)});
    unsynced_.reserve(unsynced_.size() + c.fps.size());
  } catch (...) {
    commits_.pop_back();
    throw;
  }
  committing_ += c.requests.size();
  // Commits finish in ticket order, so this body's own commit covers `rests_on` too.
  try {
    c.ticket = durable_.committer->enqueue(std::move(set));
  } catch (const std::exception& e) {  // the committer has stopped (shutdown)
    auto answers = std::move(c.waiters);
    committing_ -= c.requests.size();
    commits_.pop_back();
    log_(log_level::error,
         "msg=\"state store closed; answering 503\" error=" + log_value(e.what()));
    for (waiter& w : answers) {
      stats_.webhook_received(webhook_result::unavailable);
      w.respond(error_response(503, "state store closed"));
    }
    return;
  }
  for (const routing::fingerprint fp : c.fps) unsynced_[fp] = c.ticket;
}

void service::committed(std::uint64_t ticket, std::exception_ptr error) {
  if (commits_.empty() || commits_.front().ticket != ticket) {
    log_(log_level::error,
         "msg=\"commit result for an unknown ticket\" ticket=" + std::to_string(ticket));
    return;
  }
  pending_commit c = std::move(commits_.front());
  commits_.pop_front();
  committing_ -= c.requests.size();
  for (const routing::fingerprint fp : c.fps) {
    if (auto it = unsynced_.find(fp); it != unsynced_.end() && it->second == ticket) {
      unsynced_.erase(it);
    }
  }
  if (!error) {
    for (delivery_request& d : c.requests) out_.submit(std::move(d));
    for (waiter& w : c.waiters) {
      count_accepted(w.tally);
      w.respond(std::move(w.ok));
    }
    return;
  }
  std::string why = "unknown error";
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    why = e.what();
  } catch (...) {
  }
  log_(log_level::error,
       "msg=\"state store commit failed; answering 503\" ticket=" + std::to_string(ticket) +
           " webhooks=" + std::to_string(c.waiters.size()) + " error=" + log_value(why));
  // Every body waiting is answered 503 and counted so; none of them is counted as accepted, nor
  // its alerts and incidents: the table forgets them, and Alertmanager sends them again.
  for (waiter& w : c.waiters) {
    stats_.webhook_received(webhook_result::unavailable);
    http_response r = error_response(503, "state store unavailable: " + why);
    r.headers.emplace_back("Retry-After", "5");
    w.respond(std::move(r));
  }
  // The table already holds this body's changes, which are not on disk: refuse everything
  // until it is rebuilt from the store, which holds exactly what was answered 200.
  if (store_error_.empty()) {
    store_error_ = why;
    rebuild_from_store();
  }
}

void service::rebuild_from_store() {
  auto post = durable_.post;
  durable_.committer->run([this, post](store::state_store& st) {
    std::shared_ptr<store::recovered_state> state;
    std::string error;
    try {
      state = std::make_shared<store::recovered_state>(st.load());
    } catch (const std::exception& e) {
      error = e.what();
    }
    post([this, state, error] {
      if (!state) {
        log_(log_level::error,
             "msg=\"state store unreadable; retrying\" error=" + log_value(error));
        if (durable_.retry_later) {
          durable_.retry_later([this] { rebuild_from_store(); });
        }
        return;
      }
      // Commits still in flight were computed against the table being replaced; they finish
      // (and answer) on their own. The rebuilt table is the store's truth.
      incidents_.clear();
      for (routing::incident& inc : state->incidents) incidents_.restore(std::move(inc));
      stats_.set_incidents_open(incidents_.open_count());
      stats_.set_incident_evictions(incidents_.evictions());
      log_(log_level::warn,
           "msg=\"incident table rebuilt from the state store; accepting "
           "webhooks again\" incidents=" +
               std::to_string(incidents_.size()));
      store_error_.clear();
      durable_.committer->resume();
    });
  });
}

void service::count_accepted(const ingest_tally& t) {
  stats_.webhook_received(webhook_result::accepted);
  constexpr routing::ownership owners[] = {routing::ownership::owned, routing::ownership::user,
                                           routing::ownership::unowned};
  constexpr routing::alert_status statuses[] = {routing::alert_status::firing,
                                                routing::alert_status::resolved};
  for (const routing::ownership o : owners) {
    for (const routing::alert_status s : statuses) {
      const std::uint64_t n = t.alerts[static_cast<std::size_t>(o)][static_cast<std::size_t>(s)];
      for (std::uint64_t i = 0; i < n; ++i) stats_.alert_received(o, s);
    }
  }
  stats_.record_plan(t.plan);
  for (const config::target_type type : t.no_contact) stats_.no_contact(type);
  for (const auto& [channel, kind] : t.dropped) {
    stats_.notification(channel, kind, delivery_result::dropped);
  }
}

std::optional<delivery_request> service::render(const routing::notification& n,
                                                const routing::webhook& hook,
                                                std::chrono::steady_clock::time_point received_at,
                                                ingest_tally& tally) {
  const std::string id = make_notification_id(n);
  // A project target is named by the alert's own label: quoted, so it cannot forge a log line.
  const std::string target = log_value(describe(n.target));
  if (n.reach.webhook.empty() && n.reach.email.empty() && n.reach.irc.empty()) {
    // A person, receiver or project configured without any contact (a config warning).
    tally.no_contact.push_back(n.target.type);
    log_(log_level::warn, "msg=\"no contact\" kind=" + std::string(routing::to_string(n.kind)) +
                              " id=" + id + " target=" + target);
    return std::nullopt;
  }
  if (n.reach.webhook.empty()) {
    // Email and IRC are not delivered yet: say so loudly rather than lose the page quietly.
    const std::string_view channel = !n.reach.email.empty() ? "email" : "irc";
    tally.dropped.emplace_back(channel, n.kind);
    log_(log_level::error, std::string("msg=\"notification dropped\" reason=\"channel not "
                                       "supported yet\" channel=") +
                               std::string(channel) + " id=" + id + " target=" + target);
    return std::nullopt;
  }
  notification_context ctx;
  ctx.id = id;
  ctx.group_key = hook.group_key;
  ctx.external_url = hook.external_url;
  ctx.project_label = current_.table->config().ownership.label;
  delivery_request req;
  req.id = id;
  req.url = n.reach.webhook;
  req.body = encode_notification(n, ctx);
  req.channel = "webhook";
  req.kind = n.kind;
  req.received_at = received_at;
  log_(log_level::info, "msg=\"notification\" kind=" + std::string(routing::to_string(n.kind)) +
                            " id=" + id + " target=" + target +
                            " route=" + (n.routes.empty() ? std::string() : n.routes.front()) +
                            " incidents=" + std::to_string(n.incident_ids.size()));
  return req;
}

void service::on_attempt(const delivery_request& req, unsigned attempt_no) {
  (void)attempt_no;
  stats_.delivery_attempt(req.channel);
}

void service::on_retry(const delivery_request& req, unsigned attempt_no, std::string_view reason,
                       std::chrono::milliseconds delay) {
  stats_.delivery_retry(req.channel);
  // The one line per failed attempt (main.cpp does not log the transport's own lines, which
  // repeat this with the transport's attempt count, always 1).
  log_(log_level::warn, "msg=\"delivery attempt failed; retry scheduled\" id=" + log_value(req.id) +
                            " destination=" + log_value(destination_of(req.url)) + " attempts=" +
                            std::to_string(attempt_no) + " reason=" + log_value(reason) +
                            " delay_ms=" + std::to_string(delay.count()));
}

void service::on_done(const delivery_request& req, delivery_result result, unsigned attempts,
                      std::chrono::steady_clock::duration latency, std::string_view detail,
                      std::optional<std::chrono::milliseconds> retry_after) {
  (void)retry_after;  // the outbox (or the transport) has waited it already
  stats_.notification(req.channel, req.kind, result);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(latency).count();
  if (result == delivery_result::delivered) {
    stats_.delivery_latency(req.channel, latency);
    log_(log_level::info, "msg=delivered id=" + log_value(req.id) +
                              " destination=" + log_value(destination_of(req.url)) + " attempts=" +
                              std::to_string(attempts) + " latency_ms=" + std::to_string(ms));
    return;
  }
  log_(log_level::error,
       "msg=\"delivery failed\" result=" + std::string(to_string(result)) +
           " id=" + log_value(req.id) + " destination=" + log_value(destination_of(req.url)) +
           " attempts=" + std::to_string(attempts) + " detail=" + log_value(detail));
}

http_response service::oncall(http_request& req) {
  auto at = std::chrono::floor<std::chrono::seconds>(clock_());
  if (!req.query.empty()) {
    if (const query_value text = query_param(req.query, "at"); text.present) {
      const auto t = text.valid ? routing::parse_rfc3339(text.value) : std::nullopt;
      if (!t) {
        return error_response(400, "at: expected an RFC 3339 time, e.g. 2026-12-02T16:00:00Z");
      }
      at = std::chrono::floor<std::chrono::seconds>(*t);
    }
  }
  json::array schedules;
  for (const routing::schedule& s : current_.table->schedules()) {
    const routing::on_call who = s.at(at);
    json::object o;
    o.emplace("schedule", s.name());
    o.emplace("person", who.person.empty() ? json::value(nullptr) : json::value(who.person));
    o.emplace("layer", who.layer.empty() ? json::value(nullptr) : json::value(who.layer));
    o.emplace("override", who.is_override);
    o.emplace("since", opt_time(who.since));
    o.emplace("until", opt_time(who.until));
    schedules.push_back(std::move(o));
  }
  return json_response(
      200, json::object{{"at", routing::format_rfc3339(at)}, {"schedules", std::move(schedules)}});
}

http_response service::incidents(http_request& req) {
  (void)req;
  json::array list;
  incidents_.for_each_open([&](const routing::incident& inc) {
    json::array paged;
    for (const routing::paged_target& t : inc.paged) {
      json::object p{{"type", config::to_string(t.type)}, {"name", t.name}};
      if (!t.person.empty()) p.emplace("person", t.person);
      paged.push_back(std::move(p));
    }
    json::array routes;
    for (const std::string& r : inc.routes) routes.push_back(json::value(r));
    list.push_back(json::object{
        {"id", inc.id},
        {"fingerprint", routing::to_hex(inc.fp)},
        {"alertname", inc.last.labels.get("alertname")},
        {"ownership", routing::to_string(inc.owner)},
        {"starts_at", routing::format_rfc3339(inc.starts_at)},
        {"opened_at", routing::format_rfc3339(inc.opened_at)},
        {"labels", labels_json(inc.last.labels)},
        {"annotations", labels_json(inc.last.annotations)},
        {"routes", std::move(routes)},
        {"paged", std::move(paged)},
    });
  });
  return json_response(
      200, json::object{{"open", incidents_.open_count()}, {"incidents", std::move(list)}});
}

http_response service::metrics_page(http_request& req) {
  (void)req;
  stats_.set_incidents_open(incidents_.open_count());
  stats_.set_incident_evictions(incidents_.evictions());
  http_response r;
  r.content_type = std::string(metrics::kContentType);
  r.body = stats_.render();
  return r;
}

http_response service::reload_endpoint(http_request& req) {
  if (std::optional<http_response> refusal = check_token(req)) {
    warn_refused("msg=\"reload refused\" reason=unauthorized remote=" + req.remote);
    return std::move(*refusal);
  }
  reload_outcome o = reload();
  if (o.ok) return json_response(200, json::object{{"status", "success"}});
  json::array errors;
  for (std::string& e : o.errors) errors.push_back(json::value(std::move(e)));
  return json_response(400, json::object{{"status", "failure"},
                                         {"error",
                                          "the new configuration was refused; the "
                                          "running one is kept"},
                                         {"errors", std::move(errors)}});
}

http_response service::healthy(http_request& req) {
  (void)req;
  http_response r;
  r.body = "OK\n";
  return r;
}

http_response service::ready(http_request& req) {
  (void)req;
  http_response r;
  if (shutting_down_) {
    r.status = 503;
    r.body = "shutting down\n";
    return r;
  }
  r.body = "OK\n";
  return r;
}

http_response outbox_page(const outbox& box, http_request& req) {
  std::size_t limit = 100;
  if (const query_value text = query_param(req.query, "limit"); text.present) {
    unsigned n = 0;
    const auto [end, ec] =
        std::from_chars(text.value.data(), text.value.data() + text.value.size(), n);
    if (!text.valid || ec != std::errc() || end != text.value.data() + text.value.size() || n < 1 ||
        n > 1000) {
      return error_response(400, "limit: expected an integer from 1 to 1000");
    }
    limit = n;
  }
  const auto ms_time = [](std::int64_t ms) -> json::value {
    if (ms <= 0) return nullptr;
    return json::value(routing::format_rfc3339(routing::sys_seconds(
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::milliseconds(ms)))));
  };
  json::array list;
  for (const outbox_entry& e : box.list(limit)) {
    const std::string where = destination_of(e.req.url);
    list.push_back(json::object{
        {"id", e.req.id},
        {"kind", routing::to_string(e.req.kind)},
        {"state", e.dead ? "dead" : "pending"},
        {"channel", e.req.channel},
        {"destination", where},
        {"created_at", ms_time(e.created_ms)},
        {"attempts", e.attempts},
        {"next_attempt_at", e.dead ? json::value(nullptr) : ms_time(e.next_attempt_ms)},
        {"finished_at", e.dead ? ms_time(e.finished_ms) : json::value(nullptr)},
        {"last_error", e.last_error},
    });
  }
  return json_response(200, json::object{{"pending", box.pending()},
                                         {"dead", box.dead_count()},
                                         {"notifications", std::move(list)}});
}

reload_outcome service::reload() {
  auto loaded = load_config(config_path_);
  const auto now = clock_();
  if (auto* errors = std::get_if<std::vector<std::string>>(&loaded)) {
    stats_.config_reloaded(false, now);
    for (const std::string& e : *errors) {
      log_(log_level::error,
           "msg=\"reload refused; keeping the running configuration\" error=" + log_value(e));
    }
    return {false, std::move(*errors)};
  }
  loaded_config next = std::get<loaded_config>(std::move(loaded));
  const config::config& old_cfg = current_.table->config();
  const config::config& new_cfg = next.table->config();
  if (old_cfg.listen != new_cfg.listen || old_cfg.limits.max_body != new_cfg.limits.max_body ||
      old_cfg.limits.max_connections != new_cfg.limits.max_connections ||
      old_cfg.limits.read_timeout != new_cfg.limits.read_timeout ||
      old_cfg.limits.idle_timeout != new_cfg.limits.idle_timeout ||
      old_cfg.limits.max_pending_notifications != new_cfg.limits.max_pending_notifications ||
      old_cfg.dedup.max_incidents != new_cfg.dedup.max_incidents ||
      old_cfg.dedup.retention != new_cfg.dedup.retention ||
      old_cfg.delivery.connect_timeout != new_cfg.delivery.connect_timeout ||
      old_cfg.delivery.request_timeout != new_cfg.delivery.request_timeout ||
      old_cfg.delivery.max_attempts != new_cfg.delivery.max_attempts ||
      old_cfg.delivery.initial_backoff != new_cfg.delivery.initial_backoff ||
      old_cfg.delivery.max_backoff != new_cfg.delivery.max_backoff ||
      old_cfg.delivery.max_in_flight_per_destination !=
          new_cfg.delivery.max_in_flight_per_destination ||
      old_cfg.delivery.give_up_after != new_cfg.delivery.give_up_after ||
      old_cfg.state_dir != new_cfg.state_dir || old_cfg.retention != new_cfg.retention ||
      old_cfg.commit_delay != new_cfg.commit_delay) {
    // main.cpp sized the server, the incident table and the sender from the first
    // configuration; they keep those settings until a restart.
    log_(log_level::warn,
         "msg=\"reload: listen, limits, dedup, delivery, state_dir and retention settings take "
         "effect only after a restart\"");
  }
  current_ = std::move(next);
  std::vector<std::string> names;
  for (const routing::schedule& s : current_.table->schedules()) names.push_back(s.name());
  stats_.set_schedules(names);
  stats_.config_reloaded(true, now);
  log_(log_level::info, "msg=\"configuration reloaded\" file=" + config_path_ +
                            " routes=" + std::to_string(current_.table->routes().size()) +
                            " schedules=" + std::to_string(names.size()));
  return {true, {}};
}

}  // namespace alertrouter::daemon
