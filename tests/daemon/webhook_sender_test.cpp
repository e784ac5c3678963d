#include "daemon/webhook_sender.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

#include "daemon/http_server.h"
#include "tests/fakes/run_on_io.h"

namespace alertrouter::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

constexpr auto deadline = 5s;  // bound on every wait; never reached when the sender behaves

constexpr std::string_view ok_200 = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

// --- a scripted raw server -----------------------------------------------------------------------

// An HTTP server for what daemon::http_server cannot do: hold a request unanswered, close without
// answering, answer garbage, count requests open at once. Runs on the test's io thread; every
// member is used there only.
class raw_server {
 public:
  struct reply {
    enum class kind { answer, hold, close } action = kind::answer;
    std::string raw = std::string(ok_200);
    bool close_after = false;  // close the connection once the answer is written
  };
  // Decides the fate of request number `n` (0-based, over all connections).
  using script = std::function<reply(std::size_t n)>;

  // `release_at` > 0: as soon as that many requests are held, all of them are answered 200.
  explicit raw_server(asio::io_context& io, script s, std::size_t release_at = 0)
      : core_(std::make_shared<core>(io, std::move(s), release_at)) {
    core_->accept();
  }
  ~raw_server() {
    error_code ignored;
    core_->acceptor.close(ignored);
    const std::vector<std::shared_ptr<conn>> open(core_->live.begin(), core_->live.end());
    for (const auto& c : open) c->close();  // close() leaves `live`
    core_->held.clear();
  }
  raw_server(const raw_server&) = delete;
  raw_server& operator=(const raw_server&) = delete;

  std::string url(std::string_view target = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(core_->acceptor.local_endpoint().port()) +
           std::string(target);
  }

  // Answers every held request with `raw`.
  void release_held(std::string_view raw = ok_200) { core_->release(raw); }

  std::size_t connections() const { return core_->connections; }
  std::size_t requests() const { return core_->requests; }
  std::size_t held() const { return core_->held.size(); }
  std::size_t max_open_requests() const { return core_->max_open; }
  std::size_t closed_after_answer() const { return core_->closed_after_answer; }
  const std::vector<std::string>& keys() const { return core_->keys; }

 private:
  struct core;

  struct conn : std::enable_shared_from_this<conn> {
    conn(std::shared_ptr<core> c, tcp::socket s) : owner(std::move(c)), socket(std::move(s)) {}

    void read() {
      parser.emplace();
      http::async_read(socket, buffer, *parser,
                       [self = shared_from_this()](const error_code& ec, std::size_t) {
                         if (ec) return self->close();
                         self->owner->on_request(self);
                       });
    }
    void answer(std::string_view raw, bool close_after) {
      out = std::string(raw);
      asio::async_write(
          socket, asio::buffer(out),
          [self = shared_from_this(), close_after](const error_code& ec, std::size_t) {
            --self->owner->open;
            if (ec) return self->close();
            if (close_after) {
              ++self->owner->closed_after_answer;
              return self->close();
            }
            self->read();
          });
    }
    void close() {
      error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
      socket.close(ignored);
      owner->live.erase(shared_from_this());
    }

    std::shared_ptr<core> owner;
    tcp::socket socket;
    beast::flat_buffer buffer;
    std::optional<http::request_parser<http::string_body>> parser;
    std::string out;
  };

  struct core : std::enable_shared_from_this<core> {
    core(asio::io_context& io, script s, std::size_t release)
        : acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          decide(std::move(s)),
          release_at(release) {}

    void accept() {
      acceptor.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket s) {
        if (ec) return;
        ++self->connections;
        auto c = std::make_shared<conn>(self, std::move(s));
        self->live.insert(c);
        c->read();
        self->accept();
      });
    }

    void on_request(const std::shared_ptr<conn>& c) {
      keys.emplace_back(c->parser->get()["Idempotency-Key"]);
      const std::size_t n = requests++;
      max_open = std::max(max_open, ++open);
      const reply r = decide ? decide(n) : reply{};
      switch (r.action) {
        case reply::kind::answer:
          return c->answer(r.raw, r.close_after);
        case reply::kind::close:
          --open;
          return c->close();
        case reply::kind::hold:
          held.push_back(c);
          if (release_at > 0 && held.size() >= release_at) release(ok_200);
          return;
      }
    }

    void release(std::string_view raw) {
      auto now = std::move(held);
      held.clear();
      for (const auto& c : now) c->answer(raw, false);
    }

    tcp::acceptor acceptor;
    script decide;
    std::size_t release_at;
    std::unordered_set<std::shared_ptr<conn>> live;
    std::vector<std::shared_ptr<conn>> held;
    std::size_t connections = 0;
    std::size_t requests = 0;
    std::size_t open = 0;
    std::size_t max_open = 0;
    std::size_t closed_after_answer = 0;
    std::vector<std::string> keys;
  };

  std::shared_ptr<core> core_;
};

// A port on 127.0.0.1 with nothing listening: bound, then closed again.
std::uint16_t refused_port(asio::io_context& io) {
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = a.local_endpoint().port();
  a.close();
  return port;
}

