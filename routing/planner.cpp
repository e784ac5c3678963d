#include "routing/planner.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>
#include <variant>

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

// Whether an alert observed as `o` goes into notifications (and the incident's `last`), so needs
// its annotations and generatorURL.
bool needs_details(observation o) {
  return o == observation::opened || o == observation::reopened || o == observation::closed;
}

// Whether an alert observed as `o` can do without its labels: a repeat or a stale copy of a known
// incident (only a known one is observed so), whose ownership the incident holds.
bool needs_labels(observation o) {
  return !(o == observation::duplicate || o == observation::stale);
}

// Keeps details for the alerts that will open or close an incident, and labels for those too and
// for alerts without an incident, judged against the table as it is before the body is applied.
class table_detail_filter final : public detail_filter {
 public:
  explicit table_detail_filter(const incident_table& table) : table_(table) {}
  bool keep_details(fingerprint fp, alert_status status, timestamp starts_at) const override {
    return needs_details(classify(fp, status, starts_at));
  }
  bool keep_labels(fingerprint fp, alert_status status, timestamp starts_at) const override {
    return needs_labels(classify(fp, status, starts_at));
  }

 private:
  // The table does not change while a body is decoded, and keep_labels asks about the alert
  // keep_details has just seen: one lookup serves both.
  observation classify(fingerprint fp, alert_status status, timestamp starts_at) const {
    if (!last_ || last_->fp != fp || last_->status != status || last_->starts_at != starts_at) {
      last_ = asked{fp, status, starts_at, table_.classify(fp, status, starts_at)};
    }
    return last_->what;
  }

  struct asked {
    fingerprint fp;
    alert_status status;
    timestamp starts_at;
    observation what;
  };
  const incident_table& table_;
  mutable std::optional<asked> last_;
};

// Empties `p` for the planner, keeping its vectors' capacity.
void clear_keeping_capacity(plan& p) {
  p.counts = {};
  p.notifications.clear();
  p.nobody.clear();
  p.no_contacts.clear();
  p.blocked.clear();
  p.observations.clear();
  p.ownerships.clear();
}

bool paged_person(const std::vector<paged_target>& paged, const std::string& person) {
  return std::any_of(paged.begin(), paged.end(), [&](const paged_target& p) {
    return p.type == config::target_type::schedule && p.person == person;
  });
}

// Builds one plan. Notifications are grouped per (kind, target); a body carries a handful of
// distinct targets, so a linear search beats a map and allocates nothing.
class planner {
 public:
  // `body` is what `hook` was decoded from, needed only when it was decoded with details omitted.
  // The plan is built in `out`, which must be empty.
  planner(const routing_table& cfg, incident_table& table, timestamp now, std::string_view body,
          plan& out)
      : cfg_(cfg),
        table_(table),
        now_(now),
        now_s_(std::chrono::floor<std::chrono::seconds>(now)),
        body_(body),
        out_(out) {}

  void run(webhook& hook) {
    out_.counts.received = hook.alerts.size();
    out_.observations.reserve(hook.alerts.size());
    out_.ownerships.reserve(hook.alerts.size());
    for (std::size_t i = 0; i < hook.alerts.size(); ++i) {
      alert& a = hook.alerts[i];
      // The decoder judged this alert against the table as it was before the body. If an earlier
      // alert of the body has changed the table since (evicted this alert's incident from a full
      // table, say), judge again, and decode what was left out after all if it is needed now.
      if (a.details_omitted && table_changed_) {
        const observation o = table_.classify(a.fp, a.status, a.starts_at);
        if (needs_details(o) || (a.labels_omitted && needs_labels(o))) fill_details(i, a);
      }
      // A repeat of a known incident (checked above) is observed as a duplicate or stale copy,
      // which uses no ownership: the incident's, decided when it opened, is in the result.
      ownership owner =
          a.labels_omitted ? ownership::unowned : cfg_.classifier().annotate(a.labels);
      const incident_table::result r = table_.observe(a, owner, now_);
      if (a.labels_omitted) owner = r.subject != nullptr ? r.owner : ownership::unowned;
      out_.ownerships.push_back(owner);
      out_.observations.push_back(r.what);
      if (needs_details(r.what)) table_changed_ = true;
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

  void fill_details(std::size_t index, alert& a) {
    if (!full_) {
      auto decoded = decode_webhook(body_);
      // The same body decoded before, so it decodes again; the check guards a misuse (a webhook
      // decoded with details omitted but planned without its body).
      if (auto* hook = std::get_if<webhook>(&decoded); hook && hook->alerts.size() > index) {
        full_ = std::move(*hook);
      } else {
        return;
      }
    }
    alert& full = full_->alerts[index];
    if (a.labels_omitted) a.labels = std::move(full.labels);
    a.annotations = std::move(full.annotations);
    a.generator_url = std::move(full.generator_url);
    a.details_omitted = false;
    a.labels_omitted = false;
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
  const std::string_view body_;
  std::optional<webhook> full_;  // body_ decoded in full, once, if an alert needed its details
  bool table_changed_ = false;   // an alert of this body opened or closed an incident
  plan& out_;
  std::vector<notification> pages_;
  std::vector<notification> resolves_;
};

}  // namespace

plan make_plan(const routing_table& table_cfg, incident_table& table, webhook& hook,
               timestamp now) {
  // Retention is enforced here so it holds without a timer; when nothing is due this is one
  // comparison against the oldest closed incident.
  table.expire(now);
  plan out;
  planner(table_cfg, table, now, {}, out).run(hook);
  return out;
}

std::variant<routed_webhook, decode_error> route_webhook(std::string_view body,
                                                         const routing_table& table_cfg,
                                                         incident_table& table, timestamp now) {
  // Built in place: a webhook and a plan are big enough that moving them costs.
  std::variant<routed_webhook, decode_error> result;
  decode_error error;
  if (!route_webhook_into(body, table_cfg, table, now, std::get<routed_webhook>(result), error)) {
    result = std::move(error);
  }
  return result;
}

bool route_webhook_into(std::string_view body, const routing_table& table_cfg,
                        incident_table& table, timestamp now, routed_webhook& out,
                        decode_error& error) {
  // Expire first so that the decoder's filter judges against the table the planner will see.
  table.expire(now);
  const table_detail_filter filter(table);
  if (!decode_webhook_into(body, &filter, out.hook, error)) return false;
  clear_keeping_capacity(out.result);
  planner(table_cfg, table, now, body, out.result).run(out.hook);
  return true;
}

}  // namespace alertrouter::routing
