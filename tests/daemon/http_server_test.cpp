#include "daemon/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "tests/fakes/run_on_io.h"

namespace alertrouter::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;
using response = http::response<http::string_body>;

constexpr auto deadline = 2s;  // bound on every wait; never reached when the server behaves

// A blocking-style test client: each call runs its own io_context until the operation completes
// or `deadline` passes (tcp_stream's expiry), so no call can hang the test.
class client {
 public:
  explicit client(const tcp::endpoint& ep) { connect_error_ = connect(ep); }

  const error_code& connect_error() const { return connect_error_; }

  error_code send(std::string_view raw) {
    return run([&](auto done) { asio::async_write(stream_, asio::buffer(raw), done); });
  }

  std::optional<response> read_response(error_code* error = nullptr) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    const error_code ec = run([&](auto done) { http::async_read(stream_, buffer_, parser, done); });
    if (error) *error = ec;
    if (ec) return std::nullopt;
    return parser.release();
  }

  std::optional<response> request(std::string_view raw) {
    if (send(raw)) return std::nullopt;
    return read_response();
  }

  // Reads until the peer closes (closed = true) or `timeout` passes (closed = false); `data` is
  // whatever arrived meanwhile. Either way the client then closes its end, as real clients do.
  struct close_result {
    bool closed = false;
    std::string data;
  };
  close_result read_until_close(std::chrono::milliseconds timeout = deadline) {
    close_result r;
    r.data = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    std::array<char, 4096> chunk{};
    error_code final;
    std::function<void()> next = [&] {
      stream_.async_read_some(asio::buffer(chunk), [&](const error_code& ec, std::size_t n) {
        r.data.append(chunk.data(), n);
        if (ec) {
          final = ec;
          return;
        }
        next();
      });
    };
    stream_.expires_after(timeout);
    next();
    ioc_.restart();
    ioc_.run();
    r.closed = final && final != beast::error::timeout;
    stream_.close();
    return r;
  }

 private:
  error_code connect(const tcp::endpoint& ep) {
    return run([&](auto done) { stream_.async_connect(ep, done); });
  }

  template <class Start>
  error_code run(Start start, std::chrono::milliseconds timeout = deadline) {
    error_code result = asio::error::would_block;
    stream_.expires_after(timeout);
    start([&result](const error_code& ec, std::size_t = 0) { result = ec; });
    ioc_.restart();
    ioc_.run();
    return result;
  }

  asio::io_context ioc_;
  beast::tcp_stream stream_{ioc_};
  beast::flat_buffer buffer_;
  error_code connect_error_;
};

