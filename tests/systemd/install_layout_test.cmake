# Debian's layout: a build configured with -DCMAKE_INSTALL_PREFIX=/usr installs the unit into
# systemd's unit directory (pkg-config systemd systemdsystemunitdir; /lib/systemd/system on
# Debian 12) and the configuration as /etc/alertrouter/alertrouter.yaml (not /usr/etc), and the
# unit runs /usr/bin/alertrouterd with it. Configures a scratch build tree (nothing is
# compiled) and stages the alertrouter_service install component with DESTDIR. Run by ctest:
#   cmake -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... -DMAKE_PROGRAM=... -DCXX=...
#         -DUNITDIR=<expected unit dir> -DEXAMPLE=<example config> -P install_layout_test.cmake
cmake_minimum_required(VERSION 3.25)
set(build ${WORK_DIR}/build)
set(root ${WORK_DIR}/root)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${root})

if(NOT UNITDIR)
  message(FATAL_ERROR "pkg-config knows no systemdsystemunitdir: install the systemd package "
                      "(scripts/install-deps.sh)")
endif()

execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${build} -G ${GENERATOR}
          -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM} -DCMAKE_CXX_COMPILER=${CXX}
          -DCMAKE_INSTALL_PREFIX=/usr
          -DALERTROUTER_TESTS=OFF -DALERTROUTER_BENCH=OFF -DALERTROUTER_FUZZ=OFF
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring with prefix /usr failed (exit ${rc}):\n${output}")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${root}
          ${CMAKE_COMMAND} --install ${build} --component alertrouter_service
  RESULT_VARIABLE rc
  OUTPUT_VARIABLE output
  ERROR_VARIABLE output)
message(STATUS "${output}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install --component alertrouter_service failed (exit ${rc})")
endif()

set(failures "")
set(unit ${UNITDIR}/alertrouterd.service)
file(GLOB_RECURSE installed LIST_DIRECTORIES false RELATIVE ${root} ${root}/*)
list(TRANSFORM installed PREPEND "/")
list(SORT installed)
set(expected_files /etc/alertrouter/alertrouter.yaml ${unit})
list(SORT expected_files)
if(NOT installed STREQUAL expected_files)
  list(JOIN installed ", " installed)
  list(JOIN expected_files ", " expected_files)
  list(APPEND failures "installed: ${installed} -- expected: ${expected_files}")
endif()
if(EXISTS ${root}${unit})
  file(STRINGS ${root}${unit} exec_start REGEX "^ExecStart=")
  set(expected "ExecStart=/usr/bin/alertrouterd --config /etc/alertrouter/alertrouter.yaml")
  if(NOT exec_start STREQUAL expected)
    list(APPEND failures "${unit}: '${exec_start}', expected '${expected}'")
  endif()
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${EXAMPLE}
                        ${root}/etc/alertrouter/alertrouter.yaml
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  list(APPEND failures "/etc/alertrouter/alertrouter.yaml is not the example configuration")
endif()
if(failures)
  list(JOIN failures "\n  " failures)
  message(FATAL_ERROR "Debian layout wrong:\n  ${failures}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
