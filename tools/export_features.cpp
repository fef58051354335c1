// export_features: runs a pipeline's feature stages over the files of a manifest and writes the
// features as a Kaldi archive (with an optional scp) or as Sphinx cepstrum files, so Kaldi or
// Sphinx tools (or another bpkit pipeline, through sequence.read) can use them. See --help.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/features.h"
#include "bpkit/pipeline.h"
#include "bpkit/train.h"
#include "bpkit/version.h"
#include "feature_files.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

const char* const kProgram = "export_features";

const char* const kHelp =
    "usage: export_features CONFIG.yaml|MODEL_DIR MANIFEST\n"
    "                       (--ark OUT.ark [--scp OUT.scp] [--text] | --mfc-dir DIR "
    "[--big-endian])\n"
    "                       [--upto N] [--plugin-path DIR]... [--trust-model-plugins]\n"
    "\n"
    "Runs the feature stages of a pipeline file (or of a model directory's pipeline.yaml) on "
    "every\n"
    "file of MANIFEST and writes each file's features, keyed by the file's name without its\n"
    "directory and extension (the stem; stems must be unique and free of blanks).\n"
    "\n"
    "MANIFEST  one file per line, \"PATH\" or \"PATH<TAB>LABEL\" (labels are ignored); blank lines "
    "and\n"
    "          lines starting with '#' are skipped; relative paths are relative to the manifest.\n"
    "\n"
    "Output (one of):\n"
    "  --ark OUT.ark     a Kaldi archive of float matrices (binary, as `copy-feats` writes)\n"
    "  --scp OUT.scp     with --ark: also the script file (KEY OUT.ark:BYTE_OFFSET lines)\n"
    "  --text            with --ark: a text archive (9 significant digits)\n"
    "  --mfc-dir DIR     one Sphinx cepstrum file per input, DIR/STEM.mfc (created when missing)\n"
    "  --big-endian      with --mfc-dir: big-endian files (default: little-endian, as sphinx_fe "
    "on\n"
    "                    x86/ARM)\n"
    "\n"
    "Options:\n"
    "  --upto N          run only the first N stages (e.g. up to audio.mfcc, without deltas and\n"
    "                    normalization); the N-th stage must produce a sequence or features\n"
    "  --plugin-path DIR also load feature plugins from DIR (repeatable)\n"
    "  --trust-model-plugins\n"
    "                    with a MODEL_DIR: also load plugins from the directories its\n"
    "                    pipeline.yaml names (plugin_path; a pipeline file named directly is\n"
    "                    always searched there); see docs/security.md\n"
    "  -h, --help        this text\n"
    "  --version         the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Features are {frames, features} sequences (a 1-D feature vector is written as one row). "
    "Every\n"
    "output file is written atomically (a temporary file, then renamed). Exit status: 0 success,\n"
    "1 failure (a file the stages reject, a bad pipeline file, an unwritable output), 2 usage\n"
    "error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "%s: %s (run '%s --help' for usage)\n", kProgram, msg.c_str(), kProgram);
  std::exit(2);
}

struct Options {
  std::string config, manifest, ark, scp, mfc_dir;
  bool text = false, big_endian = false, trust_model_plugins = false;
  long long upto = 0;  // 0: all stages
  std::vector<std::string> plugin_dirs;
};

