// Plugins for the host's tests, one source built into several libraries (see tests/CMakeLists.txt):
//   TEST_VARIANT_STAGES     test.numbers (file -> features), test.fail_on, test.image_sink,
//                           test.frames (file -> sequence)
//   TEST_VARIANT_DUPLICATE  another test.numbers (two plugins with one name)
//   TEST_VARIANT_ABI        the right symbols, the wrong ABI version
//   TEST_VARIANT_NO_ENTRIES an ABI version but no plugin list
//   TEST_VARIANT_NOT_PLUGIN a shared library that is not a bpkit plugin
//   TEST_VARIANT_LIFETIME   test.lifetime, built with -fno-gnu-unique so unloading is real
//   TEST_VARIANT_BAD_DEFAULT test.bad_default: a parameter's default outside its own range
#include <bpkit/plugin.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace test_plugins {

using bpkit::Kind;
using bpkit::ParamType;
using bpkit::PluginInfo;
using bpkit::Value;

// Reads whitespace-separated numbers from a text file into a {n} feature vector.
class Numbers : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"test.numbers",
            "1.0",
            "reads whitespace-separated numbers (test plugin)",
            Kind::kFile,
            Kind::kFeatures,
            {{"scale", ParamType::kFloat, "1", "multiplies every number", -100, 100},
             {"count", ParamType::kInt, "0", "expected count (0: any)", 0, 1000},
             {"mode", {"plain", "square"}, "plain", "square the numbers"},
             {"strict", ParamType::kBool, "false", "refuse counts other than `count`"}}};
  }
  void configure(const bpkit::ParamValues& p) override {
    scale_ = p.get_float("scale");
    count_ = p.get_int("count");
    square_ = p.get_string("mode") == "square";
    strict_ = p.get_bool("strict");
    if (strict_ && count_ == 0) throw bpkit::ParamError("strict", "strict needs a count");
  }
  Value process(const Value& in) const override {
    std::ifstream f(in.path);
    if (!f) throw std::runtime_error("cannot open the file");
    std::vector<float> v;
    double x;
    while (f >> x) v.push_back(float((square_ ? x * x : x) * scale_));
    if (!f.eof()) throw std::runtime_error("not a list of numbers");
    if (strict_ && int64_t(v.size()) != count_)
      throw std::runtime_error("expected " + std::to_string(count_) + " numbers, got " +
                               std::to_string(v.size()));
    Value out;
    out.kind = Kind::kFeatures;
    out.tensor.resize({int64_t(v.size())});
    for (size_t i = 0; i < v.size(); ++i) out.tensor[int64_t(i)] = v[i];
    return out;
  }

 private:
  double scale_ = 1;
  long long count_ = 0;
  bool square_ = false, strict_ = false;
};

// Reads a feature sequence: one frame per line, whitespace-separated numbers.
class Frames : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"test.frames", "1.0",           "reads one frame of numbers per line (test plugin)",
            Kind::kFile,   Kind::kSequence, {}};
  }
  Value process(const Value& in) const override {
    std::ifstream f(in.path);
    if (!f) throw std::runtime_error("cannot open the file");
    std::vector<std::vector<float>> frames;
    std::string line;
    while (std::getline(f, line)) {
      std::istringstream ls(line);
      frames.emplace_back();
      double x;
      while (ls >> x) frames.back().push_back(float(x));
      if (frames.back().empty() || frames.back().size() != frames[0].size())
        throw std::runtime_error("frame " + std::to_string(frames.size()) + " is malformed");
    }
    if (frames.empty()) throw std::runtime_error("no frames");
    Value out;
    out.kind = Kind::kSequence;
    out.tensor.resize({int64_t(frames.size()), int64_t(frames[0].size())});
    for (size_t t = 0; t < frames.size(); ++t)
      for (size_t k = 0; k < frames[t].size(); ++k)
        out.tensor[int64_t(t * frames[0].size() + k)] = frames[t][k];
    return out;
  }
};

