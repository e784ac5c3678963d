// The SQLite state store: one database file in WAL mode, written by one connection, with the
// WAL copied back into the database (checkpointed) by a second connection on a thread of its own.
//
// Schema (v2):
//   incidents(fingerprint TEXT PK, id, open, closed_ms, data)  -- data: incident_codec JSON
//   outbox(seq INTEGER PK, id TEXT UNIQUE, destination, url, channel, kind, created_ms,
//          state, attempts, next_attempt_ms, last_error, finished_ms)  -- index (state,
//          finished_ms)
//   outbox_body(seq INTEGER PK, body)  -- one per outbox row
//   meta(key TEXT PK, value INTEGER)  -- high-water marks saved by prune: next_seq,
//                                        next_incident_id
// Versions are PRAGMA user_version; PRAGMA application_id marks the file as alertrouter's.
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "store/incident_codec.h"
#include "store/state_store.h"

namespace alertrouter::store {

std::string_view to_string(message_state s) {
  switch (s) {
    case message_state::pending:
      return "pending";
    case message_state::delivered:
      return "delivered";
    case message_state::dead:
      return "dead";
  }
  return "unknown";
}

namespace {

namespace fs = std::filesystem;

// "ARTR" (0x41525452): PRAGMA application_id of an alertrouter store.
constexpr int kApplicationId = 0x41525452;

// Migration N (1-based) takes the schema from version N-1 to N. Append only: a released entry
// never changes, a new version is a new entry.
constexpr const char* kMigrations[] = {
    // v1
    R"sql(
CREATE TABLE incidents (
  fingerprint TEXT PRIMARY KEY NOT NULL,
  id INTEGER NOT NULL,
  open INTEGER NOT NULL CHECK (open IN (0, 1)),
  closed_ms INTEGER,
  data TEXT NOT NULL
);
CREATE INDEX incidents_closed ON incidents (closed_ms) WHERE closed_ms IS NOT NULL;
CREATE TABLE outbox (
  seq INTEGER PRIMARY KEY NOT NULL,
  id TEXT NOT NULL UNIQUE,
  destination TEXT NOT NULL,
  url TEXT NOT NULL,
  channel TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('page', 'resolve')),
  body TEXT NOT NULL,
  created_ms INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL,
  next_attempt_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL,
  finished_ms INTEGER NOT NULL
);
CREATE INDEX outbox_state ON outbox (state, seq);
CREATE INDEX outbox_finished ON outbox (state, finished_ms);
CREATE TABLE meta (
  key TEXT PRIMARY KEY NOT NULL,
  value INTEGER NOT NULL
);
)sql",
    // v2: bodies in their own table, so delivery progress (attempts, delivered, dead) rewrites
    // a small row instead of one carrying a few KB of JSON; one index serves every outbox query
    // by state (the pending queue, the dead letters, pruning by finished_ms).
    R"sql(
CREATE TABLE outbox_body (
  seq INTEGER PRIMARY KEY NOT NULL,
  body TEXT NOT NULL
);
INSERT INTO outbox_body (seq, body) SELECT seq, body FROM outbox;
DROP INDEX outbox_state;
DROP INDEX outbox_finished;
ALTER TABLE outbox DROP COLUMN body;
CREATE INDEX outbox_by_state ON outbox (state, finished_ms);
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

constexpr int kBusyTimeoutMs = 100;

// WAL size (pages) at which the checkpointer is asked to copy it back into the database file,
// and at which the writer does it itself because the checkpointer fell behind.
constexpr int kCheckpointPages = 1000;
constexpr int kForcedCheckpointPages = 8 * kCheckpointPages;

// The exclusive claim on a state directory: flock on DIR/alertrouter.lock, held while the store
// is open and released by the kernel when the process dies (even by SIGKILL).
class dir_lock {
 public:
  explicit dir_lock(const fs::path& dir) {
    const fs::path file = dir / "alertrouter.lock";
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) {
      throw store_error("open lock file " + file.string() + ": " + std::strerror(errno));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      ::close(fd_);
      throw store_error(sqlite_store_file(dir).string() + ": " +
                        (e == EWOULDBLOCK ? std::string("in use by another alertrouterd (") +
                                                file.string() + " is locked)"
                                          : "lock " + file.string() + ": " + std::strerror(e)));
    }
  }
  ~dir_lock() { ::close(fd_); }
  dir_lock(const dir_lock&) = delete;
  dir_lock& operator=(const dir_lock&) = delete;

