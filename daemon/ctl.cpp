#include "daemon/ctl.h"

#include <boost/json.hpp>
#include <chrono>
#include <memory>
#include <ostream>
#include <string>
#include <variant>
#include <vector>

#include "config/loader.h"
#include "routing/alert.h"
#include "routing/ownership.h"
#include "routing/routing_table.h"
#include "routing/schedule.h"
#include "store/state_store.h"

namespace alertrouter::daemon {
namespace {

using routing::sys_seconds;
namespace json = boost::json;

constexpr auto kCoverageHorizon = std::chrono::weeks(8);

// Loads and compiles a configuration, printing every diagnostic to `err`. Null on errors.
std::shared_ptr<const routing::routing_table> load_table(const std::string& file,
                                                         std::ostream& err) {
  config::load_result loaded = config::load_file(file);
  for (const config::diagnostic& d : loaded.diagnostics) err << d.to_string() << '\n';
  if (!loaded.value) return nullptr;
  auto compiled = routing::routing_table::compile(std::move(*loaded.value));
  if (auto* diagnostics = std::get_if<std::vector<config::diagnostic>>(&compiled)) {
    for (const config::diagnostic& d : *diagnostics) err << d.to_string() << '\n';
    return nullptr;
  }
  return std::get<std::shared_ptr<const routing::routing_table>>(std::move(compiled));
}

std::string time_or_dash(const std::optional<sys_seconds>& t) {
  return t ? routing::format_rfc3339(*t) : "-";
}

json::value time_or_null(const std::optional<sys_seconds>& t) {
  if (!t) return nullptr;
  return json::value(routing::format_rfc3339(*t));
}

std::string target_label(const config::target& t) {
  std::string s(config::to_string(t.type));
  if (!t.name.empty()) s += ":" + t.name;
  return s;
}

// The channels of a contact, as "webhook URL, email ADDR, irc NICK".
std::string describe(const config::contact& c) {
  std::string s;
  auto add = [&s](std::string_view kind, const std::string& v) {
    if (v.empty()) return;
    if (!s.empty()) s += ", ";
    s.append(kind).append(" ").append(v);
  };
  add("webhook", c.webhook);
  add("email", c.email);
  add("irc", c.irc);
  return s;
}

json::object contact_json(const config::contact& c) {
  json::object o;
  if (!c.webhook.empty()) o["webhook"] = c.webhook;
  if (!c.email.empty()) o["email"] = c.email;
  if (!c.irc.empty()) o["irc"] = c.irc;
  return o;
}

}  // namespace

int check_config(const std::string& file, sys_seconds now, std::ostream& out, std::ostream& err) {
  config::load_result loaded = config::load_file(file);
  std::size_t warnings = 0;
  for (const config::diagnostic& d : loaded.diagnostics) {
    err << d.to_string() << '\n';
    if (d.level == config::severity::warning) ++warnings;
  }
  if (!loaded.value) return 1;
  const std::size_t people = loaded.value->people.size();
  const std::size_t receivers = loaded.value->receivers.size();
  const std::size_t projects = loaded.value->projects.size();
  const std::size_t routes = loaded.value->routes.size();

  auto compiled = routing::routing_table::compile(std::move(*loaded.value));
  if (auto* diagnostics = std::get_if<std::vector<config::diagnostic>>(&compiled)) {
    for (const config::diagnostic& d : *diagnostics) err << d.to_string() << '\n';
    return 1;
  }
  const auto& table = *std::get<std::shared_ptr<const routing::routing_table>>(compiled);

  // Coverage gaps are not errors (a team may want nobody at night) but operators must see them:
  // one warning per schedule, naming the first gap and how many follow.
  for (const routing::schedule& s : table.schedules()) {
    const routing::shift* first = nullptr;
    std::size_t gaps = 0;
    const auto timeline = s.timeline(now, now + kCoverageHorizon);
    for (const routing::shift& stretch : timeline) {
      if (!stretch.person.empty()) continue;
      if (!first) first = &stretch;
      ++gaps;
    }
    if (!first) continue;
    std::string message = "schedule '" + s.name() + "' has nobody on call from " +
                          routing::format_rfc3339(first->start) + " to " +
                          routing::format_rfc3339(first->end);
    if (gaps > 1) {
      message += " (and " + std::to_string(gaps - 1) + " more gaps in the next 8 weeks)";
    }
    const config::schedule* source = table.config().find_schedule(s.name());
    err << config::diagnostic{config::severity::warning, file,
                              source ? source->where : config::position{}, std::move(message)}
               .to_string()
        << '\n';
    ++warnings;
  }
  out << file << ": OK: " << people << " people, " << table.schedules().size() << " schedules, "
      << receivers << " receivers, " << projects << " projects, " << routes << " routes, "
      << warnings << (warnings == 1 ? " warning" : " warnings") << '\n';
  return 0;
}

int oncall(const oncall_options& o, std::ostream& out, std::ostream& err) {
  auto table = load_table(o.config_file, err);
  if (!table) return 1;
  if (o.schedule && !table->find_schedule(*o.schedule)) {
    err << "unknown schedule '" << *o.schedule << "'\n";
    return 1;
  }
  json::array rows;
  for (const routing::schedule& s : table->schedules()) {
    if (o.schedule && s.name() != *o.schedule) continue;
    const routing::on_call now = s.at(o.at);
    if (o.json) {
      json::object row;
      row["schedule"] = s.name();
      row["person"] = now.person.empty() ? json::value(nullptr) : json::value(now.person);
      row["layer"] = now.layer.empty() ? json::value(nullptr) : json::value(now.layer);
      row["override"] = now.is_override;
      row["since"] = time_or_null(now.since);
      row["until"] = time_or_null(now.until);
      rows.push_back(std::move(row));
    } else {
      out << s.name() << ' ' << (now.person.empty() ? "-" : now.person) << ' '
          << time_or_dash(now.since) << ' ' << time_or_dash(now.until) << '\n';
    }
  }
  if (o.json) out << json::serialize(rows) << '\n';
  return 0;
}

int schedule(const schedule_options& o, std::ostream& out, std::ostream& err) {
  if (o.weeks < 1 || o.weeks > 520) {
    err << "--weeks must be between 1 and 520\n";
    return 2;
  }
  auto table = load_table(o.config_file, err);
  if (!table) return 1;
  const routing::schedule* s = table->find_schedule(o.schedule);
  if (!s) {
    err << "unknown schedule '" << o.schedule << "'\n";
    return 1;
  }
  json::array rows;
  std::vector<routing::shift> timeline = s->timeline(o.from, o.from + std::chrono::weeks(o.weeks));
  if (!o.json) {
    // The text shows only the person, so stretches that differ only in layer or override flag
    // would read as needless handoffs: merge them.
    std::vector<routing::shift> merged;
    for (routing::shift& stretch : timeline) {
      if (!merged.empty() && merged.back().person == stretch.person) {
        merged.back().end = stretch.end;
      } else {
        merged.push_back(std::move(stretch));
      }
    }
    for (const routing::shift& stretch : merged) {
      out << routing::format_rfc3339(stretch.start) << ' ' << routing::format_rfc3339(stretch.end)
          << ' ' << (stretch.person.empty() ? "-" : stretch.person) << '\n';
    }
    return 0;
  }
  for (const routing::shift& stretch : timeline) {
    json::object row;
    row["start"] = routing::format_rfc3339(stretch.start);
    row["end"] = routing::format_rfc3339(stretch.end);
    row["person"] = stretch.person.empty() ? json::value(nullptr) : json::value(stretch.person);
    row["layer"] = stretch.layer.empty() ? json::value(nullptr) : json::value(stretch.layer);
    row["override"] = stretch.is_override;
    rows.push_back(std::move(row));
  }
  if (o.json) out << json::serialize(rows) << '\n';
  return 0;
}

int route_test(const route_test_options& o, std::ostream& out, std::ostream& err) {
  std::vector<routing::label_set::label> pairs;
  for (const std::string& arg : o.labels) {
    const std::size_t eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      err << "bad label '" << arg << "': expected LABEL=VALUE\n";
      return 2;
    }
    pairs.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
  }
  auto table = load_table(o.config_file, err);
  if (!table) return 1;

