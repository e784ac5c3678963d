#pragma once

#include <string>
#include <vector>

#include "tests/integration/alertmanager_process.h"

namespace alertrouter::integration {

// An Alertmanager webhook body (version "4") carrying `alerts`, as Alertmanager would send it for
// one group: an alert is "resolved" when its ends_at is set (endsAt is then that time), else
// "firing" (endsAt Go's zero time); startsAt defaults to now; no fingerprint (the daemon computes
// Alertmanager's). The top-level status is "firing" if any alert fires. For tests that talk to
// alertrouterd directly, without an Alertmanager. Pure.
std::string encode_webhook(const std::vector<posted_alert>& alerts,
                           std::string group_key = "{}:{alertname=\"test\"}");

}  // namespace alertrouter::integration