 private:
  int fd_ = -1;
};

// ---- thin RAII over the C API ------------------------------------------------------------

struct db_closer {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using db_ptr = std::unique_ptr<sqlite3, db_closer>;

struct stmt_finalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using stmt_ptr = std::unique_ptr<sqlite3_stmt, stmt_finalizer>;

// "WHAT FILE: sqlite's message"
[[noreturn]] void fail(sqlite3* db, std::string_view what, const fs::path& file) {
  std::string msg = std::string(what) + " " + file.string() + ": ";
  msg += db != nullptr ? sqlite3_errmsg(db) : "out of memory";
  if (db != nullptr && (sqlite3_errcode(db) & 0xff) == SQLITE_CORRUPT) {
    msg += " (the store is corrupt; see alertrouterctl state check)";
  }
  throw store_error(msg);
}

// A prepared statement, reset after each use so it holds no read lock between calls.
class statement {
 public:
  statement() = default;
  statement(sqlite3* db, const fs::path& file, std::string_view sql, bool persistent = true)
      : db_(db), file_(&file) {
    sqlite3_stmt* s = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                                      persistent ? SQLITE_PREPARE_PERSISTENT : 0u, &s, nullptr);
    if (rc != SQLITE_OK) fail(db, "prepare statement for", file);
    s_.reset(s);
  }

  // Binds parameters 1..n in order.
  template <class... Args>
  statement& bind(const Args&... args) {
    sqlite3_reset(s_.get());
    sqlite3_clear_bindings(s_.get());
    int i = 0;
    (bind_one(++i, args), ...);
    return *this;
  }

  // Next row: true while there is one. Throws on error (the statement is reset).
  bool step() {
    const int rc = sqlite3_step(s_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
      sqlite3_reset(s_.get());
      return false;
    }
    sqlite3_reset(s_.get());
    fail(db_, "access", *file_);
  }
  // Runs a statement that returns no rows (or whose rows are ignored).
  void run() {
    while (step()) {
    }
  }
  void reset() { sqlite3_reset(s_.get()); }

  std::int64_t int64(int col) const { return sqlite3_column_int64(s_.get(), col); }
  bool is_null(int col) const { return sqlite3_column_type(s_.get(), col) == SQLITE_NULL; }
  std::string_view text(int col) const {
    const auto* p = sqlite3_column_text(s_.get(), col);
    const int n = sqlite3_column_bytes(s_.get(), col);
    if (p == nullptr) return {};
    return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)};
  }

 private:
  void bind_one(int i, std::int64_t v) { check(sqlite3_bind_int64(s_.get(), i, v)); }
  void bind_one(int i, std::uint64_t v) { bind_one(i, static_cast<std::int64_t>(v)); }
  void bind_one(int i, std::uint32_t v) { bind_one(i, static_cast<std::int64_t>(v)); }
  void bind_one(int i, bool v) { bind_one(i, std::int64_t{v ? 1 : 0}); }
  void bind_one(int i, std::nullopt_t) { check(sqlite3_bind_null(s_.get(), i)); }
  void bind_one(int i, std::optional<std::int64_t> v) {
    if (v) {
      bind_one(i, *v);
    } else {
      bind_one(i, std::nullopt);
    }
  }
  void bind_one(int i, std::string_view v) {
    // No destructor (SQLITE_STATIC): every caller steps the statement before `v` goes away.
    check(sqlite3_bind_text64(s_.get(), i, v.data(), v.size(), nullptr, SQLITE_UTF8));
  }
  void bind_one(int i, const std::string& v) { bind_one(i, std::string_view(v)); }
  void bind_one(int i, const char* v) { bind_one(i, std::string_view(v)); }
  void check(int rc) {
    if (rc != SQLITE_OK) fail(db_, "bind parameter for", *file_);
  }

  sqlite3* db_ = nullptr;
  const fs::path* file_ = nullptr;
  stmt_ptr s_;
};

void exec(sqlite3* db, const fs::path& file, const char* sql, std::string_view what) {
  char* err = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = std::string(what) + " " + file.string() + ": " +
                      (err != nullptr ? err : sqlite3_errmsg(db));
    sqlite3_free(err);
    throw store_error(msg);
  }
}

