#include "routing/incident.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

// Counts heap allocations so a test can check the hot path (a duplicate) makes none.
namespace {
std::size_t g_allocations = 0;
}
void* operator new(std::size_t n) {
  ++g_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// gcc pairs the inlined free() with the `new` expression and warns; the pairing is correct.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace alertrouter::routing {
namespace {

using namespace std::chrono_literals;

// Fake time: instants are built directly, nothing reads a clock.
constexpr timestamp t0 = timestamp{date::sys_days{date::year{2026} / 1 / 7}};

alert make_alert(std::uint64_t fp, alert_status status, timestamp starts_at) {
  alert a;
  a.status = status;
  a.labels =
      label_set({{"alertname", "InstanceDown"}, {"instance", "cloudvirt" + std::to_string(fp)}});
  a.starts_at = starts_at;
  a.fp = fingerprint{fp};
  return a;
}
alert firing(std::uint64_t fp, timestamp starts_at) {
  return make_alert(fp, alert_status::firing, starts_at);
}
alert resolved(std::uint64_t fp, timestamp starts_at) {
  return make_alert(fp, alert_status::resolved, starts_at);
}

class incident_table_test : public ::testing::Test {
 protected:
  memory_incident_table table_{24h, 1000};

  observation observe(const alert& a, timestamp now) {
    return table_.observe(a, ownership::owned, now).what;
  }
};

TEST_F(incident_table_test, first_firing_opens_an_incident) {
  auto r = table_.observe(firing(1, t0), ownership::owned, t0 + 5s);
  ASSERT_EQ(r.what, observation::opened);
  ASSERT_NE(r.subject, nullptr);
  EXPECT_EQ(r.subject->fp, fingerprint{1});
  EXPECT_EQ(r.subject->starts_at, t0);
  EXPECT_EQ(r.subject->opened_at, t0 + 5s);
  EXPECT_TRUE(r.subject->open());
  EXPECT_EQ(r.subject->owner, ownership::owned);
  EXPECT_EQ(r.subject->last.labels.get("instance"), "cloudvirt1");
  EXPECT_EQ(table_.find(fingerprint{1}), r.subject);
  EXPECT_EQ(table_.open_count(), 1u);
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(incident_table_test, repeat_while_open_is_a_duplicate_of_the_same_incident) {
  auto first = table_.observe(firing(1, t0), ownership::owned, t0);
  const std::uint64_t id = first.subject->id;
  for (int i = 1; i <= 3; ++i) {
    auto r = table_.observe(firing(1, t0), ownership::owned, t0 + i * 5min);
    EXPECT_EQ(r.what, observation::duplicate);
    ASSERT_NE(r.subject, nullptr);
    EXPECT_EQ(r.subject->id, id);
    EXPECT_EQ(r.subject->opened_at, t0);  // a resend does not restart the incident
  }
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.open_count(), 1u);
}

TEST_F(incident_table_test, a_later_occurrence_replaces_an_open_incident_whose_resolve_was_lost) {
  const std::uint64_t old_id = table_.observe(firing(1, t0), ownership::owned, t0).subject->id;
  // The resolve never arrived; a day later Alertmanager sends a new occurrence (new startsAt).
  auto r = table_.observe(firing(1, t0 + 24h), ownership::owned, t0 + 24h + 1min);
  EXPECT_EQ(r.what, observation::reopened);
  ASSERT_NE(r.subject, nullptr);
  EXPECT_NE(r.subject->id, old_id);
  EXPECT_EQ(r.subject->starts_at, t0 + 24h);
  EXPECT_EQ(r.subject->opened_at, t0 + 24h + 1min);
  EXPECT_TRUE(r.subject->open());
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.open_count(), 1u);
  // Its resends are duplicates again, and an older copy of the first occurrence changes nothing.
  EXPECT_EQ(observe(firing(1, t0 + 24h), t0 + 25h), observation::duplicate);
  EXPECT_EQ(observe(firing(1, t0), t0 + 25h), observation::duplicate);
  EXPECT_EQ(table_.find(fingerprint{1})->starts_at, t0 + 24h);
}

TEST_F(incident_table_test, a_duplicate_does_not_allocate) {
  const alert a = firing(1, t0);
  observe(a, t0);
  const std::size_t before = g_allocations;
  for (int i = 0; i < 100; ++i) observe(a, t0 + std::chrono::seconds(i));
  EXPECT_EQ(g_allocations, before);
  EXPECT_EQ(observe(a, t0 + 1h), observation::duplicate);
}

TEST_F(incident_table_test, two_peers_sending_the_same_group_interleaved) {
  // Two Alertmanager peers each send the same two alerts; the second copy of each is a duplicate.
  const std::vector<std::pair<std::uint64_t, observation>> sequence = {
      {1, observation::opened},    {2, observation::opened},     // peer A
      {1, observation::duplicate}, {2, observation::duplicate},  // peer B
      {1, observation::duplicate}, {2, observation::duplicate},  // peer A resend
  };
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    EXPECT_EQ(observe(firing(sequence[i].first, t0), t0 + std::chrono::seconds(i)),
              sequence[i].second)
        << "step " << i;
  }
  EXPECT_EQ(table_.size(), 2u);
  EXPECT_EQ(table_.open_count(), 2u);
}

