# Installation (cmake --install BUILD --prefix PREFIX):
#   PREFIX/bin/                  the programs in apps/ (bpkit, ...) and the data tools in tools/
#                                (render_lines, render_page, make_signatures, ...)
#   PREFIX/lib/bpkit/plugins/    the built-in plugins in plugins/: an installed bpkit looks in
#                                <its directory>/../lib/bpkit/plugins first
#   PREFIX/share/bpkit/models/   the shipped models (models/), found by the apps the same way
#   PREFIX/include/bpkit/        the engine's headers, among them the plugin SDK (bpkit/plugin.h)
#   PREFIX/lib/libbpkit_engine.a the engine (static; plugins link it)
#   PREFIX/lib/cmake/bpkit/      the CMake package: find_package(bpkit) gives bpkit::sdk,
#                                bpkit::engine and bpkit_add_plugin() for out-of-tree plugins
# The directories are fixed (lib, not lib64 or lib/<multiarch>) because the plugin host finds the
# built-in plugins relative to the program.
include(CMakePackageConfigHelpers)

# Directories made by the installation are writable by their owner only, whatever the umask:
# bpkit refuses a plugin directory that its group or other users may write (docs/security.md).
set(CMAKE_INSTALL_DEFAULT_DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
    GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)

set(BPKIT_INSTALL_BINDIR bin)
set(BPKIT_INSTALL_LIBDIR lib)
set(BPKIT_INSTALL_INCLUDEDIR include)
set(BPKIT_INSTALL_PLUGINDIR lib/bpkit/plugins)
set(BPKIT_INSTALL_CMAKEDIR lib/cmake/bpkit)

# The targets of `type` defined in `dir` and its subdirectories.
function(bpkit_targets_in dir type out)
  set(found)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    get_target_property(t_type ${t} TYPE)
    if(t_type STREQUAL type)
      list(APPEND found ${t})
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    bpkit_targets_in(${sub} ${type} sub_found)
    list(APPEND found ${sub_found})
  endforeach()
  set(${out} ${found} PARENT_SCOPE)
endfunction()

# Programs and built-in plugins. The build tree's RPATH is dropped at installation; link
# directories outside the build tree (a library in a non-system prefix) stay in the installed
# RPATH, so the installed files run without the build tree.
bpkit_targets_in(${PROJECT_SOURCE_DIR}/apps EXECUTABLE bpkit_install_programs)
bpkit_targets_in(${PROJECT_SOURCE_DIR}/plugins MODULE_LIBRARY bpkit_install_plugins)
set_target_properties(${bpkit_install_programs} ${bpkit_install_plugins}
                      PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
# The tools users make training data with for their own models (tools/): text lines and pages,
# digits, spoken digits, signatures, letters-to-sounds data, and features exported for Kaldi and
# Sphinx.
set(bpkit_install_tools make_digits render_lines render_page make_speech_digits make_signatures
                        make_g2p export_features)
list(APPEND bpkit_install_programs ${bpkit_install_tools})
set_target_properties(${bpkit_install_programs} ${bpkit_install_plugins}
                      PROPERTIES INSTALL_RPATH_USE_LINK_PATH ON)
install(TARGETS ${bpkit_install_programs} RUNTIME DESTINATION ${BPKIT_INSTALL_BINDIR})
install(TARGETS ${bpkit_install_plugins} LIBRARY DESTINATION ${BPKIT_INSTALL_PLUGINDIR})
# The shipped models, where the apps look for them (<program dir>/../share/bpkit/models).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/models/ DESTINATION share/bpkit/models)

# The SDK: headers, the static engine and the interface target, exported as bpkit::engine and
# bpkit::sdk. The engine's private dependencies (OpenBLAS, zlib, threads) reach consumers as
# imported targets that bpkitConfig.cmake finds again on the consumer's machine.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/engine/include/bpkit
        DESTINATION ${BPKIT_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
set_target_properties(bpkit_engine PROPERTIES EXPORT_NAME engine)
set_target_properties(bpkit_sdk PROPERTIES EXPORT_NAME sdk)
install(TARGETS bpkit_engine bpkit_sdk EXPORT bpkitTargets
        ARCHIVE DESTINATION ${BPKIT_INSTALL_LIBDIR})
install(EXPORT bpkitTargets NAMESPACE bpkit:: FILE bpkitTargets.cmake
        DESTINATION ${BPKIT_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/bpkitConfig.cmake.in ${PROJECT_BINARY_DIR}/cmake/bpkitConfig.cmake
  INSTALL_DESTINATION ${BPKIT_INSTALL_CMAKEDIR}
  PATH_VARS BPKIT_INSTALL_INCLUDEDIR BPKIT_INSTALL_PLUGINDIR)
# 0.x: a minor version may change the plugin ABI, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/bpkitConfigVersion.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/bpkitConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/bpkitConfigVersion.cmake
              ${PROJECT_SOURCE_DIR}/cmake/BpkitPlugin.cmake
              ${PROJECT_SOURCE_DIR}/cmake/BpkitOpenBLAS.cmake
        DESTINATION ${BPKIT_INSTALL_CMAKEDIR})