// The single integer or text a pragma returns.
std::int64_t pragma_int(sqlite3* db, const fs::path& file, std::string_view pragma,
                        std::string_view what) {
  try {
    statement s(db, file, pragma, false);
    return s.step() ? s.int64(0) : 0;
  } catch (const store_error&) {
    fail(db, what, file);
  }
}

std::string pragma_text(sqlite3* db, const fs::path& file, std::string_view pragma,
                        std::string_view what) {
  try {
    statement s(db, file, pragma, false);
    return s.step() ? std::string(s.text(0)) : std::string();
  } catch (const store_error&) {
    fail(db, what, file);
  }
}

// The rows of an integrity_check/quick_check, joined; "ok" when sound.
std::string run_check(sqlite3* db, const fs::path& file, std::string_view pragma) {
  statement s(db, file, pragma, false);
  std::string out;
  int rows = 0;
  for (;;) {
    try {
      if (!s.step()) break;
    } catch (const store_error&) {
      // The check itself can trip over a damaged page.
      throw store_error(file.string() + ": corrupt: " + sqlite3_errmsg(db));
    }
    if (++rows > 10) {
      out += "; ...";
      s.reset();
      break;
    }
    if (!out.empty()) out += "; ";
    out += s.text(0);
  }
  return out;
}

std::int64_t bytes_of(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<std::int64_t>(n);
}

fs::path with_suffix(const fs::path& p, std::string_view suffix) {
  return fs::path(p.string() + std::string(suffix));
}

// Refuses a file that is not an alertrouter store, or one from a newer alertrouter.
void check_identity(sqlite3* db, const fs::path& file, std::int64_t version) {
  if (version > kSchemaVersion) {
    throw store_error(file.string() + ": schema version " + std::to_string(version) +
                      " was written by a newer alertrouter (this one knows up to " +
                      std::to_string(kSchemaVersion) + "); refusing to open it");
  }
  const std::int64_t app = pragma_int(db, file, "PRAGMA application_id", "read application_id of");
  if (app != 0 && app != kApplicationId) {
    throw store_error(file.string() + ": not an alertrouter store (application_id " +
                      std::to_string(app) + ")");
  }
  if (version == 0) {
    // A brand-new file has no tables; anything else is some other program's database.
    const std::int64_t tables =
        pragma_int(db, file, "SELECT count(*) FROM sqlite_schema", "read the schema of");
    if (tables != 0) {
      throw store_error(file.string() +
                        ": not an alertrouter store (it has tables but no schema version)");
    }
  }
}

outbox_message read_message(const statement& s) {
  // Columns in kMessageColumns order.
  outbox_message m;
  m.seq = static_cast<std::uint64_t>(s.int64(0));
  m.id = s.text(1);
  m.destination = s.text(2);
  m.url = s.text(3);
  m.channel = s.text(4);
  m.kind = s.text(5) == "resolve" ? routing::notification_kind::resolve
                                  : routing::notification_kind::page;
  m.body = s.text(6);
  m.created_ms = s.int64(7);
  const std::string_view state = s.text(8);
  m.state = state == "delivered" ? message_state::delivered
            : state == "dead"    ? message_state::dead
                                 : message_state::pending;
  m.attempts = static_cast<std::uint32_t>(s.int64(9));
  m.next_attempt_ms = s.int64(10);
  m.last_error = s.text(11);
  m.finished_ms = s.int64(12);
  return m;
}

constexpr std::string_view kMessageColumns =
    "seq, id, destination, url, channel, kind, body, created_ms, state, attempts, "
    "next_attempt_ms, last_error, finished_ms";
// Where kMessageColumns come from: every outbox row has its body row (both are written and
// pruned in the same transaction).
constexpr std::string_view kMessageTables = "outbox JOIN outbox_body USING (seq)";

std::int64_t closed_ms(const routing::incident& inc) {
  if (!inc.closed_at) return 0;
  return std::chrono::floor<std::chrono::milliseconds>(*inc.closed_at).time_since_epoch().count();
}

