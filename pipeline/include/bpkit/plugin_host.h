// The plugin host: finds plugin libraries, checks them, and creates plugin objects.
//
// Every shared library (*.so) in a search directory is opened with Boost.DLL. The host reads the
// library's ABI version first and refuses a library without one (not a bpkit plugin) or with
// another version, before touching anything else in it. Plugin objects are handed out as
// shared_ptrs whose deleter also holds the library, so a library stays loaded while any object it
// made is alive, even after the registry is gone.
//
// Opening a library runs its static constructors, before any check of what it exports can
// happen: what is checked first is where it comes from (docs/security.md). A plugin file or
// directory that a group or other users may write is refused, and so is a symbolic link in a
// plugin directory that leads out of it; the current directory is never searched.
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

  // Opens one library and registers its plugins. Throws PluginError naming the file when it or
  // its directory is writable by group or others (before opening it), when it is not a shared
  // library, exports no bpkit ABI version or entry list, was built for another ABI version, or
  // defines a plugin whose name is already registered (naming both files).
  void load_library(const std::string& path);
  // Loads every *.so in `dir` (sorted by name) — or, with `done`, one after another until done()
  // is true. A library that cannot be used is recorded in problems() and skipped, among them a
  // file writable by group or others and a symbolic link whose target is outside `dir` (a link
  // to a file inside it is loaded from its target). A duplicate plugin name is an error
  // (PluginError naming both files), and so is a directory writable by group or others (it is
  // not searched). A directory that does not exist is skipped.
  void add_directory(const std::string& dir, const std::function<bool()>& done = {});
  // The directories searched by default, in order: the built-in plugin directory (next to the
  // running program: <bin>/../lib/bpkit/plugins; left out when the program's own path cannot be
  // read), then each entry of $BPKIT_PLUGIN_PATH (colon-separated; empty entries are ignored).
  // Throws PluginError for a relative entry of $BPKIT_PLUGIN_PATH ("." or "plugins"): it would
  // search wherever a program happens to start.
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

// The directory holding the running program (from /proc/self/exe); "" when that cannot be read
// (never "." — callers drop what they would have looked for next to the program).
std::string program_directory();

// "" when `path` (a plugin library, or a plugin directory with `directory` true) may be loaded
// from as far as its permissions go, else why not and how to fix it: writable by group or others
// (following symbolic links), or not there at all.
std::string plugin_permission_problem(const std::string& path, bool directory);

}  // namespace bpkit
