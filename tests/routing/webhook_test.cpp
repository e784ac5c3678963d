#include "routing/webhook.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace alertrouter::routing {
namespace {

using namespace std::string_literals;

// What Alertmanager 0.25 posts for a group of WMCS alerts (labels from wmcs-alert-rules.yaml plus
// the series, external and relabelled labels that reach Alertmanager), field order as Go
// marshals it. Includes fields newer versions add, which must be ignored.
const std::string kRealisticBody = R"({
  "receiver": "alertrouter",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {
        "alertname": "CephClusterInError",
        "cluster": "wmcs",
        "instance": "cloudcephmon1001:9283",
        "job": "ceph_eqiad",
        "prometheus": "cloud",
        "service": "ceph,cloudvps",
        "severity": "page",
        "site": "eqiad",
        "source": "prometheus",
        "team": "wmcs"
      },
      "annotations": {
        "dashboard": "https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS",
        "description": "eqiad Ceph cluster is unable to serve traffic, all VMs could be unusable.",
        "runbook": "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephClusterInError",
        "summary": "#page Ceph cluster in eqiad is in error status"
      },
      "startsAt": "2026-03-01T10:00:00.123456789Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus.svc.eqiad.wmnet/cloud/graph?g0.expr=ceph_health_status%7Bjob%3D%22ceph_eqiad%22%7D+%3D%3D+2&g0.tab=1",
      "fingerprint": "5d2b5d2e8a6e1c3f"
    },
    {
      "status": "resolved",
      "labels": {
        "alertname": "ToolforgeKubernetesNodeNotReady",
        "instance": "tools-k8s-worker-nfs-12",
        "project": "tools",
        "prometheus": "tools",
        "severity": "warning",
        "team": "wmcs"
      },
      "annotations": {
        "summary": "Kubernetes node tools-k8s-worker-nfs-12 is not ready"
      },
      "startsAt": "2026-03-01T09:30:00+01:00",
      "endsAt": "2026-03-01T10:05:00.5Z",
      "generatorURL": "https://prometheus-alerts.wmcloud.org/graph?g0.expr=kube_node_status_condition",
      "fingerprint": "00000000000abc12"
    },
    {
      "status": "firing",
      "labels": {
        "alertname": "InstanceDown",
        "instance": "cloudvirt1031:9100",
        "job": "node",
        "severity": "critical",
        "team": "wmcs"
      },
      "annotations": {},
      "startsAt": "2026-03-01T10:01:00Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": ""
    }
  ],
  "groupLabels": {"alertname": "CephClusterInError"},
  "commonLabels": {"team": "wmcs"},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager.wikimedia.org",
  "version": "4",
  "groupKey": "{}/{team=\"wmcs\"}:{alertname=\"CephClusterInError\"}",
  "truncatedAlerts": 2,
  "notification_reason": "new_alert",
  "routeLabels": {"team": ["wmcs", {"nested": [1, 2.5, true, null]}]}
})";

timestamp ts(const char* text) {
  auto t = parse_rfc3339(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(timestamp{});
}

webhook decoded(const std::string& body) {
  auto result = decode_webhook(body);
  if (auto* error = std::get_if<decode_error>(&result)) {
    ADD_FAILURE() << "rejected: " << error->to_string();
    return {};
  }
  return std::get<webhook>(std::move(result));
}

decode_error rejected(const std::string& body) {
  auto result = decode_webhook(body);
  if (!std::holds_alternative<decode_error>(result)) {
    ADD_FAILURE() << "accepted: " << body.substr(0, 200);
    return {};
  }
  return std::get<decode_error>(std::move(result));
}

// A body with the given alerts array contents and nothing else.
std::string with_alerts(const std::string& alerts) { return R"({"alerts":[)" + alerts + "]}"; }
// A valid alert whose field `name` is replaced by `json` (or dropped when json is empty).
std::string alert_with(const std::string& name, const std::string& json) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"status", R"("firing")"},
      {"labels", R"({"alertname":"X","severity":"page"})"},
      {"annotations", R"({"summary":"s"})"},
      {"startsAt", R"("2026-03-01T10:00:00Z")"},
      {"endsAt", R"("0001-01-01T00:00:00Z")"},
      {"generatorURL", R"("http://p")"},
      {"fingerprint", R"("0123456789abcdef")"},
  };
  std::string out = "{";
  bool first = true;
  for (auto& [k, v] : fields) {
    if (k == name) {
      if (json.empty()) continue;
      v = json;
    }
    if (!first) out += ",";
    first = false;
    out += "\"" + k + "\":" + v;
  }
  return out + "}";
}

TEST(DecodeWebhook, RealisticAlertmanagerBody) {
  const webhook w = decoded(kRealisticBody);
  EXPECT_EQ(w.version, "4");
  EXPECT_EQ(w.receiver, "alertrouter");
  EXPECT_EQ(w.status, alert_status::firing);
  EXPECT_EQ(w.group_key, R"({}/{team="wmcs"}:{alertname="CephClusterInError"})");
  EXPECT_EQ(w.truncated_alerts, 2);
  EXPECT_EQ(w.external_url, "http://alertmanager.wikimedia.org");
  EXPECT_EQ(w.group_labels, (label_set{{"alertname", "CephClusterInError"}}));
  EXPECT_EQ(w.common_labels, (label_set{{"team", "wmcs"}}));
  EXPECT_TRUE(w.common_annotations.empty());
  ASSERT_EQ(w.alerts.size(), 3u);

  const alert& ceph = w.alerts[0];
  EXPECT_EQ(ceph.status, alert_status::firing);
  EXPECT_EQ(ceph.labels.size(), 10u);
  EXPECT_EQ(ceph.labels.get("alertname"), "CephClusterInError");
  EXPECT_EQ(ceph.labels.get("severity"), "page");
  EXPECT_EQ(ceph.labels.get("service"), "ceph,cloudvps");
  EXPECT_EQ(ceph.annotations.get("summary"), "#page Ceph cluster in eqiad is in error status");
  EXPECT_EQ(ceph.annotations.size(), 4u);
  EXPECT_EQ(ceph.starts_at, ts("2026-03-01T10:00:00.123456Z"));
  EXPECT_EQ(ceph.ends_at, ts("0001-01-01T00:00:00Z"));
  EXPECT_EQ(ceph.generator_url,
            "http://prometheus.svc.eqiad.wmnet/cloud/graph?g0.expr=ceph_health_status%7Bjob%3D%22"
            "ceph_eqiad%22%7D+%3D%3D+2&g0.tab=1");
  EXPECT_EQ(to_hex(ceph.fp), "5d2b5d2e8a6e1c3f");  // the payload's, not recomputed

  const alert& node = w.alerts[1];
  EXPECT_EQ(node.status, alert_status::resolved);
  EXPECT_EQ(node.labels.get("project"), "tools");
  EXPECT_EQ(node.starts_at, ts("2026-03-01T08:30:00Z"));
  EXPECT_EQ(node.ends_at, ts("2026-03-01T10:05:00.5Z"));
  EXPECT_EQ(node.fp, fingerprint{0xabc12});

  const alert& down = w.alerts[2];
  EXPECT_EQ(down.labels.get("instance"), "cloudvirt1031:9100");
  EXPECT_TRUE(down.annotations.empty());
  EXPECT_EQ(down.generator_url, "");
  // No fingerprint in the payload: computed as Alertmanager does.
  EXPECT_EQ(down.fp, compute_fingerprint(down.labels));
}

