#include "bpkit/plugin_host.h"

#include <sys/stat.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "bpkit/digest.h"
#include "bpkit/suggest.h"

namespace bpkit {

struct PluginLibraryHandle {
  boost::dll::shared_library lib;
};

namespace {

namespace fs = std::filesystem;

// An ELF shared object starts with 0x7f 'E' 'L' 'F'; checking first gives a clearer message than
// the loader's for a text file or an image that happens to end in .so.
bool looks_like_elf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in.gcount() == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' &&
         magic[3] == 'F';
}

// The directory a library is loaded from: its parent ("." for a bare file name given on the
// command line).
std::string directory_of(const fs::path& file) {
  const fs::path parent = file.parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// True when `inner` is `outer` or lies below it (both canonical).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i)
    if (i == inner.end() || *i != *o) return false;
  return true;
}

}  // namespace

std::string check_param_value(const ParamSpec& spec, const std::string& text) {
  switch (spec.type) {
    case ParamType::kBool:
      // One spelling, YAML 1.2's: yes/no and on/off are YAML 1.1 and mean other things elsewhere.
      if (text == "true" || text == "false") return "";
      return "expected true or false, got '" + text + "'";
    case ParamType::kInt: {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end || errno) return "expected an integer, got '" + text + "'";
      if (double(v) < spec.min || double(v) > spec.max)
        return "value " + text + " is out of range; expected " + describe_range(spec.min, spec.max);
      return "";
    }
    case ParamType::kFloat: {
      char* end = nullptr;
      errno = 0;
      const double v = std::strtod(text.c_str(), &end);
      if (text.empty() || *end || errno || !std::isfinite(v))
        return "expected a number, got '" + text + "'";
      if (v < spec.min || v > spec.max)
        return "value " + text + " is out of range; expected " + describe_range(spec.min, spec.max);
      return "";
    }
    case ParamType::kString:
      return "";
    case ParamType::kChoice:
      if (std::find(spec.choices.begin(), spec.choices.end(), text) != spec.choices.end())
        return "";
      return "unknown value '" + text + "'" + did_you_mean(text, spec.choices);
  }
  return "unknown parameter type";
}

std::string program_directory() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec || !exe.is_absolute() ? std::string() : exe.parent_path().string();
}

std::string plugin_permission_problem(const std::string& path, bool directory) {
  const char* what = directory ? "plugin directory" : "plugin library";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return path + ": cannot examine the " + what + ": " + std::strerror(errno);
  if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
    return path + ": not a " + (directory ? "directory" : "regular file");
  const mode_t w = st.st_mode & (S_IWGRP | S_IWOTH);
  if (!w) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", unsigned(st.st_mode & 07777));
  const char* who = w == (S_IWGRP | S_IWOTH) ? "its group and all other users"
                    : (w & S_IWGRP)          ? "its group"
                                             : "all other users";
  return path + ": refused: the " + what + " is writable by " + who + " (mode " + mode +
         "), who could make this program run their code; make it writable by its owner only " +
         "('chmod go-w " + path + "') or load plugins from another directory";
}

std::vector<std::string> PluginRegistry::default_directories() {
  std::vector<std::string> dirs;
  // Without the program's own path there is no built-in directory: never "." instead.
  const std::string program = program_directory();
  if (!program.empty())
    dirs.push_back((fs::path(program) / ".." / "lib" / "bpkit" / "plugins").lexically_normal());
  if (const char* env = std::getenv("BPKIT_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      const size_t end = std::min(s.find(':', start), s.size());
      if (end > start) {
        const std::string d = s.substr(start, end - start);
        if (!fs::path(d).is_absolute())
          throw PluginError("$BPKIT_PLUGIN_PATH: '" + d +
                            "' is a relative directory, which would be searched in whatever "
                            "directory a program starts in (plugins are never loaded from the "
                            "current directory); give absolute directories");
        dirs.push_back(d);
      }
      start = end + 1;
    }
  }
  return dirs;
}

