#include "bpkit/digest.h"

#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "bpkit/error.h"

namespace bpkit {

struct Digest::State {
  XXH3_state_t* s = XXH3_createState();
  ~State() { XXH3_freeState(s); }
};

Digest::Digest() : state_(std::make_unique<State>()) {
  if (!state_->s || XXH3_128bits_reset(state_->s) != XXH_OK) throw std::bad_alloc();
}

Digest::~Digest() = default;

Digest& Digest::update(const void* data, size_t bytes) {
  if (XXH3_128bits_update(state_->s, data, bytes) != XXH_OK)
    throw std::runtime_error("XXH3_128bits_update failed");
  return *this;
}

std::string Digest::hex() const {
  const XXH128_hash_t h = XXH3_128bits_digest(state_->s);
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

std::string digest_of(const std::string& bytes) {
  return Digest().update(bytes).hex();
}

std::string file_digest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot read the file");
  Digest d;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    d.update(buf, size_t(in.gcount()));
    if (!in) break;
  }
  if (in.bad()) throw FileError(path + ": cannot read the file");
  return d.hex();
}

}  // namespace bpkit