TEST(DecodeWebhook, ComputedFingerprintMatchesPrometheusKnownValue) {
  // prometheus/common model/signature_test.go: this label set has fingerprint 5799056148416392346.
  const webhook w = decoded(with_alerts(
      R"({"status":"firing","labels":{"name":"garland, briggs","fear":"love is not enough"},)"
      R"("startsAt":"2026-03-01T10:00:00Z"})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.alerts[0].fp.value, 5799056148416392346ULL);
}

TEST(DecodeWebhook, MinimalBodyAndDefaults) {
  const webhook w =
      decoded(with_alerts(R"({"status":"firing","labels":{},"startsAt":"2026-03-01T10:00:00Z"})"));
  EXPECT_EQ(w.version, "");
  EXPECT_EQ(w.truncated_alerts, 0);
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.alerts[0].ends_at, timestamp{});
  EXPECT_EQ(to_hex(w.alerts[0].fp), "cbf29ce484222325");
  EXPECT_TRUE(decoded(R"({"alerts":[]})").alerts.empty());
}

TEST(DecodeWebhook, NullMeansAbsentForOptionalFields) {
  const webhook w = decoded(
      R"({"version":null,"groupKey":null,"truncatedAlerts":null,"status":null,"receiver":null,)"
      R"("groupLabels":null,"commonLabels":null,"commonAnnotations":null,"externalURL":null,)"
      R"("alerts":[{"status":"resolved","labels":{"a":"b"},"annotations":null,)"
      R"("startsAt":"2026-03-01T10:00:00Z","endsAt":null,"generatorURL":null,)"
      R"("fingerprint":null}]})");
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.status, alert_status::firing);
  EXPECT_EQ(w.alerts[0].status, alert_status::resolved);
  EXPECT_EQ(w.alerts[0].ends_at, timestamp{});
  EXPECT_EQ(w.alerts[0].fp, compute_fingerprint(label_set{{"a", "b"}}));
}

TEST(DecodeWebhook, LabelsAreSortedAndLastDuplicateWins) {
  const webhook w =
      decoded(with_alerts(R"({"status":"firing","labels":{"z":"1","a":"2","m":"3","a":"4"},)"
                          R"("startsAt":"2026-03-01T10:00:00Z"})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  const std::vector<label_set::label> got(w.alerts[0].labels.begin(), w.alerts[0].labels.end());
  const std::vector<label_set::label> want = {{"a", "4"}, {"m", "3"}, {"z", "1"}};
  EXPECT_EQ(got, want);
}

TEST(DecodeWebhook, EscapesAndUnicodeInStrings) {
  const webhook w = decoded(with_alerts(
      R"({"status":"firing","labels":{"q\"uote":"a\"b\\c\nd\t\/","uni":"caf\u00e9 \ud83d\ude00",)"
      R"("raw":"Ünïcødé ✓ 日本","nul":"a\u0000b"},"startsAt":"2026-03-01T10:00:00Z"})"));
  ASSERT_EQ(w.alerts.size(), 1u);
  const label_set& l = w.alerts[0].labels;
  EXPECT_EQ(l.get("q\"uote"), "a\"b\\c\nd\t/");
  EXPECT_EQ(l.get("uni"), "caf\xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(l.get("raw"), "Ünïcødé ✓ 日本");
  EXPECT_EQ(l.get("nul"), "a\0b"s);
}

TEST(DecodeWebhook, EscapedKeysAreUnescapedBeforeMatching) {
  // "alerts", "labels" and "status" spelled with escapes, and an escaped label name whose value
  // is escaped too (the parser unescapes both into its own buffer).
  const webhook w =
      decoded(R"({"al\u0065rts":[{"st\u0061tus":"resolved","l\u0061bels":{"k\u00e9y":"v\u00e9",)"
              R"("plain":"x"},"startsAt":"2026-03-01T10:00:00Z"}]})");
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.alerts[0].status, alert_status::resolved);
  EXPECT_EQ(w.alerts[0].labels, (label_set{{"k\xc3\xa9y", "v\xc3\xa9"}, {"plain", "x"}}));
}

TEST(DecodeWebhook, UnknownFieldsOfAnyShapeAreIgnored) {
  const webhook w = decoded(
      R"({"future":{"alerts":"not these","labels":[{"deep":[[{}]]}]},"alerts":[)"
      R"({"status":"firing","labels":{"a":"b"},"startsAt":"2026-03-01T10:00:00Z",)"
      R"("extra":[1,{"status":5}],"labels2":{"x":1},"n":-1.5e3}],"tail":[true,false,null]})");
  ASSERT_EQ(w.alerts.size(), 1u);
  EXPECT_EQ(w.alerts[0].labels, (label_set{{"a", "b"}}));
}

TEST(DecodeWebhook, HugeStringsAndManyAlerts) {
  const std::string big(1 << 20, 'x');
  std::string body = R"({"alerts":[)";
  for (int i = 0; i < 500; ++i) {
    if (i > 0) body += ",";
    body += R"({"status":"firing","labels":{"i":")" + std::to_string(i) + R"(","big":")" +
            big.substr(0, static_cast<std::size_t>(i)) + R"("},"startsAt":"2026-03-01T10:00:00Z"})";
  }
  body += R"(,{"status":"firing","labels":{")" + big + R"(":")" + big +
          R"("},"startsAt":"2026-03-01T10:00:00Z"}]})";
  const webhook w = decoded(body);
  ASSERT_EQ(w.alerts.size(), 501u);
  EXPECT_EQ(w.alerts[499].labels.get("i"), "499");
  EXPECT_EQ(w.alerts[499].labels.get("big").size(), 499u);
  EXPECT_EQ(w.alerts[500].labels.get(big), big);
}

TEST(DecodeWebhook, WhitespaceAroundTheDocumentIsFine) {
  EXPECT_TRUE(std::holds_alternative<webhook>(decode_webhook(" \n\t{\"alerts\":[]} \r\n")));
}

struct error_case {
  std::string body;
  std::string field;
  std::string message;  // a substring of the message
};

void expect_errors(const std::vector<error_case>& cases) {
  for (const auto& c : cases) {
    const decode_error e = rejected(c.body);
    EXPECT_EQ(e.field, c.field) << c.body.substr(0, 300) << "\n  -> " << e.to_string();
    EXPECT_NE(e.message.find(c.message), std::string::npos)
        << c.body.substr(0, 300) << "\n  -> " << e.to_string();
  }
}

TEST(DecodeWebhook, RepeatedAndAlternatingTimesAcrossAlerts) {
  const char* starts[] = {"2026-03-01T10:00:00Z", "2026-03-01T10:00:00Z", "2026-03-01T11:00:00.5Z",
                          "2026-03-01T10:00:00Z", "2026-03-01T12:00:00+01:00"};
  const char* ends[] = {"0001-01-01T00:00:00Z", "2026-03-01T10:30:00Z", "0001-01-01T00:00:00Z",
                        "0001-01-01T00:00:00Z", "2026-03-01T10:30:00Z"};
  std::string alerts;
  for (std::size_t i = 0; i < std::size(starts); ++i) {
    if (i > 0) alerts += ",";
    alerts += R"({"status":"firing","labels":{},"startsAt":")" + std::string(starts[i]) +
              R"(","endsAt":")" + ends[i] + R"("})";
  }
  const webhook w = decoded(with_alerts(alerts));
  ASSERT_EQ(w.alerts.size(), std::size(starts));
  for (std::size_t i = 0; i < std::size(starts); ++i) {
    EXPECT_EQ(w.alerts[i].starts_at, ts(starts[i])) << i;
    EXPECT_EQ(w.alerts[i].ends_at, ts(ends[i])) << i;
  }
  // A bad time after the same field parsed fine is still reported.
  expect_errors({{with_alerts(alert_with("", "") + "," +
                              alert_with("startsAt", R"("2026-03-01T10:00:00Zx")")),
                  "alerts[1].startsAt", "expected an RFC 3339 string"}});
}

