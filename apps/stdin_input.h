// "-" as an input file of ocr_app and speech_app: standard input (`ocr_app - < page.png`,
// `curl ... | speech_app -`). The stages read files by path, and a pipe cannot be read twice, so
// standard input is copied once into an anonymous temporary file (created, then unlinked at once:
// nothing is left behind, even when the program is killed) and read through /proc/self/fd.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace bpkit_apps {

class StdinInput {
 public:
  // Standard input larger than this is refused (a scan or a recording is far smaller).
  static constexpr int64_t kMaxBytes = int64_t(1) << 30;

  // Copies standard input when `files` names "-". Throws std::invalid_argument when "-" is given
  // twice, std::runtime_error when standard input is a terminal, empty, too large, or cannot be
  // copied.
  explicit StdinInput(const std::vector<std::string>& files) {
    int dashes = 0;
    for (const std::string& f : files) dashes += f == "-";
    if (dashes == 0) return;
    if (dashes > 1) throw std::invalid_argument("'-' (standard input) can be given once");
    if (isatty(STDIN_FILENO))
      throw std::runtime_error("-: standard input is a terminal; pipe or redirect a file into it");
    const char* tmp = std::getenv("TMPDIR");
    std::string name = std::string(tmp && *tmp ? tmp : "/tmp") + "/bpkit-stdin-XXXXXX";
    fd_ = mkstemp(name.data());
    if (fd_ < 0)
      throw std::runtime_error("-: cannot create a temporary file for standard input in " +
                               name.substr(0, name.rfind('/')) + ": " + std::strerror(errno));
    unlink(name.c_str());
    char buf[1 << 16];
    int64_t total = 0;
    for (;;) {
      const ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail(std::string("cannot read standard input: ") + std::strerror(errno));
      if (n == 0) break;
      total += n;
      if (total > kMaxBytes) fail("standard input holds more than 1 GiB");
      for (ssize_t done = 0; done < n;) {
        const ssize_t w = write(fd_, buf + done, size_t(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) fail(std::string("cannot keep standard input: ") + std::strerror(errno));
        done += w;
      }
    }
    if (total == 0) fail("standard input is empty");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~StdinInput() {
    if (fd_ >= 0) close(fd_);
  }
  StdinInput(const StdinInput&) = delete;
  StdinInput& operator=(const StdinInput&) = delete;

  // The path to read for `file`: the copy for "-", else `file` itself.
  const std::string& path(const std::string& file) const {
    return file == "-" && !path_.empty() ? path_ : file;
  }
  // `msg` with the copy's path shown as "-".
  std::string shown(std::string msg) const {
    if (path_.empty()) return msg;
    for (size_t at; (at = msg.find(path_)) != std::string::npos;)
      msg.replace(at, path_.size(), "-");
    return msg;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    close(fd_);
    fd_ = -1;
    throw std::runtime_error("-: " + why);
  }
  int fd_ = -1;
  std::string path_;
};

}  // namespace bpkit_apps
