// What a program says for --version: bpkit's version and git revision, the plugin ABI, the
// kernels' instruction-set level on this CPU, and how it was built.
#pragma once

#include <string>

namespace bpkit {

// "bpkit 0.1.0"
const char* version_string();
// The git revision the build came from (`git describe --always --dirty`), or "unknown ...".
const char* git_revision();
// Two lines, each ending in '\n':
//   PROGRAM (bpkit 0.1.0, revision a13067e05c1f)
//   plugin ABI 3; kernels avx512 (this CPU: avx512); built Release with GNU 12.2.0 for x86-64
std::string version_text(const std::string& program);
// When an argument before "--" is --version: prints version_text(program) on stdout and returns
// true (the program then exits with 0).
bool print_version_if_asked(int argc, char** argv, const std::string& program);

}  // namespace bpkit
