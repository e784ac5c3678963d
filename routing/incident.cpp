#include "routing/incident.h"

#include <algorithm>
#include <list>
#include <unordered_map>
#include <utility>

namespace alertrouter::routing {

std::string_view to_string(observation o) {
  switch (o) {
    case observation::opened:
      return "opened";
    case observation::reopened:
      return "reopened";
    case observation::duplicate:
      return "duplicate";
    case observation::closed:
      return "closed";
    case observation::stale:
      return "stale";
    case observation::unknown_resolve:
      return "unknown_resolve";
  }
  return "unknown";
}

namespace {

struct entry;
using order_list = std::list<entry*>;

// One slot per fingerprint. The slot is reused when a closed incident re-fires, so a re-fire
// moves the slot between the two lists without allocating a new map node.
struct entry {
  incident inc;
  order_list::iterator pos;  // in open_order (while open) or closed_order (while closed)
};

}  // namespace

struct memory_incident_table::state {
  std::chrono::seconds retention;
  std::size_t max_incidents;
  std::uint64_t next_id = 1;
  std::uint64_t evictions = 0;
  // unordered_map never moves its nodes, so entry* stays valid until the entry is erased.
  std::unordered_map<fingerprint, entry, fingerprint_hash> by_fp;
  std::unordered_map<std::uint64_t, entry*> by_id;
  order_list open_order;    // by id: ids increase, so push_back keeps it sorted
  order_list closed_order;  // by (closed_at, id)

  // Inserts `e` (just closed) into closed_order. `now` normally does not go backwards, so the
  // right place is at the end and the loop does not run.
  void link_closed(entry* e) {
    auto where = closed_order.end();
    while (where != closed_order.begin()) {
      auto prev = std::prev(where);
      if (*(*prev)->inc.closed_at <= *e->inc.closed_at) break;
      where = prev;
    }
    // splice keeps e->pos valid; it now points into closed_order.
    closed_order.splice(where, open_order, e->pos);
  }

  void erase(entry* e) {
    (e->inc.open() ? open_order : closed_order).erase(e->pos);
    by_id.erase(e->inc.id);
    const fingerprint fp = e->inc.fp;  // a copy: the key must outlive the node it destroys
    by_fp.erase(fp);
  }

  void evict_one() {
    order_list& victims = closed_order.empty() ? open_order : closed_order;
    erase(victims.front());
    ++evictions;
  }

