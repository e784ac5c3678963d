#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/incident_codec.h"
#include "store/state_store.h"
#include "tests/store/store_fixtures.h"

namespace alertrouter::store {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using testing::expect_incident_eq;
using ::testing::HasSubstr;
using testing::kT0;
using testing::make_incident;
using testing::make_message;
using testing::ms;
using testing::scratch_dir;

// A second connection to the store file, as another process (or an operator's sqlite3) would
// hold it.
class raw_db {
 public:
  explicit raw_db(const fs::path& file) {
    if (sqlite3_open(file.c_str(), &db_) != SQLITE_OK) ADD_FAILURE() << sqlite3_errmsg(db_);
  }
  ~raw_db() { sqlite3_close(db_); }
  raw_db(const raw_db&) = delete;
  raw_db& operator=(const raw_db&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << (err ? err : "?");
    }
    sqlite3_free(err);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(s) == SQLITE_ROW) {
      const auto* p = sqlite3_column_text(s, 0);
      if (p != nullptr) out = reinterpret_cast<const char*>(p);
    }
    sqlite3_finalize(s);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string file_content(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Commits one set; fills in the caller's seqs when it passes an lvalue.
template <class Set>
void commit_one(state_store& s, Set&& set) {
  s.commit(std::span<change_set>(&set, 1));
}

change_set sample_set(std::uint64_t first_id) {
  change_set set;
  set.incidents = {make_incident(first_id, 100 + first_id, false),
                   make_incident(first_id + 1, 100 + first_id + 1, true)};
  set.messages = {make_message("page-" + std::to_string(first_id), "schedule:oncall-primary"),
                  make_message("resolve-" + std::to_string(first_id + 1), "receiver:cloud-feed",
                               routing::notification_kind::resolve)};
  return set;
}

// SQLite's default VFS with every xSync counted, made the default while it lives (so the
// stores a test opens use it) and the previous default restored after. One at a time.
class sync_counting_vfs {
 public:
  sync_counting_vfs() {
    base_ = sqlite3_vfs_find(nullptr);
    vfs_ = *base_;
    vfs_.zName = "alertrouter-test-sync-counting";
    vfs_.szOsFile = static_cast<int>(sizeof(file)) + base_->szOsFile;
    vfs_.pAppData = this;
    vfs_.xOpen = &sync_counting_vfs::open;
    sqlite3_vfs_register(&vfs_, 1);
  }
  ~sync_counting_vfs() {
    sqlite3_vfs_register(base_, 1);
    sqlite3_vfs_unregister(&vfs_);
  }
  sync_counting_vfs(const sync_counting_vfs&) = delete;
  sync_counting_vfs& operator=(const sync_counting_vfs&) = delete;

  // xSync calls on files whose name ends in `suffix` ("-wal": the commits' fsyncs in WAL mode).
  int syncs(std::string_view suffix) const {
    const std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [name, count] : syncs_) {
      if (name.ends_with(suffix)) n += count;
    }
    return n;
  }

 private:
  // Our file object: the base VFS's file follows it in the same allocation (szOsFile).
  struct file {
    sqlite3_file base;
    sync_counting_vfs* vfs;
    std::string* name;  // owned by syncs_'s key set; never freed while the VFS lives
    sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
  };
  // SQLite aligns a file object to 8 bytes; the base VFS's, right after ours, needs no more.
  static_assert(sizeof(file) % 8 == 0 && alignof(file) <= 8);

  static int open(sqlite3_vfs* v, const char* name, sqlite3_file* f, int flags, int* out) {
    auto* self = static_cast<sync_counting_vfs*>(v->pAppData);
    auto* ours = reinterpret_cast<file*>(f);
    ours->base.pMethods = nullptr;
    const int rc = self->base_->xOpen(self->base_, name, ours->real(), flags, out);
    if (rc != SQLITE_OK) return rc;
    ours->vfs = self;
    ours->name = self->name_slot(name != nullptr ? name : "");
    self->install_methods(ours->real()->pMethods);
    ours->base.pMethods = &self->methods_;
    return SQLITE_OK;
  }

  std::string* name_slot(const std::string& name) {
    const std::lock_guard lock(mutex_);
    syncs_.try_emplace(name, 0);
    names_.push_back(std::make_unique<std::string>(name));
    return names_.back().get();
  }

  void install_methods(const sqlite3_io_methods* real) {
    const std::lock_guard lock(mutex_);
    if (methods_.iVersion != 0) return;  // every file of the unix VFS has the same methods
    methods_ = *real;
    methods_.xClose = [](sqlite3_file* f) { return unwrap(f)->pMethods->xClose(unwrap(f)); };
    methods_.xRead = [](sqlite3_file* f, void* b, int n, sqlite3_int64 o) {
      return unwrap(f)->pMethods->xRead(unwrap(f), b, n, o);
    };
    methods_.xWrite = [](sqlite3_file* f, const void* b, int n, sqlite3_int64 o) {
      return unwrap(f)->pMethods->xWrite(unwrap(f), b, n, o);
    };
    methods_.xTruncate = [](sqlite3_file* f, sqlite3_int64 n) {
      return unwrap(f)->pMethods->xTruncate(unwrap(f), n);
    };
    methods_.xSync = [](sqlite3_file* f, int flags) {
      auto* ours = reinterpret_cast<file*>(f);
      {
        const std::lock_guard counting(ours->vfs->mutex_);
        ++ours->vfs->syncs_[*ours->name];
      }
      return unwrap(f)->pMethods->xSync(unwrap(f), flags);
    };
    methods_.xFileSize = [](sqlite3_file* f, sqlite3_int64* n) {
      return unwrap(f)->pMethods->xFileSize(unwrap(f), n);
    };
    methods_.xLock = [](sqlite3_file* f, int l) {
      return unwrap(f)->pMethods->xLock(unwrap(f), l);
    };
    methods_.xUnlock = [](sqlite3_file* f, int l) {
      return unwrap(f)->pMethods->xUnlock(unwrap(f), l);
    };
    methods_.xCheckReservedLock = [](sqlite3_file* f, int* r) {
      return unwrap(f)->pMethods->xCheckReservedLock(unwrap(f), r);
    };
    methods_.xFileControl = [](sqlite3_file* f, int op, void* a) {
      return unwrap(f)->pMethods->xFileControl(unwrap(f), op, a);
    };
    methods_.xSectorSize = [](sqlite3_file* f) {
      return unwrap(f)->pMethods->xSectorSize(unwrap(f));
    };
    methods_.xDeviceCharacteristics = [](sqlite3_file* f) {
      return unwrap(f)->pMethods->xDeviceCharacteristics(unwrap(f));
    };
    methods_.xShmMap = [](sqlite3_file* f, int i, int sz, int ext, void volatile** p) {
      return unwrap(f)->pMethods->xShmMap(unwrap(f), i, sz, ext, p);
    };
    methods_.xShmLock = [](sqlite3_file* f, int o, int n, int fl) {
      return unwrap(f)->pMethods->xShmLock(unwrap(f), o, n, fl);
    };
    methods_.xShmBarrier = [](sqlite3_file* f) { unwrap(f)->pMethods->xShmBarrier(unwrap(f)); };
    methods_.xShmUnmap = [](sqlite3_file* f, int d) {
      return unwrap(f)->pMethods->xShmUnmap(unwrap(f), d);
    };
    methods_.xFetch = [](sqlite3_file* f, sqlite3_int64 o, int n, void** p) {
      return unwrap(f)->pMethods->xFetch(unwrap(f), o, n, p);
    };
    methods_.xUnfetch = [](sqlite3_file* f, sqlite3_int64 o, void* p) {
      return unwrap(f)->pMethods->xUnfetch(unwrap(f), o, p);
    };
  }

  static sqlite3_file* unwrap(sqlite3_file* f) { return reinterpret_cast<file*>(f)->real(); }

  sqlite3_vfs* base_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
  mutable std::mutex mutex_;
  std::map<std::string, int> syncs_;
  std::vector<std::unique_ptr<std::string>> names_;
};

change_set delivered_set(const std::string& id) {
  change_set set;
  set.progress.push_back({progress_update::what::delivered, id, 1, 1000, {}});
  return set;
}

// A webhook's change set is answered 2xx once its commit returns: that commit must have synced
// the WAL, whatever progress-only commits (synchronous=NORMAL) came before it. PRAGMA
// synchronous applies when it is prepared, so a statement prepared once and run again applied the
// level of its previous run: after two progress-only commits, a change set went out unsynced.
TEST(SqliteStore, EveryChangeSetCommitSyncsTheWalEvenAfterProgressOnlyCommits) {
  sync_counting_vfs vfs;
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  // As after a restart with notifications pending: their deliveries are marked (each mark its
  // own progress-only commit) before the first webhook's change set comes.
  for (int round = 0; round < 3; ++round) {
    const int progress = vfs.syncs("-wal");
    commit_one(*s, delivered_set("page-1"));
    commit_one(*s, delivered_set("resolve-2"));
    commit_one(*s, delivered_set("nosuch"));
    EXPECT_EQ(vfs.syncs("-wal"), progress) << "progress alone is not synced, round " << round;
    int before = vfs.syncs("-wal");
    change_set next = sample_set(10 + 4 * static_cast<std::uint64_t>(round));
    commit_one(*s, next);
    EXPECT_GT(vfs.syncs("-wal"), before) << "change set after progress, round " << round;
    before = vfs.syncs("-wal");
    change_set again = sample_set(12 + 4 * static_cast<std::uint64_t>(round));
    commit_one(*s, again);
    EXPECT_GT(vfs.syncs("-wal"), before) << "change set after a change set, round " << round;
  }
}

TEST(SqliteStore, RoundTripsIncidentsAndMessagesAcrossReopen) {
  scratch_dir dir;
  change_set set = sample_set(1);
  {
    auto s = open_sqlite_store(dir.state());
    commit_one(*s, set);
  }
  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  ASSERT_EQ(r.incidents.size(), 2u);
  expect_incident_eq(r.incidents[0], set.incidents[0]);
  expect_incident_eq(r.incidents[1], set.incidents[1]);
  ASSERT_EQ(r.pending.size(), 2u);
  std::vector<outbox_message> want = set.messages;
  want[0].seq = 1;
  want[1].seq = 2;
  EXPECT_EQ(r.pending[0], want[0]);
  EXPECT_EQ(r.pending[1], want[1]);
  EXPECT_EQ(r.next_seq, 3u);
  EXPECT_EQ(r.next_incident_id, 3u);
}

TEST(SqliteStore, CreatesTheDirectoryPrivateAndUsesWal) {
  scratch_dir dir;
  const fs::path nested = dir.path() / "a" / "state";
  { auto s = open_sqlite_store(nested); }
  EXPECT_EQ(fs::status(nested).permissions() & fs::perms::all, fs::perms::owner_all);
  raw_db raw(sqlite_store_file(nested));
  EXPECT_EQ(raw.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.text("PRAGMA user_version"), "2");
  EXPECT_EQ(raw.text("PRAGMA page_size"), "8192");
}

// A store written by the first release (schema v1: bodies inside the outbox rows) is migrated in
// place on open: nothing pending, dead or remembered is lost, and ids keep increasing.
TEST(SqliteStore, MigratesAVersion1StoreKeepingEverything) {
  scratch_dir dir;
  fs::create_directories(dir.state());
  const routing::incident open_inc = make_incident(7, 0x77, false);
  {
    raw_db raw(sqlite_store_file(dir.state()));
    raw.exec("PRAGMA journal_mode = WAL");
    // Version 1's schema, as released.
    raw.exec(R"sql(
CREATE TABLE incidents (
  fingerprint TEXT PRIMARY KEY NOT NULL, id INTEGER NOT NULL,
  open INTEGER NOT NULL CHECK (open IN (0, 1)), closed_ms INTEGER, data TEXT NOT NULL);
CREATE INDEX incidents_closed ON incidents (closed_ms) WHERE closed_ms IS NOT NULL;
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY NOT NULL, id TEXT NOT NULL UNIQUE, destination TEXT NOT NULL,
  url TEXT NOT NULL, channel TEXT NOT NULL, kind TEXT NOT NULL CHECK (kind IN ('page', 'resolve')),
  body TEXT NOT NULL, created_ms INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL, last_error TEXT NOT NULL,
  finished_ms INTEGER NOT NULL);
CREATE INDEX outbox_state ON outbox (state, seq);
CREATE INDEX outbox_finished ON outbox (state, finished_ms);
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
PRAGMA user_version = 1;
PRAGMA application_id = 1095914578;
)sql");
    raw.exec("INSERT INTO incidents VALUES ('" + routing::to_hex(open_inc.fp) + "', 7, 1, NULL, '" +
             encode_incident(open_inc) + "')");
    raw.exec(
        "INSERT INTO outbox VALUES (3, 'page-7', 'd', 'http://127.0.0.1:9000/d', 'webhook', "
        "'page', '{\"id\":\"page-7\"}', 1000, 'pending', 2, 5000, 'HTTP 503', 0)");
    raw.exec(
        "INSERT INTO outbox VALUES (4, 'page-8', 'd', 'http://127.0.0.1:9000/d', 'webhook', "
        "'page', '{\"id\":\"page-8\"}', 1000, 'dead', 1, 0, 'HTTP 400', 2000)");
    raw.exec("INSERT INTO meta VALUES ('next_seq', 10), ('next_incident_id', 20)");
  }

  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  ASSERT_EQ(r.incidents.size(), 1u);
  expect_incident_eq(r.incidents[0], open_inc);
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].seq, 3u);
  EXPECT_EQ(r.pending[0].id, "page-7");
  EXPECT_EQ(r.pending[0].body, R"({"id":"page-7"})");
  EXPECT_EQ(r.pending[0].attempts, 2u);
  EXPECT_EQ(r.pending[0].last_error, "HTTP 503");
  EXPECT_EQ(r.next_seq, 10u);
  EXPECT_EQ(r.next_incident_id, 20u);
  const std::vector<outbox_message> dead = s->list_dead(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].body, R"({"id":"page-8"})");
  EXPECT_EQ(dead[0].last_error, "HTTP 400");

  change_set set;
  set.messages = {make_message("page-21", "d")};
  commit_one(*s, set);
  EXPECT_EQ(set.messages[0].seq, 10u);
  s->mark_delivered("page-7", 3, 3000);
  EXPECT_EQ(s->prune(4000).dead, 1u);
  EXPECT_EQ(s->stats().pending, 1u);
  EXPECT_EQ(s->stats().dead, 0u);
  s.reset();

  raw_db raw(sqlite_store_file(dir.state()));
  EXPECT_EQ(raw.text("PRAGMA user_version"), "2");
  EXPECT_EQ(raw.text("SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'body'"), "0");
  // Pruned messages take their bodies with them.
  EXPECT_EQ(raw.text("SELECT group_concat(seq) FROM outbox_body"), "10");
  EXPECT_EQ(raw.text("PRAGMA integrity_check"), "ok");
}

