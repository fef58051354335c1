# bpkit_add_plugin(NAME SOURCES... [LIBRARIES ...]): builds a feature-plugin shared library.
#
# The library gets hidden symbol visibility (only the BPKIT_PLUGIN_LIBRARY exports are public),
# links the bpkit SDK, and lands in ${BPKIT_PLUGIN_OUTPUT_DIRECTORY} when that is set (bpkit's own
# build puts its plugins in <build>/lib/bpkit/plugins, next to the programs' search path).
# bpkit refuses a plugin file or directory that its group or other users may write
# (docs/security.md), so after each link the library and its directory lose group and other write
# permission (a umask of 002 would leave them group-writable).
# Out of tree, find_package(bpkit) includes this file from the installed package
# (lib/cmake/bpkit) and bpkit::sdk is the imported SDK; see docs/writing-plugins.md.
function(bpkit_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  set(sources ${ARG_SOURCES} ${ARG_UNPARSED_ARGUMENTS})
  if(NOT sources)
    message(FATAL_ERROR "bpkit_add_plugin(${name}): no sources")
  endif()
  add_library(${name} MODULE ${sources})
  target_link_libraries(${name} PRIVATE bpkit::sdk ${ARG_LIBRARIES})
  set_target_properties(${name} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    POSITION_INDEPENDENT_CODE ON)
  if(BPKIT_PLUGIN_OUTPUT_DIRECTORY)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${BPKIT_PLUGIN_OUTPUT_DIRECTORY})
  endif()
  add_custom_command(TARGET ${name} POST_BUILD
    COMMAND chmod go-w $<TARGET_FILE:${name}> $<TARGET_FILE_DIR:${name}>
    VERBATIM)
endfunction()
