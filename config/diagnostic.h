#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace alertrouter::config {

enum class severity { error, warning };

// One problem found in a configuration file, printable as `FILE:LINE:COL: message`
// (`FILE:LINE:COL: warning: message` for warnings; `FILE: message` when it concerns the whole
// file, i.e. line 0).
struct diagnostic {
  severity level = severity::error;
  std::string file;
  position where;
  std::string message;

  std::string to_string() const;
};

bool has_errors(const std::vector<diagnostic>& diagnostics);

}  // namespace alertrouter::config