// The WAL is copied back into the database by the background checkpointer, not inside a commit,
// and nothing committed is lost by it.
TEST(SqliteStore, CheckpointsTheWalInTheBackground) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    EXPECT_EQ(s->stats().checkpoints, 0u);
    // About 10 MB of bodies in two commits: well past the 1000-page (8 MB) threshold.
    for (int batch = 0; batch < 2; ++batch) {
      change_set set;
      for (int i = 0; i < 600; ++i) {
        outbox_message m = make_message("m" + std::to_string(batch) + "-" + std::to_string(i), "d");
        m.body = std::string(8000, static_cast<char>('a' + i % 26));
        set.messages.push_back(std::move(m));
      }
      commit_one(*s, set);
    }
    store_stats st;
    for (int i = 0; i < 500 && st.checkpoints == 0; ++i) {
      st = s->stats();
      if (st.checkpoints == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_GE(st.checkpoints, 1u);
    EXPECT_EQ(st.checkpoint_failures, 0u);
    EXPECT_EQ(st.forced_checkpoints, 0u);
    // Checkpointed pages are in the database file itself.
    EXPECT_GT(fs::file_size(sqlite_store_file(dir.state())), 8u << 20);
  }
  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  ASSERT_EQ(r.pending.size(), 1200u);
  EXPECT_EQ(r.pending[1199].body, std::string(8000, static_cast<char>('a' + 599 % 26)));
}

