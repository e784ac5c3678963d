#include "daemon/webhook_sender.h"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cmath>
#include <deque>
#include <limits>
#include <optional>
#include <random>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#ifndef ALERTROUTER_VERSION
#define ALERTROUTER_VERSION "unknown"
#endif

namespace alertrouter::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string default_user_agent() { return std::string("alertrouter/") + ALERTROUTER_VERSION; }

namespace {

// How much of a rejecting response's body goes into the detail (and the log line).
constexpr std::size_t max_detail_body = 200;

char ascii_lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool is_ctl_or_space(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u <= 0x20 || u == 0x7f;
}

bool is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_';
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

http_url_result url_error(std::string message) { return {std::nullopt, std::move(message)}; }

// One line, printable ASCII only, at most max_detail_body bytes: safe in a log line and a metric
// label's neighbourhood, whatever the receiver sent.
std::string body_snippet(std::string_view body) {
  std::string out;
  bool space = false;
  for (const char c : body) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    if (out.size() >= max_detail_body) {
      out += "...";
      break;
    }
    out += c;
  }
  return out;
}

// Retry-After as delay-seconds; an HTTP-date or garbage yields nothing.
std::optional<milliseconds> parse_retry_after(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (!all_digits(v)) return std::nullopt;
  if (v.size() > 9) return milliseconds(std::numeric_limits<std::int64_t>::max() / 2);
  std::int64_t seconds = 0;
  for (const char c : v) seconds = seconds * 10 + (c - '0');
  return milliseconds(seconds * 1000);
}

std::string describe(std::string_view stage, const error_code& ec, milliseconds timeout) {
  if (ec == beast::error::timeout || ec == asio::error::timed_out) {
    return std::string(stage) + ": timed out after " + std::to_string(timeout.count()) + "ms";
  }
  return std::string(stage) + ": " + ec.message();
}

// Errors that mean "the peer had closed this connection", as opposed to a slow or broken peer.
bool is_closed_by_peer(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted || ec == http::error::partial_message;
}

}  // namespace

http_url_result parse_http_url(std::string_view url) {
  if (url.empty()) return url_error("empty URL");
  if (std::any_of(url.begin(), url.end(), is_ctl_or_space)) {
    return url_error("URL contains a space or control character");
  }
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) {
    return url_error("not an absolute URL (expected http://host[:port]/path)");
  }
  const std::string scheme = lower(url.substr(0, scheme_end));
  if (scheme == "https") return url_error("https is not supported yet (only http://)");
  if (scheme != "http") {
    return url_error("unsupported scheme \"" + body_snippet(scheme) + "\" (only http://)");
  }
  std::string_view rest = url.substr(scheme_end + 3);
  if (const auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  const auto authority_end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view target =
      authority_end == std::string_view::npos ? std::string_view() : rest.substr(authority_end);
  if (authority.find('@') != std::string_view::npos) {
    return url_error("credentials in the URL are not supported");
  }

  http_url out;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return url_error("unterminated IPv6 address in URL");
    const std::string literal(authority.substr(1, close - 1));
    error_code ec;
    asio::ip::make_address_v6(literal, ec);
    if (ec) return url_error("invalid IPv6 address in URL");
    out.host = lower(literal);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return url_error("unexpected text after IPv6 address in URL");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (host.empty()) return url_error("URL has no host");
    if (!std::all_of(host.begin(), host.end(), is_host_char)) {
      return url_error("invalid host name in URL");
    }
    out.host = lower(host);
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
  }
  if (has_port) {
    if (!all_digits(port_text) || port_text.size() > 5) return url_error("invalid port in URL");
    unsigned port = 0;
    for (const char c : port_text) port = port * 10 + static_cast<unsigned>(c - '0');
    if (port == 0 || port > 65535) return url_error("invalid port in URL");
    out.port = static_cast<std::uint16_t>(port);
  }
  out.target = target.empty() ? "/" : (target.front() == '?' ? "/" : "") + std::string(target);
  const bool v6 = out.host.find(':') != std::string::npos;
  out.host_header = v6 ? "[" + out.host + "]" : out.host;
  if (out.port != 80) out.host_header += ":" + std::to_string(out.port);
  return {std::move(out), {}};
}

