#pragma once

// Shared by the store tests: a scratch directory, sample incidents and messages, and a
// field-by-field incident comparison (routing::incident has no operator==).

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include "routing/incident.h"
#include "store/state_store.h"

namespace alertrouter::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed with its content by the destructor.
class scratch_dir {
 public:
  scratch_dir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/alertrouter-store-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  // Where the store lives (created by open_sqlite_store).
  std::filesystem::path state() const { return path_ / "state"; }

 private:
  std::filesystem::path path_;
};

inline constexpr routing::timestamp kT0 =
    routing::timestamp{date::sys_days{date::year{2026} / 3 / 1}};

inline std::int64_t ms(routing::timestamp t) {
  return std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
}

// An incident with every field set to something distinctive. `closed` closes it an hour later.
inline routing::incident make_incident(std::uint64_t id, std::uint64_t fp, bool closed) {
  using namespace std::chrono_literals;
  routing::incident inc;
  inc.id = id;
  inc.fp = routing::fingerprint{fp};
  inc.starts_at = kT0 + std::chrono::microseconds(123456) + std::chrono::minutes(id);
  inc.opened_at = inc.starts_at + 2s;
  if (closed) inc.closed_at = inc.opened_at + 1h;
  inc.last.status = closed ? routing::alert_status::resolved : routing::alert_status::firing;
  inc.last.labels = routing::label_set({{"alertname", "ToolsNFSDown"},
                                        {"project", "tools"},
                                        {"instance", "nfs-" + std::to_string(id)},
                                        {"ownership", "owned"},
                                        {"quote", "a \"b\" \\ c\n\xc3\xa9"}});
  inc.last.annotations =
      routing::label_set({{"summary", "NFS down"}, {"runbook", "https://wikitech/nfs"}});
  inc.last.starts_at = inc.starts_at;
  // Alertmanager's zero endsAt (year 1) while firing.
  inc.last.ends_at =
      closed ? *inc.closed_at : routing::timestamp{date::sys_days{date::year{1} / 1 / 1}};
  inc.last.generator_url = "http://prometheus:9090/graph?g0.expr=up%3D%3D0";
  inc.last.fp = routing::fingerprint{fp};
  inc.owner = routing::ownership::owned;
  inc.routes = {"owned-page", "feed"};
  inc.paged = {{config::target_type::schedule, "oncall-primary", "erin"},
               {config::target_type::receiver, "cloud-feed", ""}};
  return inc;
}

inline outbox_message make_message(
    std::string id, std::string destination,
    routing::notification_kind kind = routing::notification_kind::page) {
  outbox_message m;
  m.id = std::move(id);
  m.destination = std::move(destination);
  m.url = "http://127.0.0.1:9000/" + m.destination;
  m.channel = "webhook";
  m.kind = kind;
  m.body = R"({"version":"1","id":")" + m.id + R"("})";
  m.created_ms = ms(kT0);
  return m;
}

inline void expect_alert_eq(const routing::alert& a, const routing::alert& b) {
  EXPECT_EQ(a.status, b.status);
  EXPECT_TRUE(a.labels == b.labels);
  EXPECT_TRUE(a.annotations == b.annotations);
  EXPECT_EQ(a.starts_at, b.starts_at);
  EXPECT_EQ(a.ends_at, b.ends_at);
  EXPECT_EQ(a.generator_url, b.generator_url);
  EXPECT_EQ(a.fp, b.fp);
  EXPECT_EQ(a.details_omitted, b.details_omitted);
  EXPECT_EQ(a.labels_omitted, b.labels_omitted);
}

inline void expect_incident_eq(const routing::incident& a, const routing::incident& b) {
  SCOPED_TRACE("incident " + std::to_string(b.id));
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.fp, b.fp);
  EXPECT_EQ(a.starts_at, b.starts_at);
  EXPECT_EQ(a.opened_at, b.opened_at);
  EXPECT_EQ(a.closed_at, b.closed_at);
  expect_alert_eq(a.last, b.last);
  EXPECT_EQ(a.owner, b.owner);
  EXPECT_EQ(a.routes, b.routes);
  EXPECT_EQ(a.paged, b.paged);
}

}  // namespace alertrouter::store::testing