TEST(SqliteStore, ASecondOpenOfTheSameDirectoryIsRefusedWhileTheFirstIsOpen) {
  scratch_dir dir;
  {
    auto first = open_sqlite_store(dir.state());
    try {
      open_sqlite_store(dir.state());
      ADD_FAILURE() << "opened twice";
    } catch (const store_error& e) {
      EXPECT_THAT(e.what(),
                  AllOf(HasSubstr(sqlite_store_file(dir.state()).string()), HasSubstr("in use")));
    }
    commit_one(*first, sample_set(1));  // the first is unaffected
  }
  auto again = open_sqlite_store(dir.state());
  EXPECT_EQ(again->load().incidents.size(), 2u);
}

TEST(SqliteStore, UpsertByFingerprintReplacesTheOlderIncident) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  change_set first;
  first.incidents = {make_incident(1, 42, false)};
  commit_one(*s, first);
  // Closing it updates the row; a reopened incident (new id, same fingerprint) replaces it.
  change_set closed;
  closed.incidents = {make_incident(1, 42, true)};
  commit_one(*s, closed);
  ASSERT_EQ(s->load().incidents.size(), 1u);
  EXPECT_TRUE(s->load().incidents[0].closed_at.has_value());
  change_set reopened;
  reopened.incidents = {make_incident(9, 42, false)};
  commit_one(*s, reopened);
  const recovered_state r = s->load();
  ASSERT_EQ(r.incidents.size(), 1u);
  expect_incident_eq(r.incidents[0], reopened.incidents[0]);
}

