// g2p_bench: letters to sounds on held-out words (bench/run.sh g2p): phoneme and word error rates
// and words per second (one thread) of pronouncer models, and of espeak-ng's own spelling rules
// (libespeak-ng's text-to-phonemes, its mnemonics mapped to ARPAbet as docs/g2p.md documents).
#include <espeak-ng/speak_lib.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "bpkit/pronounce.h"
#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "tool_args.h"

namespace {

const char* const kProgram = "g2p_bench";
const char* const kHelp =
    "usage: g2p_bench --dict HELDOUT.dict [--model DIR]... [--espeak] [--show N]\n"
    "\n"
    "Scores letters-to-sounds on a CMUdict-format dictionary (each word against its closest\n"
    "pronunciation): phoneme error rate (edits / reference phonemes), word error rate, and\n"
    "words per second on one thread, for each --model (a pronouncer directory) and, with\n"
    "--espeak, for espeak-ng's own rules (en-us). One line per system:\n"
    "  NAME per=... wer=... words=... words_per_s=...\n"
    "\n"
    "  --dict FILE     the held-out words (make_g2p's heldout.dict)\n"
    "  --model DIR     a pronouncer model directory (repeatable)\n"
    "  --espeak        also score espeak-ng's own spelling rules\n"
    "  --show N        print the first N words each system gets wrong (on stderr)\n"
    "  -h, --help      this text\n"
    "  --version       the version\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

using Clock = std::chrono::steady_clock;

std::string joined(const bpkit::Phonemes& p) {
  std::string s;
  for (const std::string& x : p) s += (s.empty() ? "" : " ") + x;
  return s;
}

void report(const std::string& name, const bpkit::PronunciationScore& s, double seconds,
            const std::string& extra = "") {
  std::printf("%s per=%.4f wer=%.4f words=%lld words_per_s=%.0f%s\n", name.c_str(), s.per(),
              s.wer(), static_cast<long long>(s.words), double(s.words) / seconds, extra.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] {
    std::string dict;
    std::vector<std::string> models;
    bool espeak = false;
    long long show = 0;
    bpkit_tools::ArgReader args{kProgram, argc, argv};
    for (args.i = 1; args.i < argc; ++args.i) {
      const std::string a = argv[args.i];
      if (a == "-h" || a == "--help") {
        std::fputs(kHelp, stdout);
        return 0;
      } else if (a == "--dict") {
        dict = args.value();
      } else if (a == "--model") {
        models.push_back(args.value());
      } else if (a == "--espeak") {
        espeak = true;
      } else if (a == "--show") {
        show = args.number("--show", args.value(), 0, 1000000);
      } else {
        bpkit_tools::usage_error(kProgram, "unknown option '" + a + "'");
      }
    }
    if (dict.empty()) bpkit_tools::usage_error(kProgram, "--dict HELDOUT.dict is required");
    if (models.empty() && !espeak)
      bpkit_tools::usage_error(kProgram, "give --model DIR or --espeak");
    bpkit::set_num_threads(1);
    const std::vector<bpkit::DictEntry> words = bpkit::read_dictionary(dict);
    for (const std::string& m : models) {
      bpkit::Pronouncer p(m);
      bpkit::PronunciationScore s;
      long long shown = 0;
      // The words in one call (batched, as evaluation runs them); the time includes reading the
      // letters and turning symbols into phonemes.
      std::vector<std::string> spellings;
      for (const bpkit::DictEntry& e : words) spellings.push_back(e.word);
      const auto t0 = Clock::now();
      const std::vector<bpkit::Pronouncer::Word> all = p.pronounce(spellings);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      for (size_t i = 0; i < words.size(); ++i) {
        const bpkit::DictEntry& e = words[i];
        const bpkit::Phonemes& got = all[i].phonemes;
        const int64_t before = s.word_errors;
        s.add(got, e.pronunciations);
        if (s.word_errors > before && shown++ < show)
          std::fprintf(stderr, "%s: %s -> %s (CMUdict: %s)\n", m.c_str(), e.word.c_str(),
                       joined(got).c_str(), joined(e.pronunciations[0]).c_str());
      }
      report(m, s, seconds);
    }
    if (espeak) {
      if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, 0) <= 0 ||
          espeak_SetVoiceByName("gmw/en-US") != EE_OK)
        return bpkit_tools::fail(kProgram, "espeak-ng", "cannot start it with the en-us voice");
      bpkit::PronunciationScore s;
      size_t unknown = 0;
      long long shown = 0;
      const auto t0 = Clock::now();
      for (const bpkit::DictEntry& e : words) {
        std::string mnemonics;
        const void* text = e.word.c_str();
        // Phoneme names separated by '|' (bits 8-23), so that each maps whole.
        while (text) {
          const char* ph = espeak_TextToPhonemes(&text, espeakCHARS_UTF8, int('|') << 8);
          if (ph) mnemonics += std::string(ph) + "|";
        }
        const bpkit::Phonemes got = bpkit::arpabet_from_espeak(mnemonics, &unknown);
        const int64_t before = s.word_errors;
        s.add(got, e.pronunciations);
        if (s.word_errors > before && shown++ < show)
          std::fprintf(stderr, "espeak-ng: %s -> %s = %s (CMUdict: %s)\n", e.word.c_str(),
                       mnemonics.c_str(), joined(got).c_str(), joined(e.pronunciations[0]).c_str());
      }
      report("espeak-ng", s, std::chrono::duration<double>(Clock::now() - t0).count(),
             " unknown_mnemonics=" + std::to_string(unknown));
      espeak_Terminate();
    }
    return 0;
  });
}
