#include "store/group_commit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "store/state_store.h"
#include "tests/store/store_fixtures.h"

namespace alertrouter::store {
namespace {

using namespace std::chrono_literals;
using testing::make_incident;
using testing::make_message;
using testing::scratch_dir;

// An in-memory store that records each transaction and fails the next ones on request. Shared
// state is guarded: the test thread reads it while the worker writes.
class fake_store final : public state_store {
 public:
  struct log {
    std::mutex mu;
    std::vector<std::size_t> commit_sizes;  // sets per successful commit
    std::vector<std::string> progress;      // "delivered:id", "attempt:id", ... committed
    int fail_next = 0;                      // commits still to fail
  };
  explicit fake_store(std::shared_ptr<log> l) : log_(std::move(l)) {}

  recovered_state load() override { return {}; }
  void commit(std::span<change_set> sets) override {
    std::lock_guard lk(log_->mu);
    if (log_->fail_next > 0) {
      --log_->fail_next;
      throw store_error("commit to fake: database or disk is full");
    }
    log_->commit_sizes.push_back(sets.size());
    for (const change_set& s : sets) {
      for (const progress_update& p : s.progress) {
        const char* what = p.op == progress_update::what::attempt     ? "attempt:"
                           : p.op == progress_update::what::delivered ? "delivered:"
                                                                      : "dead:";
        log_->progress.push_back(what + p.id);
      }
    }
  }
  void record_attempt(std::string_view, std::uint32_t, std::int64_t, std::string_view) override {}
  void mark_delivered(std::string_view, std::uint32_t, std::int64_t) override {}
  void mark_dead(std::string_view, std::uint32_t, std::int64_t, std::string_view) override {}
  prune_result prune(std::int64_t) override { return {}; }
  store_stats stats() override { return {}; }
  std::vector<outbox_message> list_outbox(std::size_t) override { return {}; }
  std::vector<outbox_message> list_dead(std::size_t) override { return {}; }

 private:
  std::shared_ptr<log> log_;
};

// What on_done saw, and a way to wait for it with a deadline (no sleeps).
class done_log {
 public:
  group_committer::done_fn fn() {
    return [this](std::uint64_t ticket, std::exception_ptr error) {
      std::lock_guard lk(mu_);
      tickets_.push_back(ticket);
      errors_.push_back(error != nullptr);
      cv_.notify_all();
    };
  }
  bool wait_for(std::size_t n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, 30s, [&] { return tickets_.size() >= n; });
  }
  std::vector<std::uint64_t> tickets() {
    std::lock_guard lk(mu_);
    return tickets_;
  }
  std::vector<bool> errors() {
    std::lock_guard lk(mu_);
    return errors_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::uint64_t> tickets_;
  std::vector<bool> errors_;
};

change_set one_incident(std::uint64_t id) {
  change_set set;
  set.incidents = {make_incident(id, id, false)};
  set.messages = {make_message("page-" + std::to_string(id), "d")};
  return set;
}

// Blocks the worker inside a run() task until release() (or destruction).
class worker_gate {
 public:
  explicit worker_gate(group_committer& c) {
    // The task owns what it touches: the gate may be gone before the task returns.
    auto started = std::make_shared<std::promise<void>>();
    std::future<void> is_started = started->get_future();
    c.run([started, released = release_.get_future().share()](state_store&) {
      started->set_value();
      released.wait();
    });
    is_started.wait();
  }
  ~worker_gate() { release(); }
  void release() {
    if (!released_) release_.set_value();
    released_ = true;
  }

