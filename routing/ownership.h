#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <variant>
#include <vector>

#include "config/config.h"
#include "routing/alert.h"
#include "routing/matcher.h"

namespace re2 {
class RE2;
}

namespace alertrouter::routing {

enum class ownership {
  owned,    // a project the team owns, or the team's own infrastructure: may page
  user,     // an ordinary Cloud VPS project: goes to that project's contacts, never the pager
  unowned,  // no project label and not the team's infrastructure
};
std::string_view to_string(ownership o);

// The label the classifier writes, and the severity spelling it normalises.
inline constexpr std::string_view kOwnershipLabel = "ownership";

// Decides whose alert this is. Built once per configuration; immutable; safe from any thread.
class ownership_classifier {
 public:
  static std::variant<ownership_classifier, std::string> compile(const config::ownership_config& c);

  // project in `owned` or matching one of `owned_regex` -> owned; any other non-empty project ->
  // user; no project label: all `infrastructure` matchers match (and there is at least one) ->
  // owned, else unowned.
  ownership classify(const label_set& labels) const;

  // Sets the `ownership` label to classify(labels) and rewrites `severity="warn"` to "warning".
  // Returns the ownership.
  ownership annotate(label_set& labels) const;

  const std::string& label() const { return label_; }

 private:
  ownership_classifier() = default;
  // Heterogeneous lookup so classify() can probe with the label's string_view.
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::string label_;
  std::unordered_set<std::string, string_hash, std::equal_to<>> owned_;
  std::shared_ptr<const re2::RE2> owned_regex_;  // alternation of all patterns, anchored
  std::vector<matcher> infrastructure_;
};

}  // namespace alertrouter::routing
