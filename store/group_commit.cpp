#include "store/group_commit.h"

#include <pthread.h>

#include <algorithm>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace alertrouter::store {

group_committer::group_committer(std::unique_ptr<state_store> store, done_fn on_done, options opts)
    : store_(std::move(store)), on_done_(std::move(on_done)), opts_(std::move(opts)) {
  opts_.max_batch = std::max<std::size_t>(opts_.max_batch, 1);
  worker_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-writer");  // as top -H and perf show it
    work();
  });
}

group_committer::group_committer(std::unique_ptr<state_store> store, done_fn on_done)
    : group_committer(std::move(store), std::move(on_done), options{}) {}

group_committer::~group_committer() { stop(); }

std::uint64_t group_committer::enqueue(change_set set) {
  std::uint64_t ticket = 0;
  {
    std::lock_guard lk(mu_);
    if (stopping_) throw std::logic_error("group_committer: enqueue after stop");
    ticket = next_ticket_++;
    queue_.emplace_back(ticketed{ticket, std::move(set)});
    ++sets_and_tasks_queued_;
  }
  cv_.notify_one();
  return ticket;
}

void group_committer::push(item it) {
  {
    std::lock_guard lk(mu_);
    if (stopping_) {
      if (std::holds_alternative<progress_update>(it)) return;  // documented: ignored
      throw std::logic_error("group_committer: run after stop");
    }
    if (!std::holds_alternative<progress_update>(it)) ++sets_and_tasks_queued_;
    queue_.push_back(std::move(it));
  }
  cv_.notify_one();
}

void group_committer::record_attempt(std::string_view id, std::uint32_t attempts,
                                     std::int64_t next_attempt_ms, std::string_view last_error) {
  push(progress_update{progress_update::what::attempt, std::string(id), attempts, next_attempt_ms,
                       std::string(last_error)});
}

void group_committer::mark_delivered(std::string_view id, std::uint32_t attempts,
                                     std::int64_t at_ms) {
  push(progress_update{progress_update::what::delivered, std::string(id), attempts, at_ms, {}});
}

void group_committer::mark_dead(std::string_view id, std::uint32_t attempts, std::int64_t at_ms,
                                std::string_view last_error) {
  push(progress_update{progress_update::what::dead, std::string(id), attempts, at_ms,
                       std::string(last_error)});
}

void group_committer::run(std::function<void(state_store&)> task) { push(std::move(task)); }

void group_committer::resume() {
  std::lock_guard lk(mu_);
  held_ = nullptr;
}

std::size_t group_committer::queued() const {
  std::lock_guard lk(mu_);
  return queue_.size() + in_flight_;
}

group_committer::counters group_committer::stats() const {
  std::lock_guard lk(mu_);
  return counters_;
}

void group_committer::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (worker_.joinable()) worker_.join();
  store_.reset();  // closes the database and releases the state directory
}

void group_committer::work() {
  using task_fn = std::function<void(state_store&)>;
  std::unique_lock lk(mu_);
  bool lingered = false;  // the progress at the front of the queue has waited its linger
  for (;;) {
    if (queue_.empty()) {
      if (stopping_ && retained_.empty()) return;
      if (!stopping_) {
        if (retained_.empty()) {
          cv_.wait(lk, [this] { return !queue_.empty() || stopping_; });
          continue;
        }
        // Failed progress waits for new work or the retry delay, so a store that keeps
        // failing (disk full) is not hammered in a loop.
        if (cv_.wait_for(lk, opts_.progress_retry_delay,
                         [this] { return !queue_.empty() || stopping_; })) {
          continue;
        }
      }
      // Retry the retained progress alone (or, stopping, one last time).
      std::vector<item> none;
      in_flight_ = retained_.size();
      const bool last_try = stopping_;
      lk.unlock();
      commit_batch(none);
      lk.lock();
      in_flight_ = 0;
      if (last_try && !retained_.empty()) {
        counters_.progress_dropped += retained_.size();
        retained_.clear();
      }
      continue;
    }

    if (task_fn* task = std::get_if<task_fn>(&queue_.front())) {
      task_fn f = std::move(*task);
      queue_.pop_front();
      --sets_and_tasks_queued_;
      in_flight_ = 1;
      lk.unlock();
      try {
        f(*store_);
      } catch (...) {
        if (opts_.on_error) opts_.on_error("task", std::current_exception());
        lk.lock();
        ++counters_.task_failures;
        lk.unlock();
      }
      lk.lock();
      in_flight_ = 0;
      lingered = false;
      continue;
    }

    if (!lingered && opts_.progress_linger.count() > 0 && !stopping_ &&
        sets_and_tasks_queued_ == 0 && queue_.size() < opts_.max_batch) {
      // Only progress so far: let more gather, unless a change set or task comes.
      cv_.wait_for(lk, opts_.progress_linger, [this] {
        return stopping_ || sets_and_tasks_queued_ > 0 || queue_.size() >= opts_.max_batch;
      });
      lingered = true;
      continue;  // the queue may start with a task now
    }
    if (!lingered && opts_.commit_delay.count() > 0 && !stopping_ && sets_and_tasks_queued_ > 0 &&
        queue_.size() < opts_.max_batch) {
      // A change set is waiting: let others join it, trading latency for fewer fsyncs.
      cv_.wait_for(lk, opts_.commit_delay,
                   [this] { return stopping_ || queue_.size() >= opts_.max_batch; });
      lingered = true;
      continue;
    }

    // Everything queued up to the next task (or max_batch) goes into one transaction.
    std::vector<item> batch;
    while (!queue_.empty() && batch.size() < opts_.max_batch &&
           !std::holds_alternative<task_fn>(queue_.front())) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    for (const item& it : batch) {
      if (std::holds_alternative<ticketed>(it)) --sets_and_tasks_queued_;
    }
    in_flight_ = batch.size();
    lk.unlock();
    commit_batch(batch);
    lk.lock();
    in_flight_ = 0;
    lingered = false;
  }
}

