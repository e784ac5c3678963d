#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace alertrouter::integration {

// One request the sink received, as it arrived.
struct recorded_request {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // names as sent
  std::string body;
  std::chrono::steady_clock::time_point received_at;
  unsigned answered = 0;  // the status the sink answered with

  // Value of the first field named `name` (ASCII case-insensitive); empty if absent.
  std::string header(std::string_view name) const;
};

// A recording HTTP sink on 127.0.0.1:<ephemeral port>: stands in for people's, receivers' and
// projects' webhooks (and for alertrouterd, behind Alertmanager). It records every request to
// one of its paths and answers 200 "ok", or, when programmed with fail_next(), an error status
// the first N times. Requests to other paths get 404 from the server and are not recorded.
//
// It runs the project's daemon::http_server on its own thread with its own io_context (started
// by the constructor, stopped and joined by the destructor). Every public member is thread-safe;
// wait_for() blocks the caller, never the sink.
class recording_sink {
 public:
  // Serves POST and PUT on each of `paths` (exact match). Throws std::runtime_error if it cannot
  // bind.
  explicit recording_sink(std::vector<std::string> paths);
  ~recording_sink();
  recording_sink(const recording_sink&) = delete;
  recording_sink& operator=(const recording_sink&) = delete;

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port><path>"
  std::string url(std::string_view path) const;

  // The next `count` requests to `path` are answered `status` (e.g. 503) and recorded as such;
  // later ones 200 again. Replaces an earlier setting for `path`.
  void fail_next(const std::string& path, std::size_t count, unsigned status = 503);

  // Copies of what has been recorded so far, in arrival order (all paths, or one).
  std::vector<recorded_request> requests() const;
  std::vector<recorded_request> requests_to(std::string_view path) const;

  using predicate = std::function<bool(const std::vector<recorded_request>&)>;
  // Blocks until `pred` holds for the recorded requests (checked now and after each new
  // request) or `timeout` passes; returns whether it held. `pred` runs under the sink's lock:
  // it must be quick and must not call back into the sink.
  bool wait_for(const predicate& pred, std::chrono::milliseconds timeout) const;
  // Blocks until at least `count` requests to `path` were recorded, or `timeout` passes.
  bool wait_for_count(std::string_view path, std::size_t count,
                      std::chrono::milliseconds timeout) const;

 private:
  struct state;
  std::shared_ptr<state> state_;  // shared with the io thread's handlers
  std::uint16_t port_ = 0;
};

}  // namespace alertrouter::integration
