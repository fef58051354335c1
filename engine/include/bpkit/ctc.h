// Connectionist temporal classification (Graves et al., 2006): the CTC loss for training sequence
// networks on unsegmented label sequences, and decoders that turn the network's per-frame scores
// back into label sequences with frame positions and confidences.
//
// Shapes: B sequences, T frames (padded to the longest; each sample has its own valid length),
// C classes, one of which is the blank. Network outputs are batch-first [B, T, C] logits.
// A label sequence of length L aligns to T frames by a path of T symbols that collapses to it
// (merge repeats, then drop blanks); repeated labels need a blank between them, so a sequence
// needs at least L + (number of adjacent equal pairs) frames.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "bpkit/loss.h"
#include "bpkit/tensor.h"

namespace bpkit {

// How per-sequence losses −log p(labels | x) become the returned scalar.
enum class CtcReduction {
  kMeanPerLabel,  // Σ_b loss_b / max(L_b, 1) / B: torch's ctc_loss 'mean' (the default)
  kMean,          // Σ_b loss_b / B: the mean per sequence, like the engine's other losses
  kSum,           // Σ_b loss_b
};

// CTC loss on logits. compute() requires out [B, T, C] (any finite logits; the log-softmax over C
// is taken inside, stably), target.sequences with B label sequences (values in [0, C), never the
// blank; empty allowed) and target.lengths either empty (every sample has T frames) or B values in
// [1, T]. It writes grad [B, T, C], the gradient of the reduced loss with respect to the logits
// (softmax minus the posterior occupancy of each class, zero on padded frames), and returns the
// reduced loss. Computed in double for either T: the forward-backward recursions run rescaled per
// frame (Graves 2006), and any sample whose rescaled recursion could lose precision to underflow
// (logit gaps of hundreds of nats against its labels) is recomputed in log space, so the result is
// as accurate as a log-space computation everywhere.
//
// Errors (std::invalid_argument naming the sample): wrong shapes or counts, a label out of range or
// equal to the blank, a valid length out of range, and a label sequence too long for its frames —
// unless zero_infinity is set, in which case such a sample (whose loss is +∞) contributes loss 0
// and gradient 0, as torch's zero_infinity does. Never returns NaN for finite logits.
//
// Samples run in parallel on the engine's thread pool; buffers are kept between calls, so
// batches no larger than an earlier one allocate nothing. Not thread-safe (one object per thread).
template <class T>
class CtcLoss : public Loss<T> {
 public:
  explicit CtcLoss(int blank = 0, CtcReduction reduction = CtcReduction::kMeanPerLabel,
                   bool zero_infinity = false);
  std::string kind() const override { return "ctc"; }
  double compute(const Tensor<T>& out, const Targets<T>& target, Tensor<T>& grad) override;

  int blank() const { return blank_; }
  CtcReduction reduction() const { return reduction_; }
  // −log p(labels_b | x_b) of each sample in the latest compute() (0 for a skipped infeasible one).
  const std::vector<double>& sample_losses() const { return losses_; }

 private:
  int blank_;
  CtcReduction reduction_;
  bool zero_infinity_;
  std::vector<double> losses_;
  std::vector<int32_t> extended_;  // [B, S] blank-interleaved labels, S = 2·L_max + 1
  std::vector<double> work_;       // per sample: emissions, forward and backward variables
};

// ---- Decoding -----------------------------------------------------------------------------------
//
// Every decoder reads one sequence: `scores` is [B, T, C] with `sample` picking b (or [T, C] with
// sample 0), logits or log-probabilities (a log-softmax over C is applied, which leaves
// log-probabilities unchanged), and `length` its valid frames (−1: all T). Bad arguments throw
// std::invalid_argument. Thread-safe (no shared state).

// One decoded symbol: the run of frames [start, end] (inclusive) that the best alignment of the
// result emits it on, the frame in that run where the label's probability peaks, and that
// probability as its confidence. Word timings: first start to last end of a word's symbols.
struct CtcSymbol {
  int32_t label;
  int32_t start, end, peak;
  double confidence;
};

struct CtcResult {
  std::vector<CtcSymbol> symbols;
  // log p(labels | x), summed over all alignments of the result. −∞ (and no symbols) when beam
  // search kept no sequence its constraint accepts.
  double log_prob = 0;
  // The lowest symbol confidence, the weakest symbol of the sequence (1 when empty, 0 when none
  // was accepted).
  double confidence = 1;
  std::vector<int32_t> labels() const;
};

// A word of a decoded sequence: the symbols between separators, from the first one's start frame
// to the last one's end frame, as confident as its weakest symbol.
struct CtcWord {
  std::vector<int32_t> labels;
  int32_t start, end;
  double confidence;
};

// Splits a result into words at `separator` symbols, which are dropped, as are empty words: word
// timings for speech, words for OCR lines.
std::vector<CtcWord> ctc_words(const CtcResult& result, int32_t separator);

// A deterministic finite-state acceptor over labels, the constraint for beam search. State 0 is
// the start; a label sequence is accepted when reading it from state 0 follows arcs all the way
// and ends in a final state. Lexicons and grammars compile to it (see the helpers).
class LabelFsa {
 public:
  LabelFsa();  // the start state only, not final: accepts nothing
  int add_state(bool final = false);
  void set_final(int state, bool final = true);
  // Throws std::invalid_argument for an unknown state, a negative label, or a second arc with the
  // same label out of `from` (the acceptor stays deterministic).
  void add_arc(int from, int32_t label, int to);
  int num_states() const { return int(arcs_.size()); }
  // The queries below require 0 <= state < num_states().
  bool is_final(int state) const { return final_[size_t(state)] != 0; }
  // The state after reading `label` in `state`, or −1 without such an arc.
  int next(int state, int32_t label) const;
  // (label, next state) of every arc out of `state`, sorted by label.
  const std::vector<std::pair<int32_t, int>>& arcs(int state) const { return arcs_[size_t(state)]; }
  bool accepts(const std::vector<int32_t>& labels) const;

