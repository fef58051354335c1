// The plugin host, pipeline files, the feature cache and stage errors.
#include <stdlib.h>  // setenv, unsetenv

#include <algorithm>
#include <catch2/catch.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "../pipeline/src/train_detail.h"  // checkpoints and their digests
#include "bpkit/config.h"
#include "bpkit/digest.h"
#include "bpkit/error.h"
#include "bpkit/features.h"
#include "bpkit/layers.h"
#include "bpkit/model_file.h"
#include "bpkit/pipeline.h"
#include "bpkit/plugin_host.h"
#include "bpkit/random.h"
#include "bpkit/train.h"
#include "temp_dir.h"

using bpkit::ConfigError;
using bpkit::PluginError;
using bpkit::PluginRegistry;
using Catch::Matchers::Contains;

namespace {

const std::string kPlugins = BPKIT_TEST_PLUGIN_DIR;
// --plugin-path for models trained on the test plugins: a model directory's own plugin_path is
// not searched unless asked for.
const std::vector<std::string> kStageDirs{kPlugins + "/test_stages"};

std::string lib(const std::string& name) {
  return kPlugins + "/" + name + "/lib" + name + ".so";
}

void write(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A pipeline file around the given stages and layers.
std::string pipeline_text(const std::string& stages,
                          const std::string& layers = "    - dense: {units: 2}\n") {
  return "name: t\nstages:\n" + stages + "network:\n  layers:\n" + layers;
}

std::string config_error(const std::string& text, const PluginRegistry* reg = nullptr) {
  try {
    const bpkit::PipelineConfig c = bpkit::parse_pipeline_config(text, "p.yaml");
    if (reg) bpkit::Pipeline p(c, *reg);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

bool library_mapped(const std::string& path) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(path) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("plugin libraries are loaded and listed", "[plugins]") {
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  REQUIRE(reg.plugins().size() == 4);
  const auto& p = reg.get("test.numbers");
  CHECK(p.info.version == "1.0");
  CHECK(p.info.consumes == bpkit::Kind::kFile);
  CHECK(p.info.produces == bpkit::Kind::kFeatures);
  REQUIRE(p.info.params.size() == 4);
  CHECK(p.info.params[2].type == bpkit::ParamType::kChoice);
  CHECK(p.file == lib("test_stages"));
  CHECK_THROWS_WITH(reg.get("test.numbrs"), Contains("did you mean 'test.numbers'"));
}

TEST_CASE("libraries that are not usable plugins are refused with the reason", "[plugins]") {
  PluginRegistry reg;
  CHECK_THROWS_WITH(
      reg.load_library(lib("test_abi")),
      Contains("built for plugin ABI version " + std::to_string(bpkit::kPluginAbiVersion + 998)) &&
          Contains("rebuild"));
  CHECK_THROWS_WITH(reg.load_library(lib("test_no_entries")),
                    Contains("bpkit_plugin_entries") && Contains("missing"));
  CHECK_THROWS_WITH(reg.load_library(lib("test_not_plugin")),
                    Contains("not a bpkit plugin") && Contains("bpkit_plugin_abi_version"));
  // A default outside the parameter's own declared range would reach configure() unchecked.
  CHECK_THROWS_WITH(reg.load_library(lib("test_bad_default")),
                    Contains("test.bad_default") && Contains("'count'") &&
                        Contains("default value is invalid") && Contains("between 0 and 1000"));
  bpkit_test::TempDir dir("plugins");
  write(dir.file("fake.so"), "this is text, not a library\n");
  CHECK_THROWS_WITH(reg.load_library(dir.file("fake.so")),
                    Contains(dir.file("fake.so")) && Contains("not a shared library"));
  // An ELF file that is not a loadable library.
  std::ifstream self("/proc/self/exe", std::ios::binary);
  std::string head(64, '\0');
  self.read(&head[0], 64);
  write(dir.file("broken.so"), head);
  CHECK_THROWS_WITH(reg.load_library(dir.file("broken.so")), Contains("cannot be loaded"));
  CHECK_THROWS_WITH(reg.load_library(dir.file("absent.so")), Contains("no such plugin library"));
  CHECK(reg.plugins().empty());
  // Scanning a directory skips them, recording why.
  reg.add_directory(dir.path());
  CHECK(reg.plugins().empty());
  CHECK(reg.problems().size() == 2);
  CHECK_THROWS_WITH(reg.get("test.numbers"), Contains("skipped") && Contains("fake.so"));
}

TEST_CASE("two plugins with one name is an error naming both files", "[plugins]") {
  PluginRegistry reg;
  reg.add_directory(kPlugins + "/test_stages");
  CHECK_THROWS_WITH(reg.add_directory(kPlugins + "/test_duplicate"),
                    Contains("two plugins are named 'test.numbers'") &&
                        Contains(lib("test_stages")) && Contains(lib("test_duplicate")));
}

TEST_CASE("a plugin library stays loaded while its objects live", "[plugins]") {
  const std::string path = lib("test_lifetime");
  std::shared_ptr<bpkit::FeaturePlugin> obj;
  {
    PluginRegistry reg;
    reg.load_library(path);
    obj = reg.create("test.lifetime");
    REQUIRE(library_mapped(path));
  }  // the registry (and its reference to the library) is gone
  REQUIRE(library_mapped(path));
  bpkit::Value in;
  const bpkit::Value v = obj->process(in);  // code in the library
  CHECK(v.tensor.size() == 100);
  CHECK(v.tensor[0] == float('x'));
  obj.reset();  // the destructor runs in the library, then the library is unloaded
  CHECK_FALSE(library_mapped(path));  // built with -fno-gnu-unique: unloading is real
}

namespace {

namespace fs = std::filesystem;

// A copy of a test plugin library at `to`, owner-writable only (whatever the umask).
void copy_library(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
  fs::permissions(to, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec);
}

void make_plugin_dir(const std::string& dir) {
  fs::create_directories(dir);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
}

bool problems_mention(const PluginRegistry& reg, const std::string& a, const std::string& b) {
  for (const std::string& p : reg.problems())
    if (p.find(a) != std::string::npos && p.find(b) != std::string::npos) return true;
  return false;
}

// Sets (or, with nullptr, unsets) an environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    value ? setenv(name, value, 1) : unsetenv(name);
  }
  ~ScopedEnv() { had_ ? setenv(name_.c_str(), old_.c_str(), 1) : unsetenv(name_.c_str()); }

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace

TEST_CASE("plugin files and directories writable by group or others are refused",
          "[plugins][security]") {
  bpkit_test::TempDir tmp("plugin-perms");
  const std::string dir = tmp.file("plugins"), so = dir + "/libstages.so";
  make_plugin_dir(dir);
  copy_library(lib("test_stages"), so);
  {
    PluginRegistry reg;
    reg.add_directory(dir);
    CHECK(reg.find("test.numbers"));
  }
  using P = fs::perms;
  const P ok = P::owner_all | P::group_read | P::group_exec | P::others_read | P::others_exec;
  for (const auto& [mode, who] : {std::pair<P, std::string>{ok | P::group_write, "its group"},
                                  {ok | P::others_write, "all other users"},
                                  {ok | P::group_write | P::others_write, "its group and all"}}) {
    CAPTURE(who);
    fs::permissions(so, mode);
    PluginRegistry reg;
    reg.add_directory(dir);  // the file is skipped, with the reason
    CHECK_FALSE(reg.find("test.numbers"));
    CHECK(problems_mention(reg, so + ": refused", "writable by " + who));
    CHECK_THROWS_WITH(reg.get("test.numbers"),
                      Contains("skipped " + so) && Contains("chmod go-w " + so));
    CHECK_THROWS_WITH(reg.load_library(so),
                      Contains(so) && Contains("writable by " + who) && Contains("chmod go-w"));
  }
  fs::permissions(so, ok);
  fs::permissions(dir, ok | P::group_write);
  PluginRegistry reg;
  // The directory is refused as a whole, and so is a library in it named on its own.
  CHECK_THROWS_WITH(reg.add_directory(dir), Contains(dir + ": refused") &&
                                                Contains("plugin directory is writable") &&
                                                Contains("chmod go-w " + dir));
  CHECK_THROWS_WITH(reg.load_library(so), Contains(dir) && Contains("chmod go-w"));
  CHECK_THROWS_WITH(bpkit::load_plugins(reg, {}, {dir}), Contains("chmod go-w " + dir));
  CHECK_FALSE(reg.find("test.numbers"));
  fs::permissions(dir, ok);
  reg.load_library(so);
  CHECK(reg.find("test.numbers"));
}

TEST_CASE("the same plugin library twice on the path (built, then installed) is loaded once",
          "[plugins]") {
  bpkit_test::TempDir tmp("plugin-installed");
  const std::string dir = tmp.file("installed"), so = dir + "/libbpkit_test_stages.so";
  make_plugin_dir(dir);
  copy_library(lib("test_stages"), so);
  PluginRegistry reg;
  reg.add_directory(kPlugins + "/test_stages");
  REQUIRE_NOTHROW(reg.add_directory(dir));
  REQUIRE(reg.find("test.numbers"));
  CHECK(reg.find("test.numbers")->file == lib("test_stages"));
  int named = 0;
  for (const auto& p : reg.plugins()) named += p.info.name == "test.numbers";
  CHECK(named == 1);
  bool noted = false;
  for (const std::string& p : reg.problems())
    noted |= p.find("identical bytes") != std::string::npos;
  CHECK(noted);
  // Another library of that name (other bytes) is still an error.
  CHECK_THROWS_WITH(reg.add_directory(kPlugins + "/test_duplicate"),
                    Contains("two plugins are named 'test.numbers'"));
}

TEST_CASE("a symbolic link in a plugin directory may not lead out of it", "[plugins][security]") {
  bpkit_test::TempDir tmp("plugin-links");
  // Inside: the versioned-library habit, a .so link to the real file beside it (in a
  // subdirectory here, so that only the link ends in .so).
  const std::string inside = tmp.file("inside");
  make_plugin_dir(inside + "/real");
  copy_library(lib("test_stages"), inside + "/real/libstages.so.1");
  fs::create_symlink("real/libstages.so.1", inside + "/libstages.so");
  {
    PluginRegistry reg;
    reg.add_directory(inside);
    REQUIRE(reg.find("test.numbers"));
    CHECK(reg.find("test.numbers")->file == inside + "/libstages.so");
    CHECK(reg.problems().empty());
  }
  // Outside: a link to a library in another directory, relative or absolute.
  const std::string outside = tmp.file("outside");
  make_plugin_dir(outside);
  make_plugin_dir(tmp.file("elsewhere"));
  copy_library(lib("test_stages"), tmp.file("elsewhere/libstages.so"));
  fs::create_symlink("../elsewhere/libstages.so", outside + "/librelative.so");
  fs::create_symlink(fs::absolute(tmp.file("inside/real/libstages.so.1")),
                     outside + "/libabsolute.so");
  PluginRegistry reg;
  reg.add_directory(outside);
  CHECK(reg.plugins().empty());
  REQUIRE(reg.problems().size() == 2);
  CHECK(problems_mention(reg,
                         outside + "/librelative.so: refused: a symbolic link to " +
                             fs::canonical(tmp.file("elsewhere/libstages.so")).string(),
                         "outside its plugin directory"));
  CHECK(
      problems_mention(reg, outside + "/libabsolute.so: refused", "outside its plugin directory"));
  CHECK_FALSE(library_mapped(tmp.file("elsewhere/libstages.so")));
}

TEST_CASE("a model directory does not choose which plugin libraries run", "[plugins][security]") {
  // A model whose pipeline.yaml brings its own library (a copy of test_lifetime, under a name
  // that shows whether it was ever mapped) in plugin_path.
  bpkit_test::TempDir tmp("model-plugins");
  const std::string model = tmp.file("model"), own = model + "/lib/libbrought.so";
  make_plugin_dir(model + "/lib");
  copy_library(lib("test_lifetime"), own);
  bpkit::Network<float> net({100}, 1);
  net.add(std::make_unique<bpkit::Dense<float>>(2));
  bpkit::save_model(net, model + "/model.bpk", {{"class.0", "a"}, {"class.1", "b"}});
  write(model + "/pipeline.yaml",
        "name: brought\nplugin_path: [lib]\nstages: [test.lifetime]\n"
        "network:\n  layers:\n    - dense: {units: 2}\n");
  write(tmp.file("input.txt"), "anything\n");
  ScopedEnv env("BPKIT_PLUGIN_PATH", nullptr);

  CHECK_THROWS_WITH(bpkit::TrainedModel(model),
                    Contains(model + "/pipeline.yaml:3:") &&
                        Contains("no plugin named 'test.lifetime' in the trusted plugin "
                                 "directories") &&
                        Contains("asks for plugin libraries from " + model + "/lib") &&
                        Contains("--trust-model-plugins"));
  CHECK_FALSE(library_mapped(own));
  // The user's word: the flag, or naming the directory.
  for (int how = 0; how < 2; ++how) {
    CAPTURE(how);
    bpkit::TrainedModel m(
        model, how ? std::vector<std::string>{model + "/lib"} : std::vector<std::string>{},
        /*trust_model_plugins=*/how == 0);
    CHECK(library_mapped(own));
    CHECK(m.predict(tmp.file("input.txt")).probabilities.size() == 2);
  }
  CHECK_FALSE(library_mapped(own));
  // The same refusal for a page layout (ocr_app's page.yaml) or any model pipeline file.
  const bpkit::PipelineConfig c = bpkit::load_pipeline_config(model + "/pipeline.yaml");
  PluginRegistry reg;
  CHECK_THROWS_WITH(bpkit::load_model_plugins(reg, c, {}, false),
                    Contains("--trust-model-plugins"));
  CHECK_FALSE(library_mapped(own));
}

TEST_CASE("the current directory is never searched for plugins", "[plugins][security]") {
  bpkit_test::TempDir tmp("plugin-cwd");
  const std::string here = tmp.file("here");
  make_plugin_dir(here);
  copy_library(lib("test_stages"), here + "/libhere.so");
  const fs::path before = fs::current_path();
  fs::current_path(here);
  struct Back {
    fs::path to;
    ~Back() { fs::current_path(to); }
  } back{before};

  const std::string program = bpkit::program_directory();
  CHECK(fs::path(program).is_absolute());
  {
    ScopedEnv env("BPKIT_PLUGIN_PATH", ":");  // empty entries are ignored, not "here"
    const std::vector<std::string> dirs = PluginRegistry::default_directories();
    REQUIRE(dirs.size() == 1);  // the built-in directory only
    CHECK(fs::path(dirs[0]).is_absolute());
    std::error_code ec;
    CHECK_FALSE(fs::equivalent(dirs[0], here, ec));
    PluginRegistry reg;
    bpkit::load_plugins(reg, {}, {});
    CHECK_FALSE(reg.find("test.numbers"));
    CHECK_FALSE(library_mapped(here + "/libhere.so"));
  }
  for (const char* relative : {".", "plugins", "/nonexistent:./lib"}) {
    CAPTURE(relative);
    ScopedEnv env("BPKIT_PLUGIN_PATH", relative);
    CHECK_THROWS_WITH(PluginRegistry::default_directories(),
                      Contains("$BPKIT_PLUGIN_PATH") && Contains("relative directory"));
    PluginRegistry reg;
    CHECK_THROWS_AS(bpkit::load_plugins(reg, {}, {}), PluginError);
    CHECK_FALSE(library_mapped(here + "/libhere.so"));
  }
}

TEST_CASE("pipeline files: syntax and schema errors quote file:line:column", "[pipeline]") {
  CHECK_THROWS_WITH(bpkit::parse_pipeline_config("stages: [a\n", "p.yaml"),
                    Contains("p.yaml:") && Contains("not valid YAML"));
  const std::string stages = "  - plugin: test.numbers\n";
  CHECK_THAT(config_error(pipeline_text(stages) + "trainig:\n  epochs: 3\n"),
             Contains("p.yaml:7:1: unknown key 'trainig'") && Contains("did you mean 'training'"));
  CHECK_THAT(config_error(pipeline_text(stages) + "training:\n  epochs: ten\n"),
             Contains("p.yaml:8:11: training.epochs must be an integer, got 'ten'"));
  CHECK_THAT(config_error(pipeline_text(stages) + "training:\n  epochs: 0\n"),
             Contains("p.yaml:8:11") && Contains("out of range") && Contains("between 1 and"));
  CHECK_THAT(config_error(pipeline_text(stages) + "optimizer: {type: adamm}\n"),
             Contains("p.yaml:7:19") && Contains("did you mean 'adam'"));
  CHECK_THAT(
      config_error(pipeline_text(stages) + "training: {schedule: {type: cosine, gama: 1}}\n"),
      Contains("p.yaml:7:") && Contains("unknown key 'gama'") && Contains("did you mean 'gamma'"));
  CHECK_THAT(config_error(pipeline_text(stages) + "training: {epochs: [1, 2]}\n"),
             Contains("must be an integer, got a list"));
  // A key given twice, at any depth: both places (yaml-cpp would keep the first silently).
  CHECK_THAT(
      config_error(pipeline_text(stages) + "training:\n  epochs: 3\n  epochs: 5\n"),
      Contains("p.yaml:9:3: the key 'epochs' appears twice") && Contains("first at p.yaml:8:3"));
  CHECK_THAT(
      config_error(pipeline_text(stages) + "training: {}\ntraining: {epochs: 2}\n"),
      Contains("p.yaml:8:1: the key 'training' appears twice") && Contains("first at p.yaml:7:1"));
  CHECK_THAT(config_error("name: t\nstages:\n  - plugin: test.numbers\n    params: {scale: 2, "
                          "scale: 3}\n"),
             Contains("p.yaml:4:24: the key 'scale' appears twice"));
  {
    std::string deep = "name: t\nstages: [test.numbers]\nx: ";
    for (int i = 0; i < 100; ++i) deep += "[";
    for (int i = 0; i < 100; ++i) deep += "]";
    CHECK_THAT(config_error(deep + "\n"), Contains("nested more than 64 levels"));
    // Aliases nested ten deep, ten each: 10^10 values in a few hundred bytes, refused at once.
    std::string bomb = "name: t\nstages: [test.numbers]\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (int i = 1; i <= 10; ++i) {
      const std::string prev = "*a" + std::to_string(i - 1);
      bomb += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
      for (int k = 0; k < 10; ++k) bomb += (k ? ", " : "") + prev;
      bomb += "]\n";
    }
    CHECK_THAT(config_error(bomb), Contains("more than 100000 values"));
  }
  CHECK_THAT(config_error("name: t\nnetwork:\n  layers: [relu]\n"), Contains("no 'stages'"));
  CHECK_THAT(config_error(pipeline_text(stages, "    - dense: {units: 2}\n      relu: {}\n")),
             Contains("p.yaml:6:7") && Contains("several keys"));
  CHECK_THAT(config_error(pipeline_text(stages) + "data: {classes: [a, b, a]}\n"),
             Contains("lists 'a' twice"));
  CHECK_THAT(config_error(pipeline_text(stages) + "training:\n  augment: {shift: 2, rotat: 5}\n"),
             Contains("p.yaml:8:") && Contains("unknown key 'rotat' in training.augment") &&
                 Contains("did you mean 'rotate'"));
  CHECK_THAT(config_error(pipeline_text(stages) + "training:\n  augment: {scale: 2}\n"),
             Contains("p.yaml:8:20") && Contains("training.augment.scale = 2 is out of range"));
  const bpkit::PipelineConfig aug = bpkit::parse_pipeline_config(
      pipeline_text(stages) +
          "training:\n  augment: {shift: 2, rotate: 10, scale: 0.1, erase: 4}\n",
      "p.yaml");
  CHECK(aug.augment.shift == 2);
  CHECK(aug.augment.rotate == 10);
  CHECK(aug.augment.scale == 0.1);
  CHECK(aug.augment.erase == 4);
  CHECK(aug.augment.enabled());
  CHECK_FALSE(bpkit::parse_pipeline_config(pipeline_text(stages), "p.yaml").augment.enabled());
}

TEST_CASE(
    "pipeline overrides (bpkit train --set): dotted keys, list indices, YAML values, mistakes",
    "[pipeline]") {
  const std::string text = pipeline_text("  - plugin: test.numbers\n",
                                         "    - dense: {units: 8}\n    - relu\n"
                                         "    - dense: {units: 2}\n") +
                           "# a comment\ntraining:\n  epochs: 3\n";
  const std::string out = bpkit::apply_overrides(
      text, "dir/p.yaml",
      {"training.epochs=7", "network.layers.2.dense.units=5", "optimizer.lr=0.5",
       "data.validation_split=0.25", "name=other", "network.layers.0={dense: {units: 4}}"});
  CHECK(out.rfind("# p.yaml with --set training.epochs=7 --set network.layers.2.dense.units=5",
                  0) == 0);
  const bpkit::PipelineConfig c = bpkit::parse_pipeline_config(out, "dir/p.yaml");
  CHECK(c.epochs == 7);
  CHECK(c.lr == Approx(0.5));
  CHECK(c.validation_split == Approx(0.25));
  CHECK(c.name == "other");
  REQUIRE(c.layers.size() == 3);
  auto units = [](const bpkit::LayerConfig& l) {
    for (const auto& [k, v] : l.attrs)
      if (k == "units") return v;
    return std::string("(none)");
  };
  CHECK(c.layers[0].kind == "dense");
  CHECK(units(c.layers[0]) == "4");
  CHECK(units(c.layers[2]) == "5");
  CHECK(c.dir == "dir");  // relative paths still resolve against the file's directory
  auto error = [&](const std::string& o) {
    try {
      bpkit::apply_overrides(text, "p.yaml", {o});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK_THAT(error("training.epochs"), Contains("--set training.epochs: expected KEY=VALUE"));
  CHECK_THAT(error("a..b=1"), Contains("the key 'a..b' has an empty part"));
  CHECK_THAT(error("network.layers.3.dense.units=1"),
             Contains("'network.layers' is a list of 3 item(s); '3' is not an index 0..2"));
  CHECK_THAT(error("network.layers.x=1"), Contains("'x' is not an index"));
  CHECK_THAT(error("name.first=1"), Contains("'name' is a value (t), not a mapping or a list"));
  CHECK_THAT(error("training.epochs=[1,"), Contains("the value is not valid YAML"));
  CHECK_THROWS_WITH(bpkit::apply_overrides("stages: [a\n", "q.yaml", {"a=1"}),
                    Contains("q.yaml:") && Contains("not valid YAML"));
}

TEST_CASE("pipelines: plugins, parameters and kinds are checked with positions", "[pipeline]") {
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  CHECK_THAT(config_error(pipeline_text("  - plugin: test.numbes\n"), &reg),
             Contains("p.yaml:3:5: no plugin named 'test.numbes'") &&
                 Contains("did you mean 'test.numbers'"));
  CHECK_THAT(config_error(pipeline_text("  - plugin: test.numbers\n    params: {scal: 2}\n"), &reg),
             Contains("p.yaml:4:14: plugin 'test.numbers' has no parameter 'scal'") &&
                 Contains("did you mean 'scale'"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {scale: big}\n"), &reg),
      Contains("p.yaml:4:14") && Contains("(float): expected a number, got 'big'"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {scale: 1000}\n"), &reg),
      Contains("out of range; expected between -100 and 100"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {count: 1.5}\n"), &reg),
      Contains("(int): expected an integer, got '1.5'"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {mode: sqare}\n"), &reg),
      Contains("unknown value 'sqare'") && Contains("did you mean 'square'"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {strict: maybe}\n"), &reg),
      Contains("expected true or false"));
  // One spelling of booleans: YAML 1.1's yes/no, on/off and 1/0 are refused, for plugin
  // parameters and for the pipeline file's own keys alike.
  for (const char* word : {"yes", "on", "1", "True"})
    CHECK_THAT(config_error(pipeline_text("  - plugin: test.numbers\n    params: {strict: " +
                                          std::string(word) + "}\n"),
                            &reg),
               Contains("expected true or false, got '" + std::string(word) + "'"));
  CHECK_THAT(config_error(pipeline_text("  - plugin: test.numbers\n") + "cache: yes\n"),
             Contains("must be true or false, got 'yes'"));
  // configure() rejects a combination; the host adds the key's position.
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n    params: {strict: true}\n"), &reg),
      Contains("p.yaml:4:14: parameter 'strict' of plugin 'test.numbers': strict needs a "
               "count"));
  // Kinds that do not connect.
  CHECK_THAT(config_error(pipeline_text("  - plugin: test.fail_on\n"), &reg),
             Contains("p.yaml:3:5: the first stage reads the inputs") &&
                 Contains("consumes features"));
  CHECK_THAT(
      config_error(pipeline_text("  - plugin: test.numbers\n  - plugin: test.image_sink\n"), &reg),
      Contains("p.yaml:4:5: stage 'test.image_sink' consumes image, but the stage before it "
               "('test.numbers') produces features"));
  // A valid pipeline: defaults filled in, the signature names every parameter.
  const auto c = bpkit::parse_pipeline_config(
      pipeline_text("  - plugin: test.numbers\n    params: {scale: 2}\n  - test.fail_on\n"),
      "p.yaml");
  bpkit::Pipeline p(c, reg);
  CHECK(p.stages()[0].params.get_float("scale") == 2);
  CHECK(p.stages()[0].params.get_string("mode") == "plain");
  CHECK_THAT(p.signature(), Contains("test.numbers@1.0#" + reg.get("test.numbers").digest +
                                     "{count=0;mode=plain;scale=2;strict=false;}"));
  CHECK(reg.get("test.numbers").digest.size() == 32);  // XXH3-128 in hex
}

TEST_CASE("digests are XXH3-128 in canonical hex, streamed or whole", "[cache]") {
  // The reference values are xxhsum -H2's (XXH3 128 bits, big-endian canonical form).
  CHECK(bpkit::digest_of("") == "99aa06d3014798d86001c324468d497f");
  CHECK(bpkit::digest_of("abc") == "06b05ab6733a618578af5f94892f3950");
  bpkit::Digest d;
  d.update("a", 1).update(std::string("bc"));
  CHECK(d.hex() == bpkit::digest_of("abc"));
  bpkit_test::TempDir t("digest");
  const std::string big(200000, 'x');  // more than one read block
  std::ofstream(t.file("f.bin"), std::ios::binary) << big;
  CHECK(bpkit::file_digest(t.file("f.bin")) == bpkit::digest_of(big));
  CHECK_THROWS_AS(bpkit::file_digest(t.file("missing")), bpkit::FileError);
  // A cache key tells the parameters from the content, however the bytes are split.
  CHECK(bpkit::FeatureCache::key("bc", "a") != bpkit::FeatureCache::key("c", "ab"));
  CHECK(bpkit::FeatureCache::key("bc", "a") == bpkit::FeatureCache::key("bc", "a"));
}

TEST_CASE("a checkpoint resumes only with its configuration, feature stages and training data",
          "[resume]") {
  bpkit_test::TempDir dir("resume-digests");
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  write(dir.file("train.tsv"), "a.txt\tx\nb.txt\ty\n");
  const auto config = [&](const std::string& scale) {
    bpkit::PipelineConfig c = bpkit::parse_pipeline_config(
        pipeline_text("  - plugin: test.numbers\n    params: {scale: " + scale + "}\n"), "p.yaml");
    c.train_manifest = dir.file("train.tsv");
    return c;
  };
  const bpkit::PipelineConfig c2 = config("2"), c3 = config("3");
  bpkit::Pipeline p2(c2, reg), p3(c3, reg);
  const bpkit::train_detail::RunDigests d = bpkit::train_detail::run_digests(c2, p2);
  CHECK(d.data_source == dir.file("train.tsv"));

  bpkit::Network<float> net({3}, 2);
  net.emplace<bpkit::Dense<float>>(2);
  bpkit::Adam<float> opt(net.params());
  bpkit::TrainProgress progress;
  progress.epochs_done = 1;
  progress.result.history.emplace_back();
  progress.result.history.back().epoch = 1;
  const std::string ckpt = dir.file("checkpoint.bpk");
  bpkit::train_detail::save_checkpoint(ckpt, net, opt, progress, d);
  const auto refusal = [&](const bpkit::train_detail::RunDigests& now) -> std::string {
    try {
      bpkit::train_detail::load_checkpoint(ckpt, net, opt, now);
    } catch (const bpkit::FileError& e) {
      return e.what();
    }
    return "(resumed)";
  };
  CHECK(refusal(d) == "(resumed)");
  CHECK(bpkit::train_detail::load_checkpoint(ckpt, net, opt, d).epochs_done == 1);
  // Another parameter: the pipeline text and the stages' signature both differ.
  const bpkit::train_detail::RunDigests other = bpkit::train_detail::run_digests(c3, p3);
  CHECK(other.config != d.config);
  CHECK(other.plugins != d.plugins);
  CHECK_THAT(refusal(other), Contains("the pipeline file changed"));
  // The same text with other stages (a rebuilt plugin library changes the signature the same way).
  bpkit::train_detail::RunDigests rebuilt = d;
  rebuilt.plugins = other.plugins;
  CHECK_THAT(refusal(rebuilt), Contains("the feature stages") && Contains("changed"));
  // One manifest line fewer: the training data changed.
  write(dir.file("train.tsv"), "a.txt\tx\n");
  const bpkit::train_detail::RunDigests fewer = bpkit::train_detail::run_digests(c2, p2);
  CHECK(fewer.config == d.config);
  CHECK(fewer.plugins == d.plugins);
  CHECK(fewer.data != d.data);
  CHECK_THAT(refusal(fewer),
             Contains("the training data (" + dir.file("train.tsv") + ") changed") &&
                 Contains("--resume"));
  // A dataset directory of writers: a scan added or resized changes its digest; files the
  // layout does not read (a listing beside the writers, a note) do not.
  bpkit::PipelineConfig w = c2;
  w.train_manifest = dir.file("writers");
  std::filesystem::create_directories(dir.file("writers/w1/genuine"));
  std::filesystem::create_directories(dir.file("writers/w1/forgeries"));
  write(dir.file("writers/w1/genuine/1.png"), "12345");
  write(dir.file("writers/w1/genuine/2.png"), "1");
  const std::string before = bpkit::train_detail::run_digests(w, p2).data;
  write(dir.file("writers/w1/genuine/1.png"), "123456");
  const std::string resized = bpkit::train_detail::run_digests(w, p2).data;
  write(dir.file("writers/w1/forgeries/1.jpg"), "1");
  const std::string added = bpkit::train_detail::run_digests(w, p2).data;
  write(dir.file("writers/images.tsv"), "w1/genuine/1.png\n");
  write(dir.file("writers/w1/genuine/notes.txt"), "scanned at 300 dpi\n");
  const std::string unread = bpkit::train_detail::run_digests(w, p2).data;
  CHECK(resized != before);
  CHECK(added != resized);
  CHECK(unread == added);
}

TEST_CASE("the feature cache serves only what matches content and parameters", "[cache]") {
  bpkit_test::TempDir dir("cache");
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  std::vector<bpkit::ManifestEntry> entries;
  for (int i = 0; i < 6; ++i) {
    const std::string f = dir.file("s" + std::to_string(i) + ".txt");
    write(f, std::to_string(i) + " 1 2\n");
    entries.push_back({f, "a", "m:" + std::to_string(i + 1)});
  }
  auto make = [&](const std::string& scale) {
    return bpkit::parse_pipeline_config(
        pipeline_text("  - plugin: test.numbers\n    params: {scale: " + scale + "}\n"), "p.yaml");
  };
  const bpkit::FeatureCache cache(dir.file("cache"));
  bpkit::ExtractOptions o;
  o.cache = &cache;
  const auto c1 = make("2");
  bpkit::Pipeline p1(c1, reg);
  auto a = bpkit::extract_features(p1, entries, o);
  CHECK(a.computed == 6);
  CHECK(a.cache_hits == 0);
  auto b = bpkit::extract_features(p1, entries, o);
  CHECK(b.cache_hits == 6);
  CHECK(b.computed == 0);
  for (size_t i = 0; i < 6; ++i) {
    REQUIRE(b.features[i].size() == 3);
    CHECK(b.features[i][0] == float(2 * i));
  }
  // Another parameter value: nothing is served from the first configuration.
  const auto c2 = make("3");
  bpkit::Pipeline p2(c2, reg);
  auto c = bpkit::extract_features(p2, entries, o);
  CHECK(c.computed == 6);
  CHECK(c.features[1][0] == 3.0f);
  // A changed file is recomputed; the others still come from the cache.
  write(entries[2].path, "7 1 2\n");
  auto d = bpkit::extract_features(p1, entries, o);
  CHECK(d.computed == 1);
  CHECK(d.cache_hits == 5);
  CHECK(d.features[2][0] == 14.0f);
  // A damaged entry is recomputed, not served.
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("cache")))
    if (e.is_regular_file()) {
      std::fstream f(e.path(), std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(-6, std::ios::end);
      f.put('\x55');
    }
  auto e = bpkit::extract_features(p1, entries, o);
  CHECK(e.computed == 6);
  CHECK(e.features[3][0] == 6.0f);
  CHECK(cache.clear() == 13);  // 6 + 6 + the changed file's new entry
  auto f = bpkit::extract_features(p1, entries, o);
  CHECK(f.computed == 6);
}

TEST_CASE("a feature cache that cannot be written is a warning, never a lost sample", "[cache]") {
  bpkit_test::TempDir dir("cache-ro");
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  std::vector<bpkit::ManifestEntry> entries;
  for (int i = 0; i < 8; ++i) {  // the same content twice: two writers of one cache entry
    const std::string f = dir.file("s" + std::to_string(i) + ".txt");
    write(f, std::to_string(i / 2) + " 1 2\n");
    entries.push_back({f, "a", "m:" + std::to_string(i + 1)});
  }
  const auto c = bpkit::parse_pipeline_config(pipeline_text("  - test.numbers\n"), "p.yaml");
  bpkit::Pipeline p(c, reg);
  std::ostringstream log;
  bpkit::ExtractOptions o;
  o.log = &log;
  write(dir.file("blocked"), "a file where the cache directory should be\n");
  const bpkit::FeatureCache blocked(dir.file("blocked"));
  o.cache = &blocked;
  const auto a = bpkit::extract_features(p, entries, o);
  CHECK(a.features.size() == 8);
  CHECK(a.computed == 8);
  CHECK(a.skipped.empty());
  CHECK_THAT(log.str(), Contains("warning: the feature cache is not written") &&
                            Contains("samples were not written to the feature cache"));
  // A working cache with duplicate contents: every sample is kept, the second run is all hits.
  const bpkit::FeatureCache cache(dir.file("cache"));
  o.cache = &cache;
  for (int run = 0; run < 2; ++run) {
    const auto b = bpkit::extract_features(p, entries, o);
    REQUIRE(b.features.size() == 8);
    CHECK(b.features[5][0] == 2.0f);
    if (run == 1) CHECK(b.cache_hits == 8);
  }
}

TEST_CASE("a stage that throws on one sample: stop or skip", "[pipeline]") {
  bpkit_test::TempDir dir("stage-error");
  PluginRegistry reg;
  reg.load_library(lib("test_stages"));
  std::vector<bpkit::ManifestEntry> entries;
  for (int i = 10; i < 16; ++i) {
    const std::string f = dir.file("s" + std::to_string(i) + ".txt");
    write(f, std::to_string(i) + " 5\n");
    entries.push_back({f, "a", "train.tsv:" + std::to_string(i)});
  }
  const auto c =
      bpkit::parse_pipeline_config(pipeline_text("  - test.numbers\n  - test.fail_on\n"), "p.yaml");
  bpkit::Pipeline p(c, reg);
  bpkit::ExtractOptions o;
  CHECK_THROWS_WITH(bpkit::extract_features(p, entries, o),
                    Contains(dir.file("s13.txt")) && Contains("stage 'test.fail_on' failed") &&
                        Contains("unlucky value") && Contains("train.tsv:13"));
  std::ostringstream log;
  o.skip_errors = true;
  o.log = &log;
  const auto s = bpkit::extract_features(p, entries, o);
  CHECK(s.features.size() == 5);
  REQUIRE(s.skipped.size() == 1);
  CHECK_THAT(s.skipped[0], Contains("s13.txt"));
  CHECK_THAT(log.str(), Contains("skipped") && Contains("s13.txt"));
  for (const auto& e : s.entries) CHECK(e.path != dir.file("s13.txt"));
}

TEST_CASE("manifests: relative paths, comments, and lines without a label", "[pipeline]") {
  bpkit_test::TempDir dir("manifest");
  write(dir.file("m.tsv"), "# comment\n\nimg/a b.png\tcat\nb.png dog\n");
  const auto m = bpkit::read_manifest(dir.file("m.tsv"));
  REQUIRE(m.size() == 2);
  CHECK(m[0].path == dir.file("img/a b.png"));
  CHECK(m[0].label == "cat");
  CHECK(m[1].label == "dog");
  CHECK(m[1].where == dir.file("m.tsv") + ":4");
  write(dir.file("bad.tsv"), "a.png\tx\nlonely.png\n");
  CHECK_THROWS_WITH(bpkit::read_manifest(dir.file("bad.tsv")),
                    Contains(dir.file("bad.tsv") + ":2") && Contains("no label"));
  CHECK_THROWS_WITH(bpkit::read_manifest(dir.file("none.tsv")), Contains("none.tsv"));
}

namespace {

// Sequences over the alphabet "abc": each symbol is 2-4 noisy frames of its one-hot code, symbols
// are separated by a gap frame. Writes N files and a manifest of "file<TAB>transcript".
std::string make_sequences(const std::string& dir, const std::string& name, int n, uint64_t seed) {
  bpkit::Rng rng(seed);
  std::ofstream manifest(dir + "/" + name + ".tsv");
  for (int i = 0; i < n; ++i) {
    const std::string file = name + std::to_string(i) + ".txt";
    std::ofstream f(dir + "/" + file);
    std::string text;
    const int len = 1 + int(rng.below(4));
    for (int s = 0; s < len; ++s) {
      const int sym = int(rng.below(3));
      text += char('a' + sym);
      const int frames = 2 + int(rng.below(3));
      for (int t = 0; t < frames; ++t) {
        for (int k = 0; k < 4; ++k)
          f << (k == sym ? 1.0 : 0.0) + 0.2 * (rng.uniform() - 0.5) << (k < 3 ? " " : "\n");
      }
      f << "0 0 0 1\n";
    }
    manifest << file << "\t" << text << "\n";
  }
  return dir + "/" + name + ".tsv";
}

}  // namespace

TEST_CASE("a transcript pipeline trains a BiLSTM with CTC and predicts text", "[pipeline][ctc]") {
  bpkit_test::TempDir dir("ctc-pipeline");
  make_sequences(dir.path(), "train", 240, 1);
  make_sequences(dir.path(), "test", 40, 2);
  std::ofstream(dir.file("p.yaml"))
      << "name: seq\n"
         "plugin_path: ["
      // Relative to the pipeline file: the model directory two levels down must still find it.
      << std::filesystem::relative(kPlugins + "/test_stages", dir.path()).string()
      << "]\n"
         "stages: [test.frames]\n"
         "data: {train: train.tsv, test: test.tsv, labels: transcript,"
         " alphabet: abc}\n"
         "network:\n  layers:\n"
         "    - lstm: {units: 16, bidirectional: 1}\n"
         "    - frame_dense: {units: 4}\n"
         "optimizer: {type: adam, lr: 0.02}\n"
         "training: {epochs: 12, batch: 8, seed: 1, threads: 1}\n"
         "cache: false\n";
  bpkit::TrainRequest r;
  r.config = dir.file("p.yaml");
  r.out_dir = dir.file("runs/seq");
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  CHECK(out.test_error_rate < 0.05);
  CHECK(out.test_accuracy > 0.8);
  // Trusted on purpose: the model's relative plugin_path must resolve from two levels down.
  bpkit::TrainedModel model(dir.file("runs/seq"), {}, /*trust_model_plugins=*/true);
  REQUIRE(model.transcripts());
  const auto entries = bpkit::read_manifest(dir.file("test.tsv"));
  int right = 0;
  for (const auto& e : entries) right += model.predict(e.path).name == e.label;
  CHECK(right >= 32);

  // A dictionary of the right answers can only help; its words match in either case.
  {
    std::ofstream words(dir.file("words.txt"));
    for (const auto& e : entries) {
      std::string upper = e.label;
      for (char& ch : upper) ch = char(std::toupper(static_cast<unsigned char>(ch)));
      words << upper << "\n";
    }
    words << "don't\n";  // not letters only: skipped
  }
  model.use_dictionary(dir.file("words.txt"), 10);
  CHECK(model.dictionary_words() > 0);
  CHECK(model.dictionary_words() <= entries.size());
  int right_dict = 0;
  for (const auto& e : entries) right_dict += model.predict(e.path).name == e.label;
  CHECK(right_dict >= right);
  // One word at an unbounded cost: every line of at least two symbols becomes that word.
  write(dir.file("cab.txt"), "cab\n");
  model.use_dictionary(dir.file("cab.txt"), 1e9);
  CHECK(model.dictionary_words() == 1);
  int cabs = 0, long_lines = 0;
  for (const auto& e : entries) {
    const std::string got = model.predict(e.path).name;
    cabs += got == "cab";
    long_lines += e.label.size() >= 3;
  }
  CHECK(cabs >= long_lines * 9 / 10);
  CHECK(cabs > 0);
  model.use_dictionary(dir.file("words.txt"), 10);
  using Catch::Matchers::Contains;
  CHECK_THROWS_WITH(model.use_dictionary(dir.file("none.txt")),
                    Contains("none.txt: cannot open the dictionary"));
  write(dir.file("xyz.txt"), "xyz\nd0g\n");
  CHECK_THROWS_WITH(model.use_dictionary(dir.file("xyz.txt")), Contains("no usable word"));
  write(dir.file("long.txt"), "abc\n" + std::string(300, 'a') + "\n");
  CHECK_THROWS_WITH(model.use_dictionary(dir.file("long.txt")),
                    Contains("long.txt:2: a line longer than 256 bytes"));
  CHECK_THROWS_AS(model.use_dictionary(dir.file("words.txt"), -1), bpkit::ConfigError);
  CHECK(model.dictionary_words() > 0);  // the earlier dictionary stays after the failures

  // data.alphabet: auto takes the training transcripts' symbols (in byte order); a test
  // transcript with another symbol, or one outside an explicit alphabet, is refused with its line
  // before any feature is computed.
  auto config_with = [&](const std::string& data) {
    std::string text = bpkit_test::read_bytes(dir.file("p.yaml"));
    const std::string from =
        "data: {train: train.tsv, test: test.tsv, labels: transcript,"
        " alphabet: abc}";
    REQUIRE(text.find(from) != std::string::npos);
    text.replace(text.find(from), from.size(), data);
    text.replace(text.find("epochs: 12"), 10, "epochs: 1");
    write(dir.file("q.yaml"), text);
    return dir.file("q.yaml");
  };
  r.config = config_with(
      "data: {train: train.tsv, test: test.tsv, labels: transcript,"
      " alphabet: auto}");
  r.out_dir = dir.file("runs/auto");
  bpkit::train_pipeline(r);
  bpkit::TrainedModel automatic(dir.file("runs/auto"), {}, true);
  CHECK(automatic.classes() == std::vector<std::string>{"a", "b", "c"});
  std::string test_text = bpkit_test::read_bytes(dir.file("test.tsv"));
  write(dir.file("test2.tsv"), test_text + entries[0].path + "\tabd\n");
  r.config = config_with(
      "data: {train: train.tsv, test: test2.tsv, labels: transcript,"
      " alphabet: auto}");
  CHECK_THROWS_WITH(
      bpkit::train_pipeline(r),
      Contains("test2.tsv:41: the transcript 'abd' holds 'd'") && Contains("data.alphabet: auto"));
  r.config = config_with(
      "data: {train: train.tsv, test: test.tsv, labels: transcript,"
      " alphabet: ab}");
  CHECK_THROWS_WITH(bpkit::train_pipeline(r),
                    Contains("train.tsv:") && Contains("holds 'c', which is not in data.alphabet"));
}

TEST_CASE("transcript settings are checked with positions", "[pipeline][ctc]") {
  const std::string base = pipeline_text("  - plugin: test.numbers\n");
  CHECK_THAT(config_error(base + "data: {labels: transcript}\n"),
             Contains("p.yaml:7:7") && Contains("needs data.alphabet"));
  CHECK_THAT(config_error(base + "data: {labels: transcript, alphabet: abca}\n"),
             Contains("holds 'a' twice"));
  CHECK_THAT(config_error(base + "loss: ctc\n"),
             Contains("p.yaml:7:7: loss: ctc learns transcripts"));
  CHECK_THAT(config_error(base + "data: {labels: transcript, alphabet: ab}\nloss: mse\n"),
             Contains("are learned with loss: ctc"));
  CHECK_THAT(config_error(base + "data: {alphabet: ab}\n"),
             Contains("data.alphabet is for transcripts"));
  // decoder: words for every symbol, a grammar that can be met, transcript models only.
  const std::string t = base + "data: {labels: transcript, alphabet: ab}\n";
  CHECK_THAT(config_error(base + "decoder: {beam: 4}\n"),
             Contains("p.yaml:7:1") && Contains("decoder is for transcript models"));
  CHECK_THAT(config_error(t + "decoder: {words: {a: apple, c: cherry}}\n"),
             Contains("p.yaml:8:29") && Contains("'c' is not a symbol of data.alphabet"));
  CHECK_THAT(config_error(t + "decoder: {words: {a: apple}}\n"),
             Contains("has no word for the symbol 'b'"));
  CHECK_THAT(config_error(t + "decoder: {words: [apple, banana]}\n"),
             Contains("decoder.words must map each symbol to its word"));
  CHECK_THAT(config_error(t + "decoder: {min_words: 3, max_words: 2}\n"),
             Contains("decoder.max_words is below decoder.min_words"));
  CHECK_THAT(config_error(t + "decoder: {beam: 0}\n"),
             Contains("decoder.beam = 0 is out of range"));
  CHECK_THAT(config_error(t + "decoder: {min_words: 2}\n"),
             Contains("decoder.min_words needs decoder.max_words"));
  CHECK_THAT(config_error(t + "decoder: {lexicon: x}\n"), Contains("unknown key 'lexicon'"));
  CHECK_THAT(config_error(base + "data: {labels: transcript, alphabet: auto}\n"
                                 "decoder: {words: {a: apple}}\n"),
             Contains("give the alphabet explicitly, not auto"));
  CHECK(
      bpkit::parse_pipeline_config(base + "data: {labels: transcript, alphabet: auto}\n", "p.yaml")
          .alphabet_auto);
  const bpkit::PipelineConfig c = bpkit::parse_pipeline_config(
      t + "decoder: {words: {a: apple, b: banana}, min_words: 1, max_words: 7, beam: 8}\n",
      "p.yaml");
  REQUIRE(c.symbol_words.size() == 2);
  CHECK(c.symbol_words[1] == std::make_pair('b', std::string("banana")));
  CHECK(c.min_words == 1);
  CHECK(c.max_words == 7);
  CHECK(c.beam == 8);
}

namespace {

// Trains a small class model (3 numbers -> classes a/b/c) with `seed` into DIR/runs/NAME.
std::string train_small(bpkit_test::TempDir& dir, const std::string& name, int seed,
                        const std::string& scale = "1", int units = 8, const std::string& out = "",
                        const std::string& extra = "", const std::string& lr = "0.05") {
  if (!std::filesystem::exists(dir.file("train.tsv"))) {
    bpkit::Rng rng(7);
    std::ofstream m(dir.file("train.tsv"));
    for (int i = 0; i < 90; ++i) {
      const int k = i % 3;
      const std::string f = dir.file("x" + std::to_string(i) + ".txt");
      write(f, std::to_string(k + 0.6 * (2 * rng.uniform() - 1)) + " " +
                   std::to_string(2 * rng.uniform() - 1) + " " + std::to_string(2 - k) + "\n");
      m << f << "\t"
        << "abc"[k] << "\n";
    }
  }
  const std::string cfg = dir.file(name + ".yaml");
  const std::string init = extra.empty() ? "" : ", " + extra;
  std::ofstream(cfg) << "name: " << name << "\nplugin_path: [" << kPlugins
                     << "/test_stages]\n"
                        "stages:\n  - plugin: test.numbers\n    params: {scale: "
                     << scale
                     << "}\n"
                        "data: {train: train.tsv}\n"
                        "network:\n  layers:\n    - dense: {units: "
                     << units
                     << "}\n    - tanh\n    - dense: {units: 3}\n"
                        "optimizer: {type: adam, lr: "
                     << lr
                     << "}\n"
                        "training: {epochs: 3, batch: 16, threads: 1, seed: "
                     << seed << init << "}\ncache: false\n";
  bpkit::TrainRequest r;
  r.config = cfg;
  r.out_dir = out.empty() ? dir.file("runs/" + name) : out;
  bpkit::train_pipeline(r);
  return r.out_dir;
}

}  // namespace

TEST_CASE("the network is checked on one sample before the feature pass", "[pipeline]") {
  bpkit_test::TempDir dir("probe");
  // The first sample is good; the second cannot be read, so an error found only after the whole
  // pass would be that file's, not the network's.
  write(dir.file("x0.txt"), "0.5 0.1 1\n");
  write(dir.file("train.tsv"), dir.file("x0.txt") + "\ta\n" + dir.file("missing.txt") + "\tb\n");
  auto error = [&](const std::string& layers) {
    std::ofstream(dir.file("p.yaml")) << "name: probe\nplugin_path: [" << kPlugins
                                      << "/test_stages]\nstages: [test.numbers]\n"
                                         "data: {train: train.tsv, classes: [a, b]}\n"
                                         "network:\n  layers:\n"
                                      << layers << "cache: false\n";
    bpkit::TrainRequest r;
    r.config = dir.file("p.yaml");
    r.out_dir = dir.file("runs/probe");
    try {
      bpkit::train_pipeline(r);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK_THAT(error("    - dense: {units: 3}\n"),
             Contains("p.yaml:7:7: the network ends with shape [3], but there are 2 classes"));
  CHECK_THAT(error("    - conv2d: {filters: 4, kernel: 3}\n    - dense: {units: 2}\n"),
             Contains("p.yaml:7:7") && Contains("conv2d"));
  // A right network reaches the pass, which names the file it cannot read.
  CHECK_THAT(error("    - dense: {units: 2}\n"), Contains("missing.txt"));
}

TEST_CASE("an ensemble predicts the mean of its members' probabilities", "[pipeline][ensemble]") {
  bpkit_test::TempDir dir("ensemble");
  const std::string a = train_small(dir, "a", 1), b = train_small(dir, "b", 2);
  const std::string c = train_small(dir, "c", 3, "1", 5);  // another architecture, same I/O
  const std::string ens = dir.file("ens");
  bpkit::write_ensemble({a, b, c}, ens);
  CHECK(bpkit::member_files(ens).size() == 3);
  bpkit::TrainedModel ma(a, kStageDirs), mb(b, kStageDirs), mc(c, kStageDirs), me(ens, kStageDirs);
  CHECK(ma.members() == 1);
  REQUIRE(me.members() == 3);
  const auto entries = bpkit::read_manifest(dir.file("train.tsv"));
  bool differs = false;
  for (size_t i = 0; i < 12; ++i) {
    const auto pa = ma.predict(entries[i].path), pb = mb.predict(entries[i].path),
               pc = mc.predict(entries[i].path), pe = me.predict(entries[i].path);
    REQUIRE(pe.probabilities.size() == 3);
    for (size_t k = 0; k < 3; ++k)
      CHECK(pe.probabilities[k] ==
            Approx((pa.probabilities[k] + pb.probabilities[k] + pc.probabilities[k]) / 3)
                .epsilon(1e-12));
    differs = differs || pa.probabilities[0] != pb.probabilities[0];
    const auto best = std::max_element(pe.probabilities.begin(), pe.probabilities.end());
    CHECK(pe.label == int(best - pe.probabilities.begin()));
    CHECK(pe.confidence == *best);
  }
  CHECK(differs);  // the members are different networks
  // The batched path (eval) agrees with the one-file path (up to the kernels' summation order).
  std::vector<bpkit::Tensor<float>> feats;
  for (size_t i = 0; i < 12; ++i) feats.push_back(me.pipeline().run(entries[i].path).tensor);
  const auto batch = me.predict(feats);
  for (size_t i = 0; i < 12; ++i)
    for (size_t k = 0; k < 3; ++k)
      CHECK(batch[i].probabilities[k] ==
            Approx(me.predict(entries[i].path).probabilities[k]).margin(1e-6));

  // A smaller ensemble into the same directory removes the stale third member; other files stay.
  write(dir.file("ens/MODEL.md"), "notes\n");
  bpkit::write_ensemble({b, a}, ens);
  CHECK(bpkit::member_files(ens).size() == 2);
  CHECK_FALSE(std::filesystem::exists(dir.file("ens/model.3.bpk")));
  CHECK(std::filesystem::exists(dir.file("ens/MODEL.md")));
  // Training into a directory that holds an ensemble leaves one network.
  train_small(dir, "d", 4, "1", 8, ens);
  CHECK(bpkit::member_files(ens).size() == 1);
  CHECK(bpkit::TrainedModel(ens, kStageDirs).members() == 1);
}

TEST_CASE("ensembles refuse members that do not fit, naming them", "[pipeline][ensemble]") {
  using Catch::Matchers::Contains;
  bpkit_test::TempDir dir("ensemble-bad");
  const std::string a = train_small(dir, "a", 1), b = train_small(dir, "b", 2);
  const std::string scaled = train_small(dir, "scaled", 2, "2");
  CHECK_THROWS_WITH(bpkit::write_ensemble({a, scaled}, dir.file("e1")),
                    Contains(scaled) && Contains("stages differ"));
  CHECK_FALSE(std::filesystem::exists(dir.file("e1/model.bpk")));  // nothing written
  CHECK_THROWS_WITH(bpkit::write_ensemble({a, dir.file("nope")}, dir.file("e1")),
                    Contains("nope") && Contains("not a model directory"));
  bpkit::write_ensemble({a, b}, dir.file("e2"));
  CHECK_THROWS_WITH(bpkit::write_ensemble({dir.file("e2"), a}, dir.file("e3")),
                    Contains("already an ensemble of 2"));

  // Class names that differ: a member whose metadata names other classes.
  auto other = bpkit::load_model<float>(b + "/model.bpk");
  for (auto& kv : other.meta)
    if (kv.first == "class.0") kv.second = "z";
  bpkit::save_model(other.net, dir.file("e2/model.2.bpk"), other.meta);
  CHECK_THROWS_WITH(bpkit::TrainedModel(dir.file("e2")),
                    Contains("model.2.bpk") && Contains("class names differ"));
  // A member with another input shape.
  bpkit::Network<float> wide({4}, 1);
  wide.add(std::make_unique<bpkit::Dense<float>>(3));
  bpkit::save_model(wide, dir.file("e2/model.2.bpk"), other.meta);
  CHECK_THROWS_WITH(bpkit::TrainedModel(dir.file("e2")),
                    Contains("model.2.bpk") && Contains("input [4]"));
  // A gap in the numbering.
  std::filesystem::rename(dir.file("e2/model.2.bpk"), dir.file("e2/model.3.bpk"));
  CHECK_THROWS_WITH(bpkit::TrainedModel(dir.file("e2")),
                    Contains("model.2.bpk is missing") && Contains("model.3.bpk"));
  CHECK_THROWS_WITH(bpkit::member_files(dir.file("e2")), Contains("model.2.bpk is missing"));
}

TEST_CASE("a word list accepts its words in lower case, Capitalized, UPPER case and as written",
          "[pipeline][dictionary]") {
  bpkit_test::TempDir dir("dictionary");
  // The alphabet: ' ', a-z, A-Z (labels 1..53).
  std::vector<std::string> alphabet{" "};
  for (char c = 'a'; c <= 'z'; ++c) alphabet.emplace_back(1, c);
  for (char c = 'A'; c <= 'Z'; ++c) alphabet.emplace_back(1, c);
  auto labels = [&](const std::string& w) {
    std::vector<int32_t> l;
    for (char c : w)
      l.push_back(int32_t(std::find(alphabet.begin(), alphabet.end(), std::string(1, c)) -
                          alphabet.begin() + 1));
    return l;
  };
  write(dir.file("w.txt"), "cat\nParis\nMHz\niPod\ndon't\nI\nx2\n\ncat\r\nZoo\n");
  size_t n = 0;
  const bpkit::LabelFsa fsa = bpkit::dictionary_acceptor(dir.file("w.txt"), alphabet, &n);
  CHECK(n == 6);  // cat, Paris, MHz, iPod, I, Zoo (don't, x2 and the empty line skipped)
  for (const char* w : {"cat", "Cat", "CAT", "paris", "Paris", "PARIS", "MHz", "mhz", "Mhz", "MHZ",
                        "iPod", "ipod", "IPOD", "I", "i", "zoo", "Zoo", "ZOO"}) {
    CAPTURE(w);
    CHECK(fsa.accepts(labels(w)));
  }
  for (const char* w : {"cAT", "CaT", "cAt", "pARIS", "mHz", "IPod", "ca", "cats", "Zo", "dont"}) {
    CAPTURE(w);
    CHECK_FALSE(fsa.accepts(labels(w)));
  }
  // An alphabet without upper case: the words in lower case only.
  const std::vector<std::string> lower(alphabet.begin(), alphabet.begin() + 27);
  const bpkit::LabelFsa low = bpkit::dictionary_acceptor(dir.file("w.txt"), lower, &n);
  CHECK(n == 6);
  CHECK(low.accepts(labels("paris")));
  CHECK(low.accepts(labels("mhz")));
}

TEST_CASE("training.init starts from a trained model's weights", "[pipeline][init]") {
  using Catch::Matchers::Contains;
  bpkit_test::TempDir dir("init");
  const std::string a = train_small(dir, "a", 1);
  // Seed 2 with a learning rate of 1e-12: the weights stay those of `a` (up to 1e-9 or so).
  const std::string b = train_small(dir, "b", 2, "1", 8, "", "init: runs/a", "1e-12");
  const std::string c = train_small(dir, "c", 2, "1", 8, "", "", "1e-12");  // without init
  bpkit::TrainedModel ma(a, kStageDirs), mb(b, kStageDirs), mc(c, kStageDirs);
  const auto entries = bpkit::read_manifest(dir.file("train.tsv"));
  double init_gap = 0, fresh_gap = 0;
  for (size_t i = 0; i < 10; ++i) {
    const auto pa = ma.predict(entries[i].path), pb = mb.predict(entries[i].path),
               pc = mc.predict(entries[i].path);
    for (size_t k = 0; k < 3; ++k) {
      init_gap = std::max(init_gap, std::abs(pa.probabilities[k] - pb.probabilities[k]));
      fresh_gap = std::max(fresh_gap, std::abs(pa.probabilities[k] - pc.probabilities[k]));
    }
  }
  CHECK(init_gap < 1e-6);
  CHECK(fresh_gap > 1e-2);
  const auto& meta = mb.metadata();
  CHECK(std::find(meta.begin(), meta.end(),
                  std::make_pair(std::string("init"), std::string("../a"))) != meta.end());
  // A model file works as well as its directory.
  CHECK_NOTHROW(train_small(dir, "f", 2, "1", 8, "", "init: runs/a/model.bpk", "1e-12"));
  // Another architecture, or no model there: errors naming the key and what differs.
  CHECK_THROWS_WITH(train_small(dir, "d", 1, "1", 5, "", "init: runs/a"),
                    Contains("d.yaml:") && Contains("training.init") &&
                        Contains("layer 1 (dense): a tensor of shape [3,8] there, [3,5] here"));
  CHECK_THROWS_WITH(train_small(dir, "e", 1, "1", 8, "", "init: runs/nothing"),
                    Contains("e.yaml:") && Contains("training.init") && Contains("nothing"));
  // A model of other classes (same shapes) is refused too.
  auto other = bpkit::load_model<float>(a + "/model.bpk");
  for (auto& kv : other.meta)
    if (kv.first == "class.0") kv.second = "z";
  std::filesystem::create_directories(dir.file("runs/z"));
  bpkit::save_model(other.net, dir.file("runs/z/model.bpk"), other.meta);
  CHECK_THROWS_WITH(train_small(dir, "g", 1, "1", 8, "", "init: runs/z"),
                    Contains("training.init") && Contains("its classes differ"));
}

TEST_CASE("an unknown layer kind is named with the closest known one, recurrent kinds included",
          "[pipeline]") {
  bpkit_test::TempDir dir("layer-kinds");
  auto error_for = [&](const std::string& layer) {
    std::ofstream(dir.file("p.yaml")) << "name: k\nplugin_path: [" << kPlugins
                                      << "/test_stages]\nstages: [test.frames]\n"
                                         "data: {train: none.tsv}\nnetwork:\n  layers:\n    - "
                                      << layer << "\n";
    bpkit::TrainRequest r;
    r.config = dir.file("p.yaml");
    r.out_dir = dir.file("out");
    try {
      bpkit::train_pipeline(r);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK_THAT(error_for("lstn: {units: 4}"),
             Contains("p.yaml:7:7: unknown layer 'lstn'") && Contains("did you mean 'lstm'"));
  CHECK_THAT(error_for("frame_dens: {units: 3}"), Contains("did you mean 'frame_dense'"));
  CHECK_THAT(error_for("colums"), Contains("did you mean 'columns'"));
}