TEST_F(incident_table_test, resolve_closes_and_a_repeat_resolve_is_a_duplicate) {
  const std::uint64_t id = table_.observe(firing(1, t0), ownership::owned, t0).subject->id;
  auto r = table_.observe(resolved(1, t0), ownership::owned, t0 + 10min);
  ASSERT_EQ(r.what, observation::closed);
  ASSERT_NE(r.subject, nullptr);
  EXPECT_EQ(r.subject->id, id);
  ASSERT_TRUE(r.subject->closed_at.has_value());
  EXPECT_EQ(*r.subject->closed_at, t0 + 10min);
  EXPECT_EQ(r.subject->last.status, alert_status::resolved);
  EXPECT_EQ(table_.open_count(), 0u);
  EXPECT_EQ(table_.size(), 1u);

  auto again = table_.observe(resolved(1, t0), ownership::owned, t0 + 11min);
  EXPECT_EQ(again.what, observation::duplicate);
  ASSERT_NE(again.subject, nullptr);
  EXPECT_EQ(*again.subject->closed_at, t0 + 10min);  // the first resolve counts
}

TEST_F(incident_table_test, refire_with_later_start_opens_a_new_incident) {
  const std::uint64_t first = table_.observe(firing(1, t0), ownership::owned, t0).subject->id;
  observe(resolved(1, t0), t0 + 10min);
  table_.record_paged(first, {"owned-page"}, {{config::target_type::receiver, "feed", ""}});

  auto r = table_.observe(firing(1, t0 + 1h), ownership::user, t0 + 1h);
  ASSERT_EQ(r.what, observation::opened);
  EXPECT_GT(r.subject->id, first);
  EXPECT_TRUE(r.subject->open());
  EXPECT_EQ(r.subject->starts_at, t0 + 1h);
  EXPECT_EQ(r.subject->owner, ownership::user);
  EXPECT_TRUE(r.subject->routes.empty());  // nothing carried over from the closed incident
  EXPECT_TRUE(r.subject->paged.empty());
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(table_.open_count(), 1u);
}

TEST_F(incident_table_test, stale_and_out_of_order_messages_change_nothing) {
  struct step {
    const char* what;
    alert a;
    observation expected;
  };
  // Open at t0+1h, closed, then late copies arrive.
  ASSERT_EQ(observe(firing(1, t0 + 1h), t0 + 1h), observation::opened);
  ASSERT_EQ(observe(resolved(1, t0 + 1h), t0 + 2h), observation::closed);
  const incident before = *table_.find(fingerprint{1});
  const std::vector<step> steps = {
      {"firing copy of the closed incident", firing(1, t0 + 1h), observation::stale},
      {"firing older than the closed incident", firing(1, t0), observation::stale},
      {"resolve of an even older occurrence", resolved(1, t0), observation::stale},
  };
  for (const step& s : steps) {
    EXPECT_EQ(observe(s.a, t0 + 3h), s.expected) << s.what;
    const incident* now = table_.find(fingerprint{1});
    ASSERT_NE(now, nullptr);
    EXPECT_EQ(now->id, before.id) << s.what;
    EXPECT_EQ(now->closed_at, before.closed_at) << s.what;
    EXPECT_EQ(now->starts_at, before.starts_at) << s.what;
  }
  EXPECT_EQ(table_.open_count(), 0u);
}

TEST_F(incident_table_test, resolve_older_than_the_open_incident_is_stale) {
  // Re-fired at t0+1h; the resolve of the earlier occurrence (startsAt t0) arrives late.
  ASSERT_EQ(observe(firing(1, t0 + 1h), t0 + 1h), observation::opened);
  auto r = table_.observe(resolved(1, t0), ownership::owned, t0 + 1h + 1s);
  EXPECT_EQ(r.what, observation::stale);
  ASSERT_NE(r.subject, nullptr);
  EXPECT_TRUE(r.subject->open());
  EXPECT_EQ(table_.open_count(), 1u);
}

