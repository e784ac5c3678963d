#!/bin/sh
# Installs the Debian 12 packages alertrouter builds, tests and runs with, if any are missing.
# Uses sudo when not root. Usage: scripts/install-deps.sh [--with-fuzz]
set -eu

packages="build-essential cmake ninja-build pkg-config tzdata
libboost1.81-dev libboost-json1.81-dev prometheus-cpp-dev libyaml-cpp-dev libspdlog-dev
libgtest-dev libgmock-dev libre2-dev libhowardhinnant-date-dev libcli11-dev libbenchmark-dev
libsimdjson-dev libsystemd-dev libsqlite3-dev sqlite3 systemd prometheus prometheus-alertmanager wrk curl"
if [ "${1:-}" = "--with-fuzz" ]; then
  packages="$packages clang libclang-rt-14-dev"
fi

missing=""
for p in $packages; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing:$missing"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
