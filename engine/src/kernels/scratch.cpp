#include <memory>
#include <vector>

#include "kernels.h"

namespace bpkit {

template <class T>
T* kernel_scratch(int slot, size_t n) {
  thread_local std::vector<T> buffers[4];
  std::vector<T>& b = buffers[slot & 3];
  if (b.size() < n) b.resize(n);
  return b.data();
}

template float* kernel_scratch<float>(int, size_t);
template double* kernel_scratch<double>(int, size_t);

}  // namespace bpkit
