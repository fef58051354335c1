// Content digests: XXH3-128 (libxxhash) of bytes, in 32 hex digits.
//
// What they guarantee: two different inputs get the same digest with a probability of about
// 2^-128 per pair when the inputs are not chosen to collide (XXH3 passes SMHasher's collision
// tests at full width). They are not cryptographic: someone who can choose the inputs can make
// two with one digest. bpkit uses them to name cached features, to notice a changed plugin
// library or training file, and to recognise a scan enrolled twice; none of these defends
// against an adversary who can already write the files or the cache directory.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

namespace bpkit {

class Digest {
 public:
  Digest();
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  Digest& update(const void* data, size_t bytes);
  Digest& update(const std::string& s) { return update(s.data(), s.size()); }
  // The digest of everything given so far (update may go on after it).
  std::string hex() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The digest of a string of bytes.
std::string digest_of(const std::string& bytes);
// The digest of a file's bytes, read in blocks. Throws FileError when it cannot be read.
std::string file_digest(const std::string& path);

}  // namespace bpkit
