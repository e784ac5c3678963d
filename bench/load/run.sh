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
# The fixed-rate phase (after the closed-loop cases; needs BUILD_DIR/bin/loadgen):
#   LOADBENCH_RATE_RATIOS  offered rates, as multiples of Alertmanager's alerts/s measured above
#                          for the same payload; one alertrouterd run per ratio and size ["5 10"];
#                          empty skips the phase
#   LOADBENCH_RATE_DURATION    recorded seconds per fixed-rate run [10]
#   LOADBENCH_RATE_WARMUP      seconds at the rate before recording [2]
#   LOADBENCH_RATE_CONNECTIONS loadgen's keep-alive connections [64]
#   LOADBENCH_AM_REFERENCE     Alertmanager's own reference run, as a multiple of its measured
#                              alerts/s [0.5]; empty skips it
#   LOADBENCH_FLOOR            1: run BUILD_DIR/bin/null_server (an HTTP server that answers 200
#                              and does nothing else), if built, as a third server in both
#                              phases: what this machine allows any server [1]
#   LOADBENCH_RECEIVER     where alertrouterd's notifications go: "null_server" (BUILD_DIR/bin/
#                          null_server on the client core, answering 200: they are delivered)
#                          or "closed" (a closed port: one refused attempt, then dead-lettered)
#                          [null_server if built, else closed]
#   LOADBENCH_PROBE            1: time a fixed unit of work on the client core every millisecond
#                              through each fixed-rate run (BUILD_DIR/bin/cpu_probe, if built),
#                              and report the share of 50 ms windows the core was slow in [1]
#   ALERTMANAGER           the Alertmanager binary [/usr/bin/prometheus-alertmanager]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=${1:-build}
duration=${LOADBENCH_DURATION:-10s}
connections=${LOADBENCH_CONNECTIONS:-32}
sizes=${LOADBENCH_SIZES:-"1 10"}
rate_ratios=${LOADBENCH_RATE_RATIOS-"5 10"}
rate_duration=${LOADBENCH_RATE_DURATION:-10}
rate_warmup=${LOADBENCH_RATE_WARMUP:-2}
rate_connections=${LOADBENCH_RATE_CONNECTIONS:-64}
am_reference=${LOADBENCH_AM_REFERENCE-0.5}
wrk_cpu=${LOADBENCH_WRK_CPU:-0}
server_cpu=${LOADBENCH_SERVER_CPU:-1}
alertmanager=${ALERTMANAGER:-/usr/bin/prometheus-alertmanager}
alertrouterd="$build/bin/alertrouterd"
loadgen="$build/bin/loadgen"
probe="$build/bin/cpu_probe"
null_server="$build/bin/null_server"
[ "${LOADBENCH_FLOOR:-1}" = 1 ] && [ -x "$null_server" ] || null_server=""
[ "${LOADBENCH_PROBE:-1}" = 1 ] && [ -x "$probe" ] || probe=""
script="$here/alerts.lua"

die() { echo "run.sh: $*" >&2; exit 1; }

[ -x "$alertrouterd" ] || die "$alertrouterd not found (build the alertrouterd target first)"
if [ -n "$rate_ratios" ] && [ ! -x "$loadgen" ]; then
  die "$loadgen not found (build the loadgen target; LOADBENCH_RATE_RATIOS= skips the fixed rates)"
fi
[ -x "$alertmanager" ] || die "$alertmanager not found (apt-get install prometheus-alertmanager)"
for tool in wrk taskset curl; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install wrk util-linux curl)"
done
[ "$wrk_cpu" != "$server_cpu" ] || die "wrk and the servers must be pinned to different cores"
taskset -c "$wrk_cpu,$server_cpu" true 2>/dev/null ||
  die "cannot pin to cores $wrk_cpu and $server_cpu (set LOADBENCH_WRK_CPU, LOADBENCH_SERVER_CPU)"

