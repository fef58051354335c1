// The feature-plugin SDK: what a plugin library implements and exports.
//
// A feature plugin is one pipeline stage: it consumes one kind of value (a file, an image, audio,
// a feature tensor, ...) and produces one (possibly another) kind, for one sample at a time. A
// shared library holds one or more plugins and exports them with BPKIT_PLUGIN_LIBRARY:
//
//   #include <bpkit/plugin.h>
//   class Invert : public bpkit::FeaturePlugin {
//    public:
//     static bpkit::PluginInfo info() {
//       return {"mylab.invert", "1.0", "replaces each pixel v by 1 - v",
//               bpkit::Kind::kImage, bpkit::Kind::kImage,
//               {{"strength", bpkit::ParamType::kFloat, "1", "how far to invert", 0, 1}}};
//     }
//     void configure(const bpkit::ParamValues& p) override { s_ = p.get_float("strength"); }
//     bpkit::Value process(const bpkit::Value& in) const override { ... }
//    private:
//     double s_ = 1;
//   };
//   BPKIT_PLUGIN_LIBRARY(Invert)
//
// Contract with the host (bpkit's pipeline loader):
// - The host reads the library's ABI version (bpkit_plugin_abi_version) before anything else and
//   refuses a library built against another kPluginAbiVersion.
// - Parameters are validated by the host against info().params before configure() is called: a
//   value of the wrong type, out of [min, max], not among `choices`, or an unknown key is reported
//   with the pipeline file's line and column. configure() receives every declared parameter
//   (defaults filled in) and may throw ParamError(key, why) for checks across parameters; the host
//   adds the position of that key.
// - process() is called concurrently from several threads on different samples after configure():
//   it must not modify the plugin. It throws (any std::exception) to reject a sample; the host
//   reports the sample's file and the message, then stops or skips the sample (`on_error`).
// - The library stays loaded while any plugin object it created is alive.
// - Plugins are compiled with the same compiler family and C++ standard library as the host
//   (the types below cross the library boundary); the ABI version changes whenever they change.
//   It covers tensor.h too: Value embeds Tensor<float>, whose members and allocator (memory a
//   plugin allocates is freed by the program) are part of the ABI. PluginAbiLayout at the end
//   of this header records every member of these types; a change to one fails to compile until
//   its record is changed too, with the version.
// - Loading a library runs its static constructors before the host can read its ABI version: a
//   plugin is trusted native code, loaded only from places the user chose (docs/security.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bpkit/tensor.h"

namespace bpkit {

// Bump on any change to the types or virtual functions in this header, or to the layout of the
// tensor.h types that Value embeds (Tensor, Shape, AlignedAllocator); PluginAbiLayout below holds
// this version's record of every member.
// 2: Audio::offset, Value::seed, random(), fit stages; 3: Value::window, Audio::source_seconds;
// 4: Kind::kText, Value::text
constexpr int kPluginAbiVersion = 4;

// What flows between stages.
enum class Kind : int {
  kFile,       // an input file: path (the pipeline's first stage consumes this)
  kImage,      // one image
  kImageList,  // several images with their boxes in the source (e.g. text lines of a page)
  kAudio,      // mono audio samples
  kFeatures,   // a fixed-shape feature tensor (e.g. {1, 28, 28} or {64})
  kSequence,   // a feature sequence {T, F}: T frames of F features, T varies between samples
  kText,       // UTF-8 text (a word, a sentence): a pipeline whose first stage consumes text reads
               // its inputs as text, not as files (a manifest's first column is the text itself)
};
// "file", "image", "image_list", "audio", "features", "sequence", "text".
inline const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::kFile:
      return "file";
    case Kind::kImage:
      return "image";
    case Kind::kImageList:
      return "image_list";
    case Kind::kAudio:
      return "audio";
    case Kind::kFeatures:
      return "features";
    case Kind::kSequence:
      return "sequence";
    case Kind::kText:
      return "text";
  }
  return "?";
}

// Pixels are float, row-major, channels interleaved (1 = gray, 3 = BGR, 4 = BGRA), nominally in
// [0, 1] whatever the file's bit depth.
struct Image {
  int width = 0, height = 0, channels = 0;
  std::vector<float> pixels;  // width * height * channels
};

struct Box {
  int x = 0, y = 0, width = 0, height = 0;  // in the source image's pixel coordinates
};

