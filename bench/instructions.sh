#!/usr/bin/env bash
# Instructions per webhook body routed (inclusive count of route_webhook_into, from callgrind),
# for comparing two builds on this VM, whose speed swings too much for small differences to show
# in time. See bench/README.md, "Instructions per body".
#
#   bench/instructions.sh BUILD_DIR [ALERTS_PER_BODY...]      (default: 1 10 100)
#   BENCHMARK=BM_RepeatGroupFirstStage bench/instructions.sh BUILD_DIR   (another repeat case)
#
# Under valgrind simdjson runs its haswell kernel (valgrind has no AVX-512), so its first stage
# counts more instructions than it runs natively on an AVX-512 CPU; the count without it is
# printed too. Needs valgrind (Debian package `valgrind`).
set -euo pipefail

build=${1:-build}
if [ $# -gt 0 ]; then shift; fi
sizes=("$@")
benchmark=${BENCHMARK:-BM_RepeatGroup}
if [ ${#sizes[@]} -eq 0 ]; then sizes=(1 10 100); fi
bin="$build/bin/routing_bench"
if [ ! -x "$bin" ]; then
  echo "instructions.sh: $bin not found (configure with -DALERTROUTER_BENCH=ON and build it)" >&2
  exit 1
fi
command -v valgrind > /dev/null || { echo "instructions.sh: valgrind not found" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
printf '%-18s %14s %18s %8s\n' benchmark instructions "without stage 1" bodies
for n in "${sizes[@]}"; do
  valgrind --tool=callgrind --callgrind-out-file="$out/cg" \
    --toggle-collect='alertrouter::routing::route_webhook_into*' \
    "$bin" --benchmark_filter="$benchmark/$n\$" --benchmark_min_time=0.2 > /dev/null 2>&1
  # Bodies routed: route_webhook_into's calls of decode_webhook_into (one per body). In the
  # caller tree each function (`*`) follows the lines of its callers (`<`, with call counts).
  bodies=$(callgrind_annotate --threshold=100 --tree=caller "$out/cg" 2> /dev/null | awk '
    /< .*route_webhook_into/ { if (match($0, /\(([0-9,]+)x\)/)) { c = substr($0, RSTART + 1, RLENGTH - 3); gsub(",", "", c) } }
    /\*  .*decode_webhook_into/ { if (c != "" && n == "") n = c }
    /\*  / { c = "" }
    END { print n }')
  total=$(grep -E '^(summary|totals):' "$out/cg" | head -1 | awk '{print $2}')
  stage1=$(callgrind_annotate --inclusive=yes "$out/cg" 2> /dev/null |
    awk '/stage1/ && s == "" { s = $1; gsub(",", "", s) } END { print s }')
  if [ -z "$bodies" ] || [ "$bodies" -eq 0 ]; then
    echo "instructions.sh: no bodies counted for /$n" >&2
    exit 1
  fi
  printf '%-18s %14d %18d %8d\n' "$benchmark/$n" $((total / bodies)) \
    $(((total - ${stage1:-0}) / bodies)) "$bodies"
done