# Each connection is a descriptor in wrk and one in the server (which inherits this limit).
most_connections=$((connections > rate_connections ? connections : rate_connections))
need_fds=$((most_connections + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need_fds" ]; then
  ulimit -n "$need_fds" 2>/dev/null ||
    die "ulimit -n is $(ulimit -n), $most_connections connections need $need_fds" \
      "(raise the hard limit)"
fi

receiver=${LOADBENCH_RECEIVER:-$([ -n "$null_server" ] && echo null_server || echo closed)}
case "$receiver" in
  closed) ;;
  null_server)
    [ -x "$build/bin/null_server" ] ||
      die "$build/bin/null_server not found (build the null_server target, or LOADBENCH_RECEIVER=closed)"
    ;;
  *) die "LOADBENCH_RECEIVER must be null_server or closed, not '$receiver'" ;;
esac

scratch=$(mktemp -d "${TMPDIR:-/tmp}/loadbench.XXXXXX")
server_pid=""
receiver_pid=""
cleanup() {
  if [ -n "$receiver_pid" ]; then
    kill -KILL "$receiver_pid" 2>/dev/null || true
    wait "$receiver_pid" 2>/dev/null || true
  fi
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

# A 127.0.0.1 port nothing listens on now (a connection to it is refused), below the kernel's
# ephemeral range, so no client socket (loadgen's, wrk's, alertrouterd's deliveries, or one in
# TIME_WAIT from an earlier case) holds it when a server binds it.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$ephemeral_low" -gt 12000 ] 2>/dev/null || ephemeral_low=32768
closed_port() {
  local port
  for _ in $(seq 100); do
    port=$((10000 + RANDOM % (ephemeral_low - 10000)))
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
# contact pointed at the receiver. With LOADBENCH_RECEIVER=null_server (the default) that is a
# null_server on the client's core, for the whole run, answering every POST 200: a notification
# costs its construction, its durable record, its delivery on a keep-alive connection and its
# delivered mark, as in production. With `closed` it is a closed port and a single delivery
# attempt: one refused connection, then the dead-lettering (a warning line and a store write).
# The state store lives in the scratch directory (on disk, fsynced: durability is part of what is
# measured).
if [ "$receiver" = null_server ]; then
  # One port per webhook contact (alice, bob, ..., cloud-feed): separate endpoints, as people's
  # webhooks are in production, so each has its own connection pool and in-flight limit.
  mapfile -t contacts < <(grep -oE 'http://127\.0\.0\.1:9000/[A-Za-z0-9_-]+' \
    "$repo/config/examples/wmcs.yaml" | sort -u)
  [ "${#contacts[@]}" -gt 0 ] || die "no webhook contact found in config/examples/wmcs.yaml"
  listen_args=()
  for _ in "${contacts[@]}"; do listen_args+=(--listen 127.0.0.1:0); done
  taskset -c "$wrk_cpu" "$build/bin/null_server" "${listen_args[@]}" >"$scratch/receiver.out" 2>&1 &
  receiver_pid=$!
  receiver_ports=""
  for _ in $(seq 100); do
    receiver_ports=$(sed -n 's/^NULL_SERVER listening //p' "$scratch/receiver.out")
    [ -n "$receiver_ports" ] && break
    kill -0 "$receiver_pid" 2>/dev/null || { cat "$scratch/receiver.out" >&2; die "null_server exited"; }
    sleep 0.05
  done
  [ -n "$receiver_ports" ] || die "null_server did not start listening"
  read -ra ports <<<"$receiver_ports"
  rewrite=()
  for i in "${!contacts[@]}"; do
    rewrite+=(-e "s#${contacts[$i]}([\"/?])#http://127.0.0.1:${ports[$i]}/${contacts[$i]##*/}\\1#g")
  done
  sed -E "${rewrite[@]}" "$repo/config/examples/wmcs.yaml" >"$scratch/alertrouter.yaml"
  ! grep -q '127\.0\.0\.1:9000/' "$scratch/alertrouter.yaml" ||
    die "could not derive the bench configuration from config/examples/wmcs.yaml"
else
  undeliverable=$(closed_port)
  sed -E -e "s#http://127\.0\.0\.1:9000/#http://127.0.0.1:$undeliverable/#g" \
    -e 's/^  # (max_attempts:) [0-9]+/  \1 1/' \
    "$repo/config/examples/wmcs.yaml" >"$scratch/alertrouter.yaml"
  if ! grep -q "^  max_attempts: 1$" "$scratch/alertrouter.yaml" ||
    ! grep -q ":$undeliverable/" "$scratch/alertrouter.yaml"; then
    die "could not derive the bench configuration from config/examples/wmcs.yaml"
  fi
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

# A fresh $1 (alertrouterd, alertmanager or floor) on port $2, with empty state; sets mode (the
# alerts.lua mode that server takes). The floor is null_server: it reads alertrouterd's
# requests and answers each 200 without looking at it.
start_case_server() {
  local server=$1 port=$2
  rm -rf "$scratch/state" "$scratch/alertmanager-data"
  # The previous case's writes (both servers fsync their stores) are flushed now, not during
  # this case, where the disk's writeback would stall this server's own fsyncs.
  sync
  if [ "$server" = floor ]; then
    mode=webhook
    start_server floor "$port" "$null_server" --listen "127.0.0.1:$port"
  elif [ "$server" = alertrouterd ]; then
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
}

# What server $1 on port $2 says it took in (its /metrics), to check a run did what it claims.
server_check() {
  local server=$1 port=$2
  if [ "$server" = floor ]; then
    echo "(answers 200 to everything, keeps nothing)"
  elif [ "$server" = alertrouterd ]; then
    curl -sf "http://127.0.0.1:$port/metrics" | awk '
      /^alertrouter_incidents_opened_total /   { opened = $2 }
      /^alertrouter_incidents_reopened_total / { reopened = $2 }
      /^alertrouter_incidents_resolved_total / { resolved = $2 }
      /^alertrouter_alerts_duplicate_total /   { dup = $2 }
      /^alertrouter_alerts_stale_total /       { stale = $2 }
      /^alertrouter_http_responses_total\{code="[45]xx"\} / { bad += $2 }
      /^alertrouter_state_commits_total / { commits = $2 }
      /^alertrouter_state_committed_webhooks_total / { committed = $2 }
      /^alertrouter_state_commit_duration_seconds_sum / { commit_s = $2 }
      /^alertrouter_notifications_total\{.*result="delivered"\} / { delivered += $2 }
      /^alertrouter_notifications_total\{.*result="gave_up"\} /   { gave_up += $2 }
      /^alertrouter_outbox_pending / { pending = $2 }
      /^alertrouter_webhook_bodies_indexed_total\{how="first_stage"\} / { first_stage = $2 }
      /^alertrouter_webhook_bodies_indexed_total\{how="same"\} /        { same = $2 }
      /^alertrouter_webhook_bodies_indexed_total\{how="derived"\} /     { derived = $2 }
      /^alertrouter_webhook_bodies_replayed_total / { replayed = $2 }
      END { printf "opened=%d reopened=%d resolved=%d duplicates=%d stale=%d 4xx+5xx=%d " \
                   "commits=%d committed_webhooks=%d mean_commit_us=%d " \
                   "notifications_delivered=%d gave_up=%d still_pending=%d " \
                   "indexed_first_stage=%d indexed_same=%d indexed_derived=%d replayed=%d",
                   opened, reopened, resolved, dup, stale, bad, commits, committed,
                   commits ? 1e6 * commit_s / commits : 0, delivered, gave_up, pending,
                   first_stage, same, derived, replayed }'
  else
    curl -sf "http://127.0.0.1:$port/metrics" | awk '
      /^alertmanager_alerts_received_total\{status="firing",version="v2"\} /   { firing = $2 }
      /^alertmanager_alerts_received_total\{status="resolved",version="v2"\} / { resolved = $2 }
      /^alertmanager_alerts_invalid_total\{version="v2"\} / { invalid = $2 }
      /^alertmanager_alerts\{state="active"\} / { active = $2 }
      /^alertmanager_alerts\{state="unprocessed"\} / { unprocessed = $2 }
      END { printf "firing=%d resolved=%d invalid=%d active=%d unprocessed=%d",
                   firing, resolved, invalid, active, unprocessed }'
  fi
}

# How long alertrouterd on port $1 takes, from now, until no notification is pending: the
# delivery work of the alerts it accepted but has not finished yet (its outbox delivers to each
# URL one at a time, in order, so under a saturating load it falls behind). Prints
# microseconds; polls /metrics every 50 ms, for at most 120 s (then prints what it waited and
# stops waiting). 0 for the other servers.
drain_us() {
  local server=$1 port=$2 start now pending
  [ "$server" = alertrouterd ] || { echo 0; return; }
  start=$(date +%s%N)
  for _ in $(seq 2400); do
    pending=$(curl -sf "http://127.0.0.1:$port/metrics" |
      awk '/^alertrouter_outbox_pending / { print $2 + 0 }')
    [ "${pending:-1}" = 0 ] && break
    sleep 0.05
  done
  now=$(date +%s%N)
  echo $(((now - start) / 1000))
}

# One case: a fresh server, one wrk run, then the server's delivery backlog drained; one
# results line:
#   server size requests duration_us p50_us p99_us errors peak_kib server_cpu% wrk_cpu% drain_us
#   check
# server_cpu% is over the wrk run and the drain together.
run_case() {
  local server=$1 size=$2 port mode
  port=$(closed_port)
  start_case_server "$server" "$port"

  local ticks_before ticks_after out="$scratch/wrk-$server-$size.out"
  ticks_before=$(cpu_ticks)
  taskset -c "$wrk_cpu" wrk -t1 -c"$connections" -d"$duration" --latency -s "$script" \
    "http://127.0.0.1:$port" -- "$mode" "$size" >"$out"
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -20 "$scratch/$server.log" >&2
    die "$server exited during the run"
  fi
  local drain
  drain=$(drain_us "$server" "$port")
  ticks_after=$(cpu_ticks)
  local peak
  peak=$(peak_rss_kib)

  # What the server says it took in, to check the run did what it claims.
  local check
  check=$(server_check "$server" "$port")
  stop_server

  grep -q '^LOADBENCH ' "$out" || { cat "$out" >&2; die "no LOADBENCH line from wrk"; }
  awk -v server="$server" -v size="$size" -v peak="$peak" -v tck="$clk_tck" \
      -v ticks=$((ticks_after - ticks_before)) -v drain="$drain" -v check="$check" '
    /^LOADBENCH(_INIT)? / { for (i = 2; i <= NF; i++) { split($i, kv, "="); f[$1, kv[1]] = kv[2] } }
    END {
      secs = f["LOADBENCH", "duration_us"] / 1e6
      wrk_cpu = f["LOADBENCH", "cpu_s"] - f["LOADBENCH_INIT", "cpu_s"]
      printf "%s %s %d %d %d %d %d %d %.2f %.2f %d %s\n", server, size, f["LOADBENCH", "requests"],
             f["LOADBENCH", "duration_us"], f["LOADBENCH", "p50_us"], f["LOADBENCH", "p99_us"],
             f["LOADBENCH", "errors"], peak, 100 * ticks / tck / (secs + drain / 1e6),
             100 * wrk_cpu / secs, drain, check
    }' "$out" >>"$results"
}

echo "Load benchmark: $alertrouterd vs $("$alertmanager" --version 2>&1 | head -1)"
echo "wrk -t1 -c$connections -d$duration pinned to core $wrk_cpu, each server to core $server_cpu;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$receiver" = null_server ]; then
  echo "alertrouterd's notifications go to a null_server on core $wrk_cpu (${#contacts[@]} ports," \
    "one per webhook contact), which answers 200: delivered"
else
  echo "alertrouterd's notifications go to a closed port: one refused attempt, then dead-lettered"
fi
closed_servers="alertrouterd alertmanager"
[ -z "$null_server" ] || closed_servers="$closed_servers floor"
for size in $sizes; do
  for server in $closed_servers; do
    echo "  $server, $size alert(s) per request ..." >&2
    run_case "$server" "$size"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

awk '
  function ms(us) { return sprintf("%.2f ms", us / 1000) }
  function label(server) { return server == "floor" ? "floor (null_server)" : server }
  {
    # Rates over the wrk run and the drain of the delivery backlog together: every alert
    # counted has also had its notifications delivered.
    server = $1; size = $2; secs = ($4 + $11) / 1e6
    rps = $3 / secs; aps = rps * size
    # CPU time of the server per alert: what a busy machine disturbs least.
    cpu_us = $9 / 100 * secs * 1e6 / ($3 * size)
    key = server SUBSEP size; alerts[key] = aps; p99[key] = $6; cpu[key] = cpu_us
    if (!(size in seen)) { seen[size] = 1; order[++n] = size }
    row[++rows] = sprintf("| %s | %d alert%s/request | %.0f | %.0f | %s | %s | %.1f MiB | %.0f%% | %.1f us | %.0f%% | %.1f s | %d |",
                          label(server), size, size == 1 ? "" : "s", rps, aps, ms($5), ms($6),
                          $8 / 1024, $9, cpu_us, $10, $11 / 1e6, $7)
    took = $12
    for (i = 13; i <= NF; i++) took = took " " $i
    check[rows] = sprintf("%s, %d alert%s/request: %s", label(server), size, size == 1 ? "" : "s", took)
  }
  END {
    print "| server | payload | requests/s | alerts/s | p50 | p99 | peak RSS | server CPU | server CPU/alert | wrk CPU | delivery drain | errors |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= rows; i++) print row[i]
    print ""
    # The floor column: the alerts/s of a server that does nothing, as a multiple of
    # Alertmanager: the most any server could reach on this core with this client.
    print "| payload | alertrouterd / Alertmanager alerts/s | Alertmanager / alertrouterd CPU per alert | floor / Alertmanager alerts/s | target: >= 10x alerts/s, p99 <= 2 ms |"
    print "|---|---:|---:|---:|---|"
    for (i = 1; i <= n; i++) {
      s = order[i]; r = "alertrouterd" SUBSEP s; m = "alertmanager" SUBSEP s; f = "floor" SUBSEP s
      if (alerts[m] == 0 || cpu[r] == 0) continue
      ratio = alerts[r] / alerts[m]
      met = (ratio >= 10 && p99[r] <= 2000) ? "met" : "NOT met"
      floor = (f in alerts) ? sprintf("%.1fx", alerts[f] / alerts[m]) : "-"
      printf "| %d alert%s/request | %.1fx | %.1fx | %s | %s (p99 %s) |\n", s, s == 1 ? "" : "s",
             ratio, cpu[m] / cpu[r], floor, met, ms(p99[r])
    }
    print ""
    print "What each server took in (from its /metrics):"
    for (i = 1; i <= rows; i++) print "  " check[i]
  }
' "$results"

# The fixed-rate phase: open loop. loadgen sends request i at start + i / rate whether or not the
# server has answered the earlier ones (up to LOADBENCH_RATE_CONNECTIONS at once) and measures
# each latency from that due time, so the percentiles are those of a server offered this rate,
# not the queueing of a closed loop at saturation. The rates are multiples of Alertmanager's
# alerts/s measured above, per payload.
[ -n "$rate_ratios" ] || exit 0

rate_results="$scratch/rate-results"
rate_checks="$scratch/rate-checks"
: >"$rate_results"
: >"$rate_checks"

# One fixed-rate run: a fresh server, alerts.lua's requests dumped for loadgen, loadgen at $4
# requests/s on the client core. Appends to $rate_results one line of key=value fields (this
# function's, then loadgen's LOADGEN line), to $rate_checks what the server took in.
run_rate_case() {
  local server=$1 size=$2 ratio=$3 rps=$4 port mode
  port=$(closed_port)
  start_case_server "$server" "$port"

  # wrk only prepares the requests and writes them out (alerts.lua's dump mode), after one test
  # connection; it sends nothing.
  local requests="$scratch/requests-$server-$size" out="$scratch/loadgen-$server-$size-x$ratio.out"
  rm -f "$requests"
  taskset -c "$wrk_cpu" wrk -t1 -c1 -d1s -s "$script" "http://127.0.0.1:$port" -- \
    "$mode" "$size" "$requests" >/dev/null
  [ -s "$requests" ] || die "alerts.lua wrote no request file for $server"

  # The probe on the client core, through loadgen's whole run (see probe_reference below).
  local probe_out="$scratch/probe-$server-$size-x$ratio.out" probe_pid=""
  if [ -n "$probe" ]; then
    taskset -c "$wrk_cpu" "$probe" --reference "$probe_reference" \
      --seconds "$(awk -v w="$rate_warmup" -v d="$rate_duration" 'BEGIN { print w + d }')" \
      >"$probe_out" &
    probe_pid=$!
  fi

  local ticks_before ticks_after ns_before ns_after
  ticks_before=$(cpu_ticks)
  ns_before=$(date +%s%N)
  if ! taskset -c "$wrk_cpu" "$loadgen" --rate "$rps" --duration "$rate_duration" \
    --warmup "$rate_warmup" --connections "$rate_connections" --requests "$requests" \
    "http://127.0.0.1:$port" >"$out"; then
    cat "$out" >&2
    die "loadgen failed against $server"
  fi
  local slow="-"
  if [ -n "$probe_pid" ]; then
    wait "$probe_pid" || true
    slow=$(tr ' ' '\n' <"$probe_out" | sed -n 's/^slow_pct=//p')
    [ -n "$slow" ] || slow="-"
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    tail -20 "$scratch/$server.log" >&2
    die "$server exited during the run"
  fi
  local drain
  drain=$(drain_us "$server" "$port")
  ns_after=$(date +%s%N)
  ticks_after=$(cpu_ticks)
  local peak check
  peak=$(peak_rss_kib)
  check=$(server_check "$server" "$port")
  stop_server

  local line
  line=$(grep '^LOADGEN ' "$out") || { cat "$out" >&2; die "no LOADGEN line from loadgen"; }
  # Server CPU over loadgen's whole run (warmup and drain included) and the delivery drain, as a
  # share of one core.
  awk -v ticks=$((ticks_after - ticks_before)) -v tck="$clk_tck" \
      -v ns=$((ns_after - ns_before)) -v peak="$peak" -v server="$server" -v size="$size" \
      -v ratio="$ratio" -v slow="$slow" -v drain="$drain" -v line="${line#LOADGEN }" 'BEGIN {
    printf "server=%s size=%s ratio=%s peak_kib=%d server_cpu=%.1f probe_slow=%s drain_us=%d %s\n",
           server, size, ratio, peak, 100 * ticks / tck / (ns / 1e9), slow, drain, line }' \
    >>"$rate_results"
  echo "$([ "$server" = floor ] && echo "floor (null_server)" || echo "$server")," \
    "$size alert$([ "$size" = 1 ] || echo s)/request, ${ratio}x: $check" \
    >>"$rate_checks"
}

