#pragma once

// The daemon's HTTP/1.1 server: accepts connections, reads requests under limits and timeouts,
// and dispatches each one to a handler registered by exact path and method. It knows nothing
// about webhooks, metrics or routing; main.cpp registers the handlers.
//
// The request and response types below are plain structs, free of Beast, so handler code needs
// neither Beast nor Asio. Beast lives only in http_server.cpp.

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/result.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alertrouter::daemon {

// Bounds applied to every connection. Every read has a size limit and a deadline.
struct http_limits {
  std::size_t max_body = 4 * 1024 * 1024;  // bytes; a larger body is answered 413
  std::size_t max_header = 16 * 1024;      // request line + fields, bytes; larger -> 431
  // Whole request, body included, counted from its first byte; then the connection is closed.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
  // How long a keep-alive connection may wait for the first byte of its next request.
  std::chrono::milliseconds idle_timeout{std::chrono::seconds(60)};
  // Open connections at most. When full, the connection idle longest is closed to admit a new
  // one; only when none is idle is the new one accepted and closed at once.
  std::size_t max_connections = 1024;
  std::chrono::milliseconds write_timeout{std::chrono::seconds(10)};
  // Bytes of request bodies being read at once, across connections (each counted at its
  // Content-Length, or max_body if chunked, from its header until the request is complete). A
  // request that would go over is answered 503 with Retry-After and closed before its body is
  // read: max_connections slow uploads must not hold max_connections x max_body of memory.
  std::size_t max_bodies_in_flight = 64 * 1024 * 1024;
  // Warn lines (refused requests and connections, timeouts, ...) written per second on average,
  // in bursts of up to 10 times that: a client can cause one per connection, and a flood must
  // not bury the rest of the log (nor trip journald's rate limit, which drops lines blindly).
  // The lines over the limit are counted (http_server_stats::warnings_suppressed) and their
  // number is given in the next line written. 0: no limit.
  unsigned warnings_per_second = 10;
};

// One request as a handler sees it. Owned by the server for the duration of the handler call;
// the handler may move fields (the body) out of it.
struct http_request {
  std::string method;  // as sent, e.g. "POST" (methods are case-sensitive)
  std::string path;    // the target up to '?', e.g. "/webhook/alertmanager"
  std::string query;   // after '?', without it; empty if none
  // Every field in arrival order, names as sent. Bounded in total by http_limits::max_header.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string remote;  // peer address, "127.0.0.1:54321" or "[::1]:54321"

  // Value of the first field named `name` (ASCII case-insensitive); empty if absent.
  std::string_view header(std::string_view name) const;
};

// What a handler answers. Content-Length and Connection are set by the server.
struct http_response {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra fields, e.g. Allow
};

// Runs on the io thread, synchronously, between reading a request and writing its response, so
// it must not block. An exception escaping it becomes a 500 (logged and counted); the connection
// stays usable.
using http_handler = std::function<http_response(http_request&)>;

class http_connection;

// The answer to one request, given later (an asynchronous handler waits for a durable commit,
// say). Move-only. Call send() at most once, on the io thread; the connection reads no further
// request until then (pipelined requests wait). Destroyed without send() (a handler that threw,
// or forgot), it answers 500 and counts a handler error, so no request is left hanging. If the
// connection has been closed meanwhile (shutdown grace over, peer gone) send() does nothing.
class http_responder {
 public:
  http_responder() = default;
  ~http_responder();
  http_responder(http_responder&& other) noexcept;
  http_responder& operator=(http_responder&& other) noexcept;
  http_responder(const http_responder&) = delete;
  http_responder& operator=(const http_responder&) = delete;

  void send(http_response res);
  // True until send() (or a move from it).
  explicit operator bool() const { return conn_ != nullptr; }

 private:
  friend class http_connection;
  explicit http_responder(std::shared_ptr<http_connection> conn) : conn_(std::move(conn)) {}
  std::shared_ptr<http_connection> conn_;
};

// Like http_handler, but answers through `respond`, now or later (see http_responder). Must not
// block either.
using http_async_handler = std::function<void(http_request&, http_responder respond)>;

// Looks at a request whose header has been read and whose body has not (it may not have been
// sent yet: a client that asked `Expect: 100-continue` waits for the go-ahead). `head` is the
// request without its body. A response refuses the request before a byte of its body is read or
// reserved, and without a 100 Continue: the server answers it and closes the connection (the
// body, if sent, is not read). nullopt lets the request through to its handler. Runs on the io
// thread; must not block.
using http_header_check = std::function<std::optional<http_response>(const http_request& head)>;

// Receives one line per degraded event (handler exception, read timeout, rejected connection,
// accept error). Called on the io thread.
using http_warn_log = std::function<void(std::string_view message)>;

// Counters for the daemon's metrics. Plain integers, owned by the io thread.
struct http_server_stats {
  std::uint64_t connections_accepted = 0;  // served (not counting rejected ones)
  std::uint64_t connections_rejected = 0;  // closed at accept: over max_connections
  std::uint64_t connections_evicted = 0;   // idle ones closed to admit a new one at max_connections
  std::uint64_t connections_open = 0;      // currently open (gauge)
  std::array<std::uint64_t, 6> responses_by_class{};  // [status / 100], 1..5 used
  std::uint64_t read_timeouts = 0;                    // a request not complete within read_timeout
  std::uint64_t idle_timeouts = 0;        // keep-alive connections closed for idleness (normal)
  std::uint64_t write_timeouts = 0;       // a response not written within write_timeout
  std::uint64_t handler_errors = 0;       // handler threw; answered 500
  std::uint64_t accept_errors = 0;        // accept() failed (out of descriptors, say)
  std::uint64_t bodies_too_large = 0;     // answered 413
  std::uint64_t headers_too_large = 0;    // answered 431
  std::uint64_t malformed_requests = 0;   // answered 400 by the server (not by a handler)
  std::uint64_t bodies_deferred = 0;      // answered 503: max_bodies_in_flight were being read
  std::uint64_t warnings_suppressed = 0;  // warn lines not written: over warnings_per_second
};

// Told about each request the server refuses itself, before any handler runs: the path as far
// as it was read ("" when unknown) and the status sent (400, 413, 431, 501). Called on the io
// thread.
using http_refusal_observer = std::function<void(std::string_view path, unsigned status)>;

// HTTP/1.1 server with keep-alive and pipelining (responses in request order, one request in
// handling at a time per connection). Per request it answers:
//   unknown path 404; known path, other method 405 with Allow; malformed request 400 and close;
//   header over max_header 431 and close; body over max_body 413 and close (a Content-Length
//   over the limit is answered before the body is read); a transfer coding other than chunked
//   501 and close, Transfer-Encoding in HTTP/1.0 400 and close (both before the body is read:
//   it cannot be framed); `Connection: close` honoured. A HEAD request's answer is the handler's
//   without its content (Content-Length kept).
// A request not complete within read_timeout closes its connection without an answer; each
// connection has its own timers, so a slow client never delays the others. Responses are written
// with one gather write on sockets with TCP_NODELAY.
//
// Threading: the io_context must be run by exactly one thread. Every member function must be
// called on that thread, or before the io_context runs (typical setup: construct, handle(),
// bind(), start(), then run). The destructor closes everything it owns; call it on the io thread
// or after the io_context has stopped.
class http_server {
 public:
  http_server(boost::asio::io_context& io, http_limits limits, http_warn_log warn = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Routes requests whose path is exactly `path` and whose method is one of `methods` (e.g.
  // {"POST"}) to `handler`. Registering a path again replaces it. Call before start().
  void handle(std::string path, std::vector<std::string> methods, http_handler handler);
  // The same for a handler that may answer later.
  void handle_async(std::string path, std::vector<std::string> methods, http_async_handler handler);
  // Runs `check` on every request for `path`, with one of its methods, that has a body still to
  // read, before reading it (see http_header_check). The handler must still check what it
  // relies on: a request whose body came with its header is not checked here. Call after
  // handle() or handle_async() for `path`, before start().
  void check_before_body(const std::string& path, http_header_check check);

  // Opens a listening socket on host:port; host is an IP literal or a name resolved once,
  // synchronously (call before running). Port 0 picks an ephemeral port. Returns the bound
  // endpoint, or the error (bad address, address in use, permission).
  boost::system::result<boost::asio::ip::tcp::endpoint> bind(std::string_view host,
                                                             std::uint16_t port);

  // Starts accepting on the bound socket. Call once, after a successful bind(); else a no-op.
  void start();

  // The bound endpoint; a default endpoint if not bound.
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Closes the listening socket; open connections carry on.
  void stop_accepting();

  // Graceful shutdown: stops accepting, closes idle connections now, lets requests being read or
  // answered finish (their response carries `Connection: close`), and force-closes whatever is
  // still open after `grace`. `on_stopped` (optional) runs on the io thread once no connection is
  // left. Only the first call counts; later calls do nothing.
  void stop(std::chrono::milliseconds grace, std::function<void()> on_stopped = {});

  // Reports requests refused before reaching a handler (see http_refusal_observer).
  void set_refusal_observer(http_refusal_observer observer);

  std::size_t connection_count() const;
  const http_server_stats& stats() const;

 private:
  friend class http_connection;  // one accepted socket, defined in http_server.cpp
  friend class http_responder;
  struct state;
  // Shared with every connection and pending operation, so they stay valid if the server goes
  // first.
  std::shared_ptr<state> state_;
};

}  // namespace alertrouter::daemon