TEST(DecodeWebhook, MalformedJson) {
  expect_errors({
      {"", "", "truncated"},
      {"   ", "", "truncated"},
      {"{", "", "truncated"},
      {R"({"alerts":[)", "", "truncated"},
      {R"({"alerts":[{"status":"fir)", "", "truncated"},
      {kRealisticBody.substr(0, kRealisticBody.size() / 2), "", "truncated"},
      {R"({"alerts":[]})"
       " x",
       "", "after the JSON document"},
      {R"({"alerts":[]}{})", "", "after the JSON document"},
      {R"({"alerts":[],})", "", "invalid JSON"},
      {R"({"alerts":[] /* c */})", "", "invalid JSON"},
      {R"({alerts:[]})", "", "invalid JSON"},
      {R"({'alerts':[]})", "", "invalid JSON"},
      {"{\"alerts\":[],\"a\":\"tab\there\"}", "", "invalid JSON"},
      {R"({"alerts":[],"a":"\x"})", "", "invalid JSON"},
      {R"({"alerts":[],"a":"\ud800"})", "", "invalid JSON"},
      {R"({"alerts":[],"a":01})", "", "invalid JSON"},
      {R"({"alerts":[],"a":NaN})", "", "invalid JSON"},
      // The parser rejects integers beyond 64 bits and numbers beyond double's range, wherever
      // they are, before any field is looked at.
      {R"({"truncatedAlerts":18446744073709551616,"alerts":[]})", "", "64-bit integer"},
      {R"({"alerts":[],"x":-9223372036854775809})", "", "invalid JSON"},
      {R"({"alerts":[],"x":{"y":[1e400]}})", "", "invalid JSON"},
  });
}

TEST(DecodeWebhook, MalformedJsonMessagesSayWhere) {
  expect_errors({
      {R"({"alerts":[]}})", "", "unexpected data after the JSON document at byte 13"},
      {"{\"alerts\":[]} \n x", "", "unexpected data after the JSON document at byte 16"},
      {R"({"alerts":[]}")", "", "unexpected data after the JSON document at byte 13"},
      {R"("alerts" [])", "", "unexpected data after the JSON document at byte 9"},
      {R"({"alerts":[}])", "", "invalid JSON at byte 11: mismatched '}'"},
      {R"({"alerts":[],"x":"]"])", "", "invalid JSON at byte 20: mismatched ']'"},
      {R"(<alerts/>)", "", "invalid JSON at byte 0"},
      {R"({"alerts":[],"x":{"y":[{"z":"a\"]}"}]})", "", "truncated JSON"},
      {R"({"alerts":[],"a":"\udc00"})", "", "unpaired surrogate"},
      {R"({"alerts":[],"a":tru})", "", "invalid literal"},
      {R"({"alerts":[],"a":1.})", "", "malformed number"},
      {"{\"alerts\":[],\"a\":\"\x01\"}", "", "control character"},
      {R"({"alerts":[] "a":1})", "", "missing comma"},
  });
}

TEST(DecodeWebhook, MalformedJsonAnywhereWinsOverFieldErrors) {
  // The whole body is validated before any field is read, so a syntax error after a wrong field
  // (or deep inside an ignored one) is what gets reported.
  expect_errors({
      {R"({"version":4,"alerts":[],"x":[1,2,]})", "", "invalid JSON"},
      {with_alerts(alert_with("status", R"("bad")")) + R"( {)", "", "after the JSON document"},
      {R"({"alerts":[],"future":{"a":[{"b":{"c":[nul]}}]}})", "", "invalid literal"},
  });
}

TEST(DecodeWebhook, BodiesOfAnySizeInAnyOrderOnManyThreads) {
  // The parser and its buffers are reused per thread and grow with the bodies; a body over the
  // retained size gets buffers of its own. Results must not depend on what was decoded before.
  std::string big = R"({"alerts":[)";
  for (int i = 0; i < 3000; ++i) {
    if (i > 0) big += ",";
    big += alert_with("labels", R"({"i":")" + std::to_string(i) + R"(","pad":")" +
                                    std::string(400, 'p') + R"("})");
  }
  big += "]}";
  ASSERT_GT(big.size(), 1u << 20);
  const std::string medium = big.substr(0, big.find(",{", 200000)) + "]}";
  const std::string small = with_alerts(alert_with("", ""));
  const std::vector<std::pair<const std::string*, std::size_t>> sequence = {
      {&small, 1}, {&medium, 0}, {&small, 1}, {&big, 3000}, {&small, 1}, {&medium, 0}};
  const auto run = [&] {
    for (const auto& [body, count] : sequence) {
      const webhook w = decoded(*body);
      if (count != 0) {
        EXPECT_EQ(w.alerts.size(), count);
      } else {
        EXPECT_GT(w.alerts.size(), 300u);
      }
      EXPECT_EQ(w.alerts.back().labels.get("alertname").empty(), body != &small);
      EXPECT_EQ(rejected(small.substr(0, small.size() - 1)).message,
                "truncated JSON: unexpected end of input");
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
}

TEST(DecodeWebhook, DocumentMustBeAnObject) {
  expect_errors({
      {"[]", "", "expected a JSON object"},
      {R"("alerts")", "", "expected a JSON object"},
      {"null", "", "expected a JSON object"},
      {"42", "", "expected a JSON object"},
  });
}

TEST(DecodeWebhook, InvalidUtf8IsRejected) {
  const std::string prefix = R"({"alerts":[{"status":"firing","labels":{"a":")";
  const std::string suffix = R"("},"startsAt":"2026-03-01T10:00:00Z"}]})";
  const struct {
    std::string bytes;
    std::size_t bad_at;  // offset of the first bad byte within `bytes`
  } cases[] = {
      {"\xff"s, 0},                  // never valid
      {"\xc0\xaf"s, 0},              // overlong '/'
      {"\xed\xa0\x80"s, 0},          // UTF-16 surrogate
      {"\xe6\x97"s, 0},              // truncated sequence
      {"\x80"s, 0},                  // lone continuation byte
      {"\xf4\x90\x80\x80"s, 0},      // above U+10FFFF
      {"ok \xe6\x97\xa5 \xfe"s, 7},  // after valid multi-byte text
  };
  for (const auto& c : cases) {
    const decode_error e = rejected(prefix + c.bytes + suffix);
    EXPECT_EQ(e.field, "");
    EXPECT_EQ(e.message, "invalid UTF-8 at byte " + std::to_string(prefix.size() + c.bad_at));
  }
  // In a key, too.
  const decode_error key = rejected(R"({"alerts":[],"k)" + "\xff"s + R"(":1})");
  EXPECT_NE(key.message.find("invalid UTF-8"), std::string::npos) << key.to_string();
}

std::string nested(int depth) {
  return std::string(static_cast<std::size_t>(depth), '[') +
         std::string(static_cast<std::size_t>(depth), ']');
}

TEST(DecodeWebhook, NestingIsLimited) {
  // The root object is level 1, so an unknown field may hold 31 levels of arrays.
  EXPECT_TRUE(
      std::holds_alternative<webhook>(decode_webhook(R"({"alerts":[],"x":)" + nested(31) + "}")));
  expect_errors({
      {R"({"alerts":[],"x":)" + nested(32) + "}", "", "nesting deeper than 32"},
      {R"({"alerts":[],"x":)" + nested(100) + "}", "", "nesting deeper than 32"},
      {R"({"x":)" + nested(100000) + R"(,"alerts":[]})", "", "nesting deeper than 32"},
  });
}