// Throws on a sample whose first feature equals `bad_value`.
class FailOn : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"test.fail_on",
            "1.0",
            "throws on one value (test plugin)",
            Kind::kFeatures,
            Kind::kFeatures,
            {{"bad_value", ParamType::kFloat, "13", "the value to refuse"}}};
  }
  void configure(const bpkit::ParamValues& p) override { bad_ = p.get_float("bad_value"); }
  Value process(const Value& in) const override {
    if (in.tensor.size() > 0 && double(in.tensor[0]) == bad_)
      throw std::runtime_error("unlucky value " + std::to_string(bad_));
    return in;
  }

 private:
  double bad_ = 13;
};

// Consumes an image: a stage that cannot follow a features stage.
class ImageSink : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"test.image_sink", "1.0",           "consumes images (test plugin)",
            Kind::kImage,      Kind::kFeatures, {}};
  }
  Value process(const Value& in) const override { return in; }
};

#ifdef TEST_VARIANT_LIFETIME
// State whose destructor and methods live in this library: if the library were unloaded while
// the object is alive, calling it or destroying it would jump into unmapped code.
class Lifetime : public bpkit::FeaturePlugin {
 public:
  static PluginInfo info() {
    return {"test.lifetime", "1.0",           "checks library lifetime (test plugin)",
            Kind::kFile,     Kind::kFeatures, {}};
  }
  Value process(const Value&) const override {
    Value out;
    out.kind = Kind::kFeatures;
    out.tensor.resize({int64_t(text_.size())});
    for (size_t i = 0; i < text_.size(); ++i) out.tensor[int64_t(i)] = float(text_[i]);
    return out;
  }

 private:
  std::string text_ = std::string(100, 'x');  // heap-allocated: freed by this library's code
};
#endif

#ifdef TEST_VARIANT_BAD_DEFAULT
// test.numbers whose `count` defaults to 5000, outside its declared range 0-1000.
class BadDefault : public Numbers {
 public:
  static PluginInfo info() {
    PluginInfo i = Numbers::info();
    i.name = "test.bad_default";
    i.params[1].default_value = "5000";
    return i;
  }
};
#endif

}  // namespace test_plugins

#if defined(TEST_VARIANT_STAGES)
BPKIT_PLUGIN_LIBRARY(test_plugins::Numbers, test_plugins::FailOn, test_plugins::ImageSink,
                     test_plugins::Frames)
#elif defined(TEST_VARIANT_DUPLICATE)
BPKIT_PLUGIN_LIBRARY(test_plugins::Numbers)
#elif defined(TEST_VARIANT_LIFETIME)
BPKIT_PLUGIN_LIBRARY(test_plugins::Lifetime)
#elif defined(TEST_VARIANT_ABI)
namespace wrong_abi {
inline int abi_version() {
  return bpkit::kPluginAbiVersion + 998;
}
inline std::vector<bpkit::PluginEntry> entries() {
  return bpkit::plugin_detail::entries_of<test_plugins::Numbers>();
}
}  // namespace wrong_abi
BOOST_DLL_ALIAS(wrong_abi::abi_version, bpkit_plugin_abi_version)
BOOST_DLL_ALIAS(wrong_abi::entries, bpkit_plugin_entries)
#elif defined(TEST_VARIANT_NO_ENTRIES)
namespace no_entries {
inline int abi_version() {
  return bpkit::kPluginAbiVersion;
}
}  // namespace no_entries
BOOST_DLL_ALIAS(no_entries::abi_version, bpkit_plugin_abi_version)
#elif defined(TEST_VARIANT_BAD_DEFAULT)
BPKIT_PLUGIN_LIBRARY(test_plugins::BadDefault)
#elif defined(TEST_VARIANT_NOT_PLUGIN)
extern "C" __attribute__((visibility("default"))) int not_a_plugin() {
  return 42;
}
#endif