// --- recording observer --------------------------------------------------------------------------

struct done_event {
  std::string id;
  delivery_result result;
  unsigned attempts;
  std::chrono::steady_clock::duration latency;
  std::string detail;
  std::optional<std::chrono::milliseconds> retry_after;
};
struct retry_event {
  std::string id;
  unsigned attempt_no;
  std::string reason;
  std::chrono::milliseconds delay;
};

// Records every callback (they run on the io thread) for the test thread to wait on and read.
class recording_observer : public delivery_observer {
 public:
  void on_attempt(const delivery_request& req, unsigned attempt_no) override {
    const std::lock_guard lock(mutex_);
    attempts_.emplace_back(req.id, attempt_no);
  }
  void on_retry(const delivery_request& req, unsigned attempt_no, std::string_view reason,
                std::chrono::milliseconds delay) override {
    const std::lock_guard lock(mutex_);
    retries_.push_back({req.id, attempt_no, std::string(reason), delay});
  }
  void on_done(const delivery_request& req, delivery_result result, unsigned attempts,
               std::chrono::steady_clock::duration latency, std::string_view detail,
               std::optional<std::chrono::milliseconds> retry_after) override {
    {
      const std::lock_guard lock(mutex_);
      done_.push_back({req.id, result, attempts, latency, std::string(detail), retry_after});
    }
    changed_.notify_all();
  }

  // Waits until `n` requests are done; false after the deadline.
  bool wait_done(std::size_t n) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] { return done_.size() >= n; });
  }

  std::vector<done_event> done() const {
    const std::lock_guard lock(mutex_);
    return done_;
  }
  std::optional<done_event> done_for(const std::string& id) const {
    const std::lock_guard lock(mutex_);
    for (const auto& d : done_) {
      if (d.id == id) return d;
    }
    return std::nullopt;
  }
  std::vector<retry_event> retries() const {
    const std::lock_guard lock(mutex_);
    return retries_;
  }
  std::vector<std::pair<std::string, unsigned>> attempts() const {
    const std::lock_guard lock(mutex_);
    return attempts_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<std::string, unsigned>> attempts_;
  std::vector<retry_event> retries_;
  std::vector<done_event> done_;
};

// --- fixture -------------------------------------------------------------------------------------

// Tiny backoffs: a test retries in milliseconds.
webhook_sender_options fast_options() {
  webhook_sender_options o;
  o.connect_timeout = 2s;
  o.request_timeout = 2s;
  o.max_attempts = 4;
  o.backoff_initial = 1ms;
  o.backoff_cap = 4ms;
  o.rng_seed = 42;
  return o;
}

class webhook_sender_test : public ::testing::Test {
 protected:
  void SetUp() override {
    io_thread_ = std::thread([this] { io_.run(); });
  }

