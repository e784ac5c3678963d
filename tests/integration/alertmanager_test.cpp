// Proves the harness on its own: a real Alertmanager delivers to the recording sink, with the
// short timings the alertrouterd tests rely on (flush, resends, resolve within seconds).

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <thread>

#include "tests/integration/alertmanager_process.h"
#include "tests/integration/free_port.h"
#include "tests/integration/json_text.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/recording_sink.h"
#include "tests/integration/temp_dir.h"
#include "tests/integration/wmcs_alerts.h"

namespace alertrouter::integration {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

constexpr auto wait_limit = 15s;  // bound on each wait; reached only when something is broken

// The webhook bodies the sink got whose top-level status is `status`.
std::size_t count_with_status(const std::vector<recorded_request>& all, std::string_view status) {
  std::size_t n = 0;
  for (const auto& r : all) {
    boost::system::error_code ec;
    const auto doc = json::parse(r.body, ec);
    if (!ec && json_string(doc, "status") == status) ++n;
  }
  return n;
}

TEST(alertmanager_harness, firing_resent_and_resolved_alert_reaches_the_sink) {
  if (!alertmanager_available()) GTEST_SKIP() << alertmanager_binary << " is not installed";
  temp_dir dir("alertmanager-harness");
  recording_sink sink({"/webhook"});
  alertmanager_options options;
  options.webhook_url = sink.url("/webhook");
  alertmanager_process am(dir.path(), "alertmanager", options);

  const auto alert = wmcs_alerts::cloudvirt_down();
  am.post({alert});

  // Group wait, then one firing notification and, with repeat_interval 1 s, resends of it.
  ASSERT_TRUE(sink.wait_for([](const auto& all) { return count_with_status(all, "firing") >= 2; },
                            wait_limit))
      << "expected a firing notification and a resend; got " << sink.requests().size();

  const auto first = sink.requests().front();
  EXPECT_EQ(first.method, "POST");
  EXPECT_EQ(first.header("Content-Type"), "application/json");
  EXPECT_NE(first.header("User-Agent").find("Alertmanager"), std::string::npos);
  const auto body = json::parse(first.body);
  EXPECT_EQ(json_string(body, "version"), "4");
  EXPECT_EQ(json_string(body, "status"), "firing");
  EXPECT_EQ(json_string(body, "receiver"), "webhook");
  EXPECT_EQ(json_string(body.at("groupLabels"), "alertname"), "CloudVirtDown");
  ASSERT_EQ(body.at("alerts").as_array().size(), 1u);
  const auto& fired = body.at("alerts").at(0);
  EXPECT_EQ(json_string(fired, "status"), "firing");
  EXPECT_EQ(json_string(fired.at("labels"), "instance"), "cloudvirt1031");
  EXPECT_EQ(json_string(fired.at("labels"), "team"), "wmcs");
  EXPECT_EQ(json_string(fired, "startsAt").substr(0, 19),
            to_rfc3339(*alert.starts_at).substr(0, 19));
  const std::string fingerprint = json_string(fired, "fingerprint");
  EXPECT_EQ(fingerprint.size(), 16u);

  am.post({wmcs_alerts::resolved(alert)});
  ASSERT_TRUE(sink.wait_for([](const auto& all) { return count_with_status(all, "resolved") >= 1; },
                            wait_limit));

  for (const auto& r : sink.requests()) {
    const auto doc = json::parse(r.body);
    if (json_string(doc, "status") != "resolved") continue;
    const auto& gone = doc.at("alerts").at(0);
    EXPECT_EQ(json_string(gone, "status"), "resolved");
    EXPECT_EQ(json_string(gone, "fingerprint"), fingerprint) << "same alert, same fingerprint";
    EXPECT_NE(json_string(gone, "endsAt"), "0001-01-01T00:00:00Z");
    break;
  }
  EXPECT_TRUE(am.process().running());
}

// The ports the harness hands out never repeat within a process (the kernel may return one port
// to two bind(0) calls in a row, which once gave an Alertmanager's web and cluster listeners the
// same port) and each can be bound for TCP and UDP when handed out.
TEST(alertmanager_harness, free_ports_are_distinct_and_bindable) {
  namespace asio = boost::asio;
  std::set<std::uint16_t> seen;
  asio::io_context io;
  const auto loopback = asio::ip::make_address_v4("127.0.0.1");
  for (int i = 0; i < 200; ++i) {
    const std::uint16_t port = pick_free_port();
    EXPECT_TRUE(seen.insert(port).second) << "port " << port << " handed out twice";
    asio::ip::tcp::acceptor tcp(io);
    asio::ip::udp::socket udp(io);
    boost::system::error_code ec;
    tcp.open(asio::ip::tcp::v4(), ec);
    if (!ec) tcp.bind({loopback, port}, ec);
    EXPECT_FALSE(ec) << "TCP " << port << ": " << ec.message();
    udp.open(asio::ip::udp::v4(), ec);
    if (!ec) udp.bind({loopback, port}, ec);
    EXPECT_FALSE(ec) << "UDP " << port << ": " << ec.message();
  }
  EXPECT_EQ(seen.size(), 200u);
}

// Two Alertmanagers form a cluster through the harness's flags: each lists the other as a
// member once gossip has run (the settling the two-peer alertrouterd test relies on).
TEST(alertmanager_harness, two_peers_form_a_cluster) {
  if (!alertmanager_available()) GTEST_SKIP() << alertmanager_binary << " is not installed";
  temp_dir dir("alertmanager-cluster");
  recording_sink sink({"/webhook"});
  alertmanager_options a_options;
  a_options.webhook_url = sink.url("/webhook");
  a_options.cluster_port = pick_free_port();
  alertmanager_process a(dir.path(), "alertmanager-a", a_options);
  alertmanager_options b_options = a_options;
  b_options.cluster_port = pick_free_port();
  b_options.peers = {a.cluster_address()};
  alertmanager_process b(dir.path(), "alertmanager-b", b_options);

  const auto until = std::chrono::steady_clock::now() + wait_limit;
  bool both_see_two = false;
  while (!both_see_two && std::chrono::steady_clock::now() < until) {
    both_see_two = metric_sum(a.metrics(), "alertmanager_cluster_members") == 2.0 &&
                   metric_sum(b.metrics(), "alertmanager_cluster_members") == 2.0;
    if (!both_see_two) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(both_see_two);
}

}  // namespace
}  // namespace alertrouter::integration