  routing::label_set labels(std::move(pairs));
  const routing::fingerprint fp = routing::compute_fingerprint(labels);
  const routing::ownership owner = table->classifier().annotate(labels);
  const auto routes = table->match(labels);

  json::array routes_json;
  if (!o.json) {
    out << "ownership: " << routing::to_string(owner) << '\n';
    out << "fingerprint: " << routing::to_hex(fp) << '\n';
    if (routes.empty()) out << "no route matches: this alert would not be notified\n";
  }
  for (const routing::compiled_route* r : routes) {
    json::array targets_json;
    if (!o.json) {
      out << "route " << r->source->name << (r->source->continue_matching ? " (continue)" : "")
          << '\n';
    }
    for (const config::target& t : r->source->notify) {
      json::object tj;
      tj["target"] = target_label(t);
      std::string line;
      if (!routing::may_notify(t, owner)) {
        line = "blocked: a user project never pages the team's schedules";
        tj["blocked"] = true;
      } else {
        const routing::resolved_target rt = table->resolve(t, labels, o.at);
        if (t.type == config::target_type::schedule) {
          line = rt.person.empty() ? std::string("nobody on call") : rt.person;
          tj["person"] = rt.person.empty() ? json::value(nullptr) : json::value(rt.person);
        }
        if (t.type == config::target_type::project) {
          tj["project"] = std::string(labels.get(table->config().ownership.label));
          line = tj["project"].as_string().empty() ? "(no project label)"
                                                   : std::string(tj["project"].as_string());
        }
        if (rt.reach) {
          line += line.empty() ? describe(*rt.reach) : " (" + describe(*rt.reach) + ")";
          tj["contact"] = contact_json(*rt.reach);
        } else if (t.type != config::target_type::schedule || !rt.person.empty()) {
          line += line.empty() ? "no contact configured" : " (no contact configured)";
          tj["contact"] = nullptr;
        }
      }
      if (o.json) {
        targets_json.push_back(std::move(tj));
      } else {
        out << "  " << target_label(t) << " -> " << line << '\n';
      }
    }
    if (o.json) {
      json::object rj;
      rj["name"] = r->source->name;
      rj["continue"] = r->source->continue_matching;
      rj["targets"] = std::move(targets_json);
      routes_json.push_back(std::move(rj));
    }
  }
  if (o.json) {
    json::object doc;
    json::object labels_json;
    for (const auto& [name, value] : labels) labels_json[name] = value;
    doc["labels"] = std::move(labels_json);
    doc["ownership"] = routing::to_string(owner);
    doc["fingerprint"] = routing::to_hex(fp);
    doc["at"] = routing::format_rfc3339(o.at);
    doc["routes"] = std::move(routes_json);
    out << json::serialize(doc) << '\n';
  }
  return 0;
}

int state_check(const std::string& state_dir, std::ostream& out, std::ostream& err) {
  const store::check_report report = store::check_sqlite_store(state_dir);
  std::ostream& to = report.ok ? out : err;
  for (const std::string& line : report.lines) to << line << '\n';
  return report.ok ? 0 : 1;
}

}  // namespace alertrouter::daemon
