#include "bpkit/version.h"

#include <cstdio>
#include <cstring>
#include <exception>

#include "bpkit/cpu.h"
#include "bpkit/plugin.h"
#include "bpkit_revision.h"  // generated at build time (cmake/GitRevision.cmake)

namespace bpkit {

const char* version_string() {
  return "bpkit " BPKIT_VERSION;
}

const char* git_revision() {
  return BPKIT_GIT_REVISION;
}

std::string version_text(const std::string& program) {
  std::string level;
  try {
    level = isa_name(active_isa());
  } catch (const std::exception& e) {  // a BPKIT_ISA the CPU cannot run: say so, still answer
    level = std::string("unavailable (") + e.what() + ")";
  }
  std::string s = program + " (" + version_string() + ", revision " + git_revision() + ")\n";
  s += "plugin ABI " + std::to_string(kPluginAbiVersion) + "; kernels " + level +
       " (this CPU: " + isa_name(cpu_isa()) + "); built " BPKIT_BUILD_TYPE " with " +
       BPKIT_COMPILER + " for " + BPKIT_TARGET + "\n";
  return s;
}

bool print_version_if_asked(int argc, char** argv, const std::string& program) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) return false;
    if (std::strcmp(argv[i], "--version") == 0) {
      std::fputs(version_text(program).c_str(), stdout);
      return true;
    }
  }
  return false;
}

}  // namespace bpkit
