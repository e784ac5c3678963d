#include "daemon/http_server.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <exception>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "daemon/warn_limiter.h"

namespace alertrouter::daemon {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// First read of a request: big enough for a typical Alertmanager webhook (header and body) in one
// recv, small enough that 1024 idle connections stay cheap.
constexpr std::size_t first_read_size = 16 * 1024;
// Bytes the buffer may hold beyond max_header: one Beast read (64 KiB) of body or of pipelined
// requests. The parser consumes body bytes as they come, so this bounds the buffer.
constexpr std::size_t buffer_slack = 64 * 1024;
// Upper bound on the lingering close (see http_connection::linger).
constexpr std::chrono::milliseconds max_linger{1000};
// Pause before accepting again after the process ran out of descriptors or memory.
constexpr std::chrono::milliseconds accept_backoff{100};

constexpr std::string_view continue_100 = "HTTP/1.1 100 Continue\r\n\r\n";

bool ascii_iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

std::string endpoint_text(const tcp::endpoint& ep) {
  const auto addr = ep.address();
  std::string text = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return text + ":" + std::to_string(ep.port());
}

http_response plain(unsigned status, std::string body) {
  http_response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// Without the optional white space (spaces and tabs) around a field value or list element.
std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool has_no_body(unsigned status) { return status == 204 || status == 304; }

}  // namespace

std::string_view http_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (ascii_iequals(n, name)) return v;
  }
  return {};
}

class http_connection;

struct http_server::state : std::enable_shared_from_this<http_server::state> {
  struct route {
    std::vector<std::string> methods;
    std::string allow;  // methods joined for the Allow field
    http_async_handler handler;
    http_header_check check;  // from check_before_body(); may be empty
  };

  state(asio::io_context& io_in, http_limits limits_in, http_warn_log warn_in)
      : io(io_in),
        limits(limits_in),
        warn(std::move(warn_in)),
        acceptor(io_in),
        accept_retry(io_in),
        stop_timer(io_in) {}

  // Writes a warn line unless they come faster than limits.warnings_per_second.
  void log(std::string line) {
    if (!warn) return;
    const std::optional<std::string> admitted = warn_limit.admit(std::move(line));
    stats.warnings_suppressed = warn_limit.suppressed();
    if (admitted) warn(*admitted);
  }

  void do_accept();
  void on_accept(const error_code& ec, tcp::socket socket);
  // Answers `req` through `respond`, now (404, 405, a synchronous handler) or later.
  void dispatch(http_request& req, http_responder respond);
  void add(http_connection* c) {
    connections.insert(c);
    stats.connections_open = connections.size();
  }
  void remove(http_connection* c);
  void fire_stopped_soon();

  asio::io_context& io;
  const http_limits limits;
  const http_warn_log warn;
  http_refusal_observer refused;
  tcp::acceptor acceptor;
  asio::steady_timer accept_retry;
  asio::steady_timer stop_timer;
  tcp::endpoint bound;
  std::unordered_map<std::string, route> routes;
  // Raw pointers: a connection registers in its constructor and leaves in its destructor; it is
  // kept alive by its own pending operations, not by this set.
  std::unordered_set<http_connection*> connections;
  std::size_t bodies_in_flight = 0;  // bytes reserved by connections reading a body
  http_server_stats stats;
  warn_limiter warn_limit{limits.warnings_per_second};
  bool stopping = false;
  bool destroyed = false;  // the http_server is gone; its handlers must not run any more
  std::function<void()> on_stopped;
};

// One accepted socket. Reads requests one at a time (pipelined bytes wait in buffer_), answers
// each, and owns its timers. All of it runs on the single io thread.
class http_connection : public std::enable_shared_from_this<http_connection> {
 public:
  enum class phase { idle, reading, handling, writing, lingering, closed };

  http_connection(std::shared_ptr<http_server::state> server, tcp::socket socket,
                  std::string remote)
      : server_(std::move(server)),
        stream_(std::move(socket)),
        buffer_(server_->limits.max_header + buffer_slack),
        remote_(std::move(remote)) {
    server_->add(this);
  }
  ~http_connection() {
    release_body();
    server_->remove(this);
  }
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  void start() { wait_for_request(); }

  friend class http_responder;

  // Server shutdown: connections between requests go now; the others finish their request.
  void close_if_idle() {
    if (phase_ == phase::idle || phase_ == phase::lingering) close();
  }

