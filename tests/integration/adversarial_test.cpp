// Hostile input to the daemon's webhook endpoint and HTTP server: every request is refused with
// the right status, the daemon stays up, its incident state is unchanged, nobody is notified,
// and a well-formed webhook afterwards still pages.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/integration/http_client.h"
#include "tests/integration/prometheus_text.h"
#include "tests/integration/router_fixture.h"
#include "tests/integration/webhook_payload.h"
#include "tests/integration/wmcs_alerts.h"

namespace alertrouter::integration {
namespace {

// What must not change under attack.
struct daemon_state {
  std::string incidents;  // GET /api/v1/incidents
  double opened = 0;      // alertrouter_incidents_opened_total
  double open = 0;        // alertrouter_incidents_open
  double accepted = 0;    // alertrouter_webhooks_received_total{result="accepted"}

  bool operator==(const daemon_state&) const = default;
};

class adversarial : public router_fixture {
 protected:
  void SetUp() override {
    router_fixture::SetUp();
    if (IsSkipped()) return;
    before_ = state();
  }

  // After each test: same state, nobody notified, daemon healthy, and still working.
  void TearDown() override {
    if (IsSkipped() || !daemon_) return;
    ASSERT_TRUE(daemon_->process().running()) << "the daemon died";
    const auto healthy = daemon_->get("/-/healthy");
    ASSERT_TRUE(healthy) << healthy.error().message();
    EXPECT_EQ(healthy->status, 200u);
    EXPECT_EQ(state(), before_) << "incidents:\n"
                                << state().incidents << "\nbefore:\n"
                                << before_.incidents;
    EXPECT_TRUE(sink_.requests().empty()) << sink_.requests().front().body;

    // The template the attacks are built from, unharmed, is accepted: they were refused for
    // what they changed, not for something wrong in the template.
    const auto ok = daemon_->post_webhook(with_alert_field("generatorURL", R"("http://p/g")"));
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200u) << ok->body;
    EXPECT_TRUE(sink_.wait_for_count(alice_path, 1, wait_limit)) << "no page after the attack";
    router_fixture::TearDown();
  }

  daemon_state state() const {
    daemon_state s;
    const auto incidents = daemon_->get("/api/v1/incidents");
    if (incidents && incidents->status == 200) s.incidents = incidents->body;
    const auto text = daemon_->metrics();
    s.opened = metric_sum(text, "alertrouter_incidents_opened_total").value_or(-1);
    s.open = metric_sum(text, "alertrouter_incidents_open").value_or(-1);
    s.accepted = metric_sum(text, "alertrouter_webhooks_received_total", {{"result", "accepted"}})
                     .value_or(-1);
    return s;
  }

  double bad_requests() const {
    return daemon_->metric("alertrouter_webhooks_received_total", {{"result", "bad_request"}})
        .value_or(-1);
  }

  // POSTs `body` and expects `status`; returns the answer's body.
  std::string expect_refused(std::string_view body, unsigned status, std::string_view what) {
    const auto reply = daemon_->post_webhook(body);
    EXPECT_TRUE(reply) << what << ": " << reply.error().message();
    if (!reply) return {};
    EXPECT_EQ(reply->status, status) << what << ": " << reply->body;
    return reply->body;
  }

  // A valid one-alert webhook in which the alert's field `field` has the raw JSON `value`
  // instead (added when the alert has no such field).
  static std::string with_alert_field(std::string_view field, std::string_view value) {
    std::vector<std::pair<std::string, std::string>> alert = {
        {"status", R"("firing")"},
        {"labels", R"({"alertname":"CloudVirtDown","team":"wmcs","severity":"page"})"},
        {"annotations", "{}"},
        {"startsAt", R"("2026-01-07T15:55:00Z")"},
        {"endsAt", R"("0001-01-01T00:00:00Z")"},
        {"generatorURL", R"("")"},
    };
    bool replaced = false;
    for (auto& [k, v] : alert) {
      if (k == field) {
        v = std::string(value);
        replaced = true;
      }
    }
    if (!replaced) alert.emplace_back(std::string(field), std::string(value));
    std::string fields;
    for (const auto& [k, v] : alert) fields += (fields.empty() ? "\"" : ",\"") + k + "\":" + v;
    return R"({"version":"4","groupKey":"{}:{}","status":"firing","receiver":"r",)"
           R"("groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"",)"
           R"("alerts":[{)" +
           fields + "}]}";
  }

