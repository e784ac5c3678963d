#include "routing/planner.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace alertrouter::routing {

std::string_view to_string(notification_kind k) {
  switch (k) {
    case notification_kind::page:
      return "page";
    case notification_kind::resolve:
      return "resolve";
  }
  return "unknown";
}

namespace {

bool paged_person(const std::vector<paged_target>& paged, const std::string& person) {
  return std::any_of(paged.begin(), paged.end(), [&](const paged_target& p) {
    return p.type == config::target_type::schedule && p.person == person;
  });
}

// Builds one plan. Notifications are grouped per (kind, target); a body carries a handful of
// distinct targets, so a linear search beats a map and allocates nothing.
class planner {
 public:
  planner(const routing_table& cfg, incident_table& table, timestamp now)
      : cfg_(cfg),
        table_(table),
        now_(now),
        now_s_(std::chrono::floor<std::chrono::seconds>(now)) {}

  plan run(webhook& hook) {
    out_.counts.received = hook.alerts.size();
    out_.observations.reserve(hook.alerts.size());
    for (alert& a : hook.alerts) {
      const ownership owner = cfg_.classifier().annotate(a.labels);
      const incident_table::result r = table_.observe(a, owner, now_);
      out_.observations.push_back(r.what);
      switch (r.what) {
        case observation::reopened:
          ++out_.counts.reopened;
          [[fallthrough]];
        case observation::opened:
          ++out_.counts.opened;
          page(a, owner, *r.subject);
          break;
        case observation::closed:
          ++out_.counts.closed;
          resolve(a, *r.subject);
          break;
        case observation::duplicate:
          ++out_.counts.duplicates;
          break;
        case observation::stale:
        case observation::unknown_resolve:
          ++out_.counts.stale;
          break;
      }
    }
    out_.notifications = std::move(pages_);
    out_.notifications.insert(out_.notifications.end(), std::make_move_iterator(resolves_.begin()),
                              std::make_move_iterator(resolves_.end()));
    return std::move(out_);
  }

 private:
  void page(const alert& a, ownership owner, const incident& inc) {
    const std::uint64_t id = inc.id;
    const std::vector<const compiled_route*> matched = cfg_.match(a.labels);
    if (matched.empty()) {
      ++out_.counts.unrouted;
      return;
    }
    std::vector<std::string> routes;
    std::vector<paged_target> paged;
    for (const compiled_route* route : matched) {
      const std::string& route_name = route->source->name;
      routes.push_back(route_name);
      for (const config::target& t : route->source->notify) {
        if (!may_notify(t, owner)) {
          out_.blocked.push_back({t.name, route_name, a.fp});
          continue;
        }
        resolved_target rt = cfg_.resolve(t, a.labels, now_s_);
        if (t.type == config::target_type::schedule && rt.person.empty()) {
          out_.nobody.push_back({t.name, route_name, a.fp});
          continue;
        }
        if (t.type == config::target_type::schedule && paged_person(paged, rt.person)) {
          continue;  // on call in two schedules this incident reaches: one page is enough
        }
        paged_target target{rt.type, std::move(rt.name), std::move(rt.person)};
        if (rt.reach == nullptr) {
          out_.no_contacts.push_back({std::move(target), route_name, a.fp});
          continue;
        }
        notification& n = group(pages_, notification_kind::page, target, *rt.reach);
        add_route(n, route_name);
        add_incident(n, id, a);
        if (std::find(paged.begin(), paged.end(), target) == paged.end()) {
          paged.push_back(std::move(target));
        }
      }
    }
    table_.record_paged(id, std::move(routes), std::move(paged));
  }

  void resolve(const alert& a, const incident& inc) {
    for (const paged_target& target : inc.paged) {
      // The resolve goes to whoever got the page, looked up in the current configuration: a
      // handoff since then does not matter, a removed person/receiver/project does.
      const config::contact* reach = nullptr;
      switch (target.type) {
        case config::target_type::schedule:
          reach = cfg_.person_contact(target.person);
          break;
        case config::target_type::receiver:
          reach = cfg_.receiver_contact(target.name);
          break;
        case config::target_type::project:
          reach = cfg_.project_contact(target.name);
          break;
      }
      if (reach == nullptr) {
        out_.no_contacts.push_back(
            {target, inc.routes.empty() ? std::string() : inc.routes.front(), a.fp});
        continue;
      }
      notification& n = group(resolves_, notification_kind::resolve, target, *reach);
      for (const std::string& route_name : inc.routes) add_route(n, route_name);
      add_incident(n, inc.id, a);
    }
  }

  static notification& group(std::vector<notification>& list, notification_kind kind,
                             const paged_target& target, const config::contact& reach) {
    for (notification& n : list) {
      if (n.target == target) return n;
    }
    notification& n = list.emplace_back();
    n.kind = kind;
    n.target = target;
    n.reach = reach;
    return n;
  }

  static void add_route(notification& n, const std::string& route_name) {
    if (std::find(n.routes.begin(), n.routes.end(), route_name) == n.routes.end()) {
      n.routes.push_back(route_name);
    }
  }

  // Two routes (via `continue`) may lead the same incident to the same target: list it once.
  // Alerts are handled one at a time, so a repeat can only be the last one added.
  static void add_incident(notification& n, std::uint64_t id, const alert& a) {
    if (!n.incident_ids.empty() && n.incident_ids.back() == id) return;
    n.incident_ids.push_back(id);
    n.alerts.push_back(a);
  }

  const routing_table& cfg_;
  incident_table& table_;
  const timestamp now_;
  const sys_seconds now_s_;
  plan out_;
  std::vector<notification> pages_;
  std::vector<notification> resolves_;
};

}  // namespace

plan make_plan(const routing_table& table_cfg, incident_table& table, webhook& hook,
               timestamp now) {
  // Retention is enforced here so it holds without a timer; when nothing is due this is one
  // comparison against the oldest closed incident.
  table.expire(now);
  return planner(table_cfg, table, now).run(hook);
}

}  // namespace alertrouter::routing