 private:
  std::promise<void> release_;
  bool released_ = false;
};

TEST(GroupCommitter, EveryTicketFromTwoThreadsIsDoneOnceInOrderAndStored) {
  scratch_dir dir;
  done_log done;
  group_committer c(open_sqlite_store(dir.state()), done.fn());
  constexpr std::uint64_t kPerThread = 300;
  std::vector<std::uint64_t> got[2];
  auto producer = [&](int t) {
    for (std::uint64_t i = 0; i < kPerThread; ++i) {
      got[t].push_back(c.enqueue(one_incident(1 + static_cast<std::uint64_t>(t) * kPerThread + i)));
    }
  };
  std::thread a(producer, 0), b(producer, 1);
  a.join();
  b.join();
  c.stop();

  for (const auto& g : got) {
    EXPECT_TRUE(std::is_sorted(g.begin(), g.end()));
  }
  const std::vector<std::uint64_t> tickets = done.tickets();
  ASSERT_EQ(tickets.size(), 2 * kPerThread);
  for (std::size_t i = 0; i < tickets.size(); ++i) EXPECT_EQ(tickets[i], i + 1);
  for (bool e : done.errors()) EXPECT_FALSE(e);
  const group_committer::counters k = c.stats();
  EXPECT_EQ(k.sets_committed, 2 * kPerThread);
  EXPECT_LE(k.commits, 2 * kPerThread);
  EXPECT_EQ(k.failed_commits, 0u);

  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  EXPECT_EQ(r.incidents.size(), 2 * kPerThread);
  EXPECT_EQ(r.pending.size(), 2 * kPerThread);
}

// The store's WAL checkpoint counters reach the committer's counters (the daemon exports them),
// as of the last commit.
TEST(GroupCommitter, CountsTheStoresCheckpointsAsOfTheLastCommit) {
  scratch_dir dir;
  done_log done;
  group_committer c(open_sqlite_store(dir.state()), done.fn());
  EXPECT_EQ(c.stats().checkpoints.checkpoints, 0u);
  // About 10 MB of bodies: past the store's 1000-page (8 MB) threshold for a background
  // checkpoint.
  change_set big;
  for (int i = 0; i < 1200; ++i) {
    outbox_message m = make_message("big-" + std::to_string(i), "d");
    m.body = std::string(8000, static_cast<char>('a' + i % 26));
    big.messages.push_back(std::move(m));
  }
  c.enqueue(std::move(big));
  // The background checkpoint finishes some time after that commit; each later commit reads
  // the counters again.
  std::uint64_t id = 1;
  for (int i = 0; i < 500 && c.stats().checkpoints.checkpoints == 0; ++i) {
    ASSERT_TRUE(done.wait_for(static_cast<std::size_t>(id)));
    c.enqueue(one_incident(id++));
    std::this_thread::sleep_for(10ms);
  }
  c.stop();
  const group_committer::counters k = c.stats();
  EXPECT_GE(k.checkpoints.checkpoints, 1u);
  EXPECT_EQ(k.checkpoints.failures, 0u);
  EXPECT_EQ(k.checkpoints.forced, 0u);
  for (bool e : done.errors()) EXPECT_FALSE(e);
}

TEST(GroupCommitter, ABurstQueuedDuringACommitSharesOneTransaction) {
  scratch_dir dir;
  done_log done;
  std::vector<std::size_t> sizes;  // on_commit runs on the worker; read after stop()
  group_committer::options opts;
  opts.on_commit = [&](std::size_t sets, std::chrono::nanoseconds took) {
    sizes.push_back(sets);
    EXPECT_GT(took.count(), 0);
  };
  group_committer c(open_sqlite_store(dir.state()), done.fn(), opts);
  {
    worker_gate gate(c);
    for (std::uint64_t i = 1; i <= 100; ++i) c.enqueue(one_incident(i));
    EXPECT_EQ(c.queued(), 101u);  // the gate's task and the burst
  }
  c.stop();
  const group_committer::counters k = c.stats();
  EXPECT_EQ(k.sets_committed, 100u);
  EXPECT_LT(k.commits, k.sets_committed);
  EXPECT_EQ(k.commits, 1u);
  EXPECT_EQ(sizes, std::vector<std::size_t>{100});
  EXPECT_GT(k.last_commit.count(), 0);
  EXPECT_EQ(done.tickets().size(), 100u);
}

TEST(GroupCommitter, MaxBatchBoundsATransaction) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options opts;
  opts.max_batch = 16;
  group_committer c(std::make_unique<fake_store>(log), done.fn(), opts);
  {
    worker_gate gate(c);
    for (std::uint64_t i = 1; i <= 40; ++i) c.enqueue(one_incident(i));
  }
  c.stop();
  EXPECT_EQ(log->commit_sizes, (std::vector<std::size_t>{16, 16, 8}));
}

TEST(GroupCommitter, AFailedTransactionFailsEveryTicketInItAndTheNextOneWorks) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer c(std::make_unique<fake_store>(log), done.fn());
  {
    worker_gate gate(c);
    for (std::uint64_t i = 1; i <= 5; ++i) c.enqueue(one_incident(i));
    std::lock_guard lk(log->mu);
    log->fail_next = 1;
  }
  ASSERT_TRUE(done.wait_for(5));
  c.enqueue(one_incident(6));
  c.stop();

