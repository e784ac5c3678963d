# `systemd-analyze security --offline=true` on alertrouterd.service: every sandboxing check
# that systemd knows passes, except the exposures the daemon needs (listed below with the
# reason). A hardening directive lost from the unit fails the test, naming the check. Run by
# ctest: cmake -DSYSTEMD_ANALYZE=<path> -DUNIT=<unit file> -P unit_security_test.cmake
cmake_minimum_required(VERSION 3.25)
if(NOT SYSTEMD_ANALYZE)
  message(FATAL_ERROR "systemd-analyze not found: install the systemd package "
                      "(scripts/install-deps.sh)")
endif()

set(needed
  # The program and its shared libraries come from the host's file system.
  "RootDirectory=/RootImage="
  # stderr to the journal and sd_notify are AF_UNIX; HTTP in and webhooks out are TCP, to
  # addresses that only the configuration knows.
  "RestrictAddressFamilies=~AF_UNIX"
  "RestrictAddressFamilies=~AF_(INET|INET6)"
  "PrivateNetwork="
  "IPAddressDeny="
  # ProtectClock=yes itself adds a read-only rule for the RTC device (char-rtc r).
  "DeviceAllow=")

execute_process(
  COMMAND ${SYSTEMD_ANALYZE} security --offline=true --man=no --json=short ${UNIT}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE json
  ERROR_VARIABLE errors)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "systemd-analyze security failed (exit ${rc}):\n${errors}")
endif()

string(JSON count ERROR_VARIABLE json_error LENGTH "${json}")
if(json_error OR count EQUAL 0)
  message(FATAL_ERROR "unexpected output from systemd-analyze security: ${json_error}\n${json}")
endif()
set(exposed "")
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON set GET "${json}" ${i} set)
  string(JSON check GET "${json}" ${i} name)
  string(JSON description GET "${json}" ${i} description)
  if(NOT set AND NOT check IN_LIST needed)
    list(APPEND exposed "${check}: ${description}")
  endif()
endforeach()
message(STATUS "${count} checks, ${UNIT}")
if(exposed)
  list(JOIN exposed "\n  " exposed)
  message(FATAL_ERROR "hardening missing from the unit:\n  ${exposed}")
endif()