void group_committer::commit_batch(std::vector<item>& batch) {
  // sets[i] belongs to tickets[i], or is progress only when tickets[i] is empty.
  std::vector<change_set> sets;
  std::vector<std::optional<std::uint64_t>> tickets;
  sets.reserve(batch.size() + 1);
  tickets.reserve(batch.size() + 1);
  std::size_t progress_count = 0;
  auto progress_set = [&]() -> change_set& {
    if (sets.empty() || tickets.back().has_value()) {
      sets.emplace_back();
      tickets.emplace_back();
    }
    return sets.back();
  };
  if (!retained_.empty()) {
    // Older than anything in the batch: first.
    progress_count += retained_.size();
    progress_set().progress = std::move(retained_);
    retained_.clear();
  }
  std::exception_ptr held;
  {
    std::lock_guard lk(mu_);
    held = held_;
  }
  std::vector<std::uint64_t> refused;  // held back: failed without being tried
  for (item& it : batch) {
    if (auto* t = std::get_if<ticketed>(&it)) {
      if (held) {
        refused.push_back(t->ticket);
        continue;
      }
      sets.push_back(std::move(t->set));
      tickets.emplace_back(t->ticket);
    } else if (auto* p = std::get_if<progress_update>(&it)) {
      progress_set().progress.push_back(std::move(*p));
      ++progress_count;
    }
  }
  if (!refused.empty()) {
    {
      std::lock_guard lk(mu_);
      counters_.sets_failed += refused.size();
    }
    for (const std::uint64_t t : refused) {
      if (on_done_) on_done_(t, held);
    }
  }
  if (sets.empty()) return;
  std::size_t n_tickets = 0;
  for (const auto& t : tickets) n_tickets += t.has_value() ? 1u : 0u;

  std::exception_ptr error;
  const auto start = std::chrono::steady_clock::now();
  try {
    store_->commit(sets);
  } catch (...) {
    error = std::current_exception();
  }
  const auto took = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now() - start);

  if (!error) {
    const state_store::checkpoint_counts checkpoints = store_->checkpoints();
    {
      std::lock_guard lk(mu_);
      counters_.checkpoints = checkpoints;
      ++counters_.commits;
      counters_.sets_committed += n_tickets;
      counters_.progress_committed += progress_count;
      counters_.last_commit = took;
    }
    if (opts_.on_commit) opts_.on_commit(n_tickets, took);
  } else {
    std::uint64_t dropped = 0;
    if (progress_count > 0) {
      for (std::size_t i = 0; i < sets.size(); ++i) {
        if (tickets[i].has_value()) continue;
        std::move(sets[i].progress.begin(), sets[i].progress.end(), std::back_inserter(retained_));
      }
      if (retained_.size() > opts_.max_retained_progress) {
        // Over the cap: failed-attempt records go first (losing one only resets a retry count);
        // delivered and dead marks only if there is nothing else (losing one means a resend).
        std::size_t excess = retained_.size() - opts_.max_retained_progress;
        const auto attempts_end =
            std::remove_if(retained_.begin(), retained_.end(), [&excess](const progress_update& p) {
              if (excess == 0 || p.op != progress_update::what::attempt) return false;
              --excess;
              return true;
            });
        dropped = static_cast<std::uint64_t>(retained_.end() - attempts_end);
        retained_.erase(attempts_end, retained_.end());
        if (excess > 0) {
          retained_.erase(retained_.begin(),
                          retained_.begin() + static_cast<std::ptrdiff_t>(excess));
          dropped += excess;
        }
      }
    }
    {
      std::lock_guard lk(mu_);
      if (opts_.hold_after_failure && n_tickets > 0) held_ = error;
      ++counters_.failed_commits;
      counters_.sets_failed += n_tickets;
      counters_.progress_failures += progress_count;
      counters_.progress_dropped += dropped;
    }
    if (progress_count > 0 && opts_.on_error) opts_.on_error("progress", error);
  }
  for (const auto& t : tickets) {
    if (t.has_value() && on_done_) on_done_(*t, error);
  }
}

}  // namespace alertrouter::store