  EXPECT_EQ(done.tickets(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(done.errors(), (std::vector<bool>{true, true, true, true, true, false}));
  const group_committer::counters k = c.stats();
  EXPECT_EQ(k.failed_commits, 1u);
  EXPECT_EQ(k.sets_failed, 5u);
  EXPECT_EQ(k.commits, 1u);
  EXPECT_EQ(k.sets_committed, 1u);
}

TEST(GroupCommitter, HoldAfterFailureFailsLaterSetsUntilResumeButKeepsProgressAndTasks) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options o;
  o.hold_after_failure = true;
  group_committer c(std::make_unique<fake_store>(log), done.fn(), o);
  {
    std::lock_guard lk(log->mu);
    log->fail_next = 1;
  }
  c.enqueue(one_incident(1));  // fails for real
  ASSERT_TRUE(done.wait_for(1));
  c.enqueue(one_incident(2));  // held: fails untried, although the store works again
  c.mark_delivered("page-0", 1, 1000);
  std::promise<void> ran;
  c.run([&ran](state_store&) { ran.set_value(); });
  ASSERT_TRUE(done.wait_for(2));
  ASSERT_EQ(ran.get_future().wait_for(30s), std::future_status::ready);
  c.resume();
  c.enqueue(one_incident(3));
  c.stop();

  EXPECT_EQ(done.tickets(), (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(done.errors(), (std::vector<bool>{true, true, false}));
  const group_committer::counters k = c.stats();
  EXPECT_EQ(k.failed_commits, 1u);  // the held set was never tried
  EXPECT_EQ(k.sets_failed, 2u);
  EXPECT_EQ(k.sets_committed, 1u);
  std::lock_guard lk(log->mu);
  EXPECT_EQ(log->progress, std::vector<std::string>{"delivered:page-0"});
}

TEST(GroupCommitter, ProgressLingersToShareATransactionAndAChangeSetEndsTheWait) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options o;
  o.progress_linger = std::chrono::minutes(1);  // longer than the test: only a set ends it
  group_committer c(std::make_unique<fake_store>(log), done.fn(), o);
  for (int i = 0; i < 5; ++i) c.mark_delivered("page-" + std::to_string(i), 1, 1000);
  c.enqueue(one_incident(1));
  ASSERT_TRUE(done.wait_for(1));  // well before the linger would have ended
  c.stop();
  std::lock_guard lk(log->mu);
  // One transaction: the five updates (one progress set) and the change set.
  EXPECT_EQ(log->commit_sizes, std::vector<std::size_t>{2});
  EXPECT_EQ(log->progress.size(), 5u);
}

TEST(GroupCommitter, LingeringProgressIsCommittedWhenTheLingerEnds) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options o;
  o.progress_linger = 20ms;
  group_committer c(std::make_unique<fake_store>(log), done.fn(), o);
  c.mark_delivered("page-1", 1, 1000);
  c.mark_delivered("page-2", 1, 1000);
  const auto until = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lk(log->mu);
      if (log->progress.size() == 2) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "progress never committed";
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(c.stats().commits, 1u);
  c.stop();
}

TEST(GroupCommitter, CommitDelayGathersSetsUntilTheBatchIsFullOrStop) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options o;
  o.commit_delay = std::chrono::minutes(1);  // only a full batch or stop() ends the wait
  o.max_batch = 3;
  group_committer c(std::make_unique<fake_store>(log), done.fn(), o);
  for (std::uint64_t i = 1; i <= 3; ++i) c.enqueue(one_incident(i));
  ASSERT_TRUE(done.wait_for(3));
  c.enqueue(one_incident(4));
  c.stop();  // does not wait out the delay
  EXPECT_EQ(done.tickets(), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  std::lock_guard lk(log->mu);
  EXPECT_EQ(log->commit_sizes, (std::vector<std::size_t>{3, 1}));
}

TEST(GroupCommitter, OverTheRetainCapFailedAttemptsAreDroppedBeforeDeliveredAndDeadMarks) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer::options o;
  o.max_retained_progress = 2;
  o.progress_retry_delay = 5ms;
  group_committer c(std::make_unique<fake_store>(log), done.fn(), o);
  {
    worker_gate gate(c);  // all four go into one transaction, which fails
    c.record_attempt("a1", 1, 1000, "HTTP 503");
    c.mark_delivered("d1", 2, 1000);
    c.record_attempt("a2", 1, 1000, "HTTP 503");
    c.mark_dead("x1", 1, 1000, "HTTP 400");
    std::lock_guard lk(log->mu);
    log->fail_next = 1;
  }
  const auto until = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lk(log->mu);
      if (!log->progress.empty()) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), until) << "retained progress never retried";
    std::this_thread::sleep_for(1ms);
  }
  c.stop();
  EXPECT_EQ(c.stats().progress_dropped, 2u);
  std::lock_guard lk(log->mu);
  EXPECT_EQ(log->progress, (std::vector<std::string>{"delivered:d1", "dead:x1"}));
}

