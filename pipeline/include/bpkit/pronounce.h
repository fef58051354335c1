// Letters to sounds: the pronunciation dictionary (CMUdict), its fixed held-out split, the
// letter-to-phoneme alignment that gives every letter the sound it makes, scoring (phoneme and
// word error rates), and the pronouncer that `bpkit eval` and `speak_app` run.
//
// A word's pronunciation is a sequence of ARPAbet phonemes (CMUdict's 39, stress removed). For a
// network that labels letters, each letter gets one symbol: "-" (silent), a phoneme ("F"), or two
// phonemes joined by '_' ("K_S" for the x of "box"), so that a word of n letters has n symbols.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bpkit {

class TrainedModel;

using Phonemes = std::vector<std::string>;

// One headword of the dictionary with its pronunciations in the file's order (the first is the
// main one; "word(2)" lines add the others).
struct DictEntry {
  std::string word;  // lower case, as spelled
  std::vector<Phonemes> pronunciations;
  std::string where;  // "file:line" of its first line
};

// Reads a CMUdict-format file ("WORD PH1 PH2 ..." per line, alternatives as "WORD(2) ...", ";;;"
// comments; stress digits on vowels are removed). Words are lower-cased; entries keep the file's
// order. Throws FileError naming the file and line for a line without phonemes, a variant "(n)"
// before its headword, or an unreadable file.
std::vector<DictEntry> read_dictionary(const std::string& path);

// The fixed held-out split: a word is held out when XXH64(spelling, seed 0) mod 10 is 0 (about 10%
// of the words), whatever file it comes from. Reproduce it with
// `printf %s WORD | xxhsum -H64` (the spelling in lower case; Debian package xxhash; the 64-bit
// hexadecimal number it prints, mod 10).
bool heldout_word(const std::string& word);

// The silent symbol and the joiner of two-phoneme symbols.
constexpr const char* kSilent = "-";
constexpr char kJoin = '_';

// A letter's symbol as phonemes: "-" → none, "K_S" → K S, "F" → F.
Phonemes symbol_phonemes(const std::string& symbol);
// The phonemes of a word's letter symbols, in order.
Phonemes symbols_to_phonemes(const std::vector<std::string>& symbols);

// Learns which letters make which sounds (expectation-maximization over every way of giving each
// letter zero, one or two of the word's phonemes, in order) and aligns words with it (Viterbi).
class LetterAligner {
 public:
  struct Options {
    int iterations = 8;
    // Two-phoneme symbols seen less often than this (expected count) are dropped before the last
    // iterations: rare pairs are more likely misalignments than sounds.
    double min_pair_count = 20;
    // The prior weight of a two-phoneme emission against a single phoneme at the start.
    double pair_prior = 0.05;
  };
  // Trains on (word, phonemes) pairs (words in the alphabet the caller chose, lower case). A pair
  // with more than two phonemes per letter cannot align and is skipped (counted by skipped()).
  void train(const std::vector<std::pair<std::string, Phonemes>>& pairs, const Options& o);
  void train(const std::vector<std::pair<std::string, Phonemes>>& pairs) { train(pairs, {}); }
  // One symbol per letter (see above), the most probable alignment; empty when none exists (too
  // many phonemes, or only through pairs the model dropped).
  std::vector<std::string> align(const std::string& word, const Phonemes& phonemes) const;
  // log p(word's letters emit phonemes), summed over alignments (−∞ when none).
  double log_likelihood(const std::string& word, const Phonemes& phonemes) const;
  size_t skipped() const { return skipped_; }
  // Every symbol with a probability, per letter: (letter, symbol) → p(symbol | letter).
  std::map<std::pair<char, std::string>, double> table() const;

 private:
  // Emission ids: 0 silent, then symbols by name.
  std::map<std::string, int> ids_;
  std::vector<std::string> names_;
  std::vector<std::vector<double>> prob_;  // [letter byte][emission]
  size_t skipped_ = 0;
  int id_of(const std::string& name);
  double p(unsigned char letter, int emission) const;
};

// Phoneme and word error rates: edit distance over phonemes divided by the reference length, and
// the share of words not exactly right, each word scored against its closest reference
// pronunciation (the one with the fewest edits; ties: the shorter).
struct PronunciationScore {
  int64_t words = 0, word_errors = 0;
  int64_t phonemes = 0, phoneme_edits = 0;
  // NaN when nothing was scored.
  double per() const { return phonemes ? double(phoneme_edits) / double(phonemes) : NAN; }
  double wer() const { return words ? double(word_errors) / double(words) : NAN; }
  void add(const Phonemes& hypothesis, const std::vector<Phonemes>& references);
};
int64_t phoneme_edit_distance(const Phonemes& a, const Phonemes& b);

