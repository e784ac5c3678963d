#include "routing/incident.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <list>
#include <random>
#include <unordered_map>
#include <utility>
#include <vector>

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

// classify_observation on what it reads of an incident: whether there is one, whether it is
// open, and its startsAt.
observation classify(bool exists, bool open, timestamp inc_starts_at, alert_status status,
                     timestamp starts_at) {
  if (!exists) {
    return status == alert_status::resolved ? observation::unknown_resolve : observation::opened;
  }
  if (status == alert_status::firing) {
    if (open) {
      // A newer occurrence while the old one is still open: the resolve between them was lost.
      // Without this the alert could never page again until some resolve arrived.
      return starts_at <= inc_starts_at ? observation::duplicate : observation::reopened;
    }
    // Only a later occurrence re-opens: Alertmanager keeps startsAt across resends, so an equal or
    // older startsAt is a delayed copy of the incident that was already resolved.
    return starts_at <= inc_starts_at ? observation::stale : observation::opened;
  }
  if (!open) {
    if (starts_at == inc_starts_at) return observation::duplicate;
    return starts_at < inc_starts_at ? observation::stale : observation::unknown_resolve;
  }
  // A resolve older than the open incident belongs to an earlier occurrence that arrived late.
  return starts_at < inc_starts_at ? observation::stale : observation::closed;
}

// Fingerprint -> entry, with what classifying an alert reads of the incident (open, startsAt)
// and its ownership copied alongside, in one flat array probed linearly. Looking up a known
// fingerprint reads one slot (a cache line at most) instead of a hash bucket and a map node, and
// classifying a repeat does not touch the incident at all: with thousands of incidents those
// were cache misses on every alert. Kept at most half full; deletion shifts the probe chain back
// (no tombstones). The hash is seeded per table: fingerprints come from the network, and a fixed
// hash would let a sender line them up into one long probe chain.
class fp_index {
 public:
  struct slot {
    std::uint64_t fp = 0;
    timestamp starts_at{};
    entry* e = nullptr;  // nullptr: the slot is free
    bool open = false;
    ownership owner = ownership::unowned;
  };

  fp_index() : seed_(std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32)) {
    slots_.resize(kMinSlots);
  }

  const slot* find(fingerprint fp) const {
    for (std::size_t i = home(fp.value);; i = (i + 1) & mask()) {
      const slot& s = slots_[i];
      if (s.e == nullptr) return nullptr;
      if (s.fp == fp.value) return &s;
    }
  }

  // Adds `e` (whose fingerprint is not in the index yet) as its incident stands.
  void insert(entry* e) {
    if (2 * (used_ + 1) > slots_.size()) grow();
    place(e);
    ++used_;
  }

  // Copies the incident's open state, startsAt and ownership again after they changed.
  void update(const entry* e) {
    slot& s = slots_[position(e->inc.fp.value)];
    s.starts_at = e->inc.starts_at;
    s.open = e->inc.open();
    s.owner = e->inc.owner;
  }

  void erase(fingerprint fp) {
    std::size_t hole = position(fp.value);
    slots_[hole] = slot{};
    --used_;
    // Backward shift: move later members of the chain into the hole when their home allows.
    for (std::size_t i = (hole + 1) & mask(); slots_[i].e != nullptr; i = (i + 1) & mask()) {
      const std::size_t want = home(slots_[i].fp);
      // Whether `want` lies cyclically in (hole, i]: then the entry must stay.
      const bool stays = hole <= i ? (hole < want && want <= i) : (hole < want || want <= i);
      if (stays) continue;
      slots_[hole] = slots_[i];
      slots_[i] = slot{};
      hole = i;
    }
  }

  void clear() {
    slots_.assign(kMinSlots, slot{});
    used_ = 0;
  }

 private:
  static constexpr std::size_t kMinSlots = 16;

  std::size_t mask() const { return slots_.size() - 1; }
  std::size_t home(std::uint64_t fp) const {
    const std::uint64_t h = (fp ^ seed_) * 0x9e3779b97f4a7c15ull;
    return static_cast<std::size_t>(h >> (64 - std::countr_zero(slots_.size())));
  }
  // The slot holding `fp`, which is in the index.
  std::size_t position(std::uint64_t fp) const {
    std::size_t i = home(fp);
    while (slots_[i].fp != fp || slots_[i].e == nullptr) i = (i + 1) & mask();
    return i;
  }
  void place(entry* e) {
    std::size_t i = home(e->inc.fp.value);
    while (slots_[i].e != nullptr) i = (i + 1) & mask();
    slots_[i] = slot{e->inc.fp.value, e->inc.starts_at, e, e->inc.open(), e->inc.owner};
  }
  void grow() {
    std::vector<slot> old(slots_.size() * 2);
    old.swap(slots_);
    for (const slot& s : old) {
      if (s.e != nullptr) place(s.e);
    }
  }

  std::uint64_t seed_;
  std::vector<slot> slots_;  // a power of two in size
  std::size_t used_ = 0;
};

}  // namespace

