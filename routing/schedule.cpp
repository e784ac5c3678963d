#include "routing/schedule.h"

#include <date/tz.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace alertrouter::routing {
namespace {

using std::chrono::seconds;
using local_seconds = date::local_seconds;

constexpr seconds one_day = std::chrono::hours(24);
constexpr sys_seconds no_instant_after = sys_seconds::max();
constexpr sys_seconds no_instant_before = sys_seconds::min();

// Local wall-clock time to an instant: a time inside a spring-forward gap maps to the instant
// the gap ends, an ambiguous one (fall back) to the earlier of its two instants. Monotone
// non-decreasing in `l`, which the shift search below relies on.
sys_seconds to_sys(const date::time_zone* zone, local_seconds l) {
  const date::local_info info = zone->get_info(l);
  if (info.result == date::local_info::nonexistent) return info.first.end;
  return sys_seconds{l.time_since_epoch() - info.first.offset};
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

bool in_window(const config::daily_window& w, seconds tod) {
  if (w.begin < w.end) return w.begin <= tod && tod < w.end;
  return tod >= w.begin || tod < w.end;  // wraps midnight
}

bool same_text(const std::string* a, const std::string* b) {
  if (a == b) return true;
  const std::size_t na = a == nullptr ? 0 : a->size();
  const std::size_t nb = b == nullptr ? 0 : b->size();
  if (na != nb) return false;
  return na == 0 || *a == *b;
}

}  // namespace

// The answer at `t` (pointers into the schedule, null for "empty"), the smallest instant > t
// at which it may change, and (when asked) the largest instant <= t at which it may have
// changed. Candidates are a superset of the real change points; callers re-evaluate.
struct schedule::probe {
  const std::string* person = nullptr;
  const std::string* layer = nullptr;
  bool is_override = false;
  sys_seconds next = no_instant_after;
  sys_seconds prev = no_instant_before;