  void TearDown() override {
    on_io([this] {
      sender_.reset();
      server_.reset();
      raw_.reset();
    });
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  // Runs `f` on the io thread (sender and servers are single-threaded) and returns its result.
  template <class F>
  std::invoke_result_t<F> on_io(F f) {
    return testing::run_on_io(io_, std::move(f), deadline);
  }

  // Polls `pred` on the io thread until it holds or the deadline passes.
  template <class Pred>
  bool eventually(Pred pred) {
    return testing::eventually_on_io(io_, std::move(pred), deadline);
  }

  void make_sender(webhook_sender_options o = fast_options()) {
    on_io([&] {
      sender_ = std::make_unique<webhook_sender>(io_, o, &observer_, [this](std::string_view l) {
        const std::lock_guard lock(log_mutex_);
        log_.emplace_back(l);
      });
    });
  }

  // An http_server on 127.0.0.1:0 whose POST /hook answers with `handler`; returns its URL.
  std::string start_server(http_handler handler) {
    return on_io([&] {
      server_ = std::make_unique<http_server>(io_, http_limits{});
      server_->handle("/hook", {"POST"}, std::move(handler));
      const auto ep = server_->bind("127.0.0.1", 0);
      if (!ep) throw std::runtime_error(ep.error().message());
      server_->start();
      return "http://127.0.0.1:" + std::to_string(ep->port()) + "/hook";
    });
  }

  // A receiver answering its n-th request with answers[n] (a status, and a Retry-After value if
  // not empty), then with `then`.
  std::string start_scripted(std::vector<std::pair<unsigned, std::string>> answers,
                             unsigned then = 200) {
    auto calls = std::make_shared<std::size_t>(0);
    return start_server([answers = std::move(answers), then, calls](http_request&) {
      http_response res;
      res.status = then;
      if (*calls < answers.size()) {
        const auto& [status, retry_after] = answers[*calls];
        res.status = status;
        if (!retry_after.empty()) res.headers = {{"Retry-After", retry_after}};
      }
      ++*calls;
      return res;
    });
  }

  void start_raw(raw_server::script s, std::size_t release_at = 0) {
    on_io([&] { raw_ = std::make_unique<raw_server>(io_, std::move(s), release_at); });
  }

  static delivery_request request(std::string id, std::string url, std::string body = "{}") {
    delivery_request r;
    r.id = std::move(id);
    r.url = std::move(url);
    r.body = std::move(body);
    r.channel = "webhook";
    r.received_at = std::chrono::steady_clock::now();
    return r;
  }

  void submit(delivery_request r) {
    on_io([&] { sender_->submit(std::move(r)); });
  }

  webhook_sender_stats stats() {
    return on_io([this] { return sender_->stats(); });
  }

  std::size_t log_lines() {
    const std::lock_guard lock(log_mutex_);
    return log_.size();
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
  recording_observer observer_;
  std::unique_ptr<webhook_sender> sender_;
  std::unique_ptr<http_server> server_;
  std::unique_ptr<raw_server> raw_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

// --- tests ---------------------------------------------------------------------------------------

TEST_F(webhook_sender_test, delivers_once_with_method_path_headers_and_body) {
  std::optional<http_request> seen;
  const std::string url = start_server([&](http_request& req) {
    seen = req;
    return http_response{};
  });
  make_sender();
  const std::string body = R"({"version":"1","id":"page-1-00"})";
  auto req = request("page-1-00", url + "?token=s3cret", body);
  req.kind = routing::notification_kind::page;
  submit(req);
  ASSERT_TRUE(observer_.wait_done(1));

  const auto done = observer_.done();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].result, delivery_result::delivered);
  EXPECT_EQ(done[0].attempts, 1u);
  EXPECT_EQ(done[0].detail, "HTTP 200");
  EXPECT_GE(done[0].latency.count(), 0);
  EXPECT_EQ(observer_.attempts().size(), 1u);
  EXPECT_TRUE(observer_.retries().empty());

  on_io([&] {
    ASSERT_TRUE(seen);
    const std::string port = std::to_string(server_->local_endpoint().port());
    EXPECT_EQ(seen->method, "POST");
    EXPECT_EQ(seen->path, "/hook");
    EXPECT_EQ(seen->query, "token=s3cret");
    EXPECT_EQ(seen->body, body);
    EXPECT_EQ(seen->header("Content-Type"), "application/json");
    EXPECT_EQ(seen->header("Idempotency-Key"), "page-1-00");
    EXPECT_EQ(seen->header("Host"), "127.0.0.1:" + port);
    EXPECT_EQ(seen->header("Content-Length"), std::to_string(body.size()));
    EXPECT_EQ(seen->header("Connection"), "keep-alive");
    EXPECT_EQ(seen->header("User-Agent"), default_user_agent());
    EXPECT_TRUE(seen->header("User-Agent").starts_with("alertrouter/"));
    EXPECT_EQ(server_->stats().responses_by_class[2], 1u);
    EXPECT_EQ(sender_->pending(), 0u);
  });
  const auto s = stats();
  EXPECT_EQ(s.submitted, 1u);
  EXPECT_EQ(s.delivered, 1u);
  EXPECT_EQ(s.attempts, 1u);
  EXPECT_EQ(s.retries, 0u);
  EXPECT_EQ(log_lines(), 0u);  // nothing degraded
}

TEST_F(webhook_sender_test, host_names_are_resolved) {
  std::string host;
  const std::string url = start_server([&](http_request& req) {
    host = std::string(req.header("Host"));
    return http_response{};
  });
  make_sender();
  const std::string port = on_io([&] { return std::to_string(server_->local_endpoint().port()); });
  // /etc/hosts: 127.0.0.1 (and perhaps ::1 first; the sender then tries the next address).
  submit(request("by-name", "http://LocalHost:" + port + "/hook"));
  ASSERT_TRUE(observer_.wait_done(1));
  EXPECT_EQ(observer_.done()[0].result, delivery_result::delivered) << observer_.done()[0].detail;
  on_io([&] { EXPECT_EQ(host, "localhost:" + port); });
}

TEST_F(webhook_sender_test, retries_503_with_the_same_idempotency_key_until_delivered) {
  int calls = 0;
  std::vector<std::string> keys;
  const std::string url = start_server([&](http_request& req) {
    keys.emplace_back(req.header("Idempotency-Key"));
    http_response res;
    res.status = ++calls <= 2 ? 503 : 200;
    return res;
  });
  make_sender();
  submit(request("page-7-key", url));
  ASSERT_TRUE(observer_.wait_done(1));

  const auto done = observer_.done();
  EXPECT_EQ(done[0].result, delivery_result::delivered);
  EXPECT_EQ(done[0].attempts, 3u);
  const auto retries = observer_.retries();
  ASSERT_EQ(retries.size(), 2u);
  for (std::size_t i = 0; i < retries.size(); ++i) {
    EXPECT_EQ(retries[i].attempt_no, i + 1);
    EXPECT_EQ(retries[i].reason, "HTTP 503");
    EXPECT_LE(retries[i].delay, 4ms);
  }
  const auto attempts = observer_.attempts();
  ASSERT_EQ(attempts.size(), 3u);
  EXPECT_EQ(attempts[2].second, 3u);
  on_io([&] { EXPECT_EQ(keys, std::vector<std::string>(3, "page-7-key")); });
  const auto s = stats();
  EXPECT_EQ(s.attempts, 3u);
  EXPECT_EQ(s.retries, 2u);
  EXPECT_EQ(s.delivered, 1u);
  EXPECT_EQ(log_lines(), 2u);  // one warn line per retry
}

TEST_F(webhook_sender_test, client_errors_and_redirects_are_rejected_without_retry) {
  unsigned status = 400;
  int calls = 0;
  const std::string url = start_server([&](http_request&) {
    ++calls;
    http_response res;
    res.status = status;
    res.body = status == 400 ? "bad payload\n" : "";
    return res;
  });
  make_sender();
  const std::vector<unsigned> statuses = {400, 404, 301, 413};
  for (std::size_t i = 0; i < statuses.size(); ++i) {
    on_io([&] { status = statuses[i]; });
    submit(request("id-" + std::to_string(i), url));
    ASSERT_TRUE(observer_.wait_done(i + 1));
    const auto d = observer_.done().back();
    EXPECT_EQ(d.result, delivery_result::rejected) << statuses[i];
    EXPECT_EQ(d.attempts, 1u) << statuses[i];
    if (statuses[i] == 400) {
      EXPECT_EQ(d.detail, "HTTP 400: bad payload");
    } else {
      EXPECT_EQ(d.detail, "HTTP " + std::to_string(statuses[i]));
    }
  }
  EXPECT_TRUE(observer_.retries().empty());
  on_io([&] { EXPECT_EQ(calls, 4); });
  const auto s = stats();
  EXPECT_EQ(s.rejected, 4u);
  EXPECT_EQ(s.attempts, 4u);
  EXPECT_EQ(log_lines(), 4u);
}

TEST_F(webhook_sender_test, too_many_requests_is_retried_honouring_retry_after_up_to_the_cap) {
  const std::string url = start_scripted({
      {429, "3600"},  // an hour: capped at backoff_cap
      {429, "0"},
  });
  auto o = fast_options();
  o.backoff_cap = 30ms;
  make_sender(o);
  submit(request("rate-limited", url));
  ASSERT_TRUE(observer_.wait_done(1));
  EXPECT_EQ(observer_.done()[0].result, delivery_result::delivered);
  EXPECT_EQ(observer_.done()[0].attempts, 3u);
  const auto retries = observer_.retries();
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_EQ(retries[0].reason, "HTTP 429");
  EXPECT_EQ(retries[0].delay, 30ms);
  EXPECT_EQ(retries[1].delay, 0ms);
}

// With one attempt allowed (the outbox's transport) the receiver's Retry-After goes to whoever
// retries, capped as the sender would cap it; an answer without one, or a connection error,
// carries none.
TEST_F(webhook_sender_test, giving_up_passes_on_the_receivers_retry_after) {
  const std::string url = start_scripted(
      {
          {429, "7"},
          {503, "3600"},                           // capped at backoff_cap
          {503, "Fri, 27 Nov 2026 07:00:00 GMT"},  // a date: not used
      },
      500);
  auto o = fast_options();
  o.max_attempts = 1;
  o.backoff_cap = 60s;
  make_sender(o);
  for (int i = 0; i < 4; ++i) {
    submit(request("r" + std::to_string(i), url));
    ASSERT_TRUE(observer_.wait_done(static_cast<std::size_t>(i) + 1));
  }
  const auto refused = on_io([&] { return refused_port(io_); });
  submit(request("refused", "http://127.0.0.1:" + std::to_string(refused) + "/hook"));
  ASSERT_TRUE(observer_.wait_done(5));
  const auto done = observer_.done();
  for (const auto& d : done) EXPECT_EQ(d.result, delivery_result::gave_up) << d.id;
  EXPECT_EQ(done[0].retry_after, std::optional(std::chrono::milliseconds(7s)));
  EXPECT_EQ(done[1].retry_after, std::optional(std::chrono::milliseconds(60s)));
  EXPECT_EQ(done[2].retry_after, std::nullopt);
  EXPECT_EQ(done[3].retry_after, std::nullopt);
  EXPECT_EQ(done[4].retry_after, std::nullopt);
  EXPECT_TRUE(observer_.retries().empty());
}

TEST_F(webhook_sender_test, connection_refused_is_retried_until_it_gives_up) {
  const auto port = on_io([&] { return refused_port(io_); });
  make_sender();  // max_attempts 4
  submit(request("nobody-home", "http://127.0.0.1:" + std::to_string(port) + "/hook"));
  ASSERT_TRUE(observer_.wait_done(1));
  const auto d = observer_.done()[0];
  EXPECT_EQ(d.result, delivery_result::gave_up);
  EXPECT_EQ(d.attempts, 4u);
  EXPECT_TRUE(d.detail.starts_with("connect: ")) << d.detail;
  EXPECT_EQ(observer_.attempts().size(), 4u);
  const auto retries = observer_.retries();
  ASSERT_EQ(retries.size(), 3u);
  EXPECT_TRUE(retries[0].reason.starts_with("connect: ")) << retries[0].reason;
  const auto s = stats();
  EXPECT_EQ(s.gave_up, 1u);
  EXPECT_EQ(s.retries, 3u);
  EXPECT_EQ(s.connections_opened, 0u);
  EXPECT_EQ(log_lines(), 4u);  // three retries, one give-up
}

TEST_F(webhook_sender_test, backoff_is_full_jitter_under_the_exponential_ceiling_and_seedable) {
  const auto port = on_io([&] { return refused_port(io_); });
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  auto o = fast_options();
  o.max_attempts = 7;
  o.backoff_initial = 2ms;
  o.backoff_factor = 3.0;
  o.backoff_cap = 25ms;
  o.rng_seed = 7;
  std::vector<std::vector<std::chrono::milliseconds>> runs;
  for (int run = 0; run < 2; ++run) {
    make_sender(o);
    submit(request("r" + std::to_string(run), url));
    ASSERT_TRUE(observer_.wait_done(static_cast<std::size_t>(run + 1)));
    std::vector<std::chrono::milliseconds> delays;
    for (const auto& r : observer_.retries()) {
      if (r.id == "r" + std::to_string(run)) delays.push_back(r.delay);
    }
    runs.push_back(delays);
  }
  const std::vector<std::chrono::milliseconds> ceilings = {2ms, 6ms, 18ms, 25ms, 25ms, 25ms};
  ASSERT_EQ(runs[0].size(), ceilings.size());
  for (std::size_t i = 0; i < ceilings.size(); ++i) {
    EXPECT_GE(runs[0][i], 0ms);
    EXPECT_LE(runs[0][i], ceilings[i]) << "retry " << i;
  }
  EXPECT_EQ(runs[0], runs[1]);  // same seed, same jitter
}

TEST_F(webhook_sender_test, request_timeout_is_retried_on_a_new_connection) {
  start_raw([](std::size_t n) {
    raw_server::reply r;
    if (n == 0) r.action = raw_server::reply::kind::hold;  // never answered
    return r;
  });
  auto o = fast_options();
  o.request_timeout = 100ms;
  make_sender(o);
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("slow", url));
  ASSERT_TRUE(observer_.wait_done(1));
  const auto d = observer_.done()[0];
  EXPECT_EQ(d.result, delivery_result::delivered);
  EXPECT_EQ(d.attempts, 2u);
  const auto retries = observer_.retries();
  ASSERT_EQ(retries.size(), 1u);
  EXPECT_EQ(retries[0].reason, "response: timed out after 100ms");
  on_io([&] {
    EXPECT_EQ(raw_->connections(), 2u);  // the timed-out connection is not reused
    EXPECT_EQ(raw_->keys(), std::vector<std::string>(2, "slow"));
  });
}