namespace {

using message_ptr = std::shared_ptr<const http::request<http::string_body>>;

// One submitted request, from submit() to on_done. Moves between a destination queue, an
// attempt and a retry wait; exactly one of them owns it at a time.
struct job {
  delivery_request req;
  std::string dest_key;  // "host:port", the connection pool and concurrency bucket
  std::string host;
  std::string port;
  std::string target;
  std::string host_header;
  // Set when the host is an IP literal: connect to it directly, without a resolver thread.
  std::optional<tcp::endpoint> literal;
  unsigned attempts = 0;  // attempts started
  bool counted = false;   // counted in state::pending (false for outcomes decided in submit())
};
using job_ptr = std::unique_ptr<job>;

// A TCP connection to one destination. Owned by the attempt using it or by the idle pool.
struct connection {
  explicit connection(asio::io_context& io) : stream(io), idle_timer(io) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  asio::steady_timer idle_timer;
  // Bumped whenever the connection enters or leaves the pool, so an idle-timer completion that
  // was already queued when the connection was taken cannot close it under its new user.
  std::uint64_t idle_generation = 0;
  bool open = false;  // connected and not yet closed; counted in state::open_connections
};
using connection_ptr = std::shared_ptr<connection>;

struct destination {
  std::deque<job_ptr> queue;
  std::size_t in_flight = 0;
  std::vector<connection_ptr> idle;  // most recently used last
};

struct retry_wait {
  retry_wait(asio::io_context& io, job_ptr j) : timer(io), waiting(std::move(j)) {}
  asio::steady_timer timer;
  job_ptr waiting;
};

}  // namespace

class webhook_attempt;

struct webhook_sender::state : std::enable_shared_from_this<webhook_sender::state> {
  state(asio::io_context& io_in, webhook_sender_options options, delivery_observer* observer_in,
        delivery_warn_log warn_in)
      : io(io_in),
        opt(clamp(std::move(options))),
        observer(observer_in),
        warn(std::move(warn_in)),
        rng(opt.rng_seed ? *opt.rng_seed : std::random_device{}()),
        stop_timer(io_in) {}

  static webhook_sender_options clamp(webhook_sender_options o) {
    const auto non_negative = [](milliseconds& d) { d = std::max(d, milliseconds(0)); };
    non_negative(o.connect_timeout);
    non_negative(o.request_timeout);
    non_negative(o.backoff_initial);
    non_negative(o.backoff_cap);
    non_negative(o.idle_timeout);
    o.max_attempts = std::max(o.max_attempts, 1u);
    o.max_in_flight_per_destination = std::max<std::size_t>(o.max_in_flight_per_destination, 1);
    o.max_pending = std::max<std::size_t>(o.max_pending, 1);
    if (!(o.backoff_factor >= 1.0)) o.backoff_factor = 1.0;  // also catches NaN
    return o;
  }

  void log(const std::string& line) const {
    if (warn) warn(line);
  }

  void submit(delivery_request req);
  void report_later(delivery_request req, delivery_result result, std::string detail);
  void schedule_pump();
  void pump(const std::string& key);
  void forget_if_unused(const std::string& key);

  connection_ptr take_idle(destination& d);
  void park(const std::string& key, connection_ptr conn);
  void close(connection& c);

  // An attempt is over. `result` set: the request is finished; else retry (or give up).
  void attempt_over(job_ptr j, std::optional<delivery_result> result, const std::string& detail,
                    std::optional<milliseconds> retry_after);
  void retry_later(job_ptr j, const std::string& reason, std::optional<milliseconds> retry_after);
  void retry_due(std::uint64_t serial);
  void finish(job_ptr j, delivery_result result, const std::string& detail,
              std::optional<milliseconds> retry_after = std::nullopt);
  milliseconds backoff(unsigned failed_attempts);