struct memory_incident_table::state {
  std::chrono::seconds retention;
  std::size_t max_incidents;
  std::uint64_t next_id = 1;
  std::uint64_t evictions = 0;
  // unordered_map never moves its nodes, so entry* stays valid until the entry is erased. Owns
  // the entries; lookups go through `index`.
  std::unordered_map<fingerprint, entry, fingerprint_hash> by_fp;
  fp_index index;
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
    index.erase(fp);
    by_fp.erase(fp);
  }

  entry* lookup(fingerprint fp) const {
    const fp_index::slot* s = index.find(fp);
    return s == nullptr ? nullptr : s->e;
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
    index.update(e);
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
  if (existing == nullptr) return classify(false, false, timestamp{}, status, starts_at);
  return classify(true, existing->open(), existing->starts_at, status, starts_at);
}

incident_table::result memory_incident_table::observe(const alert& a, ownership owner,
                                                      timestamp now) {
  state& s = *state_;
  const fp_index::slot* slot = s.index.find(a.fp);
  entry* e = slot == nullptr ? nullptr : slot->e;
  const observation what =
      slot == nullptr ? routing::classify(false, false, timestamp{}, a.status, a.starts_at)
                      : routing::classify(true, slot->open, slot->starts_at, a.status, a.starts_at);
  switch (what) {
    case observation::duplicate:
    case observation::stale:
      // The common case (Alertmanager's resends): answered from the index alone.
      return {what, &e->inc, slot->owner};
    case observation::unknown_resolve:
      return {what, nullptr};
    case observation::opened:
      if (e == nullptr) {
        if (s.by_fp.size() >= s.max_incidents) s.evict_one();
        e = &s.by_fp.try_emplace(a.fp).first->second;
        e->inc.fp = a.fp;
        s.index.insert(e);
        e->pos = s.open_order.insert(s.open_order.end(), e);
      } else {  // a re-fire after the resolve
        s.by_id.erase(e->inc.id);
        s.open_order.splice(s.open_order.end(), s.closed_order, e->pos);
      }
      s.start(e, a, owner, now);
      return {what, &e->inc, e->inc.owner};
    case observation::reopened:
      s.by_id.erase(e->inc.id);
      s.open_order.splice(s.open_order.end(), s.open_order, e->pos);
      s.start(e, a, owner, now);
      return {what, &e->inc, e->inc.owner};
    case observation::closed:
      e->inc.closed_at = now;
      e->inc.last = a;
      s.index.update(e);
      s.link_closed(e);
      return {what, &e->inc, e->inc.owner};
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
  const entry* e = state_->lookup(fp);
  return e == nullptr ? nullptr : &e->inc;
}

observation memory_incident_table::classify(fingerprint fp, alert_status status,
                                            timestamp starts_at) const {
  const fp_index::slot* slot = state_->index.find(fp);
  if (slot == nullptr) return routing::classify(false, false, timestamp{}, status, starts_at);
  return routing::classify(true, slot->open, slot->starts_at, status, starts_at);
}

void memory_incident_table::restore(incident inc) {
  state& s = *state_;
  if (entry* same = s.lookup(inc.fp); same != nullptr) {
    s.erase(same);
  } else if (s.by_fp.size() >= s.max_incidents) {
    s.evict_one();
  }
  if (auto clash = s.by_id.find(inc.id); clash != s.by_id.end()) s.erase(clash->second);
  s.next_id = std::max(s.next_id, inc.id + 1);
  entry* e = &s.by_fp.try_emplace(inc.fp).first->second;
  e->inc = std::move(inc);
  s.index.insert(e);
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
  s.index.clear();
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