TEST_F(webhook_sender_test, connection_closed_without_answer_and_garbage_answer_are_retried) {
  start_raw([](std::size_t n) {
    raw_server::reply r;
    if (n == 0) r.action = raw_server::reply::kind::close;
    if (n == 1) r.raw = "garbage\r\n\r\n";
    return r;
  });
  make_sender();
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("flaky", url));
  ASSERT_TRUE(observer_.wait_done(1));
  const auto d = observer_.done()[0];
  EXPECT_EQ(d.result, delivery_result::delivered);
  EXPECT_EQ(d.attempts, 3u);  // a fresh connection closed on us is a failed attempt
  const auto retries = observer_.retries();
  ASSERT_EQ(retries.size(), 2u);
  EXPECT_TRUE(retries[0].reason.starts_with("response: ")) << retries[0].reason;
  EXPECT_TRUE(retries[1].reason.starts_with("response: ")) << retries[1].reason;
  EXPECT_EQ(stats().stale_resends, 0u);
}

TEST_F(webhook_sender_test, sequential_deliveries_reuse_one_keep_alive_connection) {
  const std::string url = start_server([](http_request&) { return http_response{}; });
  make_sender();
  for (std::size_t i = 0; i < 5; ++i) {
    submit(request("seq-" + std::to_string(i), url));
    ASSERT_TRUE(observer_.wait_done(i + 1));
    EXPECT_EQ(observer_.done().back().result, delivery_result::delivered);
  }
  on_io([&] {
    EXPECT_EQ(server_->stats().connections_accepted, 1u);
    EXPECT_EQ(server_->stats().responses_by_class[2], 5u);
    EXPECT_EQ(sender_->connection_count(), 1u);  // kept for the next one
  });
  const auto s = stats();
  EXPECT_EQ(s.connections_opened, 1u);
  EXPECT_EQ(s.connections_reused, 4u);
}