struct Audio {
  int sample_rate = 0;         // Hz
  std::vector<float> samples;  // mono, nominally in [-1, 1]
  // Seconds from the start of the source recording to samples[0]: a stage that cuts audio (an
  // endpointer trimming leading silence) adds what it cut, so recognizers report times in the file.
  double offset = 0;
  // The whole source recording's length in seconds, as its reader found it (0: unknown). With a
  // read window (Value::window), the recording's length, not the window's.
  double source_seconds = 0;
};

// kFile: the part of the file to read, for recordings too long to hold at once: a recognizer
// reads them window after window. A reader that supports windows returns the audio from `start`
// for `length` seconds (less at the end of the file, none past it) with Audio::offset = start and
// Audio::source_seconds set, as seamless as one read of the whole file; length 0 reads the file.
struct ReadWindow {
  double start = 0;   // seconds from the start of the file
  double length = 0;  // seconds; 0: the whole file
};

// One value of the given kind; only the members of that kind are meaningful.
struct Value {
  Kind kind = Kind::kFile;
  std::string path;           // kFile: the file to read (kept on later values for messages)
  ReadWindow window;          // kFile: which part of it (readers of long recordings)
  Image image;                // kImage
  std::vector<Image> images;  // kImageList
  std::vector<Box> boxes;     // kImageList: one per image (may be empty)
  Audio audio;                // kAudio
  Tensor<float> tensor;       // kFeatures: any shape; kSequence: {T, F}
  // For random stages (FeaturePlugin::random): 0 outside training (inference, validation, test,
  // cached features), where a random stage must give its input unchanged or its one
  // deterministic result; during training, a seed drawn anew for every sample and epoch, from
  // which the stage draws its augmentation.
  uint64_t seed = 0;
  // kText: the text (UTF-8); `path` holds it too, for messages.
  std::string text;
};

enum class ParamType : int { kBool, kInt, kFloat, kString, kChoice };
// "bool", "int", "float", "string", "choice".
inline const char* param_type_name(ParamType type) {
  switch (type) {
    case ParamType::kBool:
      return "bool";
    case ParamType::kInt:
      return "int";
    case ParamType::kFloat:
      return "float";
    case ParamType::kString:
      return "string";
    case ParamType::kChoice:
      return "choice";
  }
  return "?";
}

struct ParamSpec {
  // A bool, int, float or string parameter; [min, max] bounds int and float values.
  ParamSpec(std::string name_, ParamType type_, std::string default_value_, std::string help_,
            double min_ = -1e300, double max_ = 1e300)
      : name(std::move(name_)),
        type(type_),
        default_value(std::move(default_value_)),
        help(std::move(help_)),
        min(min_),
        max(max_) {}
  // A choice among fixed names.
  ParamSpec(std::string name_, std::vector<std::string> choices_, std::string default_value_,
            std::string help_)
      : name(std::move(name_)),
        type(ParamType::kChoice),
        default_value(std::move(default_value_)),
        help(std::move(help_)),
        choices(std::move(choices_)) {}

  std::string name;
  ParamType type = ParamType::kFloat;
  std::string default_value;  // as it would be written in YAML, e.g. "0.5", "true", "otsu"
  std::string help;
  double min = -1e300, max = 1e300;  // kInt, kFloat: inclusive range
  std::vector<std::string> choices;  // kChoice: the allowed values
};

struct PluginInfo {
  std::string name;     // unique, dotted by family: "image.binarize"
  std::string version;  // the plugin's own version, part of the feature-cache key
  std::string description;
  Kind consumes = Kind::kFile;
  Kind produces = Kind::kFeatures;
  std::vector<ParamSpec> params;
};

// Thrown by configure() to reject a parameter value; the host adds where it was written.
class ParamError : public std::runtime_error {
 public:
  ParamError(std::string key, const std::string& why)
      : std::runtime_error(why), key_(std::move(key)) {}
  const std::string& key() const { return key_; }

 private:
  std::string key_;
};