Options parse(int argc, char** argv) {
  Options o;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  std::vector<std::string> positional;
  for (args.i = 1; args.i < argc; ++args.i) {
    const std::string a = argv[args.i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    } else if (a == "--ark") {
      o.ark = args.value();
    } else if (a == "--scp") {
      o.scp = args.value();
    } else if (a == "--text") {
      o.text = true;
    } else if (a == "--mfc-dir") {
      o.mfc_dir = args.value();
    } else if (a == "--big-endian") {
      o.big_endian = true;
    } else if (a == "--upto") {
      o.upto = args.number("--upto", args.value(), 1, 1000);
    } else if (a == "--plugin-path") {
      o.plugin_dirs.push_back(args.value());
    } else if (a == "--trust-model-plugins") {
      o.trust_model_plugins = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2)
    usage_error("expected a pipeline file (or model directory) and a manifest, got " +
                std::to_string(positional.size()) + " argument(s)");
  o.config = positional[0];
  o.manifest = positional[1];
  if (o.ark.empty() == o.mfc_dir.empty())
    usage_error("give one output: --ark OUT.ark or --mfc-dir DIR");
  if (!o.scp.empty() && o.ark.empty()) usage_error("--scp goes with --ark");
  if (o.text && o.ark.empty()) usage_error("--text goes with --ark");
  if (o.big_endian && o.mfc_dir.empty()) usage_error("--big-endian goes with --mfc-dir");
  if (!o.scp.empty() && fs::path(o.scp) == fs::path(o.ark))
    usage_error("--scp and --ark name the same file");
  return o;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// "PATH" or "PATH<TAB>LABEL" (or "PATH LABEL" when PATH itself is not a file) lines.
std::vector<bpkit::ManifestEntry> read_file_list(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot read the manifest");
  const fs::path dir = fs::path(path).parent_path();
  std::vector<bpkit::ManifestEntry> out;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    bpkit::ManifestEntry e;
    e.where = path + ":" + std::to_string(no);
    std::string p = t;
    const size_t tab = t.find('\t');
    if (tab != std::string::npos) {
      p = trim(t.substr(0, tab));
      e.label = trim(t.substr(tab + 1));
    }
    fs::path resolved = fs::path(p).is_relative() ? dir / p : fs::path(p);
    if (tab == std::string::npos && !fs::exists(resolved) && t.find(' ') != std::string::npos) {
      p = t.substr(0, t.find(' '));
      e.label = trim(t.substr(t.find(' ') + 1));
      resolved = fs::path(p).is_relative() ? dir / p : fs::path(p);
    }
    e.path = resolved.lexically_normal().string();
    out.push_back(std::move(e));
  }
  if (in.bad()) throw std::runtime_error(path + ": cannot read the manifest");
  if (out.empty()) throw std::runtime_error(path + ": the manifest lists no files");
  return out;
}

bpkit::Tensor<float> as_matrix(bpkit::Tensor<float> t, const std::string& file) {
  if (t.rank() == 1) t.reshape({1, t.dim(0)});
  if (t.rank() != 2 || t.dim(0) < 1 || t.dim(1) < 1)
    throw std::runtime_error(file + ": the stages produced features of shape " +
                             bpkit::to_string(t.shape()) +
                             ", not a {frames, features} matrix; use --upto to stop at a stage "
                             "that makes a sequence");
  return t;
}

int run(const Options& o) {
  // The pipeline: a file, or a model directory's copy.
  std::string config_file = o.config;
  if (fs::is_directory(o.config)) {
    config_file = (fs::path(o.config) / "pipeline.yaml").string();
    if (!fs::exists(config_file))
      throw std::runtime_error(o.config +
                               ": a directory without pipeline.yaml (not a model "
                               "directory)");
  }
  bpkit::PipelineConfig config = bpkit::load_pipeline_config(config_file, /*need_network=*/false);
  if (config.stages.empty()) throw std::runtime_error(config_file + ": the pipeline has no stages");
  if (o.upto > 0) {
    if (size_t(o.upto) > config.stages.size())
      usage_error("--upto " + std::to_string(o.upto) + ", but " + config_file + " has " +
                  std::to_string(config.stages.size()) + " stage(s)");
    config.stages.resize(size_t(o.upto));
  }
  // A pipeline file the user named may name plugin directories; a model directory's may not,
  // unless the user says so (docs/security.md).
  bpkit::PluginRegistry registry;
  if (fs::is_directory(o.config)) {
    bpkit::load_model_plugins(registry, config, o.plugin_dirs, o.trust_model_plugins);
  } else {
    const std::vector<std::string> needed = bpkit::stage_plugins(config);
    bpkit::load_plugins(registry, config.plugin_path, o.plugin_dirs, &needed);
  }
  bpkit::Pipeline pipeline(config, registry, /*network_input=*/false);
  // A model directory's fit stages (sequence.global_cmvn) use what they learned in training.
  if (fs::is_directory(o.config)) bpkit::load_fit_states(o.config, pipeline);
  const bpkit::Kind out_kind = pipeline.output_kind();
  if (out_kind != bpkit::Kind::kSequence && out_kind != bpkit::Kind::kFeatures) {
    std::string stages;
    for (size_t i = 0; i < pipeline.stages().size(); ++i)
      stages += "\n  " + std::to_string(i + 1) + ": " + pipeline.stages()[i].plugin + " -> " +
                bpkit::kind_name(pipeline.stages()[i].info.produces);
    throw std::runtime_error(
        config_file + ": the last stage run ('" + pipeline.stages().back().plugin + "') produces " +
        bpkit::kind_name(out_kind) +
        ", not features; stop at a stage that makes a sequence with --upto:" + stages);
  }

  // Keys (stems) first: a clash is found before any work.
  const std::vector<bpkit::ManifestEntry> entries = read_file_list(o.manifest);
  std::map<std::string, std::string> seen;  // stem -> where
  for (const bpkit::ManifestEntry& e : entries) {
    const std::string stem = fs::path(e.path).stem().string();
    if (!bpkit_audio::is_kaldi_key(stem) || stem == "." || stem == "..")
      throw std::runtime_error(e.where + ": '" + stem +
                               "' (the file's stem) cannot be a key: empty, or with blanks or "
                               "control characters; rename the file");
    const auto [it, fresh] = seen.emplace(stem, e.where);
    if (!fresh)
      throw std::runtime_error(e.where + ": the stem '" + stem + "' is also the key of " +
                               it->second + "; keys must be unique");
  }
  auto key_of = [](const bpkit::ManifestEntry& e) { return fs::path(e.path).stem().string(); };

  // The outputs before the work: an unwritable destination fails at once. (The archive's
  // temporary files are removed unless it is committed.)
  std::unique_ptr<bpkit_audio::KaldiArkWriter> ark;
  if (!o.ark.empty()) {
    bpkit_audio::KaldiArkWriter::Options wo;
    wo.text = o.text;
    ark = std::make_unique<bpkit_audio::KaldiArkWriter>(o.ark, o.scp, wo);
  } else {
    fs::create_directories(o.mfc_dir);
  }

  bpkit::ExtractOptions xo;  // no cache, stop at the first failure
  bpkit::FeatureSet set = bpkit::extract_features(pipeline, entries, xo);

  int64_t frames = 0, dim = -1;
  bool mixed = false;
  if (ark) {
    bpkit_audio::KaldiArkWriter& writer = *ark;
    for (size_t i = 0; i < set.features.size(); ++i) {
      const bpkit::Tensor<float> m = as_matrix(std::move(set.features[i]), set.entries[i].path);
      writer.write(key_of(set.entries[i]), m);
      frames += m.dim(0);
      mixed = mixed || (dim >= 0 && dim != m.dim(1));
      dim = m.dim(1);
    }
    writer.commit();
  } else {
    // Check all shapes before writing any file.
    std::vector<bpkit::Tensor<float>> ms;
    for (size_t i = 0; i < set.features.size(); ++i)
      ms.push_back(as_matrix(std::move(set.features[i]), set.entries[i].path));
    for (size_t i = 0; i < ms.size(); ++i) {
      bpkit_audio::write_sphinx_mfc(
          (fs::path(o.mfc_dir) / (key_of(set.entries[i]) + ".mfc")).string(), ms[i],
          o.big_endian ? bpkit_audio::ByteOrder::kBig : bpkit_audio::ByteOrder::kLittle);
      frames += ms[i].dim(0);
      mixed = mixed || (dim >= 0 && dim != ms[i].dim(1));
      dim = ms[i].dim(1);
    }
  }
  std::printf("%s: %zu file(s), %lld frame(s) of %s feature(s) -> %s%s%s\n", kProgram,
              set.features.size(), static_cast<long long>(frames),
              mixed ? "varying" : std::to_string(dim).c_str(),
              o.ark.empty() ? (o.mfc_dir + "/*.mfc").c_str() : o.ark.c_str(),
              o.scp.empty() ? "" : " + ", o.scp.c_str());
  if (!o.mfc_dir.empty() && dim != 13 && !mixed)
    std::printf("%s: note: Sphinx readers need -ceplen/-ncep %lld for these files\n", kProgram,
                static_cast<long long>(dim));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "export_features")) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(parse(argc, argv)); });
}