  void drop_retries_due_after_deadline();
  void grace_over();
  void check_stopped();
  void close_idle_connections();

  asio::io_context& io;
  const webhook_sender_options opt;
  delivery_observer* const observer;
  const delivery_warn_log warn;
  std::mt19937_64 rng;
  std::unordered_map<std::string, destination> destinations;
  // Raw pointers: an attempt registers while it owns a job and leaves when it is over; it is
  // kept alive by its own pending operations, not by this set.
  std::unordered_set<webhook_attempt*> attempts;
  std::unordered_map<std::uint64_t, std::unique_ptr<retry_wait>> waiting;
  std::uint64_t next_wait_serial = 0;
  std::size_t pending = 0;    // queued + in flight + waiting to retry
  std::size_t reporting = 0;  // outcomes decided in submit(), posted, not yet reported
  std::size_t open_connections = 0;
  webhook_sender_stats stats;
  bool pump_posted = false;
  bool stopping = false;
  bool forced = false;     // grace is over: whatever is left is dropped
  bool stopped = false;    // on_stopped has been scheduled
  bool destroyed = false;  // the webhook_sender is gone: no callback may run any more
  clock_type::time_point stop_deadline;
  asio::steady_timer stop_timer;
  std::function<void()> on_stopped;
};

// One attempt of one job: takes or opens a connection, sends, reads the answer, and hands the
// job back to the state with its outcome. Runs on the io thread; kept alive by its pending
// operations. Concluded exactly once (conclude_*); every completion after that is ignored.
class webhook_attempt : public std::enable_shared_from_this<webhook_attempt> {
 public:
  using state = webhook_sender::state;

  webhook_attempt(std::shared_ptr<state> st, job_ptr j)
      : st_(std::move(st)), job_(std::move(j)), resolver_(st_->io), resolve_timer_(st_->io) {
    st_->attempts.insert(this);
  }
  ~webhook_attempt() { st_->attempts.erase(this); }
  webhook_attempt(const webhook_attempt&) = delete;
  webhook_attempt& operator=(const webhook_attempt&) = delete;

  void start(connection_ptr idle) {
    const unsigned n = ++job_->attempts;
    ++st_->stats.attempts;
    message_ = make_message();
    if (idle) {
      ++st_->stats.connections_reused;
      conn_ = std::move(idle);
      reused_ = true;
    }
    if (st_->observer) st_->observer->on_attempt(job_->req, n);
    // The observer may have stopped the sender; a forced stop only comes from a timer, so the
    // attempt is still ours here.
    if (conn_) return send();
    connect();
  }

  // The grace period is over or the sender is destroyed: stop now. The job is reported dropped
  // unless the sender is destroyed.
  void abort() {
    if (concluded_) return;
    close_connection();
    resolver_.cancel();
    if (st_->destroyed) {
      release_slot();
      return;
    }
    conclude(delivery_result::dropped, "shutdown", std::nullopt);
  }

 private:
  void connect() {
    reused_ = false;
    conn_ = std::make_shared<connection>(st_->io);
    const auto deadline = clock_type::now() + st_->opt.connect_timeout;
    if (job_->literal) {
      conn_->stream.expires_at(deadline);
      return open(*job_->literal);
    }
    resolving_ = true;
    // The resolver's cancel() cannot interrupt a getaddrinfo() already running on Asio's
    // resolver thread, so the timeout concludes the attempt itself and the late answer is
    // ignored.
    resolve_timer_.expires_at(deadline);
    resolve_timer_.async_wait([self = shared_from_this()](const error_code& ec) {
      if (ec || self->concluded_ || !self->resolving_) return;
      self->resolving_ = false;
      self->resolver_.cancel();
      self->fail(describe("resolve", beast::error::timeout, self->st_->opt.connect_timeout));
    });
    resolver_.async_resolve(
        job_->host, job_->port, tcp::resolver::numeric_service,
        [self = shared_from_this(), deadline](const error_code& ec,
                                              const tcp::resolver::results_type& results) {
          if (self->concluded_ || !self->resolving_) return;
          self->resolving_ = false;
          self->resolve_timer_.cancel();
          if (ec) return self->fail(describe("resolve", ec, self->st_->opt.connect_timeout));
          self->conn_->stream.expires_at(deadline);
          self->conn_->stream.async_connect(
              results, [self](const error_code& cec, const tcp::endpoint&) { self->opened(cec); });
        });
  }

