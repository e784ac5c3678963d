#include "daemon/outbox.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "daemon/http_server.h"
#include "daemon/webhook_sender.h"
#include "tests/fakes/run_on_io.h"

// The outbox over the real transport (webhook_sender) against a real HTTP receiver
// (http_server) on 127.0.0.1, all on one io thread. The journal records what the store would be
// told.

namespace alertrouter::daemon {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr auto deadline = 5s;

struct journal_event {
  std::string what;  // attempted | delivered | dead
  std::string id;
  std::uint32_t attempts;
  std::string error;
};

class recording_journal final : public outbox_journal {
 public:
  void attempted(const std::string& id, std::uint32_t attempts, std::int64_t next_attempt_ms,
                 std::string_view last_error) override {
    (void)next_attempt_ms;
    events.push_back({"attempted", id, attempts, std::string(last_error)});
  }
  void delivered(const std::string& id, std::uint32_t attempts, std::int64_t at_ms) override {
    (void)at_ms;
    events.push_back({"delivered", id, attempts, ""});
  }
  void dead(const std::string& id, std::uint32_t attempts, std::int64_t at_ms,
            std::string_view last_error) override {
    (void)at_ms;
    events.push_back({"dead", id, attempts, std::string(last_error)});
  }
  std::vector<journal_event> events;
};

struct done_event {
  std::string id;
  delivery_result result;
  unsigned attempts;
};

class recording_observer final : public delivery_observer {
 public:
  void on_attempt(const delivery_request& req, unsigned attempt_no) override {
    attempts.emplace_back(req.id, attempt_no);
  }
  void on_retry(const delivery_request& req, unsigned, std::string_view,
                std::chrono::milliseconds delay) override {
    retries.push_back(req.id);
    delays.push_back(delay);
  }
  void on_done(const delivery_request& req, delivery_result result, unsigned n,
               std::chrono::steady_clock::duration, std::string_view,
               std::optional<std::chrono::milliseconds>) override {
    done.push_back({req.id, result, n});
  }
  std::vector<std::pair<std::string, unsigned>> attempts;
  std::vector<std::string> retries;
  std::vector<std::chrono::milliseconds> delays;  // of each retry, in order
  std::vector<done_event> done;
};

class outbox_test : public ::testing::Test {
 protected:
  void SetUp() override {
    io_thread_ = std::thread([this] { io_.run(); });
    on_io([this] {
      receiver_ = std::make_unique<http_server>(io_, http_limits{});
      // POST /<name>: answers the next scripted status for <name> (200 once the script is used
      // up) and records the Idempotency-Key of every request, in arrival order.
      for (const char* name : {"/a", "/b", "/c", "/d"}) {
        receiver_->handle(name, {"POST"}, [this](http_request& req) {
          arrivals_.emplace_back(req.path, std::string(req.header("Idempotency-Key")));
          arrived_at_.emplace_back(req.path, std::chrono::steady_clock::now());
          http_response res;
          auto& script = scripts_[req.path];
          if (!script.empty()) {
            res.status = script.front();
            script.erase(script.begin());
            if (auto& waits = retry_afters_[req.path]; !waits.empty()) {
              res.headers.emplace_back("Retry-After", waits.front());
              waits.erase(waits.begin());
            }
          }
          return res;
        });
      }
      const auto ep = receiver_->bind("127.0.0.1", 0);
      if (!ep) throw std::runtime_error(ep.error().message());
      receiver_->start();
      base_ = "http://127.0.0.1:" + std::to_string(ep->port());
    });
  }

  void make_outbox(outbox_options o) {
    on_io([&] {
      o.rng_seed = 7;
      box_ = std::make_unique<outbox>(io_, journal_, o, observer_);
      webhook_sender_options so;
      so.max_attempts = 1;  // the outbox owns retries
      sender_ = std::make_unique<webhook_sender>(io_, so, box_.get());
      box_->set_transport(*sender_);
    });
  }

  void TearDown() override {
    on_io([this] {
      sender_.reset();
      box_.reset();
      receiver_.reset();
    });
    work_.reset();
    io_.stop();
    io_thread_.join();
  }

  template <class F>
  std::invoke_result_t<F> on_io(F f) {
    return testing::run_on_io(io_, std::move(f), deadline);
  }

  template <class Pred>
  bool eventually(Pred pred) {
    return testing::eventually_on_io(io_, std::move(pred), deadline);
  }

