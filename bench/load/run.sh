#!/usr/bin/env bash
# Load benchmark: alertrouterd's webhook ingest against Alertmanager's own ingest of the same
# alerts, in the same run, each server pinned to one core and wrk to another. See bench/README.md
# ("Load benchmark").
#
#   bench/load/run.sh [BUILD_DIR]        (default: build; needs BUILD_DIR/bin/alertrouterd)
#
# Builds nothing. Environment (defaults in brackets):
#   LOADBENCH_DURATION     wrk duration per case [10s]
#   LOADBENCH_CONNECTIONS  wrk connections [32]
#   LOADBENCH_SIZES        alerts per request, one case per size and server ["1 10"]
#   LOADBENCH_WRK_CPU      core wrk is pinned to [0]
#   LOADBENCH_SERVER_CPU   core each server is pinned to [1]
#   LOADBENCH_KEEP=1       keep the scratch directory (configurations, logs, wrk output)
#   ALERTMANAGER           the Alertmanager binary [/usr/bin/prometheus-alertmanager]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
duration=${LOADBENCH_DURATION:-10s}
connections=${LOADBENCH_CONNECTIONS:-32}
sizes=${LOADBENCH_SIZES:-"1 10"}
wrk_cpu=${LOADBENCH_WRK_CPU:-0}
server_cpu=${LOADBENCH_SERVER_CPU:-1}
alertmanager=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
alertrouterd="$build/bin/alertrouterd"
script="$here/alerts.lua"

die() { echo "run.sh: $*" >&2; exit 1; }

[ -x "$alertrouterd" ] || die "$alertrouterd not found (build the alertrouterd target first)"
[ -x "$alertmanager" ] || die "$alertmanager not found (apt-get install prometheus-alertmanager)"
for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk util-linux curl)"
done
[ "$wrk_cpu" != "$server_cpu" ] || die "wrk and the servers must be pinned to different cores"
taskset -c "$wrk_cpu,$server_cpu" true 2>/dev/null ||
  die "cannot pin to cores $wrk_cpu and $server_cpu (set LOADBENCH_WRK_CPU, LOADBENCH_SERVER_CPU)"

