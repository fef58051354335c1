// Scratch space for tests that write files.
//
// TempDir makes a fresh, empty directory under $BPKIT_TEST_TMP (ctest sets it to <build>/tests/tmp;
// it is created when missing) or, when the variable is unset, under /tmp, and removes it with
// everything in it when it goes out of scope. Each test gets its own directory, so tests running
// in parallel never see each other's files.
#pragma once

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpkit_test {

class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    const char* env = std::getenv("BPKIT_TEST_TMP");
    const std::string base = env && *env ? env : "/tmp";
    std::filesystem::create_directories(base);
    std::string pattern = base + "/bpkit-" + tag + "-XXXXXX";
    if (!mkdtemp(&pattern[0])) throw std::runtime_error("mkdtemp failed for " + pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  // Names of the entries in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("test cannot read " + path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
  if (!out) throw std::runtime_error("test cannot write " + path);
}

}  // namespace bpkit_test
