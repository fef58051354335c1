// make_g2p: letters-to-sounds data from CMUdict (Debian's pocketsphinx-en-us): the fixed held-out
// split, every letter aligned with the sound it makes, and manifests for `bpkit train`. See --help.
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/model_file.h"
#include "bpkit/pronounce.h"
#include "bpkit/version.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

const char* const kProgram = "make_g2p";
const char* const kDefaultDict = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";
const char* const kAlphabet = "abcdefghijklmnopqrstuvwxyz'-.";

const char* const kHelp =
    "usage: make_g2p --out DIR [--dict FILE] [--iterations N]\n"
    "\n"
    "Makes letters-to-sounds data from a CMUdict-format pronunciation dictionary (default: "
    "Debian's\n"
    "pocketsphinx-en-us, /usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict; ~134 000 words,\n"
    "39 ARPAbet phonemes, stress removed). Words with characters other than a-z ' - . are left\n"
    "out. A word is held out when XXH64(its spelling, seed 0) mod 10 is 0 (about 10%; check one\n"
    "with `printf %s WORD | xxhsum -H64`, package xxhash: the hexadecimal number mod 10): held-out\n"
    "words are never trained or tuned on.\n"
    "\n"
    "Every letter gets the sound it makes: an aligner learned by expectation-maximization on the\n"
    "training words alone gives each letter silence (-), one phoneme, or two joined by _ (the x\n"
    "of 'box' is K_S), in order, so a word of n letters has n symbols.\n"
    "\n"
    "Writes (atomically):\n"
    "  DIR/train.tsv     WORD<TAB>SYMBOLS for the training words (first pronunciation)\n"
    "  DIR/heldout.tsv   the same for the held-out words (a model's test set)\n"
    "  DIR/heldout.dict  the held-out words with every pronunciation, in CMUdict format: what\n"
    "                    `bpkit eval MODEL DIR/heldout.dict` scores (phoneme and word error "
    "rates)\n"
    "  DIR/alignment.tsv LETTER<TAB>SYMBOL<TAB>PROBABILITY, what the aligner learned\n"
    "\n"
    "Options:\n"
    "  --out DIR         the output directory (created when missing)\n"
    "  --dict FILE       the dictionary\n"
    "  --iterations N    EM iterations (default 8)\n"
    "  -h, --help        this text\n"
    "  --version         the version\n"
    "\n"
    "Exit status: 0 success, 1 failure (an unreadable dictionary, an unwritable output), 2 usage\n"
    "error.\n";

struct Options {
  std::string out, dict = kDefaultDict;
  int iterations = 8;
};

Options parse(int argc, char** argv) {
  Options o;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (args.i = 1; args.i < argc; ++args.i) {
    const std::string a = argv[args.i];
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      std::exit(0);
    } else if (a == "--out") {
      o.out = args.value();
    } else if (a == "--dict") {
      o.dict = args.value();
    } else if (a == "--iterations") {
      o.iterations = int(args.number("--iterations", args.value(), 1, 100));
    } else if (a.size() > 1 && a[0] == '-') {
      bpkit_tools::usage_error(kProgram, "unknown option '" + a + "'");
    } else {
      bpkit_tools::usage_error(kProgram, "unexpected argument '" + a + "'");
    }
  }
  if (o.out.empty()) bpkit_tools::usage_error(kProgram, "--out DIR is required");
  return o;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

int run(const Options& o) {
  const std::vector<bpkit::DictEntry> dict = bpkit::read_dictionary(o.dict);
  std::vector<const bpkit::DictEntry*> train, heldout;
  size_t refused = 0;
  for (const bpkit::DictEntry& e : dict) {
    if (e.word.find_first_not_of(kAlphabet) != std::string::npos) {
      ++refused;
      continue;
    }
    (bpkit::heldout_word(e.word) ? heldout : train).push_back(&e);
  }
  // The aligner learns from the training words' pronunciations only.
  std::vector<std::pair<std::string, bpkit::Phonemes>> pairs;
  for (const bpkit::DictEntry* e : train)
    for (const bpkit::Phonemes& p : e->pronunciations) pairs.emplace_back(e->word, p);
  bpkit::LetterAligner aligner;
  bpkit::LetterAligner::Options ao;
  ao.iterations = o.iterations;
  aligner.train(pairs, ao);

  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) return bpkit_tools::fail(kProgram, o.out, "cannot create the directory: " + ec.message());
  std::set<std::string> symbols;
  // The held-out manifest keeps the words whose symbols the training words use (a model cannot
  // output another); heldout.dict keeps every held-out word.
  auto manifest = [&](const std::vector<const bpkit::DictEntry*>& words, size_t* unaligned,
                      bool training) {
    std::string text;
    for (const bpkit::DictEntry* e : words) {
      const std::vector<std::string> s = aligner.align(e->word, e->pronunciations[0]);
      bool known = !s.empty();
      for (const std::string& x : s) known = known && (training || symbols.count(x));
      if (!known) {
        ++*unaligned;
        continue;
      }
      if (training)
        for (const std::string& x : s) symbols.insert(x);
      text += e->word + "\t" + join(s) + "\n";
    }
    return text;
  };
  size_t unaligned_train = 0, unaligned_heldout = 0;
  const std::string train_tsv = manifest(train, &unaligned_train, true);
  const std::string heldout_tsv = manifest(heldout, &unaligned_heldout, false);
  std::string heldout_dict;
  for (const bpkit::DictEntry* e : heldout)
    for (size_t k = 0; k < e->pronunciations.size(); ++k)
      heldout_dict += e->word + (k ? "(" + std::to_string(k + 1) + ")" : "") + " " +
                      join(e->pronunciations[k]) + "\n";
  std::ostringstream table;
  for (const auto& [key, p] : aligner.table())
    if (p >= 1e-4) table << key.first << "\t" << key.second << "\t" << p << "\n";
  bpkit::write_file_atomically((fs::path(o.out) / "train.tsv").string(), train_tsv);
  bpkit::write_file_atomically((fs::path(o.out) / "heldout.tsv").string(), heldout_tsv);
  bpkit::write_file_atomically((fs::path(o.out) / "heldout.dict").string(), heldout_dict);
  bpkit::write_file_atomically((fs::path(o.out) / "alignment.tsv").string(), table.str());
  std::printf(
      "%zu words in %s (%zu with other characters left out): %zu training, %zu held out\n"
      "aligned: %zu training words (%zu could not align), %zu held-out words in heldout.tsv (%zu "
      "could not, or need a symbol no training word has; heldout.dict has them all); %zu letter "
      "symbols\n",
      dict.size(), o.dict.c_str(), refused, train.size(), heldout.size(),
      train.size() - unaligned_train, unaligned_train, heldout.size() - unaligned_heldout,
      unaligned_heldout, symbols.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(parse(argc, argv)); });
}
