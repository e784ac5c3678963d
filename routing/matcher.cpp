#include "routing/matcher.h"

#include <re2/re2.h>

namespace alertrouter::routing {
namespace {

// OpenMetrics escaping, as Alertmanager's openMetricsEscape: only \, newline and ".
void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        out += c;
    }
  }
}

// Prometheus label name syntax: [a-zA-Z_][a-zA-Z0-9_]*.
bool is_plain_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

std::string_view op_text(config::matcher_op op) {
  switch (op) {
    case config::matcher_op::equal:
      return "=";
    case config::matcher_op::not_equal:
      return "!=";
    case config::matcher_op::regex:
      return "=~";
    case config::matcher_op::not_regex:
      return "!~";
  }
  return "=";
}

}  // namespace

std::variant<matcher, std::string> matcher::compile(const config::matcher_spec& spec) {
  matcher m;
  m.spec_ = spec;
  if (spec.op == config::matcher_op::regex || spec.op == config::matcher_op::not_regex) {
    RE2::Options options;
    options.set_encoding(RE2::Options::EncodingUTF8);
    options.set_log_errors(false);
    // The pattern must be a regex on its own: otherwise `a)|(b` would slip out of the anchoring
    // group below as `^(?:a)|(b)$` and match unanchored.
    const RE2 alone(spec.value, options);
    if (!alone.ok()) {
      return "invalid regex \"" + spec.value + "\" in matcher " + m.to_string() + ": " +
             alone.error();
    }
    // Alertmanager anchors every matcher regex at both ends ("^(?:" + re + ")$").
    auto re = std::make_shared<const RE2>("^(?:" + spec.value + ")$", options);
    if (!re->ok()) {
      return "invalid regex \"" + spec.value + "\" in matcher " + m.to_string() + ": " +
             re->error();
    }
    m.regex_ = std::move(re);
  }
  return m;
}

bool matcher::matches(const label_set& labels) const {
  const std::string_view value = labels.get(spec_.name);
  switch (spec_.op) {
    case config::matcher_op::equal:
      return value == spec_.value;
    case config::matcher_op::not_equal:
      return value != spec_.value;
    case config::matcher_op::regex:
      return RE2::FullMatch(value, *regex_);
    case config::matcher_op::not_regex:
      return !RE2::FullMatch(value, *regex_);
  }
  return false;
}

std::string matcher::to_string() const {
  std::string out;
  out.reserve(spec_.name.size() + spec_.value.size() + 6);
  // Alertmanager quotes names that are not plain Prometheus label names.
  if (is_plain_label_name(spec_.name)) {
    out += spec_.name;
  } else {
    out += '"';
    append_escaped(out, spec_.name);
    out += '"';
  }
  out += op_text(spec_.op);
  out += '"';
  append_escaped(out, spec_.value);
  out += '"';
  return out;
}

bool matches_all(const std::vector<matcher>& matchers, const label_set& labels) {
  for (const matcher& m : matchers) {
    if (!m.matches(labels)) return false;
  }
  return true;
}

}  // namespace alertrouter::routing