void PluginRegistry::load_library(const std::string& path) {
  if (!fs::exists(path)) throw PluginError(path + ": no such plugin library");
  // Permissions first, of the file a link leads to and of its directory: opening the library runs
  // its code.
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  if (ec) throw PluginError(path + ": cannot resolve the plugin library's path: " + ec.message());
  for (const std::string& why : {plugin_permission_problem(directory_of(real), true),
                                 plugin_permission_problem(path, false)})
    if (!why.empty()) throw PluginError(why);
  if (!looks_like_elf(path))
    throw PluginError(path +
                      ": not a shared library (no ELF header); a bpkit plugin is a .so "
                      "built with BPKIT_PLUGIN_LIBRARY");
  // The same library twice (a plugin built in the build tree and then installed, both on the
  // path): the second copy adds nothing and is not loaded; models trained against either work.
  const std::string digest = file_digest(path);
  for (const RegisteredPlugin& p : plugins_)
    if (p.digest == digest) {
      if (p.file != path)
        problems_.push_back(path + ": the same library as " + p.file + " (identical bytes)");
      return;
    }
  auto handle = std::make_shared<PluginLibraryHandle>();
  try {
    // The resolved path: what was checked is what is opened, whatever the links do meanwhile.
    handle->lib.load(real.string(),
                     boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    throw PluginError(path + ": cannot be loaded as a shared library: " + e.what());
  }
  if (!handle->lib.has(BPKIT_PLUGIN_ABI_SYMBOL))
    throw PluginError(path + ": not a bpkit plugin (it exports no '" BPKIT_PLUGIN_ABI_SYMBOL
                             "'; plugins declare their classes with BPKIT_PLUGIN_LIBRARY)");
  const int abi = handle->lib.get_alias<int()>(BPKIT_PLUGIN_ABI_SYMBOL)();
  if (abi != kPluginAbiVersion)
    throw PluginError(path + ": built for plugin ABI version " + std::to_string(abi) +
                      ", but this bpkit uses version " + std::to_string(kPluginAbiVersion) +
                      "; rebuild the plugin against this bpkit's SDK");
  if (!handle->lib.has(BPKIT_PLUGIN_ENTRIES_SYMBOL))
    throw PluginError(path + ": a bpkit plugin library without its plugin list ('" +
                      std::string(BPKIT_PLUGIN_ENTRIES_SYMBOL) + "' is missing)");
  std::vector<PluginEntry> entries;
  std::vector<PluginInfo> infos;
  try {
    entries = handle->lib.get_alias<std::vector<PluginEntry>()>(BPKIT_PLUGIN_ENTRIES_SYMBOL)();
    for (const PluginEntry& e : entries) infos.push_back(e.info());
  } catch (const std::exception& e) {
    throw PluginError(path + ": failed to list its plugins: " + e.what());
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    const PluginInfo& info = infos[i];
    if (info.name.empty()) throw PluginError(path + ": defines a plugin without a name");
    for (const ParamSpec& p : info.params) {
      if (p.name.empty())
        throw PluginError(path + ": plugin '" + info.name + "' has a parameter without a name");
      // A default outside its own declared range (or choices) would reach configure() unchecked.
      const std::string bad = check_param_value(p, p.default_value);
      if (!bad.empty())
        throw PluginError(path + ": plugin '" + info.name + "', parameter '" + p.name +
                          "': the default value is invalid: " + bad);
    }
    if (const RegisteredPlugin* other = find(info.name))
      throw PluginError("two plugins are named '" + info.name + "': one in " + other->file +
                        ", one in " + path +
                        "; remove one or take its directory off the plugin "
                        "path");
    for (size_t j = 0; j < i; ++j)
      if (infos[j].name == info.name)
        throw PluginError(path + ": defines the plugin '" + info.name + "' twice");
  }
  for (size_t i = 0; i < infos.size(); ++i)
    plugins_.push_back(
        RegisteredPlugin{std::move(infos[i]), path, digest, handle, entries[i].create});
}

void PluginRegistry::add_directory(const std::string& dir, const std::function<bool()>& done) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  const std::string why = plugin_permission_problem(dir, true);
  if (!why.empty()) throw PluginError(why);
  const fs::path root = fs::canonical(dir, ec);
  if (ec) throw PluginError(dir + ": cannot resolve the plugin directory's path: " + ec.message());
  dirs_.push_back(dir);
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().extension() == ".so" && !entry.is_directory()) files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    if (done && done()) return;
    if (fs::is_symlink(f, ec)) {
      // A link may only point within its directory: one leading out would load a library from a
      // place nobody put on the plugin path.
      const fs::path target = fs::canonical(f, ec);
      if (ec) {
        problems_.push_back(f + ": a symbolic link to nothing (" + ec.message() + ")");
        continue;
      }
      if (!is_within(target, root)) {
        problems_.push_back(f + ": refused: a symbolic link to " + target.string() +
                            ", outside its plugin directory " + root.string() +
                            "; copy the library into the directory, or add its own directory "
                            "with --plugin-path");
        continue;
      }
    }
    try {
      load_library(f);
    } catch (const PluginError& e) {
      // Two plugins with one name is the user's configuration error, not a broken file.
      if (std::string(e.what()).rfind("two plugins are named", 0) == 0) throw;
      problems_.push_back(e.what());
    }
  }
}

const RegisteredPlugin* PluginRegistry::find(const std::string& name) const {
  for (const RegisteredPlugin& p : plugins_)
    if (p.info.name == name) return &p;
  return nullptr;
}

const RegisteredPlugin& PluginRegistry::get(const std::string& name) const {
  if (const RegisteredPlugin* p = find(name)) return *p;
  std::vector<std::string> names;
  for (const RegisteredPlugin& p : plugins_) names.push_back(p.info.name);
  std::string msg = "no plugin named '" + name + "'" + did_you_mean(name, names);
  if (plugins_.empty()) {
    msg += "; no plugins were found (searched:";
    for (const std::string& d : dirs_) msg += " " + d;
    msg += dirs_.empty() ? " nothing)" : ")";
  }
  for (const std::string& p : problems_) msg += "\n  skipped " + p;
  throw PluginError(msg);
}

std::shared_ptr<FeaturePlugin> PluginRegistry::create(const std::string& name) const {
  const RegisteredPlugin& p = get(name);
  FeaturePlugin* raw = nullptr;
  try {
    raw = p.create();
  } catch (const std::exception& e) {
    throw PluginError("plugin '" + name + "' (" + p.file + ") failed to construct: " + e.what());
  }
  if (!raw) throw PluginError("plugin '" + name + "' (" + p.file + ") returned no object");
  // The deleter owns a reference to the library: the object's destructor (code in the library)
  // runs first, then the reference is dropped, possibly unloading the library.
  std::shared_ptr<PluginLibraryHandle> lib = p.library;
  return std::shared_ptr<FeaturePlugin>(raw, [lib](FeaturePlugin* obj) mutable {
    delete obj;
    lib.reset();
  });
}

}  // namespace bpkit
