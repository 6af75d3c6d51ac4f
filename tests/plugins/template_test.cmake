# Installs the SDK from the main build into a fresh prefix, builds plugins/template out of
# tree against it, and loads the result with the plugin host (flowrt-plugins-check).
# Any failing step fails the test.
foreach(var MAIN_BUILD_DIR TEMPLATE_SOURCE_DIR WORK_DIR GENERATOR CXX_COMPILER CHECK PROBE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "template_test.cmake needs -D${var}=...")
  endif()
endforeach()

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "failed (${result}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/sdk-prefix)
set(build ${WORK_DIR}/build)

run(${CMAKE_COMMAND} --install ${MAIN_BUILD_DIR} --component flowrt_plugin_sdk --prefix ${prefix})
if(NOT EXISTS ${prefix}/include/flowrt/plugin.hpp)
  message(FATAL_ERROR "the SDK install has no include/flowrt/plugin.hpp")
endif()

# Out of tree: only the installed prefix is on the search path, not the flowrt sources.
run(${CMAKE_COMMAND} -S ${TEMPLATE_SOURCE_DIR} -B ${build} -G ${GENERATOR}
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_PREFIX_PATH=${prefix})
run(${CMAKE_COMMAND} --build ${build})

file(MAKE_DIRECTORY ${WORK_DIR}/plugins)
file(COPY ${build}/echo.so DESTINATION ${WORK_DIR}/plugins)
run(${CHECK} ${WORK_DIR}/plugins ${PROBE})
if(NOT last_output MATCHES "loaded  echo 1\\.0\\.0 \\(plugin ABI 1\\)")
  message(FATAL_ERROR "the host did not load the template's provider:\n${last_output}")
endif()
message(STATUS "${last_output}")