// Copies the WAL back into the database file from a thread and connection of its own. SQLite's
// automatic checkpoint runs inside the COMMIT that crosses its threshold: that commit, and every
// webhook waiting on it, would also wait for megabytes of pages to be copied and the database file
// fsynced. PASSIVE checkpoints never block the writer; frames committed meanwhile wait for the next
// round.
class wal_checkpointer {
 public:
  explicit wal_checkpointer(const fs::path& file) {
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(
        file.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
        nullptr);
    db_.reset(raw);
    if (rc != SQLITE_OK) fail(raw, "open a checkpoint connection to", file);
    sqlite3_busy_timeout(raw, kBusyTimeoutMs);
    // A connection knows the database is in WAL mode only once it has read it; until then a
    // checkpoint does nothing and reports success.
    if (pragma_text(raw, file, "PRAGMA journal_mode", "read the journal mode of") != "wal") {
      throw store_error(file.string() + ": not in WAL mode");
    }
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "wal-checkpoint");  // as top -H and perf show it
      run();
    });
  }
  ~wal_checkpointer() {
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
  }
  wal_checkpointer(const wal_checkpointer&) = delete;
  wal_checkpointer& operator=(const wal_checkpointer&) = delete;

  // Asks for a checkpoint soon; requests made while one runs ask for one more after it.
  void request() {
    {
      const std::lock_guard lock(mutex_);
      requested_ = true;
    }
    wake_.notify_one();
  }
  std::uint64_t checkpoints() const { return checkpoints_.load(std::memory_order_relaxed); }
  std::uint64_t failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || requested_; });
      if (stop_) return;
      requested_ = false;
      lock.unlock();
      // A failure (the disk is full, say) changes nothing: the frames stay in the WAL, where
      // readers find them, and the writer's forced checkpoint bounds the WAL meanwhile.
      const int rc = sqlite3_wal_checkpoint_v2(db_.get(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                               nullptr, nullptr);
      (rc == SQLITE_OK ? checkpoints_ : failures_).fetch_add(1, std::memory_order_relaxed);
      lock.lock();
    }
  }

  db_ptr db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool requested_ = false;
  bool stop_ = false;
  std::atomic<std::uint64_t> checkpoints_{0};
  std::atomic<std::uint64_t> failures_{0};
  std::thread thread_;  // last: started once everything above exists
};

