// speech_app: the words spoken in audio files, with the shipped connected-digit recognizer
// (models/speech_digits) or another speech model directory.
//
//   speech_app [--model DIR] [--json] [--spectrogram OUT.png] [--features] [--segment]
//              [--threads N] [--plugin-path DIR]... [--trust-model-plugins] FILE...
//
// Exit codes: 0 success, 1 a file could not be read or recognized (the others are still
// processed), 2 usage or model errors.
#include <malloc.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/plugin_host.h"
#include "bpkit/speech.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "cli.h"
#include "stdin_input.h"

using bpkit::cli::UsageError;

namespace {

const char* kUsage =
    "usage: speech_app [options] FILE...\n"
    "\n"
    "Prints the words spoken in each audio file, lower case and separated by spaces; with several\n"
    "files, one line per file: 'FILE: words'. Audio: WAV (PCM 8/16/24/32-bit or float), FLAC,\n"
    "OGG and whatever else libsndfile reads, at any sample rate; stereo is mixed down. A FILE\n"
    "of '-' is read from standard input.\n"
    "The shipped model recognizes connected digits: 'zero' to 'nine' and 'oh', 1 to 7 words.\n"
    "\n"
    "  --model DIR        a speech model directory (default: the shipped 'speech_digits')\n"
    "  --json             one JSON object per file (JSON Lines): file, text, confidence,\n"
    "                     duration (seconds) and the words with start and end (seconds in the\n"
    "                     file) and confidence; a file that fails gets {file, error}\n"
    "  --spectrogram PNG  write the log-mel spectrogram with the recognized words marked (one\n"
    "                     file; with several, PNG gets each file's number: out.png -> out.2.png)\n"
    "  --features         the files hold features, not audio: Kaldi archives (.ark, .scp: the\n"
    "                     first matrix) or Sphinx cepstra (.mfc), as the model's first feature\n"
    "                     stage makes them (the shipped model: sphinx_fe's defaults, e.g.\n"
    "                     sphinx_fe -i in.wav -o in.mfc -mswav yes -dither no)\n"
    "  --segment          cut each recording into utterances at pauses (0.3 s), one line\n"
    "                     (one JSON object) each: 'START-END: words', seconds in the file.\n"
    "                     Recordings longer than 30 s are always cut, read 30 s at a time,\n"
    "                     so that any length runs in bounded memory\n"
    "  --threads N        engine threads (default: BPKIT_NUM_THREADS, else 1: one utterance is\n"
    "                     too small to share)\n"
    "  --plugin-path DIR  also load feature plugins from DIR (repeatable)\n"
    "  --trust-model-plugins\n"
    "                     also load plugins from the directories the model's pipeline.yaml\n"
    "                     names (plugin_path): native code chosen by the model (docs/security.md)\n"
    "  -h, --help         this help\n"
    "  --version          the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 when every file was recognized; 1 when a file, or an utterance cut from\n"
    "one, could not be read or recognized (said on stderr; the rest is still printed); 2 for a\n"
    "usage, model or plugin error.\n";

int run(int argc, char** argv) {
  std::vector<std::string> files;
  std::multimap<std::string, std::string> all;
  auto o = bpkit::cli::parse_options(
      argc, argv, 1, {"model", "threads", "plugin-path", "spectrogram"}, files,
      {"json", "features", "segment", "help", "trust-model-plugins"}, &all);
  if (o.count("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (files.empty()) throw UsageError("no audio file given");
  const bool json = o.count("json") > 0, features = o.count("features") > 0;
  if (features && std::find(files.begin(), files.end(), "-") != files.end())
    throw UsageError("--features tells a file's format by its name; '-' (standard input) is audio");
  std::unique_ptr<bpkit_apps::StdinInput> stdin_copy;
  try {
    stdin_copy = std::make_unique<bpkit_apps::StdinInput>(files);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const std::string png = o.count("spectrogram") ? o["spectrogram"] : "";
  if (!png.empty() && features)
    throw UsageError("--spectrogram needs audio; --features files hold no audio");
  if (o.count("segment") && features)
    throw UsageError("--segment cuts audio; --features files hold no audio");
  if (o.count("segment") && !png.empty())
    throw UsageError(
        "--spectrogram draws a whole file as one utterance; it cannot be combined "
        "with --segment");
  bpkit::SegmentOptions segment;
  segment.always = o.count("segment") > 0;
  // --threads, else BPKIT_NUM_THREADS, else one thread.
  if (o.count("threads") || !std::getenv("BPKIT_NUM_THREADS"))
    bpkit::set_num_threads(int(bpkit::cli::integer(o, "threads", 1, 1, 256)));
  bpkit::check_environment();  // BPKIT_NUM_THREADS, BPKIT_ISA: exit 2 before any work
  std::string dir = o.count("model") ? o["model"] : bpkit::shipped_model_dir("speech_digits");
  if (dir.empty())
    throw bpkit::FileError(
        "the shipped model 'speech_digits' is not installed (looked in $BPKIT_MODEL_PATH and "
        "<program dir>/../share/bpkit/models); give --model DIR");
  bpkit::UtteranceRecognizer rec(dir, bpkit::cli::all_values(all, "plugin-path"),
                                 o.count("trust-model-plugins") > 0);

  int failures = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    const std::string& file = files[i];
    const std::string& path = stdin_copy->path(file);
    try {
      // One line (or JSON object) per utterance: the whole file, or each one cut from it.
      bool part_failed = false;
      auto print = [&](const bpkit::Utterance& u) {
        const bool cut = u.end > 0;
        if (!u.error.empty()) {  // one utterance of a long recording; the others go on
          part_failed = true;
          const std::string error = stdin_copy->shown(u.error);
          char span[64];
          std::snprintf(span, sizeof span, " (%.2f-%.2f s)", u.start, u.end);
          std::fprintf(stderr, "speech_app: %s%s; going on with the rest of the file\n",
                       error.c_str(), span);
          if (json)
            std::printf("%s\n",
                        nlohmann::ordered_json{
                            {"file", file}, {"start", u.start}, {"end", u.end}, {"error", error}}
                            .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                            .c_str());
          std::fflush(stdout);
          return;
        }
        if (json) {
          nlohmann::ordered_json j = {{"file", file}};
          if (cut) {
            j["start"] = u.start;
            j["end"] = u.end;
          }
          j["text"] = u.text;
          j["confidence"] = u.confidence;
          j["duration"] = u.seconds;
          j["words"] = nlohmann::ordered_json::array();
          for (const bpkit::RecognizedWord& w : u.words)
            j["words"].push_back({{"word", w.word},
                                  {"start", w.start},
                                  {"end", w.end},
                                  {"confidence", w.confidence}});
          std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        } else {
          std::string head = files.size() > 1 ? file + ": " : "";
          if (cut) {
            char span[64];
            std::snprintf(span, sizeof span, "%.2f-%.2f: ", u.start, u.end);
            head += span;
          }
          std::printf("%s%s\n", head.c_str(), u.text.c_str());
        }
        std::fflush(stdout);  // a long recording's utterances appear as they are recognized
      };
      if (features) {
        print(rec.recognize_feature_file(file));
      } else if (!png.empty()) {  // the picture needs the whole recording's words at once
        const bpkit::Utterance u = rec.recognize(path);
        std::string out = png;
        if (i > 0) {  // out.png -> out.2.png
          const size_t dot = png.rfind('.');
          const std::string n = "." + std::to_string(i + 1);
          out = dot == std::string::npos || png.find('/', dot) != std::string::npos
                    ? png + n
                    : png.substr(0, dot) + n + png.substr(dot);
        }
        rec.write_spectrogram(path, u, out);
        print(u);
      } else {
        rec.recognize_stream(path, print, segment);
      }
      if (part_failed) ++failures;
    } catch (const std::exception& e) {
      // StageError and FileError name the file; others do not.
      std::string msg = stdin_copy->shown(e.what());
      if (msg.rfind(file, 0) != 0) msg = file + ": " + msg;
      std::fprintf(stderr, "speech_app: %s\n", msg.c_str());
      if (json)
        std::printf("%s\n", nlohmann::ordered_json{{"file", file}, {"error", msg}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      ++failures;
    }
  }
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    std::fprintf(stderr, "speech_app: cannot write the results: %s\n", std::strerror(errno));
    return 1;
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "speech_app")) return 0;
  // Blocks of 128 KB and more straight from the kernel, always: zeroed pages that cost nothing
  // until written, so the network's unused gradient buffers are never touched (glibc's adaptive
  // threshold would take them from the heap and clear them).
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  try {
    return run(argc, argv);
  } catch (const bpkit::EnvironmentError& e) {  // BPKIT_NUM_THREADS, BPKIT_ISA
    std::fprintf(stderr, "speech_app: %s\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "speech_app: %s (see 'speech_app --help')\n", e.what());
    return 2;
  } catch (const bpkit::ConfigError& e) {
    std::fprintf(stderr, "speech_app: %s\n", e.what());
    return 2;
  } catch (const bpkit::FileError& e) {
    std::fprintf(stderr, "speech_app: %s\n", e.what());
    return 2;
  } catch (const bpkit::PluginError& e) {  // the model's plugins cannot be loaded
    std::fprintf(stderr, "speech_app: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "speech_app: %s\n", e.what());
    return 1;
  }
}
