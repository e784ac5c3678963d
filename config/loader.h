#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/diagnostic.h"

namespace alertrouter::config {

// The outcome of loading a file: `value` is set iff there are no errors (warnings allowed).
// `diagnostics` lists every problem found, in file order, not only the first.
struct load_result {
  std::optional<config> value;
  std::vector<diagnostic> diagnostics;
};

// Reads and validates a configuration file. Never throws: unreadable files, YAML syntax errors,
// unknown keys, wrong types, bad durations/matchers/regexes/time zones, dangling references,
// empty member lists, overlapping or inverted overrides are all reported as diagnostics with the
// file, line and column. Warns when the last route does not match everything.
load_result load_file(const std::string& path);

// Same, from text in memory; `source_name` is used as FILE in messages.
load_result load_string(std::string_view yaml_text, const std::string& source_name);

}  // namespace alertrouter::config