TEST(SqliteStore, IncidentsLoadByIdAscending) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  change_set set;
  set.incidents = {make_incident(30, 1, false), make_incident(10, 2, false),
                   make_incident(20, 3, true)};
  commit_one(*s, set);
  const recovered_state r = s->load();
  ASSERT_EQ(r.incidents.size(), 3u);
  EXPECT_EQ(r.incidents[0].id, 10u);
  EXPECT_EQ(r.incidents[1].id, 20u);
  EXPECT_EQ(r.incidents[2].id, 30u);
}

TEST(SqliteStore, SeqIncreasesAcrossCommitsBatchesAndReopen) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    std::vector<change_set> batch = {sample_set(1), sample_set(3)};
    s->commit(batch);
    EXPECT_EQ(batch[0].messages[0].seq, 1u);
    EXPECT_EQ(batch[0].messages[1].seq, 2u);
    EXPECT_EQ(batch[1].messages[0].seq, 3u);
    EXPECT_EQ(batch[1].messages[1].seq, 4u);
    change_set next = sample_set(5);
    commit_one(*s, next);
    EXPECT_EQ(next.messages[0].seq, 5u);
  }
  auto s = open_sqlite_store(dir.state());
  EXPECT_EQ(s->load().next_seq, 7u);
  change_set after = sample_set(7);
  s->commit(std::span<change_set>(&after, 1));
  EXPECT_EQ(after.messages[0].seq, 7u);
}

