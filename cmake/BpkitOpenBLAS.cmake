# Finds OpenBLAS itself (not the generic libblas.so.3 alternative, which may be the slow reference
# BLAS) and defines the imported target bpkit::openblas (libopenblas + the directory of its
# cblas.h). Included by bpkit's build and by its installed CMake package: the static engine links
# bpkit::openblas, so a program or plugin linking the installed engine needs it too.
# Leaves OPENBLAS_INCLUDE_DIR and OPENBLAS_LIBRARY in the cache; defines no target when either is
# missing (the caller reports it).
if(NOT TARGET bpkit::openblas)
  find_path(OPENBLAS_INCLUDE_DIR cblas.h
            PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread
                  /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas
            NO_DEFAULT_PATH)
  find_path(OPENBLAS_INCLUDE_DIR cblas.h)
  find_library(OPENBLAS_LIBRARY openblas)
  if(OPENBLAS_INCLUDE_DIR AND OPENBLAS_LIBRARY)
    add_library(bpkit::openblas UNKNOWN IMPORTED)
    set_target_properties(bpkit::openblas PROPERTIES
      IMPORTED_LOCATION "${OPENBLAS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${OPENBLAS_INCLUDE_DIR}")
  endif()
endif()