TEST_F(incident_table_test, resolve_for_an_unknown_fingerprint_changes_nothing) {
  observe(firing(1, t0), t0);
  auto r = table_.observe(resolved(2, t0), ownership::owned, t0 + 1s);
  EXPECT_EQ(r.what, observation::unknown_resolve);
  EXPECT_EQ(r.subject, nullptr);
  EXPECT_EQ(table_.find(fingerprint{2}), nullptr);
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(incident_table_test, resolve_of_an_occurrence_never_seen_firing_is_unknown) {
  observe(firing(1, t0), t0);
  observe(resolved(1, t0), t0 + 1min);
  // Fired again at t0+1h and resolved before we saw the firing.
  EXPECT_EQ(observe(resolved(1, t0 + 1h), t0 + 2h), observation::unknown_resolve);
  EXPECT_EQ(*table_.find(fingerprint{1})->closed_at, t0 + 1min);
}

TEST_F(incident_table_test, record_paged_is_kept_until_close) {
  const std::uint64_t id = table_.observe(firing(1, t0), ownership::owned, t0).subject->id;
  const std::vector<paged_target> paged = {
      {config::target_type::schedule, "oncall", "alice"},
      {config::target_type::receiver, "cloud-feed", ""},
  };
  table_.record_paged(id, {"owned-page"}, paged);
  table_.record_paged(id + 100, {"nope"}, {});  // unknown id: ignored
  auto r = table_.observe(resolved(1, t0), ownership::owned, t0 + 1min);
  ASSERT_EQ(r.what, observation::closed);
  EXPECT_EQ(r.subject->routes, std::vector<std::string>{"owned-page"});
  EXPECT_EQ(r.subject->paged, paged);
}

TEST(incident_table_retention, expire_drops_incidents_closed_before_the_retention) {
  memory_incident_table table(1h, 100);
  table.observe(firing(1, t0), ownership::owned, t0);
  table.observe(firing(2, t0), ownership::owned, t0);
  table.observe(firing(3, t0), ownership::owned, t0);  // stays open
  table.observe(resolved(1, t0), ownership::owned, t0 + 10min);
  table.observe(resolved(2, t0), ownership::owned, t0 + 30min);

  EXPECT_EQ(table.expire(t0 + 10min + 1h), 0u);  // exactly at the retention: kept
  EXPECT_EQ(table.expire(t0 + 11min + 1h), 1u);
  EXPECT_EQ(table.find(fingerprint{1}), nullptr);
  EXPECT_NE(table.find(fingerprint{2}), nullptr);
  EXPECT_EQ(table.expire(t0 + 100h), 1u);  // open incidents never expire
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.open_count(), 1u);
  EXPECT_NE(table.find(fingerprint{3}), nullptr);
  // After expiry a late resolve is unknown, and a firing opens a fresh incident.
  EXPECT_EQ(table.observe(resolved(1, t0), ownership::owned, t0 + 100h).what,
            observation::unknown_resolve);
  EXPECT_EQ(table.observe(firing(1, t0), ownership::owned, t0 + 100h).what, observation::opened);
}

TEST(incident_table_eviction, evicts_oldest_closed_first_then_oldest_open) {
  memory_incident_table table(24h, 3);
  table.observe(firing(1, t0), ownership::owned, t0);
  table.observe(firing(2, t0), ownership::owned, t0 + 1s);
  table.observe(firing(3, t0), ownership::owned, t0 + 2s);
  // Close 3 before 2: the oldest *closed* is 3, though 2 was opened first.
  table.observe(resolved(3, t0), ownership::owned, t0 + 10s);
  table.observe(resolved(2, t0), ownership::owned, t0 + 20s);

  table.observe(firing(4, t0), ownership::owned, t0 + 30s);
  EXPECT_EQ(table.evictions(), 1u);
  EXPECT_EQ(table.find(fingerprint{3}), nullptr);
  EXPECT_NE(table.find(fingerprint{2}), nullptr);

  table.observe(firing(5, t0), ownership::owned, t0 + 40s);
  EXPECT_EQ(table.evictions(), 2u);
  EXPECT_EQ(table.find(fingerprint{2}), nullptr);

  // Only open ones left (1, 4, 5): the oldest open goes.
  table.observe(firing(6, t0), ownership::owned, t0 + 50s);
  EXPECT_EQ(table.evictions(), 3u);
  EXPECT_EQ(table.find(fingerprint{1}), nullptr);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.open_count(), 3u);

  std::vector<std::uint64_t> open;
  table.for_each_open([&](const incident& i) { open.push_back(i.fp.value); });
  EXPECT_EQ(open, (std::vector<std::uint64_t>{4, 5, 6}));

  // Duplicates and resolves of known fingerprints never evict.
  table.observe(firing(4, t0), ownership::owned, t0 + 60s);
  table.observe(resolved(5, t0), ownership::owned, t0 + 60s);
  EXPECT_EQ(table.evictions(), 3u);
  EXPECT_EQ(table.size(), 3u);
}