TEST(SqliteStore, SeqAndIncidentIdsAreNotReusedAfterEverythingIsPruned) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    change_set set;
    set.incidents = {make_incident(41, 1, true)};
    set.messages = {make_message("page-41", "d")};
    commit_one(*s, set);
    s->mark_delivered("page-41", 1, ms(kT0));
    const prune_result p = s->prune(ms(kT0 + std::chrono::hours(24 * 400)));
    EXPECT_EQ(p.incidents, 1u);
    EXPECT_EQ(p.delivered, 1u);
  }
  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  EXPECT_TRUE(r.incidents.empty());
  EXPECT_TRUE(r.pending.empty());
  EXPECT_EQ(r.next_seq, 2u);
  EXPECT_EQ(r.next_incident_id, 42u);
}

TEST(SqliteStore, LoadGivesPendingOnlyInSeqOrderWithTheirProgress) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    change_set set;
    for (int i = 1; i <= 5; ++i) set.messages.push_back(make_message("m" + std::to_string(i), "d"));
    commit_one(*s, set);
    s->mark_delivered("m2", 1, 1000);
    s->mark_dead("m4", 7, 2000, "HTTP 400");
    s->record_attempt("m5", 3, 123456, "connect: Connection refused");
    // No effect on a finished or unknown message.
    s->record_attempt("m2", 9, 1, "late");
    s->mark_dead("m2", 9, 1, "late");
    s->mark_delivered("nosuch", 1, 1);
  }
  auto s = open_sqlite_store(dir.state());
  const recovered_state r = s->load();
  ASSERT_EQ(r.pending.size(), 3u);
  EXPECT_EQ(r.pending[0].id, "m1");
  EXPECT_EQ(r.pending[1].id, "m3");
  EXPECT_EQ(r.pending[2].id, "m5");
  EXPECT_LT(r.pending[0].seq, r.pending[1].seq);
  EXPECT_LT(r.pending[1].seq, r.pending[2].seq);
  EXPECT_EQ(r.pending[2].attempts, 3u);
  EXPECT_EQ(r.pending[2].next_attempt_ms, 123456);
  EXPECT_EQ(r.pending[2].last_error, "connect: Connection refused");
  EXPECT_EQ(r.pending[2].state, message_state::pending);

  const std::vector<outbox_message> listed = s->list_outbox(10);
  ASSERT_EQ(listed.size(), 4u);  // pending and dead, not delivered
  EXPECT_EQ(listed[2].id, "m4");
  EXPECT_EQ(listed[2].state, message_state::dead);
  EXPECT_EQ(listed[2].attempts, 7u);
  EXPECT_EQ(listed[2].finished_ms, 2000);
  EXPECT_EQ(listed[2].last_error, "HTTP 400");
  EXPECT_EQ(s->list_outbox(2).size(), 2u);
  EXPECT_EQ(s->list_outbox(2)[1].id, "m3");
  // Dead ones alone, however many pending ones precede them.
  const std::vector<outbox_message> dead = s->list_dead(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].id, "m4");
  EXPECT_TRUE(s->list_dead(0).empty());
}