  // Waiting for a request with nothing of it read (a fresh connection, or keep-alive between
  // requests), since when: what the server may close to make room for a new connection.
  bool idle() const { return phase_ == phase::idle; }
  std::chrono::steady_clock::time_point idle_since() const { return idle_since_; }
  const std::string& remote() const { return remote_; }

  void close() {
    phase_ = phase::closed;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
  }

 private:
  const http_limits& limits() const { return server_->limits; }

  void wait_for_request() {
    if (server_->stopping || server_->destroyed) return close();
    if (buffer_.size() > 0) return read_header();  // a pipelined request is already here
    phase_ = phase::idle;
    idle_since_ = std::chrono::steady_clock::now();
    stream_.expires_after(limits().idle_timeout);
    stream_.async_read_some(buffer_.prepare(first_read_size),
                            [self = shared_from_this()](const error_code& ec, std::size_t n) {
                              self->on_first_bytes(ec, n);
                            });
  }

  void on_first_bytes(const error_code& ec, std::size_t n) {
    buffer_.commit(n);
    if (ec) {
      if (ec == beast::error::timeout) ++server_->stats.idle_timeouts;
      return close();
    }
    if (server_->stopping || server_->destroyed) return close();
    read_header();
  }

  void read_header() {
    phase_ = phase::reading;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits().max_header, std::numeric_limits<std::uint32_t>::max())));
    // A Content-Length over the limit fails the header read itself, so 413 goes out before any
    // body byte is read.
    parser_->body_limit(static_cast<std::uint64_t>(limits().max_body));
    // One deadline for the whole request, header and body: tcp_stream's expiry is absolute and
    // applies to every operation until it is set again.
    stream_.expires_after(limits().read_timeout);
    // The common case: the whole request (header and body) came with the first read. Parse it
    // here rather than through Beast's read operations, each of which would complete through
    // the io_context's queue.
    if (buffer_.size() > 0) {
      error_code ec;
      parse_buffered(ec);
      if (ec) return on_read_error(ec);
      if (parser_->is_header_done()) return on_header(ec);
    }
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_header(ec); });
  }

  // Feeds the buffered bytes to the parser, as far as they go: a whole request, a header, or
  // nothing (an incomplete header stays buffered for Beast's read). Leaves `ec` clear unless the
  // bytes are refused (too large, malformed).
  void parse_buffered(error_code& ec) {
    parser_->eager(true);
    while (buffer_.size() > 0 && !parser_->is_done()) {
      const std::size_t used = parser_->put(buffer_.data(), ec);
      buffer_.consume(used);
      if (ec == http::error::need_more) {
        ec = {};
        return;
      }
      if (ec || used == 0) return;
    }
  }

  void on_header(const error_code& ec) {
    if (ec) return on_read_error(ec);
    if (refuse_transfer_coding()) return;
    if (parser_->is_done()) return on_request();
    if (refused_before_body()) return;
    if (!reserve_body()) return;
    const auto& req = parser_->get();
    if (req.version() >= 11 && ascii_iequals(req[http::field::expect], "100-continue")) {
      // curl sends this for larger bodies and would otherwise wait a second before sending.
      asio::async_write(stream_, asio::buffer(continue_100.data(), continue_100.size()),
                        [self = shared_from_this()](const error_code& wec, std::size_t) {
                          if (wec) return self->close();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  // The route's check_before_body() hook, if it has one and the method is the route's (else the
  // request goes on to its 404 or 405). True when the check refused the request.
  bool refused_before_body() {
    const auto& msg = parser_->get();
    const std::string_view target = msg.target();
    const auto q = target.find('?');
    const auto it = server_->routes.find(std::string(target.substr(0, q)));
    if (it == server_->routes.end() || !it->second.check) return false;
    const std::string_view method = msg.method_string();
    const auto& methods = it->second.methods;
    if (std::find(methods.begin(), methods.end(), method) == methods.end()) return false;

    http_request head;
    head.method = std::string(method);
    head.path = it->first;
    if (q != std::string_view::npos) head.query = std::string(target.substr(q + 1));
    for (const auto& f : msg) {
      head.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    head.remote = remote_;
    std::optional<http_response> refusal = it->second.check(head);
    if (!refusal) return false;
    refuse(std::move(*refusal), "refused before its body was read");
    return true;
  }

  // RFC 9112 6.1 and 6.3: a request whose framing only chunked transfer coding defines. Beast
  // reads a request with another coding (gzip, identity, "chunked, gzip") as having no body,
  // so what the client sent as its body would be parsed as the next request: refused, and the
  // connection closed, before any of it is read. An HTTP/1.0 request with Transfer-Encoding
  // likewise (its framing is faulty, whatever Content-Length says). True when refused.
  bool refuse_transfer_coding() {
    const auto& req = parser_->get();
    const auto codings = req.equal_range(http::field::transfer_encoding);
    if (codings.first == codings.second) return false;
    unsigned status = 0;
    std::string reason;
    if (req.version() < 11) {
      status = 400;
      reason = "Transfer-Encoding in an HTTP/1.0 request";
    } else if (std::next(codings.first) != codings.second ||
               !ascii_iequals(trim(codings.first->value()), "chunked")) {
      status = 501;
      reason = "transfer coding other than chunked";
    } else {
      return false;
    }
    ++server_->stats.malformed_requests;
    refuse(plain(status, "request refused: " + reason + "\n"), reason);
    return true;
  }

  // Counts the body about to be read against max_bodies_in_flight (Beast's string body reserves
  // a whole Content-Length as soon as the header is parsed), or answers 503 and closes. True
  // when the body may be read.
  bool reserve_body() {
    const auto length = parser_->content_length();
    const std::size_t need =
        length ? static_cast<std::size_t>(std::min<std::uint64_t>(*length, limits().max_body))
               : limits().max_body;  // chunked: as large as it may grow
    if (server_->bodies_in_flight + need > limits().max_bodies_in_flight) {
      ++server_->stats.bodies_deferred;
      http_response res = plain(503, "server busy reading other requests; retry\n");
      res.headers.emplace_back("Retry-After", "1");
      refuse(std::move(res), "too many request bodies being read",
             " bytes=" + std::to_string(need) +
                 " in_flight=" + std::to_string(server_->bodies_in_flight) +
                 " limit=" + std::to_string(limits().max_bodies_in_flight));
      return false;
    }
    body_reserved_ = need;
    server_->bodies_in_flight += need;
    return true;
  }

  // A request the server answers itself once its header is read (413, 501, 503, ...): logged
  // with its path, told to the refusal observer, answered with `res` and closed.
  void refuse(http_response res, std::string_view reason, const std::string& details = {}) {
    const std::string_view target =
        parser_ ? std::string_view(parser_->get().target()) : std::string_view();
    const std::string path(target.substr(0, target.find('?')));
    server_->log("http request refused status=" + std::to_string(res.status) + " reason=\"" +
                 std::string(reason) + "\" path=" + path + details + " remote=" + remote_);
    if (server_->refused) server_->refused(path, res.status);
    reply_and_close(std::move(res));
  }

  void release_body() {
    server_->bodies_in_flight -= body_reserved_;
    body_reserved_ = 0;
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const error_code& ec, std::size_t) {
                       if (ec) return self->on_read_error(ec);
                       self->on_request();
                     });
  }

  void on_read_error(const error_code& ec) {
    release_body();
    if (ec == beast::error::timeout) {
      ++server_->stats.read_timeouts;
      server_->log("http request read timeout remote=" + remote_ +
                   " timeout_ms=" + std::to_string(limits().read_timeout.count()));
      return close();
    }
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      ++server_->stats.headers_too_large;
      server_->log("http request refused status=431 reason=\"header too large\" remote=" + remote_);
      if (server_->refused) server_->refused("", 431);
      return reply_and_close(plain(431, "request header too large\n"));
    }
    if (ec == http::error::body_limit) {
      // The header was read whole (the body limit is checked after it), so the path is known.
      ++server_->stats.bodies_too_large;
      return refuse(plain(413, "request body too large (limit " +
                                   std::to_string(limits().max_body) + " bytes)\n"),
                    "body too large", " limit=" + std::to_string(limits().max_body));
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
      return close();  // the client went away mid-request; nobody to answer
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
      ++server_->stats.malformed_requests;
      server_->log("http request refused status=400 reason=\"" + ec.message() +
                   "\" remote=" + remote_);
      if (server_->refused) server_->refused("", 400);
      return reply_and_close(plain(400, "malformed request: " + ec.message() + "\n"));
    }
    close();  // reset, aborted by shutdown: the socket is gone
  }

  void on_request() {
    release_body();
    if (server_->destroyed) return close();
    auto msg = parser_->release();
    parser_.reset();

    http_request req;
    req.method = std::string(msg.method_string());
    const std::string_view target = msg.target();
    const auto q = target.find('?');
    req.path = std::string(target.substr(0, q));
    if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));
    req.headers.reserve(static_cast<std::size_t>(std::distance(msg.begin(), msg.end())));
    for (const auto& f : msg) {
      req.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    }
    req.body = std::move(msg.body());
    req.remote = remote_;

    keep_alive_ = msg.keep_alive();
    version_ = msg.version();
    head_ = msg.method() == http::verb::head;
    phase_ = phase::handling;
    server_->dispatch(req, http_responder(shared_from_this()));
  }

  // The handler's answer, from http_responder::send (or its destructor).
  void respond(http_response res) {
    if (phase_ != phase::handling) return;  // closed meanwhile: nobody to answer
    // Checked now, not when the request came: a stop() in between closes this one too.
    write(std::move(res), !keep_alive_ || server_->stopping, version_);
  }

  void reply_and_close(http_response res) {
    head_ = false;  // the server's own refusals come before any method is known to be HEAD
    write(std::move(res), true, 11);
  }

  void write(http_response res, bool close_after, unsigned version) {
    if (res.status < 200 || res.status > 599) {
      // 1xx would break the framing; anything outside 100..599 is not HTTP.
      server_->log("http handler returned invalid status=" + std::to_string(res.status));
      res = plain(500, "internal error\n");
    }
    serialize(res, close_after, version);
    close_after_write_ = close_after;
    ++server_->stats.responses_by_class[res.status / 100];

    phase_ = phase::writing;
    stream_.expires_after(limits().write_timeout);
    // Header and body in one buffer, one write; with TCP_NODELAY it leaves now.
    asio::async_write(
        stream_, asio::buffer(out_),
        [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_write(ec); });
  }

  // The response as HTTP/1.x bytes in out_: status line, Content-Type and Content-Length (none
  // for 204 and 304), the handler's extra fields, Connection when it differs from the version's
  // default, then the body, except for a HEAD request (RFC 9110 9.3.2: the fields a GET would
  // get, Content-Length included, and no content).
  void serialize(const http_response& res, bool close_after, unsigned version) {
    out_.clear();
    out_ += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    out_ += std::to_string(res.status);
    out_ += ' ';
    out_ += http::obsolete_reason(static_cast<http::status>(res.status));
    out_ += "\r\n";
    const bool body = !has_no_body(res.status);
    if (body && !res.content_type.empty()) add_field("Content-Type", res.content_type);
    if (body) add_field("Content-Length", std::to_string(res.body.size()));
    for (const auto& [name, value] : res.headers) add_field(name, value);
    if (close_after && version >= 11) add_field("Connection", "close");
    if (!close_after && version < 11) add_field("Connection", "keep-alive");
    out_ += "\r\n";
    if (body && !head_) out_ += res.body;
  }

  void add_field(std::string_view name, std::string_view value) {
    // A field a handler built from request data must not split the response: CR, LF and NUL
    // never reach the wire.
    constexpr std::string_view forbidden("\r\n\0", 3);
    if (name.empty() || name.find_first_of(forbidden) != std::string_view::npos ||
        name.find_first_of(" :") != std::string_view::npos ||
        value.find_first_of(forbidden) != std::string_view::npos) {
      server_->log("http handler returned an invalid header field, dropped: name=\"" +
                   std::string(name.substr(0, 64)) + "\"");
      return;
    }
    out_ += name;
    out_ += ": ";
    out_ += value;
    out_ += "\r\n";
  }

  void on_write(const error_code& ec) {
    if (out_.capacity() > first_read_size) out_ = std::string();
    if (ec) {
      if (ec == beast::error::timeout) {
        ++server_->stats.write_timeouts;
        server_->log("http response write timeout remote=" + remote_ +
                     " timeout_ms=" + std::to_string(limits().write_timeout.count()));
      }
      return close();
    }
    if (close_after_write_) return linger();
    wait_for_request();
  }

  // Closing a socket with unread input makes the kernel send RST, which can destroy the response
  // we just wrote before the client reads it (a 413 or 431 sent while the client is still
  // sending). So: half-close, then read and discard until the client closes, bounded in time.
  void linger() {
    phase_ = phase::lingering;
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    buffer_.clear();
    stream_.expires_after(std::min(limits().read_timeout, max_linger));
    drain();
  }

  void drain() {
    stream_.async_read_some(buffer_.prepare(first_read_size),
                            [self = shared_from_this()](const error_code& ec, std::size_t) {
                              self->buffer_.clear();
                              if (ec || self->phase_ != phase::lingering) return self->close();
                              self->drain();
                            });
  }

  std::shared_ptr<http_server::state> server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string out_;  // the response being written
  std::string remote_;
  phase phase_ = phase::idle;
  bool close_after_write_ = false;
  bool keep_alive_ = true;  // of the request being handled
  unsigned version_ = 11;
  bool head_ = false;  // the request being answered is HEAD
  std::chrono::steady_clock::time_point idle_since_;
  std::size_t body_reserved_ = 0;  // counted in the server's bodies_in_flight
};