TEST(DecodeWebhook, WrongTypesAtTheTopNameTheField) {
  expect_errors({
      {R"({"version":4,"alerts":[]})", "version", "expected a string"},
      {R"({"version":"5","alerts":[]})", "version",
       "unsupported webhook version \"5\" (expected \"4\")"},
      {R"({"groupKey":{},"alerts":[]})", "groupKey", "expected a string"},
      {R"({"receiver":["a"],"alerts":[]})", "receiver", "expected a string"},
      {R"({"externalURL":true,"alerts":[]})", "externalURL", "expected a string"},
      {R"({"status":"pending","alerts":[]})", "status", R"(expected "firing" or "resolved")"},
      {R"({"status":1,"alerts":[]})", "status", R"(expected "firing" or "resolved")"},
      {R"({"truncatedAlerts":"2","alerts":[]})", "truncatedAlerts", "non-negative integer"},
      {R"({"truncatedAlerts":-1,"alerts":[]})", "truncatedAlerts", "non-negative integer"},
      {R"({"truncatedAlerts":1.5,"alerts":[]})", "truncatedAlerts", "non-negative integer"},
      {R"({"truncatedAlerts":18446744073709551615,"alerts":[]})", "truncatedAlerts",
       "non-negative integer"},
      {R"({"groupLabels":[],"alerts":[]})", "groupLabels", "expected an object of strings"},
      {R"({"groupLabels":{"a":1},"alerts":[]})", "groupLabels.a", "expected a string"},
      {R"({"commonLabels":{"team":"wmcs","severity":null},"alerts":[]})", "commonLabels.severity",
       "expected a string"},
      {R"({"commonAnnotations":{"summary":{"nested":"x"}},"alerts":[]})",
       "commonAnnotations.summary", "expected a string"},
      {R"({"commonAnnotations":"x","alerts":[]})", "commonAnnotations",
       "expected an object of strings"},
      {R"({"version":"4"})", "alerts", "required"},
      {R"({})", "alerts", "required"},
      {R"({"alerts":null})", "alerts", "expected an array"},
      {R"({"alerts":{}})", "alerts", "expected an array"},
      {R"({"alerts":"[]"})", "alerts", "expected an array"},
  });
}

TEST(DecodeWebhook, WrongAlertFieldsNameTheAlertAndField) {
  const std::string ok = alert_with("", "");
  const std::string three_ok = ok + "," + ok + "," + ok + ",";
  expect_errors({
      {with_alerts("1"), "alerts[0]", "expected an object"},
      {with_alerts(ok + ",null"), "alerts[1]", "expected an object"},
      {with_alerts(ok + ",[]"), "alerts[1]", "expected an object"},
      // Required fields.
      {with_alerts(alert_with("status", "")), "alerts[0].status", "required"},
      {with_alerts(alert_with("labels", "")), "alerts[0].labels", "required"},
      {with_alerts(three_ok + alert_with("startsAt", "")), "alerts[3].startsAt", "required"},
      // status
      {with_alerts(alert_with("status", R"("pending")")), "alerts[0].status",
       R"(expected "firing" or "resolved")"},
      {with_alerts(alert_with("status", R"("Firing")")), "alerts[0].status",
       R"(expected "firing" or "resolved")"},
      {with_alerts(alert_with("status", "null")), "alerts[0].status",
       R"(expected "firing" or "resolved")"},
      // labels
      {with_alerts(three_ok + alert_with("labels", R"({"alertname":"X","severity":3})")),
       "alerts[3].labels.severity", "expected a string"},
      {with_alerts(alert_with("labels", "null")), "alerts[0].labels",
       "expected an object of strings"},
      {with_alerts(alert_with("labels", R"(["a"])")), "alerts[0].labels",
       "expected an object of strings"},
      {with_alerts(alert_with("labels", R"({"a":["b"]})")), "alerts[0].labels.a",
       "expected a string"},
      {with_alerts(alert_with("labels", R"({"a":{"b":"c"}})")), "alerts[0].labels.a",
       "expected a string"},
      {with_alerts(alert_with("labels", R"({"a":false})")), "alerts[0].labels.a",
       "expected a string"},
      // annotations
      {with_alerts(ok + "," + alert_with("annotations", R"({"summary":5})")),
       "alerts[1].annotations.summary", "expected a string"},
      {with_alerts(alert_with("annotations", R"("text")")), "alerts[0].annotations",
       "expected an object of strings"},
      // timestamps
      {with_alerts(alert_with("startsAt", R"("yesterday")")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("startsAt", R"("2026-02-30T10:00:00Z")")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("startsAt", R"("2026-03-01T10:00:00")")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("startsAt", R"("2026-03-01T10:00:00+25:00")")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("startsAt", "1772359200")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("startsAt", "null")), "alerts[0].startsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("endsAt", R"("")")), "alerts[0].endsAt",
       "expected an RFC 3339 string"},
      {with_alerts(alert_with("endsAt", "0")), "alerts[0].endsAt", "expected an RFC 3339 string"},
      // generatorURL
      {with_alerts(alert_with("generatorURL", "5")), "alerts[0].generatorURL", "expected a string"},
      // fingerprint
      {with_alerts(alert_with("fingerprint", R"("xyz")")), "alerts[0].fingerprint",
       "expected 1 to 16 hex digits"},
      {with_alerts(alert_with("fingerprint", R"("")")), "alerts[0].fingerprint",
       "expected 1 to 16 hex digits"},
      {with_alerts(alert_with("fingerprint", R"("0123456789abcdef0")")), "alerts[0].fingerprint",
       "expected 1 to 16 hex digits"},
      {with_alerts(alert_with("fingerprint", "123")), "alerts[0].fingerprint",
       "expected 1 to 16 hex digits"},
  });
}

TEST(DecodeWebhook, FirstErrorInDocumentOrderIsReported) {
  const decode_error e =
      rejected(with_alerts(alert_with("status", R"("bad")") + "," + alert_with("labels", "1")));
  EXPECT_EQ(e.field, "alerts[0].status");
}

// Records what the decoder asks and keeps the details of the alerts whose fingerprints it lists.
class recording_filter final : public detail_filter {
 public:
  explicit recording_filter(std::vector<fingerprint> keep) : keep_(std::move(keep)) {}
  bool keep_details(fingerprint fp, alert_status status, timestamp starts_at) const override {
    asked.push_back({fp, status, starts_at});
    return std::find(keep_.begin(), keep_.end(), fp) != keep_.end();
  }
  struct question {
    fingerprint fp;
    alert_status status;
    timestamp starts_at;
  };
  mutable std::vector<question> asked;

 private:
  std::vector<fingerprint> keep_;
};

TEST(DecodeWebhookWithFilter, OmitsDetailsOnlyWhereTheFilterSaysSo) {
  const recording_filter filter({fingerprint{0xabc12}});  // the second alert's
  auto result = decode_webhook(kRealisticBody, &filter);
  ASSERT_TRUE(std::holds_alternative<webhook>(result))
      << std::get<decode_error>(result).to_string();
  const webhook& w = std::get<webhook>(result);
  const webhook full = decoded(kRealisticBody);
  ASSERT_EQ(w.alerts.size(), 3u);

  // Asked once per alert, in order, with the decoded fingerprint, status and startsAt.
  ASSERT_EQ(filter.asked.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(filter.asked[i].fp, full.alerts[i].fp) << i;
    EXPECT_EQ(filter.asked[i].status, full.alerts[i].status) << i;
    EXPECT_EQ(filter.asked[i].starts_at, full.alerts[i].starts_at) << i;
  }

  const alert& omitted = w.alerts[0];
  EXPECT_TRUE(omitted.details_omitted);
  EXPECT_TRUE(omitted.annotations.empty());
  EXPECT_EQ(omitted.generator_url, "");
  // Everything else is decoded as usual.
  EXPECT_EQ(omitted.labels, full.alerts[0].labels);
  EXPECT_EQ(omitted.fp, full.alerts[0].fp);
  EXPECT_EQ(omitted.ends_at, full.alerts[0].ends_at);

  const alert& kept = w.alerts[1];
  EXPECT_FALSE(kept.details_omitted);
  EXPECT_EQ(kept.annotations, full.alerts[1].annotations);
  EXPECT_EQ(kept.annotations.get("summary"),
            "Kubernetes node tools-k8s-worker-nfs-12 is not ready");
  EXPECT_EQ(kept.generator_url, full.alerts[1].generator_url);
  EXPECT_TRUE(w.alerts[2].details_omitted);
  EXPECT_FALSE(full.alerts[0].details_omitted);  // without a filter nothing is omitted
  // The group's labels and annotations are not kept; the rest of the header is.
  EXPECT_TRUE(w.group_labels.empty());
  EXPECT_TRUE(w.common_labels.empty());
  EXPECT_FALSE(full.common_labels.empty());
  EXPECT_EQ(w.group_key, full.group_key);
  EXPECT_EQ(w.external_url, full.external_url);
  EXPECT_EQ(w.truncated_alerts, full.truncated_alerts);
}