TEST(SqliteStore, StatsCountPendingDeadAndTheOldestPending) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  store_stats empty = s->stats();
  EXPECT_EQ(empty.pending, 0u);
  EXPECT_FALSE(empty.oldest_pending_created_ms.has_value());
  EXPECT_GT(empty.file_bytes, 0u);
  change_set set;
  for (int i = 1; i <= 4; ++i) {
    set.messages.push_back(make_message("m" + std::to_string(i), "d"));
    set.messages.back().created_ms = 5000 - i;  // wall clock may step back: min, not first
  }
  commit_one(*s, set);
  s->mark_dead("m4", 1, 1, "HTTP 404");
  const store_stats st = s->stats();
  EXPECT_EQ(st.pending, 3u);
  EXPECT_EQ(st.dead, 1u);
  EXPECT_EQ(st.oldest_pending_created_ms, 4997);
}

TEST(SqliteStore, PruneDeletesOnlyWhatFinishedBeforeTheCutoff) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  change_set set;
  routing::incident old_closed = make_incident(1, 1, true);
  routing::incident new_closed = make_incident(2, 2, true);
  new_closed.closed_at = kT0 + std::chrono::hours(48);
  routing::incident open_old = make_incident(3, 3, false);  // opened long ago, still open
  set.incidents = {old_closed, new_closed, open_old};
  for (const char* id : {"delivered-old", "delivered-new", "dead-old", "dead-new", "pending"}) {
    set.messages.push_back(make_message(id, "d"));
  }
  commit_one(*s, set);
  const std::int64_t cutoff = ms(kT0 + std::chrono::hours(24));
  s->mark_delivered("delivered-old", 1, cutoff - 1);
  s->mark_delivered("delivered-new", 1, cutoff);
  s->mark_dead("dead-old", 5, cutoff - 1, "gave up");
  s->mark_dead("dead-new", 5, cutoff + 1, "gave up");

  const prune_result p = s->prune(cutoff);
  EXPECT_EQ(p.incidents, 1u);
  EXPECT_EQ(p.delivered, 1u);
  EXPECT_EQ(p.dead, 1u);

  const recovered_state r = s->load();
  ASSERT_EQ(r.incidents.size(), 2u);
  EXPECT_EQ(r.incidents[0].id, 2u);
  EXPECT_EQ(r.incidents[1].id, 3u);
  ASSERT_EQ(r.pending.size(), 1u);
  EXPECT_EQ(r.pending[0].id, "pending");
  const std::vector<outbox_message> listed = s->list_outbox(10);
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0].id, "dead-new");
  raw_db raw(sqlite_store_file(dir.state()));
  EXPECT_EQ(raw.text("SELECT group_concat(id) FROM outbox WHERE state = 'delivered'"),
            "delivered-new");
}

TEST(SqliteStore, AMessageIdAlreadyStoredIsSkippedNotAnError) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  change_set first = sample_set(1);
  commit_one(*s, first);
  const std::string original_body = first.messages[0].body;

  // The same notification computed again (same id) in a later batch: one row, the first.
  std::vector<change_set> batch = {sample_set(10), sample_set(20)};
  batch[1].messages[0].id = "page-1";
  batch[1].messages[0].body = "{\"again\":true}";
  s->commit(batch);
  EXPECT_EQ(batch[0].messages[0].seq, 3u);
  EXPECT_EQ(batch[1].messages[0].seq, 0u);  // skipped
  EXPECT_EQ(batch[1].messages[1].seq, 5u);  // the rest of its set is stored
  recovered_state r = s->load();
  EXPECT_EQ(r.incidents.size(), 6u);
  ASSERT_EQ(r.pending.size(), 5u);
  EXPECT_EQ(r.pending[0].id, "page-1");
  EXPECT_EQ(r.pending[0].body, original_body);
  EXPECT_EQ(r.next_seq, 6u);

  change_set later = sample_set(30);
  commit_one(*s, later);
  EXPECT_EQ(later.messages[0].seq, 6u);
}

TEST(SqliteStore, ALockedStoreFailsTheCommitQuicklyThenRecovers) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  raw_db other(sqlite_store_file(dir.state()));
  other.exec("BEGIN IMMEDIATE");  // holds the write lock, as another process would

  change_set set = sample_set(1);
  const auto start = std::chrono::steady_clock::now();
  try {
    commit_one(*s, set);
    FAIL() << "no error";
  } catch (const store_error& e) {
    EXPECT_THAT(e.what(),
                AllOf(HasSubstr(sqlite_store_file(dir.state()).string()), HasSubstr("locked")));
  }
  // The busy timeout is 100 ms: an error, not a hang (generous bound for a loaded machine).
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THROW(s->mark_delivered("x", 1, 1), store_error);

  other.exec("ROLLBACK");
  EXPECT_TRUE(s->load().incidents.empty());
  commit_one(*s, set);
  EXPECT_EQ(set.messages[0].seq, 1u);
  EXPECT_EQ(s->load().incidents.size(), 2u);
}

