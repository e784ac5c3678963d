#include "routing/ownership.h"

#include <re2/re2.h>

namespace alertrouter::routing {
namespace {

RE2::Options regex_options() {
  RE2::Options options;
  options.set_encoding(RE2::Options::EncodingUTF8);
  options.set_log_errors(false);
  return options;
}

}  // namespace

std::string_view to_string(ownership o) {
  switch (o) {
    case ownership::owned:
      return "owned";
    case ownership::user:
      return "user";
    case ownership::unowned:
      return "unowned";
  }
  return "unowned";
}

std::variant<ownership_classifier, std::string> ownership_classifier::compile(
    const config::ownership_config& c) {
  ownership_classifier out;
  if (c.label.empty()) return std::string("ownership.label must not be empty");
  out.label_ = c.label;
  out.owned_.insert(c.owned.begin(), c.owned.end());

  if (!c.owned_regex.empty()) {
    const RE2::Options options = regex_options();
    std::string alternation = "^(?:";
    for (std::size_t i = 0; i < c.owned_regex.size(); ++i) {
      const std::string& pattern = c.owned_regex[i];
      // Checked one by one first so the message names the bad pattern, not the alternation.
      // Alone, not wrapped: `a)|(b` must not escape the anchoring group of the alternation.
      const RE2 single(pattern, options);
      if (!single.ok()) {
        return "ownership.owned_regex: invalid regex \"" + pattern + "\": " + single.error();
      }
      if (i > 0) alternation += '|';
      alternation += "(?:" + pattern + ")";
    }
    alternation += ")$";
    auto re = std::make_shared<const RE2>(alternation, options);
    if (!re->ok()) return "ownership.owned_regex: " + re->error();
    out.owned_regex_ = std::move(re);
  }

  out.infrastructure_.reserve(c.infrastructure.size());
  for (const config::matcher_spec& spec : c.infrastructure) {
    auto compiled = matcher::compile(spec);
    if (auto* error = std::get_if<std::string>(&compiled)) {
      return "ownership.infrastructure: " + *error;
    }
    out.infrastructure_.push_back(std::get<matcher>(std::move(compiled)));
  }
  return out;
}

ownership ownership_classifier::classify(const label_set& labels) const {
  const std::string_view project = labels.get(label_);
  if (!project.empty()) {
    if (owned_.find(project) != owned_.end()) return ownership::owned;
    if (owned_regex_ && RE2::FullMatch(project, *owned_regex_)) return ownership::owned;
    return ownership::user;
  }
  // An empty value is "no project label", as Alertmanager treats a missing label as "".
  if (!infrastructure_.empty() && matches_all(infrastructure_, labels)) return ownership::owned;
  return ownership::unowned;
}

ownership ownership_classifier::annotate(label_set& labels) const {
  const ownership o = classify(labels);
  labels.set(kOwnershipLabel, to_string(o));
  if (labels.get("severity") == "warn") labels.set("severity", "warning");
  return o;
}

}  // namespace alertrouter::routing