  void open(const tcp::endpoint& endpoint) {
    conn_->stream.async_connect(
        endpoint, [self = shared_from_this()](const error_code& ec) { self->opened(ec); });
  }

  void opened(const error_code& ec) {
    if (concluded_) return;
    if (ec) return fail(describe("connect", ec, st_->opt.connect_timeout));
    ++st_->stats.connections_opened;
    ++st_->open_connections;
    conn_->open = true;
    error_code ignored;
    conn_->stream.socket().set_option(tcp::no_delay(true), ignored);
    send();
  }

  void send() {
    conn_->buffer.clear();
    // One absolute deadline for writing the request and reading the whole response.
    conn_->stream.expires_after(st_->opt.request_timeout);
    http::async_write(conn_->stream, *message_,
                      [self = shared_from_this()](const error_code& ec, std::size_t) {
                        if (self->concluded_) return;
                        if (ec) {
                          if (self->reused_ && is_closed_by_peer(ec)) return self->resend();
                          return self->fail(describe("send", ec, self->st_->opt.request_timeout));
                        }
                        self->read_header();
                      });
  }

  message_ptr make_message() const {
    auto m = std::make_shared<http::request<http::string_body>>(http::verb::post, job_->target, 11);
    m->set(http::field::host, job_->host_header);
    m->set(http::field::user_agent, st_->opt.user_agent);
    m->set(http::field::content_type, "application/json");
    m->set("Idempotency-Key", job_->req.id);
    m->set(http::field::connection, "keep-alive");
    m->body() = job_->req.body;
    m->prepare_payload();
    return m;
  }

  // The idle connection was dead on arrival: same attempt, fresh connection.
  void resend() {
    ++st_->stats.stale_resends;
    close_connection();
    conn_.reset();
    connect();
  }