// A full disk, as the file size limit makes it: the commit fails, nothing of it is stored, and
// the store works again once there is room. Runs in a child so the limit stays there.
TEST(SqliteStore, ADiskFullCommitFailsCleanly) {
  scratch_dir dir;
  { auto s = open_sqlite_store(dir.state()); }
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    try {
      signal(SIGXFSZ, SIG_IGN);
      auto s = open_sqlite_store(dir.state());
      change_set small = sample_set(1);
      commit_one(*s, small);
      rlimit lim{};
      lim.rlim_cur = lim.rlim_max = 256 * 1024;
      setrlimit(RLIMIT_FSIZE, &lim);
      change_set big = sample_set(10);
      big.messages[0].body.assign(1024 * 1024, 'x');
      try {
        commit_one(*s, big);
        code = 10;  // the limit did not bite
      } catch (const store_error& e) {
        if (std::string(e.what()).find("commit to") == std::string::npos) code = 11;
      }
      if (code == 0) {
        change_set after = sample_set(20);
        commit_one(*s, after);
        if (after.messages[0].seq != 3) code = 12;
        if (s->load().incidents.size() != 4) code = 13;
      }
    } catch (...) {
      code = 20;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0) << "see the codes in the child";
  auto s = open_sqlite_store(dir.state());
  EXPECT_EQ(s->load().pending.size(), 4u);
}

// ---- refusing to open what is not a sound, current store ---------------------------------

void expect_refused(const fs::path& state, const std::string& why) {
  const fs::path file = sqlite_store_file(state);
  const std::string before = file_content(file);
  try {
    open_sqlite_store(state);
    ADD_FAILURE() << "opened";
  } catch (const store_error& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr(file.string()), HasSubstr(why)));
  }
  EXPECT_EQ(file_content(file), before) << "the file was changed";
  const check_report report = check_sqlite_store(state);
  EXPECT_FALSE(report.ok);
  std::string all;
  for (const std::string& l : report.lines) all += l + "\n";
  EXPECT_THAT(all, AllOf(HasSubstr(file.string()), HasSubstr(why)));
}

TEST(SqliteStore, RefusesAFileThatIsNotSqlite) {
  scratch_dir dir;
  fs::create_directory(dir.state());
  std::ofstream(sqlite_store_file(dir.state())) << std::string(8192, 'g') << "garbage";
  expect_refused(dir.state(), "not a database");
}

TEST(SqliteStore, RefusesACorruptStore) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    change_set set;
    for (std::uint64_t i = 1; i <= 300; ++i) set.incidents.push_back(make_incident(i, i, false));
    commit_one(*s, set);
  }
  const fs::path file = sqlite_store_file(dir.state());
  ASSERT_GT(fs::file_size(file), 8u * 4096u);
  {
    // Garbage over some pages after the first (the header stays valid).
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(3 * 4096);
    const std::string junk(3 * 4096, '\x5a');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  expect_refused(dir.state(), "corrupt");
}

TEST(SqliteStore, RefusesAStoreFromANewerVersion) {
  scratch_dir dir;
  { auto s = open_sqlite_store(dir.state()); }
  {
    raw_db raw(sqlite_store_file(dir.state()));
    raw.exec("PRAGMA user_version = 99");
  }
  expect_refused(dir.state(), "newer");
}

TEST(SqliteStore, RefusesAnotherProgramsDatabase) {
  scratch_dir dir;
  fs::create_directory(dir.state());
  {
    raw_db raw(sqlite_store_file(dir.state()));
    raw.exec("CREATE TABLE songs (title TEXT)");
  }
  expect_refused(dir.state(), "not an alertrouter store");
}

TEST(SqliteStore, RefusesAStateDirThatIsAFile) {
  scratch_dir dir;
  std::ofstream(dir.state()) << "x";
  EXPECT_THROW(open_sqlite_store(dir.state()), store_error);
  EXPECT_FALSE(check_sqlite_store(dir.state()).ok);
}

TEST(SqliteStore, RefusesAnUnreadableDirectory) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads any directory";
  scratch_dir dir;
  { auto s = open_sqlite_store(dir.state()); }
  fs::permissions(dir.state(), fs::perms::none);
  try {
    open_sqlite_store(dir.state());
    ADD_FAILURE() << "opened";
  } catch (const store_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(dir.state().string()));
  }
  EXPECT_FALSE(check_sqlite_store(dir.state()).ok);
  fs::permissions(dir.state(), fs::perms::owner_all);
}

// ---- state check -------------------------------------------------------------------------

