// Routes realistic Alertmanager webhook bodies through the whole routing engine: decode, classify,
// dedup and route, with the example WMCS configuration and the WMCS alert rules corpus for
// labels. See bench/README.md for what each benchmark measures and how to read the figures.

#include <benchmark/benchmark.h>
#include <date/date.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "config/loader.h"
#include "routing/alert.h"
#include "routing/incident.h"
#include "routing/planner.h"
#include "routing/routing_table.h"
#include "routing/webhook.h"

namespace {

namespace json = boost::json;
namespace config = alertrouter::config;
namespace routing = alertrouter::routing;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Inputs: the compiled example configuration and the alert rules that give bodies their labels.

// One Prometheus alert rule from the WMCS corpus: static labels and annotation templates.
struct rule {
  std::string alertname;
  std::vector<routing::label_set::label> labels;
  std::vector<routing::label_set::label> annotations;
  std::string expr;
};

struct bench_env {
  std::string config_path;
  std::string rules_path;  // "" when the built-in rules were used
  std::shared_ptr<const routing::routing_table> routes;
  config::dedup_config dedup;
  std::vector<rule> rules;
};

const bench_env* g_env = nullptr;

// Used only when the corpus (../shared/data, outside the repository) is not there: a handful of
// its rules, verbatim, so `make bench` works on any checkout.
constexpr std::string_view kBuiltinRules = R"yaml(
- alert: CephClusterInError
  labels: {severity: page, team: wmcs, service: 'ceph,cloudvps'}
  annotations:
    summary: '#page Ceph cluster in {{ $externalLabels.site }} is in error status'
    description: '{{ $externalLabels.site }} Ceph cluster is unable to serve traffic, all VMs could be unusable.'
    runbook: https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephClusterInError
    dashboard: https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS
  expr_summary: ceph_health_status{job="ceph_eqiad"} == 2 [for 5m]
- alert: CephSlowOps
  labels: {severity: critical, team: wmcs, service: 'ceph,cloudvps'}
  annotations:
    summary: Ceph cluster in {{ $externalLabels.site }} has slow ops
    description: Ceph cluster in {{ $externalLabels.site }} has {{ $value }} slow ops, which might be blocking some writes
    runbook: https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephSlowOps
    dashboard: https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS
  expr_summary: ceph_healthcheck_slow_ops{job="ceph_eqiad"} > 0 [for 1m]
- alert: CephClusterInWarning
  labels: {severity: warning, team: wmcs, service: 'ceph,cloudvps'}
  annotations:
    summary: Ceph cluster in {{ $externalLabels.site }} is in warning status
    description: High availability of the Ceph cluster in {{ $externalLabels.site }} is compromised, but things should still be working as expected.
    runbook: https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/CephClusterInWarning
    dashboard: https://grafana.wikimedia.org/d/P1tFnn3Mk/wmcs-ceph-eqiad-health?orgId=1&search=open&tag=ceph&tag=health&tag=WMCS
  expr_summary: ceph_health_status{job="ceph_eqiad"} == 1 [for 5m]
- alert: CloudVPSBastionlessUsers
  labels: {team: wmcs, severity: warning, service: cloudvps}
  annotations:
    summary: Detected {{ $value }} cloud-vps users not in Bastion project
    description: All human cloud-vps users should be members of the Bastion project. Look for keystonehook errors in keystone logs.
    runbook: https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Users_not_in_bastion_project
    dashboard: https://logstash.wikimedia.org/app/dashboards#/view/3ef008b0-c871-11eb-ad54-8bb5fcb640c0?_g=h@e78830b&_a=h@21715bf
  expr_summary: cloudvps_bastionlessusers != 0 [for 20m]
)yaml";

std::vector<routing::label_set::label> string_map(const YAML::Node& node) {
  std::vector<routing::label_set::label> out;
  if (!node.IsMap()) return out;
  for (const auto& kv : node)
    out.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
  return out;
}

// Throws YAML::Exception on a malformed corpus; main() reports it.
std::vector<rule> parse_rules(const YAML::Node& doc) {
  std::vector<rule> out;
  for (const auto& node : doc) {
    rule r;
    r.alertname = node["alert"].as<std::string>();
    r.labels = string_map(node["labels"]);
    r.annotations = string_map(node["annotations"]);
    if (node["expr_summary"]) r.expr = node["expr_summary"].as<std::string>();
    out.push_back(std::move(r));
  }
  return out;
}