  daemon_state before_;
};

TEST_F(adversarial, truncated_json_is_refused) {
  const std::string body = encode_webhook({wmcs_alerts::cloudvirt_down()});
  const double before = bad_requests();
  double sent = 0;
  // Every cut is either inside a token or between tokens: never a complete document.
  for (std::size_t cut = 0; cut < body.size(); cut += 13) {
    if (cut == 0) continue;  // an empty body is its own case below
    expect_refused(body.substr(0, cut), 400, "cut at " + std::to_string(cut));
    ++sent;
  }
  expect_refused(body.substr(0, body.size() - 1), 400, "last byte missing");
  expect_refused("", 400, "empty body");
  sent += 2;
  EXPECT_EQ(bad_requests() - before, sent);
}

TEST_F(adversarial, wrong_types_are_refused_naming_the_field) {
  struct sample {
    std::string body;
    std::string names;  // what the 400 answer must mention
  };
  const std::vector<sample> samples = {
      {"[]", ""},
      {"null", ""},
      {"\"alerts\"", ""},
      {R"({"version":"4","alerts":{}})", "alerts"},
      {R"({"version":"4","alerts":[1]})", "alerts[0]"},
      {with_alert_field("labels", "[]"), "labels"},
      {with_alert_field("labels", R"({"alertname":1})"), "labels"},
      {with_alert_field("labels", R"({"alertname":null})"), "labels"},
      {with_alert_field("startsAt", "12345"), "startsAt"},
      {with_alert_field("status", "\"maybe\""), "status"},
      {with_alert_field("status", "true"), "status"},
      {with_alert_field("fingerprint", "\"not-hex\""), "fingerprint"},
      {with_alert_field("startsAt", "\"yesterday\""), "startsAt"},
      {with_alert_field("annotations", "\"text\""), "annotations"},
  };
  for (const auto& s : samples) {
    const auto answer = expect_refused(s.body, 400, s.body);
    EXPECT_NE(answer.find(s.names), std::string::npos) << s.body << " -> " << answer;
  }
}

TEST_F(adversarial, deep_nesting_is_refused) {
  const std::size_t depth = 100000;  // 200 KB, within max_body: the parser must bound depth
  // In an unknown field of an otherwise valid alert: unknown fields are ignored, but must parse.
  expect_refused(with_alert_field("x", std::string(depth, '[') + std::string(depth, ']')), 400,
                 "deep arrays");
  std::string objects;
  for (std::size_t i = 0; i < depth / 10; ++i) objects += "{\"a\":";
  objects += "1" + std::string(depth / 10, '}');
  expect_refused(with_alert_field("x", objects), 400, "deep objects");
  // 40 levels: just past the documented bound of 32 (routing/webhook.h).
  expect_refused(with_alert_field("x", std::string(40, '[') + std::string(40, ']')), 400,
                 "40 levels");
  // Unbalanced: opens only.
  expect_refused(std::string(depth, '['), 400, "open brackets only");
}

TEST_F(adversarial, huge_values_are_refused) {
  expect_refused(R"({"version":"4","truncatedAlerts":123456789012345678901234567890,"alerts":[]})",
                 400, "integer beyond 64 bits");
  expect_refused(R"({"version":"4","truncatedAlerts":1e999,"alerts":[]})", 400,
                 "number beyond double");
  expect_refused(with_alert_field("x", "-1e99999"), 400, "huge exponent in an unknown field");
  // A 900 KB label value in an alert that is otherwise invalid: read whole, then refused.
  expect_refused(with_alert_field("startsAt", "\"" + std::string(900 * 1024, 'x') + "\""), 400,
                 "huge startsAt");
  // A header section over the server's limit.
  raw_connection c(daemon_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("POST /webhook/alertmanager HTTP/1.1\r\nHost: t\r\nX-Big: " +
                     std::string(64 * 1024, 'h') + "\r\nContent-Length: 2\r\n\r\n{}"));
  EXPECT_EQ(c.read_response().status, 431u);
}

TEST_F(adversarial, invalid_utf8_is_refused) {
  for (const std::string& bad : {std::string("\xff\xfe"), std::string("\xc0\xaf"),
                                 std::string("abc\xed\xa0\x80"), std::string("\xe2\x82")}) {
    expect_refused(
        with_alert_field("labels", R"({"alertname":"CloudVirtDown","instance":")" + bad + "\"}"),
        400, "invalid UTF-8 in a label value");
    expect_refused(with_alert_field(bad, "1"), 400, "invalid UTF-8 in an unknown key");
    expect_refused(with_alert_field("annotations", R"({"summary":")" + bad + "\"}"), 400,
                   "invalid UTF-8 in an annotation");
  }
}

TEST_F(adversarial, oversized_body_is_refused_with_413) {
  const double too_large_before =
      daemon_->metric("alertrouter_webhooks_received_total", {{"result", "too_large"}}).value_or(0);
  {
    // Announced too large: answered before the body is read.
    raw_connection c(daemon_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send("POST /webhook/alertmanager HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n"));
    EXPECT_EQ(c.read_response().status, 413u);
  }
  {
    // Chunked, no length announced: refused once the limit (1 MiB) is passed.
    raw_connection c(daemon_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send("POST /webhook/alertmanager HTTP/1.1\r\nHost: t\r\n"
               "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"));
    const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
    for (int i = 0; i < 24; ++i) {
      if (!c.send(chunk)) break;  // the daemon may close as soon as it has answered
    }
    EXPECT_EQ(c.read_response().status, 413u);
  }
  // A body of exactly one byte over the limit, sent whole by an ordinary client.
  const auto reply = daemon_->post_webhook(std::string(1024 * 1024 + 1, ' '));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(reply->status, 413u);
  // Counted as documented in daemon/metrics.h: webhooks_received_total{result="too_large"}.
  EXPECT_EQ(daemon_->metric("alertrouter_webhooks_received_total", {{"result", "too_large"}})
                    .value_or(0) -
                too_large_before,
            3);
}