// Validated parameter values, every declared parameter present (defaults filled in), stored as
// the text written in YAML. The host has checked each against its ParamSpec, so the typed getters
// only fail for an undeclared name (ParamError).
class ParamValues {
 public:
  const std::string& raw(const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw ParamError(name, "no parameter named '" + name + "'");
    return it->second;
  }
  bool get_bool(const std::string& name) const {
    return raw(name) == "true";  // the host accepts only true and false
  }
  long long get_int(const std::string& name) const { return std::stoll(raw(name)); }
  double get_float(const std::string& name) const { return std::stod(raw(name)); }
  std::string get_string(const std::string& name) const { return raw(name); }  // also kChoice
  void set(const std::string& name, const std::string& value) { values_[name] = value; }
  const std::map<std::string, std::string>& all() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

class FeaturePlugin {
 public:
  virtual ~FeaturePlugin() = default;
  // Called once, before any process(), with validated values.
  virtual void configure(const ParamValues& params) { (void)params; }
  // One sample: `in` has the kind info().consumes; returns a value of the kind info().produces.
  virtual Value process(const Value& in) const = 0;
  // True (after configure) for a training-time augmentation stage: it draws from in.seed, which
  // the host sets anew for every sample and epoch while training and to 0 otherwise (see
  // Value::seed). While training, every epoch remakes each training sample's features from its
  // file; only the seed-0 features (validation, test, inference) are cached.
  virtual bool random() const { return false; }

  // Fit stages learn statistics from the training set once (e.g. global mean and variance
  // normalization) and keep them with the model. fits() true (after configure) makes one. While
  // training, before any process(), the host calls fit_add() with every training sample's value
  // as the stages before this one make it (seed 0), one call at a time in manifest order, then
  // fit_finish(), which returns the learned state as text; the host stores it in the model
  // directory and calls fit_load() with it wherever the model is used. process() must refuse to
  // run before fit_finish() or fit_load(). These calls are not concurrent with anything.
  virtual bool fits() const { return false; }
  virtual void fit_add(const Value& in) { (void)in; }
  virtual std::string fit_finish() { return ""; }
  // Throws (std::exception) for a state this plugin cannot read.
  virtual void fit_load(const std::string& state) { (void)state; }
};

// What a library exports for each of its plugins.
struct PluginEntry {
  PluginInfo (*info)();
  FeaturePlugin* (*create)();  // a new object owned by the host (deleted through the vtable)
};

namespace plugin_detail {
template <class P>
PluginInfo info_of() {
  return P::info();
}
template <class P>
FeaturePlugin* create_of() {
  return new P();
}
}  // namespace plugin_detail

// The layouts kPluginAbiVersion stands for. Each record lists a type's data members as version 3
// has them, in order, with their types; the checks below compare offset, type, size and
// alignment member by member, so adding, removing, moving or retyping a member of Value or of
// anything it embeds (including tensor.h's Tensor<float>, a friend of this struct) stops the
// build here. Then bump kPluginAbiVersion and update the record. (Virtual functions and
// ParamValues are covered by the rule above kPluginAbiVersion, not by a check.)
struct PluginAbiLayout {
  struct ReadWindow {
    double start, length;
  };
  struct Image {
    int width, height, channels;
    std::vector<float> pixels;
  };
  struct Box {
    int x, y, width, height;
  };
  struct Audio {
    int sample_rate;
    std::vector<float> samples;
    double offset, source_seconds;
  };
  struct Tensor {
    Shape shape_;
    std::vector<float, AlignedAllocator<float>> data_;
  };
  struct Value {
    Kind kind;
    std::string path;
    bpkit::ReadWindow window;
    bpkit::Image image;
    std::vector<bpkit::Image> images;
    std::vector<bpkit::Box> boxes;
    bpkit::Audio audio;
    bpkit::Tensor<float> tensor;
    uint64_t seed;
    std::string text;
  };
  struct ParamSpec {
    std::string name;
    ParamType type;
    std::string default_value, help;
    double min, max;
    std::vector<std::string> choices;
  };
  struct PluginInfo {
    std::string name, version, description;
    Kind consumes, produces;
    std::vector<bpkit::ParamSpec> params;
  };
  struct PluginEntry {
    bpkit::PluginInfo (*info)();
    FeaturePlugin* (*create)();
  };
  static_assert(std::is_same_v<Shape, std::vector<int64_t>> &&
                    AlignedAllocator<float>::kAlignment == 64 &&
                    std::is_empty_v<AlignedAllocator<float>>,
                "tensor.h's Shape or AlignedAllocator changed: bump kPluginAbiVersion (plugin.h)");

#define BPKIT_ABI_TYPE(T, R)                                                                 \
  static_assert(                                                                             \
      std::is_standard_layout_v<T> && sizeof(T) == sizeof(R) && alignof(T) == alignof(R), #T \
      " changed size or alignment: bump kPluginAbiVersion and update its record "            \
      "in PluginAbiLayout (plugin.h)")
#define BPKIT_ABI_MEMBER(T, R, m)                                                         \
  static_assert(                                                                          \
      offsetof(T, m) == offsetof(R, m) && std::is_same_v<decltype(T::m), decltype(R::m)>, \
      #T "::" #m                                                                          \
         " moved or changed type: bump kPluginAbiVersion and update its record "          \
         "in PluginAbiLayout (plugin.h)")
  BPKIT_ABI_TYPE(bpkit::ReadWindow, ReadWindow);
  BPKIT_ABI_MEMBER(bpkit::ReadWindow, ReadWindow, start);
  BPKIT_ABI_MEMBER(bpkit::ReadWindow, ReadWindow, length);
  BPKIT_ABI_TYPE(bpkit::Image, Image);
  BPKIT_ABI_MEMBER(bpkit::Image, Image, width);
  BPKIT_ABI_MEMBER(bpkit::Image, Image, height);
  BPKIT_ABI_MEMBER(bpkit::Image, Image, channels);
  BPKIT_ABI_MEMBER(bpkit::Image, Image, pixels);
  BPKIT_ABI_TYPE(bpkit::Box, Box);
  BPKIT_ABI_MEMBER(bpkit::Box, Box, x);
  BPKIT_ABI_MEMBER(bpkit::Box, Box, y);
  BPKIT_ABI_MEMBER(bpkit::Box, Box, width);
  BPKIT_ABI_MEMBER(bpkit::Box, Box, height);
  BPKIT_ABI_TYPE(bpkit::Audio, Audio);
  BPKIT_ABI_MEMBER(bpkit::Audio, Audio, sample_rate);
  BPKIT_ABI_MEMBER(bpkit::Audio, Audio, samples);
  BPKIT_ABI_MEMBER(bpkit::Audio, Audio, offset);
  BPKIT_ABI_MEMBER(bpkit::Audio, Audio, source_seconds);
  BPKIT_ABI_TYPE(bpkit::Tensor<float>, Tensor);
  BPKIT_ABI_MEMBER(bpkit::Tensor<float>, Tensor, shape_);
  BPKIT_ABI_MEMBER(bpkit::Tensor<float>, Tensor, data_);
  BPKIT_ABI_TYPE(bpkit::Value, Value);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, kind);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, path);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, window);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, image);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, images);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, boxes);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, audio);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, tensor);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, seed);
  BPKIT_ABI_MEMBER(bpkit::Value, Value, text);
  BPKIT_ABI_TYPE(bpkit::ParamSpec, ParamSpec);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, name);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, type);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, default_value);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, help);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, min);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, max);
  BPKIT_ABI_MEMBER(bpkit::ParamSpec, ParamSpec, choices);
  BPKIT_ABI_TYPE(bpkit::PluginInfo, PluginInfo);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, name);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, version);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, description);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, consumes);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, produces);
  BPKIT_ABI_MEMBER(bpkit::PluginInfo, PluginInfo, params);
  BPKIT_ABI_TYPE(bpkit::PluginEntry, PluginEntry);
  BPKIT_ABI_MEMBER(bpkit::PluginEntry, PluginEntry, info);
  BPKIT_ABI_MEMBER(bpkit::PluginEntry, PluginEntry, create);
