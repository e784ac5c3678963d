#!/usr/bin/env bash
# Does this machine slow one core down when the other one works? Runs bench/load/cpu_probe on
# core 0 three times: with core 1 idle, next to a CPU burn on core 1, and next to a loop of
# 48 KiB writes each followed by fdatasync on core 1 (dd oflag=dsync, in a scratch directory
# under $TMPDIR). Prints one row per case: the probe's median and p99 unit time and the share of
# 50 ms windows in which the median unit took more than 1.4 times the idle median.
#
#   bench/load/neighbour_check.sh BUILD_DIR [SECONDS]      (default 10 s per case)
#
# On a machine of its own every row reads about the same; on the reference VM the windows slow
# by 2 to 4 times come far more often next to work on the other core (bench/README.md).
set -euo pipefail
build=${1:?usage: neighbour_check.sh BUILD_DIR [SECONDS]}
seconds=${2:-10}
probe="$build/bin/cpu_probe"
[[ -x "$probe" ]] || { echo "neighbour_check: $probe not built (cmake --build $build --target cpu_probe)" >&2; exit 2; }
[[ $(nproc) -ge 2 ]] || { echo "neighbour_check: needs two cores" >&2; exit 2; }
scratch=$(mktemp -d "${TMPDIR:-/tmp}/neighbour.XXXXXX")
neighbour=""
cleanup() {
  [[ -n "$neighbour" ]] && kill "$neighbour" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$scratch"
}
trap cleanup EXIT

field() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

idle=$(taskset -c 0 "$probe" --seconds "$seconds")
reference=$(field median_us <<<"$idle")
echo "| core 1 | probe median | probe p99 | windows slower than 1.4x idle |"
echo "|---|---:|---:|---:|"
row() { echo "| $1 | $(field median_us <<<"$2") us | $(field p99_us <<<"$2") us | $(field slow_pct <<<"$2")% ($(field slow_windows <<<"$2") of $(field windows <<<"$2")) |"; }
row "idle" "$(taskset -c 0 "$probe" --seconds "$seconds" --reference "$reference")"

taskset -c 1 timeout "$((seconds + 2))" sh -c 'while :; do :; done' &
neighbour=$!
sleep 0.5
row "CPU burn (100%)" "$(taskset -c 0 "$probe" --seconds "$seconds" --reference "$reference")"
kill "$neighbour" 2>/dev/null || true
wait "$neighbour" 2>/dev/null || true

taskset -c 1 timeout "$((seconds + 2))" sh -c \
  "while :; do dd if=/dev/zero of='$scratch/sync.dat' bs=48k count=2000 oflag=dsync status=none; done" &
neighbour=$!
sleep 0.5
row "48 KiB write + fdatasync loop" "$(taskset -c 0 "$probe" --seconds "$seconds" --reference "$reference")"