TEST_F(webhook_sender_test, idle_connection_is_closed_after_the_idle_timeout) {
  const std::string url = start_server([](http_request&) { return http_response{}; });
  auto o = fast_options();
  o.idle_timeout = 50ms;
  make_sender(o);
  submit(request("once", url));
  ASSERT_TRUE(observer_.wait_done(1));
  EXPECT_TRUE(eventually([&] { return sender_->connection_count() == 0; }));
  EXPECT_TRUE(eventually([&] { return server_->stats().connections_open == 0; }));
  EXPECT_EQ(stats().idle_closed, 1u);
}

TEST_F(webhook_sender_test, reused_connection_closed_by_the_peer_is_resent_at_once) {
  // The first answer allows keep-alive, then the server closes: the connection sits in the
  // sender's pool, dead.
  start_raw([](std::size_t n) {
    raw_server::reply r;
    r.close_after = n == 0;
    return r;
  });
  make_sender();
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("first", url));
  ASSERT_TRUE(observer_.wait_done(1));
  ASSERT_TRUE(eventually([&] { return raw_->closed_after_answer() == 1; }));

  submit(request("second", url));
  ASSERT_TRUE(observer_.wait_done(2));
  const auto d = observer_.done_for("second");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->result, delivery_result::delivered);
  EXPECT_EQ(d->attempts, 1u);  // not a failed attempt
  EXPECT_TRUE(observer_.retries().empty());
  const auto s = stats();
  EXPECT_EQ(s.stale_resends, 1u);
  EXPECT_EQ(s.connections_reused, 1u);
  EXPECT_EQ(s.connections_opened, 2u);
  on_io([&] { EXPECT_EQ(raw_->connections(), 2u); });
}

