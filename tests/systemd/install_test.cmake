# `cmake --install` of this build, staged with DESTDIR in a scratch directory: the programs,
# alertrouterd.service and the configuration land at the paths this build was configured
# for, the unit runs the installed daemon with the installed configuration, and a reinstall
# keeps a configuration the operator has edited. Run by ctest:
#   cmake -DBUILD_DIR=... -DWORK_DIR=... -DBINDIR=<full> -DPROGRAMS=a,b -DUNIT_PATH=<full>
#         -DCONFIG_PATH=<full> -DEXAMPLE=<example config> -P install_test.cmake
# DESTDIR, not --prefix: the unit names absolute paths fixed at configure time, and with
# prefix /usr the configuration goes to /etc, outside the prefix.
cmake_minimum_required(VERSION 3.25)
set(root ${WORK_DIR}/root)
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${root})

function(install_into_root)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -E env DESTDIR=${root} ${CMAKE_COMMAND} --install ${BUILD_DIR}
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)
  message(STATUS "DESTDIR=${root} cmake --install ${BUILD_DIR}: exit ${rc}\n${output}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cmake --install failed (exit ${rc})")
  endif()
endfunction()

set(failures "")
macro(fail text)
  list(APPEND failures "${text}")
endmacro()

install_into_root()

string(REPLACE "," ";" PROGRAMS "${PROGRAMS}")
foreach(program IN LISTS PROGRAMS)
  execute_process(COMMAND test -x ${root}${BINDIR}/${program} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    fail("no executable ${BINDIR}/${program}")
  endif()
endforeach()

set(unit ${root}${UNIT_PATH})
if(NOT EXISTS ${unit})
  fail("no unit at ${UNIT_PATH}")
else()
  file(STRINGS ${unit} exec_start REGEX "^ExecStart=")
  set(expected "ExecStart=${BINDIR}/alertrouterd --config ${CONFIG_PATH}")
  if(NOT exec_start STREQUAL expected)
    fail("${UNIT_PATH}: '${exec_start}', expected '${expected}'")
  endif()
endif()

set(config ${root}${CONFIG_PATH})
execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${EXAMPLE} ${config}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  fail("${CONFIG_PATH} missing or not the example configuration")
endif()

# A reinstall (an upgrade) must not overwrite the operator's configuration.
set(edited "# edited by the operator\n")
file(WRITE ${config} "${edited}")
install_into_root()
file(READ ${config} after)
if(NOT after STREQUAL edited)
  fail("a reinstall overwrote the edited ${CONFIG_PATH}")
endif()

file(GLOB_RECURSE installed RELATIVE ${root} ${root}/*)
list(JOIN installed "\n  " installed)
message(STATUS "installed:\n  ${installed}")
if(failures)
  list(JOIN failures "\n  " failures)
  message(FATAL_ERROR "install layout wrong:\n  ${failures}")
endif()
file(REMOVE_RECURSE ${WORK_DIR})