// Keeps nothing it may leave out.
class minimal_filter final : public detail_filter {
 public:
  bool keep_details(fingerprint, alert_status, timestamp) const override { return false; }
  bool keep_labels(fingerprint, alert_status, timestamp) const override { return false; }
};

TEST(DecodeWebhookWithFilter, LabelsAreOmittedOnlyWhenTheFingerprintCameWithThem) {
  const minimal_filter filter;
  auto result = decode_webhook(kRealisticBody, &filter);
  ASSERT_TRUE(std::holds_alternative<webhook>(result));
  const webhook& w = std::get<webhook>(result);
  const webhook full = decoded(kRealisticBody);
  ASSERT_EQ(w.alerts.size(), 3u);
  // The first two carry a fingerprint: labels omitted.
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(w.alerts[i].labels_omitted) << i;
    EXPECT_TRUE(w.alerts[i].details_omitted) << i;
    EXPECT_TRUE(w.alerts[i].labels.empty()) << i;
    EXPECT_EQ(w.alerts[i].fp, full.alerts[i].fp) << i;
  }
  // The third has none: its fingerprint is computed from its labels, which are then kept.
  EXPECT_FALSE(w.alerts[2].labels_omitted);
  EXPECT_TRUE(w.alerts[2].details_omitted);
  EXPECT_EQ(w.alerts[2].labels, full.alerts[2].labels);
  EXPECT_EQ(w.alerts[2].fp, full.alerts[2].fp);
  // Omitted labels are still validated.
  auto bad = decode_webhook(with_alerts(alert_with("labels", R"({"a":1})")), &filter);
  ASSERT_TRUE(std::holds_alternative<decode_error>(bad));
  EXPECT_EQ(std::get<decode_error>(bad).field, "alerts[0].labels.a");
  auto missing = decode_webhook(with_alerts(alert_with("labels", "")), &filter);
  ASSERT_TRUE(std::holds_alternative<decode_error>(missing));
  EXPECT_EQ(std::get<decode_error>(missing).field, "alerts[0].labels");
  auto bad_common = decode_webhook(R"({"commonLabels":{"a":[]},"alerts":[]})", &filter);
  ASSERT_TRUE(std::holds_alternative<decode_error>(bad_common));
  EXPECT_EQ(std::get<decode_error>(bad_common).field, "commonLabels.a");
  auto null_labels = decode_webhook(with_alerts(alert_with("labels", "null")), &filter);
  ASSERT_TRUE(std::holds_alternative<decode_error>(null_labels));
  EXPECT_EQ(std::get<decode_error>(null_labels).field, "alerts[0].labels");
}

TEST(DecodeWebhookWithFilter, OmittedDetailsAreStillValidated) {
  const recording_filter keep_nothing({});
  const std::vector<std::pair<std::string, std::string>> cases = {
      {alert_with("annotations", R"({"summary":1})"), "alerts[0].annotations.summary"},
      {alert_with("annotations", R"([])"), "alerts[0].annotations"},
      {alert_with("generatorURL", "7"), "alerts[0].generatorURL"},
  };
  for (const auto& [alert_json, field] : cases) {
    auto result = decode_webhook(with_alerts(alert_json), &keep_nothing);
    ASSERT_TRUE(std::holds_alternative<decode_error>(result)) << alert_json;
    EXPECT_EQ(std::get<decode_error>(result).field, field);
  }
  // A repeated key: the last occurrence is the one kept, as without a filter.
  const recording_filter keep_all({fingerprint{0x0123456789abcdef}});
  const std::string twice = R"({"alerts":[{"status":"firing","labels":{"a":"b"},)"
                            R"("annotations":{"summary":"first"},"generatorURL":"http://1",)"
                            R"("startsAt":"2026-03-01T10:00:00Z","annotations":{"summary":"last"},)"
                            R"("generatorURL":"http://2","fingerprint":"0123456789abcdef"}]})";
  auto result = decode_webhook(twice, &keep_all);
  ASSERT_TRUE(std::holds_alternative<webhook>(result));
  EXPECT_EQ(std::get<webhook>(result).alerts[0].annotations.get("summary"), "last");
  EXPECT_EQ(std::get<webhook>(result).alerts[0].generator_url, "http://2");
}

// ---------------------------------------------------------------------------------------------
// The scanner (decode_webhook's fast path) against the DOM path it falls back to.

// Keeps details for fingerprints with bit 0 set and labels for those with bit 1 set, so that a
// body's alerts take every branch.
class parity_filter final : public detail_filter {
 public:
  bool keep_details(fingerprint fp, alert_status, timestamp) const override {
    return (fp.value & 1) != 0;
  }
  bool keep_labels(fingerprint fp, alert_status, timestamp) const override {
    return (fp.value & 2) != 0;
  }
};

std::string describe(const std::variant<webhook, decode_error>& r) {
  if (const auto* e = std::get_if<decode_error>(&r)) return "error " + e->to_string();
  const webhook& w = std::get<webhook>(r);
  auto labels = [](const label_set& s) {
    std::string out = "{";
    for (const auto& [k, v] : s) out += std::string(k) + "=" + std::string(v) + ",";
    return out + "}";
  };
  std::string out = "webhook v=" + w.version + " key=" + w.group_key +
                    " trunc=" + std::to_string(w.truncated_alerts) +
                    " status=" + std::string(to_string(w.status)) + " recv=" + w.receiver +
                    " url=" + w.external_url + " group=" + labels(w.group_labels) +
                    " common=" + labels(w.common_labels) + labels(w.common_annotations);
  for (const alert& a : w.alerts) {
    out += "\n  alert " + std::string(to_string(a.status)) + " " + labels(a.labels) + " " +
           labels(a.annotations) + " " + format_rfc3339(a.starts_at) + " " +
           format_rfc3339(a.ends_at) + " " + a.generator_url + " " + to_hex(a.fp) +
           (a.details_omitted ? " -details" : "") + (a.labels_omitted ? " -labels" : "");
  }
  return out;
}

// Alertmanager's body for one alert as the routing benchmark builds it, `&` escaped as Go does.
const std::string kEscapedBody =
    R"({"receiver":"alertrouter","status":"firing","alerts":[{"status":"firing","labels":)"
    R"({"alertname":"CephSlowOps","cluster":"wmcs","instance":"cloudcephosd1001:9100",)"
    R"("job":"ceph_eqiad","project":"tools","prometheus":"cloud","service":"ceph,cloudvps",)"
    R"("severity":"critical","site":"eqiad","source":"prometheus","team":"wmcs"},)"
    R"("annotations":{"dashboard":"https://grafana.example/d/P1?orgId=1\u0026search=open)"
    R"(\u0026tag=ceph","summary":"Ceph \"slow\" ops \\ in eqiad \u00e9\u20ac\/\b\f\n\r\t"},)"
    R"("startsAt":"2026-11-26T10:00:00.123456789Z","endsAt":"0001-01-01T00:00:00Z",)"
    R"("generatorURL":"http://prometheus.example:9090/graph?g0.expr=x\u003e0\u0026g0.tab=1",)"
    R"("fingerprint":"0123456789abcdef"},{"status":"resolved","labels":{"a\u0062":"c"},)"
    R"("startsAt":"2026-11-26T10:00:00Z","endsAt":"2026-11-26T10:30:00+01:00",)"
    R"("fingerprint":null,"extra":[true,false,null,-12,0,{"k":[[]]},{}],"annotations":null}],)"
    R"("groupLabels":{"alertname":"CephSlowOps"},"commonLabels":{"team":"wmcs"},)"
    R"("commonAnnotations":{"runbook":"https://wikitech.example/CephSlowOps"},)"
    R"("externalURL":"http://alertmanager.example:9093","version":"4",)"
    R"("groupKey":"{}/{team=\"wmcs\"}:{alertname=\"CephSlowOps\"}","truncatedAlerts":0})";

