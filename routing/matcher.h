#pragma once

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"
#include "routing/alert.h"

namespace re2 {
class RE2;
}

namespace alertrouter::routing {

// A compiled Alertmanager label matcher. Regexes are compiled once (RE2, fully anchored, linear
// time) and shared between copies. Immutable after compile; safe to use from any thread.
class matcher {
 public:
  // Fails (with a message) only if the regex does not compile.
  static std::variant<matcher, std::string> compile(const config::matcher_spec& spec);

  // A missing label is matched as the empty string.
  bool matches(const label_set& labels) const;

  const config::matcher_spec& spec() const { return spec_; }
  // `name="value"` / `name=~"regex"`, quoted as Alertmanager prints matchers.
  std::string to_string() const;

 private:
  matcher() = default;
  config::matcher_spec spec_;
  std::shared_ptr<const re2::RE2> regex_;
};

// True when every matcher matches (true for an empty list).
bool matches_all(const std::vector<matcher>& matchers, const label_set& labels);

}  // namespace alertrouter::routing