std::string env_or(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? std::string(v) : std::move(fallback);
}

// Loads everything once, before any benchmark runs. Exits non-zero with the reason on failure.
bench_env load_env() {
  bench_env env;
  env.config_path = env_or("ALERTROUTER_BENCH_CONFIG",
                           std::string(ALERTROUTER_SOURCE_DIR) + "/config/examples/wmcs.yaml");
  config::load_result loaded = config::load_file(env.config_path);
  if (!loaded.value) {
    for (const auto& d : loaded.diagnostics) std::cerr << d.to_string() << "\n";
    std::cerr << "routing_bench: cannot load " << env.config_path << "\n";
    std::exit(1);
  }
  env.dedup = loaded.value->dedup;
  auto compiled = routing::routing_table::compile(std::move(*loaded.value));
  if (auto* errors = std::get_if<std::vector<config::diagnostic>>(&compiled)) {
    for (const auto& d : *errors) std::cerr << d.to_string() << "\n";
    std::cerr << "routing_bench: cannot compile " << env.config_path << "\n";
    std::exit(1);
  }
  env.routes = std::get<std::shared_ptr<const routing::routing_table>>(std::move(compiled));

  const std::string rules_path =
      env_or("ALERTROUTER_BENCH_RULES",
             std::string(ALERTROUTER_SOURCE_DIR) + "/../shared/data/wmcs-alert-rules.yaml");
  try {
    env.rules = parse_rules(YAML::LoadFile(rules_path));
    env.rules_path = rules_path;
  } catch (const YAML::BadFile&) {
    env.rules = parse_rules(YAML::Load(std::string(kBuiltinRules)));
  } catch (const YAML::Exception& e) {
    std::cerr << "routing_bench: " << rules_path << ": " << e.what() << "\n";
    std::exit(1);
  }
  if (env.rules.empty()) {
    std::cerr << "routing_bench: no alert rules in " << rules_path << "\n";
    std::exit(1);
  }
  return env;
}

// ---------------------------------------------------------------------------------------------
// Bodies: Alertmanager v4 webhooks, one alert group (group_by: [alertname]) per body.

const routing::timestamp kStartsAt = date::sys_days{date::year{2026} / 11 / 26} + 10h;
const routing::timestamp kFiringNow = kStartsAt + 5min;     // when repeats/new alerts arrive
const routing::timestamp kResolvedNow = kStartsAt + 31min;  // when resolves arrive

// Cloud VPS projects in the `project` label, by alert number: 3 in 10 alerts carry none (team
// infrastructure, owned via `infrastructure`), 4 are team-owned projects, 3 are user projects
// (deployment-prep has contacts in the example; the made-up ones do not).
constexpr std::string_view kProjects[] = {
    "",     "tools", "",       "toolsbeta",     "deployment-prep",
    "paws", "",      "quarry", "wikidumpparse", "video"};

std::string_view find_label(const std::vector<routing::label_set::label>& labels,
                            std::string_view name) {
  for (const auto& [k, v] : labels)
    if (k == name) return v;
  return {};
}

// The host family an alert fires on, and its exporter job, from the rule's `service`.
std::pair<std::string_view, std::string_view> host_family(const rule& r) {
  const std::string_view service = find_label(r.labels, "service");
  if (service.find("ceph") != std::string_view::npos) return {"cloudcephosd", "ceph_eqiad"};
  if (service.find("openstack") != std::string_view::npos) return {"cloudcontrol", "openstack"};
  if (service.find("network") != std::string_view::npos) return {"cloudgw", "node"};
  if (service.find("wikireplicas") != std::string_view::npos) return {"clouddb", "mysql-labs"};
  if (service.find("wikitech") != std::string_view::npos) return {"cloudweb", "apache"};
  return {"cloudvirt", "node"};
}