std::string without_floats(std::string body) {
  const std::string from = "[1, 2.5, true, null]", to = "[1, -25, true, null]";
  body.replace(body.find(from), from.size(), to);
  return body;
}

// Decodes `body` both ways, with and without a filter; where the scanner accepts it, the DOM
// must decode it to the same webhook, and decode_webhook must say what the DOM says.
void expect_same_decoding(const std::string& body) {
  const parity_filter parity;
  for (const detail_filter* filter :
       {static_cast<const detail_filter*>(nullptr), static_cast<const detail_filter*>(&parity)}) {
    const auto dom = detail::decode_webhook_dom(body, filter);
    if (const auto scanned = detail::scan_webhook(body, filter)) {
      ASSERT_TRUE(std::holds_alternative<webhook>(dom) && *scanned == std::get<webhook>(dom))
          << body << "\nscanned: " << describe(*scanned) << "\ndom: " << describe(dom);
    }
    const auto decoded = decode_webhook(body, filter);
    ASSERT_TRUE(decoded == dom) << body << "\ndecoded: " << describe(decoded)
                                << "\ndom: " << describe(dom);
  }
}

TEST(ScanWebhook, TakesAlertmanagerBodiesWithoutTheDom) {
  const parity_filter parity;
  for (const std::string& body : {kEscapedBody, without_floats(kRealisticBody)}) {
    for (const detail_filter* filter :
         {static_cast<const detail_filter*>(nullptr), static_cast<const detail_filter*>(&parity)}) {
      const auto scanned = detail::scan_webhook(body, filter);
      ASSERT_TRUE(scanned.has_value()) << body;
      EXPECT_EQ(describe(*scanned), describe(detail::decode_webhook_dom(body, filter)));
    }
  }
  const webhook w = *detail::scan_webhook(kEscapedBody, nullptr);
  ASSERT_EQ(w.alerts.size(), 2u);
  EXPECT_EQ(w.group_key, R"({}/{team="wmcs"}:{alertname="CephSlowOps"})");
  EXPECT_EQ(w.alerts[0].annotations.get("summary"),
            "Ceph \"slow\" ops \\ in eqiad \xC3\xA9\xE2\x82\xAC/\b\f\n\r\t");
  EXPECT_EQ(w.alerts[0].generator_url, "http://prometheus.example:9090/graph?g0.expr=x>0&g0.tab=1");
  EXPECT_EQ(w.alerts[1].labels.get("ab"), "c");
  EXPECT_EQ(w.alerts[1].fp, compute_fingerprint(w.alerts[1].labels));
}

// A resend differing from the last body only inside strings is indexed from that body's index
// (json_index_cache.h), and decodes as a body indexed afresh does; anything else is indexed
// afresh. The counts say which way each body went.
TEST(DecodeWebhook, ResendsStartFromARecentBodysIndex) {
  const parity_filter parity;
  const auto counts = [] { return thread_index_counts(); };
  const auto expect_counted = [&](const index_counts& before, int first_stage, int reused,
                                  int derived, int replayed = 0) {
    const index_counts now = counts();
    EXPECT_EQ(now.first_stage - before.first_stage, static_cast<std::uint64_t>(first_stage));
    EXPECT_EQ(now.reused - before.reused, static_cast<std::uint64_t>(reused));
    EXPECT_EQ(now.derived - before.derived, static_cast<std::uint64_t>(derived));
    EXPECT_EQ(now.replayed - before.replayed, static_cast<std::uint64_t>(replayed));
  };
  const auto with_summary = [](const std::string& summary) {
    std::string body = kEscapedBody;
    const std::string from = R"(Ceph \"slow\" ops)";
    body.replace(body.find(from), from.size(), summary);
    return body;
  };
  // A body of its own group, so that no earlier test's body is found under its key.
  std::string first = with_summary("Ceph slow ops: 3");
  first.replace(first.rfind("CephSlowOps"), 11, "CephSlowOpsResendTest");

  auto before = counts();
  EXPECT_EQ(describe(decode_webhook(first, &parity)),
            describe(detail::decode_webhook_dom(first, &parity)));
  expect_counted(before, 1, 0, 0);

  // The same bytes with a filter again: decoded from what the last scan read, only the filter
  // asked again.
  before = counts();
  EXPECT_EQ(describe(decode_webhook(first, &parity)),
            describe(detail::decode_webhook_dom(first, &parity)));
  expect_counted(before, 0, 1, 0, 1);
  const minimal_filter none;
  before = counts();
  EXPECT_EQ(describe(decode_webhook(first, &none)),
            describe(detail::decode_webhook_dom(first, &none)));
  expect_counted(before, 0, 1, 0, 1);

  // The value changed, with an escape more; then back.
  std::string second = first;
  second.replace(second.find("slow ops: 3"), 11, "slow ops: \u00e917");
  for (const std::string* body : {&second, &first}) {
    before = counts();
    const auto decoded = decode_webhook(*body, nullptr);
    ASSERT_TRUE(std::holds_alternative<webhook>(decoded)) << describe(decoded);
    EXPECT_EQ(describe(decoded), describe(detail::decode_webhook_dom(*body, nullptr)));
    expect_counted(before, 0, 0, 1);
  }
  EXPECT_EQ(std::get<webhook>(decode_webhook(second)).alerts[0].annotations.get("summary"),
            "Ceph slow ops: \xC3\xA9"
            "17 \\ in eqiad \xC3\xA9\xE2\x82\xAC/\b\f\n\r\t");

  // A control character in the changed string: not derived, and rejected as without the cache.
  std::string bad = first;
  bad.replace(bad.find("slow ops: 3"), 11, "slow\tops: 3");
  before = counts();
  const auto rejected_bad = decode_webhook(bad);
  ASSERT_TRUE(std::holds_alternative<decode_error>(rejected_bad));
  EXPECT_EQ(describe(rejected_bad), describe(detail::decode_webhook_dom(bad, nullptr)));
  const index_counts after_bad = counts();
  EXPECT_EQ(after_bad.derived, before.derived);
  EXPECT_EQ(after_bad.reused, before.reused);

  // A structural change (one alert fewer) is indexed afresh, and decoded right.
  std::string fewer = first;
  const std::size_t second_alert = fewer.find(R"(,{"status":"resolved")");
  fewer.erase(second_alert, fewer.find(R"(],"groupLabels")") - second_alert);
  before = counts();
  const auto decoded_fewer = decode_webhook(fewer);
  ASSERT_TRUE(std::holds_alternative<webhook>(decoded_fewer)) << describe(decoded_fewer);
  EXPECT_EQ(std::get<webhook>(decoded_fewer).alerts.size(), 1u);
  expect_counted(before, 1, 0, 0);

  // Turned off, every body runs the first stage.
  detail::reuse_indexes(false);
  before = counts();
  EXPECT_TRUE(std::holds_alternative<webhook>(decode_webhook(fewer)));
  expect_counted(before, 1, 0, 0);
  detail::reuse_indexes(true);
  before = counts();
  EXPECT_TRUE(std::holds_alternative<webhook>(decode_webhook(fewer)));
  expect_counted(before, 0, 1, 0);
  // Scanned without a filter, so nothing to replay until a scan with one.
  for (const int replayed : {0, 1}) {
    before = counts();
    EXPECT_EQ(describe(decode_webhook(fewer, &parity)),
              describe(detail::decode_webhook_dom(fewer, &parity)));
    expect_counted(before, 0, 1, 0, replayed);
  }
}