  delivery_request request(std::string id, const std::string& path,
                           routing::notification_kind kind = routing::notification_kind::page) {
    delivery_request r;
    r.id = std::move(id);
    r.url = base_ + path;
    r.body = "{\"id\":\"" + r.id + "\"}";
    r.channel = "webhook";
    r.kind = kind;
    r.received_at = std::chrono::steady_clock::now();
    return r;
  }

  std::vector<std::string> keys_at(const std::string& path) {
    return on_io([&] {
      std::vector<std::string> keys;
      for (const auto& [p, k] : arrivals_) {
        if (p == path) keys.push_back(k);
      }
      return keys;
    });
  }

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread io_thread_;
  std::unique_ptr<http_server> receiver_;
  std::string base_;
  std::map<std::string, std::vector<unsigned>> scripts_;  // io thread only
  std::vector<std::pair<std::string, std::string>> arrivals_;
  // Retry-After of each scripted answer (io thread only), and when each request arrived.
  std::map<std::string, std::vector<std::string>> retry_afters_;
  std::vector<std::pair<std::string, std::chrono::steady_clock::time_point>> arrived_at_;
  recording_journal journal_;
  recording_observer observer_;
  std::unique_ptr<outbox> box_;
  std::unique_ptr<webhook_sender> sender_;
};

outbox_options fast() {
  outbox_options o;
  o.initial_backoff = 5ms;
  o.max_backoff = 20ms;
  o.give_up_after = std::chrono::hours(1);
  return o;
}

TEST_F(outbox_test, retries_until_delivered_and_keeps_order_per_destination) {
  on_io([this] { scripts_["/a"] = {503, 500, 429}; });
  make_outbox(fast());
  on_io([this] {
    box_->submit(request("page-1", "/a"));
    box_->submit(request("resolve-1", "/a", routing::notification_kind::resolve));
    box_->submit(request("page-2", "/b"));
    EXPECT_EQ(box_->pending(), 3u);
  });
  ASSERT_TRUE(eventually([this] { return box_->pending() == 0; }));
  // The page is retried under its own id, and the resolve behind it waits for its delivery.
  EXPECT_EQ(keys_at("/a"),
            (std::vector<std::string>{"page-1", "page-1", "page-1", "page-1", "resolve-1"}));
  EXPECT_EQ(keys_at("/b"), std::vector<std::string>{"page-2"});
  on_io([this] {
    ASSERT_EQ(observer_.done.size(), 3u);
    std::map<std::string, done_event> by_id;
    for (const auto& d : observer_.done) by_id.emplace(d.id, d);
    EXPECT_EQ(by_id.at("page-1").result, delivery_result::delivered);
    EXPECT_EQ(by_id.at("page-1").attempts, 4u);
    EXPECT_EQ(by_id.at("resolve-1").attempts, 1u);
    EXPECT_EQ(observer_.retries, (std::vector<std::string>{"page-1", "page-1", "page-1"}));
    // Attempts are numbered across retries.
    std::vector<unsigned> page_attempts;
    for (const auto& [id, n] : observer_.attempts) {
      if (id == "page-1") page_attempts.push_back(n);
    }
    EXPECT_EQ(page_attempts, (std::vector<unsigned>{1, 2, 3, 4}));
    std::vector<std::string> journal;
    for (const auto& e : journal_.events) {
      if (e.id == "page-1") journal.push_back(e.what + ":" + std::to_string(e.attempts));
    }
    EXPECT_EQ(journal, (std::vector<std::string>{"attempted:1", "attempted:2", "attempted:3",
                                                 "delivered:4"}));
    EXPECT_EQ(journal_.events[0].error, "HTTP 503");
    EXPECT_EQ(box_->dead_count(), 0u);
    EXPECT_FALSE(box_->oldest_pending_ms().has_value());
  });
}

// A receiver that says how long to wait (429 or 503 with Retry-After) is retried after that
// long, not after the jittered backoff; at most after max_backoff.
TEST_F(outbox_test, a_retry_waits_what_the_receivers_retry_after_asks_up_to_max_backoff) {
  on_io([this] {
    scripts_["/a"] = {429};
    retry_afters_["/a"] = {"1"};
    scripts_["/b"] = {503};
    retry_afters_["/b"] = {"3600"};
    scripts_["/c"] = {503};  // no Retry-After: the backoff, at most initial_backoff the first time
  });
  auto o = fast();
  o.initial_backoff = 1ms;
  o.max_backoff = 1200ms;
  make_outbox(o);
  on_io([this] {
    box_->submit(request("asks-1s", "/a"));
    box_->submit(request("asks-1h", "/b"));
    box_->submit(request("asks-nothing", "/c"));
  });
  ASSERT_TRUE(eventually([this] { return box_->pending() == 0; }));
  on_io([this] {
    std::map<std::string, std::chrono::milliseconds> delay;
    ASSERT_EQ(observer_.retries.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) delay[observer_.retries[i]] = observer_.delays[i];
    EXPECT_EQ(delay.at("asks-1s"), 1000ms);
    EXPECT_EQ(delay.at("asks-1h"), 1200ms);
    EXPECT_LE(delay.at("asks-nothing"), 1ms);
    // Timers never fire early: each retry arrived at least its delay after the first attempt.
    for (const auto& [path, wait] : {std::pair{"/a", 1000ms}, std::pair{"/b", 1200ms}}) {
      std::vector<std::chrono::steady_clock::time_point> at;
      for (const auto& [p, t] : arrived_at_) {
        if (p == path) at.push_back(t);
      }
      ASSERT_EQ(at.size(), 2u) << path;
      EXPECT_GE(at[1] - at[0], wait) << path;
    }
    for (const auto& d : observer_.done) EXPECT_EQ(d.result, delivery_result::delivered) << d.id;
  });
}

TEST_F(outbox_test, a_4xx_is_dead_lettered_at_once_and_unblocks_the_queue) {
  on_io([this] { scripts_["/c"] = {400}; });
  make_outbox(fast());
  on_io([this] {
    box_->submit(request("page-bad", "/c"));
    box_->submit(request("page-next", "/c"));
  });
  ASSERT_TRUE(eventually([this] { return box_->pending() == 0; }));
  EXPECT_EQ(keys_at("/c"), (std::vector<std::string>{"page-bad", "page-next"}));
  on_io([this] {
    ASSERT_EQ(journal_.events.size(), 2u);
    EXPECT_EQ(journal_.events[0].what, "dead");
    EXPECT_EQ(journal_.events[0].attempts, 1u);
    EXPECT_EQ(journal_.events[0].error.rfind("HTTP 400", 0), 0u) << journal_.events[0].error;
    EXPECT_EQ(journal_.events[1].what, "delivered");
    EXPECT_EQ(box_->dead_count(), 1u);
    const auto listed = box_->list(10);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].req.id, "page-bad");
    EXPECT_TRUE(listed[0].dead);
    EXPECT_EQ(observer_.done[0].result, delivery_result::rejected);
  });
}