TEST(incident_table_eviction, close_order_follows_close_time_even_if_now_goes_backwards) {
  memory_incident_table table(1h, 10);
  table.observe(firing(1, t0), ownership::owned, t0);
  table.observe(firing(2, t0), ownership::owned, t0);
  table.observe(resolved(1, t0), ownership::owned, t0 + 20min);
  table.observe(resolved(2, t0), ownership::owned, t0 + 10min);  // the caller's clock stepped back
  // Expiry walks in close-time order, so 2 (closed earlier) goes first.
  EXPECT_EQ(table.expire(t0 + 1h + 15min), 1u);
  EXPECT_EQ(table.find(fingerprint{2}), nullptr);
  EXPECT_NE(table.find(fingerprint{1}), nullptr);
}

TEST(incident_table_ids, ids_increase_across_fingerprints_and_refires) {
  memory_incident_table table(24h, 10);
  std::vector<std::uint64_t> ids;
  ids.push_back(table.observe(firing(1, t0), ownership::owned, t0).subject->id);
  ids.push_back(table.observe(firing(2, t0), ownership::owned, t0).subject->id);
  table.observe(resolved(1, t0), ownership::owned, t0 + 1min);
  ids.push_back(table.observe(firing(1, t0 + 2min), ownership::owned, t0 + 2min).subject->id);
  EXPECT_LT(ids[0], ids[1]);
  EXPECT_LT(ids[1], ids[2]);
}

// Recovery: a second table rebuilt from copies of the first's incidents behaves like the first.
TEST(incident_table_restore, a_restored_table_dedups_resolves_and_continues_ids) {
  memory_incident_table before(24h, 100);
  ASSERT_EQ(before.observe(firing(1, t0), ownership::owned, t0).what, observation::opened);
  ASSERT_EQ(before.observe(firing(2, t0), ownership::user, t0 + 1s).what, observation::opened);
  ASSERT_EQ(before.observe(resolved(2, t0), ownership::user, t0 + 2s).what, observation::closed);
  const std::uint64_t id1 = before.find(fingerprint{1})->id;
  before.record_paged(id1, {"owned-page"}, {{config::target_type::schedule, "oncall", "alice"}});

  memory_incident_table after(24h, 100);
  // Restored out of id order on purpose: the lists still come out ordered.
  after.restore(*before.find(fingerprint{2}));
  after.restore(*before.find(fingerprint{1}));
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(after.open_count(), 1u);
  const incident* one = after.find(fingerprint{1});
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one->id, id1);
  EXPECT_EQ(one->owner, ownership::owned);
  ASSERT_EQ(one->paged.size(), 1u);
  EXPECT_EQ(one->paged[0].person, "alice");
  EXPECT_EQ(one->routes, std::vector<std::string>{"owned-page"});

  EXPECT_EQ(after.observe(firing(1, t0), ownership::owned, t0 + 3s).what, observation::duplicate);
  EXPECT_EQ(after.observe(resolved(2, t0), ownership::user, t0 + 3s).what, observation::duplicate);
  const auto r = after.observe(resolved(1, t0), ownership::owned, t0 + 4s);
  EXPECT_EQ(r.what, observation::closed);
  ASSERT_NE(r.subject, nullptr);
  EXPECT_EQ(r.subject->paged[0].person, "alice");  // the resolve goes to whoever was paged
  // New ids continue after the largest restored one.
  const auto fresh = after.observe(firing(3, t0), ownership::owned, t0 + 5s);
  EXPECT_GT(fresh.subject->id, before.find(fingerprint{2})->id);
  // Expiry follows the restored close times.
  EXPECT_EQ(after.expire(t0 + 2s + 24h + 1s), 1u);  // only fp 2 closed early enough
  EXPECT_EQ(after.find(fingerprint{2}), nullptr);
}