  void read_header() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        st_->opt.max_response_header, std::numeric_limits<std::uint32_t>::max())));
    parser_->body_limit(static_cast<std::uint64_t>(st_->opt.max_response_body));
    http::async_read_header(
        conn_->stream, conn_->buffer, *parser_,
        [self = shared_from_this()](const error_code& ec, std::size_t n) {
          if (self->concluded_) return;
          // A Content-Length over the body limit fails the header read itself, header parsed.
          if (ec && self->parser_->is_header_done()) return self->on_response(false);
          if (ec) {
            const bool nothing_came = n == 0 && self->conn_->buffer.size() == 0;
            if (self->reused_ && nothing_came && is_closed_by_peer(ec)) return self->resend();
            return self->fail(describe("response", ec, self->st_->opt.request_timeout));
          }
          if (self->parser_->is_done()) return self->on_response(true);
          http::async_read(self->conn_->stream, self->conn_->buffer, *self->parser_,
                           [self](const error_code& bec, std::size_t) {
                             if (self->concluded_) return;
                             self->on_response(!bec);
                           });
        });
  }

  void on_response(bool complete) {
    const auto& res = parser_->get();
    const unsigned status = res.result_int();
    if (!complete) ++st_->stats.responses_truncated;
    // A 1xx is followed by another response on the wire: never reuse after one.
    const bool reusable =
        complete && status >= 200 && parser_->keep_alive() && conn_->buffer.size() == 0;
    if (reusable && conn_->open && !st_->forced) {
      conn_->stream.expires_never();
      st_->park(job_->dest_key, std::move(conn_));
    } else {
      close_connection();
    }
    conn_.reset();

    const std::string code = "HTTP " + std::to_string(status);
    if (status >= 200 && status < 300) return conclude(delivery_result::delivered, code, {});
    if (status == 429 || (status >= 500 && status < 600)) {
      return conclude_retry(code, parse_retry_after(res[http::field::retry_after]));
    }
    const std::string snippet = body_snippet(res.body());
    conclude(delivery_result::rejected, snippet.empty() ? code : code + ": " + snippet, {});
  }

  void fail(const std::string& reason) {
    close_connection();
    conclude_retry(reason, std::nullopt);
  }

  void conclude_retry(const std::string& reason, std::optional<milliseconds> retry_after) {
    conclude(std::nullopt, reason, retry_after);
  }

  void conclude(std::optional<delivery_result> result, const std::string& detail,
                std::optional<milliseconds> retry_after) {
    const std::shared_ptr<state> st = st_;
    job_ptr j = release_slot();
    const std::string key = j->dest_key;
    st->attempt_over(std::move(j), result, detail, retry_after);
    st->pump(key);
    st->forget_if_unused(key);
    st->check_stopped();
  }

  // Marks the attempt over and frees its concurrency slot; returns the job.
  job_ptr release_slot() {
    concluded_ = true;
    resolve_timer_.cancel();
    st_->attempts.erase(this);
    const auto it = st_->destinations.find(job_->dest_key);
    if (it != st_->destinations.end() && it->second.in_flight > 0) --it->second.in_flight;
    return std::move(job_);
  }

  void close_connection() {
    if (conn_) st_->close(*conn_);
  }

  std::shared_ptr<state> st_;
  job_ptr job_;
  // Owned here rather than by the job: a write cancelled by abort() still references it after
  // the job has been handed back.
  message_ptr message_;
  tcp::resolver resolver_;
  asio::steady_timer resolve_timer_;
  connection_ptr conn_;
  std::optional<http::response_parser<http::string_body>> parser_;
  bool reused_ = false;
  bool resolving_ = false;
  bool concluded_ = false;
};

// --- state ---------------------------------------------------------------------------------------

void webhook_sender::state::submit(delivery_request req) {
  ++stats.submitted;
  if (stopping) return report_later(std::move(req), delivery_result::dropped, "shut down");
  if (pending >= opt.max_pending) {
    log("webhook delivery dropped id=" + body_snippet(req.id) +
        " reason=\"queue full\" max=" + std::to_string(opt.max_pending));
    return report_later(std::move(req), delivery_result::dropped, "queue full");
  }
  auto url = parse_http_url(req.url);
  if (!url.url) return report_later(std::move(req), delivery_result::rejected, url.error);
  if (req.id.empty() || std::any_of(req.id.begin(), req.id.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
      })) {
    return report_later(std::move(req), delivery_result::rejected,
                        "invalid id (empty or with control characters)");
  }

  auto j = std::make_unique<job>();
  http_url& u = *url.url;
  j->host = u.host;
  j->port = std::to_string(u.port);
  const bool v6 = u.host.find(':') != std::string::npos;
  j->dest_key = (v6 ? "[" + u.host + "]" : u.host) + ":" + j->port;
  error_code not_literal;
  const auto address = asio::ip::make_address(u.host, not_literal);
  if (!not_literal) j->literal.emplace(address, u.port);
  j->target = std::move(u.target);
  j->host_header = std::move(u.host_header);
  j->counted = true;
  j->req = std::move(req);

  const std::string key = j->dest_key;
  destinations[key].queue.push_back(std::move(j));
  ++pending;
  schedule_pump();
}

