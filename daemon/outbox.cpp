#include "daemon/outbox.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <random>
#include <unordered_map>
#include <utility>

namespace alertrouter::daemon {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
}

// One URL's notifications, delivered one at a time in acceptance order.
struct destination {
  explicit destination(asio::io_context& io) : timer(io) {}
  std::deque<outbox_entry> queue;
  bool in_flight = false;
  asio::steady_timer timer;
  bool timer_armed = false;
};

}  // namespace

struct outbox::state {
  state(asio::io_context& io_in, outbox_journal& journal_in, outbox_options options_in,
        delivery_observer& observer_in,
        std::function<std::chrono::system_clock::time_point()> wall_in)
      : io(io_in),
        journal(journal_in),
        options(options_in),
        observer(observer_in),
        wall(std::move(wall_in)),
        rng(options_in.rng_seed ? *options_in.rng_seed : std::random_device{}()) {}

  std::int64_t now_ms() const { return to_ms(wall()); }

  destination& dest_for(const std::string& url) {
    auto it = destinations.find(url);
    if (it == destinations.end()) {
      it = destinations.emplace(url, std::make_unique<destination>(io)).first;
    }
    return *it->second;
  }

  void enqueue(outbox_entry entry) {
    destination& d = dest_for(entry.req.url);
    d.queue.push_back(std::move(entry));
    ++pending;
    kick(d);
  }

  // Starts the head's attempt when it is due, or arms the timer for when it will be.
  void kick(destination& d) {
    if (stopping || d.in_flight || d.queue.empty() || transport == nullptr) return;
    outbox_entry& head = d.queue.front();
    const std::int64_t now = now_ms();
    // No retry is ever set further ahead than max_backoff: a time beyond that was recorded
    // before the wall clock was stepped back (a restart with a wrong clock, then NTP), and must
    // not hold the queue for the size of the step. Brought in, so the wait ends after all.
    if (head.next_attempt_ms - now > options.max_backoff.count()) {
      head.next_attempt_ms = now + options.max_backoff.count();
    }
    const std::int64_t wait = head.next_attempt_ms - now;
    if (wait > 0) {
      if (d.timer_armed) return;
      d.timer_armed = true;
      d.timer.expires_after(milliseconds(wait));
      // The outbox may be destroyed while the wait is pending (its destructor cancels the
      // timer, but the handler still runs later): then it must not touch `d`.
      d.timer.async_wait([this, &d, alive = std::weak_ptr<void>(alive_token)](
                             const boost::system::error_code& ec) {
        if (alive.expired()) return;
        d.timer_armed = false;
        if (!ec) kick(d);
      });
      return;
    }
    d.in_flight = true;
    ++head.attempts;
    transport->submit(head.req);
  }

  milliseconds backoff(std::uint32_t attempts) {
    // min(max_backoff, initial * 2^(attempts-1)), without overflow.
    milliseconds bound = options.initial_backoff;
    for (std::uint32_t i = 1; i < attempts && bound < options.max_backoff; ++i) bound *= 2;
    bound = std::min(bound, options.max_backoff);
    std::uniform_int_distribution<milliseconds::rep> pick(
        0, std::max<milliseconds::rep>(bound.count(), 0));
    return milliseconds(pick(rng));
  }

  void finish(destination& d, delivery_result result, std::string_view detail) {
    outbox_entry done = std::move(d.queue.front());
    d.queue.pop_front();
    --pending;
    const std::int64_t now = now_ms();
    const auto latency = milliseconds(std::max<std::int64_t>(now - done.created_ms, 0));
    if (result == delivery_result::delivered) {
      journal.delivered(done.req.id, done.attempts, now);
    } else {
      journal.dead(done.req.id, done.attempts, now, detail);
      ++dead_total;
      done.dead = true;
      done.finished_ms = now;
      done.last_error = std::string(detail);
    }
    observer.on_done(done.req, result, done.attempts, latency, detail, std::nullopt);
    if (done.dead) {
      done.req.body.clear();  // listed, never sent again: the body is only in the store
      recent_dead.push_back(std::move(done));
      while (recent_dead.size() > options.max_dead_listed) recent_dead.pop_front();
    }
  }

  asio::io_context& io;
  outbox_journal& journal;
  const outbox_options options;
  delivery_observer& observer;
  std::function<std::chrono::system_clock::time_point()> wall;
  std::mt19937_64 rng;
  delivery* transport = nullptr;
  std::unordered_map<std::string, std::unique_ptr<destination>> destinations;
  std::deque<outbox_entry> recent_dead;
  std::size_t pending = 0;
  std::uint64_t dead_total = 0;
  bool stopping = false;
  // Reset first thing by the destructor: a timer handler that runs later sees it expired.
  std::shared_ptr<void> alive_token = std::make_shared<int>(0);
};

outbox::outbox(asio::io_context& io, outbox_journal& journal, outbox_options options,
               delivery_observer& observer,
               std::function<std::chrono::system_clock::time_point()> wall_clock)
    : state_(std::make_unique<state>(io, journal, options, observer, std::move(wall_clock))) {}

outbox::~outbox() {
  state_->alive_token.reset();
  for (auto& [url, d] : state_->destinations) d->timer.cancel();
}