#undef BPKIT_ABI_MEMBER
#undef BPKIT_ABI_TYPE
};

}  // namespace bpkit

// Exported symbol names (Boost.DLL aliases).
#define BPKIT_PLUGIN_ABI_SYMBOL "bpkit_plugin_abi_version"
#define BPKIT_PLUGIN_ENTRIES_SYMBOL "bpkit_plugin_entries"

#include <boost/dll/alias.hpp>

namespace bpkit::plugin_detail {
template <class... P>
std::vector<PluginEntry> entries_of() {
  return {PluginEntry{&info_of<P>, &create_of<P>}...};
}
}  // namespace bpkit::plugin_detail

// Exports the listed plugin classes (each with `static PluginInfo info()` and a default
// constructor) and the ABI version. Use once per library, at namespace scope.
#define BPKIT_PLUGIN_LIBRARY(...)                                              \
  namespace bpkit_plugin_exports {                                             \
  inline int abi_version() {                                                   \
    return ::bpkit::kPluginAbiVersion;                                         \
  }                                                                            \
  inline std::vector<::bpkit::PluginEntry> entries() {                         \
    return ::bpkit::plugin_detail::entries_of<__VA_ARGS__>();                  \
  }                                                                            \
  }                                                                            \
  BOOST_DLL_ALIAS(bpkit_plugin_exports::abi_version, bpkit_plugin_abi_version) \
  BOOST_DLL_ALIAS(bpkit_plugin_exports::entries, bpkit_plugin_entries)