TEST_F(outbox_test, gives_up_after_the_deadline_or_max_attempts_then_serves_the_next) {
  on_io([this] { scripts_["/d"] = std::vector<unsigned>(100, 503); });
  outbox_options o = fast();
  o.max_attempts = 3;
  make_outbox(o);
  on_io([this] {
    box_->submit(request("page-doomed", "/d"));
    box_->submit(request("page-after", "/d"));
  });
  ASSERT_TRUE(eventually([this] { return box_->dead_count() == 2u; }));
  on_io([this] {
    EXPECT_EQ(observer_.done.at(0).id, "page-doomed");
    EXPECT_EQ(observer_.done.at(0).result, delivery_result::gave_up);
    EXPECT_EQ(observer_.done.at(0).attempts, 3u);
    EXPECT_EQ(journal_.events.back().what, "dead");
    EXPECT_EQ(journal_.events.back().error, "HTTP 503");
  });
  EXPECT_EQ(keys_at("/d").size(), 6u);
}

TEST_F(outbox_test, give_up_after_counts_from_acceptance_even_before_this_process) {
  on_io([this] { scripts_["/d"] = {503}; });
  outbox_options o = fast();
  o.give_up_after = 1h;
  make_outbox(o);
  on_io([this] {
    outbox_entry old;
    old.req = request("page-old", "/d");
    old.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                         (std::chrono::system_clock::now() - 2h).time_since_epoch())
                         .count();
    old.attempts = 40;
    box_->resume(std::move(old));
  });
  ASSERT_TRUE(eventually([this] { return box_->dead_count() == 1u; }));
  on_io([this] {
    ASSERT_EQ(observer_.done.size(), 1u);
    EXPECT_EQ(observer_.done[0].attempts, 41u);  // numbering carries on from the store
    EXPECT_EQ(observer_.done[0].result, delivery_result::gave_up);
  });
}

