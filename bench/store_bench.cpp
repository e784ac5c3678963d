// The durable state store's cost per accepted webhook, as the daemon's store writer pays it.
//
// One "webhook" here is what a one-alert body that opens an incident commits (the incident's
// row and its three notifications: on-call page, team feed, project contact, 1.9 KB of JSON
// each, as rendered for the load benchmark's alerts), and later what its delivery costs the
// store (one progress row per notification, marking it delivered). Sets are committed in
// groups of kGroup, as the group committer does under load; every commit is a real SQLite
// transaction in WAL mode with synchronous=FULL on a real file in $TMPDIR.
//
// Figures: CPU time per webhook (the store writer's share of a core; the fsync's wait is not
// CPU) and wall time per group commit. See bench/README.md ("Store benchmark").

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/state_store.h"

namespace {

namespace fs = std::filesystem;
using namespace alertrouter;
using namespace std::chrono_literals;

constexpr int kGroup = 16;  // change sets per transaction (the load benchmark averages 15)
constexpr int kMessagesPerWebhook = 3;

routing::incident make_incident(std::uint64_t id) {
  routing::incident inc;
  inc.id = id;
  inc.fp = routing::fingerprint{0x9e3779b97f4a7c15ull * id};
  inc.starts_at =
      routing::timestamp{std::chrono::seconds(1'790'000'000) + std::chrono::seconds(id)};
  inc.opened_at = inc.starts_at + 2s;
  inc.last.labels = routing::label_set({{"alertname", "CloudVirtDown"},
                                        {"cluster", "wmcs"},
                                        {"instance", "cloudvirt1031:9100"},
                                        {"job", "node"},
                                        {"ownership", "owned"},
                                        {"project", "tools"},
                                        {"prometheus", "cloud"},
                                        {"service", "nova"},
                                        {"severity", "page"},
                                        {"site", "eqiad"},
                                        {"source", "prometheus"},
                                        {"team", "wmcs"}});
  inc.last.annotations = routing::label_set(
      {{"summary", "cloudvirt1031 is down"},
       {"description",
        "cloudvirt1031:9100 has not answered Prometheus for 5 minutes; "
        "the instances it hosts are unreachable"},
       {"runbook",
        "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/"
        "CloudVirtDown"},
       {"dashboard",
        "https://grafana.wikimedia.org/d/aJgffPPmz/wmcs-openstack-eqiad-hypervisor"
        "?var-hostname=cloudvirt1031"}});
  inc.last.starts_at = inc.starts_at;
  inc.last.generator_url =
      "https://prometheus.wmcloud.org/graph?g0.expr=up%7Bjob%3D%22node%22%7D+%3D%3D+0&g0.tab=1";
  inc.last.fp = inc.fp;
  inc.owner = routing::ownership::owned;
  inc.routes = {"owned-page", "feed"};
  inc.paged = {{config::target_type::schedule, "oncall-primary", "erin"},
               {config::target_type::receiver, "cloud-feed", ""},
               {config::target_type::project, "tools", ""}};
  return inc;
}

store::change_set make_webhook(std::uint64_t id, const std::string& body) {
  store::change_set set;
  set.incidents.push_back(make_incident(id));
  for (int m = 0; m < kMessagesPerWebhook; ++m) {
    store::outbox_message msg;
    msg.id = "page-" + std::to_string(id) + "-" + std::to_string(m);
    msg.destination = "http://127.0.0.1:9000/hook/" + std::to_string(m);
    msg.url = msg.destination;
    msg.channel = "webhook";
    msg.body = body;
    msg.created_ms = 1'790'000'000'000 + static_cast<std::int64_t>(id);
    msg.next_attempt_ms = msg.created_ms;
    set.messages.push_back(std::move(msg));
  }
  return set;
}

// A notification body of the size the daemon renders for one alert (about 1.9 KB).
std::string notification_body() {
  std::string b = R"({"version":"1","id":"page-1-0","kind":"page","alerts":[)";
  while (b.size() < 1900) b += R"({"labels":{"alertname":"CloudVirtDown","instance":"x"}},)";
  b.back() = ']';
  b += '}';
  return b;
}

class scratch_dir {
 public:
  scratch_dir() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = fs::path(tmp != nullptr ? tmp : "/tmp") /
            ("alertrouter-store-bench." + std::to_string(::getpid()));
    fs::remove_all(path_);
  }
  ~scratch_dir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Commits groups of kGroup webhooks; each group's deliveries ride the next group's transaction
// (as the committer batches progress with the next change sets). Per iteration: one group.
void BM_CommitWebhooks(benchmark::State& state) {
  scratch_dir dir;
  auto store = store::open_sqlite_store(dir.path());
  const std::string body = notification_body();
  std::uint64_t next_id = 1;
  std::vector<store::progress_update> delivered;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<store::change_set> sets;
    sets.reserve(kGroup);
    for (int i = 0; i < kGroup; ++i) sets.push_back(make_webhook(next_id++, body));
    sets.front().progress = std::move(delivered);
    delivered.clear();
    state.ResumeTiming();

    store->commit(sets);

    state.PauseTiming();
    for (const store::change_set& set : sets) {
      for (const store::outbox_message& m : set.messages) {
        delivered.push_back(
            {store::progress_update::what::delivered, m.id, 1, m.created_ms + 5, {}});
      }
    }
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations() * kGroup);
  state.counters["webhooks_per_commit"] = kGroup;
  state.counters["cpu_per_webhook"] =
      benchmark::Counter(static_cast<double>(state.iterations() * kGroup),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["store_bytes"] = static_cast<double>(store->stats().file_bytes);
}
BENCHMARK(BM_CommitWebhooks)->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