// A trained letters-to-sounds model (a frame-labelling model over text.letters, whose classes are
// letter symbols) and what users ask of it.
class Pronouncer {
 public:
  // Throws FileError/ConfigError like TrainedModel, and ConfigError when the model does not label
  // the letters of text (its pipeline must start with a stage that consumes text and its classes
  // must be letter symbols).
  explicit Pronouncer(const std::string& model_dir,
                      const std::vector<std::string>& plugin_dirs = {},
                      bool trust_model_plugins = false);
  ~Pronouncer();

  struct Letter {
    char letter;
    std::string symbol;  // "-", "F", "K_S"
    double confidence;   // its probability
  };
  struct Word {
    std::string word;  // as given
    std::vector<Letter> letters;
    Phonemes phonemes;
    double confidence = 1;  // the weakest letter's
    // Per letter: every symbol's probability (classes() order), for --json.
    std::vector<std::vector<double>> probabilities;
  };
  // One word (letters of the model's alphabet, any case). Throws std::invalid_argument for an
  // empty word or a character the model's alphabet lacks, naming it.
  Word pronounce(const std::string& word);
  // Many words at once, batched (what the benchmark and evaluation run: far faster than one at a
  // time on one thread); the same results as pronounce() of each, in order. Throws like it for the
  // first word it cannot read.
  std::vector<Word> pronounce(const std::vector<std::string>& words);
  const std::vector<std::string>& classes() const;
  TrainedModel& model() { return *model_; }

 private:
  std::unique_ptr<TrainedModel> model_;
};

// The words of a line of English text, as a pronouncer reads them: split at blanks, hyphens and
// dashes; punctuation around words dropped (inner apostrophes and periods kept: "don't", "u.s.";
// the typographic apostrophe ’ read as ', quotation marks and … as punctuation); numbers spelled
// out ("42" → forty two, "1,204" → one thousand two hundred four, "3.5" → three point five,
// ".5" → point five, "-5" → minus five, "007" and numbers over 12 digits digit by digit, "$5" →
// five dollars ("$1" one dollar), "7%" → seven percent); & % + = @ $ alone read as words. Throws
// std::invalid_argument naming the word for a non-ASCII character (é, ß, ...), a word that mixes
// digits and letters ("4th") or a malformed number ("1,2"). Returns no word for a line of
// punctuation or blanks.
std::vector<std::string> text_words(const std::string& line);

// ARPAbet phonemes in espeak-ng's phoneme mnemonics (en-us), for its phoneme input ([[...]]):
// AA A:, AE a, AH V (stressed) or @, AO O:, AW aU, AY aI, EH E, ER 3: (stressed) or 3, EY eI,
// IH I, IY i:, OW oU, OY OI, UH U, UW u:, CH tS, DH D, HH h, JH dZ, NG N, SH S, TH T, Y j, ZH Z,
// the other consonants in lower case, separated by '|' (espeak-ng's separator, so that T SH is
// not read as CH). CMUdict's stress is not predicted: the first vowel of the word is stressed
// ('). Throws std::invalid_argument for a phoneme that is not ARPAbet.
std::string espeak_phonemes(const Phonemes& arpabet);

// espeak-ng's phoneme mnemonics (`espeak-ng -x`, en-us) in ARPAbet, to score espeak-ng's own
// spelling rules against CMUdict (docs/g2p.md lists the mapping): stress and syllable marks are
// dropped, r-coloured vowels split (O@ → AO R, A@ → AA R, e@ → EH R, i@3 → IH R, U@ → UH R),
// i@ → IY AH, a#, @ and @- → AH, i → IY, 0 → AA, O2 → AO, syllabic @L/l- → AH L and n- → AH N,
// the flap t# → T, the glottal stop ? → T, and an R after ER dropped (espeak-ng's "3r" is
// CMUdict's ER). Unknown mnemonics are skipped and counted in `unknown` (when given).
Phonemes arpabet_from_espeak(const std::string& mnemonics, size_t* unknown = nullptr);

// Scores a pronouncer on dictionary entries (every entry's pronunciations are its references).
PronunciationScore evaluate_pronouncer(Pronouncer& p, const std::vector<DictEntry>& entries);

}  // namespace bpkit