TEST_F(webhook_sender_test, concurrency_per_destination_never_exceeds_the_cap) {
  // Requests are held until two are open at once, then answered together: the pair proves the
  // cap is used, a third would prove it broken.
  start_raw([](std::size_t) { return raw_server::reply{raw_server::reply::kind::hold}; }, 2);
  auto o = fast_options();
  o.max_in_flight_per_destination = 2;
  make_sender(o);
  const std::string url = on_io([&] { return raw_->url(); });
  on_io([&] {
    for (int i = 0; i < 8; ++i) sender_->submit(request("c" + std::to_string(i), url));
    EXPECT_EQ(sender_->pending(), 8u);
  });
  ASSERT_TRUE(observer_.wait_done(8));
  for (const auto& d : observer_.done()) EXPECT_EQ(d.result, delivery_result::delivered);
  on_io([&] {
    EXPECT_EQ(raw_->requests(), 8u);
    EXPECT_EQ(raw_->max_open_requests(), 2u);
    EXPECT_LE(raw_->connections(), 2u);
  });
}

TEST_F(webhook_sender_test, submits_over_max_pending_are_dropped_and_counted) {
  const std::string url = start_server([](http_request&) { return http_response{}; });
  auto o = fast_options();
  o.max_pending = 3;
  make_sender(o);
  on_io([&] {
    for (int i = 0; i < 5; ++i) sender_->submit(request("p" + std::to_string(i), url));
    EXPECT_EQ(sender_->pending(), 3u);
  });
  ASSERT_TRUE(observer_.wait_done(5));
  for (const std::string id : {"p0", "p1", "p2"}) {
    EXPECT_EQ(observer_.done_for(id)->result, delivery_result::delivered) << id;
  }
  for (const std::string id : {"p3", "p4"}) {
    const auto d = observer_.done_for(id);
    EXPECT_EQ(d->result, delivery_result::dropped) << id;
    EXPECT_EQ(d->detail, "queue full");
    EXPECT_EQ(d->attempts, 0u);
  }
  const auto s = stats();
  EXPECT_EQ(s.submitted, 5u);
  EXPECT_EQ(s.dropped, 2u);
  EXPECT_EQ(s.delivered, 3u);
  EXPECT_EQ(log_lines(), 2u);
}

TEST_F(webhook_sender_test, observer_never_runs_inside_submit) {
  const std::string url = start_server([](http_request&) { return http_response{}; });
  auto o = fast_options();
  o.max_pending = 1;
  make_sender(o);
  on_io([&] {
    sender_->submit(request("ok", url));
    sender_->submit(request("full", url));
    sender_->submit(request("bad", "https://example.org/"));
    EXPECT_TRUE(observer_.done().empty());
    EXPECT_TRUE(observer_.attempts().empty());
  });
  ASSERT_TRUE(observer_.wait_done(3));
}

TEST_F(webhook_sender_test, stop_lets_in_flight_and_queued_work_finish_before_the_grace) {
  // The first request is held until stop() has been called; the rest are answered at once.
  start_raw([](std::size_t n) {
    raw_server::reply r;
    if (n == 0) r.action = raw_server::reply::kind::hold;
    return r;
  });
  auto o = fast_options();
  o.max_in_flight_per_destination = 1;
  make_sender(o);
  const std::string url = on_io([&] { return raw_->url(); });
  for (const std::string id : {"a", "b", "c"}) submit(request(id, url));
  ASSERT_TRUE(eventually([&] { return raw_->held() == 1; }));

  std::promise<void> stopped;
  on_io([&] {
    // A long grace: on_stopped must come as soon as the work is done, not when grace ends.
    sender_->stop(60s, [&] { stopped.set_value(); });
    raw_->release_held();
  });
  ASSERT_EQ(stopped.get_future().wait_for(deadline), std::future_status::ready);
  ASSERT_TRUE(observer_.wait_done(3));
  for (const std::string id : {"a", "b", "c"}) {
    EXPECT_EQ(observer_.done_for(id)->result, delivery_result::delivered) << id;
  }
  on_io([&] {
    EXPECT_EQ(sender_->pending(), 0u);
    EXPECT_EQ(sender_->connection_count(), 0u);  // idle connections closed once stopped
  });
}