# Each connection is a descriptor in wrk and one in the server (which inherits this limit).
need_fds=$((connections + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$need_fds" 2>/dev/null ||
    die "ulimit -n is $(ulimit -n), $connections connections need $need_fds (raise the hard limit)"
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/loadbench.XXXXXX")
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "${LOADBENCH_KEEP:-0}" = 1 ]; then
    echo "run.sh: scratch directory kept: $scratch" >&2
  else
    rm -rf "$scratch"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A 127.0.0.1 port nothing listens on now (a connection to it is refused).
closed_port() {
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  die "no free port found"
}

# Starts "$@" pinned to the server core, stderr to $1's log; sets server_pid; waits for
# GET /-/ready on $port (both servers have it).
start_server() {
  local name=$1 port=$2
  shift 2
  taskset -c "$server_cpu" "$@" >"$scratch/$name.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 200); do
    if curl -sf -o /dev/null "http://127.0.0.1:$port/-/ready"; then return; fi
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$scratch/$name.log" >&2; die "$name exited"; }
    sleep 0.05
  done
  tail -20 "$scratch/$name.log" >&2
  die "$name not ready on port $port after 10 s"
}

# SIGTERM, then SIGKILL if the server is still there after 15 s.
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

clk_tck=$(getconf CLK_TCK)
# User + system CPU ticks of the server so far (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
# Peak resident set of the server so far, in KiB.
peak_rss_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status"; }

# alertrouterd's configuration: the example (config/examples/wmcs.yaml) with every webhook
# contact pointed at a closed port and a single delivery attempt, so a notification costs its
# construction, its durable record, one refused connection and its dead-lettering, and no other
# process competes for the cores. The state store lives in the scratch directory (on disk,
# fsynced: durability is part of what is measured).
undeliverable=$(closed_port)
sed -E -e "s#http://127\.0\.0\.1:9000/#http://127.0.0.1:$undeliverable/#g" \
  -e 's/^  # (max_attempts:) [0-9]+/  \1 1/' \
  "$repo/config/examples/wmcs.yaml" >"$scratch/alertrouter.yaml"
if ! grep -q "^  max_attempts: 1$" "$scratch/alertrouter.yaml" ||
  ! grep -q ":$undeliverable/" "$scratch/alertrouter.yaml"; then
  die "could not derive the bench configuration from config/examples/wmcs.yaml"
fi

# Alertmanager's: group as the webhook bodies are grouped, into a receiver with no
# integrations, so it ingests, dispatches and notifies nobody.
cat >"$scratch/alertmanager.yml" <<'EOF'
route:
  receiver: blackhole
  group_by: [alertname]
receivers:
  - name: blackhole
EOF

results="$scratch/results"
: >"$results"

# One case: a fresh server, one wrk run, one results line:
#   server size requests duration_us p50_us p99_us errors peak_kib server_cpu% wrk_cpu% check
run_case() {
  local server=$1 size=$2 port mode
  port=$(closed_port)
  if [ "$server" = alertrouterd ]; then
    mode=webhook
    rm -rf "$scratch/state"
    start_server alertrouterd "$port" "$alertrouterd" --config "$scratch/alertrouter.yaml" \
      --listen "127.0.0.1:$port" --state-dir "$scratch/state" --log-level warn
  else
    mode=alerts
    rm -rf "$scratch/alertmanager-data"
    mkdir "$scratch/alertmanager-data"
    start_server alertmanager "$port" "$alertmanager" \
      --config.file="$scratch/alertmanager.yml" --storage.path="$scratch/alertmanager-data" \
      --web.listen-address="127.0.0.1:$port" --cluster.listen-address= --log.level=warn
  fi

  local ticks_before ticks_after out="$scratch/wrk-$server-$size.out"
  ticks_before=$(cpu_ticks)
  taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d"$duration" --latency -s "$script" \
    "http://127.0.0.1:$port" -- "$mode" "$size" >"$out"
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -20 "$scratch/$server.log" >&2
    die "$server exited during the run"
  fi
  ticks_after=$(cpu_ticks)
  local peak
  peak=$(peak_rss_kib)

  # What the server says it took in, to check the run did what it claims.
  local check
  if [ "$server" = alertrouterd ]; then
    check=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '
      /^alertrouter_incidents_opened_total /   { opened = $2 }
      /^alertrouter_incidents_reopened_total / { reopened = $2 }
      /^alertrouter_incidents_resolved_total / { resolved = $2 }
      /^alertrouter_alerts_duplicate_total /   { dup = $2 }
      /^alertrouter_alerts_stale_total /       { stale = $2 }
      /^alertrouter_http_responses_total\{code="[45]xx"\} / { bad += $2 }
      /^alertrouter_state_commits_total / { commits = $2 }
      /^alertrouter_state_committed_webhooks_total / { committed = $2 }
      /^alertrouter_state_commit_duration_seconds_sum / { commit_s = $2 }
      END { printf "opened=%d reopened=%d resolved=%d duplicates=%d stale=%d 4xx+5xx=%d " \
                   "commits=%d committed_webhooks=%d mean_commit_us=%d",
                   opened, reopened, resolved, dup, stale, bad, commits, committed,
                   commits ? 1e6 * commit_s / commits : 0 }')
  else
    check=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '
      /^alertmanager_alerts_received_total\{status="firing",version="v2"\} /   { firing = $2 }
      /^alertmanager_alerts_received_total\{status="resolved",version="v2"\} / { resolved = $2 }
      /^alertmanager_alerts_invalid_total\{version="v2"\} / { invalid = $2 }
      /^alertmanager_alerts\{state="active"\} / { active = $2 }
      /^alertmanager_alerts\{state="unprocessed"\} / { unprocessed = $2 }
      END { printf "firing=%d resolved=%d invalid=%d active=%d unprocessed=%d",
                   firing, resolved, invalid, active, unprocessed }')
  fi
  stop_server

  grep -q '^LOADBENCH ' "$out" || { cat "$out" >&2; die "no LOADBENCH line from wrk"; }
  awk -v server="$server" -v size="$size" -v peak="$peak" -v tck="$clk_tck" \
      -v ticks=$((ticks_after - ticks_before)) -v check="$check" '
    /^LOADBENCH(_INIT)? / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[$1, kv[1]] = kv[2] } }
    END {
      secs = f["LOADBENCH", "duration_us"] / 1e6
      wrk_cpu = f["LOADBENCH", "cpu_s"] - f["LOADBENCH_INIT", "cpu_s"]
      printf "%s %s %d %d %d %d %d %d %.2f %.2f %s\n", server, size, f["LOADBENCH", "requests"],
             f["LOADBENCH", "duration_us"], f["LOADBENCH", "p50_us"], f["LOADBENCH", "p99_us"],
             f["LOADBENCH", "errors"], peak, 100 * ticks / tck / secs, 100 * wrk_cpu / secs, check
    }' "$out" >>"$results"
}