  bool same_answer(const probe& o) const {
    return is_override == o.is_override && same_text(person, o.person) && same_text(layer, o.layer);
  }
};

std::variant<schedule, std::string> schedule::compile(const config::schedule& s) {
  schedule out;
  out.name_ = s.name;
  try {
    out.zone_ = date::locate_zone(s.timezone);
  } catch (const std::runtime_error&) {
    return "schedule " + s.name + ": unknown time zone \"" + s.timezone + "\"";
  }
  for (std::size_t i = 0; i < s.layers.size(); ++i) {
    const config::layer& l = s.layers[i];
    const std::string label =
        "schedule " + s.name + ": layer " + (l.name.empty() ? std::to_string(i + 1) : l.name);
    if (l.members.empty()) return label + ": no members";
    if (l.shift <= seconds::zero()) return label + ": shift must be positive";
    if (l.active) {
      const config::daily_window& w = *l.active;
      const auto inside = [](seconds x) { return x >= seconds::zero() && x <= one_day; };
      if (!inside(w.begin) || !inside(w.end) || w.begin == w.end) {
        return label + ": daily window must be two different times of day";
      }
    }
    out.layers_.push_back(compiled_layer{l.name, l.members, l.start, l.shift, l.active});
  }
  for (const config::schedule_override& o : s.overrides) {
    out.overrides_.push_back(
        compiled_override{o.person, to_sys(out.zone_, o.from), to_sys(out.zone_, o.to)});
  }
  return out;
}

schedule::probe schedule::examine(sys_seconds t, bool want_prev) const {
  probe p;
  const date::sys_info info = zone_->get_info(t);
  const local_seconds local{t.time_since_epoch() + info.offset};
  const local_seconds day{date::floor<date::days>(local)};
  const seconds tod = local - day;

  for (std::size_t i = overrides_.size(); i-- > 0;) {
    const compiled_override& o = overrides_[i];
    if (p.person == nullptr && o.from <= t && t < o.to) {
      p.person = &o.person;
      p.is_override = true;
    }
  }
  for (const compiled_override& o : overrides_) {
    for (sys_seconds edge : {o.from, o.to}) {
      if (edge > t) p.next = std::min(p.next, edge);
      if (want_prev && edge <= t) p.prev = std::max(p.prev, edge);
    }
  }

  for (const compiled_layer& l : layers_) {
    const std::int64_t step = l.shift.count();
    const auto boundary = [&](std::int64_t k) {
      return to_sys(zone_, l.start + seconds{k * step});
    };
    // k = the last shift that has started by t (-1: none). The shift whose wall-clock start is
    // the last one <= local(t) has started (to_sys is monotone and maps local(t) to <= t), but
    // in a repeated (fall-back) hour later wall-clock starts may map to instants <= t as well,
    // and starts inside a gap collapse onto one instant: gallop forward, then bisect.
    std::int64_t k = std::max<std::int64_t>(floor_div((local - l.start).count(), step), -1);
    sys_seconds next = boundary(k + 1);
    if (next <= t) {
      std::int64_t lo = k + 1;  // boundary(lo) <= t
      std::int64_t hi = lo + 1;
      std::int64_t gallop = 1;
      sys_seconds at_hi = boundary(hi);
      while (at_hi <= t) {
        lo = hi;
        gallop *= 2;
        hi = lo + gallop;
        at_hi = boundary(hi);
      }
      while (hi - lo > 1) {
        const std::int64_t mid = lo + (hi - lo) / 2;
        const sys_seconds at_mid = boundary(mid);
        if (at_mid <= t) {
          lo = mid;
        } else {
          hi = mid;
          at_hi = at_mid;
        }
      }
      k = lo;
      next = at_hi;
    }
    p.next = std::min(p.next, next);
    if (k < 0) continue;  // before the layer's start: uncovered at every earlier instant too
    if (want_prev) p.prev = std::max(p.prev, boundary(k));

    bool covered = true;
    if (l.active) {
      const config::daily_window& w = *l.active;
      covered = in_window(w, tod);
      // Within [info.begin, info.end) the local clock runs with the instant, so the next window
      // edge on the wall clock is the next change, unless the offset changes first (then the
      // time-of-day jumps, and the transition itself is the candidate).
      local_seconds after = local_seconds::max();
      local_seconds before = local_seconds::min();
      for (seconds d : {-one_day, seconds::zero(), one_day}) {
        for (seconds edge : {w.begin, w.end}) {
          const local_seconds e = day + d + edge;
          if (e > local) after = std::min(after, e);
          if (e <= local) before = std::max(before, e);
        }
      }
      p.next = std::min(p.next, std::min(info.end, t + (after - local)));
      if (want_prev) p.prev = std::max(p.prev, std::max(info.begin, t - (local - before)));
    }
    if (covered && p.person == nullptr) {
      p.person =
          &l.members[static_cast<std::size_t>(k % static_cast<std::int64_t>(l.members.size()))];
      p.layer = &l.name;
    }
  }
  return p;
}

on_call schedule::at(sys_seconds t) const {
  const probe here = examine(t, true);
  on_call out;
  if (here.person != nullptr) out.person = *here.person;
  if (here.layer != nullptr) out.layer = *here.layer;
  out.is_override = here.is_override;

  // Step over candidate change points outward until the answer differs. Typical schedules
  // change at the first or second candidate, so this touches a handful of instants, not a year.
  const sys_seconds latest = t + horizon;
  for (probe cur = here; cur.next <= latest;) {
    const probe n = examine(cur.next, false);
    if (!n.same_answer(here)) {
      out.until = cur.next;
      break;
    }
    cur = n;
  }
  const sys_seconds earliest = t - horizon;
  for (probe cur = here; cur.prev != no_instant_before && cur.prev >= earliest;) {
    const probe b = examine(cur.prev - seconds{1}, true);
    if (!b.same_answer(here)) {
      out.since = cur.prev;
      break;
    }
    cur = b;
  }
  return out;
}

std::vector<shift> schedule::timeline(sys_seconds from, sys_seconds to) const {
  std::vector<shift> out;
  if (from >= to) return out;
  const auto emit = [&](const probe& p, sys_seconds start, sys_seconds end) {
    out.push_back(shift{start, end, p.person == nullptr ? std::string() : *p.person,
                        p.layer == nullptr ? std::string() : *p.layer, p.is_override});
  };
  probe stretch = examine(from, false);
  sys_seconds stretch_start = from;
  for (probe cur = stretch; cur.next < to;) {
    const sys_seconds at = cur.next;
    const probe n = examine(at, false);
    if (!n.same_answer(stretch)) {
      emit(stretch, stretch_start, at);
      stretch = n;
      stretch_start = at;
    }
    cur = n;
  }
  emit(stretch, stretch_start, to);
  return out;
}

}  // namespace alertrouter::routing
