#include "bpkit/pronounce.h"

#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "bpkit/error.h"
#include "bpkit/train.h"

namespace bpkit {

std::vector<DictEntry> read_dictionary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw FileError(path + ": cannot read the dictionary (" + open_failure(path, errno) + ")");
  std::vector<DictEntry> out;
  std::map<std::string, size_t> index;
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind(";;;", 0) == 0) continue;
    if (const size_t hash = line.find(" #"); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string head;
    fields >> head;
    Phonemes phonemes;
    for (std::string ph; fields >> ph;) {
      while (!ph.empty() && std::isdigit(static_cast<unsigned char>(ph.back()))) ph.pop_back();
      if (ph.empty()) continue;
      phonemes.push_back(ph);
    }
    const std::string where = path + ":" + std::to_string(no);
    if (head.empty()) continue;
    if (phonemes.empty()) throw FileError(where + ": '" + head + "' has no phonemes");
    std::string word = head;
    bool variant = false;
    if (word.size() > 3 && word.back() == ')') {
      const size_t open = word.rfind('(');
      if (open != std::string::npos && open > 0) {
        word.resize(open);
        variant = true;
      }
    }
    for (char& ch : word) ch = char(std::tolower(static_cast<unsigned char>(ch)));
    const auto it = index.find(word);
    if (it != index.end()) {
      out[it->second].pronunciations.push_back(std::move(phonemes));
      continue;
    }
    if (variant)
      throw FileError(where + ": '" + head + "' is a variant of a word not listed before it");
    index.emplace(word, out.size());
    out.push_back({word, {std::move(phonemes)}, where});
  }
  if (in.bad()) throw FileError(path + ": read error");
  if (out.empty()) throw FileError(path + ": no word in the dictionary");
  return out;
}

bool heldout_word(const std::string& word) {
  return XXH64(word.data(), word.size(), 0) % 10 == 0;
}

Phonemes symbol_phonemes(const std::string& symbol) {
  Phonemes out;
  if (symbol == kSilent || symbol.empty()) return out;
  size_t start = 0;
  for (size_t k = 0; k <= symbol.size(); ++k)
    if (k == symbol.size() || symbol[k] == kJoin) {
      if (k > start) out.push_back(symbol.substr(start, k - start));
      start = k + 1;
    }
  return out;
}

Phonemes symbols_to_phonemes(const std::vector<std::string>& symbols) {
  Phonemes out;
  for (const std::string& s : symbols)
    for (std::string& p : symbol_phonemes(s)) out.push_back(std::move(p));
  return out;
}

// ---- LetterAligner
// --------------------------------------------------------------------------------

int LetterAligner::id_of(const std::string& name) {
  const auto it = ids_.find(name);
  if (it != ids_.end()) return it->second;
  const int id = int(names_.size());
  ids_.emplace(name, id);
  names_.push_back(name);
  return id;
}

double LetterAligner::p(unsigned char letter, int emission) const {
  if (emission < 0) return 0;
  const std::vector<double>& row = prob_[letter];
  return size_t(emission) < row.size() ? row[size_t(emission)] : 0;
}

namespace {

// The emission of letter i (1-based) ending at phoneme j after k ∈ {0, 1, 2} phonemes.
std::string emission_name(const Phonemes& ph, size_t j, int k) {
  if (k == 0) return kSilent;
  if (k == 1) return ph[j - 1];
  return ph[j - 2] + kJoin + ph[j - 1];
}

}  // namespace

