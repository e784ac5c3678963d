#!/usr/bin/env bash
# Runs the routing benchmark and prints a per-alert summary. See bench/README.md.
#
#   bench/run.sh BUILD_DIR [Google Benchmark flags...]
#
# e.g. `bench/run.sh build --benchmark_filter=Repeat` or `... --benchmark_repetitions=10`
# (later flags override the defaults below). The full results are kept in
# BUILD_DIR/bench/routing_bench.csv.
set -euo pipefail

build=${1:-build}
if [ $# -gt 0 ]; then shift; fi
bin="$build/bin/routing_bench"
if [ ! -x "$bin" ]; then
  echo "run.sh: $bin not found (configure with -DALERTROUTER_BENCH=ON and build it)" >&2
  exit 1
fi

mkdir -p "$build/bench"
csv="$build/bench/routing_bench.csv"

# Five repetitions, aggregates only: read the median, and the cv (stddev/mean) to judge the noise.
"$bin" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$csv" --benchmark_out_format=csv "$@"

# Summary from the CSV: median CPU time per alert, its ratio to the Boost.JSON parse of the same
# bodies (the peer measured in this run), and the repeat target of 1 us per alert.
awk '
  # Splits a CSV line into f[1..n]: labels are quoted and may hold commas.
  function csv(line, f,    n, i, c, quoted, field) {
    n = 0; field = ""; quoted = 0
    for (i = 1; i <= length(line); i++) {
      c = substr(line, i, 1)
      if (c == "\"") { quoted = !quoted; continue }
      if (c == "," && !quoted) { f[++n] = field; field = ""; continue }
      field = field c
    }
    f[++n] = field
    return n
  }
  /^name,/ {
    m = csv($0, f)
    for (i = 1; i <= m; i++) col[f[i]] = i
    header = 1; next
  }
  !header { next }
  {
    csv($0, f)
    name = f[1]
    if (name ~ /_cv$/) { sub(/_cv$/, "", name); cv[name] = f[col["time_per_alert"]] * 100; next }
    if (name !~ /_median$/) next
    sub(/_median$/, "", name)
    split(name, parts, "/")
    if (f[col["error_occurred"]] == "true" || f[col["time_per_alert"]] == "") { err[name] = 1 }
    ns[name] = f[col["time_per_alert"]] * 1e9
    order[++n] = name; bench[name] = parts[1]; arg[name] = parts[2]
  }
  END {
    if (n == 0) { print "run.sh: no median rows in the results" > "/dev/stderr"; exit 0 }
    printf "\nMedian CPU time per alert over the repetitions; cv = stddev/mean (%s)\n", FILENAME
    printf "%-30s %10s %6s %15s\n", "benchmark", "ns/alert", "cv", "x BM_JsonParse"
    for (i = 1; i <= n; i++) {
      b = order[i]
      if (b in err) { printf "%-30s %10s\n", b, "error"; continue }
      peer = "BM_JsonParse/" arg[b]
      ratio = (peer in ns && ns[peer] > 0) ? sprintf("%.2f", ns[b] / ns[peer]) : "-"
      printf "%-30s %10.1f %5.1f%% %15s\n", b, ns[b], cv[b], ratio
    }
    printf "\nTarget: repeats under 1000 ns per alert\n"
    for (i = 1; i <= n; i++) {
      b = order[i]
      if (bench[b] == "BM_RepeatGroup") what = "decode + classify + dedup"
      else if (bench[b] == "BM_RepeatPlanOnly") what = "classify + dedup"
      else continue
      if (b in err) continue
      printf "  %-22s %10.1f ns  %-7s  (%s)\n", b, ns[b], (ns[b] < 1000 ? "met" : "NOT met"), what
    }
  }
' "$csv"
