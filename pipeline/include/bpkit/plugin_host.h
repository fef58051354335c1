// The plugin host: finds plugin libraries, checks them, and creates plugin objects.
//
// Every shared library (*.so) in a search directory is opened with Boost.DLL. The host reads the
// library's ABI version first and refuses a library without one (not a bpkit plugin) or with
// another version, before touching anything else in it. Plugin objects are handed out as
// shared_ptrs whose deleter also holds the library, so a library stays loaded while any object it
// made is alive, even after the registry is gone.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bpkit/plugin.h"

namespace bpkit {

// A plugin library could not be used, or a plugin is missing or defined twice.
struct PluginError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PluginLibraryHandle;  // an open library (opaque)

struct RegisteredPlugin {
  PluginInfo info;
  std::string file;    // the library that defines it
  std::string digest;  // of the library file's bytes: a rebuilt library invalidates cached features
  std::shared_ptr<PluginLibraryHandle> library;
  FeaturePlugin* (*create)() = nullptr;
};

// "" when `text` is a valid value of `spec` (booleans are written true or false; numbers are in
// [min, max]; a choice is one of the choices), else what is wrong.
std::string check_param_value(const ParamSpec& spec, const std::string& text);

class PluginRegistry {
 public:
  PluginRegistry() = default;

  // Opens one library and registers its plugins. Throws PluginError naming the file when it is
  // not a shared library, exports no bpkit ABI version or entry list, was built for another ABI
  // version, or defines a plugin whose name is already registered (naming both files).
  void load_library(const std::string& path);
  // Loads every *.so in `dir` (sorted by name) — or, with `done`, one after another until done()
  // is true. A library that cannot be used is recorded in problems() and skipped; a duplicate
  // plugin name is an error (PluginError naming both files). A directory that does not exist is
  // skipped.
  void add_directory(const std::string& dir, const std::function<bool()>& done = {});
  // The directories searched by default, in order: the built-in plugin directory (next to the
  // running program: <bin>/../lib/bpkit/plugins), then each entry of $BPKIT_PLUGIN_PATH
  // (colon-separated).
  static std::vector<std::string> default_directories();

  // nullptr when no plugin has this name.
  const RegisteredPlugin* find(const std::string& name) const;
  // Throws PluginError for an unknown name, listing the closest known names and any libraries
  // that failed to load.
  const RegisteredPlugin& get(const std::string& name) const;
  // A new, unconfigured plugin object. The library stays loaded while the object lives.
  std::shared_ptr<FeaturePlugin> create(const std::string& name) const;

  const std::vector<RegisteredPlugin>& plugins() const { return plugins_; }
  // "FILE: why" for each library add_directory() skipped.
  const std::vector<std::string>& problems() const { return problems_; }
  const std::vector<std::string>& directories() const { return dirs_; }

 private:
  std::vector<RegisteredPlugin> plugins_;
  std::vector<std::string> problems_, dirs_;
};

// The directory holding the running program (from /proc/self/exe).
std::string program_directory();

}  // namespace bpkit
