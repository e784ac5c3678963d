#include "tests/integration/alertrouterd_process.h"

#include <stdexcept>
#include <thread>

#include "tests/integration/prometheus_text.h"

namespace alertrouter::integration {

using namespace std::chrono_literals;

alertrouterd_process::alertrouterd_process(const std::filesystem::path& binary,
                                           const std::filesystem::path& config,
                                           const std::filesystem::path& log_dir, std::string name,
                                           std::filesystem::path state_dir) {
  if (state_dir.empty()) state_dir = log_dir / (name + ".state");
  process_ = std::make_unique<child_process>(
      std::move(name),
      std::vector<std::string>{binary.string(), "--config", config.string(), "--listen",
                               "127.0.0.1:0", "--state-dir", state_dir.string(), "--log-level",
                               "debug"},
      log_dir);
  constexpr std::string_view marker = "msg=listening listen=127.0.0.1:";
  const auto line = process_->wait_for_log(marker, 10s);
  if (!line) {
    throw std::runtime_error(process_->name() + " did not report `" + std::string(marker) +
                             "PORT`\n" + process_->log_tail());
  }
  const auto at = line->find(marker) + marker.size();
  std::size_t end = at;
  while (end < line->size() && (*line)[end] >= '0' && (*line)[end] <= '9') ++end;
  const auto port = std::stoul(line->substr(at, end - at));
  if (port == 0 || port > 65535) throw std::runtime_error("bad port in: " + *line);
  port_ = static_cast<std::uint16_t>(port);
}

std::string alertrouterd_process::webhook_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/webhook/alertmanager";
}

std::string alertrouterd_process::metrics() const {
  const auto reply = http_get(port_, "/metrics");
  if (!reply) throw std::runtime_error("GET /metrics: " + reply.error().message());
  if (reply->status != 200) {
    throw std::runtime_error("GET /metrics answered " + std::to_string(reply->status));
  }
  return reply->body;
}

std::optional<double> alertrouterd_process::metric(
    std::string_view name, const std::map<std::string, std::string>& labels) const {
  return metric_sum(metrics(), name, labels);
}

bool alertrouterd_process::wait_for_metric(std::string_view name,
                                           const std::map<std::string, std::string>& labels,
                                           double at_least,
                                           std::chrono::milliseconds timeout) const {
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (metric(name, labels).value_or(0) >= at_least) return true;
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(20ms);
  }
}

boost::system::result<http_reply> alertrouterd_process::post_webhook(std::string_view body) const {
  return http_post(port_, "/webhook/alertmanager", body);
}

boost::system::result<http_reply> alertrouterd_process::reload() const {
  return http_post(port_, "/-/reload", "", "");
}

boost::system::result<http_reply> alertrouterd_process::get(std::string_view target) const {
  return http_get(port_, target);
}

}  // namespace alertrouter::integration
