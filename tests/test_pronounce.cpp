// Letters to sounds (pronounce.h): the dictionary reader, the held-out rule, the letter aligner,
// scoring, the text.letters stage, frame labels in the pipeline, and a pronouncer trained end to
// end on a small invented spelling system whose rules need the letters around each letter.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "bpkit/error.h"
#include "bpkit/features.h"
#include "bpkit/plugin_host.h"
#include "bpkit/pronounce.h"
#include "bpkit/train.h"
#include "temp_dir.h"

using Catch::Matchers::Contains;

namespace {

const std::string kPluginDir = BPKIT_TEXT_PLUGIN_DIR;

void write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The invented spelling system: c is S before e or i and K elsewhere; a final e is silent; x is
// K S (one letter, two sounds); o is AA before t, else OW; the rest one sound each.
bpkit::Phonemes toy_sounds(const std::string& w, std::vector<std::string>* symbols = nullptr) {
  bpkit::Phonemes out;
  std::vector<std::string> sym;
  for (size_t i = 0; i < w.size(); ++i) {
    const char c = w[i];
    const char next = i + 1 < w.size() ? w[i + 1] : 0;
    std::string s;
    switch (c) {
      case 'c':
        s = next == 'e' || next == 'i' ? "S" : "K";
        break;
      case 'e':
        s = next == 0 ? "-" : "EH";
        break;
      case 'x':
        s = "K_S";
        break;
      case 'o':
        s = next == 't' ? "AA" : "OW";
        break;
      case 'a':
        s = "AE";
        break;
      case 'i':
        s = "IH";
        break;
      case 't':
        s = "T";
        break;
      case 's':
        s = "S";
        break;
      case 'b':
        s = "B";
        break;
      default:
        s = "?";
    }
    sym.push_back(s);
    for (const std::string& p : bpkit::symbol_phonemes(s)) out.push_back(p);
  }
  if (symbols) *symbols = sym;
  return out;
}

std::vector<std::string> toy_words(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string letters = "abceiostx";
  std::set<std::string> seen;
  std::vector<std::string> out;
  while (out.size() < n) {
    std::string w;
    const size_t len = 3 + rng() % 5;
    for (size_t i = 0; i < len; ++i) w += letters[rng() % letters.size()];
    if (seen.insert(w).second) out.push_back(w);
  }
  return out;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

}  // namespace

TEST_CASE("the dictionary reader merges variants, drops stress and names bad lines", "[g2p]") {
  bpkit_test::TempDir dir("dict");
  write(dir.file("d.dict"),
        ";;; a comment\nREAD R IY1 D\nread(2) R EH1 D\nbox B AA1 K S # a note\n");
  const auto d = bpkit::read_dictionary(dir.file("d.dict"));
  REQUIRE(d.size() == 2);
  CHECK(d[0].word == "read");
  REQUIRE(d[0].pronunciations.size() == 2);
  CHECK(d[0].pronunciations[0] == bpkit::Phonemes{"R", "IY", "D"});
  CHECK(d[0].pronunciations[1] == bpkit::Phonemes{"R", "EH", "D"});
  CHECK(d[1].pronunciations[0] == bpkit::Phonemes{"B", "AA", "K", "S"});
  write(dir.file("bad.dict"), "box B AA K S\nlonely\n");
  CHECK_THROWS_WITH(bpkit::read_dictionary(dir.file("bad.dict")),
                    Contains("bad.dict:2: 'lonely' has no phonemes"));
  write(dir.file("orphan.dict"), "box B AA K S\nfoo(2) F UW\n");
  CHECK_THROWS_WITH(bpkit::read_dictionary(dir.file("orphan.dict")),
                    Contains("orphan.dict:2: 'foo(2)' is a variant of a word not listed"));
  CHECK_THROWS_AS(bpkit::read_dictionary(dir.file("missing.dict")), bpkit::FileError);
}

TEST_CASE("the held-out rule is XXH64 of the spelling mod 10", "[g2p]") {
  // Values from `printf %s WORD | xxhsum -H64`: box d1d61f61ef5c425b (mod 10: 9), through
  // ca310c540ba5ca3c (mod 10: 0).
  CHECK_FALSE(bpkit::heldout_word("box"));
  CHECK(bpkit::heldout_word("through"));
  int held = 0;
  for (const std::string& w : toy_words(5000, 7)) held += bpkit::heldout_word(w);
  CHECK(held > 400);
  CHECK(held < 600);
}

TEST_CASE("letter symbols turn into phonemes", "[g2p]") {
  CHECK(bpkit::symbols_to_phonemes({"F", "-", "OW", "N", "-"}) == bpkit::Phonemes{"F", "OW", "N"});
  CHECK(bpkit::symbols_to_phonemes({"B", "AA", "K_S"}) == bpkit::Phonemes{"B", "AA", "K", "S"});
}

TEST_CASE("the aligner learns which letter makes which sound", "[g2p]") {
  std::vector<std::pair<std::string, bpkit::Phonemes>> pairs;
  for (const std::string& w : toy_words(1500, 11)) pairs.emplace_back(w, toy_sounds(w));
  bpkit::LetterAligner a;
  a.train(pairs);
  int right = 0, total = 0;
  for (const std::string& w : toy_words(300, 12)) {
    std::vector<std::string> want;
    const bpkit::Phonemes ph = toy_sounds(w, &want);
    right += a.align(w, ph) == want;
    ++total;
  }
  CHECK(right == total);
  // "x" makes two sounds in one symbol; a final e none.
  CHECK(a.align("sax", {"S", "AE", "K", "S"}) == std::vector<std::string>{"S", "AE", "K_S"});
  CHECK(a.align("bote", {"B", "AA", "T"}) == std::vector<std::string>{"B", "AA", "T", "-"});
  // More than two phonemes a letter cannot align.
  CHECK(a.align("a", {"AE", "B", "S"}).empty());
  CHECK(std::isinf(a.log_likelihood("a", {"AE", "B", "S"})));
  CHECK(std::isfinite(a.log_likelihood("sax", {"S", "AE", "K", "S"})));
}

TEST_CASE("pronunciations are scored against the closest reference", "[g2p]") {
  bpkit::PronunciationScore s;
  s.add({"R", "EH", "D"}, {{"R", "IY", "D"}, {"R", "EH", "D"}});  // right: the second reference
  s.add({"B", "AA", "K"}, {{"B", "AA", "K", "S"}});               // one deletion in four
  s.add({"T", "UW"}, {{"T", "UW", "Z"}, {"T", "W", "UW"}});       // one edit either way: the
                                                                  // shorter reference counts
  CHECK(s.words == 3);
  CHECK(s.word_errors == 2);
  CHECK(s.phonemes == 3 + 4 + 3);
  CHECK(s.phoneme_edits == 2);
  CHECK(s.per() == Approx(0.2));
  CHECK(s.wer() == Approx(2.0 / 3));
}

TEST_CASE("text.letters codes each letter with its window", "[g2p][plugin]") {
  bpkit::PluginRegistry reg;
  bpkit::load_plugins(reg, {}, {kPluginDir});
  bpkit_test::TempDir dir("letters");
  write(dir.file("p.yaml"),
        "name: t\nstages:\n  - plugin: text.letters\n    params: {alphabet: abc, window: 3}\n");
  const bpkit::PipelineConfig c = bpkit::load_pipeline_config(dir.file("p.yaml"), false);
  bpkit::Pipeline p(c, reg, false);
  CHECK(p.input_kind() == bpkit::Kind::kText);
  const bpkit::Value v = p.run("Cab");
  REQUIRE(v.tensor.shape() == bpkit::Shape{3, 12});  // 3 letters, 3 x (3 symbols + "none")
  // Frame 0 sees (none, c, a); frame 2 (a, b, none).
  const std::vector<int> hot0{3, 4 + 2, 8 + 0}, hot2{0, 4 + 1, 8 + 3};
  for (int k = 0; k < 12; ++k) {
    CHECK(v.tensor[k] == (std::count(hot0.begin(), hot0.end(), k) ? 1.0f : 0.0f));
    CHECK(v.tensor[2 * 12 + k] == (std::count(hot2.begin(), hot2.end(), k) ? 1.0f : 0.0f));
  }
  CHECK_THROWS_WITH(p.run("cad"), Contains("the text 'cad' holds 'd' at byte 3, which is not in "
                                           "the alphabet 'abc'"));
  CHECK_THROWS_WITH(p.run("ab\xc3\xa9"), Contains("'\\xC3'") && Contains("non-ASCII"));
  write(dir.file("even.yaml"),
        "name: t\nstages:\n  - plugin: text.letters\n    params: {window: 4}\n");
  CHECK_THROWS_WITH(
      bpkit::Pipeline(bpkit::load_pipeline_config(dir.file("even.yaml"), false), reg, false),
      Contains("even.yaml:4:14") && Contains("must be odd"));
}

TEST_CASE("a letters-to-sounds model learns rules that need context", "[g2p][learning]") {
  bpkit_test::TempDir dir("g2p");
  std::string train, test, dict;
  const std::vector<std::string> words = toy_words(2600, 21);
  for (size_t i = 0; i < words.size(); ++i) {
    std::vector<std::string> sym;
    const bpkit::Phonemes ph = toy_sounds(words[i], &sym);
    (i < 2400 ? train : test) += words[i] + "\t" + join(sym) + "\n";
    if (i >= 2400) dict += words[i] + " " + join(ph) + "\n";
  }
  write(dir.file("train.tsv"), train);
  write(dir.file("test.tsv"), test);
  write(dir.file("test.dict"), dict);
  write(dir.file("p.yaml"),
        "name: toy\nstages:\n  - plugin: text.letters\n    params: {alphabet: abceiostx}\n"
        "data: {train: train.tsv, test: test.tsv, labels: frames}\n"
        "network:\n  layers:\n    - lstm: {units: 16, bidirectional: 1}\n"
        "    - frame_dense: {units: 11}\n"
        "optimizer: {type: adam, lr: 0.02}\n"
        "training: {epochs: 6, batch: 32, seed: 3}\ncache: false\n");
  bpkit::TrainRequest r;
  r.config = dir.file("p.yaml");
  r.out_dir = dir.file("model");
  r.plugin_dirs = {kPluginDir};
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  CHECK(out.test_accuracy > 0.9);     // whole words right
  CHECK(out.test_error_rate < 0.02);  // letters wrong

  bpkit::Pronouncer p(dir.file("model"), {kPluginDir});
  CHECK(p.classes().size() == 11);  // AA AE B EH IH K K_S OW S T -
  const bpkit::Pronouncer::Word w = p.pronounce("Cite");
  REQUIRE(w.letters.size() == 4);
  CHECK(w.letters[0].letter == 'C');
  CHECK(w.letters[0].symbol == "S");  // c before i
  CHECK(w.letters[3].symbol == "-");  // final e
  CHECK(w.phonemes == bpkit::Phonemes{"S", "IH", "T"});
  CHECK(p.pronounce("box").phonemes == bpkit::Phonemes{"B", "OW", "K", "S"});
  CHECK(w.probabilities.size() == 4);
  CHECK(w.confidence > 0.5);
  CHECK_THROWS_WITH(p.pronounce("cad"), Contains("'d'") && !Contains("stage"));
  const bpkit::PronunciationScore s =
      evaluate_pronouncer(p, bpkit::read_dictionary(dir.file("test.dict")));
  CHECK(s.words == 200);
  CHECK(s.wer() < 0.1);
  CHECK(s.per() < 0.02);
  // An ensemble of two pronouncers averages their letters' probabilities.
  write(dir.file("p2.yaml"), std::string("name: toy2\n") +
                                 "stages:\n  - plugin: text.letters\n    params: {alphabet: "
                                 "abceiostx}\n"
                                 "data: {train: train.tsv, labels: frames}\n"
                                 "network:\n  layers:\n    - lstm: {units: 8, bidirectional: 1}\n"
                                 "    - frame_dense: {units: 11}\n"
                                 "optimizer: {type: adam, lr: 0.02}\n"
                                 "training: {epochs: 2, batch: 32, seed: 4}\ncache: false\n");
  r.config = dir.file("p2.yaml");
  r.out_dir = dir.file("model2");
  bpkit::train_pipeline(r);
  bpkit::write_ensemble({dir.file("model"), dir.file("model2")}, dir.file("ens"));
  bpkit::TrainedModel m1(dir.file("model"), {kPluginDir}), m2(dir.file("model2"), {kPluginDir}),
      me(dir.file("ens"), {kPluginDir});
  REQUIRE(me.members() == 2);
  const bpkit::Tensor<float> f = me.pipeline().run("boxes").tensor;
  const auto a1 = m1.label_frames(f), a2 = m2.label_frames(f), ae = me.label_frames(f);
  REQUIRE(ae.probabilities.size() == 5);
  bool differ = false;
  for (size_t t = 0; t < 5; ++t)
    for (size_t k = 0; k < 11; ++k) {
      CHECK(ae.probabilities[t][k] ==
            Approx((a1.probabilities[t][k] + a2.probabilities[t][k]) / 2).margin(1e-9));
      differ = differ || std::abs(a1.probabilities[t][k] - a2.probabilities[t][k]) > 1e-3;
    }
  CHECK(differ);
  CHECK(bpkit::Pronouncer(dir.file("ens"), {kPluginDir}).pronounce("boxes").letters.size() == 5);
  // Many words in one call give what one word at a time gives (lengths 1 to 12, padded batches).
  {
    const std::vector<std::string> ws{"a", "box", "cite", "obtaiiiiceeexx", "st", "cabbies", "x"};
    const auto batch = p.pronounce(ws);
    for (size_t i = 0; i < ws.size(); ++i) {
      const auto one = p.pronounce(ws[i]);
      CHECK(batch[i].phonemes == one.phonemes);
      for (size_t k = 0; k < one.letters.size(); ++k)
        CHECK(batch[i].letters[k].confidence == Approx(one.letters[k].confidence).margin(1e-5));
    }
  }
  // A fit stage after text.letters learns from the training texts (not from files named so).
  write(dir.file("fit.yaml"),
        "name: toyfit\nstages:\n  - plugin: text.letters\n    params: {alphabet: abceiostx}\n"
        "  - plugin: sequence.global_cmvn\n"
        "data: {train: train.tsv, labels: frames}\n"
        "network:\n  layers:\n    - frame_dense: {units: 11}\n"
        "training: {epochs: 1, batch: 32, seed: 3}\ncache: false\n");
  r.config = dir.file("fit.yaml");
  r.out_dir = dir.file("fit");
  CHECK(bpkit::train_pipeline(r).test_accuracy < 0);  // trained; no test set
  CHECK(std::filesystem::exists(dir.file("fit/fitted.yaml")));
  // Frame labels that do not match the letters are named with their line.
  write(dir.file("bad.tsv"), "bat\tB AE\n");
  write(dir.file("q.yaml"),
        "name: toy\nstages:\n  - plugin: text.letters\n    params: {alphabet: abceiostx}\n"
        "data: {train: bad.tsv, labels: frames, classes: [B, AE, T]}\n"
        "network:\n  layers:\n    - frame_dense: {units: 3}\ncache: false\n");
  r.config = dir.file("q.yaml");
  r.out_dir = dir.file("bad");
  CHECK_THROWS_WITH(bpkit::train_pipeline(r),
                    Contains("bad.tsv:1: 2 frame labels for 3 frames of features"));
}

TEST_CASE("text is read as words: numbers spelled, punctuation dropped, accents refused",
          "[g2p][text]") {
  using V = std::vector<std::string>;
  CHECK(bpkit::text_words("Hello, world!") == V{"Hello", "world"});
  CHECK(bpkit::text_words("don't stop") == V{"don't", "stop"});
  CHECK(bpkit::text_words("it\xE2\x80\x99s well-known") == V{"it's", "well", "known"});
  CHECK(bpkit::text_words("42") == V{"forty", "two"});
  CHECK(bpkit::text_words("1,204,017") ==
        V{"one", "million", "two", "hundred", "four", "thousand", "seventeen"});
  CHECK(bpkit::text_words("3.14") == V{"three", "point", "one", "four"});
  CHECK(bpkit::text_words("007") == V{"zero", "zero", "seven"});
  CHECK(bpkit::text_words("0") == V{"zero"});
  CHECK(bpkit::text_words("you & me: 100%") == V{"you", "and", "me", "one", "hundred", "percent"});
  CHECK(bpkit::text_words("U.S. army") == V{"U.S", "army"});
  CHECK(bpkit::text_words("$12") == V{"twelve", "dollars"});
  CHECK(bpkit::text_words("$1 and $") == V{"one", "dollar", "and", "dollars"});
  CHECK(bpkit::text_words(".5 -5 --7") == V{"point", "five", "minus", "five", "minus", "seven"});
  CHECK(bpkit::text_words("12. 1000001") == V{"twelve", "one", "million", "one"});
  CHECK(bpkit::text_words("110 1,000.5") ==
        V{"one", "hundred", "ten", "one", "thousand", "point", "five"});
  CHECK(bpkit::text_words("\xE2\x80\x9CHello\xE2\x80\x9D, wait\xE2\x80\xA6\xC2\xA0now") ==
        V{"Hello", "wait", "now"});
  CHECK_THROWS_WITH(bpkit::text_words("1,2"), Contains("'1,2' is not a number"));
  CHECK_THROWS_WITH(bpkit::text_words("12,34,567"), Contains("is not a number"));
  CHECK_THROWS_WITH(bpkit::text_words("$x"), Contains("'$x' is not a number"));
  CHECK(bpkit::text_words(" ... -- ").empty());
  CHECK_THROWS_WITH(bpkit::text_words("caf\xC3\xA9 au lait"),
                    Contains("caf") && Contains("outside ASCII"));
  CHECK_THROWS_WITH(bpkit::text_words("the 4th"), Contains("'4th' mixes digits and letters"));
}

TEST_CASE("ARPAbet to espeak-ng mnemonics and back", "[g2p][espeak]") {
  CHECK(bpkit::espeak_phonemes({"TH", "R", "IY"}) == "T|r|'i:");
  CHECK(bpkit::espeak_phonemes({"AH", "B", "AH", "V"}) == "'V|b|@|v");  // the first vowel stressed
  CHECK(bpkit::espeak_phonemes({"B", "ER", "D", "ER"}) == "b|'3:|d|3");
  CHECK_THROWS_WITH(bpkit::espeak_phonemes({"B", "XX"}), Contains("'XX' is not an ARPAbet"));
  size_t unknown = 0;
  CHECK(bpkit::arpabet_from_espeak("f'A:D3", &unknown) == bpkit::Phonemes{"F", "AA", "DH", "ER"});
  CHECK(bpkit::arpabet_from_espeak("tS|'i:|z", &unknown) == bpkit::Phonemes{"CH", "IY", "Z"});
  CHECK(bpkit::arpabet_from_espeak("f'o@", &unknown) == bpkit::Phonemes{"F", "AO", "R"});
  CHECK(bpkit::arpabet_from_espeak("b'V?n-", &unknown) ==
        bpkit::Phonemes{"B", "AH", "T", "AH", "N"});
  CHECK(bpkit::arpabet_from_espeak(",a|b|3|r|'eI", &unknown) ==
        bpkit::Phonemes{"AE", "B", "ER", "EY"});
  CHECK(unknown == 0);
  CHECK(bpkit::arpabet_from_espeak("b|Q|d", &unknown) == bpkit::Phonemes{"B", "D"});
  CHECK(unknown == 1);
  // What espeak_phonemes writes reads back as the same phonemes (but ER R, which reads as ER).
  const bpkit::Phonemes all{"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH",
                            "IY", "OW", "OY", "UH", "UW", "B",  "CH", "D",  "DH", "F",
                            "G",  "HH", "JH", "K",  "L",  "M",  "N",  "NG", "P",  "R",
                            "S",  "SH", "T",  "TH", "V",  "W",  "Y",  "Z",  "ZH"};
  for (const std::string& p : all) {
    const bpkit::Phonemes one{"T", p, "AH"};
    CHECK(bpkit::arpabet_from_espeak(bpkit::espeak_phonemes(one)) == one);
  }
}
