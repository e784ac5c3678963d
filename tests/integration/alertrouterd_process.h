#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/integration/child_process.h"
#include "tests/integration/http_client.h"

namespace alertrouter::integration {

// The built daemon, started as operators start it:
//   alertrouterd --config FILE --listen 127.0.0.1:0 --state-dir DIR --log-level debug
// DIR defaults to LOG_DIR/NAME.state: starting the same name again in the same test resumes the
// same state, as a restart does.
// It binds an ephemeral port and reports it on stderr ("msg=listening listen=127.0.0.1:PORT"),
// which the constructor waits for (10 s at most; std::runtime_error with its log tail otherwise,
// e.g. a config it rejects). The destructor sends SIGTERM and reaps it (see child_process).
//
// Threading: one thread (see child_process). The HTTP helpers are blocking and bounded.
class alertrouterd_process {
 public:
  alertrouterd_process(const std::filesystem::path& binary, const std::filesystem::path& config,
                       const std::filesystem::path& log_dir, std::string name = "alertrouterd",
                       std::filesystem::path state_dir = {});

  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:<port>/webhook/alertmanager": what Alertmanager's webhook_configs point at.
  std::string webhook_url() const;
  child_process& process() { return *process_; }

  // GET /metrics; throws std::runtime_error unless answered 200.
  std::string metrics() const;
  // metric_sum() over a fresh scrape; nullopt when the series does not exist.
  std::optional<double> metric(std::string_view name,
                               const std::map<std::string, std::string>& labels = {}) const;
  // Polls /metrics until metric(name, labels) >= at_least or `timeout` passes; returns whether
  // it got there. For events that happen inside the daemon with nothing else to wait on.
  bool wait_for_metric(std::string_view name, const std::map<std::string, std::string>& labels,
                       double at_least, std::chrono::milliseconds timeout) const;

  // POST /webhook/alertmanager with `body`.
  boost::system::result<http_reply> post_webhook(std::string_view body) const;
  // POST /-/reload.
  boost::system::result<http_reply> reload() const;
  // GET `target` (e.g. "/api/v1/incidents").
  boost::system::result<http_reply> get(std::string_view target) const;

 private:
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
};

}  // namespace alertrouter::integration