void LetterAligner::train(const std::vector<std::pair<std::string, Phonemes>>& pairs,
                          const Options& o) {
  ids_.clear();
  names_.clear();
  id_of(kSilent);
  prob_.assign(256, {});
  skipped_ = 0;
  // Every word's emission ids per (i, j, k), made once: [i][j][k] flattened.
  struct Word {
    std::vector<unsigned char> letters;
    size_t m;
    std::vector<int> ids;  // (n+1)·(m+1)·3, −1 where k phonemes do not fit
  };
  std::vector<Word> words;
  words.reserve(pairs.size());
  for (const auto& [spelling, ph] : pairs) {
    const size_t n = spelling.size(), m = ph.size();
    if (n == 0 || m > 2 * n) {
      ++skipped_;
      continue;
    }
    Word w;
    w.letters.assign(spelling.begin(), spelling.end());
    w.m = m;
    w.ids.assign((n + 1) * (m + 1) * 3, -1);
    for (size_t i = 1; i <= n; ++i)
      for (size_t j = 0; j <= m; ++j)
        for (int k = 0; k <= 2; ++k)
          if (j >= size_t(k))
            w.ids[(i * (m + 1) + j) * 3 + size_t(k)] = id_of(emission_name(ph, j, k));
    words.push_back(std::move(w));
  }
  // The start: every single phoneme (and silence) alike, pairs at a lower prior weight.
  for (auto& row : prob_) {
    row.assign(names_.size(), 1.0);
    for (size_t e = 1; e < names_.size(); ++e)
      if (names_[e].find(kJoin) != std::string::npos) row[e] = o.pair_prior;
  }
  std::vector<double> alpha, beta;
  for (int it = 0; it < o.iterations; ++it) {
    std::vector<std::vector<double>> count(256, std::vector<double>(names_.size(), 0.0));
    for (const Word& w : words) {
      const size_t n = w.letters.size(), m = w.m, M = m + 1;
      alpha.assign((n + 1) * M, 0.0);
      beta.assign((n + 1) * M, 0.0);
      alpha[0] = 1;
      for (size_t i = 1; i <= n; ++i)
        for (size_t j = 0; j <= m; ++j) {
          double a = 0;
          for (int k = 0; k <= 2 && size_t(k) <= j; ++k)
            a += alpha[(i - 1) * M + j - size_t(k)] *
                 p(w.letters[i - 1], w.ids[(i * M + j) * 3 + size_t(k)]);
          alpha[i * M + j] = a;
        }
      const double z = alpha[n * M + m];
      if (!(z > 0)) continue;  // no alignment under the current model (a dropped pair)
      beta[n * M + m] = 1;
      for (size_t i = n; i >= 1; --i)
        for (size_t j = 0; j <= m; ++j) {
          const double b = beta[i * M + j];
          if (b == 0) continue;
          for (int k = 0; k <= 2 && size_t(k) <= j; ++k) {
            const int e = w.ids[(i * M + j) * 3 + size_t(k)];
            const double pe = p(w.letters[i - 1], e);
            if (pe == 0) continue;
            beta[(i - 1) * M + j - size_t(k)] += pe * b;
            count[w.letters[i - 1]][size_t(e)] += alpha[(i - 1) * M + j - size_t(k)] * pe * b / z;
          }
        }
    }
    // Rare pairs go before the last iterations.
    if (it == o.iterations - 3 || (o.iterations < 3 && it == 0)) {
      std::vector<double> total(names_.size(), 0.0);
      for (const auto& row : count)
        for (size_t e = 0; e < row.size(); ++e) total[e] += row[e];
      for (size_t e = 1; e < names_.size(); ++e)
        if (names_[e].find(kJoin) != std::string::npos && total[e] < o.min_pair_count)
          for (auto& row : count) row[e] = 0;
    }
    for (size_t l = 0; l < 256; ++l) {
      double sum = 0;
      for (double c : count[l]) sum += c;
      for (size_t e = 0; e < names_.size(); ++e) prob_[l][e] = sum > 0 ? count[l][e] / sum : 0;
    }
  }
}

