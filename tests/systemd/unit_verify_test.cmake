# `systemd-analyze verify` on alertrouterd.service. Run by ctest:
#   cmake -DSYSTEMD_ANALYZE=<path> -DUNIT=<unit file> -P unit_verify_test.cmake
#
# verify needs no running systemd (this works in containers and CI): it starts a private,
# offline manager that loads the unit, resolves its dependencies against the unit files
# installed on the host, enqueues a start job, and checks that the programs named by Exec*=
# exist and are executable; that is why UNIT is a copy whose ExecStart= runs the built daemon.
# Unknown directives and unparsable values are only warnings (exit code 0), so any output
# line naming the unit fails the test too. Other lines (about the host's own units) are shown
# but do not count.
cmake_minimum_required(VERSION 3.25)
if(NOT SYSTEMD_ANALYZE)
  message(FATAL_ERROR "systemd-analyze not found: install the systemd package "
                      "(scripts/install-deps.sh)")
endif()
if(NOT EXISTS "${UNIT}")
  message(FATAL_ERROR "no unit file at ${UNIT}")
endif()

execute_process(
  COMMAND ${CMAKE_COMMAND} -E env SYSTEMD_LOG_LEVEL=warning SYSTEMD_LOG_COLOR=0
          ${SYSTEMD_ANALYZE} verify --man=no ${UNIT}
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message(STATUS "systemd-analyze verify ${UNIT}: exit ${rc}\n${output}")

get_filename_component(name "${UNIT}" NAME)
string(REPLACE "." "\\." name_regex "${name}")
string(REGEX MATCHALL "[^\n]*${name_regex}[^\n]*" complaints "${output}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "systemd-analyze verify failed (exit ${rc})")
endif()
if(complaints)
  list(JOIN complaints "\n" complaints)
  message(FATAL_ERROR "systemd-analyze verify warned about the unit:\n${complaints}")
endif()
