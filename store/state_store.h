#pragma once

// The durable record behind the in-memory incident table and the delivery queue: incidents (the
// dedup state) and the outbox (every notification from acceptance to delivered or dead). The
// daemon commits a webhook's effects here before it answers 2xx, so what it promised survives
// SIGKILL and reboots. An interface, so a PostgreSQL backend can stand behind it later;
// open_sqlite_store is the embedded one. No Asio/Beast, no clock: callers pass times in.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "routing/incident.h"
#include "routing/planner.h"

namespace alertrouter::store {

enum class message_state { pending, delivered, dead };
// "pending", "delivered", "dead": as stored and as shown by the API.
std::string_view to_string(message_state s);

// One notification in the outbox.
struct outbox_message {
  std::uint64_t seq = 0;    // assigned by the store at commit, increasing; the global order
  std::string id;           // notification id (Idempotency-Key); unique
  std::string destination;  // ordering key: same destination => delivered in seq order
  std::string url;
  std::string channel;  // "webhook"
  routing::notification_kind kind = routing::notification_kind::page;
  std::string body;             // rendered JSON, sent as is
  std::int64_t created_ms = 0;  // unix ms (wall clock) when accepted
  message_state state = message_state::pending;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_ms = 0;  // when pending: not before this
  std::string last_error;
  std::int64_t finished_ms = 0;  // delivered or dead: when; 0 while pending

  friend bool operator==(const outbox_message&, const outbox_message&) = default;
};

// Delivery progress of one message already in the outbox. Applies only while the message is
// pending: for an unknown id, or one already delivered or dead, it changes nothing.
struct progress_update {
  enum class what {
    attempt,    // an attempt failed: attempts, next_attempt_ms = at_ms, last_error = error
    delivered,  // attempts, finished_ms = at_ms
    dead,       // attempts, finished_ms = at_ms, last_error = error
  };
  what op = what::attempt;
  std::string id;
  std::uint32_t attempts = 0;
  std::int64_t at_ms = 0;
  std::string error;
};

// One webhook body's effects; a commit applies all its change sets or none. Within a set:
// incidents, then messages, then progress.
struct change_set {
  // Upserted, keyed by fingerprint: an incident replaces the stored row with its fingerprint
  // (a reopened incident replaces the older one).
  std::vector<routing::incident> incidents;
  // New outbox rows; commit() fills in each one's seq. A message whose id is already stored is
  // skipped (its seq stays 0): the same notification computed again is one row, never an error.
  std::vector<outbox_message> messages;
  // Progress of earlier messages (group_committer batches delivery progress this way).
  std::vector<progress_update> progress;
};

struct recovered_state {
  std::vector<routing::incident> incidents;  // all stored, by id ascending
  std::vector<outbox_message> pending;       // state pending, by seq ascending
  std::uint64_t next_seq = 1;                // > every seq ever assigned by this store
  // > every incident id ever committed, even of pruned incidents: notification ids embed the
  // incident id, so reusing one after a restart would repeat an Idempotency-Key.
  std::uint64_t next_incident_id = 1;
};

struct store_stats {
  std::uint64_t file_bytes = 0;  // the database file plus its write-ahead log
  std::uint64_t pending = 0;
  std::uint64_t dead = 0;
  std::optional<std::int64_t> oldest_pending_created_ms;
  // WAL checkpoints since the store was opened: done in the background, failed there, and done
  // by the writer itself because the background ones fell behind.
  std::uint64_t checkpoints = 0;
  std::uint64_t checkpoint_failures = 0;
  std::uint64_t forced_checkpoints = 0;
};

struct prune_result {
  std::uint64_t incidents = 0;  // closed incidents deleted
  std::uint64_t delivered = 0;  // delivered messages deleted
  std::uint64_t dead = 0;       // dead messages deleted
};

// Every failure of a store: what failed, which file, and the database's reason, e.g.
// "commit to /var/lib/alertrouter/alertrouter.db: database or disk is full".
class store_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The durable state. Not thread-safe: one thread uses it (see group_committer). Every method
// throws store_error on failure; a failed call leaves the store as it was before the call.
class state_store {
 public:
  virtual ~state_store() = default;

  // Everything needed to resume after a restart.
  virtual recovered_state load() = 0;

  // One transaction, one fsync, for all `sets` in order; fills in each new message's seq. On
  // failure (disk full, I/O error, locked, a duplicate message id...) nothing of the batch is
  // stored, the seqs are left 0, and the store stays usable.
  virtual void commit(std::span<change_set> sets) = 0;

  // Delivery progress, each its own small transaction (or batched: change_set::progress). No
  // effect unless message `id` is pending.
  virtual void record_attempt(std::string_view id, std::uint32_t attempts,
                              std::int64_t next_attempt_ms, std::string_view last_error) = 0;
  virtual void mark_delivered(std::string_view id, std::uint32_t attempts, std::int64_t at_ms) = 0;
  virtual void mark_dead(std::string_view id, std::uint32_t attempts, std::int64_t at_ms,
                         std::string_view last_error) = 0;

  // Deletes incidents closed before `before_ms` and delivered and dead messages finished before
  // it. Open incidents and pending messages are never pruned.
  virtual prune_result prune(std::int64_t before_ms) = 0;

  virtual store_stats stats() = 0;

  // store_stats' WAL checkpoint counters alone, without its queries: cheap enough to read after
  // every commit. Zeros for a store that does not checkpoint.
  struct checkpoint_counts {
    std::uint64_t checkpoints = 0;
    std::uint64_t failures = 0;
    std::uint64_t forced = 0;
  };
  virtual checkpoint_counts checkpoints() const { return {}; }

  // Pending and dead messages (for GET /api/v1/outbox), oldest (lowest seq) first, at most
  // `limit`.
  virtual std::vector<outbox_message> list_outbox(std::size_t limit) = 0;

  // The `limit` most recently accepted dead messages (highest seq), oldest of them first.
  virtual std::vector<outbox_message> list_dead(std::size_t limit) = 0;
};

// The file a store in `dir` lives in: DIR/alertrouter.db.
std::filesystem::path sqlite_store_file(const std::filesystem::path& dir);

// Opens (creating if absent) DIR/alertrouter.db; DIR is created (mode 0700) if missing. WAL
// journal, synchronous=FULL (a commit returns once it is on disk), a 100 ms busy timeout (a
// store locked by another process is an error, not a hang), schema migrated to the current
// version. Holds an exclusive flock on DIR/alertrouter.lock until the store is destroyed: a
// second open of the same DIR, from this process or another, throws store_error ("in use"). Throws
// store_error naming the file and the problem for a file that is not SQLite, one that fails
// quick_check, one written by a newer alertrouter (schema version), another program's database, or
// a directory that cannot be created or read. Never resets or recreates an existing file.
std::unique_ptr<state_store> open_sqlite_store(const std::filesystem::path& dir);

// For `alertrouterctl state check --state-dir DIR`: opens DIR/alertrouter.db read-only, runs
// integrity_check, and reports the schema version, counts (incidents open/closed; messages
// pending, dead, delivered) and file sizes, one line each. Never creates or modifies DIR or the
// database; a cleanly closed store (no -wal file) is read without creating -wal/-shm, an open
// or crashed one through its existing WAL (so it sees the latest commits). ok is false, with
// the reason among the lines, when the store is missing, unreadable, corrupt or of a newer
// schema. Never throws store_error.
struct check_report {
  bool ok = false;
  std::vector<std::string> lines;
};
check_report check_sqlite_store(const std::filesystem::path& dir);

}  // namespace alertrouter::store