TEST(ScanWebhook, LeavesToTheDomWhatItDoesNotCheckItself) {
  // Valid JSON the scanner declines; the DOM decodes it.
  const std::vector<std::string> declined = {
      kRealisticBody,                                                              // 2.5
      R"({"alerts":[],"x":1e3})",                                                  // exponent
      R"({"alerts":[],"x":1234567890123456789})",                                  // 19 digits
      R"({"alerts":[],"x":"\ud83d\ude00"})",                                       // surrogate pair
      R"({"alerts":[],"x":)" + std::string(20, '[') + std::string(20, ']') + "}",  // depth
  };
  for (const std::string& body : declined) {
    EXPECT_FALSE(detail::scan_webhook(body, nullptr).has_value()) << body;
    EXPECT_TRUE(std::holds_alternative<webhook>(decode_webhook(body))) << body;
    expect_same_decoding(body);
  }
  // Invalid bodies are always declined.
  for (const std::string body :
       {R"({"alerts":[]} x)", R"({"alerts":[],})", R"({"alerts":[] "a":1})", R"({"alerts":[nul]})",
        R"({"alerts":[],"x":"\x"})", R"({"alerts":[],"x":"\u12"})", R"({"alerts":[],"x":01})",
        R"({"alerts":[],"x":-})", R"({"alerts":[],"x":[1,]})", R"({"alerts":[],"x":truex})",
        // Backslashes outside strings, each a valid escape if read as one: the escapes are
        // checked across the whole body, and the grammar must still reject where they lie.
        R"({"alerts":[],"x":true\n})", R"({"alerts":[],"x":1\n})", R"({"alerts":[],"x":"a"\n})",
        R"({"alerts":[],"x":\n1})", R"({"alerts":[]\n})", R"(\n{"alerts":[]})"}) {
    EXPECT_FALSE(detail::scan_webhook(body, nullptr).has_value()) << body;
    EXPECT_TRUE(std::holds_alternative<decode_error>(decode_webhook(body))) << body;
  }
}

// A bad escape is an error wherever it is, also in what the filter then drops unread (the
// generatorURL is unescaped only for alerts whose details are kept, but checked for every one).
TEST(ScanWebhook, RejectsABadEscapeInWhatTheFilterDrops) {
  const minimal_filter drop;
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {R"(x\u003e0)", R"(x\x3e0)"},                     // generatorURL
           {R"(x\u003e0)", R"(x\u003)"},                     // generatorURL, \u cut short
           {R"(\u0026search=open)", R"(\a0026search)"},      // an annotation
           {R"(Ceph \"slow\")", R"(Ceph \'slow\')"},         // another
           {R"(a\u0062)", R"(a\U0062)"},                     // a label name
           {R"({team=\"wmcs\"})", R"({team=\qwmcs\"})"}}) {  // groupKey
    std::string body = kEscapedBody;
    ASSERT_NE(body.find(from), std::string::npos) << from;
    body.replace(body.find(from), from.size(), to);
    for (const detail_filter* filter :
         {static_cast<const detail_filter*>(nullptr), static_cast<const detail_filter*>(&drop)}) {
      EXPECT_FALSE(detail::scan_webhook(body, filter).has_value()) << body;
      EXPECT_TRUE(std::holds_alternative<decode_error>(decode_webhook(body, filter))) << body;
    }
  }
}

// A group of one alert: Alertmanager writes its labels and annotations again as the common ones.
// The scanner skips the copies after comparing them byte for byte with the alert's (checked
// already); what it builds from them, and what it rejects, must not change.
TEST(ScanWebhook, CommonLabelsCopyingTheAlertsAreTheSame) {
  const std::string labels =
      R"({"alertname":"CephSlowOps","job":"ceph_eqiad","project":"tools","q":"a\"b\u00e9"})";
  const std::string annotations =
      R"({"dashboard":"https://grafana.example/d/P1?orgId=1\u0026tag=ceph","summary":"x \\ y"})";
  const auto body = [&](const std::string& common_labels, const std::string& common_annotations) {
    return R"({"receiver":"alertrouter","status":"firing","alerts":[{"status":"firing","labels":)" +
           labels + R"(,"annotations":)" + annotations +
           R"(,"startsAt":"2026-11-26T10:00:00Z","endsAt":"0001-01-01T00:00:00Z",)"
           R"("generatorURL":"http://p:9090/graph","fingerprint":"0123456789abcdef"}],)"
           R"("groupLabels":{"alertname":"CephSlowOps"},"commonLabels":)" +
           common_labels + R"(,"commonAnnotations":)" + common_annotations +
           R"(,"externalURL":"http://am:9093","version":"4","groupKey":"{}:{}",)"
           R"("truncatedAlerts":0})";
  };
  const std::string copies = body(labels, annotations);
  const auto scanned = detail::scan_webhook(copies, nullptr);
  ASSERT_TRUE(scanned.has_value());
  EXPECT_EQ(scanned->common_labels, scanned->alerts[0].labels);
  EXPECT_EQ(scanned->common_labels.get("q"), "a\"b\xC3\xA9");
  EXPECT_EQ(scanned->common_annotations, scanned->alerts[0].annotations);
  expect_same_decoding(copies);

  // Same length, same tokens, one byte different: checked in full, and rejected when wrong.
  std::string bad_labels = labels;
  bad_labels.replace(bad_labels.find(R"(\u00e9)"), 6, R"(\u00g9)");
  std::string bad_annotations = annotations;
  bad_annotations.replace(bad_annotations.find(R"(\\ y)"), 4, R"(\q y)");
  for (const std::string& wrong : {body(bad_labels, annotations), body(labels, bad_annotations)}) {
    EXPECT_FALSE(detail::scan_webhook(wrong, nullptr).has_value()) << wrong;
    EXPECT_TRUE(std::holds_alternative<decode_error>(decode_webhook(wrong))) << wrong;
  }
  // A valid copy that differs decodes to what it says.
  std::string other = labels;
  other.replace(other.find("tools"), 5, "paws!");
  const std::string differs = body(other, annotations);
  const auto scanned_other = detail::scan_webhook(differs, nullptr);
  ASSERT_TRUE(scanned_other.has_value());
  EXPECT_EQ(scanned_other->common_labels.get("project"), "paws!");
  expect_same_decoding(differs);
}

TEST(ScanWebhook, ReadsNothingPastTheEndOfTheBody) {
  // An exact-size heap copy, so that ASan or valgrind catches a read past the end.
  for (const std::string& text : {kEscapedBody, std::string(R"({"alerts":[],"x":"\n"})")}) {
    const auto copy = std::make_unique<char[]>(text.size());
    std::copy(text.begin(), text.end(), copy.get());
    const std::string_view body(copy.get(), text.size());
    EXPECT_TRUE(detail::scan_webhook(body, nullptr).has_value());
    EXPECT_TRUE(std::holds_alternative<webhook>(decode_webhook(body)));
  }
}

// A body copied to end where an unreadable page begins, so that any read past its end faults,
// including one in simdjson (an uninstrumented shared library, out of ASan's sight).
class guarded_copy {
 public:
  explicit guarded_copy(std::string_view text) {
    const auto page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
    size_ = (text.size() / page + 2) * page;
    void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    base_ = static_cast<char*>(p);
    mprotect(base_ + size_ - page, page, PROT_NONE);
    char* at = base_ + size_ - page - text.size();
    std::copy(text.begin(), text.end(), at);
    body_ = std::string_view(at, text.size());
  }
  guarded_copy(const guarded_copy&) = delete;
  guarded_copy& operator=(const guarded_copy&) = delete;
  ~guarded_copy() { munmap(base_, size_); }
  std::string_view body() const { return body_; }