class sqlite_store final : public state_store {
 public:
  sqlite_store(std::unique_ptr<dir_lock> lock, db_ptr db, fs::path file)
      : lock_(std::move(lock)),
        db_(std::move(db)),
        file_(std::move(file)),
        checkpointer_(std::make_unique<wal_checkpointer>(file_)) {
    sqlite3* d = db_.get();
    // Replaces SQLite's automatic checkpoint (see wal_checkpointer).
    sqlite3_wal_hook(d, &sqlite_store::on_wal_commit, this);
    begin_ = statement(d, file_, "BEGIN IMMEDIATE");
    commit_ = statement(d, file_, "COMMIT");
    upsert_incident_ = statement(d, file_,
                                 "INSERT INTO incidents (fingerprint, id, open, closed_ms, data) "
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO UPDATE SET "
                                 "id = excluded.id, open = excluded.open, "
                                 "closed_ms = excluded.closed_ms, data = excluded.data");
    insert_message_ = statement(d, file_,
                                "INSERT INTO outbox (seq, id, destination, url, channel, kind, "
                                "created_ms, state, attempts, next_attempt_ms, last_error, "
                                "finished_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                "ON CONFLICT (id) DO NOTHING");
    insert_body_ = statement(d, file_, "INSERT INTO outbox_body (seq, body) VALUES (?, ?)");
    attempt_ = statement(d, file_,
                         "UPDATE outbox SET attempts = ?, next_attempt_ms = ?, last_error = ? "
                         "WHERE id = ? AND state = 'pending'");
    delivered_ = statement(d, file_,
                           "UPDATE outbox SET state = 'delivered', attempts = ?, finished_ms = ? "
                           "WHERE id = ? AND state = 'pending'");
    dead_ = statement(d, file_,
                      "UPDATE outbox SET state = 'dead', attempts = ?, finished_ms = ?, "
                      "last_error = ? WHERE id = ? AND state = 'pending'");
    set_meta_ = statement(d, file_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    read_high_water();
  }

  recovered_state load() override {
    recovered_state r;
    statement inc(db_.get(), file_, "SELECT fingerprint, data FROM incidents ORDER BY id", false);
    while (inc.step()) {
      try {
        r.incidents.push_back(decode_incident(inc.text(1)));
      } catch (const store_error& e) {
        throw store_error("load " + file_.string() + ": incident " + std::string(inc.text(0)) +
                          ": " + e.what());
      }
    }
    statement msg(db_.get(), file_,
                  "SELECT " + std::string(kMessageColumns) + " FROM " +
                      std::string(kMessageTables) + " WHERE state = 'pending' ORDER BY seq",
                  false);
    while (msg.step()) r.pending.push_back(read_message(msg));
    read_high_water();
    r.next_seq = next_seq_;
    r.next_incident_id = next_incident_id_;
    return r;
  }

  void commit(std::span<change_set> sets) override {
    const std::uint64_t seq_before = next_seq_;
    const std::uint64_t incident_before = next_incident_id_;
    // The high-water marks (next_seq, next_incident_id) are not written here: the rows hold
    // them (max(seq) + 1, max(id) + 1) until prune() deletes rows, which saves them in meta first.
    // Delivery progress alone needs no fsync of its own: losing it in a power cut costs one more
    // attempt (same id). It reaches the disk with the next fsync of the WAL (the next change set
    // committed, or a checkpoint). SQLite's WAL mode keeps the database consistent either way.
    const bool progress_only = std::all_of(sets.begin(), sets.end(), [](const change_set& set) {
      return set.incidents.empty() && set.messages.empty();
    });
    try {
      // Set for every transaction, so a failure to switch back can never leave change sets
      // committed without their fsync: if FULL cannot be set, the commit fails. Prepared
      // afresh each time: PRAGMA synchronous takes effect when it is prepared, and a prepared
      // copy run again is re-prepared only as it runs, so a kept statement would apply the level
      // its previous run asked for (after two progress-only commits, a change set at NORMAL).
      // Switched only when it changes: the connection keeps the level it was last set to.
      if (full_sync_ == progress_only) {
        full_sync_ = false;  // unknown until the pragma below has run
        exec(db_.get(), file_,
             progress_only ? "PRAGMA synchronous = NORMAL" : "PRAGMA synchronous = FULL",
             "set synchronous on");
        full_sync_ = !progress_only;
      }
      begin_.run();
      for (change_set& set : sets) {
        for (const routing::incident& inc : set.incidents) write_incident(inc);
        for (outbox_message& m : set.messages) write_message(m);
        for (const progress_update& p : set.progress) write_progress(p);
      }
      commit_.run();
    } catch (...) {
      // Whatever failed (a store error, or bad_alloc while encoding), no transaction stays open.
      rollback();
      next_seq_ = seq_before;
      next_incident_id_ = incident_before;
      for (change_set& set : sets) {
        for (outbox_message& m : set.messages) m.seq = 0;
      }
      try {
        throw;
      } catch (const store_error& e) {
        throw store_error("commit to " + file_.string() + ": " + reason(e));
      }
    }
  }

  void record_attempt(std::string_view id, std::uint32_t attempts, std::int64_t next_attempt_ms,
                      std::string_view last_error) override {
    one_progress({progress_update::what::attempt, std::string(id), attempts, next_attempt_ms,
                  std::string(last_error)});
  }
  void mark_delivered(std::string_view id, std::uint32_t attempts, std::int64_t at_ms) override {
    one_progress({progress_update::what::delivered, std::string(id), attempts, at_ms, {}});
  }
  void mark_dead(std::string_view id, std::uint32_t attempts, std::int64_t at_ms,
                 std::string_view last_error) override {
    one_progress(
        {progress_update::what::dead, std::string(id), attempts, at_ms, std::string(last_error)});
  }

  prune_result prune(std::int64_t before_ms) override {
    prune_result r;
    try {
      begin_.run();
      // Deleted rows take their seq and incident id with them: keep the marks (read_high_water).
      set_meta_.bind("next_seq", next_seq_).run();
      set_meta_.bind("next_incident_id", next_incident_id_).run();
      statement inc(db_.get(), file_,
                    "DELETE FROM incidents WHERE closed_ms IS NOT NULL AND closed_ms < ?", false);
      inc.bind(before_ms).run();
      r.incidents = static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
      statement body(db_.get(), file_,
                     "DELETE FROM outbox_body WHERE seq IN "
                     "(SELECT seq FROM outbox WHERE state = ? AND finished_ms < ?)",
                     false);
      statement msg(db_.get(), file_, "DELETE FROM outbox WHERE state = ? AND finished_ms < ?",
                    false);
      body.bind("delivered", before_ms).run();
      msg.bind("delivered", before_ms).run();
      r.delivered = static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
      body.bind("dead", before_ms).run();
      msg.bind("dead", before_ms).run();
      r.dead = static_cast<std::uint64_t>(sqlite3_changes64(db_.get()));
      commit_.run();
    } catch (const store_error& e) {
      rollback();
      throw store_error("prune " + file_.string() + ": " + reason(e));
    }
    return r;
  }

  store_stats stats() override {
    store_stats st;
    st.file_bytes =
        static_cast<std::uint64_t>(bytes_of(file_) + bytes_of(with_suffix(file_, "-wal")));
    statement s(db_.get(), file_,
                "SELECT (SELECT count(*) FROM outbox WHERE state = 'pending'), "
                "(SELECT count(*) FROM outbox WHERE state = 'dead'), "
                "(SELECT min(created_ms) FROM outbox WHERE state = 'pending')",
                false);
    if (s.step()) {
      st.pending = static_cast<std::uint64_t>(s.int64(0));
      st.dead = static_cast<std::uint64_t>(s.int64(1));
      if (!s.is_null(2)) st.oldest_pending_created_ms = s.int64(2);
    }
    s.reset();
    const checkpoint_counts c = checkpoints();
    st.checkpoints = c.checkpoints;
    st.checkpoint_failures = c.failures;
    st.forced_checkpoints = c.forced;
    return st;
  }

  checkpoint_counts checkpoints() const override {
    return {checkpointer_->checkpoints(), checkpointer_->failures(), forced_checkpoints_};
  }

  std::vector<outbox_message> list_outbox(std::size_t limit) override {
    return select_messages("state IN ('pending', 'dead') ORDER BY seq", limit);
  }

  std::vector<outbox_message> list_dead(std::size_t limit) override {
    std::vector<outbox_message> out = select_messages("state = 'dead' ORDER BY seq DESC", limit);
    std::reverse(out.begin(), out.end());
    return out;
  }

 private:
  // Outbox rows matching `where_order` (a WHERE condition and ORDER BY), at most `limit`.
  std::vector<outbox_message> select_messages(std::string_view where_order, std::size_t limit) {
    std::vector<outbox_message> out;
    statement s(db_.get(), file_,
                "SELECT " + std::string(kMessageColumns) + " FROM " + std::string(kMessageTables) +
                    " WHERE " + std::string(where_order) + " LIMIT ?",
                false);
    s.bind(static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX)));
    while (s.step()) out.push_back(read_message(s));
    return out;
  }

