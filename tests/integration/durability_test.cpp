// Durability end to end: the built daemon with its SQLite state store, killed and restarted for
// real, sending to a recording sink. What a 2xx promises (every page and resolve the body
// implies) must arrive, and no incident may be paged twice except a resend of the same
// notification (same Idempotency-Key) that was in flight at a kill.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <boost/json.hpp>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/router_fixture.h"
#include "tests/integration/webhook_payload.h"
#include "tests/integration/wmcs_alerts.h"

namespace alertrouter::integration {
namespace {

namespace json = boost::json;

// One notification as the sink saw it.
struct seen {
  std::string id;
  std::string kind;
  std::vector<std::string> hosts;  // the `instance` label of each alert
  unsigned answered;
};

std::vector<seen> seen_at(const recording_sink& sink, std::string_view path) {
  std::vector<seen> out;
  for (const recorded_request& r : sink.requests_to(path)) {
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    if (ec) continue;
    seen s;
    s.id = json_string(v, "id");
    s.kind = json_string(v, "kind");
    s.answered = r.answered;
    for (const auto& a : v.at("alerts").as_array()) {
      s.hosts.push_back(json_string(a.at("labels"), "instance"));
    }
    out.push_back(std::move(s));
  }
  return out;
}

class durability : public router_fixture {
 protected:
  void restart(int sig) {
    daemon_->process().signal(sig);
    ASSERT_TRUE(daemon_->process().wait_exit(10s).has_value()) << "daemon did not exit";
    daemon_ = std::make_unique<alertrouterd_process>(ALERTROUTERD_PATH, config_path(), dir_.path());
  }

