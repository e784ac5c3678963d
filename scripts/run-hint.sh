#!/bin/sh
# Printed by `make run`: how to send the daemon a test alert. Usage: scripts/run-hint.sh HOST:PORT
listen=${1:-127.0.0.1:9595}
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cat <<HINT

alertrouterd is starting on http://$listen (Ctrl-C stops it). In another terminal:

  # who is on call now, and the metrics
  curl -s http://$listen/api/v1/oncall
  curl -s http://$listen/metrics | grep ^alertrouter_

  # a page for an owned project, as Alertmanager would send it (run it twice: the second is a duplicate)
  curl -s http://$listen/webhook/alertmanager -H 'Content-Type: application/json' -d '{
    "version": "4", "groupKey": "{}:{alertname=\\"ToolsNFSDown\\"}", "status": "firing",
    "alerts": [{"status": "firing", "startsAt": "$now",
      "labels": {"alertname": "ToolsNFSDown", "project": "tools", "severity": "page", "team": "wmcs"},
      "annotations": {"summary": "NFS server for tools is down"}}]}'

  # or through a real Alertmanager whose webhook receiver points at
  # http://$listen/webhook/alertmanager:
  amtool alert add ToolsNFSDown project=tools severity=page team=wmcs \\
    --annotation=summary='NFS server for tools is down' --alertmanager.url=http://127.0.0.1:9093

The example contacts are http://127.0.0.1:9000/...: with nothing listening there, deliveries are
retried with backoff and logged; point them at a real endpoint to receive the pages.

HINT