  // The part of a store_error after "WHAT FILE: ", so a wrapped error names the file once.
  std::string reason(const store_error& e) const {
    std::string_view msg = e.what();
    const std::string prefix = file_.string() + ": ";
    if (auto at = msg.find(prefix); at != std::string_view::npos) {
      msg.remove_prefix(at + prefix.size());
    }
    return std::string(msg);
  }

  void rollback() {
    // A failed COMMIT (disk full, I/O error) may already have rolled back.
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  void read_high_water() {
    // max(seq) + 1 covers stores whose meta row is behind (never, but cheap to be sure).
    statement s(db_.get(), file_,
                "SELECT max(coalesce((SELECT value FROM meta WHERE key = 'next_seq'), 1), "
                "coalesce((SELECT max(seq) FROM outbox), 0) + 1), "
                "max(coalesce((SELECT value FROM meta WHERE key = 'next_incident_id'), 1), "
                "coalesce((SELECT max(id) FROM incidents), 0) + 1)",
                false);
    if (s.step()) {
      next_seq_ = static_cast<std::uint64_t>(s.int64(0));
      next_incident_id_ = static_cast<std::uint64_t>(s.int64(1));
    }
    s.reset();
  }

  void write_incident(const routing::incident& inc) {
    const std::string data = encode_incident(inc);
    upsert_incident_
        .bind(routing::to_hex(inc.fp), inc.id, inc.open(),
              inc.closed_at ? std::optional<std::int64_t>(closed_ms(inc)) : std::nullopt, data)
        .run();
    next_incident_id_ = std::max(next_incident_id_, inc.id + 1);
  }

  // A message whose id is already stored (the same notification computed again, e.g. after a
  // restart restored an incident the table had evicted) is skipped, seq left 0: one id, one row.
  void write_message(outbox_message& m) {
    insert_message_
        .bind(next_seq_, m.id, m.destination, m.url, m.channel, routing::to_string(m.kind),
              m.created_ms, to_string(m.state), m.attempts, m.next_attempt_ms, m.last_error,
              m.finished_ms)
        .run();
    if (sqlite3_changes64(db_.get()) == 0) {
      m.seq = 0;
      return;
    }
    insert_body_.bind(next_seq_, m.body).run();
    m.seq = next_seq_++;
  }

  void write_progress(const progress_update& p) {
    switch (p.op) {
      case progress_update::what::attempt:
        attempt_.bind(p.attempts, p.at_ms, p.error, p.id).run();
        return;
      case progress_update::what::delivered:
        delivered_.bind(p.attempts, p.at_ms, p.id).run();
        return;
      case progress_update::what::dead:
        dead_.bind(p.attempts, p.at_ms, p.error, p.id).run();
        return;
    }
  }

  void one_progress(progress_update p) {
    change_set set;
    set.progress.push_back(std::move(p));
    commit(std::span<change_set>(&set, 1));
  }

  // After every commit, with the WAL's size in pages.
  static int on_wal_commit(void* self, sqlite3* db, const char*, int pages) {
    auto* store = static_cast<sqlite_store*>(self);
    if (pages >= kForcedCheckpointPages) {
      // The checkpointer is behind (or failing): copy here, with no other writer, so the WAL
      // can start over at the next commit.
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
      ++store->forced_checkpoints_;
    } else if (pages >= kCheckpointPages) {
      store->checkpointer_->request();
    }
    return SQLITE_OK;
  }

  std::unique_ptr<dir_lock> lock_;  // released after the database is closed
  db_ptr db_;
  fs::path file_;
  // Destroyed (its thread joined, its connection closed) before db_ and lock_.
  std::unique_ptr<wal_checkpointer> checkpointer_;
  // Whether the connection is known to be at synchronous=FULL; false until a commit set it.
  bool full_sync_ = false;
  std::uint64_t forced_checkpoints_ = 0;
  statement begin_, commit_, upsert_incident_, insert_message_, insert_body_, attempt_, delivered_,
      dead_, set_meta_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_incident_id_ = 1;
};

// Creates `dir` (and parents) if missing; the last component gets mode 0700.
void make_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  if (fs::exists(dir, ec)) {
    throw store_error("state directory " + dir.string() + ": exists and is not a directory");
  }
  if (dir.has_parent_path()) {
    fs::create_directories(dir.parent_path(), ec);
    if (ec) throw store_error("create state directory " + dir.string() + ": " + ec.message());
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    throw store_error("create state directory " + dir.string() + ": " + std::strerror(errno));
  }
}

}  // namespace