TEST_F(outbox_test, resumed_entries_keep_their_id_and_order_before_new_ones) {
  make_outbox(fast());
  on_io([this] {
    outbox_entry e;
    e.req = request("page-from-before", "/a");
    e.created_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
    e.attempts = 2;
    box_->resume(std::move(e));
    box_->submit(request("resolve-now", "/a", routing::notification_kind::resolve));
  });
  ASSERT_TRUE(eventually([this] { return box_->pending() == 0; }));
  EXPECT_EQ(keys_at("/a"), (std::vector<std::string>{"page-from-before", "resolve-now"}));
  on_io([this] { EXPECT_EQ(observer_.done.at(0).attempts, 3u); });
}

TEST_F(outbox_test, stop_leaves_unfinished_work_pending_not_dead) {
  on_io([this] { scripts_["/a"] = std::vector<unsigned>(100, 503); });
  outbox_options o = fast();
  o.initial_backoff = 10s;  // the retry would come long after the stop
  o.max_backoff = 10s;
  make_outbox(o);
  on_io([this] { box_->submit(request("page-1", "/a")); });
  ASSERT_TRUE(eventually([this] { return !observer_.retries.empty(); }));
  bool stopped = false;
  on_io([&] { box_->stop(1s, [&] { stopped = true; }); });
  ASSERT_TRUE(eventually([&] { return stopped; }));
  on_io([this] {
    EXPECT_EQ(box_->pending(), 1u);
    EXPECT_EQ(box_->dead_count(), 0u);
    EXPECT_TRUE(observer_.done.empty());
    ASSERT_TRUE(box_->oldest_pending_ms().has_value());
  });
}

TEST_F(outbox_test, dead_count_is_the_stores_from_start_plus_new_less_pruned) {
  on_io([this] { scripts_["/c"] = {400}; });
  make_outbox(fast());
  on_io([this] {
    outbox_entry listed;
    listed.req = request("dead-before", "/c");
    box_->remember_dead(std::move(listed));  // only the latest are listed...
    box_->set_dead_count(1500);              // ...of all the store holds
    EXPECT_EQ(box_->dead_count(), 1500u);
    box_->submit(request("dead-now", "/c"));
  });
  ASSERT_TRUE(eventually([this] { return box_->dead_count() == 1501u; }));
  on_io([this] {
    box_->forget_dead(1000);  // pruned
    EXPECT_EQ(box_->dead_count(), 501u);
    box_->forget_dead(1000);  // never below zero
    EXPECT_EQ(box_->dead_count(), 0u);
  });
}

TEST_F(outbox_test, a_retry_time_from_before_the_clock_was_stepped_back_holds_nothing) {
  // Recorded by a process whose wall clock ran an hour fast (or resumed from its store after
  // NTP stepped the clock back): due in an hour by today's clock. No retry is ever set further
  // ahead than max_backoff, so it is attempted after at most that, and the resolve behind it
  // to the same URL follows.
  make_outbox(fast());  // max_backoff 20 ms
  on_io([this] {
    outbox_entry e;
    e.req = request("page-from-the-future", "/a");
    const auto now = std::chrono::system_clock::now();
    e.created_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    e.attempts = 1;
    e.next_attempt_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>((now + 1h).time_since_epoch())
            .count();
    box_->resume(std::move(e));
    box_->submit(request("resolve-behind-it", "/a", routing::notification_kind::resolve));
  });
  ASSERT_TRUE(eventually([this] { return box_->pending() == 0; }));
  EXPECT_EQ(keys_at("/a"), (std::vector<std::string>{"page-from-the-future", "resolve-behind-it"}));
}

TEST_F(outbox_test, destroyed_on_a_running_io_context_with_a_retry_waiting) {
  // main.cpp stops the io_context before destroying the outbox; a destructor must not rely on
  // that. The cancelled retry timer's handler runs after the outbox is gone (ASan: it wrote to
  // the freed destination), and no attempt follows.
  on_io([this] { scripts_["/a"] = std::vector<unsigned>(100, 503); });
  outbox_options o = fast();
  o.initial_backoff = 50ms;
  o.max_backoff = 50ms;
  make_outbox(o);
  on_io([this] { box_->submit(request("page-1", "/a")); });
  ASSERT_TRUE(eventually([this] { return !observer_.retries.empty(); }));
  on_io([this] {
    sender_.reset();
    box_.reset();
  });
  std::this_thread::sleep_for(150ms);  // past when the retry was due
  on_io([] {});                        // the cancelled handler has run by now
  EXPECT_EQ(keys_at("/a").size(), 1u);
}

}  // namespace
}  // namespace alertrouter::daemon