std::vector<std::string> LetterAligner::align(const std::string& word, const Phonemes& ph) const {
  const size_t n = word.size(), m = ph.size(), M = m + 1;
  if (n == 0 || m > 2 * n) return {};
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> best((n + 1) * M, ninf);
  std::vector<int8_t> from((n + 1) * M, -1);
  best[0] = 0;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 0; j <= m; ++j)
      for (int k = 0; k <= 2 && size_t(k) <= j; ++k) {
        const double prev = best[(i - 1) * M + j - size_t(k)];
        if (prev == ninf) continue;
        const auto it = ids_.find(emission_name(ph, j, k));
        const double pe =
            it == ids_.end() ? 0 : p(static_cast<unsigned char>(word[i - 1]), it->second);
        if (pe <= 0) continue;
        const double s = prev + std::log(pe);
        if (s > best[i * M + j]) {
          best[i * M + j] = s;
          from[i * M + j] = int8_t(k);
        }
      }
  if (best[n * M + m] == ninf) return {};
  std::vector<std::string> out(n);
  size_t j = m;
  for (size_t i = n; i >= 1; --i) {
    const int k = from[i * M + j];
    out[i - 1] = emission_name(ph, j, k);
    j -= size_t(k);
  }
  return out;
}

double LetterAligner::log_likelihood(const std::string& word, const Phonemes& ph) const {
  const size_t n = word.size(), m = ph.size(), M = m + 1;
  if (n == 0 || m > 2 * n) return -std::numeric_limits<double>::infinity();
  std::vector<double> alpha((n + 1) * M, 0.0);
  alpha[0] = 1;
  double log_scale = 0;
  for (size_t i = 1; i <= n; ++i) {
    double row_max = 0;
    for (size_t j = 0; j <= m; ++j) {
      double a = 0;
      for (int k = 0; k <= 2 && size_t(k) <= j; ++k) {
        const auto it = ids_.find(emission_name(ph, j, k));
        if (it != ids_.end())
          a += alpha[(i - 1) * M + j - size_t(k)] *
               p(static_cast<unsigned char>(word[i - 1]), it->second);
      }
      alpha[i * M + j] = a;
      row_max = std::max(row_max, a);
    }
    if (row_max == 0) return -std::numeric_limits<double>::infinity();
    for (size_t j = 0; j <= m; ++j) alpha[i * M + j] /= row_max;
    log_scale += std::log(row_max);
  }
  const double z = alpha[n * M + m];
  return z > 0 ? log_scale + std::log(z) : -std::numeric_limits<double>::infinity();
}

std::map<std::pair<char, std::string>, double> LetterAligner::table() const {
  std::map<std::pair<char, std::string>, double> out;
  for (size_t l = 0; l < prob_.size(); ++l)
    for (size_t e = 0; e < prob_[l].size(); ++e)
      if (prob_[l][e] > 0) out[{char(l), names_[e]}] = prob_[l][e];
  return out;
}

// ---- Scoring
// --------------------------------------------------------------------------------------

