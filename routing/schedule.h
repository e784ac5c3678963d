#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "routing/time.h"

namespace date {
class time_zone;
}

namespace alertrouter::routing {

// Who is on call at one instant, and for how long that answer holds.
struct on_call {
  std::string person;  // empty: nobody is on call
  std::string layer;   // the layer that put `person` on call; empty for nobody/override
  bool is_override = false;
  // The answer (person, layer, override flag) holds over [since, until). Nullopt when it holds
  // beyond the search horizon (a year) in that direction.
  std::optional<sys_seconds> since;
  std::optional<sys_seconds> until;
};

// One stretch of a schedule's timeline with a constant answer. `person` empty for a gap.
struct shift {
  sys_seconds start;
  sys_seconds end;
  std::string person;
  std::string layer;
  bool is_override = false;
};

// A compiled schedule: layers and overrides anchored in the schedule's IANA time zone.
// A layer's shifts start at `start + k*shift` *on the local wall clock* (so a Wednesday 16:00
// handoff stays Wednesday 16:00 across DST, and a weekly shift lasts 167h or 169h of real time
// around a DST change), member k mod n; nobody before `start`. Sub-day shifts (12h) are also
// added on the wall clock: the shift spanning a change lasts 11h or 13h. A layer with a daily
// window covers only instants whose local time-of-day lies in it (on a DST day a 03:00-15:00
// window is 11h or 13h long). All intervals are half-open: at a handoff instant the new member is
// on call. Local times that do not exist (spring forward) map to the instant the gap ends;
// ambiguous ones (fall back) to the earlier instant. This rule applies to shift starts and
// override bounds alike; shifts that collapse to zero length in a gap are skipped.
// Immutable; safe from any thread.
class schedule {
 public:
  // Fails (with a message naming the schedule) on an unknown time zone, a layer without
  // members, a non-positive shift, or a daily window that is empty or not within a day.
  static std::variant<schedule, std::string> compile(const config::schedule& s);

  const std::string& name() const { return name_; }
  const date::time_zone* zone() const { return zone_; }

  // The override covering t (the later-listed wins), else the first layer covering t, else
  // nobody, with the maximal [since, until) around t over which that answer holds, searched up
  // to `horizon` each way. Cost grows with the number of candidate change points (handoffs,
  // window edges, override bounds) it has to step over, not with the length of the interval.
  // Pure.
  on_call at(sys_seconds t) const;

  // How far at() searches for since/until in each direction.
  static constexpr std::chrono::seconds horizon = std::chrono::hours(24 * 366);

  // The timeline over [from, to): consecutive stretches with a constant answer, adjacent equal
  // stretches merged, gaps included (person empty). Covers [from, to) exactly. Pure.
  std::vector<shift> timeline(sys_seconds from, sys_seconds to) const;

 private:
  struct compiled_layer {
    std::string name;
    std::vector<std::string> members;
    config::local_time start;
    std::chrono::seconds shift;
    std::optional<config::daily_window> active;
  };
  struct compiled_override {
    std::string person;
    sys_seconds from;
    sys_seconds to;
  };

  // The answer at one instant plus the neighbouring candidate change points (defined in .cpp).
  struct probe;
  probe examine(sys_seconds t, bool want_prev) const;

  schedule() = default;
  std::string name_;
  const date::time_zone* zone_ = nullptr;
  std::vector<compiled_layer> layers_;
  std::vector<compiled_override> overrides_;
};

}  // namespace alertrouter::routing