TEST_F(webhook_sender_test, stop_drops_what_is_left_when_the_grace_ends) {
  start_raw([](std::size_t) { return raw_server::reply{raw_server::reply::kind::hold}; });
  // A destination that asks to be retried in 30 s: its retry falls after the grace.
  const std::string later_url = start_server([](http_request&) {
    http_response res;
    res.status = 503;
    res.headers = {{"Retry-After", "30"}};
    return res;
  });
  auto o = fast_options();
  o.max_in_flight_per_destination = 1;
  o.backoff_cap = 60s;
  make_sender(o);
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("in-flight", url));
  submit(request("queued", url));
  submit(request("retrying", later_url));
  ASSERT_TRUE(eventually([&] { return raw_->held() == 1; }));
  ASSERT_TRUE(eventually([&] { return observer_.retries().size() == 1; }));
  EXPECT_EQ(observer_.retries()[0].delay, 30s);

  std::promise<void> stopped;
  on_io([&] {
    EXPECT_EQ(sender_->pending(), 3u);
    sender_->stop(100ms, [&] { stopped.set_value(); });
    sender_->submit(request("after-stop", url));
  });
  ASSERT_EQ(stopped.get_future().wait_for(deadline), std::future_status::ready);
  ASSERT_TRUE(observer_.wait_done(4));

  const auto in_flight = observer_.done_for("in-flight");
  EXPECT_EQ(in_flight->result, delivery_result::dropped);
  EXPECT_EQ(in_flight->attempts, 1u);
  EXPECT_EQ(in_flight->detail, "shutdown");
  const auto queued = observer_.done_for("queued");
  EXPECT_EQ(queued->result, delivery_result::dropped);
  EXPECT_EQ(queued->attempts, 0u);
  const auto retrying = observer_.done_for("retrying");
  EXPECT_EQ(retrying->result, delivery_result::dropped);
  EXPECT_EQ(retrying->attempts, 1u);
  // Dropped when stop() was called, not when the grace ended: its retry was due after it.
  EXPECT_EQ(retrying->detail, "shutdown: next retry after the grace period");
  EXPECT_EQ(observer_.done_for("after-stop")->result, delivery_result::dropped);
  on_io([&] {
    EXPECT_EQ(sender_->pending(), 0u);
    EXPECT_EQ(sender_->connection_count(), 0u);
    EXPECT_EQ(sender_->stats().dropped, 4u);
  });
}

TEST_F(webhook_sender_test, stop_with_nothing_pending_reports_stopped) {
  make_sender();
  std::promise<void> stopped;
  on_io([&] { sender_->stop(60s, [&] { stopped.set_value(); }); });
  EXPECT_EQ(stopped.get_future().wait_for(deadline), std::future_status::ready);
}

TEST_F(webhook_sender_test, unusable_urls_and_ids_are_rejected_without_an_attempt) {
  make_sender();
  const std::vector<delivery_request> bad = {
      request("tls", "https://hooks.example.org/x"),
      request("ftp", "ftp://hooks.example.org/x"),
      request("relative", "/just/a/path"),
      request("creds", "http://user:pw@127.0.0.1:1/x"),
      request("port", "http://127.0.0.1:99999/x"),
      request("space", "http://127.0.0.1/a b"),
      request("", "http://127.0.0.1:1/x"),
      request("evil\r\nX-Injected: 1", "http://127.0.0.1:1/x"),
  };
  for (const auto& r : bad) submit(r);
  ASSERT_TRUE(observer_.wait_done(bad.size()));
  for (const auto& d : observer_.done()) {
    EXPECT_EQ(d.result, delivery_result::rejected) << d.id;
    EXPECT_EQ(d.attempts, 0u) << d.id;
  }
  EXPECT_EQ(observer_.done_for("tls")->detail, "https is not supported yet (only http://)");
  EXPECT_TRUE(observer_.attempts().empty());
  const auto s = stats();
  EXPECT_EQ(s.rejected, bad.size());
  EXPECT_EQ(s.attempts, 0u);
}