# Alertmanager's alerts/s in the closed-loop case of payload $1 (0 if there was none).
alertmanager_alerts_per_s() {
  awk -v size="$1" '$1 == "alertmanager" && $2 == size && $4 > 0 {
    printf "%.1f", $3 / ($4 / 1e6) * size; found = 1 } END { if (!found) print 0 }' "$results"
}

# How long the probe's unit of work takes on the client core with nothing else running: the
# runs' slow windows are those more than 1.4 times slower. This VM slows one core while the
# other works (bench/README.md, "Session 6"); the share says how much of that a run saw.
probe_reference=0
if [ -n "$probe" ]; then
  probe_reference=$(taskset -c "$wrk_cpu" "$probe" --seconds 2 | tr ' ' '\n' |
    sed -n 's/^median_us=//p')
fi

echo
echo "Fixed rate (open loop): $loadgen on core $wrk_cpu, $rate_connections connections," \
  "${rate_warmup} s warmup + ${rate_duration} s recorded per run," \
  "each server on core $server_cpu;" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "$probe" ]; then
  echo "  cpu_probe on core $wrk_cpu: a unit of work takes $probe_reference us with nothing running"
fi
for size in $sizes; do
  am_aps=$(alertmanager_alerts_per_s "$size")
  if awk -v a="$am_aps" 'BEGIN { exit !(a <= 0) }'; then
    echo "  no Alertmanager rate measured for $size alert(s) per request: skipped" >&2
    continue
  fi
  for ratio in $rate_ratios; do
    rps=$(awk -v a="$am_aps" -v r="$ratio" -v s="$size" 'BEGIN { printf "%.1f", a * r / s }')
    if [ -n "$null_server" ]; then
      echo "  floor (null_server), $size alert(s) per request, ${ratio}x Alertmanager:" \
        "$rps requests/s ..." >&2
      run_rate_case floor "$size" "$ratio" "$rps"
    fi
    echo "  alertrouterd, $size alert(s) per request, ${ratio}x Alertmanager:" \
      "$rps requests/s ..." >&2
    run_rate_case alertrouterd "$size" "$ratio" "$rps"
  done
  if [ -n "$am_reference" ]; then
    rps=$(awk -v a="$am_aps" -v r="$am_reference" -v s="$size" 'BEGIN { printf "%.1f", a * r / s }')
    echo "  alertmanager, $size alert(s) per request, ${am_reference}x its own rate:" \
      "$rps requests/s ..." >&2
    run_rate_case alertmanager "$size" "$am_reference" "$rps"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

