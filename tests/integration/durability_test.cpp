// Durability end to end: the built daemon with its SQLite state store, killed and restarted for
// real, sending to a recording sink. What a 2xx promises (every page and resolve the body
// implies) must arrive, and no incident may be paged twice except a resend of the same
// notification (same Idempotency-Key) that was in flight at a kill.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <atomic>
#include <boost/json.hpp>
#include <cerrno>
#include <cstring>
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
  // The store's checkpoint counters are exported (nothing here is big enough to need one).
  EXPECT_EQ(daemon_->metric("alertrouter_state_wal_checkpoints_total"), 0.0);
  EXPECT_EQ(daemon_->metric("alertrouter_state_wal_checkpoint_failures_total"), 0.0);
  EXPECT_EQ(daemon_->metric("alertrouter_state_wal_forced_checkpoints_total"), 0.0);
}

// A receiver that is down: pages wait in the outbox (listed with their error), survive a
// SIGKILL, keep their ids, and arrive once it is back in the order they were accepted, the
// resolve sent meanwhile after its page, never before.
TEST_F(durability, receiver_down_then_back_gets_everything_in_order_across_a_sigkill) {
  sink_.fail_next(std::string(alice_path), 1000000, 503);
  const auto a = wmcs_alerts::cloudvirt_down("cloudvirt1041");
  ASSERT_EQ(post(encode_webhook({a})), 200u);
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
  EXPECT_GE(first.at("attempts").as_int64(), 1);
  const std::string page_id = json_string(first, "id");

  ASSERT_EQ(post(encode_webhook({wmcs_alerts::cloudvirt_down("cloudvirt1042")})), 200u);
  ASSERT_EQ(post(encode_webhook({wmcs_alerts::resolved(a)})), 200u);
  ASSERT_EQ(post(encode_webhook({wmcs_alerts::cloudvirt_down("cloudvirt1043")})), 200u);
  restart(SIGKILL);
  sink_.fail_next(std::string(alice_path), 0);  // the receiver is back
  const auto delivered = [this] {
    std::vector<seen> out;
    for (seen& s : seen_at(sink_, alice_path)) {
      if (s.answered == 200) out.push_back(std::move(s));
    }
    return out;
  };
  const auto until = std::chrono::steady_clock::now() + wait_limit;
  while (delivered().size() < 4 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(20ms);
  }
  const auto got = delivered();
  ASSERT_EQ(got.size(), 4u);
  const auto what = [](const seen& s) { return s.kind + ":" + s.hosts.at(0); };
  EXPECT_EQ(what(got[0]), "page:cloudvirt1041");
  EXPECT_EQ(got[0].id, page_id);  // the id it had before the kill
  EXPECT_EQ(what(got[1]), "page:cloudvirt1042");
  EXPECT_EQ(what(got[2]), "resolve:cloudvirt1041");
  EXPECT_EQ(what(got[3]), "page:cloudvirt1043");
  for (const seen& s : seen_at(sink_, alice_path)) {
    if (s.kind == "page" && s.hosts.at(0) == "cloudvirt1041") {
      EXPECT_EQ(s.id, page_id);  // every attempt, before and after
    }
  }
  const auto after = daemon_->get("/api/v1/outbox");
  ASSERT_TRUE(after);
  EXPECT_NE(after->body.find("\"pending\":0"), std::string::npos) << after->body;
}

// A receiver that refuses (400): the page is dead-lettered at once, counted, listed at
// /api/v1/outbox, still listed after a restart, and never sent again.
TEST_F(durability, a_refused_page_is_dead_lettered_listed_and_not_resent_after_restart) {
  sink_.fail_next(std::string(alice_path), 1, 400);
  ASSERT_EQ(post(encode_webhook({wmcs_alerts::cloudvirt_down("cloudvirt1044")})), 200u);
  ASSERT_TRUE(daemon_->wait_for_metric("alertrouter_outbox_dead", {}, 1, wait_limit));
  EXPECT_EQ(daemon_->metric("alertrouter_notifications_total",
                            {{"kind", "page"}, {"result", "rejected"}}),
            1);
  restart(SIGTERM);
  const auto listed = daemon_->get("/api/v1/outbox");
  ASSERT_TRUE(listed);
  const json::value v = json::parse(listed->body);
  EXPECT_EQ(v.at("pending").as_int64(), 0);
  EXPECT_EQ(v.at("dead").as_int64(), 1);
  const auto& dead = v.at("notifications").at(0);
  EXPECT_EQ(json_string(dead, "state"), "dead");
  EXPECT_EQ(json_string(dead, "last_error").rfind("HTTP 400", 0), 0u)
      << json_string(dead, "last_error");
  EXPECT_EQ(dead.at("attempts").as_int64(), 1);
  // A later page goes out; the dead one does not come back with it.
  ASSERT_EQ(post(encode_webhook({wmcs_alerts::cloudvirt_down("cloudvirt1045")})), 200u);
  // Same URL, so a resend of the dead one would have arrived before it.
  ASSERT_TRUE(sink_.wait_for_count(alice_path, 2, wait_limit));
  const auto all = seen_at(sink_, alice_path);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[1].hosts.at(0), "cloudvirt1045");
}