echo "Load benchmark: $alertrouterd vs $("$alertmanager" --version 2>&1 | head -1)"
echo "wrk -t1 -c$connections -d$duration pinned to core $wrk_cpu, each server to core $server_cpu;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for size in $sizes; do
  for server in alertrouterd alertmanager; do
    echo "  $server, $size alert(s) per request ..." >&2
    run_case "$server" "$size"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

awk '
  function ms(us) { return sprintf("%.2f ms", us / 1000) }
  {
    server = $1; size = $2; secs = $4 / 1e6
    rps = $3 / secs; aps = rps * size
    # CPU time of the server per alert: what a busy machine disturbs least.
    cpu_us = $9 / 100 * secs * 1e6 / ($3 * size)
    key = server SUBSEP size; alerts[key] = aps; p99[key] = $6; cpu[key] = cpu_us
    if (!(size in seen)) { seen[size] = 1; order[++n] = size }
    row[++rows] = sprintf("| %s | %d alert%s/request | %.0f | %.0f | %s | %s | %.1f MiB | %.0f%% | %.1f us | %.0f%% | %d |",
                          server, size, size == 1 ? "" : "s", rps, aps, ms($5), ms($6),
                          $8 / 1024, $9, cpu_us, $10, $7)
    took = $11
    for (i = 12; i <= NF; i++) took = took " " $i
    check[rows] = sprintf("%s, %d alert%s/request: %s", server, size, size == 1 ? "" : "s", took)
  }
  END {
    print "| server | payload | requests/s | alerts/s | p50 | p99 | peak RSS | server CPU | server CPU/alert | wrk CPU | errors |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= rows; i++) print row[i]
    print ""
    print "| payload | alertrouterd / Alertmanager alerts/s | Alertmanager / alertrouterd CPU per alert | target: >= 10x alerts/s, p99 <= 2 ms |"
    print "|---|---:|---:|---|"
    for (i = 1; i <= n; i++) {
      s = order[i]; r = "alertrouterd" SUBSEP s; m = "alertmanager" SUBSEP s
      if (alerts[m] == 0 || cpu[r] == 0) continue
      ratio = alerts[r] / alerts[m]
      met = (ratio >= 10 && p99[r] <= 2000) ? "met" : "NOT met"
      printf "| %d alert%s/request | %.1fx | %.1fx | %s (p99 %s) |\n", s, s == 1 ? "" : "s",
             ratio, cpu[m] / cpu[r], met, ms(p99[r])
    }
    print ""
    print "What each server took in (from its /metrics):"
    for (i = 1; i <= rows; i++) print "  " check[i]
  }
' "$results"
