#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "config/config.h"

namespace alertrouter::config {

// Parses one matcher in Alertmanager's syntax: `name<op>value` with op one of = != =~ !~, the
// value either double-quoted (Go-style escapes \" \\ \n) or bare, e.g. `severity="page"`,
// `project=~"tools\..+"`, `team=wmcs`. Whitespace around the parts is allowed. For regex
// operators the pattern is checked with regex_error() below. On failure returns
// a message describing the problem (never throws). Pure; safe from any thread.
std::variant<matcher_spec, std::string> parse_matcher(std::string_view text);

// Checks a regex as routing::matcher compiles it: with RE2, on its own and fully anchored as
// `^(?:PATTERN)$` (so `a)|(b`, which would escape the anchors, is rejected). Nullopt when it
// compiles, else RE2's reason. Pure.
std::optional<std::string> regex_error(std::string_view pattern);

}  // namespace alertrouter::config