// The crash test: four senders keep webhooks coming (new incidents, and resolves of
// acknowledged ones), so commits are grouped, while the daemon is SIGKILLed at random moments,
// 20 times, and restarted. A body whose POST got no answer is sent again until answered 200, as
// Alertmanager retries. At the end every page and resolve a 200 promised has arrived, each
// incident was paged under exactly one id and resolved under exactly one, page before resolve.
TEST_F(durability, sigkill_at_random_moments_loses_nothing_and_never_pages_twice) {
  constexpr int kills = 20;
  constexpr int senders = 4;
  std::mt19937 rng(20261126);
  std::uniform_int_distribution<int> delay_us(0, 80000);

  // One sender's view. Hosts are per sender ("s<N>-<k>"), so senders never share an incident.
  struct sender_state {
    std::vector<std::string> firing;  // hosts whose firing body got 200 (or is being retried)
    std::set<std::string> resolved;   // hosts whose resolve got 200 (or is being retried)
    std::map<std::string, posted_alert> alerts;
    int next_host = 0;
    std::string unanswered;  // the body to send again after the restart
    std::size_t ok = 0;
    std::string failure;  // an answer other than 200 or none
  };
  std::vector<sender_state> state(senders);

  // Posts until a POST gets no answer (the kill) or, when `count` > 0, `count` bodies.
  const auto run_sender = [this](sender_state& st, int index, int count) {
    for (int i = 0; count == 0 || i < count; ++i) {
      std::string host;
      std::string body;
      const bool resolving = st.firing.size() > st.resolved.size() + 3 && i % 3 == 2;
      if (resolving) {
        for (const auto& h : st.firing) {
          if (!st.resolved.count(h)) {
            host = h;
            break;
          }
        }
        body = encode_webhook({wmcs_alerts::resolved(st.alerts.at(host))});
      } else {
        host = "s" + std::to_string(index) + "-" + std::to_string(st.next_host++);
        st.alerts.emplace(host, wmcs_alerts::cloudvirt_down(host));
        body = encode_webhook({st.alerts.at(host)});
      }
      // Recorded before the answer: a body without one is retried until it gets 200.
      if (resolving) {
        st.resolved.insert(host);
      } else {
        st.firing.push_back(host);
      }
      const auto r = daemon_->post_webhook(body);
      if (r && r->status == 200) {
        ++st.ok;
        continue;
      }
      if (r) {
        st.failure = "answered " + std::to_string(r->status) + ": " + r->body;
        return;
      }
      st.unanswered = std::move(body);  // the daemon died under this request
      return;
    }
  };

  for (int round = 0; round <= kills; ++round) {
    const bool last = round == kills;
    std::vector<std::thread> threads;
    for (int i = 0; i < senders; ++i) {
      threads.emplace_back(run_sender, std::ref(state[static_cast<std::size_t>(i)]), i,
                           last ? 10 : 0);
    }
    if (!last) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
      daemon_->process().signal(SIGKILL);
    }
    for (auto& t : threads) t.join();
    for (const auto& st : state) ASSERT_TRUE(st.failure.empty()) << st.failure;
    if (last) break;
    ASSERT_TRUE(daemon_->process().wait_exit(10s).has_value());
    daemon_ = std::make_unique<alertrouterd_process>(ALERTROUTERD_PATH, config_path(), dir_.path());
    for (auto& st : state) {
      if (st.unanswered.empty()) continue;
      ASSERT_EQ(post(st.unanswered), 200u) << "a retried body was refused after the restart";
      st.unanswered.clear();
    }
  }
  std::vector<std::string> acknowledged_firing;
  std::set<std::string> resolved_hosts;
  std::size_t posted_ok = 0;
  for (const auto& st : state) {
    acknowledged_firing.insert(acknowledged_firing.end(), st.firing.begin(), st.firing.end());
    resolved_hosts.insert(st.resolved.begin(), st.resolved.end());
    posted_ok += st.ok;
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
  // Exported, whether or not anything was dropped or failed in this run.
  EXPECT_TRUE(daemon_->metric("alertrouter_state_progress_dropped_total").has_value());
  EXPECT_TRUE(daemon_->metric("alertrouter_state_task_failures_total").has_value());

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