// Outcomes known in submit() are reported from a posted task: the observer never runs inside
// submit().
void webhook_sender::state::report_later(delivery_request req, delivery_result result,
                                         std::string detail) {
  ++reporting;
  asio::post(
      io, [weak = weak_from_this(), r = std::move(req), result, d = std::move(detail)]() mutable {
        const auto s = weak.lock();
        if (!s || s->destroyed) return;
        --s->reporting;
        auto j = std::make_unique<job>();
        j->req = std::move(r);
        s->finish(std::move(j), result, d);
        s->check_stopped();
      });
}

void webhook_sender::state::schedule_pump() {
  if (pump_posted) return;
  pump_posted = true;
  asio::post(io, [weak = weak_from_this()] {
    const auto s = weak.lock();
    if (!s || s->destroyed) return;
    s->pump_posted = false;
    // Keys first: an observer called from pump() may submit to a new destination (rehash).
    std::vector<std::string> keys;
    keys.reserve(s->destinations.size());
    for (const auto& [key, d] : s->destinations) {
      if (!d.queue.empty()) keys.push_back(key);
    }
    for (const auto& key : keys) s->pump(key);
  });
}

void webhook_sender::state::pump(const std::string& key) {
  while (!forced && !destroyed) {
    const auto it = destinations.find(key);
    if (it == destinations.end()) return;
    destination& d = it->second;
    if (d.queue.empty() || d.in_flight >= opt.max_in_flight_per_destination) return;
    job_ptr j = std::move(d.queue.front());
    d.queue.pop_front();
    ++d.in_flight;
    connection_ptr idle = take_idle(d);
    std::make_shared<webhook_attempt>(shared_from_this(), std::move(j))->start(std::move(idle));
  }
}

void webhook_sender::state::forget_if_unused(const std::string& key) {
  const auto it = destinations.find(key);
  if (it == destinations.end()) return;
  const destination& d = it->second;
  if (d.queue.empty() && d.in_flight == 0 && d.idle.empty()) destinations.erase(it);
}

connection_ptr webhook_sender::state::take_idle(destination& d) {
  if (d.idle.empty()) return nullptr;
  connection_ptr c = std::move(d.idle.back());
  d.idle.pop_back();
  ++c->idle_generation;
  c->idle_timer.cancel();
  return c;
}

void webhook_sender::state::park(const std::string& key, connection_ptr conn) {
  destination& d = destinations[key];
  if (opt.idle_timeout.count() == 0 || d.idle.size() >= opt.max_in_flight_per_destination) {
    return close(*conn);
  }
  const std::uint64_t generation = ++conn->idle_generation;
  conn->idle_timer.expires_after(opt.idle_timeout);
  conn->idle_timer.async_wait([weak = weak_from_this(), weak_conn = std::weak_ptr(conn), key,
                               generation](const error_code& ec) {
    const auto s = weak.lock();
    const auto c = weak_conn.lock();
    if (ec || !s || !c || s->destroyed || c->idle_generation != generation) return;
    const auto it = s->destinations.find(key);
    if (it == s->destinations.end()) return;
    auto& idle = it->second.idle;
    const auto pos = std::find(idle.begin(), idle.end(), c);
    if (pos == idle.end()) return;
    ++s->stats.idle_closed;
    s->close(*c);
    idle.erase(pos);
    s->forget_if_unused(key);
  });
  d.idle.push_back(std::move(conn));
}

void webhook_sender::state::close(connection& c) {
  c.idle_timer.cancel();
  error_code ignored;
  c.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  c.stream.close();
  if (c.open) {
    c.open = false;
    --open_connections;
  }
}

void webhook_sender::state::attempt_over(job_ptr j, std::optional<delivery_result> result,
                                         const std::string& detail,
                                         std::optional<milliseconds> retry_after) {
  if (result) return finish(std::move(j), *result, detail);
  if (forced) return finish(std::move(j), delivery_result::dropped, "shutdown");
  retry_later(std::move(j), detail, retry_after);
}