fs::path sqlite_store_file(const fs::path& dir) { return dir / "alertrouter.db"; }

std::unique_ptr<state_store> open_sqlite_store(const fs::path& dir) {
  // SQLite's memory statistics (which nobody reads here) take a global mutex on every
  // allocation; off, before SQLite initializes. Too late (another user of SQLite in the
  // process initialized it first) is harmless: it only costs that mutex.
  static const bool configured = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK;
  (void)configured;
  make_dir(dir);
  // Two daemons writing one store would both deliver everything: the second one is refused.
  auto lock = std::make_unique<dir_lock>(dir);
  const fs::path file = sqlite_store_file(dir);

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      file.c_str(), &raw,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
      nullptr);
  db_ptr db(raw);
  if (rc != SQLITE_OK) fail(raw, "open", file);
  sqlite3* d = db.get();
  sqlite3_busy_timeout(d, kBusyTimeoutMs);
  sqlite3_extended_result_codes(d, 1);

  // The first read: a file that is not SQLite fails here ("file is not a database").
  const std::int64_t version = pragma_int(d, file, "PRAGMA user_version", "open");
  check_identity(d, file, version);
  if (version > 0) {
    // Before anything writes: a corrupt store is reported, not made worse.
    const std::string check = run_check(d, file, "PRAGMA quick_check");
    if (check != "ok") throw store_error(file.string() + ": corrupt: " + check);
  }

  // A new store gets 8 KiB pages (set before the first table, and before WAL mode, which fixes
  // the page size): a commit writes a few KB per webhook (incidents, notification bodies), and
  // bigger pages mean fewer WAL frames, each a write() of its own.
  if (version == 0) exec(d, file, "PRAGMA page_size = 8192", "set the page size of");
  const std::string mode = pragma_text(d, file, "PRAGMA journal_mode = WAL", "set WAL mode on");
  if (mode != "wal") {
    throw store_error("set WAL mode on " + file.string() + ": journal mode is " + mode);
  }
  exec(d, file, "PRAGMA synchronous = FULL", "set synchronous on");

  for (std::int64_t v = version; v < kSchemaVersion; ++v) {
    // One transaction per step: a migration interrupted by a crash is redone, not half-done.
    exec(d, file, "BEGIN IMMEDIATE", "migrate");
    try {
      exec(d, file, kMigrations[v], "migrate");
      const std::string set_version = "PRAGMA user_version = " + std::to_string(v + 1) +
                                      "; PRAGMA application_id = " + std::to_string(kApplicationId);
      exec(d, file, set_version.c_str(), "migrate");
      exec(d, file, "COMMIT", "migrate");
    } catch (...) {
      sqlite3_exec(d, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
  return std::make_unique<sqlite_store>(std::move(lock), std::move(db), file);
}

check_report check_sqlite_store(const fs::path& dir) {
  check_report r;
  const fs::path file = sqlite_store_file(dir);
  auto say = [&r](std::string line) { r.lines.push_back(std::move(line)); };

  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    say(dir.string() + ": not a directory" + (ec ? " (" + ec.message() + ")" : std::string()));
    return r;
  }
  if (!fs::exists(file, ec)) {
    say(file.string() + ": no store here" + (ec ? " (" + ec.message() + ")" : std::string()));
    return r;
  }

  // Without a -wal file nobody has the store open and everything is in the main file: open it
  // immutable so SQLite creates no -wal/-shm. With one (a running or killed daemon), open
  // read-only through the WAL to see its latest commits.
  const bool has_wal = fs::exists(with_suffix(file, "-wal"), ec);
  std::string uri = "file:";
  for (char c : file.string()) {
    if (c == '?' || c == '#' || c == '%') {
      static constexpr char hex[] = "0123456789ABCDEF";
      uri += '%';
      uri += hex[static_cast<unsigned char>(c) >> 4];
      uri += hex[static_cast<unsigned char>(c) & 0xF];
    } else {
      uri += c;
    }
  }
  uri += has_wal ? "?mode=ro" : "?mode=ro&immutable=1";

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(
      uri.c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX, nullptr);
  db_ptr db(raw);
  try {
    if (rc != SQLITE_OK) fail(raw, "open", file);
    sqlite3* d = db.get();
    sqlite3_busy_timeout(d, kBusyTimeoutMs);
    const std::int64_t version = pragma_int(d, file, "PRAGMA user_version", "open");
    check_identity(d, file, version);
    say(file.string() + ": schema version " + std::to_string(version) + " (current " +
        std::to_string(kSchemaVersion) + ")");
    const std::string integrity = run_check(d, file, "PRAGMA integrity_check");
    if (integrity != "ok") throw store_error(file.string() + ": corrupt: " + integrity);
    say("integrity: ok");
    if (version == 0) {
      say("empty store (no schema yet)");
    } else {
      statement inc(d, file, "SELECT open, count(*) FROM incidents GROUP BY open", false);
      std::int64_t n_open = 0, n_closed = 0;
      while (inc.step()) (inc.int64(0) != 0 ? n_open : n_closed) = inc.int64(1);
      say("incidents: " + std::to_string(n_open) + " open, " + std::to_string(n_closed) +
          " closed");
      statement msg(d, file, "SELECT state, count(*) FROM outbox GROUP BY state", false);
      std::int64_t pending = 0, delivered = 0, dead = 0;
      while (msg.step()) {
        const std::string_view state = msg.text(0);
        (state == "pending" ? pending : state == "dead" ? dead : delivered) = msg.int64(1);
      }
      say("outbox: " + std::to_string(pending) + " pending, " + std::to_string(dead) + " dead, " +
          std::to_string(delivered) + " delivered");
    }
    say("size: " + std::to_string(bytes_of(file)) + " bytes, write-ahead log " +
        std::to_string(bytes_of(with_suffix(file, "-wal"))) + " bytes");
    r.ok = true;
    say(file.string() + ": OK");
  } catch (const store_error& e) {
    say(e.what());
    r.ok = false;
  }
  return r;
}

}  // namespace alertrouter::store