std::string post_echo(std::string_view body, std::string_view extra = "") {
  return "POST /echo HTTP/1.1\r\nHost: t\r\n" + std::string(extra) +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

class http_server_test : public ::testing::Test {
 protected:
  void start(http_limits limits = {}) {
    server_ = std::make_unique<http_server>(io_, limits, [this](std::string_view line) {
      const std::lock_guard lock(log_mutex_);
      log_.emplace_back(line);
    });
    // Echoes the body; what the server parsed comes back in X- fields.
    server_->handle("/echo", {"POST", "PUT"}, [this](http_request& req) {
      ++echo_calls_;
      http_response res;
      res.content_type = "application/octet-stream";
      res.body = std::move(req.body);
      res.headers = {{"X-Method", req.method},
                     {"X-Path", req.path},
                     {"X-Query", req.query},
                     {"X-Thing", std::string(req.header("x-thing"))},
                     {"X-Remote", req.remote}};
      return res;
    });
    server_->set_refusal_observer([this](std::string_view path, unsigned status) {
      const std::lock_guard lock(log_mutex_);
      refusals_.emplace_back(std::string(path), status);
    });
    // A handler that builds a field from data it should not have trusted.
    server_->handle("/split", {"GET"}, [](http_request&) {
      http_response res;
      res.body = "split\n";
      res.headers = {
          {"X-Injected", "a\r\nSet-Cookie: stolen=1"}, {"Bad Name", "x"}, {"X-Fine", "ok"}};
      return res;
    });
    server_->handle("/page", {"GET", "HEAD"}, [](http_request&) {
      http_response res;
      res.body = "a page of text\n";
      return res;
    });
    server_->handle("/boom", {"GET"}, [](http_request&) -> http_response {
      throw std::runtime_error("handler exploded");
    });
    server_->handle("/empty", {"DELETE"}, [](http_request&) {
      http_response res;
      res.status = 204;
      res.body = "ignored";
      return res;
    });
    // Asynchronous handlers: /later parks its responder for the test to answer; /forget drops
    // it; /throw passes it to a local and throws.
    server_->handle_async("/later", {"POST"}, [this](http_request& req, http_responder respond) {
      parked_.emplace_back(std::move(req.body), std::move(respond));
    });
    server_->handle_async("/forget", {"GET"}, [](http_request&, http_responder) {});
    server_->handle_async("/throw", {"GET"}, [](http_request&, http_responder respond) {
      http_responder mine = std::move(respond);
      throw std::runtime_error("async handler exploded");
    });
    // /guarded: its check refuses a body still to be read unless `X-Key: open` came with it.
    server_->handle("/guarded", {"POST"}, [this](http_request& req) {
      ++guarded_calls_;
      http_response res;
      res.body = std::move(req.body);
      return res;
    });
    server_->check_before_body("/guarded", [this](const http_request& head) {
      const std::lock_guard lock(log_mutex_);
      checked_.push_back(head);
      std::optional<http_response> refusal;
      if (head.header("x-key") != "open") {
        refusal.emplace();
        refusal->status = 401;
        refusal->body = "no key\n";
        refusal->headers = {{"WWW-Authenticate", "Bearer"}};
      }
      return refusal;
    });
    const auto ep = server_->bind("127.0.0.1", 0);
    ASSERT_TRUE(ep.has_value()) << ep.error().message();
    endpoint_ = *ep;
    ASSERT_NE(endpoint_.port(), 0);
    server_->start();
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    if (io_thread_.joinable()) {
      on_io([this] { server_.reset(); });
      work_.reset();
      io_.stop();
      io_thread_.join();
    }
  }

  // Runs `f` on the io thread (the server is single-threaded) and returns its result.
  template <class F>
  std::invoke_result_t<F> on_io(F f) {
    return testing::run_on_io(io_, std::move(f), deadline);
  }

  // Sends `head` (request line and fields, without the final CRLF) asking 100-continue for a
  // 4-byte body; expects the 100, sends the body, and expects it echoed with a 200.
  static void continue_then_body(client& c, const std::string& head) {
    ASSERT_FALSE(c.send(head + "Expect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
    const auto interim = c.read_response();
    ASSERT_TRUE(interim);
    EXPECT_EQ(interim->result_int(), 100u);
    ASSERT_FALSE(c.send("body"));
    const auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ(res->body(), "body");
  }

  http_server_stats stats() {
    return on_io([this] { return server_->stats(); });
  }

  // Polls `pred` on the io thread until it holds or the deadline passes.
  template <class Pred>
  bool eventually(Pred pred) {
    return testing::eventually_on_io(io_, std::move(pred), deadline);
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<http_server> server_;
  tcp::endpoint endpoint_;
  std::thread io_thread_;
  std::atomic<int> echo_calls_{0};
  std::atomic<int> guarded_calls_{0};
  std::vector<http_request> checked_;  // heads /guarded's check saw; under log_mutex_
  std::mutex log_mutex_;
  std::vector<std::string> log_;
  std::vector<std::pair<std::string, unsigned>> refusals_;      // (path, status)
  std::vector<std::pair<std::string, http_responder>> parked_;  // io thread only
};

TEST_F(http_server_test, handler_sees_request_and_its_response_is_sent) {
  start();
  client c(endpoint_);
  ASSERT_FALSE(c.connect_error());
  const auto res = c.request(
      "PUT /echo?x=1&y=2 HTTP/1.1\r\nHost: t\r\nX-THING: value\r\nContent-Length: 5\r\n\r\nhello");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "hello");
  EXPECT_EQ((*res)[http::field::content_type], "application/octet-stream");
  EXPECT_EQ((*res)["X-Method"], "PUT");
  EXPECT_EQ((*res)["X-Path"], "/echo");
  EXPECT_EQ((*res)["X-Query"], "x=1&y=2");
  EXPECT_EQ((*res)["X-Thing"], "value");  // header lookup ignores case
  EXPECT_TRUE((*res)["X-Remote"].starts_with("127.0.0.1:")) << (*res)["X-Remote"];
  EXPECT_TRUE(res->keep_alive());
  EXPECT_EQ(stats().responses_by_class[2], 1u);
}

TEST_F(http_server_test, a_field_that_would_split_the_response_is_dropped_and_logged) {
  start();
  client c(endpoint_);
  const auto res = c.request("GET /split HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "split\n");
  EXPECT_EQ((*res)["X-Fine"], "ok");
  EXPECT_EQ(res->count("Set-Cookie"), 0u);
  EXPECT_EQ(res->count("X-Injected"), 0u);
  EXPECT_EQ(res->count("Bad Name"), 0u);
  {
    const std::lock_guard lock(log_mutex_);
    ASSERT_EQ(log_.size(), 2u);
    EXPECT_NE(log_[0].find("invalid header field, dropped: name=\"X-Injected\""), std::string::npos)
        << log_[0];
  }
  // The connection is still framed correctly.
  const auto next = c.request(post_echo("after"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body(), "after");
}

TEST_F(http_server_test, status_204_carries_no_body) {
  start();
  client c(endpoint_);
  const auto res = c.request("DELETE /empty HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 204u);
  EXPECT_EQ(res->body(), "");
  // Still framed correctly: the connection serves the next request.
  const auto next = c.request(post_echo("again"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body(), "again");
}

TEST_F(http_server_test, unknown_path_404_and_wrong_method_405_with_allow) {
  start();
  struct row {
    std::string request;
    unsigned status;
    std::string allow;
  };
  const std::vector<row> rows = {
      {"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", 404, ""},
      {"GET /echo/more HTTP/1.1\r\nHost: t\r\n\r\n", 404, ""},  // exact paths only
      {"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", 405, "POST, PUT"},
      {"post /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, "POST, PUT"},
      {"POST /boom HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n", 405, "GET"},
  };
  client c(endpoint_);
  for (const auto& r : rows) {
    const auto res = c.request(r.request);
    ASSERT_TRUE(res) << r.request;
    EXPECT_EQ(res->result_int(), r.status) << r.request;
    EXPECT_EQ((*res)[http::field::allow], r.allow) << r.request;
    EXPECT_TRUE(res->keep_alive()) << r.request;
  }
  EXPECT_EQ(echo_calls_, 0);
  EXPECT_EQ(stats().responses_by_class[4], rows.size());
}

TEST_F(http_server_test, body_at_limit_is_served_and_over_it_is_413) {
  http_limits limits;
  limits.max_body = 1024;
  start(limits);
  {
    client c(endpoint_);
    const auto res = c.request(post_echo(std::string(1024, 'a')));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 200u);
    EXPECT_EQ(res->body().size(), 1024u);
  }
  {
    client c(endpoint_);
    const auto res = c.request(post_echo(std::string(1025, 'a')));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 413u);
    EXPECT_FALSE(res->keep_alive());
    EXPECT_TRUE(c.read_until_close().closed);
  }
  EXPECT_EQ(echo_calls_, 1);
  // Refused before any handler ran, yet counted, logged and reported with its path.
  EXPECT_EQ(stats().bodies_too_large, 1u);
  const std::lock_guard lock(log_mutex_);
  ASSERT_EQ(refusals_.size(), 1u);
  EXPECT_EQ(refusals_[0], (std::pair<std::string, unsigned>("/echo", 413)));
  ASSERT_FALSE(log_.empty());
  EXPECT_NE(log_.back().find("status=413"), std::string::npos) << log_.back();
  EXPECT_NE(log_.back().find("path=/echo"), std::string::npos) << log_.back();
}

TEST_F(http_server_test, content_length_over_limit_is_answered_413_before_the_body_is_sent) {
  http_limits limits;
  limits.max_body = 1024;
  start(limits);
  client c(endpoint_);
  // Only the header goes out; a server waiting for the body would time the client out instead.
  ASSERT_FALSE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n"));
  const auto res = c.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413u);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.read_until_close().closed);
  EXPECT_EQ(echo_calls_, 0);
}

// A client can cause a warn line per connection: past the rate limit they are counted, not
// written, and the next line written says how many were left out.
TEST_F(http_server_test, warn_lines_over_the_rate_limit_are_counted_and_summed_up_later) {
  http_limits limits;
  limits.max_body = 1024;
  limits.warnings_per_second = 2;  // bursts of 20
  start(limits);
  constexpr int kRefused = 60;
  const auto began = std::chrono::steady_clock::now();
  for (int i = 0; i < kRefused; ++i) {
    client c(endpoint_);
    ASSERT_FALSE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n"));
    const auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 413u);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  const http_server_stats s = stats();
  EXPECT_EQ(s.bodies_too_large, static_cast<std::uint64_t>(kRefused));  // every one counted
  std::size_t written = 0;
  {
    const std::lock_guard lock(log_mutex_);
    written = log_.size();
  }
  EXPECT_EQ(written + s.warnings_suppressed, static_cast<std::size_t>(kRefused));
  // The burst, and what the bucket refilled while the loop ran.
  EXPECT_GE(written, 20u);
  EXPECT_LE(static_cast<double>(written), 20 + 2 * seconds + 1);
  ASSERT_GT(s.warnings_suppressed, 0u);

  // Once a token is back, the next line is written with the count of those left out.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  client c(endpoint_);
  ASSERT_FALSE(c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 104857600\r\n\r\n"));
  ASSERT_TRUE(c.read_response());
  const std::lock_guard lock(log_mutex_);
  ASSERT_EQ(log_.size(), written + 1);
  EXPECT_NE(log_.back().find("status=413"), std::string::npos) << log_.back();
  EXPECT_NE(log_.back().find("(and " + std::to_string(s.warnings_suppressed) +
                             " similar warnings suppressed before this one: over 2/s)"),
            std::string::npos)
      << log_.back();
}

TEST_F(http_server_test, chunked_body_over_limit_is_413) {
  http_limits limits;
  limits.max_body = 1024;
  start(limits);
  client c(endpoint_);
  std::string raw = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 3; ++i) raw += "200\r\n" + std::string(512, 'x') + "\r\n";
  raw += "0\r\n\r\n";
  const auto res = c.request(raw);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 413u);
  EXPECT_TRUE(c.read_until_close().closed);
  EXPECT_EQ(echo_calls_, 0);
}

TEST_F(http_server_test, bodies_over_the_server_wide_budget_get_503_before_being_read) {
  http_limits limits;
  limits.max_body = 800;
  limits.max_bodies_in_flight = 1000;
  start(limits);
  // A slow upload holds 600 of the 1000 bytes from its header on.
  client slow(endpoint_);
  ASSERT_FALSE(slow.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 600\r\n\r\nxx"));
  ASSERT_TRUE(eventually([this] { return server_->connection_count() == 1; }));
  // Wait until the server has read that header (the budget is taken then).
  client probe(endpoint_);
  ASSERT_TRUE(probe.request("GET /split HTTP/1.1\r\nHost: t\r\n\r\n"));

  client second(endpoint_);
  const auto busy = second.request("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 600\r\n\r\n");
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->result_int(), 503u);
  EXPECT_EQ((*busy)[http::field::retry_after], "1");
  EXPECT_FALSE(busy->keep_alive());
  EXPECT_TRUE(second.read_until_close().closed);
  // A chunked body counts as max_body (800): also over.
  client chunked(endpoint_);
  const auto busy2 =
      chunked.request("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
  ASSERT_TRUE(busy2);
  EXPECT_EQ(busy2->result_int(), 503u);
  // A small one still fits, and a body that came whole with its header takes nothing.
  client small(endpoint_);
  const auto fits = small.request(post_echo(std::string(300, 'a')));
  ASSERT_TRUE(fits);
  EXPECT_EQ(fits->result_int(), 200u);
  EXPECT_EQ(stats().bodies_deferred, 2u);

  // The slow upload finishes and gives its share back.
  ASSERT_FALSE(slow.send(std::string(598, 'x')));
  const auto done = slow.read_response();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->body().size(), 600u);
  client third(endpoint_);
  ASSERT_FALSE(third.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 700\r\n\r\n"));
  ASSERT_FALSE(third.send(std::string(700, 'y')));
  const auto later = third.read_response();
  ASSERT_TRUE(later);
  EXPECT_EQ(later->result_int(), 200u);
  EXPECT_EQ(later->body().size(), 700u);
  EXPECT_EQ(stats().bodies_deferred, 2u);
  {
    const std::lock_guard lock(log_mutex_);
    bool logged = false;
    for (const auto& line : log_) logged = logged || line.find("status=503") != std::string::npos;
    EXPECT_TRUE(logged);
  }
}

TEST_F(http_server_test, expect_100_continue_gets_interim_response_then_the_answer) {
  start();
  client c(endpoint_);
  continue_then_body(c, "POST /echo HTTP/1.1\r\nHost: t\r\n");
}

// A check_before_body() hook refuses a request on its header alone: no 100 Continue, no byte of
// the body read, the refusal sent and the connection closed; a request it lets through is read
// and handled as usual.
TEST_F(http_server_test, a_check_before_the_body_refuses_without_asking_for_it) {
  start();
  {
    client c(endpoint_);
    ASSERT_FALSE(
        c.send("POST /guarded?q=1 HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               "Content-Length: 4194304\r\n\r\n"));
    const auto res = c.read_response();
    ASSERT_TRUE(res);
    EXPECT_EQ(res->result_int(), 401u);  // not 100: the client is not asked for its body
    EXPECT_EQ(res->body(), "no key\n");
    EXPECT_EQ((*res)["WWW-Authenticate"], "Bearer");
    EXPECT_FALSE(res->keep_alive());
    EXPECT_TRUE(c.read_until_close().closed);
  }
  EXPECT_EQ(guarded_calls_, 0);
  {
    const std::lock_guard lock(log_mutex_);
    ASSERT_EQ(checked_.size(), 1u);
    EXPECT_EQ(checked_[0].method, "POST");
    EXPECT_EQ(checked_[0].path, "/guarded");
    EXPECT_EQ(checked_[0].query, "q=1");
    EXPECT_EQ(checked_[0].header("expect"), "100-continue");
    EXPECT_TRUE(checked_[0].body.empty());
    EXPECT_FALSE(checked_[0].remote.empty());
    ASSERT_EQ(refusals_.size(), 1u);
    EXPECT_EQ(refusals_[0], (std::pair<std::string, unsigned>("/guarded", 401)));
  }

  // Let through: 100 Continue, then the body is read and handled.
  client c(endpoint_);
  continue_then_body(c, "POST /guarded HTTP/1.1\r\nHost: t\r\nX-Key: open\r\n");
  EXPECT_EQ(guarded_calls_, 1);

  // Another method goes to its 405 without the check; a body that came whole with its header
  // goes to the handler, which must check for itself (as the contract says).
  ASSERT_FALSE(c.send("PUT /guarded HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n"));
  const auto put = c.read_response();
  ASSERT_TRUE(put);
  EXPECT_EQ(put->result_int(), 405u);
  ASSERT_FALSE(c.send("POST /guarded HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"));
  const auto whole = c.read_response();
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->result_int(), 200u);
  EXPECT_EQ(guarded_calls_, 2);
  const std::lock_guard lock(log_mutex_);
  EXPECT_EQ(checked_.size(), 2u);  // the refused request and the one let through
}

TEST_F(http_server_test, header_over_limit_is_431_and_close) {
  http_limits limits;
  limits.max_header = 1024;
  start(limits);
  client c(endpoint_);
  // 512 KiB of header: the server stops reading after max_header and answers with input unread.
  const auto res = c.request(post_echo("abc", "X-Big: " + std::string(512 * 1024, 'h') + "\r\n"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 431u);
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(c.read_until_close().closed);
  EXPECT_EQ(echo_calls_, 0);
  EXPECT_EQ(stats().headers_too_large, 1u);
  const std::lock_guard lock(log_mutex_);
  ASSERT_EQ(refusals_.size(), 1u);
  EXPECT_EQ(refusals_[0].second, 431u);
}

TEST_F(http_server_test, malformed_requests_get_400_and_close) {
  start();
  const std::vector<std::string> requests = {
      "GARBAGE\r\n\r\n",
      "GET / HTTX/1.1\r\nHost: t\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
  };
  for (const auto& raw : requests) {
    client c(endpoint_);
    const auto res = c.request(raw);
    ASSERT_TRUE(res) << raw;
    EXPECT_EQ(res->result_int(), 400u) << raw;
    EXPECT_FALSE(res->keep_alive()) << raw;
    EXPECT_TRUE(c.read_until_close().closed) << raw;
  }
  EXPECT_EQ(echo_calls_, 0);
  EXPECT_EQ(stats().responses_by_class[4], requests.size());
  EXPECT_EQ(stats().malformed_requests, requests.size());
}

TEST_F(http_server_test, transfer_codings_other_than_chunked_are_refused_and_close) {
  start();
  // What follows each header would be a whole second request if the server read the first as
  // having no body (Beast does, for a coding it cannot frame): it must never be run.
  const std::string smuggled = post_echo("smuggled");
  struct row {
    std::string header;
    unsigned status;
  };
  const std::vector<row> rows = {
      {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\nContent-Length: " +
           std::to_string(smuggled.size()) + "\r\n\r\n",
       501},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
       "Transfer-Encoding: gzip\r\n\r\n",
       400},  // refused by Beast's parser itself
      {"POST /echo HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
  };
  for (const auto& r : rows) {
    client c(endpoint_);
    const auto res = c.request(r.header + smuggled);
    ASSERT_TRUE(res) << r.header;
    EXPECT_EQ(res->result_int(), r.status) << r.header;
    EXPECT_FALSE(res->keep_alive()) << r.header;
    const auto rest = c.read_until_close();
    EXPECT_TRUE(rest.closed) << r.header;
    EXPECT_EQ(rest.data.find("smuggled"), std::string::npos) << r.header;
  }
  EXPECT_EQ(echo_calls_, 0);
  EXPECT_EQ(stats().malformed_requests, rows.size());
  // Chunked alone is still read, upper case and padded too.
  client c(endpoint_);
  const auto res = c.request(
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:  Chunked \r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 200u);
  EXPECT_EQ(res->body(), "hello");
}

TEST_F(http_server_test, head_gets_the_fields_of_a_get_and_no_content) {
  start();
  client c(endpoint_);
  // Pipelined: a body after HEAD's header would be read as the start of the next response.
  ASSERT_FALSE(
      c.send("HEAD /page HTTP/1.1\r\nHost: t\r\n\r\n"
             "GET /page HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  const std::string raw = c.read_until_close().data;
  const std::string get_body = "a page of text\n";
  const auto end_of_head = raw.find("\r\n\r\n");
  ASSERT_NE(end_of_head, std::string::npos) << raw;
  const std::string head = raw.substr(0, end_of_head);
  EXPECT_TRUE(head.starts_with("HTTP/1.1 200")) << head;
  EXPECT_NE(head.find("Content-Length: " + std::to_string(get_body.size())), std::string::npos)
      << head;
  const std::string after = raw.substr(end_of_head + 4);
  EXPECT_TRUE(after.starts_with("HTTP/1.1 200")) << after;
  EXPECT_TRUE(after.ends_with("\r\n\r\n" + get_body)) << after;
}

TEST_F(http_server_test, keep_alive_serves_three_requests_on_one_connection) {
  start();
  client c(endpoint_);
  for (const std::string body : {"one", "two", "three"}) {
    const auto res = c.request(post_echo(body));
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body(), body);
    EXPECT_TRUE(res->keep_alive());
  }
  const auto s = stats();
  EXPECT_EQ(s.connections_accepted, 1u);
  EXPECT_EQ(s.connections_open, 1u);
  EXPECT_EQ(s.responses_by_class[2], 3u);
}

TEST_F(http_server_test, pipelined_requests_are_answered_in_order) {
  start();
  client c(endpoint_);
  ASSERT_FALSE(c.send(post_echo("first") + "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" +
                      post_echo("third", "Connection: close\r\n")));
  const auto r1 = c.read_response();
  const auto r2 = c.read_response();
  const auto r3 = c.read_response();
  ASSERT_TRUE(r1 && r2 && r3);
  EXPECT_EQ(r1->body(), "first");
  EXPECT_EQ(r2->result_int(), 404u);
  EXPECT_EQ(r3->body(), "third");
  EXPECT_FALSE(r3->keep_alive());
  EXPECT_TRUE(c.read_until_close().closed);
}

TEST_F(http_server_test, connection_close_is_honoured) {
  start();
  const std::vector<std::string> requests = {
      post_echo("x", "Connection: close\r\n"),
      "POST /echo HTTP/1.0\r\nContent-Length: 1\r\n\r\nx",  // 1.0 closes by default
  };
  for (const auto& raw : requests) {
    client c(endpoint_);
    const auto res = c.request(raw);
    ASSERT_TRUE(res) << raw;
    EXPECT_EQ(res->body(), "x");
    EXPECT_FALSE(res->keep_alive()) << raw;
    EXPECT_TRUE(c.read_until_close().closed) << raw;
  }
  // HTTP/1.0 asking for keep-alive keeps it.
  client c(endpoint_);
  const auto res =
      c.request("POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx");
  ASSERT_TRUE(res);
  EXPECT_TRUE(res->keep_alive());
  EXPECT_TRUE(c.request(post_echo("y")));
}

TEST_F(http_server_test, stalled_request_is_closed_after_read_timeout_while_others_are_served) {
  http_limits limits;
  limits.read_timeout = 300ms;
  start(limits);
  client slow(endpoint_);
  ASSERT_FALSE(slow.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhalf"));

  client fast(endpoint_);
  const auto res = fast.request(post_echo("quick"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "quick");
  // Served while the slow one is still open and waiting.
  EXPECT_EQ(stats().read_timeouts, 0u);
  EXPECT_EQ(on_io([this] { return server_->connection_count(); }), 2u);

  const auto closed = slow.read_until_close();
  EXPECT_TRUE(closed.closed);
  EXPECT_EQ(closed.data, "");  // closed without an answer
  const auto s = stats();
  EXPECT_EQ(s.read_timeouts, 1u);
  EXPECT_EQ(echo_calls_, 1);
  {
    const std::lock_guard lock(log_mutex_);
    EXPECT_EQ(log_.size(), 1u);  // the timeout is logged
  }
  // The fast client's connection is unaffected.
  EXPECT_TRUE(fast.request(post_echo("still here")));
}

TEST_F(http_server_test, dribbling_bytes_does_not_extend_the_read_deadline) {
  http_limits limits;
  limits.read_timeout = 200ms;
  start(limits);
  client slow(endpoint_);
  // One byte per 20 ms would take ~1.4 s for the whole request; the deadline is absolute from
  // the first byte, so the server closes the connection part way through.
  const std::string raw = post_echo("abcdefghijklmnopqrstuvwxyz");
  std::size_t sent = 0;
  for (; sent < raw.size(); ++sent) {
    if (slow.send(raw.substr(sent, 1))) break;
    if (on_io([this] { return server_->stats().read_timeouts; }) > 0) break;
    std::this_thread::sleep_for(20ms);  // pacing the client, not waiting for the server
  }
  EXPECT_LT(sent, raw.size());
  EXPECT_TRUE(slow.read_until_close().closed);
  EXPECT_EQ(stats().read_timeouts, 1u);
  EXPECT_EQ(echo_calls_, 0);
}

TEST_F(http_server_test, idle_keep_alive_connection_is_closed_after_idle_timeout) {
  http_limits limits;
  limits.idle_timeout = 100ms;
  start(limits);
  client c(endpoint_);
  ASSERT_TRUE(c.request(post_echo("x")));
  EXPECT_TRUE(c.read_until_close().closed);
  const auto s = stats();
  EXPECT_EQ(s.idle_timeouts, 1u);
  EXPECT_EQ(s.read_timeouts, 0u);
}

TEST_F(http_server_test, connections_over_the_cap_are_closed_at_accept_when_none_is_idle) {
  http_limits limits;
  limits.max_connections = 2;
  start(limits);
  // Both open connections are in the middle of a request (header begun, not finished).
  client c1(endpoint_);
  client c2(endpoint_);
  ASSERT_FALSE(c1.send("POST /echo HTTP/1.1\r\nHost: t\r\n"));
  ASSERT_FALSE(c2.send("POST /echo HTTP/1.1\r\nHost: t\r\n"));
  ASSERT_TRUE(eventually([this] { return server_->connection_count() == 2; }));

  client c3(endpoint_);
  ASSERT_FALSE(c3.connect_error());  // the kernel completes the handshake; the server closes it
  const auto refused = c3.read_until_close();
  EXPECT_TRUE(refused.closed);
  EXPECT_EQ(refused.data, "");
  auto s = stats();
  EXPECT_EQ(s.connections_rejected, 1u);
  EXPECT_EQ(s.connections_evicted, 0u);
  EXPECT_EQ(s.connections_accepted, 2u);
  EXPECT_EQ(s.connections_open, 2u);

  // The two requests are still read and answered.
  ASSERT_FALSE(c1.send("Content-Length: 1\r\n\r\n1"));
  const auto r1 = c1.read_response();
  ASSERT_TRUE(r1);
  EXPECT_EQ(r1->body(), "1");
  ASSERT_FALSE(c2.send("Content-Length: 1\r\n\r\n2"));
  const auto r2 = c2.read_response();
  ASSERT_TRUE(r2);
  EXPECT_EQ(r2->body(), "2");
}

TEST_F(http_server_test, at_the_cap_the_connection_idle_longest_makes_room) {
  http_limits limits;
  limits.max_connections = 2;
  start(limits);
  // Idle connections, silent or keep-alive between requests, must not lock everyone out
  // (1,024 silent sockets did, for as long as they liked).
  client silent(endpoint_);
  ASSERT_TRUE(eventually([this] { return server_->connection_count() == 1; }));
  client kept(endpoint_);
  ASSERT_TRUE(kept.request(post_echo("kept")));

  client newcomer(endpoint_);
  const auto res = newcomer.request(post_echo("new"));
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "new");
  EXPECT_TRUE(silent.read_until_close().closed);  // idle longest: closed to make room
  auto s = stats();
  EXPECT_EQ(s.connections_evicted, 1u);
  EXPECT_EQ(s.connections_rejected, 0u);
  EXPECT_EQ(s.connections_accepted, 3u);

  // Next in line: the keep-alive one, idle since its answer; the newcomer's answer came later.
  client another(endpoint_);
  const auto res2 = another.request(post_echo("another"));
  ASSERT_TRUE(res2);
  EXPECT_EQ(res2->body(), "another");
  EXPECT_TRUE(kept.read_until_close().closed);
  ASSERT_TRUE(newcomer.request(post_echo("still here")));
  EXPECT_EQ(stats().connections_evicted, 2u);
  {
    const std::lock_guard lock(log_mutex_);
    ASSERT_FALSE(log_.empty());
    EXPECT_NE(log_.back().find("idle connection closed to admit a new one"), std::string::npos)
        << log_.back();
  }
}

TEST_F(http_server_test, handler_exception_is_500_and_the_server_keeps_serving) {
  start();
  client c(endpoint_);
  const auto res = c.request("GET /boom HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->result_int(), 500u);
  EXPECT_TRUE(res->keep_alive());
  const auto next = c.request(post_echo("fine"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body(), "fine");
  client other(endpoint_);
  EXPECT_TRUE(other.request(post_echo("fine too")));
  const auto s = stats();
  EXPECT_EQ(s.handler_errors, 1u);
  EXPECT_EQ(s.responses_by_class[5], 1u);
  EXPECT_EQ(s.responses_by_class[2], 2u);
}

TEST_F(http_server_test, async_answer_goes_out_when_sent_and_pipelined_requests_wait_for_it) {
  start();
  client c(endpoint_);
  const std::string later = "POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc";
  ASSERT_FALSE(c.send(later + post_echo("next")));
  ASSERT_TRUE(eventually([this] { return parked_.size() == 1; }));
  // The pipelined request behind it is not handled while the first is unanswered.
  EXPECT_EQ(echo_calls_.load(), 0);
  on_io([this] {
    EXPECT_EQ(parked_[0].first, "abc");
    EXPECT_TRUE(static_cast<bool>(parked_[0].second));
    http_response res;
    res.status = 202;
    res.body = "accepted abc";
    parked_[0].second.send(std::move(res));
    EXPECT_FALSE(static_cast<bool>(parked_[0].second));
    parked_[0].second.send(http_response{});  // a second send does nothing
  });
  const auto r1 = c.read_response();
  const auto r2 = c.read_response();
  ASSERT_TRUE(r1 && r2);
  EXPECT_EQ(r1->result_int(), 202u);
  EXPECT_EQ(r1->body(), "accepted abc");
  EXPECT_TRUE(r1->keep_alive());
  EXPECT_EQ(r2->body(), "next");
  EXPECT_EQ(echo_calls_.load(), 1);
  const auto s = stats();
  EXPECT_EQ(s.responses_by_class[2], 2u);
  EXPECT_EQ(s.handler_errors, 0u);
}

TEST_F(http_server_test, async_handler_that_drops_or_throws_answers_500_once) {
  start();
  client c(endpoint_);
  const auto dropped = c.request("GET /forget HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(dropped);
  EXPECT_EQ(dropped->result_int(), 500u);
  const auto thrown = c.request("GET /throw HTTP/1.1\r\nHost: t\r\n\r\n");
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->result_int(), 500u);
  const auto next = c.request(post_echo("still here"));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body(), "still here");
  const auto s = stats();
  EXPECT_EQ(s.handler_errors, 2u);  // one each, not one per path the 500 took
  EXPECT_EQ(s.responses_by_class[5], 2u);
  const std::lock_guard lock(log_mutex_);
  ASSERT_EQ(log_.size(), 2u);
  EXPECT_NE(log_[0].find("did not answer"), std::string::npos) << log_[0];
  EXPECT_NE(log_[1].find("async handler exploded"), std::string::npos) << log_[1];
}

TEST_F(http_server_test, graceful_stop_waits_for_a_parked_answer_and_closes_after_it) {
  start();
  client c(endpoint_);
  ASSERT_FALSE(c.send("POST /later HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx"));
  ASSERT_TRUE(eventually([this] { return parked_.size() == 1; }));
  std::atomic<bool> stopped{false};
  on_io([&] { server_->stop(deadline, [&] { stopped = true; }); });
  EXPECT_EQ(stats().connections_open, 1u);  // being answered: not idle, not closed
  EXPECT_FALSE(stopped.load());
  on_io([this] { parked_[0].second.send(http_response{}); });
  const auto r = c.read_response();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200u);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.read_until_close().closed);
  EXPECT_TRUE(eventually([&] { return stopped.load(); }));
}

TEST_F(http_server_test, graceful_stop_finishes_in_flight_requests_and_closes_idle_ones) {
  start();
  client idle(endpoint_);
  ASSERT_TRUE(idle.request(post_echo("x")));

  // In flight: the server has read the header (it sent 100 Continue) and waits for the body.
  client busy(endpoint_);
  ASSERT_FALSE(busy.send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  const auto interim = busy.read_response();
  ASSERT_TRUE(interim);
  ASSERT_EQ(interim->result_int(), 100u);

  std::promise<void> stopped;
  auto stopped_future = stopped.get_future();
  on_io([&] { server_->stop(5s, [&] { stopped.set_value(); }); });

  EXPECT_TRUE(idle.read_until_close().closed);
  client late(endpoint_);
  EXPECT_TRUE(late.connect_error());  // no longer accepting
  EXPECT_NE(stopped_future.wait_for(0ms), std::future_status::ready);

  ASSERT_FALSE(busy.send("body"));
  const auto res = busy.read_response();
  ASSERT_TRUE(res);
  EXPECT_EQ(res->body(), "body");
  EXPECT_FALSE(res->keep_alive());
  EXPECT_TRUE(busy.read_until_close().closed);
  EXPECT_EQ(stopped_future.wait_for(deadline), std::future_status::ready);
  EXPECT_EQ(on_io([this] { return server_->connection_count(); }), 0u);
}

TEST_F(http_server_test, graceful_stop_force_closes_what_is_left_at_the_deadline) {
  start();  // read_timeout 10 s: only the stop deadline can close the stalled request
  client stalled(endpoint_);
  ASSERT_FALSE(stalled.send(
      "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"));
  ASSERT_TRUE(stalled.read_response());

  std::promise<void> stopped;
  auto stopped_future = stopped.get_future();
  on_io([&] { server_->stop(100ms, [&] { stopped.set_value(); }); });
  EXPECT_TRUE(stalled.read_until_close().closed);
  EXPECT_EQ(stopped_future.wait_for(deadline), std::future_status::ready);
  EXPECT_EQ(stats().read_timeouts, 0u);
  EXPECT_EQ(echo_calls_, 0);
}

TEST_F(http_server_test, stop_without_connections_reports_at_once) {
  start();
  std::promise<void> stopped;
  auto stopped_future = stopped.get_future();
  on_io([&] { server_->stop(5s, [&] { stopped.set_value(); }); });
  EXPECT_EQ(stopped_future.wait_for(deadline), std::future_status::ready);
}

TEST(http_server, bind_reports_errors) {
  asio::io_context io;
  http_server first(io, {});
  const auto ep = first.bind("127.0.0.1", 0);
  ASSERT_TRUE(ep.has_value()) << ep.error().message();
  http_server second(io, {});
  const auto taken = second.bind("127.0.0.1", ep->port());
  ASSERT_FALSE(taken.has_value());
  EXPECT_EQ(taken.error(), asio::error::address_in_use);
  http_server third(io, {});
  const auto foreign = third.bind("192.0.2.1", 0);  // TEST-NET-1: not an address of this host
  ASSERT_FALSE(foreign.has_value());
  EXPECT_EQ(foreign.error(), std::errc::address_not_available);
  http_server v6(io, {});
  const auto loop6 = v6.bind("[::1]", 0);
  if (loop6) {  // absent when IPv6 is disabled
    EXPECT_TRUE(loop6->address().is_loopback());
  }
}

}  // namespace
}  // namespace alertrouter::daemon
