#pragma once

// Realistic alerts for the integration tests, from WMCS's real rules
// (/work/shared/data/wmcs-alert-rules.yaml, wikimedia/operations-alerts team-wmcs/) with the
// labels they carry by the time they reach Alertmanager: series labels (instance, job), the
// Prometheus external labels (site, prometheus) and source="prometheus".

#include <chrono>
#include <string>

#include "tests/integration/alertmanager_process.h"

namespace alertrouter::integration::wmcs_alerts {

// team-wmcs/cloudvirt.yaml CloudVirtDown: infrastructure (no project label, team="wmcs"), pages.
inline posted_alert cloudvirt_down(std::string host = "cloudvirt1031") {
  posted_alert a;
  a.labels = {{"alertname", "CloudVirtDown"},
              {"severity", "page"},
              {"team", "wmcs"},
              {"instance", host},
              {"job", "openstack"},
              {"site", "eqiad"},
              {"prometheus", "cloud"},
              {"source", "prometheus"}};
  a.annotations = {{"summary", "nova-compute on node " + host + " is down. #page"},
                   {"runbook",
                    "https://wikitech.wikimedia.org/wiki/Portal:Cloud_VPS/Admin/Runbooks/"
                    "CloudVirtDown"}};
  a.generator_url =
      "https://prometheus-eqiad.wikimedia.org/cloud/graph?g0.expr=openstack_nova_"
      "agent_state";
  a.starts_at = std::chrono::system_clock::now() - std::chrono::minutes(20);
  return a;
}

// team-wmcs MetricsinfraAlertmanagerDown, as the metricsinfra project's Prometheus sends it: an
// owned project (project="metricsinfra"), severity page.
inline posted_alert metricsinfra_alertmanager_down() {
  posted_alert a;
  a.labels = {{"alertname", "MetricsinfraAlertmanagerDown"},
              {"severity", "page"},
              {"team", "wmcs"},
              {"service", "cloudvps"},
              {"project", "metricsinfra"},
              {"instance", "metricsinfra-alertmanager-1:9093"},
              {"source", "prometheus"}};
  a.annotations = {{"summary", "Metricsinfra alertmanager is unreachable #page"}};
  a.starts_at = std::chrono::system_clock::now() - std::chrono::minutes(5);
  return a;
}

// A user project's own rule on metricsinfra: deployment-prep (Beta Cluster, not owned by WMCS)
// pages its own people with severity="page".
inline posted_alert deployment_prep_instance_down() {
  posted_alert a;
  a.labels = {{"alertname", "InstanceDown"},
              {"severity", "page"},
              {"project", "deployment-prep"},
              {"instance", "deployment-mediawiki11:9100"},
              {"job", "node"},
              {"source", "prometheus"}};
  a.annotations = {{"summary", "deployment-mediawiki11 is down"}};
  a.starts_at = std::chrono::system_clock::now() - std::chrono::minutes(3);
  return a;
}

// team-wmcs ObjectStorageSizeQuotaFull (warning) for the tools project: owned, not paging.
inline posted_alert tools_object_storage_quota_warning() {
  posted_alert a;
  a.labels = {{"alertname", "ObjectStorageSizeQuotaFull"},
              {"severity", "warning"},
              {"team", "wmcs"},
              {"service", "openstack,cloudvps,radosgw"},
              {"project", "tools"},
              {"source", "prometheus"}};
  a.annotations = {{"summary", "Object storage quota by 'size' is 91% full for project tools"}};
  a.starts_at = std::chrono::system_clock::now() - std::chrono::minutes(1);
  return a;
}

// The same alert, resolved now (same labels and startsAt, endsAt = now).
inline posted_alert resolved(posted_alert a) {
  a.ends_at = std::chrono::system_clock::now();
  return a;
}

}  // namespace alertrouter::integration::wmcs_alerts