awk '
  function ms(us) { return sprintf("%.2f ms", us / 1000) }
  {
    delete f
    # Numbers as numbers: a substr() is a string, and awk compares two strings as text.
    for (i = 1; i <= NF; i++) {
      eq = index($i, "="); v = substr($i, eq + 1)
      f[substr($i, 1, eq - 1)] = v ~ /^-?[0-9]+(\.[0-9]+)?$/ ? v + 0 : v
    }
    size = f["size"]; ratio = f["ratio"]
    offered = f["rate"] * size; achieved = f["achieved_rps"] * size
    # Keeping up: the achieved rate is the offered one, every request due was sent in time and
    # answered, and the notifications were delivered as they came (what was left at the end
    # delivered within 5 s). Otherwise the server is saturated, its latencies (or its delivery
    # backlog) grow with the run length, and no p99 target can be called met.
    keeps = f["achieved_rps"] >= 0.95 * f["rate"] && f["backlog_end"] == 0 && f["unsent"] == 0 &&
            f["timeouts"] == 0 && f["drain_us"] <= 5e6
    behind = sprintf("cannot keep up: achieved %.0f%% of offered, %d due and unsent at the end, " \
                     "%d never sent", 100 * f["achieved_rps"] / f["rate"], f["backlog_end"],
                     f["unsent"])
    if (f["drain_us"] > 0)
      behind = behind sprintf(", delivery backlog drained in %.1f s", f["drain_us"] / 1e6)
    limit = ratio == 5 ? 5000 : ratio == 10 ? 2000 : 0
    if (f["server"] == "alertmanager") {
      verdict = keeps ? "reference (keeps up)" : "reference, " behind
    } else if (f["server"] == "floor") {
      # A server that does nothing: the p99 this machine gives at this rate, whatever the code.
      floor_p99[size, ratio] = keeps ? f["p99_us"] : -1
      if (!keeps) verdict = "floor, " behind
      else if (limit == 0) verdict = "floor"
      else verdict = "floor: p99 " (f["p99_us"] <= limit ? "within" : "ABOVE") " the target" \
                     " (" ms(limit) ") with no work at all"
    } else if (limit > 0) {
      issue = ratio == 5 ? "issue 4 (5x, p99 <= 5 ms)" : "issue 3 (10x, p99 <= 2 ms)"
      if (!keeps) verdict = issue ": NOT met, " behind
      else if (f["errors"] > 0) verdict = issue ": NOT met, " f["errors"] " errors"
      else verdict = issue ": " (f["p99_us"] <= limit ? "met" : "NOT met") \
                     " (p99 " ms(f["p99_us"]) ")"
      if ((size, ratio) in floor_p99)
        verdict = verdict "; floor " (floor_p99[size, ratio] < 0 ? "could not keep up" \
                                      : "p99 " ms(floor_p99[size, ratio]))
    } else {
      verdict = keeps ? (f["errors"] > 0 ? f["errors"] " errors" : "keeps up") : behind
    }
    printf "| %s | %d alert%s/request | %sx | %.0f | %.0f | %s | %s | %s | %s | %d | %.0f%% | " \
           "%.0f%% | %s | %s |\n",
           f["server"] == "floor" ? "floor (null_server)" : f["server"], size, size == 1 ? "" : "s",
           ratio, offered, achieved, ms(f["p50_us"]),
           ms(f["p99_us"]), ms(f["p999_us"]), ms(f["max_us"]), f["errors"], f["server_cpu"],
           f["cpu_pct"], f["probe_slow"] == "-" ? "-" : f["probe_slow"] "%", verdict
  }
  BEGIN {
    print "| server | payload | offered (x Alertmanager) | offered alerts/s | achieved alerts/s | p50 | p99 | p99.9 | max | errors | server CPU | loadgen CPU | client core slow | verdict |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  }
' "$rate_results"
echo
echo "What each server took in (from its /metrics):"
sed 's/^/  /' "$rate_checks"
