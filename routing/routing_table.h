#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "config/config.h"
#include "config/diagnostic.h"
#include "routing/matcher.h"
#include "routing/ownership.h"
#include "routing/schedule.h"

namespace alertrouter::routing {

struct compiled_route {
  const config::route* source = nullptr;  // points into routing_table::config()
  std::vector<matcher> match;
};

// A target of a route resolved for one alert at one instant.
struct resolved_target {
  config::target_type type = config::target_type::receiver;
  std::string name;                        // schedule / receiver / project name
  std::string person;                      // schedule targets: who is on call ("" if nobody)
  const config::contact* reach = nullptr;  // nullptr: nobody on call / no contacts configured
};

// The one rule no configuration overrides: an alert from a user project never pages the team
// through a schedule (it goes to that project's own contacts). Pure.
inline bool may_notify(const config::target& t, ownership owner) {
  return !(t.type == config::target_type::schedule && owner == ownership::user);
}

// Everything compiled from one configuration: the ownership classifier, the route list with its
// matchers, the schedules, and contact lookups. Built once per (re)load and shared as
// `shared_ptr<const routing_table>`; immutable, so any thread may read it while a reload builds
// the next one.
class routing_table {
 public:
  // Compiles a validated configuration. Errors (which validation should already have caught:
  // bad regexes, unknown time zones, empty layers, references to unknown people, schedules or
  // receivers) come back as diagnostics naming `c.source` and the offending node's position;
  // every error is reported, not only the first. Never throws on bad input.
  static std::variant<std::shared_ptr<const routing_table>, std::vector<config::diagnostic>>
  compile(config::config c);

  const config::config& config() const { return config_; }
  const ownership_classifier& classifier() const { return *classifier_; }
  const std::vector<compiled_route>& routes() const { return routes_; }
  const std::vector<schedule>& schedules() const { return schedules_; }
  const schedule* find_schedule(std::string_view name) const;

  // The routes an alert (already annotated with `ownership`) takes: in order, the first match,
  // plus following matches while each matched route has `continue: true`.
  std::vector<const compiled_route*> match(const label_set& labels) const;

  // Resolves one target for an alert at `now`: schedule -> the person on call and their contact;
  // receiver -> its contact; project -> the contacts of the alert's project label (the label
  // named by config().ownership.label; `name` is then the project). `reach` is nullptr when
  // nobody is on call, the name is unknown, or no contacts are configured.
  resolved_target resolve(const config::target& t, const label_set& labels, sys_seconds now) const;

  // Contact lookups by name; nullptr when the name is not in the configuration. Pointers live
  // as long as the table.
  const config::contact* person_contact(std::string_view name) const;
  const config::contact* receiver_contact(std::string_view name) const;
  const config::contact* project_contact(std::string_view name) const;

 private:
  // Lets the maps below be searched with a string_view without building a std::string.
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <typename V>
  using by_name = std::unordered_map<std::string, V, name_hash, std::equal_to<>>;

  routing_table() = default;
  config::config config_;
  std::optional<ownership_classifier> classifier_;  // always set once compile() succeeds
  std::vector<compiled_route> routes_;
  std::vector<schedule> schedules_;
  by_name<std::size_t> schedule_index_;
  // Only names with at least one contact set; the pointers point into config_.
  by_name<const config::contact*> people_;
  by_name<const config::contact*> receivers_;
  by_name<const config::contact*> projects_;
};

}  // namespace alertrouter::routing