// Renders Prometheus template placeholders the way a firing alert would show them, at evaluation
// `round`: {{ $value }} is the query's value, which changes from one evaluation to the next.
std::string render(std::string_view text, const std::vector<routing::label_set::label>& labels,
                   std::size_t round) {
  std::string out;
  out.reserve(text.size() + 32);
  while (true) {
    const auto open = text.find("{{");
    if (open == std::string_view::npos) break;
    const auto close = text.find("}}", open);
    if (close == std::string_view::npos) break;
    out.append(text.substr(0, open));
    const std::string_view expr = text.substr(open + 2, close - open - 2);
    if (expr.find("$externalLabels.site") != std::string_view::npos) {
      out += "eqiad";
    } else if (expr.find("$value") != std::string_view::npos) {
      if (expr.find("Percentage") != std::string_view::npos) {
        out += std::to_string(91 + round % 8) + "." + std::to_string(27 + round % 50) + "%";
      } else {
        out += std::to_string(3 + round % 10);
      }
    } else if (const auto at = expr.find("$labels."); at != std::string_view::npos) {
      std::string_view name = expr.substr(at + 8);
      name = name.substr(0, name.find_first_of(" |}"));
      std::string_view value = find_label(labels, name == "user" ? "project" : name);
      if (expr.find("stripPort") != std::string_view::npos)
        value = value.substr(0, value.find(':'));
      out.append(value.empty() ? std::string_view("unknown") : value);
    } else {
      out += "unknown";
    }
    text.remove_prefix(close + 2);
  }
  out.append(text);
  return out;
}

