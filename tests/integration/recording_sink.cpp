#include "tests/integration/recording_sink.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cctype>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <thread>

#include "daemon/http_server.h"

namespace alertrouter::integration {

struct recording_sink::state {
  mutable std::mutex mutex;
  mutable std::condition_variable changed;
  std::vector<recorded_request> requests;
  std::map<std::string, std::pair<std::size_t, unsigned>, std::less<>> failures;  // path -> n

  boost::asio::io_context io;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work{
      io.get_executor()};
  std::unique_ptr<daemon::http_server> server;
  std::thread thread;
};

std::string recorded_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < n.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(n[i])) ==
             std::tolower(static_cast<unsigned char>(name[i]));
    }
    if (same) return v;
  }
  return {};
}

recording_sink::recording_sink(std::vector<std::string> paths) : state_(std::make_shared<state>()) {
  daemon::http_limits limits;
  limits.max_body = 64 * 1024 * 1024;
  state_->server = std::make_unique<daemon::http_server>(
      state_->io, limits, [](std::string_view line) { std::cerr << "sink: " << line << "\n"; });
  std::weak_ptr<state> weak = state_;
  for (auto& path : paths) {
    state_->server->handle(path, {"POST", "PUT"}, [weak](daemon::http_request& req) {
      daemon::http_response res;
      const auto s = weak.lock();
      if (!s) {
        res.status = 503;
        return res;
      }
      recorded_request r;
      r.method = req.method;
      r.path = req.path;
      r.headers = std::move(req.headers);
      r.body = std::move(req.body);
      r.received_at = std::chrono::steady_clock::now();
      r.answered = 200;
      {
        const std::lock_guard lock(s->mutex);
        const auto f = s->failures.find(r.path);
        if (f != s->failures.end() && f->second.first > 0) {
          --f->second.first;
          r.answered = f->second.second;
        }
        s->requests.push_back(std::move(r));
        res.status = s->requests.back().answered;
      }
      s->changed.notify_all();
      res.body = res.status == 200 ? "ok\n" : "programmed failure\n";
      return res;
    });
  }
  const auto ep = state_->server->bind("127.0.0.1", 0);
  if (!ep) throw std::runtime_error("recording_sink: bind: " + ep.error().message());
  port_ = ep->port();
  state_->server->start();
  state_->thread = std::thread([s = state_.get()] { s->io.run(); });
}

recording_sink::~recording_sink() {
  state_->work.reset();
  state_->io.stop();
  if (state_->thread.joinable()) state_->thread.join();
  // The io_context has stopped: the server may now be destroyed on this thread.
  state_->server.reset();
}

std::string recording_sink::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void recording_sink::fail_next(const std::string& path, std::size_t count, unsigned status) {
  const std::lock_guard lock(state_->mutex);
  state_->failures[path] = {count, status};
}

std::vector<recorded_request> recording_sink::requests() const {
  const std::lock_guard lock(state_->mutex);
  return state_->requests;
}

std::vector<recorded_request> recording_sink::requests_to(std::string_view path) const {
  const std::lock_guard lock(state_->mutex);
  std::vector<recorded_request> out;
  for (const auto& r : state_->requests) {
    if (r.path == path) out.push_back(r);
  }
  return out;
}

bool recording_sink::wait_for(const predicate& pred, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(state_->mutex);
  return state_->changed.wait_for(lock, timeout, [&] { return pred(state_->requests); });
}

bool recording_sink::wait_for_count(std::string_view path, std::size_t count,
                                    std::chrono::milliseconds timeout) const {
  return wait_for(
      [&](const std::vector<recorded_request>& all) {
        std::size_t n = 0;
        for (const auto& r : all) n += r.path == path ? 1u : 0u;
        return n >= count;
      },
      timeout);
}

}  // namespace alertrouter::integration