 private:
  char* base_ = nullptr;
  std::size_t size_ = 0;
  std::string_view body_;
};

// simdjson's portable kernel (chosen where the CPU has no SIMD kernel, or by
// SIMDJSON_FORCE_IMPLEMENTATION) reads one byte past a string cut short in a multi-byte UTF-8
// character; the scanner's first stage must not run it on the body where it lies.
// The alert whose labels commonLabels may copy is one of this body's. A body with commonLabels
// before any alert, after a body with a long prefix before its alert, would otherwise have the
// scanner compare bytes at the last body's offsets, past this one's end (found by the fuzzer):
// here they lie in an unreadable page.
TEST(ScanWebhook, ComparesCommonLabelsOnlyWithThisBodysAlert) {
  const std::string labels = R"({"alertname":"CephSlowOps","project":"tools"})";
  // Its labels start past the 30th token and the 3000th byte; the body below has 18 tokens.
  const std::string before =
      R"({"receiver":")" + std::string(3000, 'x') +
      R"(","a":0,"b":0,"c":0,"d":0,"e":0,"f":0,"g":0,"h":0,"status":"firing",)"
      R"("alerts":[{"status":"firing","labels":)" +
      labels + R"(,"annotations":{},"startsAt":"2026-11-26T10:00:00Z"}],"commonLabels":)" + labels +
      "}";
  ASSERT_TRUE(detail::scan_webhook(before, nullptr).has_value());
  const guarded_copy copy(R"({"commonLabels":)" + labels + R"(,"alerts":[]})");
  const auto scanned = detail::scan_webhook(copy.body(), nullptr);
  ASSERT_TRUE(scanned.has_value());
  EXPECT_EQ(scanned->common_labels.get("project"), "tools");
  EXPECT_TRUE(scanned->alerts.empty());
}

TEST(ScanWebhook, ReadsNothingPastTheEndWithTheFallbackKernel) {
  const simdjson::implementation* const fallback =
      simdjson::get_available_implementations()["fallback"];
  ASSERT_NE(fallback, nullptr);
  auto& active = simdjson::get_active_implementation();
  const simdjson::implementation* const previous = active;
  active = fallback;
  // A new thread, so that its decoders' parsers are created with the fallback kernel.
  std::thread([] {
    const std::vector<std::string> cut = {"{\"alerts\":[],\"x\":\"\xC3",
                                          "{\"alerts\":[],\"x\":\"\xE2\x82",
                                          "{\"alerts\":[],\"x\":\"\xF0\x9F\x98"};
    for (const std::string& text : cut) {
      const guarded_copy copy(text);
      EXPECT_FALSE(detail::scan_webhook(copy.body(), nullptr).has_value());
      EXPECT_TRUE(std::holds_alternative<decode_error>(decode_webhook(copy.body())));
    }
    // The fast path still takes what it takes with the other kernels.
    const guarded_copy copy(kEscapedBody);
    const auto scanned = detail::scan_webhook(copy.body(), nullptr);
    ASSERT_TRUE(scanned.has_value());
    EXPECT_EQ(describe(*scanned), describe(detail::decode_webhook_dom(copy.body(), nullptr)));
  }).join();
  active = previous;
}

// Every body one edit away from a valid one: each byte replaced by, or preceded by, bytes that
// matter to JSON, or deleted, and the body cut short at every length.
TEST(ScanWebhook, AgreesWithTheDomOnEveryBodyOneEditAway) {
  const std::string replacements = "\"\\{}[],: n0-u\x01\xff";
  const std::string insertions = "\"\\,}";
  for (const std::string& seed : {kEscapedBody, without_floats(kRealisticBody)}) {
    for (std::size_t i = 0; i < seed.size(); ++i) {
      expect_same_decoding(seed.substr(0, i));
      expect_same_decoding(seed.substr(0, i) + seed.substr(i + 1));
      for (const char c : replacements) {
        std::string replaced = seed;
        replaced[i] = c;
        expect_same_decoding(replaced);
      }
      for (const char c : insertions) expect_same_decoding(seed.substr(0, i) + c + seed.substr(i));
      if (HasFatalFailure()) return;
    }
  }
}

// Every body one byte away from a realistic one, each decoded with a filter right after the
// original (as a group's resends reach the daemon): whatever path each takes (an index derived
// from the original's, its scan replayed when the edit is in a string it did not keep), it must
// decode as the DOM does.
TEST(DecodeWebhook, EditedResendsWithAFilterAgreeWithTheDom) {
  const parity_filter parity;
  const index_counts before = thread_index_counts();
  const std::string replacements = "\"\\{}: a0\x01\xc3";
  for (const std::string& seed : {kEscapedBody, without_floats(kRealisticBody)}) {
    for (std::size_t i = 0; i < seed.size(); ++i) {
      for (const char c : replacements) {
        std::string edited = seed;
        edited[i] = c;
        ASSERT_EQ(describe(decode_webhook(seed, &parity)),
                  describe(detail::decode_webhook_dom(seed, &parity)));
        ASSERT_EQ(describe(decode_webhook(edited, &parity)),
                  describe(detail::decode_webhook_dom(edited, &parity)))
            << edited;
      }
    }
  }
  // Both ways of decoding an edited body were taken, many times.
  const index_counts after = thread_index_counts();
  EXPECT_GT(after.derived - before.derived, 1000u);
  EXPECT_GT(after.replayed - before.replayed, after.reused - before.reused + 500);
}

// Different groups whose bodies share a key (here: the same group key, as no Alertmanager sends
// them) derive from each other at a loss: the key backs off, and most bodies are indexed afresh.
TEST(DecodeWebhook, BodiesOfOtherGroupsUnderOneKeyBackOff) {
  const parity_filter parity;
  std::vector<std::string> bodies;
  for (int g = 0; g < 8; ++g) {
    std::string body = kEscapedBody;
    const std::string instance = "cloudcephosd1001";
    body.replace(body.find(instance), instance.size(), "cloudcephosd" + std::to_string(2000 + g));
    const std::string fp = "0123456789abcdef";
    body.replace(body.find(fp), fp.size(), "0123456789abc" + std::to_string(100 + g));
    // Their own group key, the same for all of them.
    const std::string key = R"(alertname=\"CephSlowOps\")";
    body.replace(body.rfind(key), key.size(), R"(alertname=\"BackoffTest\")");
    bodies.push_back(std::move(body));
  }
  const index_counts before = thread_index_counts();
  for (int round = 0; round < 16; ++round) {
    for (const std::string& body : bodies) {
      const auto decoded = decode_webhook(body, &parity);
      ASSERT_TRUE(std::holds_alternative<webhook>(decoded)) << describe(decoded);
      ASSERT_EQ(describe(decoded), describe(detail::decode_webhook_dom(body, &parity)));
    }
  }
  const index_counts after = thread_index_counts();
  const std::uint64_t derived = after.derived - before.derived;
  const std::uint64_t first_stage = after.first_stage - before.first_stage;
  EXPECT_EQ(derived + first_stage + (after.reused - before.reused), 128u);
  // Without the backoff all 127 after the first would be derived (their fingerprints differ, so
  // none replayed); with it, a derivation every 64 bodies at most once it has grown.
  EXPECT_LT(derived, 16u);
  EXPECT_EQ(after.replayed - before.replayed, 0u);
}

TEST(DecodeError, ToStringJoinsFieldAndMessage) {
  EXPECT_EQ((decode_error{"alerts[3].labels.severity", "expected a string"}.to_string()),
            "alerts[3].labels.severity: expected a string");
  EXPECT_EQ((decode_error{"", "truncated JSON"}.to_string()), "truncated JSON");
}

}  // namespace
}  // namespace alertrouter::routing