int64_t phoneme_edit_distance(const Phonemes& a, const Phonemes& b) {
  std::vector<int64_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = int64_t(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = int64_t(i);
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

void PronunciationScore::add(const Phonemes& hypothesis, const std::vector<Phonemes>& references) {
  if (references.empty()) throw std::invalid_argument("a word scored without a reference");
  int64_t best = -1;
  size_t best_len = 0;
  for (const Phonemes& r : references) {
    const int64_t d = phoneme_edit_distance(hypothesis, r);
    if (best < 0 || d < best || (d == best && r.size() < best_len)) {
      best = d;
      best_len = r.size();
    }
  }
  ++words;
  word_errors += best > 0;
  phonemes += int64_t(best_len);
  phoneme_edits += best;
}

// ---- Pronouncer
// -----------------------------------------------------------------------------------

Pronouncer::Pronouncer(const std::string& model_dir, const std::vector<std::string>& plugin_dirs,
                       bool trust_model_plugins)
    : model_(std::make_unique<TrainedModel>(model_dir, plugin_dirs, trust_model_plugins)) {
  if (!model_->frames() || model_->pipeline().input_kind() != Kind::kText)
    throw ConfigError(model_->dir() +
                      ": not a letters-to-sounds model (it must read text, its first stage "
                      "consuming text, and label every letter: data.labels: frames)");
  for (const std::string& c : model_->classes())
    if (c != kSilent && symbol_phonemes(c).empty())
      throw ConfigError(model_->dir() + ": class '" + c + "' is not a letter symbol");
}

Pronouncer::~Pronouncer() = default;

const std::vector<std::string>& Pronouncer::classes() const {
  return model_->classes();
}

namespace {

// The features of one word, with the stage's own words on failure ("the text 'x' holds ...").
Tensor<float> word_features(TrainedModel& model, const std::string& word) {
  if (word.empty()) throw std::invalid_argument("an empty word");
  try {
    return model.pipeline().run(word).tensor;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    const size_t cut = msg.find("failed: ");
    throw std::invalid_argument(cut == std::string::npos ? msg : msg.substr(cut + 8));
  }
}

}  // namespace

Pronouncer::Word Pronouncer::pronounce(const std::string& word) {
  return pronounce(std::vector<std::string>{word})[0];
}

std::vector<Pronouncer::Word> Pronouncer::pronounce(const std::vector<std::string>& words) {
  std::vector<Tensor<float>> features;
  features.reserve(words.size());
  for (const std::string& w : words) features.push_back(word_features(*model_, w));
  const std::vector<TrainedModel::FrameLabels> labels = model_->label_frames(features);
  std::vector<Word> out(words.size());
  for (size_t k = 0; k < words.size(); ++k) {
    const std::string& word = words[k];
    const TrainedModel::FrameLabels& fl = labels[k];
    if (fl.labels.size() != word.size())
      throw std::invalid_argument("'" + word + "': the model gave " +
                                  std::to_string(fl.labels.size()) + " labels for " +
                                  std::to_string(word.size()) + " letters");
    Word& w = out[k];
    w.word = word;
    std::vector<std::string> symbols;
    for (size_t i = 0; i < word.size(); ++i) {
      const std::string& s = model_->classes()[size_t(fl.labels[i])];
      w.letters.push_back({word[i], s, fl.confidence[i]});
      w.confidence = std::min(w.confidence, fl.confidence[i]);
      symbols.push_back(s);
    }
    w.phonemes = symbols_to_phonemes(symbols);
    w.probabilities = fl.probabilities;
  }
  return out;
}

PronunciationScore evaluate_pronouncer(Pronouncer& p, const std::vector<DictEntry>& entries) {
  std::vector<std::string> words;
  for (const DictEntry& e : entries) words.push_back(e.word);
  const std::vector<Pronouncer::Word> got = p.pronounce(words);
  PronunciationScore s;
  for (size_t i = 0; i < entries.size(); ++i) s.add(got[i].phonemes, entries[i].pronunciations);
  return s;
}

}  // namespace bpkit

namespace bpkit {

// ---- Text
// -----------------------------------------------------------------------------------------

namespace {

const char* const kOnes[] = {"zero",    "one",     "two",       "three",    "four",
                             "five",    "six",     "seven",     "eight",    "nine",
                             "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                             "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
const char* const kTens[] = {"",      "",      "twenty",  "thirty", "forty",
                             "fifty", "sixty", "seventy", "eighty", "ninety"};

// Words of n < 1000 (n > 0), appended.
void hundreds(unsigned n, std::vector<std::string>& out) {
  if (n >= 100) {
    out.push_back(kOnes[n / 100]);
    out.push_back("hundred");
    n %= 100;
  }
  if (n >= 20) {
    out.push_back(kTens[n / 10]);
    n %= 10;
    if (n) out.push_back(kOnes[n]);
  } else if (n > 0) {
    out.push_back(kOnes[n]);
  }
}

// The words of a string of digits: a cardinal number, or digit by digit for a leading zero or
// more than 12 digits.
void number_words(const std::string& digits, std::vector<std::string>& out) {
  if (digits.size() > 12 || (digits.size() > 1 && digits[0] == '0')) {
    for (char d : digits) out.push_back(kOnes[d - '0']);
    return;
  }
  unsigned long long n = std::stoull(digits);
  if (n == 0) {
    out.push_back("zero");
    return;
  }
  const char* const scales[] = {"billion", "million", "thousand", ""};
  unsigned long long unit = 1000000000ULL;
  for (const char* scale : scales) {
    const unsigned part = unsigned(n / unit);
    n %= unit;
    unit /= 1000;
    if (part == 0) continue;
    hundreds(part, out);
    if (*scale) out.push_back(scale);
  }
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// A token (no blanks, no hyphens) into words.
void token_words(std::string t, std::vector<std::string>& out) {
  const std::string given = t;  // for messages
  // Punctuation around the word goes (a trailing period too: "end." and "Dr."; inner ones stay,
  // and so does a period before a digit: ".5").
  const std::string outer = ".,;:!?\"'()[]{}<>*/\\|`~^_#";
  size_t b = 0, e = t.size();
  while (b < e && outer.find(t[b]) != std::string::npos &&
         !(t[b] == '.' && b + 1 < e && is_digit(t[b + 1])))
    ++b;
  while (e > b && outer.find(t[e - 1]) != std::string::npos) --e;
  t = t.substr(b, e - b);
  if (t.empty()) return;
  static const std::map<std::string, std::string> symbols{{"&", "and"},  {"%", "percent"},
                                                          {"+", "plus"}, {"=", "equals"},
                                                          {"@", "at"},   {"$", "dollars"}};
  if (const auto it = symbols.find(t); it != symbols.end()) {
    out.push_back(it->second);
    return;
  }
  for (char c : t)
    if (static_cast<unsigned char>(c) >= 0x80)
      throw std::invalid_argument("'" + given +
                                  "' holds a character outside ASCII (the pronouncer reads "
                                  "English words in the letters a-z: spell it without accents)");
  // -5 → minus five, $5 → five dollars ($1: one dollar), 100% → one hundred percent.
  const bool minus = t.size() > 1 && t[0] == '-';
  if (minus) t.erase(0, 1);
  std::string after;
  if (t.size() > 1 && t[0] == '$') {
    t.erase(0, 1);
    after = "dollars";
  } else if (t.size() > 1 && t.back() == '%') {
    t.pop_back();
    after = "percent";
  }
  bool digits = false, letters = false;
  for (char c : t) {
    digits = digits || is_digit(c);
    letters = letters || is_letter(c);
  }
  if ((!after.empty() || minus) && (!digits || letters))
    throw std::invalid_argument("'" + given + "' is not a number the pronouncer can read");
  if (digits && letters)
    throw std::invalid_argument("'" + given +
                                "' mixes digits and letters: write the number or the word out");
  if (digits) {
    // 3.5 → three point five; 1,000 → one thousand (commas only between groups of three).
    std::vector<std::string> groups{""};
    size_t k = 0;
    for (; k < t.size() && (is_digit(t[k]) || t[k] == ','); ++k)
      if (t[k] == ',')
        groups.emplace_back();
      else
        groups.back() += t[k];
    bool grouped = groups.size() == 1 || (groups[0].size() >= 1 && groups[0].size() <= 3);
    std::string whole = groups[0], fraction;
    for (size_t g = 1; g < groups.size(); ++g) {
      grouped = grouped && groups[g].size() == 3;
      whole += groups[g];
    }
    const bool point = k < t.size() && t[k] == '.';
    if (point)
      for (++k; k < t.size() && is_digit(t[k]); ++k) fraction += t[k];
    if (!grouped || k != t.size() || (whole.empty() && fraction.empty()))
      throw std::invalid_argument("'" + given + "' is not a number the pronouncer can read");
    if (minus) out.push_back("minus");
    if (!whole.empty()) number_words(whole, out);
    if (point && !fraction.empty()) {
      out.push_back("point");
      for (char d : fraction) out.push_back(kOnes[d - '0']);
    }
    if (!after.empty())
      out.push_back(after == "dollars" && whole == "1" && fraction.empty() ? "dollar" : after);
    return;
  }
  if (!letters) return;  // punctuation alone ("...", "--")
  out.push_back(t);
}

}  // namespace

std::vector<std::string> text_words(const std::string& line) {
  std::string s;
  // Typographic apostrophes ’ ‘ read as '; quotation marks “ ” and the ellipsis … as punctuation;
  // dashes – — and the no-break space as blanks.
  for (size_t i = 0; i < line.size(); ++i) {
    if (line.compare(i, 3, "\xE2\x80\x99") == 0 || line.compare(i, 3, "\xE2\x80\x98") == 0) {
      s += '\'';
      i += 2;
    } else if (line.compare(i, 3, "\xE2\x80\x9C") == 0 || line.compare(i, 3, "\xE2\x80\x9D") == 0) {
      s += '"';
      i += 2;
    } else if (line.compare(i, 3, "\xE2\x80\xA6") == 0) {
      s += "...";
      i += 2;
    } else if (line.compare(i, 3, "\xE2\x80\x93") == 0 || line.compare(i, 3, "\xE2\x80\x94") == 0) {
      s += ' ';
      i += 2;
    } else if (line.compare(i, 2, "\xC2\xA0") == 0) {
      s += ' ';
      i += 1;
    } else {
      s += line[i];
    }
  }
  std::vector<std::string> out;
  std::string token;
  auto flush = [&] {
    if (!token.empty()) token_words(token, out);
    token.clear();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '-' && token.empty() && i + 1 < s.size() && (is_digit(s[i + 1]) || s[i + 1] == '$')) {
      token += c;  // a minus sign: -5
    } else if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '-') {
      flush();
    } else {
      token += c;
    }
  }
  flush();
  return out;
}

// ---- espeak-ng mnemonics
// ----------------------------------------------------------------------------

namespace {

bool is_vowel(const std::string& p) {
  static const std::set<std::string> v{"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER",
                                       "EY", "IH", "IY", "OW", "OY", "UH", "UW"};
  return v.count(p) > 0;
}

}  // namespace

std::string espeak_phonemes(const Phonemes& arpabet) {
  static const std::map<std::string, std::string> m{
      {"AA", "A:"}, {"AE", "a"}, {"AO", "O:"}, {"AW", "aU"}, {"AY", "aI"}, {"EH", "E"},
      {"EY", "eI"}, {"IH", "I"}, {"IY", "i:"}, {"OW", "oU"}, {"OY", "OI"}, {"UH", "U"},
      {"UW", "u:"}, {"B", "b"},  {"CH", "tS"}, {"D", "d"},   {"DH", "D"},  {"F", "f"},
      {"G", "g"},   {"HH", "h"}, {"JH", "dZ"}, {"K", "k"},   {"L", "l"},   {"M", "m"},
      {"N", "n"},   {"NG", "N"}, {"P", "p"},   {"R", "r"},   {"S", "s"},   {"SH", "S"},
      {"T", "t"},   {"TH", "T"}, {"V", "v"},   {"W", "w"},   {"Y", "j"},   {"Z", "z"},
      {"ZH", "Z"}};
  std::string out;
  bool stressed = false;
  for (const std::string& p : arpabet) {
    if (!out.empty()) out += '|';  // keeps "t" "S" from reading as "tS", "aU" "@" as "aU@"
    const bool vowel = is_vowel(p);
    const bool stress = vowel && !stressed;
    if (stress) {
      out += '\'';
      stressed = true;
    }
    if (p == "AH") {
      out += stress ? "V" : "@";
    } else if (p == "ER") {
      out += stress ? "3:" : "3";
    } else {
      const auto it = m.find(p);
      if (it == m.end()) throw std::invalid_argument("'" + p + "' is not an ARPAbet phoneme");
      out += it->second;
    }
  }
  return out;
}

Phonemes arpabet_from_espeak(const std::string& text, size_t* unknown) {
  // Longest match first.
  static const std::vector<std::pair<std::string, Phonemes>> table = [] {
    std::vector<std::pair<std::string, Phonemes>> t{
        {"aI@", {"AY", "ER"}}, {"aU@", {"AW", "ER"}}, {"i@3", {"IH", "R"}}, {"A:", {"AA"}},
        {"A@", {"AA", "R"}},   {"a#", {"AH"}},        {"aa", {"AE"}},       {"aI", {"AY"}},
        {"aU", {"AW"}},        {"a", {"AE"}},         {"@L", {"AH", "L"}},  {"@5", {"AH", "L"}},
        {"@2", {"AH"}},        {"@", {"AH"}},         {"3:", {"ER"}},       {"3", {"ER"}},
        {"V", {"AH"}},         {"e@", {"EH", "R"}},   {"eI", {"EY"}},       {"E2", {"EH"}},
        {"E", {"EH"}},         {"e", {"EH"}},         {"I2", {"IH"}},       {"I#", {"IH"}},
        {"I", {"IH"}},         {"i@", {"IY", "AH"}},  {"i:", {"IY"}},       {"i", {"IY"}},
        {"O:", {"AO"}},        {"O@", {"AO", "R"}},   {"o@", {"AO", "R"}},  {"OI", {"OY"}},
        {"O2", {"AO"}},        {"O~", {"AO"}},        {"@-", {"AH"}},       {"O", {"AO"}},
        {"0", {"AA"}},         {"oU", {"OW"}},        {"o", {"OW"}},        {"U@", {"UH", "R"}},
        {"U", {"UH"}},         {"u:", {"UW"}},        {"u", {"UW"}},        {"tS", {"CH"}},
        {"dZ", {"JH"}},        {"t#", {"T"}},         {"t2", {"T"}},        {"d#", {"D"}},
        {"n-", {"AH", "N"}},   {"l-", {"AH", "L"}},   {"r-", {"R"}},        {"?", {"T"}},
        {"D", {"DH"}},         {"T", {"TH"}},         {"N", {"NG"}},        {"S", {"SH"}},
        {"Z", {"ZH"}},         {"j", {"Y"}},          {"h", {"HH"}},        {"b", {"B"}},
        {"d", {"D"}},          {"f", {"F"}},          {"g", {"G"}},         {"k", {"K"}},
        {"l", {"L"}},          {"m", {"M"}},          {"n", {"N"}},         {"p", {"P"}},
        {"r", {"R"}},          {"s", {"S"}},          {"t", {"T"}},         {"v", {"V"}},
        {"w", {"W"}},          {"z", {"Z"}},          {"x", {"K"}}};
    std::stable_sort(t.begin(), t.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    return t;
  }();
  Phonemes out;
  const std::string skip = "',%=_|:;! \t\n";
  size_t i = 0;
  while (i < text.size()) {
    if (skip.find(text[i]) != std::string::npos) {
      ++i;
      continue;
    }
    bool found = false;
    for (const auto& [mn, ph] : table)
      if (text.compare(i, mn.size(), mn) == 0) {
        out.insert(out.end(), ph.begin(), ph.end());
        i += mn.size();
        found = true;
        break;
      }
    if (!found) {
      if (unknown) ++*unknown;
      ++i;
    }
  }
  // espeak-ng writes an r after an r-coloured vowel that CMUdict's ER already holds ("err").
  Phonemes merged;
  for (std::string& p : out)
    if (!(p == "R" && !merged.empty() && merged.back() == "ER")) merged.push_back(std::move(p));
  return merged;
}

}  // namespace bpkit
