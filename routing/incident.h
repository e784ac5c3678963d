#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "routing/alert.h"
#include "routing/ownership.h"

namespace alertrouter::routing {

// Someone or something a page went to. A resolve goes to exactly these, even after a handoff.
struct paged_target {
  config::target_type type = config::target_type::receiver;
  std::string name;    // schedule / receiver / project name
  std::string person;  // for schedule targets: who was on call and got the page
  friend bool operator==(const paged_target&, const paged_target&) = default;
};

// One real problem: the life of a fingerprint from its first firing alert to its resolve.
struct incident {
  std::uint64_t id = 0;  // unique per table, increasing
  fingerprint fp;
  timestamp starts_at{};               // the alert's startsAt when the incident opened
  timestamp opened_at{};               // when alertrouter saw it
  std::optional<timestamp> closed_at;  // when the resolve arrived; nullopt while open
  alert last;                          // the latest accepted version of the alert
  routing::ownership owner = routing::ownership::unowned;
  std::vector<std::string> routes;  // names of the routes that matched
  std::vector<paged_target> paged;

  bool open() const { return !closed_at.has_value(); }
};

// What observing one alert did to the table.
enum class observation {
  opened,           // first firing alert of a new incident (or a re-fire after a resolve)
  reopened,         // firing alert with a later startsAt than the *open* incident: its resolve
                    // was lost (Alertmanager keeps startsAt while an alert stays active), so a
                    // new incident replaces the old one, which is dropped without a resolve
  duplicate,        // firing repeat of an open incident, or a repeat resolve of a closed one
  closed,           // resolve of an open incident
  stale,            // firing alert not newer than the closed incident, or a resolve older than
                    // the open incident: out of order, changes nothing
  unknown_resolve,  // resolve for a fingerprint the table does not know: changes nothing
};
std::string_view to_string(observation o);

// What observing an alert with `status` and `starts_at` does to the incident of its fingerprint
// (`existing`, nullptr when the table has none), without doing it: the state machine every
// incident_table follows. Pure.
observation classify_observation(const incident* existing, alert_status status,
                                 timestamp starts_at);

// The dedup state. Single owner: not thread-safe; the daemon calls it from one strand.
// An interface so a durable store can stand behind it later.
class incident_table {
 public:
  virtual ~incident_table() = default;

  // Applies one alert received at `now`. For `opened` and `closed` returns the incident (valid
  // until the next mutating call); otherwise the incident concerned, if any (nullptr for
  // unknown_resolve). A resolve of a closed incident is a duplicate when its startsAt equals the
  // incident's, stale when older, and unknown_resolve when newer (a firing we never saw).
  // A duplicate changes nothing, not even `last`, and does not allocate.
  struct result {
    observation what;
    const incident* subject = nullptr;
    ownership owner = ownership::unowned;  // subject->owner, when there is a subject
  };
  virtual result observe(const alert& a, ownership owner, timestamp now) = 0;

  // Records the routes matched and the targets paged for an incident (by id), replacing what was
  // recorded before. Unknown ids (expired or evicted) are ignored.
  virtual void record_paged(std::uint64_t id, std::vector<std::string> routes,
                            std::vector<paged_target> paged) = 0;

  virtual const incident* find(fingerprint fp) const = 0;

  // classify_observation(find(fp), status, starts_at): what observe() would do, without doing
  // it. Asked of every alert of every body; a table may answer without reading the incident.
  virtual observation classify(fingerprint fp, alert_status status, timestamp starts_at) const {
    return classify_observation(find(fp), status, starts_at);
  }

  // Puts back an incident as a durable store recorded it (recovery at start, or after a failed
  // commit): replaces any incident with the same fingerprint, keeps `inc.id`, and makes every
  // later id larger than it. A full table evicts as observe() does. Not for new incidents.
  virtual void restore(incident inc) = 0;

  // Forgets every incident, keeping counters and the id sequence (ids are never reused).
  virtual void clear() = 0;

  // Makes every later id at least `next` (a store remembers ids of incidents it has pruned).
  virtual void reserve_ids(std::uint64_t next) = 0;

  // Drops closed incidents closed before `now - retention`. Returns how many.
  virtual std::size_t expire(timestamp now) = 0;

  virtual std::size_t open_count() const = 0;
  virtual std::size_t size() const = 0;
  // Incidents evicted because the table was full (closed first, then the oldest open).
  virtual std::uint64_t evictions() const = 0;

  // Calls `f` for every open incident, oldest (lowest id) first. `f` must not mutate the table.
  virtual void for_each_open(const std::function<void(const incident&)>& f) const = 0;
};

// The in-memory table: a hash map by fingerprint plus an ordered index for eviction and
// retention. `max_incidents` bounds its size: inserting beyond it evicts the oldest closed
// incident (by close time), or if none is closed the oldest open one (by id). Looking up a
// fingerprint reads one slot of a flat index, and classifying an alert or observing a duplicate
// reads nothing else (the index keeps each incident's open state, startsAt and ownership);
// opening and closing are amortised O(1) when `now` does not go backwards (O(closed incidents
// younger than now) when it does).
class memory_incident_table final : public incident_table {
 public:
  // `max_incidents` of 0 is treated as 1.
  memory_incident_table(std::chrono::seconds retention, std::size_t max_incidents);
  ~memory_incident_table() override;

  result observe(const alert& a, ownership owner, timestamp now) override;
  void record_paged(std::uint64_t id, std::vector<std::string> routes,
                    std::vector<paged_target> paged) override;
  const incident* find(fingerprint fp) const override;
  observation classify(fingerprint fp, alert_status status, timestamp starts_at) const override;
  void restore(incident inc) override;
  void clear() override;
  void reserve_ids(std::uint64_t next) override;
  std::size_t expire(timestamp now) override;
  std::size_t open_count() const override;
  std::size_t size() const override;
  std::uint64_t evictions() const override;
  void for_each_open(const std::function<void(const incident&)>& f) const override;

 private:
  struct state;
  std::unique_ptr<state> state_;
};

}  // namespace alertrouter::routing
