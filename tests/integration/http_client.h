#pragma once

#include <boost/system/result.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alertrouter::integration {

// A blocking HTTP/1.1 client for tests, on 127.0.0.1 only. Every call has its own io_context
// and connection (`Connection: close`) and is bounded by `timeout` as a whole, so no call can
// hang a test. Safe from any thread (calls share nothing).

struct http_reply {
  unsigned status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // Value of the first field named `name` (ASCII case-insensitive); empty if absent.
  std::string header(std::string_view name) const;
};

// Sends `method target` with `body` (and Content-Type `content_type` when the body is not
// empty) to 127.0.0.1:port and reads the answer. Fails with the transport error (refused,
// timeout, connection closed without an answer); any HTTP status is a success.
boost::system::result<http_reply> http_request(
    std::uint16_t port, std::string_view method, std::string_view target,
    std::string_view body = {}, std::string_view content_type = "application/json",
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

inline boost::system::result<http_reply> http_get(
    std::uint16_t port, std::string_view target,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return http_request(port, "GET", target, {}, {}, timeout);
}

inline boost::system::result<http_reply> http_post(
    std::uint16_t port, std::string_view target, std::string_view body,
    std::string_view content_type = "application/json",
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return http_request(port, "POST", target, body, content_type, timeout);
}

// A raw TCP connection for adversarial clients: send arbitrary bytes, a few at a time, and see
// what (if anything) comes back. Each call is bounded by its own timeout. One thread.
class raw_connection {
 public:
  // Connects to 127.0.0.1:port; check connected().
  explicit raw_connection(std::uint16_t port,
                          std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~raw_connection();
  raw_connection(const raw_connection&) = delete;
  raw_connection& operator=(const raw_connection&) = delete;

  bool connected() const;
  // Writes all of `bytes`. False if the peer has closed or reset the connection, or on timeout.
  bool send(std::string_view bytes, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  struct read_result {
    bool closed = false;  // the peer closed (or reset) the connection
    std::string data;     // whatever arrived before that or before the timeout
  };
  // Reads until the peer closes or `timeout` passes.
  read_result read_until_close(std::chrono::milliseconds timeout);
  // Reads one complete HTTP response (status line to end of body); an empty reply with status 0
  // if none arrived within `timeout` or the connection failed first.
  http_reply read_response(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace alertrouter::integration
