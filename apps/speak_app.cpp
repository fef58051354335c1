// speak_app: English text → each word's letters with the sounds they make, and speech of those
// sounds, with the shipped letters-to-sounds model (models/g2p) or another pronouncer.
//
//   speak_app [--model DIR] [--json] [--wav OUT.wav] [--play] [--spell] [TEXT...]
//
// Exit codes: 0 success, 1 a word could not be pronounced or audio not written, 2 usage or
// model errors.
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <sndfile.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/plugin_host.h"
#include "bpkit/pronounce.h"
#include "bpkit/threading.h"
#include "bpkit/train.h"
#include "bpkit/version.h"
#include "cli.h"

using bpkit::cli::UsageError;

namespace {

const char* kUsage =
    "usage: speak_app [options] [TEXT...]\n"
    "\n"
    "Reads English text (the arguments as one sentence, or standard input, one sentence a line)\n"
    "and prints, for every word, its letters with the sound each makes, as ARPAbet phonemes\n"
    "('-' a silent letter, two phonemes joined by _ one letter's two sounds), then the word's\n"
    "phonemes:\n"
    "    phone  p h o n e → F - OW N -  /F OW N/\n"
    "Numbers are spelled out (42 → forty two), punctuation around words is dropped, hyphens\n"
    "separate words; a word with a letter outside a-z (é, ß) is refused, naming it.\n"
    "\n"
    "  --model DIR        a letters-to-sounds model directory (default: the shipped 'g2p')\n"
    "  --json             one JSON object per sentence: its words, each with its letters\n"
    "                     (symbol, phonemes, probability and the runners-up), phonemes and\n"
    "                     confidence\n"
    "  --wav OUT.wav      speak the sentences with the predicted phonemes (espeak-ng's voice\n"
    "                     reading them through its phoneme input, not its own spelling rules)\n"
    "                     into a 16-bit WAV file, written atomically\n"
    "  --play             speak them on the sound card (espeak-ng's audio output)\n"
    "  --spell            with --wav or --play: enunciate each letter, the sound of one letter\n"
    "                     at a time with a pause between them\n"
    "  --threads N        engine threads (default: BPKIT_NUM_THREADS, else 1)\n"
    "  --plugin-path DIR  also load feature plugins from DIR (repeatable)\n"
    "  --trust-model-plugins\n"
    "                     also load plugins from the directories the model's pipeline.yaml\n"
    "                     names (plugin_path): native code chosen by the model (docs/security.md)\n"
    "  -h, --help         this help\n"
    "  --version          the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 when every word was pronounced; 1 when a word could not be (said on stderr;\n"
    "the others are still printed) or the audio could not be made; 2 for a usage or model error\n"
    "(no text at all is a usage error).\n";

// espeak-ng's synchronous output, collected by the callback.
std::vector<short>* g_samples = nullptr;
int collect(short* wav, int n, espeak_EVENT*) {
  if (wav && n > 0 && g_samples) g_samples->insert(g_samples->end(), wav, wav + n);
  return 0;
}

// espeak-ng phoneme input for one sentence: each word's phonemes in [[...]], or each letter's.
std::string phoneme_text(const std::vector<bpkit::Pronouncer::Word>& words, bool spell) {
  std::string out;
  for (const auto& w : words) {
    if (!spell) {
      if (!w.phonemes.empty()) out += "[[" + bpkit::espeak_phonemes(w.phonemes) + "]] ";
      continue;
    }
    for (const auto& l : w.letters) {
      const bpkit::Phonemes p = bpkit::symbol_phonemes(l.symbol);
      if (!p.empty()) out += "[[" + bpkit::espeak_phonemes(p) + "]], ";
    }
    out += ". ";
  }
  return out;
}

// Speaks `text` (espeak-ng phoneme input) into a WAV file (atomically) or on the sound card.
void speak(const std::string& text, const std::string& wav, bool play) {
  espeak_ng_InitializePath(nullptr);
  if (espeak_ng_Initialize(nullptr) != ENS_OK)
    throw std::runtime_error("cannot start espeak-ng (is espeak-ng-data installed?)");
  if (play) {
    if (espeak_ng_InitializeOutput(ENOUTPUT_MODE_SPEAK_AUDIO, 0, nullptr) != ENS_OK)
      throw std::runtime_error("cannot open the sound card (no audio device?); use --wav OUT.wav");
  } else if (espeak_ng_InitializeOutput(ENOUTPUT_MODE_SYNCHRONOUS, 0, nullptr) != ENS_OK) {
    throw std::runtime_error("cannot start espeak-ng's output");
  }
  if (espeak_SetVoiceByName("gmw/en-US") != EE_OK)
    throw std::runtime_error("espeak-ng has no en-us voice");
  std::vector<short> samples;
  g_samples = play ? nullptr : &samples;
  struct Reset {
    ~Reset() { g_samples = nullptr; }
  } reset;
  espeak_SetSynthCallback(collect);
  if (espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0,
                   espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE, nullptr, nullptr) != EE_OK)
    throw std::runtime_error("espeak-ng could not speak the phonemes");
  espeak_Synchronize();
  const int rate = espeak_ng_GetSampleRate();
  espeak_ng_Terminate();
  if (play) return;
  if (samples.empty()) throw std::runtime_error("espeak-ng said nothing");
  // Atomically: a temporary file beside OUT, renamed over it when complete.
  const std::string tmp = wav + ".tmp." + std::to_string(::getpid());
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) throw bpkit::FileError(wav + ": cannot write (" + sf_strerror(nullptr) + ")");
  const sf_count_t n = sf_write_short(f, samples.data(), sf_count_t(samples.size()));
  const int closed = sf_close(f);
  std::error_code ec;
  if (n != sf_count_t(samples.size()) || closed != 0) {
    std::filesystem::remove(tmp, ec);
    throw bpkit::FileError(wav + ": cannot write the audio (disk full?)");
  }
  std::filesystem::rename(tmp, wav, ec);
  if (ec) {
    std::filesystem::remove(tmp, ec);
    throw bpkit::FileError(wav + ": cannot write (" + ec.message() + ")");
  }
}

