#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "config/config.h"

namespace alertrouter::config {

// Parses one matcher in Alertmanager's syntax: `name<op>value` with op one of = != =~ !~, the
// value either double-quoted (Go-style escapes \" \\ \n) or bare, e.g. `severity="page"`,
// `project=~"tools\..+"`, `team=wmcs`. Whitespace around the parts is allowed. For regex
// operators the pattern is checked with RE2 (anchored as Alertmanager does). On failure returns
// a message describing the problem (never throws). Pure; safe from any thread.
std::variant<matcher_spec, std::string> parse_matcher(std::string_view text);

}  // namespace alertrouter::config
