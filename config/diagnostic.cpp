#include "config/diagnostic.h"

#include <algorithm>

namespace alertrouter::config {

std::string diagnostic::to_string() const {
  std::string out = file;
  if (where.line > 0) {  // line 0: about the file as a whole (e.g. it cannot be read)
    out += ':';
    out += std::to_string(where.line);
    out += ':';
    out += std::to_string(where.column);
  }
  out += ": ";
  if (level == severity::warning) out += "warning: ";
  out += message;
  return out;
}

bool has_errors(const std::vector<diagnostic>& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const diagnostic& d) { return d.level == severity::error; });
}

}  // namespace alertrouter::config
