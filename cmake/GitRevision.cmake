# Writes OUT (a header defining BPKIT_GIT_REVISION) from `git describe` of SRC, rewriting it only
# when the text changes, so that a build after a new commit reports it without rebuilding more than
# the one file that includes it. Run as: cmake -DSRC=... -DOUT=... -P GitRevision.cmake
set(rev "unknown (not built from a git checkout)")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${SRC}" describe --always --dirty --abbrev=12
                  OUTPUT_VARIABLE out RESULT_VARIABLE rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(rc EQUAL 0 AND NOT out STREQUAL "")
    set(rev "${out}")
  endif()
endif()
set(text "#define BPKIT_GIT_REVISION \"${rev}\"\n")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
  if(old STREQUAL text)
    return()
  endif()
endif()
file(WRITE "${OUT}" "${text}")