http_responder::~http_responder() {
  if (!conn_) return;
  // While a handler's exception unwinds, dispatch() logs and counts it.
  if (std::uncaught_exceptions() == 0) {
    auto& server = *conn_->server_;
    ++server.stats.handler_errors;
    server.log("http handler did not answer remote=" + conn_->remote_);
  }
  send(plain(500, "internal error\n"));
}

http_responder::http_responder(http_responder&& other) noexcept : conn_(std::move(other.conn_)) {}

http_responder& http_responder::operator=(http_responder&& other) noexcept {
  if (this != &other) {
    if (conn_) {
      http_responder replaced(std::move(*this));  // answers 500 as it goes
    }
    conn_ = std::move(other.conn_);
  }
  return *this;
}

void http_responder::send(http_response res) {
  if (!conn_) return;
  const std::shared_ptr<http_connection> conn = std::move(conn_);
  conn_.reset();
  conn->respond(std::move(res));
}

void http_server::state::do_accept() {
  acceptor.async_accept(io, [self = shared_from_this()](const error_code& ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void http_server::state::on_accept(const error_code& ec, tcp::socket socket) {
  if (!acceptor.is_open() || ec == asio::error::operation_aborted) return;
  if (ec) {
    ++stats.accept_errors;
    log("http accept failed error=\"" + ec.message() + "\"");
    const int e = ec.value();
    if (ec.category() == boost::system::system_category() &&
        (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)) {
      // Accepting again at once would spin: the pending connection is still there.
      accept_retry.expires_after(accept_backoff);
      accept_retry.async_wait([self = shared_from_this()](const error_code& wec) {
        if (!wec && self->acceptor.is_open()) self->do_accept();
      });
      return;
    }
    return do_accept();
  }

  error_code ignored;
  const auto peer = socket.remote_endpoint(ignored);
  bool made_room = false;
  if (!stopping && connections.size() >= limits.max_connections) {
    // Full. Connections that sit idle (silent fresh ones, keep-alive ones between requests)
    // must not lock everyone else out: the one idle longest makes room, as a server may close
    // an idle connection at any time. Only when every connection is busy with a request is the
    // new one refused.
    http_connection* oldest = nullptr;
    for (http_connection* c : connections) {
      if (c->idle() && (oldest == nullptr || c->idle_since() < oldest->idle_since())) oldest = c;
    }
    if (oldest != nullptr) {
      ++stats.connections_evicted;
      log("http idle connection closed to admit a new one reason=max_connections max=" +
          std::to_string(limits.max_connections) + " closed=" + oldest->remote() +
          " admitted=" + endpoint_text(peer));
      // Its pending read completes, aborted, and only then does it leave `connections`.
      oldest->close();
      made_room = true;
    }
  }
  if (stopping || (connections.size() >= limits.max_connections && !made_room)) {
    ++stats.connections_rejected;
    log("http connection rejected reason=max_connections max=" +
        std::to_string(limits.max_connections) + " remote=" + endpoint_text(peer));
    socket.close(ignored);
  } else {
    ++stats.connections_accepted;
    socket.set_option(tcp::no_delay(true), ignored);
    std::make_shared<http_connection>(shared_from_this(), std::move(socket), endpoint_text(peer))
        ->start();
  }
  do_accept();
}

void http_server::state::dispatch(http_request& req, http_responder respond) {
  const auto it = routes.find(req.path);
  if (it == routes.end()) return respond.send(plain(404, "not found\n"));
  const route& r = it->second;
  if (std::find(r.methods.begin(), r.methods.end(), req.method) == r.methods.end()) {
    http_response res = plain(405, "method not allowed\n");
    res.headers.emplace_back("Allow", r.allow);
    return respond.send(std::move(res));
  }
  // A handler that throws has destroyed its responder (answered 500) on the way out, unless it
  // had passed it on; either way the request gets exactly one answer.
  try {
    return r.handler(req, std::move(respond));
  } catch (const std::exception& e) {
    ++stats.handler_errors;
    log("http handler failed path=" + req.path + " error=\"" + e.what() + "\"");
  } catch (...) {
    // Not from our code or the standard library; still a 500 rather than a dead daemon.
    ++stats.handler_errors;
    log("http handler failed path=" + req.path + " error=\"non-standard exception\"");
  }
}

void http_server::state::remove(http_connection* c) {
  connections.erase(c);
  stats.connections_open = connections.size();
  if (stopping && connections.empty() && !destroyed) fire_stopped_soon();
}

void http_server::state::fire_stopped_soon() {
  stop_timer.cancel();
  if (!on_stopped) return;
  // Posted: remove() runs inside a connection's destructor, not a place to call user code.
  asio::post(io, [cb = std::move(on_stopped)] { cb(); });
  on_stopped = nullptr;
}

void http_server::set_refusal_observer(http_refusal_observer observer) {
  state_->refused = std::move(observer);
}

http_server::http_server(asio::io_context& io, http_limits limits, http_warn_log warn)
    : state_(std::make_shared<state>(io, limits, std::move(warn))) {}

http_server::~http_server() {
  state_->destroyed = true;
  stop_accepting();
  state_->stop_timer.cancel();
  const std::vector<http_connection*> open(state_->connections.begin(), state_->connections.end());
  for (http_connection* c : open) c->close();
  // Handlers may capture objects that die with the server's owner.
  state_->routes.clear();
}

void http_server::handle(std::string path, std::vector<std::string> methods, http_handler handler) {
  handle_async(std::move(path), std::move(methods),
               [h = std::move(handler)](http_request& req, http_responder respond) {
                 respond.send(h(req));
               });
}

void http_server::handle_async(std::string path, std::vector<std::string> methods,
                               http_async_handler handler) {
  std::string allow;
  for (const auto& m : methods) {
    if (!allow.empty()) allow += ", ";
    allow += m;
  }
  state_->routes[std::move(path)] = {std::move(methods), std::move(allow), std::move(handler), {}};
}

void http_server::check_before_body(const std::string& path, http_header_check check) {
  const auto it = state_->routes.find(path);
  if (it == state_->routes.end()) {
    throw std::logic_error("http_server::check_before_body: no route for " + path);
  }
  it->second.check = std::move(check);
}

boost::system::result<tcp::endpoint> http_server::bind(std::string_view host, std::uint16_t port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // "[::1]" as written in ADDR:PORT
  }
  error_code ec;
  tcp::endpoint ep;
  const auto addr = asio::ip::make_address(host, ec);
  if (!ec) {
    ep = tcp::endpoint(addr, port);
  } else {
    tcp::resolver resolver(state_->io);
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return ec;
    if (results.empty()) return asio::error::host_not_found;
    ep = results.begin()->endpoint();
  }

  auto& acceptor = state_->acceptor;
  if (acceptor.is_open()) return asio::error::already_open;
  auto fail = [&](error_code e) -> boost::system::result<tcp::endpoint> {
    error_code ignored;
    acceptor.close(ignored);
    return e;
  };
  if (acceptor.open(ep.protocol(), ec)) return fail(ec);
  if (acceptor.set_option(asio::socket_base::reuse_address(true), ec)) return fail(ec);
  if (acceptor.bind(ep, ec)) return fail(ec);
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec)) return fail(ec);
  state_->bound = acceptor.local_endpoint(ec);
  if (ec) return fail(ec);
  return state_->bound;
}

void http_server::start() {
  if (state_->acceptor.is_open()) state_->do_accept();
}

tcp::endpoint http_server::local_endpoint() const { return state_->bound; }

void http_server::stop_accepting() {
  error_code ignored;
  state_->acceptor.close(ignored);
  state_->accept_retry.cancel();
}

void http_server::stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  stop_accepting();
  if (state_->stopping) return;
  state_->stopping = true;
  state_->on_stopped = std::move(on_stopped);
  const std::vector<http_connection*> open(state_->connections.begin(), state_->connections.end());
  for (http_connection* c : open) c->close_if_idle();  // closing only cancels; none is freed here
  if (state_->connections.empty()) return state_->fire_stopped_soon();
  state_->stop_timer.expires_after(grace);
  state_->stop_timer.async_wait([weak = std::weak_ptr<state>(state_)](const error_code& ec) {
    const auto s = weak.lock();
    if (ec || !s) return;
    const std::vector<http_connection*> left(s->connections.begin(), s->connections.end());
    for (http_connection* c : left) c->close();
  });
}

std::size_t http_server::connection_count() const { return state_->connections.size(); }

const http_server_stats& http_server::stats() const { return state_->stats; }

}  // namespace alertrouter::daemon
