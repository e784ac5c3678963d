#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "routing/time.h"

namespace alertrouter::daemon {

// The subcommands of `alertrouterctl`, as functions over streams so tests can call them
// directly. Each returns the process exit code: 0 success, 1 bad configuration or unknown
// name (reported on `err`), 2 usage error (malformed arguments). Output formats are documented
// in README.md.

// `check-config FILE`: one summary line on `out` and exit 0, or every error as
// `FILE:LINE:COL: message` on `err` and exit 1. Warnings (including schedules with nobody on call
// in the 8 weeks after `now`) go to `err` with exit 0.
int check_config(const std::string& file, routing::sys_seconds now, std::ostream& out,
                 std::ostream& err);

struct oncall_options {
  std::string config_file;
  routing::sys_seconds at;
  std::optional<std::string> schedule;  // only this one
  bool json = false;
};
// One line per schedule: `NAME PERSON SINCE UNTIL` (RFC 3339 UTC, `-` for nobody/unbounded).
int oncall(const oncall_options& o, std::ostream& out, std::ostream& err);

struct schedule_options {
  std::string config_file;
  std::string schedule;
  routing::sys_seconds from;
  int weeks = 4;
  bool json = false;
};
// The coming shifts: `START END PERSON` per line (`-` for gaps).
int schedule(const schedule_options& o, std::ostream& out, std::ostream& err);

struct route_test_options {
  std::string config_file;
  routing::sys_seconds at;
  std::vector<std::string> labels;  // LABEL=VALUE
  bool json = false;
};
// The ownership, each matching route, and each target with the person it resolves to.
int route_test(const route_test_options& o, std::ostream& out, std::ostream& err);

// `state check --state-dir DIR`: checks the daemon's state store (DIR/alertrouter.db) without
// creating or changing anything: schema version, integrity, incident and outbox counts, file
// sizes, one line each on `out`, and exit 0; or those lines and the problem (missing, not an
// alertrouter store, corrupt, newer schema) on `err`, and exit 1.
int state_check(const std::string& state_dir, std::ostream& out, std::ostream& err);

}  // namespace alertrouter::daemon
