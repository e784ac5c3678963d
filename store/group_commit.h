#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

#include "store/state_store.h"

namespace alertrouter::store {

// Group commit: a worker thread that owns a state_store and writes change sets handed to it
// from any thread, many per transaction. While one transaction commits (and fsyncs), everything
// queued meanwhile waits and goes into the next one, so N concurrent webhooks cost about one
// fsync rather than N; an idle committer commits a lone set at once (no timer).
//
// Thread-safety: enqueue(), the progress calls, run() and counters() may be called from any
// thread; stop() from any thread but the worker. Every callback runs on the worker thread and
// must not call stop() or block for long (it delays every commit behind it).
class group_committer {
 public:
  // Called once per ticket, in ticket order, after the transaction holding it: `error` is null
  // when the set is durably stored, else the store_error that failed the whole transaction
  // (nothing of it is stored). Must not throw.
  using done_fn = std::function<void(std::uint64_t ticket, std::exception_ptr error)>;
  // After each successful transaction: how many change sets (tickets) it held and how long the
  // commit took, fsync included.
  using commit_fn = std::function<void(std::size_t sets, std::chrono::nanoseconds took)>;
  // A failure nobody waits on: a transaction holding delivery progress, or a run() task that
  // threw. `what` says which ("progress", "task").
  using error_fn = std::function<void(std::string_view what, std::exception_ptr error)>;

  struct options {
    std::size_t max_batch = 512;  // change sets and progress updates per transaction (>= 1)
    commit_fn on_commit;          // optional
    error_fn on_error;            // optional
    // Progress updates of a failed transaction are kept and retried with the next one, or after
    // this delay when nothing else comes; beyond max_retained_progress the oldest are dropped
    // (counted in progress_dropped).
    std::chrono::milliseconds progress_retry_delay{1000};
    std::size_t max_retained_progress = 65536;
    // After a transaction holding change sets fails, fail every change set after it too (with
    // the same error, without trying it) until resume(). For a caller that applied each set to
    // an in-memory copy before enqueuing it: the sets behind a failed one were computed from
    // state that is not on disk and must not be stored until the copy is rebuilt from the store.
    // Progress updates and run() tasks go on as usual.
    bool hold_after_failure = false;
    // When only delivery progress is queued, wait up to this long for more before committing,
    // so a stream of deliveries shares transactions. A change set or task ends the wait at once.
    std::chrono::milliseconds progress_linger{0};
    // When a change set is queued, wait this long for others before committing (PostgreSQL's
    // commit_delay): fewer, larger transactions at the cost of that much latency. 0: commit at
    // once (sets queued during a commit still share the next one).
    std::chrono::microseconds commit_delay{0};
  };

  struct counters {
    std::uint64_t commits = 0;         // successful transactions
    std::uint64_t failed_commits = 0;  // transactions that threw
    std::uint64_t sets_committed = 0;  // tickets stored
    std::uint64_t sets_failed = 0;     // tickets that got an error
    std::uint64_t progress_committed = 0;
    std::uint64_t progress_failures = 0;  // progress updates in failed transactions (retried)
    std::uint64_t progress_dropped = 0;   // progress updates given up on
    std::uint64_t task_failures = 0;      // run() tasks that threw
    std::chrono::nanoseconds last_commit{0};
    // The store's WAL checkpoints (state_store::checkpoints) as of the last commit.
    state_store::checkpoint_counts checkpoints;
  };

  // Starts the worker. `store` is used only on the worker thread from now on.
  group_committer(std::unique_ptr<state_store> store, done_fn on_done, options opts);
  group_committer(std::unique_ptr<state_store> store, done_fn on_done);
  ~group_committer();  // stop()
  group_committer(const group_committer&) = delete;
  group_committer& operator=(const group_committer&) = delete;

  // Queues `set` for the next transaction and returns its ticket (1, 2, ...). Never waits on
  // I/O (only on the queue's mutex). Throws std::logic_error after stop().
  std::uint64_t enqueue(change_set set);

  // Delivery progress, written in queue order within the next transaction; no callback (a
  // failure goes to on_error and is retried, see options). Ignored after stop().
  void record_attempt(std::string_view id, std::uint32_t attempts, std::int64_t next_attempt_ms,
                      std::string_view last_error);
  void mark_delivered(std::string_view id, std::uint32_t attempts, std::int64_t at_ms);
  void mark_dead(std::string_view id, std::uint32_t attempts, std::int64_t at_ms,
                 std::string_view last_error);

  // Runs `task` on the worker thread with the store, after everything queued before it has been
  // committed (e.g. prune, stats, list_outbox; pass results back through the task's captures).
  // An exception escaping `task` goes to on_error. Throws std::logic_error after stop().
  void run(std::function<void(state_store&)> task);

  // Ends the hold of options::hold_after_failure: change sets enqueued from now on are committed
  // again. Call once the in-memory state has been rebuilt from the store.
  void resume();

  // Change sets, progress updates and tasks queued and not yet finished.
  std::size_t queued() const;
  counters stats() const;

  // Stops taking work, finishes everything queued (commits, callbacks, tasks), joins the worker
  // and closes the store (releasing its state directory). Idempotent.
  void stop();

 private:
  struct ticketed {
    std::uint64_t ticket;
    change_set set;
  };
  using item = std::variant<ticketed, progress_update, std::function<void(state_store&)>>;

  void push(item it);
  void work();
  void commit_batch(std::vector<item>& batch);

  std::unique_ptr<state_store> store_;
  done_fn on_done_;
  options opts_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<item> queue_;                 // guarded by mu_
  std::vector<progress_update> retained_;  // worker only: progress of failed transactions
  std::uint64_t next_ticket_ = 1;          // guarded by mu_
  std::size_t in_flight_ = 0;              // guarded by mu_: taken off queue_, not finished
  bool stopping_ = false;                  // guarded by mu_
  std::exception_ptr held_;                // guarded by mu_: set while holding after a failure
  std::size_t sets_and_tasks_queued_ = 0;  // guarded by mu_: queue_ items other than progress
  counters counters_;                      // guarded by mu_
  std::thread worker_;
};

}  // namespace alertrouter::store