  // Sequences of min_len..max_len symbols from `symbols`: e.g. the ten digit labels, 1, 7 for
  // digit strings of length 1-7. Requires 0 <= min_len <= max_len.
  static LabelFsa repeat(const std::vector<int32_t>& symbols, int min_len, int max_len);
  // The words as a trie: exactly one word (separator < 0), or one or more words with one
  // separator label between neighbours (a space for OCR lines, a word boundary for speech).
  // Throws std::invalid_argument for an empty word list, an empty word or a word containing the
  // separator.
  static LabelFsa lexicon(const std::vector<std::vector<int32_t>>& words, int32_t separator = -1);

 private:
  std::vector<std::vector<std::pair<int32_t, int>>> arcs_;
  std::vector<char> final_;
};

// Best path: the most probable label per frame, repeats merged, blanks dropped. Symbol positions
// are the runs of that path.
template <class T>
CtcResult ctc_greedy_decode(const Tensor<T>& scores, int64_t sample = 0, int64_t length = -1,
                            int blank = 0);

struct CtcBeamOptions {
  int blank = 0;
  int beam_width = 16;  // prefixes kept after each frame, >= 1
  // When set, only sequences it accepts are extended and returned. Its labels must be classes of
  // the scores and never the blank (checked on the arcs the search follows). Not owned; must
  // outlive the call.
  const LabelFsa* constraint = nullptr;
  // A label whose log-probability at a frame is below this is not appended there (pruning for
  // large alphabets; −∞, the default, keeps every label).
  double min_log_prob = -HUGE_VAL;
};

// Prefix beam search in log space (Hannun et al. 2014): each kept prefix carries the probability
// of its alignments ending in a blank and ending in its last label, so the alignments of one
// sequence are summed rather than competing. Returns the most probable kept sequence (accepted
// by the constraint, if any), with positions from its best alignment.
template <class T>
CtcResult ctc_beam_decode(const Tensor<T>& scores, int64_t sample, int64_t length,
                          const CtcBeamOptions& options);

struct CtcLexiconOptions {
  int blank = 0;
  int beam_width = 16;  // of the constrained search for each word's replacement
  // A lexicon word replaces a decoded word when log p(lexicon word | its frames) is at least
  // log p(decoded word | its frames) − max_cost (nats). 0: only when it is at least as probable.
  double max_cost = 3;
};

// Lexicon correction of a decoded sequence, word by word, the way OCR engines use their word
// lists. word_label gives each class's kind: 2 letter, 1 digit, 0 punctuation, 3 separator (space,
// hyphen), 4 apostrophe. A word is a run of letters and digits between other symbols. A word of at
// least two symbols, with at least one letter, that `lexicon` does not accept and that does not
// touch an apostrophe (contractions, possessives) is compared with the best sequence the lexicon
// accepts over the word's frames (constrained beam search from the frame after the previous symbol
// to the frame before the next one; forced alignment for both log-probabilities) and replaced by
// it when it is at most max_cost less probable. Two such words of at least two symbols each with
// one punctuation symbol (kind 0) between them are first tried as one word in the same way (a
// letter misread as punctuation splits a word). Returns `decoded` unchanged when no
// word is replaced, else the forced alignment of the corrected labels over all frames (positions,
// confidences and log_prob of the new sequence). `scores`, `sample` and `length` as for the
// decoders; `decoded` must be a decoding of them (greedy or beam). Throws std::invalid_argument
// for word_label not covering the classes, or the lexicon's labels as ctc_beam_decode does.
template <class T>
CtcResult ctc_lexicon_correct(const Tensor<T>& scores, int64_t sample, int64_t length,
                              const CtcResult& decoded, const LabelFsa& lexicon,
                              const std::vector<uint8_t>& word_label,
                              const CtcLexiconOptions& options = {});

// Forced alignment: the given labels' best alignment (Viterbi) for positions and confidences,
// and log p(labels | x). Throws std::invalid_argument for labels out of range, equal to the blank
// or too many for the frames.
template <class T>
CtcResult ctc_align(const Tensor<T>& scores, int64_t sample, int64_t length,
                    const std::vector<int32_t>& labels, int blank = 0);

}  // namespace bpkit