milliseconds webhook_sender::state::backoff(unsigned failed_attempts) {
  const double cap = static_cast<double>(opt.backoff_cap.count());
  const double exponent = static_cast<double>(failed_attempts > 0 ? failed_attempts - 1 : 0);
  const double ceiling =
      std::min(cap, static_cast<double>(opt.backoff_initial.count()) *
                        std::pow(opt.backoff_factor, exponent));  // inf for huge n: capped
  std::uniform_int_distribution<std::int64_t> jitter(0, static_cast<std::int64_t>(ceiling));
  return milliseconds(jitter(rng));
}

void webhook_sender::state::retry_later(job_ptr j, const std::string& reason,
                                        std::optional<milliseconds> retry_after) {
  if (j->attempts >= opt.max_attempts) {
    return finish(
        std::move(j), delivery_result::gave_up, reason,
        retry_after ? std::optional(std::min(*retry_after, opt.backoff_cap)) : std::nullopt);
  }
  const milliseconds delay =
      retry_after ? std::min(*retry_after, opt.backoff_cap) : backoff(j->attempts);
  if (stopping && clock_type::now() + delay >= stop_deadline) {
    return finish(std::move(j), delivery_result::dropped,
                  "shutdown: next retry after the grace period (last error: " + reason + ")");
  }
  ++stats.retries;
  log("webhook delivery retry id=" + body_snippet(j->req.id) + " destination=" + j->dest_key +
      " attempt=" + std::to_string(j->attempts) + " reason=\"" + reason +
      "\" delay_ms=" + std::to_string(delay.count()));

  const std::uint64_t serial = next_wait_serial++;
  const unsigned attempt_no = j->attempts;
  auto wait = std::make_unique<retry_wait>(io, std::move(j));
  wait->timer.expires_after(delay);
  wait->timer.async_wait([weak = weak_from_this(), serial](const error_code& ec) {
    const auto s = weak.lock();
    if (ec || !s || s->destroyed) return;
    s->retry_due(serial);
  });
  const delivery_request& req = wait->waiting->req;
  waiting.emplace(serial, std::move(wait));
  if (observer) observer->on_retry(req, attempt_no, reason, delay);
}

void webhook_sender::state::retry_due(std::uint64_t serial) {
  const auto it = waiting.find(serial);
  if (it == waiting.end()) return;
  job_ptr j = std::move(it->second->waiting);
  waiting.erase(it);
  const std::string key = j->dest_key;
  destinations[key].queue.push_front(std::move(j));  // older work first
  pump(key);
}

void webhook_sender::state::finish(job_ptr j, delivery_result result, const std::string& detail,
                                   std::optional<milliseconds> retry_after) {
  if (j->counted) --pending;
  switch (result) {
    case delivery_result::delivered:
      ++stats.delivered;
      break;
    case delivery_result::rejected:
      ++stats.rejected;
      break;
    case delivery_result::gave_up:
      ++stats.gave_up;
      break;
    case delivery_result::dropped:
      ++stats.dropped;
      break;
  }
  if (result != delivery_result::delivered && detail != "queue full") {
    // "queue full" was logged by submit(), with the bound. With a single attempt allowed the
    // caller does the retrying (the outbox): this attempt failed, nothing was given up yet.
    const std::string what = result == delivery_result::gave_up && opt.max_attempts == 1
                                 ? std::string("attempt failed")
                                 : std::string(to_string(result));
    log("webhook delivery " + what + " id=" + body_snippet(j->req.id) +
        (j->dest_key.empty() ? "" : " destination=" + j->dest_key) +
        " attempts=" + std::to_string(j->attempts) + " detail=\"" + detail + "\"");
  }
  if (observer) {
    observer->on_done(j->req, result, j->attempts, clock_type::now() - j->req.received_at, detail,
                      retry_after);
  }
}

void webhook_sender::state::drop_retries_due_after_deadline() {
  std::vector<std::uint64_t> late;
  for (const auto& [serial, w] : waiting) {
    if (w->timer.expiry() >= stop_deadline) late.push_back(serial);
  }
  for (const auto serial : late) {
    const auto it = waiting.find(serial);
    if (it == waiting.end()) continue;
    job_ptr j = std::move(it->second->waiting);
    it->second->timer.cancel();
    waiting.erase(it);
    finish(std::move(j), delivery_result::dropped, "shutdown: next retry after the grace period");
  }
}