  // Starts a new incident in slot `e` (fresh or reused). The caller has linked e->pos into
  // open_order already.
  void start(entry* e, const alert& a, ownership owner, timestamp now) {
    incident& inc = e->inc;
    inc.id = next_id++;
    inc.fp = a.fp;
    inc.starts_at = a.starts_at;
    inc.opened_at = now;
    inc.closed_at.reset();
    inc.last = a;
    inc.owner = owner;
    inc.routes.clear();
    inc.paged.clear();
    by_id.emplace(inc.id, e);
  }
};

memory_incident_table::memory_incident_table(std::chrono::seconds retention,
                                             std::size_t max_incidents)
    : state_(std::make_unique<state>()) {
  state_->retention = retention;
  state_->max_incidents = std::max<std::size_t>(max_incidents, 1);
}

memory_incident_table::~memory_incident_table() = default;

observation classify_observation(const incident* existing, alert_status status,
                                 timestamp starts_at) {
  if (existing == nullptr) {
    return status == alert_status::resolved ? observation::unknown_resolve : observation::opened;
  }
  const incident& inc = *existing;
  if (status == alert_status::firing) {
    if (inc.open()) {
      // A newer occurrence while the old one is still open: the resolve between them was lost.
      // Without this the alert could never page again until some resolve arrived.
      return starts_at <= inc.starts_at ? observation::duplicate : observation::reopened;
    }
    // Only a later occurrence re-opens: Alertmanager keeps startsAt across resends, so an equal or
    // older startsAt is a delayed copy of the incident that was already resolved.
    return starts_at <= inc.starts_at ? observation::stale : observation::opened;
  }
  if (!inc.open()) {
    if (starts_at == inc.starts_at) return observation::duplicate;
    return starts_at < inc.starts_at ? observation::stale : observation::unknown_resolve;
  }
  // A resolve older than the open incident belongs to an earlier occurrence that arrived late.
  return starts_at < inc.starts_at ? observation::stale : observation::closed;
}

incident_table::result memory_incident_table::observe(const alert& a, ownership owner,
                                                      timestamp now) {
  state& s = *state_;
  auto it = s.by_fp.find(a.fp);
  entry* e = it == s.by_fp.end() ? nullptr : &it->second;
  const observation what =
      classify_observation(e == nullptr ? nullptr : &e->inc, a.status, a.starts_at);
  switch (what) {
    case observation::duplicate:
    case observation::stale:
      return {what, &e->inc};
    case observation::unknown_resolve:
      return {what, nullptr};
    case observation::opened:
      if (e == nullptr) {
        if (s.by_fp.size() >= s.max_incidents) s.evict_one();
        e = &s.by_fp.try_emplace(a.fp).first->second;
        e->pos = s.open_order.insert(s.open_order.end(), e);
      } else {  // a re-fire after the resolve
        s.by_id.erase(e->inc.id);
        s.open_order.splice(s.open_order.end(), s.closed_order, e->pos);
      }
      s.start(e, a, owner, now);
      return {what, &e->inc};
    case observation::reopened:
      s.by_id.erase(e->inc.id);
      s.open_order.splice(s.open_order.end(), s.open_order, e->pos);
      s.start(e, a, owner, now);
      return {what, &e->inc};
    case observation::closed:
      e->inc.closed_at = now;
      e->inc.last = a;
      s.link_closed(e);
      return {what, &e->inc};
  }
  return {what, nullptr};
}

void memory_incident_table::record_paged(std::uint64_t id, std::vector<std::string> routes,
                                         std::vector<paged_target> paged) {
  auto it = state_->by_id.find(id);
  if (it == state_->by_id.end()) return;
  it->second->inc.routes = std::move(routes);
  it->second->inc.paged = std::move(paged);
}

const incident* memory_incident_table::find(fingerprint fp) const {
  auto it = state_->by_fp.find(fp);
  return it == state_->by_fp.end() ? nullptr : &it->second.inc;
}

void memory_incident_table::restore(incident inc) {
  state& s = *state_;
  if (auto it = s.by_fp.find(inc.fp); it != s.by_fp.end()) {
    s.erase(&it->second);
  } else if (s.by_fp.size() >= s.max_incidents) {
    s.evict_one();
  }
  if (auto clash = s.by_id.find(inc.id); clash != s.by_id.end()) s.erase(clash->second);
  s.next_id = std::max(s.next_id, inc.id + 1);
  entry* e = &s.by_fp.try_emplace(inc.fp).first->second;
  e->inc = std::move(inc);
  s.by_id.emplace(e->inc.id, e);
  // Keep each list's order: open by id, closed by (closed_at, id). Recovery restores in id
  // order, so the place is almost always the end.
  if (e->inc.open()) {
    auto where = s.open_order.end();
    while (where != s.open_order.begin() && (*std::prev(where))->inc.id > e->inc.id) --where;
    e->pos = s.open_order.insert(where, e);
  } else {
    auto where = s.closed_order.end();
    while (where != s.closed_order.begin()) {
      const incident& prev = (*std::prev(where))->inc;
      if (*prev.closed_at < *e->inc.closed_at ||
          (*prev.closed_at == *e->inc.closed_at && prev.id < e->inc.id)) {
        break;
      }
      --where;
    }
    e->pos = s.closed_order.insert(where, e);
  }
}

void memory_incident_table::reserve_ids(std::uint64_t next) {
  state_->next_id = std::max(state_->next_id, next);
}

void memory_incident_table::clear() {
  state& s = *state_;
  s.open_order.clear();
  s.closed_order.clear();
  s.by_id.clear();
  s.by_fp.clear();
}

std::size_t memory_incident_table::expire(timestamp now) {
  state& s = *state_;
  const timestamp cutoff = now - s.retention;
  std::size_t dropped = 0;
  while (!s.closed_order.empty() && *s.closed_order.front()->inc.closed_at < cutoff) {
    s.erase(s.closed_order.front());
    ++dropped;
  }
  return dropped;
}

std::size_t memory_incident_table::open_count() const { return state_->open_order.size(); }

std::size_t memory_incident_table::size() const { return state_->by_fp.size(); }

std::uint64_t memory_incident_table::evictions() const { return state_->evictions; }

void memory_incident_table::for_each_open(const std::function<void(const incident&)>& f) const {
  for (const entry* e : state_->open_order) f(e->inc);
}

}  // namespace alertrouter::routing