TEST(GroupCommitter, TheErrorGivenToTicketsIsTheStoreError) {
  auto log = std::make_shared<fake_store::log>();
  log->fail_next = 1;
  std::exception_ptr seen;
  group_committer c(std::make_unique<fake_store>(log),
                    [&](std::uint64_t, std::exception_ptr e) { seen = e; });
  c.enqueue(one_incident(1));
  c.stop();
  ASSERT_NE(seen, nullptr);
  EXPECT_THROW(std::rethrow_exception(seen), store_error);
}

TEST(GroupCommitter, ProgressIsWrittenInOrderWithTheSetsAndPersists) {
  scratch_dir dir;
  done_log done;
  {
    group_committer c(open_sqlite_store(dir.state()), done.fn());
    change_set set;
    for (const char* id : {"a", "b", "c"}) set.messages.push_back(make_message(id, "d"));
    c.enqueue(std::move(set));
    c.record_attempt("a", 1, 5000, "HTTP 503");
    c.mark_delivered("b", 1, 6000);
    c.mark_dead("c", 4, 7000, "HTTP 400");
    c.record_attempt("a", 2, 9000, "timeout");
    c.stop();
    EXPECT_EQ(c.stats().progress_committed, 4u);
  }
  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].id, "a");
  EXPECT_EQ(r.pending[0].attempts, 2u);
  EXPECT_EQ(r.pending[0].next_attempt_ms, 9000);
  EXPECT_EQ(r.pending[0].last_error, "timeout");
  const std::vector<outbox_message> listed = s->list_outbox(10);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[1].id, "c");
  EXPECT_EQ(listed[1].state, message_state::dead);
}

TEST(GroupCommitter, FailedProgressIsReportedCountedAndRetried) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  std::mutex mu;
  std::vector<std::string> errors;
  group_committer::options opts;
  opts.progress_retry_delay = 10ms;
  opts.on_error = [&](std::string_view what, std::exception_ptr e) {
    EXPECT_NE(e, nullptr);
    std::lock_guard lk(mu);
    errors.emplace_back(what);
  };
  group_committer c(std::make_unique<fake_store>(log), done.fn(), opts);
  {
    worker_gate gate(c);
    c.mark_delivered("x", 1, 1);
    std::lock_guard lk(log->mu);
    log->fail_next = 1;
  }
  // The retry comes by itself after the delay, without new work.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    {
      std::lock_guard lk(log->mu);
      if (!log->progress.empty()) break;
    }
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "progress never retried";
    std::this_thread::yield();
  }
  c.stop();
  EXPECT_EQ(log->progress, std::vector<std::string>{"delivered:x"});
  EXPECT_EQ(errors, std::vector<std::string>{"progress"});
  const group_committer::counters k = c.stats();
  EXPECT_EQ(k.progress_failures, 1u);
  EXPECT_EQ(k.progress_committed, 1u);
  EXPECT_EQ(k.progress_dropped, 0u);
}

TEST(GroupCommitter, RunSeesEverythingQueuedBeforeIt) {
  scratch_dir dir;
  done_log done;
  std::vector<std::string> errors;
  group_committer::options opts;
  opts.on_error = [&](std::string_view what, std::exception_ptr) { errors.emplace_back(what); };
  group_committer c(open_sqlite_store(dir.state()), done.fn(), opts);
  c.enqueue(one_incident(1));
  c.enqueue(one_incident(2));
  std::promise<store_stats> stats;
  c.run([&](state_store& s) { stats.set_value(s.stats()); });
  EXPECT_EQ(stats.get_future().get().pending, 2u);
  c.run([](state_store&) { throw std::runtime_error("boom"); });
  c.stop();
  EXPECT_EQ(errors, std::vector<std::string>{"task"});
  EXPECT_EQ(c.stats().task_failures, 1u);
}

TEST(GroupCommitter, StopDrainsTheQueueAndRefusesNewWork) {
  auto log = std::make_shared<fake_store::log>();
  done_log done;
  group_committer c(std::make_unique<fake_store>(log), done.fn());
  for (std::uint64_t i = 1; i <= 50; ++i) c.enqueue(one_incident(i));
  c.stop();
  EXPECT_EQ(done.tickets().size(), 50u);
  EXPECT_EQ(c.queued(), 0u);
  EXPECT_THROW(c.enqueue(one_incident(51)), std::logic_error);
  EXPECT_THROW(c.run([](state_store&) {}), std::logic_error);
  c.mark_delivered("x", 1, 1);  // ignored
  c.stop();                     // idempotent
}

}  // namespace
}  // namespace alertrouter::store
