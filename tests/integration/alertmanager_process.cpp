#include "tests/integration/alertmanager_process.h"

#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "tests/integration/free_port.h"
#include "tests/integration/http_client.h"

namespace alertrouter::integration {
namespace {

using namespace std::chrono_literals;

// Alertmanager parses Prometheus-style durations; milliseconds are exact.
std::string duration(std::chrono::milliseconds d) { return std::to_string(d.count()) + "ms"; }

boost::json::object to_object(const std::map<std::string, std::string>& m) {
  boost::json::object o;
  for (const auto& [k, v] : m) o[k] = v;
  return o;
}

}  // namespace

bool alertmanager_available() { return ::access(alertmanager_binary, X_OK) == 0; }

std::string to_rfc3339(std::chrono::system_clock::time_point t) {
  const auto ms = std::chrono::time_point_cast<std::chrono::milliseconds>(t);
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(ms);
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[8];
  std::snprintf(frac, sizeof frac, ".%03dZ", static_cast<int>((ms - secs).count()));
  return std::string(buf) + frac;
}

std::string encode_posted_alerts(const std::vector<posted_alert>& alerts) {
  boost::json::array array;
  for (const auto& a : alerts) {
    boost::json::object o;
    o["labels"] = to_object(a.labels);
    o["annotations"] = to_object(a.annotations);
    if (a.starts_at) o["startsAt"] = to_rfc3339(*a.starts_at);
    if (a.ends_at) o["endsAt"] = to_rfc3339(*a.ends_at);
    if (!a.generator_url.empty()) o["generatorURL"] = a.generator_url;
    array.push_back(std::move(o));
  }
  return boost::json::serialize(array);
}

alertmanager_process::alertmanager_process(const std::filesystem::path& dir, std::string name,
                                           alertmanager_options options)
    : name_(std::move(name)), options_(std::move(options)), port_(pick_free_port()) {
  const auto home = dir / name_;
  std::filesystem::create_directories(home / "data");

  std::string group_by;
  for (const auto& label : options_.group_by) {
    group_by += (group_by.empty() ? "'" : ", '") + label + "'";
  }
  // clang-format off
  const std::string yaml =
      "route:\n"
      "  receiver: webhook\n"
      "  group_by: [" + group_by + "]\n"
      "  group_wait: " + duration(options_.group_wait) + "\n"
      "  group_interval: " + duration(options_.group_interval) + "\n"
      "  repeat_interval: " + duration(options_.repeat_interval) + "\n"
      "receivers:\n"
      "  - name: webhook\n"
      "    webhook_configs:\n"
      "      - url: '" + options_.webhook_url + "'\n"
      "        send_resolved: true\n";
  // clang-format on
  const auto config = home / "alertmanager.yml";
  {
    std::ofstream out(config, std::ios::trunc);
    out << yaml;
    out.close();
    if (!out) throw std::runtime_error("cannot write " + config.string());
  }

  // Another process may take the web port between pick_free_port() and the child's bind: the
  // child then exits saying so, and is started again on a new port. (The cluster port cannot be
  // changed here: the peers were told it.)
  for (int start = 1;; ++start) {
    if (start > 1) port_ = pick_free_port();
    std::vector<std::string> argv = {
        alertmanager_binary,
        "--config.file=" + config.string(),
        "--storage.path=" + (home / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_),
        "--log.level=debug",
    };
    if (options_.cluster_port) {
      argv.push_back("--cluster.listen-address=" + cluster_address());
      argv.push_back("--cluster.advertise-address=" + cluster_address());
      for (const auto& peer : options_.peers) argv.push_back("--cluster.peer=" + peer);
      // Settling polls the member count every 10 gossip intervals and needs it stable a few
      // times in a row: 50 ms gossip settles a two-peer cluster in about two seconds.
      argv.push_back("--cluster.gossip-interval=50ms");
      argv.push_back("--cluster.pushpull-interval=1s");
      argv.push_back("--cluster.probe-interval=200ms");
      argv.push_back("--cluster.reconnect-interval=1s");
      argv.push_back("--cluster.settle-timeout=10s");
      argv.push_back("--cluster.peer-timeout=" + duration(options_.peer_timeout));
    } else {
      argv.push_back("--cluster.listen-address=");
    }
    process_ = std::make_unique<child_process>(name_, std::move(argv), home);

    const auto until = std::chrono::steady_clock::now() + 10s;
    bool ready = false;
    while (!ready) {
      const auto reply = http_get(port_, "/-/ready", 1s);
      ready = reply && reply->status == 200;
      if (ready || (process_->running() && std::chrono::steady_clock::now() < until)) {
        if (!ready) std::this_thread::sleep_for(20ms);
        continue;
      }
      const std::string log = process_->log_tail();
      const bool web_port_taken = !process_->running() &&
                                  log.find("Listen error") != std::string::npos &&
                                  log.find("address already in use") != std::string::npos;
      if (web_port_taken && start < 3) break;
      throw std::runtime_error(name_ + " did not become ready on port " + std::to_string(port_) +
                               "\n" + log);
    }
    if (ready) return;
  }
}

std::string alertmanager_process::cluster_address() const {
  if (!options_.cluster_port) return {};
  return "127.0.0.1:" + std::to_string(*options_.cluster_port);
}

void alertmanager_process::post(const std::vector<posted_alert>& alerts) const {
  const auto reply = http_post(port_, "/api/v2/alerts", encode_posted_alerts(alerts));
  if (!reply) {
    throw std::runtime_error(name_ + ": POST /api/v2/alerts: " + reply.error().message());
  }
  if (reply->status != 200) {
    throw std::runtime_error(name_ + ": POST /api/v2/alerts answered " +
                             std::to_string(reply->status) + ": " + reply->body);
  }
}

std::string alertmanager_process::metrics() const {
  const auto reply = http_get(port_, "/metrics");
  if (!reply || reply->status != 200) throw std::runtime_error(name_ + ": GET /metrics failed");
  return reply->body;
}

std::string alertmanager_process::alerts_json() const {
  const auto reply = http_get(port_, "/api/v2/alerts");
  if (!reply || reply->status != 200) {
    throw std::runtime_error(name_ + ": GET /api/v2/alerts failed");
  }
  return reply->body;
}

}  // namespace alertrouter::integration