  // Posts `body` until the daemon answers 200; restarts it after a kill meanwhile.
  unsigned post(const std::string& body) {
    const auto r = daemon_->post_webhook(body);
    return r ? r->status : 0u;
  }
};

// A restart (SIGTERM, or SIGKILL) keeps the dedup state: repeats stay duplicates, and the
// resolve goes to whoever was paged before it, although the on-call person changed meanwhile.
TEST_F(durability, restart_keeps_dedup_and_resolves_to_whoever_was_paged) {
  const auto alert = wmcs_alerts::cloudvirt_down("cloudvirt1040");
  ASSERT_EQ(post(encode_webhook({alert})), 200u);
  ASSERT_TRUE(sink_.wait_for_count(alice_path, 1, wait_limit));

  write_config(router_config_yaml(sink_, "bob"));  // a handoff while it was down
  restart(SIGKILL);
  const auto again = daemon_->post_webhook(encode_webhook({alert}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 200u);
  EXPECT_NE(again->body.find("\"duplicates\":1"), std::string::npos) << again->body;

  restart(SIGTERM);
  ASSERT_EQ(post(encode_webhook({wmcs_alerts::resolved(alert)})), 200u);
  ASSERT_TRUE(sink_.wait_for(
      [](const std::vector<recorded_request>& all) {
        return !all.empty() && all.back().body.find("\"kind\":\"resolve\"") != std::string::npos;
      },
      wait_limit));
  const auto alice = seen_at(sink_, alice_path);
  ASSERT_GE(alice.size(), 2u);
  // The page may have been sent again after the SIGKILL (its delivery was perhaps not yet on
  // disk), but only under its own id.
  for (std::size_t i = 0; i + 1 < alice.size(); ++i) {
    EXPECT_EQ(alice[i].kind, "page");
    EXPECT_EQ(alice[i].id, alice[0].id);
  }
  EXPECT_EQ(alice.back().kind, "resolve");
  EXPECT_TRUE(sink_.requests_to(bob_path).empty());
}

// A receiver that is down: the page waits in the outbox (listed with its error), survives a
// SIGKILL, keeps its id, and the resolve sent meanwhile arrives after it, never before.
TEST_F(durability, pending_page_survives_sigkill_and_arrives_before_its_resolve) {
  sink_.fail_next(std::string(alice_path), 1000000, 503);
  const auto alert = wmcs_alerts::cloudvirt_down("cloudvirt1041");
  ASSERT_EQ(post(encode_webhook({alert})), 200u);
  ASSERT_TRUE(sink_.wait_for_count(alice_path, 2, wait_limit));  // first try and a retry

  const auto outbox = daemon_->get("/api/v1/outbox");
  ASSERT_TRUE(outbox);
  ASSERT_EQ(outbox->status, 200u);
  const json::value listed = json::parse(outbox->body);
  EXPECT_EQ(listed.at("pending").as_int64(), 1);
  const auto& first = listed.at("notifications").at(0);
  EXPECT_EQ(json_string(first, "state"), "pending");
  EXPECT_EQ(json_string(first, "last_error"), "HTTP 503");
  EXPECT_EQ(json_string(first, "destination"), "127.0.0.1:" + std::to_string(sink_.port()));
  const std::string page_id = json_string(first, "id");

  ASSERT_EQ(post(encode_webhook({wmcs_alerts::resolved(alert)})), 200u);
  restart(SIGKILL);
  sink_.fail_next(std::string(alice_path), 0);  // the receiver is back
  ASSERT_TRUE(sink_.wait_for(
      [](const std::vector<recorded_request>& all) {
        std::size_t ok = 0;
        for (const auto& r : all) ok += r.answered == 200 ? 1u : 0u;
        return ok >= 2;
      },
      wait_limit));
  std::vector<seen> delivered;
  for (seen& s : seen_at(sink_, alice_path)) {
    if (s.answered == 200) delivered.push_back(std::move(s));
  }
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_EQ(delivered[0].kind, "page");
  EXPECT_EQ(delivered[0].id, page_id);  // the id it had before the kill
  EXPECT_EQ(delivered[1].kind, "resolve");
  for (const seen& s : seen_at(sink_, alice_path)) {
    if (s.kind == "page") {
      EXPECT_EQ(s.id, page_id);  // every attempt, before and after
    }
  }
}

// The crash test: webhooks keep coming (new incidents, and resolves of acknowledged
// ones) while the daemon is SIGKILLed at random moments, 20 times, and restarted. A body whose
// POST failed is sent again until answered 200, as Alertmanager retries. At the end every page
// and resolve a 200 promised has arrived, each incident was paged under exactly one id, and
// resolved under exactly one.
TEST_F(durability, sigkill_at_random_moments_loses_nothing_and_never_pages_twice) {
  constexpr int kills = 20;
  std::mt19937 rng(20261126);
  std::uniform_int_distribution<int> delay_us(0, 60000);
  std::vector<std::string> acknowledged_firing;  // hosts whose firing body got 200
  std::set<std::string> resolved_hosts;
  std::map<std::string, posted_alert> alerts;
  int next_host = 0;
  std::size_t posted_ok = 0;

  for (int round = 0; round <= kills; ++round) {
    std::atomic<bool> killed{false};
    std::thread killer;
    if (round < kills) {
      const pid_t pid = daemon_->process().pid();
      const int wait = delay_us(rng);
      killer = std::thread([pid, wait, &killed] {
        std::this_thread::sleep_for(std::chrono::microseconds(wait));
        ::kill(pid, SIGKILL);
        killed = true;
      });
    }
    // Post until the kill lands (or, in the last round, a fixed number of bodies).
    std::string unanswered;
    for (int i = 0; round == kills ? i < 20 : !killed.load() || unanswered.empty(); ++i) {
      std::string body;
      std::string host;
      bool resolving = false;
      if (acknowledged_firing.size() > resolved_hosts.size() + 3 && i % 3 == 2) {
        for (const auto& h : acknowledged_firing) {
          if (!resolved_hosts.count(h)) {
            host = h;
            break;
          }
        }
        resolving = true;
        body = encode_webhook({wmcs_alerts::resolved(alerts.at(host))});
      } else {
        host = "cloudvirt" + std::to_string(2000 + next_host++);
        alerts.emplace(host, wmcs_alerts::cloudvirt_down(host));
        body = encode_webhook({alerts.at(host)});
      }
      const unsigned status = post(body);
      if (status == 200) {
        ++posted_ok;
        if (resolving) {
          resolved_hosts.insert(host);
        } else {
          acknowledged_firing.push_back(host);
        }
        continue;
      }
      // No answer: the daemon died under this request. It is sent again after the restart.
      ASSERT_EQ(status, 0u) << "an answer other than 200 under load";
      unanswered = body;
      if (resolving) {
        resolved_hosts.insert(host);
      } else {
        acknowledged_firing.push_back(host);
      }
      break;
    }
    if (killer.joinable()) killer.join();
    if (round == kills) break;
    ASSERT_TRUE(daemon_->process().wait_exit(10s).has_value());
    daemon_ = std::make_unique<alertrouterd_process>(ALERTROUTERD_PATH, config_path(), dir_.path());
    if (!unanswered.empty()) {
      ASSERT_EQ(post(unanswered), 200u) << "a retried body was refused after the restart";
    }
  }
  ASSERT_GE(posted_ok, static_cast<std::size_t>(kills));

  // Everything promised arrives: one page per host, one resolve per resolved host.
  const std::size_t expected = acknowledged_firing.size() + resolved_hosts.size();
  const auto distinct = [this](std::string_view kind) {
    std::set<std::string> ids;
    for (const seen& s : seen_at(sink_, alice_path)) {
      if (s.kind == kind) ids.insert(s.id);
    }
    return ids.size();
  };
  const auto until = std::chrono::steady_clock::now() + wait_limit;
  while (distinct("page") + distinct("resolve") < expected &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  std::map<std::string, std::set<std::string>> page_ids;
  std::map<std::string, std::set<std::string>> resolve_ids;
  std::map<std::string, std::size_t> first_page_at;
  std::map<std::string, std::size_t> first_resolve_at;
  const auto all = seen_at(sink_, alice_path);
  for (std::size_t i = 0; i < all.size(); ++i) {
    for (const std::string& h : all[i].hosts) {
      if (all[i].kind == "page") {
        page_ids[h].insert(all[i].id);
        first_page_at.try_emplace(h, i);
      } else {
        resolve_ids[h].insert(all[i].id);
        first_resolve_at.try_emplace(h, i);
      }
    }
  }
  for (const std::string& h : acknowledged_firing) {
    EXPECT_EQ(page_ids[h].size(), 1u) << h << " paged under " << page_ids[h].size() << " ids";
  }
  for (const std::string& h : resolved_hosts) {
    EXPECT_EQ(resolve_ids[h].size(), 1u) << h << " resolved " << resolve_ids[h].size() << " times";
    ASSERT_TRUE(first_page_at.count(h)) << h;
    ASSERT_TRUE(first_resolve_at.count(h)) << h;
    EXPECT_LT(first_page_at[h], first_resolve_at[h]) << h << ": resolve before its page";
  }
  EXPECT_EQ(page_ids.size(), acknowledged_firing.size());  // and nothing else was paged
  EXPECT_TRUE(sink_.requests_to(bob_path).empty());
}

// The store's disk fills up (a 2 MiB tmpfs, filled by another file): webhooks that cannot be
// recorded get 503, never 200; once space returns the daemon recovers by itself, and every body
// it answered 200 (before and after) is paged. Needs root to mount the tmpfs.
TEST_F(durability, full_disk_answers_503_loses_nothing_and_recovers) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root";
  const std::filesystem::path mnt = dir_.path() / "small-disk";
  std::filesystem::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=2m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
  }
  struct unmount {
    std::filesystem::path p;
    ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } cleanup{mnt};
  daemon_->process().terminate();
  daemon_ = std::make_unique<alertrouterd_process>(ALERTROUTERD_PATH, config_path(), dir_.path(),
                                                   "alertrouterd", mnt / "state");
  int host = 3000;
  std::vector<std::string> accepted;
  const auto send_new = [&] {
    const std::string h = "cloudvirt" + std::to_string(host++);
    const unsigned status = post(encode_webhook({wmcs_alerts::cloudvirt_down(h)}));
    if (status == 200) accepted.push_back(h);
    return status;
  };
  ASSERT_EQ(send_new(), 200u);

  // Fill the disk.
  {
    std::ofstream filler(mnt / "filler", std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (filler.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  unsigned refused = 0;
  for (int i = 0; i < 200 && refused < 5; ++i) {
    const unsigned status = send_new();
    ASSERT_TRUE(status == 200 || status == 503) << status;
    refused += status == 503 ? 1u : 0u;
  }
  ASSERT_GE(refused, 5u) << "a full disk never refused a webhook";
  EXPECT_GE(daemon_->metric("alertrouter_state_commit_failures_total").value_or(0), 1);

  std::filesystem::remove(mnt / "filler");
  bool recovered = false;
  for (int i = 0; i < 200 && !recovered; ++i) {
    recovered = send_new() == 200;
    if (!recovered) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(recovered) << "no webhook accepted after space returned";

  // Every accepted body pages, exactly once.
  ASSERT_TRUE(sink_.wait_for(
      [&](const std::vector<recorded_request>& all) { return all.size() >= accepted.size(); },
      wait_limit));
  std::map<std::string, std::size_t> pages;
  for (const seen& s : seen_at(sink_, alice_path)) {
    for (const std::string& h : s.hosts) ++pages[h];
  }
  for (const std::string& h : accepted) EXPECT_EQ(pages[h], 1u) << h;
  EXPECT_EQ(pages.size(), accepted.size());
}

}  // namespace
}  // namespace alertrouter::integration
