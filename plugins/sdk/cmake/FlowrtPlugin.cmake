# flowrt_add_provider(<target> <sources>...)
#
# Builds a flowrt provider plugin: a MODULE library named <target>.so (no "lib" prefix),
# compiled as C++20 with hidden visibility (only the three BOOST_DLL_ALIAS symbols are
# exported, so nothing in the plugin can interpose on the host or on another plugin) and,
# with GCC, -fno-gnu-unique (so that the library really unloads when the host lets go of
# it). Shared by the in-tree build and the installed SDK package, so both build plugins
# the same way.
include_guard(GLOBAL)

function(flowrt_add_provider target)
  if(NOT ARGN)
    message(FATAL_ERROR "flowrt_add_provider(${target}): no source files given")
  endif()
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE flowrt::plugin_sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_EXTENSIONS OFF
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
endfunction()