std::string joined(const std::vector<std::string>& v, const char* sep = " ") {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

nlohmann::ordered_json word_json(const bpkit::Pronouncer::Word& w,
                                 const std::vector<std::string>& classes) {
  nlohmann::ordered_json letters = nlohmann::json::array();
  for (size_t i = 0; i < w.letters.size(); ++i) {
    const auto& l = w.letters[i];
    // The runners-up: the next most probable symbols (up to 3 with probability >= 0.01).
    std::vector<size_t> order(classes.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = k;
    const std::vector<double>& p = w.probabilities[i];
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    nlohmann::ordered_json alt = nlohmann::json::array();
    for (size_t k = 1; k < order.size() && k <= 3 && p[order[k]] >= 0.01; ++k)
      alt.push_back({{"symbol", classes[order[k]]}, {"probability", p[order[k]]}});
    letters.push_back({{"letter", std::string(1, l.letter)},
                       {"symbol", l.symbol},
                       {"phonemes", bpkit::symbol_phonemes(l.symbol)},
                       {"probability", l.confidence},
                       {"alternatives", alt}});
  }
  return {{"word", w.word},
          {"letters", letters},
          {"phonemes", w.phonemes},
          {"confidence", w.confidence}};
}

int run(int argc, char** argv) {
  std::vector<std::string> args;
  std::multimap<std::string, std::string> all;
  auto o =
      bpkit::cli::parse_options(argc, argv, 1, {"model", "threads", "plugin-path", "wav"}, args,
                                {"json", "play", "spell", "help", "trust-model-plugins"}, &all);
  if (o.count("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  const bool json = o.count("json") > 0, play = o.count("play") > 0, spell = o.count("spell") > 0;
  if (spell && !play && !o.count("wav"))
    throw UsageError("--spell is how --wav or --play speak; give one of them");
  if (play && o.count("wav"))
    throw UsageError("--play speaks on the sound card, --wav into a file: give one of them");
  if (o.count("wav") && o["wav"].empty()) throw UsageError("--wav needs a file name");
  // --threads, else BPKIT_NUM_THREADS, else one thread.
  if (o.count("threads") || !std::getenv("BPKIT_NUM_THREADS"))
    bpkit::set_num_threads(int(bpkit::cli::integer(o, "threads", 1, 1, 256)));
  bpkit::check_environment();  // BPKIT_NUM_THREADS, BPKIT_ISA: exit 2 before any work
  // The sentences: the arguments as one, or standard input's lines.
  std::vector<std::string> sentences;
  if (!args.empty()) {
    sentences.push_back(joined(args));
  } else {
    if (::isatty(0)) throw UsageError("no text given (as arguments or on standard input)");
    for (std::string line; std::getline(std::cin, line);) sentences.push_back(line);
  }
  bool any = false;
  for (const std::string& s : sentences)
    any = any || s.find_first_not_of(" \t\r") != std::string::npos;
  if (!any) throw UsageError("no text given (the input is empty)");

  const std::string dir = o.count("model") ? o["model"] : bpkit::shipped_model_dir("g2p");
  if (dir.empty())
    throw UsageError(
        "the shipped model 'g2p' was not found (set BPKIT_MODEL_PATH or give --model DIR)");
  std::unique_ptr<bpkit::Pronouncer> p;
  try {
    p = std::make_unique<bpkit::Pronouncer>(dir, bpkit::cli::all_values(all, "plugin-path"),
                                            o.count("trust-model-plugins") > 0);
  } catch (const std::exception& e) {
    throw UsageError(e.what());
  }

  int failures = 0;
  std::vector<bpkit::Pronouncer::Word> spoken;
  for (const std::string& sentence : sentences) {
    // Blank-separated pieces one at a time: a word that is refused does not take the rest of the
    // sentence with it.
    std::vector<std::string> words;
    std::istringstream pieces(sentence);
    for (std::string piece; pieces >> piece;) {
      try {
        for (std::string& w : bpkit::text_words(piece)) words.push_back(std::move(w));
      } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "speak_app: %s\n", e.what());
        ++failures;
      }
    }
    nlohmann::ordered_json jw = nlohmann::json::array();
    for (const std::string& word : words) {
      try {
        const bpkit::Pronouncer::Word w = p->pronounce(word);
        if (json) {
          jw.push_back(word_json(w, p->classes()));
        } else {
          std::vector<std::string> letters, symbols;
          for (const auto& l : w.letters) {
            letters.emplace_back(1, l.letter);
            symbols.push_back(l.symbol);
          }
          std::printf("%s  %s → %s  /%s/\n", w.word.c_str(), joined(letters).c_str(),
                      joined(symbols).c_str(), joined(w.phonemes).c_str());
        }
        spoken.push_back(w);
      } catch (const std::invalid_argument& e) {
        std::fprintf(stderr, "speak_app: '%s': %s\n", word.c_str(), e.what());
        ++failures;
      }
    }
    if (json)
      std::printf("%s\n", nlohmann::ordered_json{{"text", sentence}, {"words", jw}}
                              .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                              .c_str());
  }
  std::fflush(stdout);
  if ((play || o.count("wav")) && !spoken.empty()) {
    speak(phoneme_text(spoken, spell), o.count("wav") ? o["wav"] : "", play);
    if (o.count("wav")) std::fprintf(stderr, "speech: %s\n", o["wav"].c_str());
  }
  return failures ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "speak_app")) return 0;
  try {
    return run(argc, argv);
  } catch (const bpkit::EnvironmentError& e) {  // BPKIT_NUM_THREADS, BPKIT_ISA
    std::fprintf(stderr, "speak_app: %s\n", e.what());
    return 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "speak_app: %s (see 'speak_app --help')\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "speak_app: %s\n", e.what());
    return 1;
  }
}