// Go's url.QueryEscape, as Prometheus builds generatorURL.
std::string url_encode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += c;
    } else if (c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

json::object to_object(const routing::label_set& s) {
  json::object o;
  for (const auto& [k, v] : s) o[k] = v;
  return o;
}

// The labels both sets share with equal values (Alertmanager's commonLabels/commonAnnotations).
routing::label_set intersect(const routing::label_set& a, const routing::label_set& b) {
  std::vector<routing::label_set::label> out;
  for (const auto& [k, v] : a)
    if (b.contains(k) && b.get(k) == v) out.emplace_back(k, v);
  return routing::label_set(std::move(out));
}

// Body `alerts` alerts of rule `rule_index`, on hosts numbered from `first_instance`: every
// (rule, instance) pair has its own fingerprint.
struct body_spec {
  std::size_t rule_index = 0;
  std::size_t first_instance = 0;
  std::size_t alerts = 1;
  routing::alert_status status = routing::alert_status::firing;
  std::size_t round = 0;  // the rule evaluation its annotations render ({{ $value }})
};

std::string make_body(const bench_env& env, const body_spec& spec) {
  const rule& r = env.rules[spec.rule_index % env.rules.size()];
  const auto [host, job] = host_family(r);
  const std::string_view status = routing::to_string(spec.status);
  const bool resolved = spec.status == routing::alert_status::resolved;

  std::string generator_url = "http://prometheus.example:9090/graph?g0.expr=";
  generator_url += url_encode(r.expr.substr(0, r.expr.find(" [for ")));
  generator_url += "&g0.tab=1";

  // Alertmanager groups by alertname and rack here: every body is a group of its own, named in
  // groupKey as Alertmanager names it (the route's matchers, then the group's labels).
  const std::string rack = "r" + std::to_string(spec.first_instance / spec.alerts);
  json::array alerts;
  std::optional<routing::label_set> common_labels;
  std::optional<routing::label_set> common_annotations;
  for (std::size_t i = 0; i < spec.alerts; ++i) {
    const std::size_t k = spec.first_instance + i;
    std::vector<routing::label_set::label> labels = r.labels;
    labels.emplace_back("alertname", r.alertname);
    labels.emplace_back("team", "wmcs");
    labels.emplace_back("instance", std::string(host) + std::to_string(1001 + k) + ":9100");
    labels.emplace_back("job", std::string(job));
    labels.emplace_back("cluster", "wmcs");
    labels.emplace_back("site", "eqiad");
    labels.emplace_back("prometheus", "cloud");
    labels.emplace_back("source", "prometheus");
    labels.emplace_back("rack", rack);
    // A rule with a templated project (`{{ $labels.user }}`) always names one.
    std::string_view project = kProjects[k % std::size(kProjects)];
    if (project.empty() && find_label(r.labels, "project").size() > 0) project = "wikidumpparse";
    std::erase_if(labels, [](const auto& l) { return l.first == "project"; });
    if (!project.empty()) labels.emplace_back("project", std::string(project));

    std::vector<routing::label_set::label> annotations;
    for (const auto& [name, text] : r.annotations)
      annotations.emplace_back(name, render(text, labels, spec.round + k));

    const routing::label_set label_set(std::move(labels));
    const routing::label_set annotation_set(std::move(annotations));
    common_labels = common_labels ? intersect(*common_labels, label_set) : label_set;
    common_annotations =
        common_annotations ? intersect(*common_annotations, annotation_set) : annotation_set;

    json::object a;
    a["status"] = status;
    a["labels"] = to_object(label_set);
    a["annotations"] = to_object(annotation_set);
    a["startsAt"] = "2026-11-26T10:00:00.123456789Z";
    a["endsAt"] = resolved ? "2026-11-26T10:30:00.123456789Z" : "0001-01-01T00:00:00Z";
    a["generatorURL"] = generator_url;
    a["fingerprint"] = routing::to_hex(routing::compute_fingerprint(label_set));
    alerts.emplace_back(std::move(a));
  }

  // Field order as Alertmanager's webhook notifier marshals them.
  json::object body;
  body["receiver"] = "alertrouter";
  body["status"] = status;
  body["alerts"] = std::move(alerts);
  body["groupLabels"] = json::object{{"alertname", r.alertname}, {"rack", rack}};
  body["commonLabels"] = to_object(common_labels.value_or(routing::label_set{}));
  body["commonAnnotations"] = to_object(common_annotations.value_or(routing::label_set{}));
  body["externalURL"] = "http://alertmanager.example:9093";
  body["version"] = "4";
  body["groupKey"] =
      "{}/{team=\"wmcs\"}:{alertname=\"" + r.alertname + "\", rack=\"" + rack + "\"}";
  body["truncatedAlerts"] = 0;

  // Go's encoding/json escapes <, > and & (Alertmanager's URLs are full of `&`); they can only
  // occur inside strings here, so a plain substitution is exact.
  std::string out;
  for (const char c : json::serialize(body)) {
    switch (c) {
      case '&':
        out += "\\u0026";
        break;
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Alerts per pool: enough distinct incidents that the table is not a toy, few enough to build in
// milliseconds. A new-incident pool is used up and rebuilt (untimed) as the benchmark goes.
constexpr std::size_t kRepeatPoolAlerts = 2000;
constexpr std::size_t kFreshPoolAlerts = 20000;
// Instance numbers of fresh pools start here, so they never collide with the repeat pool.
constexpr std::size_t kFreshInstanceBase = 1'000'000;

enum class pool_kind { repeat_firing, fresh_firing, fresh_resolved };

// Bodies of `alerts_per_body` alerts, built once per (kind, size) and kept for the whole run.
// Every body is decoded once when the pool is built, so the timed loops may assume they decode;
// `error` says why not otherwise.
struct body_pool {
  std::vector<std::string> bodies;
  // Repeat pools: the same groups resent at the next rule evaluation, as Alertmanager resends
  // them: the same bytes but for annotations templating {{ $value }}.
  std::vector<std::string> next_round;
  double bytes_per_body = 0;
  std::string error;
};

const body_pool& pool_of(pool_kind kind, std::size_t alerts_per_body) {
  static std::map<std::pair<pool_kind, std::size_t>, body_pool> pools;
  auto [it, inserted] = pools.try_emplace({kind, alerts_per_body});
  body_pool& pool = it->second;
  if (!inserted) return pool;
  const bool fresh = kind != pool_kind::repeat_firing;
  const std::size_t total = fresh ? kFreshPoolAlerts : kRepeatPoolAlerts;
  const std::size_t bodies = std::max<std::size_t>(total / alerts_per_body, 1);
  pool.bodies.reserve(bodies);
  std::size_t bytes = 0;
  for (std::size_t b = 0; b < bodies; ++b) {
    pool.bodies.push_back(make_body(
        *g_env, body_spec{
                    .rule_index = b,
                    .first_instance = (fresh ? kFreshInstanceBase : 0) + b * alerts_per_body,
                    .alerts = alerts_per_body,
                    .status = kind == pool_kind::fresh_resolved ? routing::alert_status::resolved
                                                                : routing::alert_status::firing,
                }));
    bytes += pool.bodies.back().size();
    if (!fresh) {
      pool.next_round.push_back(make_body(*g_env, body_spec{
                                                      .rule_index = b,
                                                      .first_instance = b * alerts_per_body,
                                                      .alerts = alerts_per_body,
                                                      .round = 1,
                                                  }));
    }
    auto decoded = routing::decode_webhook(pool.bodies.back());
    if (auto* err = std::get_if<routing::decode_error>(&decoded); err && pool.error.empty())
      pool.error = "decode_webhook rejected a generated body: " + err->to_string();
  }
  pool.bytes_per_body = static_cast<double>(bytes) / static_cast<double>(bodies);
  return pool;
}

// ---------------------------------------------------------------------------------------------
// Harness helpers.

std::unique_ptr<routing::incident_table> new_table() {
  return std::make_unique<routing::memory_incident_table>(g_env->dedup.retention,
                                                          g_env->dedup.max_incidents);
}

// The pool for this benchmark, or nullptr (and the run marked as an error) if it does not decode.
const body_pool* pool_or_skip(benchmark::State& state, pool_kind kind) {
  const body_pool& pool = pool_of(kind, static_cast<std::size_t>(state.range(0)));
  if (!pool.error.empty()) {
    state.SkipWithError(pool.error.c_str());
    return nullptr;
  }
  return &pool;
}

// Bodies known to decode (pool_of checked them).
routing::webhook decode(std::string_view body) {
  return std::get<routing::webhook>(routing::decode_webhook(body));
}

// items/s = alerts/s; time_per_alert = CPU time / alerts; bytes/s of webhook JSON (when decoded).
void report(benchmark::State& state, double bytes_per_body) {
  const auto alerts_per_body = static_cast<std::int64_t>(state.range(0));
  state.SetItemsProcessed(state.iterations() * alerts_per_body);
  if (bytes_per_body > 0) {
    state.SetBytesProcessed(
        static_cast<std::int64_t>(bytes_per_body * static_cast<double>(state.iterations())));
  }
  // Seconds per alert (alerts per CPU second, inverted); printed with an SI prefix ("850ns").
  state.counters["time_per_alert"] = benchmark::Counter(
      static_cast<double>(alerts_per_body),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// The planner must have done what the benchmark claims to measure, else the figure means nothing
// and the run is marked as an error.
void expect(benchmark::State& state, const char* what, std::size_t seen) {
  const auto wanted = static_cast<std::size_t>(state.iterations() * state.range(0));
  if (seen != wanted) {
    const std::string msg = "expected " + std::to_string(wanted) + " " + what +
                            ", the planner reported " + std::to_string(seen);
    state.SkipWithError(msg.c_str());
  }
}

// How many notifications one body produced, as the run's label (a counter would have to be present
// in every benchmark for the CSV output).
void label_notifications(benchmark::State& state, std::size_t notifications) {
  if (state.iterations() == 0) return;
  char text[64];
  std::snprintf(text, sizeof text, "%.2f notifications/body",
                static_cast<double>(notifications) / static_cast<double>(state.iterations()));
  state.SetLabel(text);
}

// How the bodies decoded since `before` were indexed (see routing::index_counts), as the
// run's label: the share of bodies whose index was a recent body's as is, derived from one, or
// found by simdjson's first stage (pool building included), and of all, the share decoded from
// what the scan of their group's last body read.
void label_indexing(benchmark::State& state, const routing::index_counts& before) {
  const routing::index_counts now = routing::thread_index_counts();
  const auto reused = static_cast<double>(now.reused - before.reused);
  const auto derived = static_cast<double>(now.derived - before.derived);
  const auto first = static_cast<double>(now.first_stage - before.first_stage);
  const auto replayed = static_cast<double>(now.replayed - before.replayed);
  const double total = reused + derived + first;
  if (total == 0) return;
  char text[128];
  std::snprintf(
      text, sizeof text, "index: %.1f%% same, %.1f%% derived, %.1f%% first stage; %.1f%% replayed",
      100 * reused / total, 100 * derived / total, 100 * first / total, 100 * replayed / total);
  state.SetLabel(text);
}

// ---------------------------------------------------------------------------------------------
// Benchmarks. Arg = alerts per body.

// Runs `route` (body, table -> duplicates seen) over the resend pool, on a table in which every
// alert of the pool already has an open incident.
template <class Route>
void repeat_bodies(benchmark::State& state, Route route) {
  const body_pool* pool = pool_or_skip(state, pool_kind::repeat_firing);
  if (pool == nullptr) return;
  const auto& bodies = pool->bodies;
  auto table = new_table();
  for (const auto& body : bodies) {
    routing::webhook hook = decode(body);
    routing::make_plan(*g_env->routes, *table, hook, kFiringNow);
  }

  // Each pass over the groups resends them at the next evaluation: every other pass the
  // templated annotations differ from the pass before.
  const std::vector<std::string>* pass = &bodies;
  std::size_t i = 0;
  std::size_t duplicates = 0;
  for (auto _ : state) {
    duplicates += route((*pass)[i], *table);
    if (++i == bodies.size()) {
      i = 0;
      pass = pass == &bodies ? &pool->next_round : &bodies;
    }
  }
  expect(state, "duplicates", duplicates);
  report(state, pool->bytes_per_body);
}

// Alertmanager's group resends: every alert already has an open incident. Full path per body, as
// the daemon runs it: decode + classify + dedup (all duplicates, so nothing is routed), into one
// routed_webhook reused from body to body, as the daemon's handler does.
void BM_RepeatGroup(benchmark::State& state) {
  routing::routed_webhook routed;
  routing::decode_error error;
  const routing::index_counts before = routing::thread_index_counts();
  repeat_bodies(state, [&](const std::string& body, routing::incident_table& table) {
    if (!routing::route_webhook_into(body, *g_env->routes, table, kFiringNow, routed, error)) {
      return std::size_t{0};
    }
    benchmark::DoNotOptimize(routed);
    return routed.result.counts.duplicates;
  });
  label_indexing(state, before);
}

// BM_RepeatGroup with every body indexed by simdjson's first stage, none from the last body of
// its group (routing/json_index_cache.h): what that saves is the difference.
void BM_RepeatGroupFirstStage(benchmark::State& state) {
  routing::detail::reuse_indexes(false);
  BM_RepeatGroup(state);
  routing::detail::reuse_indexes(true);
}

// The same resends decoded in full (labels, annotations and generatorURL copied for every alert)
// and then planned: what route_webhook's detail filter saves is BM_RepeatFullDecode -
// BM_RepeatGroup.
void BM_RepeatFullDecode(benchmark::State& state) {
  repeat_bodies(state, [](const std::string& body, routing::incident_table& table) {
    auto decoded = routing::decode_webhook(body);
    routing::plan p = routing::make_plan(*g_env->routes, table,
                                         *std::get_if<routing::webhook>(&decoded), kFiringNow);
    benchmark::DoNotOptimize(p);
    return p.counts.duplicates;
  });
}

// The same resends with decoding done once, outside the loop: classify + dedup alone. The decoded
// webhooks are reused: make_plan's only change to one (the `ownership` label, severity spelling)
// is idempotent, so every iteration sees the same input without paying for a copy.
void BM_RepeatPlanOnly(benchmark::State& state) {
  const body_pool* pool = pool_or_skip(state, pool_kind::repeat_firing);
  if (pool == nullptr) return;
  auto table = new_table();
  std::vector<routing::webhook> hooks;
  hooks.reserve(pool->bodies.size());
  for (const auto& body : pool->bodies) {
    hooks.push_back(decode(body));
    routing::make_plan(*g_env->routes, *table, hooks.back(), kFiringNow);
  }

  std::size_t i = 0;
  std::size_t duplicates = 0;
  for (auto _ : state) {
    routing::plan p = routing::make_plan(*g_env->routes, *table, hooks[i], kFiringNow);
    duplicates += p.counts.duplicates;
    benchmark::DoNotOptimize(p);
    if (++i == hooks.size()) i = 0;
  }
  expect(state, "duplicates", duplicates);
  report(state, 0);
}

// Every alert opens a new incident: decode, classify, dedup, match routes, resolve who is on call
// and build the page notifications. The pool of unseen bodies is used up in order; when it runs
// out the table is replaced by an empty one (untimed) and the pool starts over.
void BM_NewIncidents(benchmark::State& state) {
  const body_pool* pool = pool_or_skip(state, pool_kind::fresh_firing);
  if (pool == nullptr) return;
  const auto& bodies = pool->bodies;
  auto table = new_table();

  std::size_t i = 0;
  std::size_t opened = 0;
  std::size_t notifications = 0;
  for (auto _ : state) {
    auto decoded = routing::decode_webhook(bodies[i]);
    routing::plan p = routing::make_plan(*g_env->routes, *table,
                                         *std::get_if<routing::webhook>(&decoded), kFiringNow);
    opened += p.counts.opened;
    notifications += p.notifications.size();
    benchmark::DoNotOptimize(p);
    if (++i == bodies.size()) {
      i = 0;
      state.PauseTiming();
      table = new_table();
      state.ResumeTiming();
    }
  }
  expect(state, "opened incidents", opened);
  report(state, pool->bytes_per_body);
  label_notifications(state, notifications);
}

// Every alert resolves an open incident: decode, dedup (close) and the resolve notifications to
// whoever was paged. When the open incidents run out they are reopened on a fresh table, untimed
// (a re-fire on the old table would be stale); the firing bodies are decoded once and copied.
void BM_ResolveGroup(benchmark::State& state) {
  const body_pool* firing = pool_or_skip(state, pool_kind::fresh_firing);
  const body_pool* resolving = firing ? pool_or_skip(state, pool_kind::fresh_resolved) : nullptr;
  if (resolving == nullptr) return;
  const auto& bodies = resolving->bodies;
  std::vector<routing::webhook> firing_hooks;
  firing_hooks.reserve(firing->bodies.size());
  for (const auto& body : firing->bodies) firing_hooks.push_back(decode(body));
  std::unique_ptr<routing::incident_table> table;
  const auto reopen = [&] {
    table = new_table();
    for (const auto& h : firing_hooks) {
      routing::webhook copy = h;
      routing::make_plan(*g_env->routes, *table, copy, kFiringNow);
    }
  };
  reopen();

  std::size_t i = 0;
  std::size_t closed = 0;
  std::size_t notifications = 0;
  for (auto _ : state) {
    auto decoded = routing::decode_webhook(bodies[i]);
    routing::plan p = routing::make_plan(*g_env->routes, *table,
                                         *std::get_if<routing::webhook>(&decoded), kResolvedNow);
    closed += p.counts.closed;
    notifications += p.notifications.size();
    benchmark::DoNotOptimize(p);
    if (++i == bodies.size()) {
      i = 0;
      state.PauseTiming();
      reopen();
      state.ResumeTiming();
    }
  }
  expect(state, "closed incidents", closed);
  report(state, resolving->bytes_per_body);
  label_notifications(state, notifications);
}

// Reference: decode_webhook alone (JSON parse, validation, labels, timestamps, fingerprints).
void BM_DecodeOnly(benchmark::State& state) {
  const body_pool* pool = pool_or_skip(state, pool_kind::repeat_firing);
  if (pool == nullptr) return;
  std::size_t i = 0;
  for (auto _ : state) {
    auto decoded = routing::decode_webhook(pool->bodies[i]);
    benchmark::DoNotOptimize(decoded);
    if (++i == pool->bodies.size()) i = 0;
  }
  report(state, pool->bytes_per_body);
}

// Peer: Boost.JSON's parse of the same bodies into a DOM, the floor any JSON decoder of these
// bodies starts from. BM_DecodeOnly / BM_JsonParse is what decoding adds on top.
void BM_JsonParse(benchmark::State& state) {
  const body_pool* pool = pool_or_skip(state, pool_kind::repeat_firing);
  if (pool == nullptr) return;
  std::size_t i = 0;
  for (auto _ : state) {
    boost::system::error_code ec;
    json::value v = json::parse(pool->bodies[i], ec);
    benchmark::DoNotOptimize(v);
    if (++i == pool->bodies.size()) i = 0;
  }
  report(state, pool->bytes_per_body);
}

void alerts_per_body(benchmark::internal::Benchmark* b) { b->Arg(1)->Arg(10)->Arg(100); }

BENCHMARK(BM_RepeatGroup)->Apply(alerts_per_body);
BENCHMARK(BM_RepeatGroupFirstStage)->Apply(alerts_per_body);
BENCHMARK(BM_RepeatFullDecode)->Apply(alerts_per_body);
BENCHMARK(BM_RepeatPlanOnly)->Apply(alerts_per_body);
BENCHMARK(BM_NewIncidents)->Apply(alerts_per_body);
BENCHMARK(BM_ResolveGroup)->Apply(alerts_per_body);
BENCHMARK(BM_DecodeOnly)->Apply(alerts_per_body);
BENCHMARK(BM_JsonParse)->Apply(alerts_per_body);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  static const bench_env env = load_env();
  g_env = &env;
  benchmark::AddCustomContext("config", env.config_path);
  benchmark::AddCustomContext(
      "alert_rules", (env.rules_path.empty() ? std::string("built-in sample") : env.rules_path) +
                         " (" + std::to_string(env.rules.size()) + " rules)");
  const std::string sample = make_body(env, body_spec{});
  benchmark::AddCustomContext("bytes_per_1_alert_body", std::to_string(sample.size()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