TEST(SqliteStoreCheck, ReportsASoundStoreWithoutTouchingIt) {
  scratch_dir dir;
  {
    auto s = open_sqlite_store(dir.state());
    commit_one(*s, sample_set(1));
    s->mark_dead("resolve-2", 3, 1, "HTTP 410");
  }
  std::set<fs::path> before;
  for (const auto& e : fs::directory_iterator(dir.state())) before.insert(e.path());
  const std::string content = file_content(sqlite_store_file(dir.state()));

  const check_report r = check_sqlite_store(dir.state());
  EXPECT_TRUE(r.ok);
  std::string all;
  for (const std::string& l : r.lines) all += l + "\n";
  EXPECT_THAT(all, AllOf(HasSubstr("schema version 2"), HasSubstr("integrity: ok"),
                         HasSubstr("incidents: 1 open, 1 closed"),
                         HasSubstr("outbox: 1 pending, 1 dead, 0 delivered"), HasSubstr(": OK")));

  std::set<fs::path> after;
  for (const auto& e : fs::directory_iterator(dir.state())) after.insert(e.path());
  EXPECT_EQ(before, after);
  EXPECT_EQ(file_content(sqlite_store_file(dir.state())), content);
}

TEST(SqliteStoreCheck, SeesCommitsOfAStoreThatIsOpen) {
  scratch_dir dir;
  auto s = open_sqlite_store(dir.state());
  commit_one(*s, sample_set(1));
  const check_report r = check_sqlite_store(dir.state());
  EXPECT_TRUE(r.ok);
  std::string all;
  for (const std::string& l : r.lines) all += l + "\n";
  EXPECT_THAT(all, HasSubstr("outbox: 2 pending"));
  // Still writable after the check.
  commit_one(*s, sample_set(3));
}

TEST(SqliteStoreCheck, CreatesNothingWhereThereIsNoStore) {
  scratch_dir dir;
  const check_report r = check_sqlite_store(dir.state());
  EXPECT_FALSE(r.ok);
  EXPECT_FALSE(fs::exists(dir.state()));
  fs::create_directory(dir.state());
  EXPECT_FALSE(check_sqlite_store(dir.state()).ok);
  EXPECT_TRUE(fs::is_empty(dir.state()));
}

// ---- durability across SIGKILL -----------------------------------------------------------

// The child commits sets one by one and reports each commit on a pipe once commit() returned;
// the parent SIGKILLs it at a random point. Every reported set must be in the store after.
TEST(SqliteStoreDurability, EveryAcknowledgedCommitSurvivesSigkill) {
  constexpr int kRounds = 5;
  constexpr std::uint64_t kSets = 400;
  std::mt19937 rng(20260301);
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    scratch_dir dir;
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      try {
        auto s = open_sqlite_store(dir.state());
        for (std::uint64_t i = 1; i <= kSets; ++i) {
          change_set set;
          set.incidents = {make_incident(i, i, false)};
          set.messages = {make_message("page-" + std::to_string(i), "d")};
          commit_one(*s, set);
          const char ack = 'k';
          if (write(fds[1], &ack, 1) != 1) _exit(3);
        }
      } catch (...) {
        _exit(2);
      }
      _exit(0);
    }
    close(fds[1]);
    const std::uint64_t kill_after =
        std::uniform_int_distribution<std::uint64_t>(1, kSets / 2)(rng);
    std::uint64_t acked = 0;
    char buf[64];
    while (acked < kill_after) {
      const ssize_t n = read(fds[0], buf, 1);
      if (n <= 0) break;
      acked += static_cast<std::uint64_t>(n);
    }
    kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    // Acknowledgements written before the kill and not read yet count too.
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
      acked += static_cast<std::uint64_t>(n);
    close(fds[0]);
    ASSERT_GE(acked, kill_after) << "child failed early, status " << status;

    auto s = open_sqlite_store(dir.state());
    const recovered_state r = s->load();
    // Every acknowledged set, in order; at most one more (committed, killed before the ack).
    ASSERT_GE(r.incidents.size(), acked);
    EXPECT_LE(r.incidents.size(), acked + 1);
    ASSERT_GE(r.pending.size(), acked);
    for (std::uint64_t i = 1; i <= acked; ++i) {
      EXPECT_EQ(r.incidents[i - 1].id, i);
      EXPECT_EQ(r.pending[i - 1].id, "page-" + std::to_string(i));
      EXPECT_EQ(r.pending[i - 1].seq, i);
    }
    EXPECT_EQ(r.pending.size(), r.incidents.size());
  }
}

}  // namespace
}  // namespace alertrouter::store