TEST_F(webhook_sender_test, oversized_response_body_is_cut_and_the_connection_not_reused) {
  const std::string url = start_server([](http_request&) {
    http_response res;
    res.body = std::string(256 * 1024, 'x');
    return res;
  });
  make_sender();  // max_response_body 64 KiB
  submit(request("big-1", url));
  ASSERT_TRUE(observer_.wait_done(1));
  submit(request("big-2", url));
  ASSERT_TRUE(observer_.wait_done(2));
  for (const auto& d : observer_.done()) EXPECT_EQ(d.result, delivery_result::delivered);
  EXPECT_EQ(stats().responses_truncated, 2u);
  EXPECT_EQ(stats().connections_reused, 0u);
  on_io([&] { EXPECT_EQ(server_->stats().connections_accepted, 2u); });
}

TEST_F(webhook_sender_test, status_line_decides_even_when_a_chunked_body_is_too_large) {
  std::string chunked;
  for (int i = 0; i < 40; ++i) chunked += "1000\r\n" + std::string(4096, 'e') + "\r\n";
  chunked += "0\r\n\r\n";
  start_raw([chunked](std::size_t n) {
    raw_server::reply r;
    if (n == 0) r.raw = "HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked;
    return r;
  });
  make_sender();  // max_response_body 64 KiB < 160 KiB
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("chunky", url));
  ASSERT_TRUE(observer_.wait_done(1));
  EXPECT_EQ(observer_.done()[0].result, delivery_result::delivered);
  EXPECT_EQ(observer_.done()[0].attempts, 2u);
  ASSERT_EQ(observer_.retries().size(), 1u);
  EXPECT_EQ(observer_.retries()[0].reason, "HTTP 500");
  EXPECT_EQ(stats().responses_truncated, 1u);
  on_io([&] { EXPECT_EQ(raw_->connections(), 2u); });  // the cut connection was closed
}

TEST_F(webhook_sender_test, destroying_the_sender_abandons_work_without_callbacks) {
  start_raw([](std::size_t) { return raw_server::reply{raw_server::reply::kind::hold}; });
  make_sender();
  const std::string url = on_io([&] { return raw_->url(); });
  submit(request("held", url));
  ASSERT_TRUE(eventually([&] { return raw_->held() == 1; }));
  on_io([&] { sender_.reset(); });
  // Let anything the sender left behind run: a round trip through the io thread suffices.
  on_io([] {});
  on_io([] {});
  EXPECT_TRUE(observer_.done_for("held") == std::nullopt);
}

// --- parse_http_url ------------------------------------------------------------------------------

TEST(parse_http_url, accepts_http_urls) {
  struct row {
    std::string url, host;
    std::uint16_t port;
    std::string target, host_header;
  };
  const std::vector<row> rows = {
      {"http://Example.ORG/hook", "example.org", 80, "/hook", "example.org"},
      {"HTTP://example.org", "example.org", 80, "/", "example.org"},
      {"http://example.org?x=1", "example.org", 80, "/?x=1", "example.org"},
      {"http://10.0.0.1:8080/a/b?c=d&e#frag", "10.0.0.1", 8080, "/a/b?c=d&e", "10.0.0.1:8080"},
      {"http://[::1]:9/x", "::1", 9, "/x", "[::1]:9"},
      {"http://[::1]/x", "::1", 80, "/x", "[::1]"},
      {"http://my_host-1.internal:65535/", "my_host-1.internal", 65535, "/",
       "my_host-1.internal:65535"},
  };
  for (const auto& r : rows) {
    const auto res = parse_http_url(r.url);
    ASSERT_TRUE(res.url) << r.url << ": " << res.error;
    EXPECT_TRUE(res.error.empty());
    EXPECT_EQ(res.url->host, r.host) << r.url;
    EXPECT_EQ(res.url->port, r.port) << r.url;
    EXPECT_EQ(res.url->target, r.target) << r.url;
    EXPECT_EQ(res.url->host_header, r.host_header) << r.url;
  }
}

TEST(parse_http_url, rejects_everything_else_with_a_reason) {
  const std::vector<std::string> bad = {
      "",
      "https://example.org/",
      "ftp://example.org/",
      "example.org/hook",
      "://example.org",
      "http://",
      "http:///path",
      "http://:80/",
      "http://example.org:/",
      "http://example.org:0/",
      "http://example.org:65536/",
      "http://example.org:8a/",
      "http://example.org:123456/",
      "http://user@example.org/",
      "http://ex ample.org/",
      "http://example.org/a\nb",
      "http://exa%6dple.org/",
      "http://[::1/",
      "http://[nonsense]/",
      "http://[::1]x/",
      std::string("http://example.org/\0", 20),
  };
  for (const auto& url : bad) {
    const auto res = parse_http_url(url);
    EXPECT_FALSE(res.url) << url;
    EXPECT_FALSE(res.error.empty()) << url;
  }
  EXPECT_EQ(parse_http_url("https://x/").error, "https is not supported yet (only http://)");
}

TEST(delivery_result, has_names) {
  EXPECT_EQ(to_string(delivery_result::delivered), "delivered");
  EXPECT_EQ(to_string(delivery_result::rejected), "rejected");
  EXPECT_EQ(to_string(delivery_result::gave_up), "gave_up");
  EXPECT_EQ(to_string(delivery_result::dropped), "dropped");
}

}  // namespace
}  // namespace alertrouter::daemon