// With a bearer token configured, a webhook or reload without it is refused on its header: no
// 100 Continue, no body read (the client announced 1 MiB and sent none of it), the connection
// closed; a reload without it rereads nothing. The token is switched on and off by reloads.
TEST_F(adversarial, requests_without_the_token_are_refused_before_their_body) {
  const auto token = dir_.write("token", "adversarial-token\n");
  const std::string plain_config = router_config_yaml(sink_, "alice");
  write_config(plain_config + "auth:\n  bearer_token_file: " + token.string() + "\n");
  const auto on = daemon_->reload();
  ASSERT_TRUE(on) << on.error().message();
  ASSERT_EQ(on->status, 200u) << on->body;
  const double unauthorized_before =
      daemon_->metric("alertrouter_webhooks_received_total", {{"result", "unauthorized"}})
          .value_or(-1);

  for (const std::string_view path : {"/webhook/alertmanager", "/-/reload"}) {
    raw_connection c(daemon_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send("POST " + std::string(path) +
                       " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                       "Expect: 100-continue\r\nContent-Length: 1048576\r\n\r\n"));
    const http_reply reply = c.read_response();
    EXPECT_EQ(reply.status, 401u) << path << ": " << reply.body;  // not 100
    EXPECT_EQ(reply.header("WWW-Authenticate"), "Bearer") << path;
    EXPECT_TRUE(c.read_until_close(std::chrono::seconds(5)).closed) << path;
  }
  EXPECT_EQ(daemon_->metric("alertrouter_webhooks_received_total", {{"result", "unauthorized"}})
                    .value_or(-1) -
                unauthorized_before,
            1);
  // The reload refused above reread nothing: the plain configuration written now is not taken
  // without the token (the webhook below still needs it), and is with it.
  write_config(plain_config);
  EXPECT_EQ(daemon_->reload()->status, 401u);
  EXPECT_EQ(daemon_->post_webhook(with_alert_field("generatorURL", R"("http://p/g")"))->status,
            401u);
  raw_connection c(daemon_->port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.send("POST /-/reload HTTP/1.1\r\nHost: t\r\n"
             "Authorization: Bearer adversarial-token\r\nContent-Length: 0\r\n\r\n"));
  EXPECT_EQ(c.read_response().status, 200u);
  // The fixture's checks after the test post without a token: the token is off again.
}

// Connections that send a request a byte at a time, or stop halfway, hold no one else up and are
// closed when their read_timeout (2 s in the test config) runs out.
TEST_F(adversarial, slow_loris_connections_do_not_hold_up_others_and_are_closed) {
  std::vector<std::unique_ptr<raw_connection>> slow;
  for (int i = 0; i < 32; ++i) {
    auto c = std::make_unique<raw_connection>(daemon_->port());
    ASSERT_TRUE(c->connected());
    ASSERT_TRUE(c->send("POST /webhook/alertmanager HTTP/1.1\r\nHost: t\r\nContent-Le"));
    slow.push_back(std::move(c));
  }
  // While they hang, others are served at once.
  for (int i = 0; i < 5; ++i) {
    const auto r = daemon_->get("/-/healthy");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200u);
  }
  EXPECT_GE(daemon_->metric("alertrouter_http_connections_open").value_or(0), 32);
  // One keeps trickling: a byte at a time still does not make a request.
  for (const char ch : std::string("ngth: 2\r\n")) {
    if (!slow.front()->send(std::string(1, ch))) break;
  }
  // The read deadline counts from the request's first byte: every one of them is closed
  // without an answer.
  for (auto& c : slow) {
    const auto r = c->read_until_close(wait_limit);
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(r.data.find("200 OK"), std::string::npos) << r.data;
  }
  EXPECT_GE(daemon_->metric("alertrouter_http_read_timeouts_total").value_or(0), 32);
}

TEST_F(adversarial, malformed_http_is_refused) {
  {
    raw_connection c(daemon_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send("HELLO THERE\r\n\r\n"));
    EXPECT_EQ(c.read_response().status, 400u);
  }
  {
    raw_connection c(daemon_->port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send("POST /webhook/alertmanager HTTP/1.1\r\nHost: t\r\n"
               "Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}{}{}{"));
    EXPECT_EQ(c.read_response().status, 400u);
  }
  const auto get = daemon_->get("/webhook/alertmanager");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 405u);
  const auto unknown = http_post(daemon_->port(), "/webhook/../../etc/passwd", "{}");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404u);
}

}  // namespace
}  // namespace alertrouter::integration