void outbox::set_transport(delivery& transport) {
  state_->transport = &transport;
  for (auto& [url, d] : state_->destinations) state_->kick(*d);
}

void outbox::submit(delivery_request req) {
  outbox_entry e;
  e.created_ms = state_->now_ms();
  e.next_attempt_ms = e.created_ms;
  e.req = std::move(req);
  state_->enqueue(std::move(e));
}

void outbox::resume(outbox_entry entry) {
  // Latency is measured from acceptance, which may predate this process.
  const auto age = milliseconds(std::max<std::int64_t>(state_->now_ms() - entry.created_ms, 0));
  entry.req.received_at = std::chrono::steady_clock::now() - age;
  state_->enqueue(std::move(entry));
}

void outbox::remember_dead(outbox_entry entry) {
  entry.dead = true;
  entry.req.body.clear();
  ++state_->dead_total;
  state_->recent_dead.push_back(std::move(entry));
  while (state_->recent_dead.size() > state_->options.max_dead_listed) {
    state_->recent_dead.pop_front();
  }
}

std::size_t outbox::pending() const { return state_->pending; }

std::uint64_t outbox::dead_count() const { return state_->dead_total; }

void outbox::set_dead_count(std::uint64_t n) { state_->dead_total = n; }

void outbox::forget_dead(std::uint64_t n) { state_->dead_total -= std::min(n, state_->dead_total); }

std::optional<std::int64_t> outbox::oldest_pending_ms() const {
  std::optional<std::int64_t> oldest;
  for (const auto& [url, d] : state_->destinations) {
    if (d->queue.empty()) continue;
    const std::int64_t c = d->queue.front().created_ms;  // each queue is in acceptance order
    if (!oldest || c < *oldest) oldest = c;
  }
  return oldest;
}

std::vector<outbox_entry> outbox::list(std::size_t limit) const {
  std::vector<outbox_entry> out;
  for (const auto& [url, d] : state_->destinations) {
    for (const outbox_entry& e : d->queue) {
      if (out.size() >= limit) break;
      out.push_back(e);
      out.back().req.body.clear();
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const outbox_entry& a, const outbox_entry& b) {
    return a.created_ms < b.created_ms;
  });
  for (auto it = state_->recent_dead.rbegin();
       it != state_->recent_dead.rend() && out.size() < limit; ++it) {
    out.push_back(*it);
  }
  return out;
}

void outbox::stop(std::chrono::milliseconds grace, std::function<void()> on_stopped) {
  if (state_->stopping) return;
  state_->stopping = true;
  for (auto& [url, d] : state_->destinations) d->timer.cancel();
  if (state_->transport != nullptr) {
    state_->transport->stop(grace, std::move(on_stopped));
  } else if (on_stopped) {
    asio::post(state_->io, std::move(on_stopped));
  }
}

void outbox::on_attempt(const delivery_request& req, unsigned attempt_no) {
  (void)attempt_no;  // always 1 for the transport; the outbox numbers across retries
  auto it = state_->destinations.find(req.url);
  const unsigned n = it == state_->destinations.end() || it->second->queue.empty()
                         ? 1u
                         : it->second->queue.front().attempts;
  state_->observer.on_attempt(req, n);
}

void outbox::on_done(const delivery_request& req, delivery_result result, unsigned attempts,
                     std::chrono::steady_clock::duration latency, std::string_view detail,
                     std::optional<std::chrono::milliseconds> retry_after) {
  (void)attempts;
  (void)latency;
  state& s = *state_;
  auto it = s.destinations.find(req.url);
  if (it == s.destinations.end() || it->second->queue.empty() ||
      it->second->queue.front().req.id != req.id) {
    return;  // not ours (cannot happen: the transport only carries the heads)
  }
  destination& d = *it->second;
  d.in_flight = false;
  outbox_entry& head = d.queue.front();
  switch (result) {
    case delivery_result::delivered:
    case delivery_result::rejected:
      s.finish(d, result, detail);
      break;
    case delivery_result::gave_up:
    case delivery_result::dropped: {
      if (s.stopping && result == delivery_result::dropped) {
        // Shutdown: it stays pending in the store and is resumed at the next start.
        --head.attempts;  // the attempt never completed
        return;
      }
      head.last_error = std::string(detail);
      const std::int64_t now = s.now_ms();
      const bool too_old = now - head.created_ms >= s.options.give_up_after.count();
      const bool too_many = s.options.max_attempts != 0 && head.attempts >= s.options.max_attempts;
      if (too_old || too_many) {
        s.finish(d, delivery_result::gave_up, detail);
        break;
      }
      // A receiver that said how long to wait (429 or 503 with Retry-After) is taken at its
      // word, up to max_backoff; otherwise the jittered backoff.
      const milliseconds delay =
          retry_after ? std::clamp(*retry_after, milliseconds(0), s.options.max_backoff)
                      : s.backoff(head.attempts);
      head.next_attempt_ms = now + delay.count();
      s.journal.attempted(head.req.id, head.attempts, head.next_attempt_ms, detail);
      s.observer.on_retry(head.req, head.attempts, detail, delay);
      break;
    }
  }
  s.kick(d);
}

}  // namespace alertrouter::daemon