void webhook_sender::state::grace_over() {
  forced = true;
  // Copies: each drop runs the observer, which may submit (and is answered "shut down").
  const std::vector<webhook_attempt*> running(attempts.begin(), attempts.end());
  for (webhook_attempt* a : running) {
    // Alive: it is registered, and it leaves the set before it can be freed.
    if (attempts.count(a)) a->abort();
  }
  std::vector<job_ptr> left;
  for (auto& [serial, w] : waiting) {
    w->timer.cancel();
    left.push_back(std::move(w->waiting));
  }
  waiting.clear();
  for (auto& [key, d] : destinations) {
    for (auto& j : d.queue) left.push_back(std::move(j));
    d.queue.clear();
  }
  for (auto& j : left) finish(std::move(j), delivery_result::dropped, "shutdown");
  check_stopped();
}

void webhook_sender::state::close_idle_connections() {
  for (auto& [key, d] : destinations) {
    for (auto& c : d.idle) close(*c);
    d.idle.clear();
  }
  std::erase_if(destinations, [](const auto& kv) {
    return kv.second.queue.empty() && kv.second.in_flight == 0 && kv.second.idle.empty();
  });
}

void webhook_sender::state::check_stopped() {
  if (!stopping || stopped || destroyed || pending > 0 || reporting > 0) return;
  stopped = true;
  stop_timer.cancel();
  close_idle_connections();
  if (!on_stopped) return;
  asio::post(io, [weak = weak_from_this(), cb = std::move(on_stopped)] {
    const auto s = weak.lock();
    if (s && !s->destroyed) cb();
  });
  on_stopped = nullptr;
}

// --- webhook_sender ------------------------------------------------------------------------------

webhook_sender::webhook_sender(asio::io_context& io, webhook_sender_options options,
                               delivery_observer* observer, delivery_warn_log warn)
    : state_(std::make_shared<state>(io, std::move(options), observer, std::move(warn))) {}

webhook_sender::~webhook_sender() {
  state& s = *state_;
  s.destroyed = true;
  s.stop_timer.cancel();
  const std::vector<webhook_attempt*> running(s.attempts.begin(), s.attempts.end());
  for (webhook_attempt* a : running) {
    if (s.attempts.count(a)) a->abort();
  }
  for (auto& [serial, w] : s.waiting) w->timer.cancel();
  s.waiting.clear();
  for (auto& [key, d] : s.destinations) {
    for (auto& c : d.idle) s.close(*c);
  }
  s.destinations.clear();
  s.on_stopped = nullptr;
}

void webhook_sender::submit(delivery_request req) { state_->submit(std::move(req)); }

std::size_t webhook_sender::pending() const { return state_->pending; }

void webhook_sender::stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  state& s = *state_;
  if (s.stopping) return;
  s.stopping = true;
  s.stop_deadline = clock_type::now() + std::max(grace, milliseconds(0));
  s.on_stopped = std::move(on_stopped);
  // Everything that reports is posted: the observer never runs inside stop().
  asio::post(s.io, [weak = std::weak_ptr<state>(state_)] {
    const auto st = weak.lock();
    if (!st || st->destroyed) return;
    st->drop_retries_due_after_deadline();
    st->check_stopped();
  });
  s.stop_timer.expires_at(s.stop_deadline);
  s.stop_timer.async_wait([weak = std::weak_ptr<state>(state_)](const error_code& ec) {
    const auto st = weak.lock();
    if (ec || !st || st->destroyed || st->stopped) return;
    st->grace_over();
  });
}

const webhook_sender_stats& webhook_sender::stats() const { return state_->stats; }

std::size_t webhook_sender::connection_count() const { return state_->open_connections; }

}  // namespace alertrouter::daemon
