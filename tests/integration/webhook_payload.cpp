#include "tests/integration/webhook_payload.h"

#include <boost/json.hpp>

namespace alertrouter::integration {

std::string encode_webhook(const std::vector<posted_alert>& alerts, std::string group_key) {
  namespace json = boost::json;
  json::array list;
  bool any_firing = false;
  for (const auto& a : alerts) {
    json::object o;
    const bool resolved = a.ends_at.has_value();
    any_firing = any_firing || !resolved;
    o["status"] = resolved ? "resolved" : "firing";
    json::object labels;
    for (const auto& [k, v] : a.labels) labels[k] = v;
    json::object annotations;
    for (const auto& [k, v] : a.annotations) annotations[k] = v;
    o["labels"] = std::move(labels);
    o["annotations"] = std::move(annotations);
    o["startsAt"] = to_rfc3339(a.starts_at.value_or(std::chrono::system_clock::now()));
    o["endsAt"] = resolved ? to_rfc3339(*a.ends_at) : std::string("0001-01-01T00:00:00Z");
    o["generatorURL"] = a.generator_url;
    list.push_back(std::move(o));
  }
  json::object body;
  body["version"] = "4";
  body["groupKey"] = std::move(group_key);
  body["truncatedAlerts"] = 0;
  body["status"] = any_firing ? "firing" : "resolved";
  body["receiver"] = "alertrouter";
  body["groupLabels"] = json::object{};
  body["commonLabels"] = json::object{};
  body["commonAnnotations"] = json::object{};
  body["externalURL"] = "http://alertmanager.test:9093";
  body["alerts"] = std::move(list);
  return json::serialize(body);
}

}  // namespace alertrouter::integration
