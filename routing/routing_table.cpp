#include "routing/routing_table.h"

#include <unordered_set>
#include <utility>

namespace alertrouter::routing {

namespace {

bool has_any(const config::contact& c) {
  return !c.webhook.empty() || !c.email.empty() || !c.irc.empty();
}

}  // namespace

std::variant<std::shared_ptr<const routing_table>, std::vector<config::diagnostic>>
routing_table::compile(config::config c) {
  // Not make_shared: the constructor is private. The table is built in place and never moved,
  // because compiled_route::source and the contact maps point into config_.
  std::shared_ptr<routing_table> t(new routing_table());
  t->config_ = std::move(c);
  const config::config& cfg = t->config_;

  std::vector<config::diagnostic> errors;
  auto fail = [&](config::position where, std::string message) {
    errors.push_back({config::severity::error, cfg.source, where, std::move(message)});
  };

  auto classifier = ownership_classifier::compile(cfg.ownership);
  if (auto* message = std::get_if<std::string>(&classifier)) {
    fail(cfg.ownership.where, *message);  // already names the field
  } else {
    t->classifier_.emplace(std::move(std::get<ownership_classifier>(classifier)));
  }

  std::unordered_set<std::string_view> person_names;
  for (const config::person& p : cfg.people) {
    person_names.insert(p.name);
    if (has_any(p.reach)) t->people_.emplace(p.name, &p.reach);
  }
  std::unordered_set<std::string_view> receiver_names;
  for (const config::receiver& r : cfg.receivers) {
    receiver_names.insert(r.name);
    if (has_any(r.reach)) t->receivers_.emplace(r.name, &r.reach);
  }
  for (const config::project_contact& p : cfg.projects) {
    if (has_any(p.reach)) t->projects_.emplace(p.name, &p.reach);
  }

  t->schedules_.reserve(cfg.schedules.size());
  for (const config::schedule& s : cfg.schedules) {
    for (const config::layer& l : s.layers) {
      for (const std::string& m : l.members) {
        if (!person_names.contains(m)) {
          fail(l.where, "schedule " + s.name + ": unknown person \"" + m + "\"");
        }
      }
    }
    for (const config::schedule_override& o : s.overrides) {
      if (!person_names.contains(o.person)) {
        fail(o.where, "schedule " + s.name + ": unknown person \"" + o.person + "\"");
      }
    }
    auto compiled = schedule::compile(s);
    if (auto* message = std::get_if<std::string>(&compiled)) {
      fail(s.where, *message);  // already names the schedule
      continue;
    }
    t->schedule_index_.emplace(s.name, t->schedules_.size());
    t->schedules_.push_back(std::move(std::get<schedule>(compiled)));
  }

  std::unordered_set<std::string_view> schedule_names;
  for (const config::schedule& s : cfg.schedules) schedule_names.insert(s.name);

  t->routes_.reserve(cfg.routes.size());
  for (const config::route& r : cfg.routes) {
    compiled_route out;
    out.source = &r;
    for (const config::matcher_spec& spec : r.match) {
      auto m = matcher::compile(spec);
      if (auto* message = std::get_if<std::string>(&m)) {
        fail(spec.where, "route " + r.name + ": " + *message);
      } else {
        out.match.push_back(std::move(std::get<matcher>(m)));
      }
    }
    for (const config::target& target : r.notify) {
      const bool known =
          target.type == config::target_type::project ||
          (target.type == config::target_type::schedule ? schedule_names.contains(target.name)
                                                        : receiver_names.contains(target.name));
      if (!known) {
        fail(target.where, "route " + r.name + ": unknown " + std::string(config::to_string(target.type)) +
                               " \"" + target.name + "\"");
      }
    }
    t->routes_.push_back(std::move(out));
  }

  if (!errors.empty()) return errors;
  return std::shared_ptr<const routing_table>(std::move(t));
}

const schedule* routing_table::find_schedule(std::string_view name) const {
  auto it = schedule_index_.find(name);
  return it == schedule_index_.end() ? nullptr : &schedules_[it->second];
}

std::vector<const compiled_route*> routing_table::match(const label_set& labels) const {
  std::vector<const compiled_route*> out;
  for (const compiled_route& r : routes_) {
    if (!matches_all(r.match, labels)) continue;
    out.push_back(&r);
    if (!r.source->continue_matching) break;
  }
  return out;
}

resolved_target routing_table::resolve(const config::target& t, const label_set& labels,
                                       sys_seconds now) const {
  resolved_target out;
  out.type = t.type;
  switch (t.type) {
    case config::target_type::schedule:
      out.name = t.name;
      if (const schedule* s = find_schedule(t.name)) {
        out.person = s->at(now).person;
        if (!out.person.empty()) out.reach = person_contact(out.person);
      }
      break;
    case config::target_type::receiver:
      out.name = t.name;
      out.reach = receiver_contact(t.name);
      break;
    case config::target_type::project:
      out.name = std::string(labels.get(config_.ownership.label));
      if (!out.name.empty()) out.reach = project_contact(out.name);
      break;
  }
  return out;
}

const config::contact* routing_table::person_contact(std::string_view name) const {
  auto it = people_.find(name);
  return it == people_.end() ? nullptr : it->second;
}

const config::contact* routing_table::receiver_contact(std::string_view name) const {
  auto it = receivers_.find(name);
  return it == receivers_.end() ? nullptr : it->second;
}

const config::contact* routing_table::project_contact(std::string_view name) const {
  auto it = projects_.find(name);
  return it == projects_.end() ? nullptr : it->second;
}

}  // namespace alertrouter::routing
