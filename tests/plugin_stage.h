// Plugin stages for tests that load a plugin library the way bpkit does: a stage configured with
// its parameters checked as a pipeline file's would be, and a file value to feed a reader.
#pragma once

#include <sys/resource.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"

namespace bpkit_test {

using Params = std::vector<std::pair<std::string, std::string>>;

inline std::shared_ptr<bpkit::FeaturePlugin> configured_stage(const bpkit::PluginRegistry& reg,
                                                              const std::string& name,
                                                              const Params& params = {}) {
  const bpkit::RegisteredPlugin& rp = reg.get(name);
  const bpkit::ParamValues values = bpkit::validate_params(rp.info, params, {}, "test");
  auto p = reg.create(name);
  p->configure(values);
  return p;
}

inline bpkit::Value file_value(const std::string& path) {
  bpkit::Value v;
  v.kind = bpkit::Kind::kFile;
  v.path = path;
  return v;
}

// The process's peak resident memory so far (kB): a test of "refused before allocating" checks
// that it did not jump.
inline long max_rss_kb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

}  // namespace bpkit_test