TEST(incident_table_restore, replaces_by_fingerprint_evicts_when_full_and_clear_keeps_ids) {
  memory_incident_table t(24h, 2);
  incident a;
  a.id = 10;
  a.fp = fingerprint{1};
  a.last = firing(1, t0);
  a.starts_at = t0;
  t.restore(a);
  a.id = 11;  // a newer incident of the same fingerprint replaces the first
  a.starts_at = t0 + 1min;
  t.restore(a);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find(fingerprint{1})->id, 11u);
  incident b = a;
  b.id = 12;
  b.fp = fingerprint{2};
  t.restore(b);
  incident c = a;
  c.id = 13;
  c.fp = fingerprint{3};
  t.restore(c);  // full: the oldest open (id 11) goes
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.find(fingerprint{1}), nullptr);
  EXPECT_EQ(t.evictions(), 1u);
  t.clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.open_count(), 0u);
  EXPECT_EQ(t.find(fingerprint{2}), nullptr);
  const auto r = t.observe(firing(4, t0), ownership::owned, t0);
  EXPECT_EQ(r.subject->id, 14u);  // ids are never reused
  t.reserve_ids(100);             // ids of incidents a store pruned
  t.reserve_ids(50);              // never goes back
  EXPECT_EQ(t.observe(firing(5, t0), ownership::owned, t0).subject->id, 100u);
}

TEST(observation_names, every_observation_has_a_name) {
  EXPECT_EQ(to_string(observation::opened), "opened");
  EXPECT_EQ(to_string(observation::duplicate), "duplicate");
  EXPECT_EQ(to_string(observation::closed), "closed");
  EXPECT_EQ(to_string(observation::stale), "stale");
  EXPECT_EQ(to_string(observation::unknown_resolve), "unknown_resolve");
}

// The table's lookup index (fingerprint -> incident, with what classify() reads copied
// alongside) must mirror the incidents through every way they come and go: opening, re-firing,
// reopening, closing, eviction from a full table, expiry, restore (replacing one with the same
// fingerprint or id) and clear, with the index growing and its probe chains shifting back on
// deletion. Random operations over 3,000 fingerprints (some sharing their low bits) against a
// table of at most 1,000; after each batch every fingerprint is looked up both ways.
TEST(incident_table_index, mirrors_the_incidents_through_random_operations) {
  memory_incident_table table(1h, 1000);
  std::vector<std::uint64_t> universe;
  for (std::uint64_t i = 0; i < 2000; ++i) universe.push_back(0x9e3779b97f4a7c15ull * (i + 1));
  for (std::uint64_t i = 0; i < 1000; ++i) universe.push_back(i << 48);  // equal low bits
  std::uint64_t rng = 42;
  auto next = [&rng] {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
  };
  const alert_status statuses[] = {alert_status::firing, alert_status::resolved};
  timestamp now = t0;
  std::uint64_t next_restored_id = 1'000'000;
  for (int round = 0; round < 60; ++round) {
    for (int op = 0; op < 500; ++op) {
      const std::uint64_t fp = universe[next() % universe.size()];
      const timestamp starts = t0 + std::chrono::minutes(next() % 4);
      now += 1s;
      const std::uint64_t kind = next() % 100;
      if (kind < 80) {
        const auto owner = static_cast<ownership>(next() % 3);
        const auto r = table.observe(make_alert(fp, statuses[next() % 2], starts), owner, now);
        if (r.subject != nullptr) {
          ASSERT_EQ(r.subject->fp, fingerprint{fp});
          ASSERT_EQ(r.owner, r.subject->owner);
        }
      } else if (kind < 95) {
        incident inc;
        inc.fp = fingerprint{fp};
        // Now and then the id of an incident the table may hold under another fingerprint.
        inc.id = next() % 4 == 0 ? 1 + next() % 2000 : next_restored_id++;
        inc.starts_at = starts;
        inc.owner = static_cast<ownership>(next() % 3);
        if (next() % 2 == 0) inc.closed_at = now - std::chrono::minutes(next() % 120);
        table.restore(std::move(inc));
      } else if (kind < 99) {
        table.expire(now);
      } else if (next() % 10 == 0) {
        table.clear();
      }
    }
    std::size_t found = 0;
    for (const std::uint64_t fp : universe) {
      const incident* inc = table.find(fingerprint{fp});
      if (inc != nullptr) {
        ++found;
        ASSERT_EQ(inc->fp, fingerprint{fp});
      }
      for (const alert_status st : statuses) {
        for (int m = 0; m < 4; ++m) {
          const timestamp starts = t0 + std::chrono::minutes(m);
          ASSERT_EQ(table.classify(fingerprint{fp}, st, starts),
                    classify_observation(inc, st, starts))
              << "fingerprint " << fp << " round " << round;
        }
      }
    }
    ASSERT_EQ(found, table.size()) << "round " << round;
    ASSERT_LE(table.size(), 1000u);
  }
  EXPECT_GT(table.evictions(), 0u);
}

}  // namespace
}  // namespace alertrouter::routing
