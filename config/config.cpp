#include "config/config.h"

#include <algorithm>

namespace alertrouter::config {
namespace {

// Linear scans: configurations hold tens of names, and routing/ builds its own indexes.
template <typename T>
const T* find_named(const std::vector<T>& items, std::string_view name) {
  const auto it =
      std::find_if(items.begin(), items.end(), [name](const T& item) { return item.name == name; });
  return it == items.end() ? nullptr : &*it;
}

}  // namespace

const person* config::find_person(std::string_view name) const { return find_named(people, name); }

const schedule* config::find_schedule(std::string_view name) const {
  return find_named(schedules, name);
}

const receiver* config::find_receiver(std::string_view name) const {
  return find_named(receivers, name);
}

const project_contact* config::find_project(std::string_view name) const {
  return find_named(projects, name);
}

std::string_view to_string(target_type t) {
  switch (t) {
    case target_type::schedule:
      return "schedule";
    case target_type::receiver:
      return "receiver";
    case target_type::project:
      return "project";
  }
  return "receiver";  // unreachable: every enumerator is handled above
}

}  // namespace alertrouter::config
