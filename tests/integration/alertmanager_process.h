#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/integration/child_process.h"

namespace alertrouter::integration {

// Debian's prometheus-alertmanager (0.25), as packaged.
inline constexpr const char* alertmanager_binary = "/usr/bin/prometheus-alertmanager";

// Whether alertmanager_binary exists and is executable. Tests skip (GTEST_SKIP) without it.
bool alertmanager_available();

// An alert as Prometheus posts it to Alertmanager's /api/v2/alerts.
struct posted_alert {
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // Unset: Alertmanager fills in "now" (startsAt) or "now + resolve_timeout" (endsAt). An
  // endsAt at or before now makes the alert resolved.
  std::optional<std::chrono::system_clock::time_point> starts_at;
  std::optional<std::chrono::system_clock::time_point> ends_at;
  std::string generator_url;
};

// The JSON array /api/v2/alerts takes. Pure.
std::string encode_posted_alerts(const std::vector<posted_alert>& alerts);

// "2026-01-07T15:55:00.123Z": RFC 3339 in UTC with milliseconds, as Go parses it. Pure.
std::string to_rfc3339(std::chrono::system_clock::time_point t);

struct alertmanager_options {
  // The webhook receiver's URL (alertrouterd's /webhook/alertmanager, or a recording sink).
  std::string webhook_url;
  // Short timings so a test sees a flush, resends and resolves within seconds. Alertmanager 0.25
  // rejects a zero group_interval or repeat_interval; any positive value is accepted.
  std::chrono::milliseconds group_wait{200};
  std::chrono::milliseconds group_interval{500};
  std::chrono::milliseconds repeat_interval{1000};
  std::vector<std::string> group_by{"alertname", "project"};
  // Cluster: empty cluster_port disables HA mode (--cluster.listen-address=). Otherwise listen
  // on 127.0.0.1:cluster_port and join `peers` ("127.0.0.1:PORT"), with gossip timings short
  // enough for the cluster to settle in about two seconds.
  std::optional<std::uint16_t> cluster_port;
  std::vector<std::string> peers;
  // How long a peer waits per position in the cluster before notifying (Alertmanager's
  // --cluster.peer-timeout); peers further down send only if the nflog shows nobody did.
  std::chrono::milliseconds peer_timeout{500};
};

// One real Alertmanager process in `dir` (config, storage and logs there), on
// 127.0.0.1:<free port>. The constructor writes alertmanager.yml (one route, grouped by
// options.group_by, to one webhook receiver with send_resolved: true), starts the process and
// waits for /-/ready; it throws std::runtime_error with the process's log tail if the process
// exits (a bad config, a port taken) or is not ready within 10 s. The destructor stops the process.
//
// Threading: one thread (see child_process).
class alertmanager_process {
 public:
  alertmanager_process(const std::filesystem::path& dir, std::string name,
                       alertmanager_options options);

  std::uint16_t port() const { return port_; }
  // "127.0.0.1:<cluster port>", or "" without a cluster.
  std::string cluster_address() const;
  child_process& process() { return *process_; }

  // POSTs `alerts` to /api/v2/alerts. Throws std::runtime_error unless answered 200.
  void post(const std::vector<posted_alert>& alerts) const;

  // GET /metrics; the text, or throws std::runtime_error.
  std::string metrics() const;

  // The alerts Alertmanager currently holds (GET /api/v2/alerts), raw JSON.
  std::string alerts_json() const;

 private:
  std::string name_;
  alertmanager_options options_;
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
};

}  // namespace alertrouter::integration
