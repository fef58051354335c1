// CTC loss and decoders: gradients against finite differences, values against a brute-force sum
// over all alignments and against libtorch, padding, errors.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <map>
#include <vector>

#include "bpkit/ctc.h"
#include "bpkit/loss.h"
#include "gradcheck.h"

using namespace bpkit;
using bpkit_test::check_loss_gradients;
using bpkit_test::random_tensor;

namespace {

using Labels = std::vector<int32_t>;

// Merge repeats, then drop blanks.
Labels collapse(const Labels& path, int blank) {
  Labels out;
  for (size_t t = 0; t < path.size(); ++t)
    if (path[t] != blank && (t == 0 || path[t] != path[t - 1])) out.push_back(path[t]);
  return out;
}

// Log-softmax of sample b's first `frames` frames of out [B, T, C], as [frames][C].
std::vector<std::vector<double>> log_softmax_rows(const Tensor<double>& out, int64_t b,
                                                  int64_t frames) {
  const int64_t T = out.dim(1), C = out.dim(2);
  std::vector<std::vector<double>> lp(static_cast<size_t>(frames),
                                      std::vector<double>(static_cast<size_t>(C)));
  for (int64_t t = 0; t < frames; ++t) {
    const double* z = out.data() + (b * T + t) * C;
    const double m = *std::max_element(z, z + C);
    double sum = 0;
    for (int64_t k = 0; k < C; ++k) sum += std::exp(z[k] - m);
    for (int64_t k = 0; k < C; ++k) lp[size_t(t)][size_t(k)] = z[k] - m - std::log(sum);
  }
  return lp;
}

double log_add(double a, double b) {
  if (a == -HUGE_VAL) return b;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}

// The independent oracle: log-probability of every label sequence, by enumerating all C^frames
// paths and collapsing each (summed in log space, so it holds for any logits). Tiny cases only.
std::map<Labels, double> brute_force(const Tensor<double>& out, int64_t b, int64_t frames,
                                     int blank) {
  const int64_t C = out.dim(2);
  const auto lp = log_softmax_rows(out, b, frames);
  std::map<Labels, double> total;
  Labels path(size_t(frames), 0);
  while (true) {
    double log_p = 0;
    for (int64_t t = 0; t < frames; ++t) log_p += lp[size_t(t)][size_t(path[size_t(t)])];
    const Labels key = collapse(path, blank);
    auto it = total.find(key);
    if (it == total.end())
      total[key] = log_p;
    else
      it->second = log_add(it->second, log_p);
    int64_t t = 0;  // next path: count in base C
    while (t < frames && ++path[size_t(t)] == C) path[size_t(t++)] = 0;
    if (t == frames) break;
  }
  return total;
}

Targets<double> ctc_targets(std::vector<Labels> sequences, std::vector<int32_t> lengths = {}) {
  Targets<double> t;
  t.sequences = std::move(sequences);
  t.lengths = std::move(lengths);
  return t;
}

// 2·sin(0.7·i + 0.3) at flat index i: the fixed logits the libtorch reference values were made
// from.
Tensor<double> sine_logits(const Shape& shape) {
  Tensor<double> z(shape);
  for (int64_t i = 0; i < z.size(); ++i) z[i] = 2 * std::sin(0.7 * double(i) + 0.3);
  return z;
}

}  // namespace

// ---- Loss ---------------------------------------------------------------------------------------

TEST_CASE("ctc loss gradient", "[ctc][gradcheck][loss]") {
  // Repeats, an empty sequence, variable lengths, a full-length tight fit ({1,1,2} in 4 frames).
  const auto targets = ctc_targets({{1, 2}, {3, 3}, {}, {1, 1, 2}}, /*lengths=*/{6, 5, 3, 4});
  const Tensor<double> out = random_tensor({4, 6, 4}, 201, -2, 2);
  for (CtcReduction r : {CtcReduction::kMeanPerLabel, CtcReduction::kMean, CtcReduction::kSum}) {
    CtcLoss<double> loss(0, r);
    check_loss_gradients(loss, out, targets);
  }
  SECTION("blank at another index") {
    CtcLoss<double> loss(/*blank=*/2);
    check_loss_gradients(loss, out, ctc_targets({{0, 1}, {3, 3}, {}, {0, 0, 1}}, {6, 5, 3, 4}));
  }
  SECTION("large logits") {
    CtcLoss<double> loss;
    check_loss_gradients(loss, random_tensor({4, 6, 4}, 202, 300, 310), targets);
  }
}

TEST_CASE("ctc loss equals the brute-force sum over all alignments", "[ctc][loss]") {
  const Tensor<double> out = random_tensor({3, 6, 3}, 211, -1.5, 1.5);
  for (int blank : {0, 2}) {
    const int a = blank == 0 ? 1 : 0, c = blank == 0 ? 2 : 1;  // the two non-blank classes
    const std::vector<Labels> seqs = {{a, c, a}, {c, c}, {}};
    const std::vector<int32_t> lengths = {6, 4, 5};
    CtcLoss<double> loss(blank, CtcReduction::kSum);
    Tensor<double> grad;
    const double sum = loss.compute(out, ctc_targets(seqs, lengths), grad);
    double expected_sum = 0;
    for (size_t b = 0; b < 3; ++b) {
      const auto probs = brute_force(out, int64_t(b), lengths[b], blank);
      const double expected = -probs.at(seqs[b]);
      CAPTURE(blank, b);
      CHECK(loss.sample_losses()[b] == Approx(expected).epsilon(1e-12));
      expected_sum += expected;
    }
    CHECK(sum == Approx(expected_sum).epsilon(1e-12));
    CtcLoss<double> mean(blank, CtcReduction::kMean), per_label(blank);
    CHECK(mean.compute(out, ctc_targets(seqs, lengths), grad) == Approx(expected_sum / 3));
    const auto& l = loss.sample_losses();
    CHECK(per_label.compute(out, ctc_targets(seqs, lengths), grad) ==
          Approx((l[0] / 3 + l[1] / 2 + l[2] / 1) / 3).epsilon(1e-12));
  }
}

// Logit gaps of hundreds of nats against the labels underflow the rescaled recursion; those
// samples are recomputed in log space and still match the oracle, with a finite gradient.
TEST_CASE("ctc loss stays exact when the labels are astronomically unlikely", "[ctc][loss]") {
  Tensor<double> out = random_tensor({2, 5, 3}, 215, -1, 1);
  for (int64_t i = 0; i < 15; i += 3) out[i] += 900;  // sample 0: blank wins by ~900 nats
  const auto targets = ctc_targets({{1, 2}, {2, 2}});
  CtcLoss<double> loss(0, CtcReduction::kSum);
  Tensor<double> grad;
  const double total = loss.compute(out, targets, grad);
  for (int64_t b = 0; b < 2; ++b) {
    CAPTURE(b);
    CHECK(loss.sample_losses()[size_t(b)] ==
          Approx(-brute_force(out, b, 5, 0).at(targets.sequences[size_t(b)])).epsilon(1e-12));
  }
  CHECK(loss.sample_losses()[0] > 1700);
  CHECK(std::isfinite(total));
  check_loss_gradients(loss, out, targets);
}

// The log-space recursion with repeated labels: a repeat must pass through a blank (the skip
// transition is only for distinct neighbours). Every sample is forced onto that path (the blank
// wins every frame by 900 nats) and checked against the oracle, value and gradient.
TEST_CASE("ctc loss in log space with repeated labels equals the brute-force sum",
          "[ctc][loss]") {
  const std::vector<Labels> seqs = {{1, 1}, {2, 2}, {1, 1, 2}, {2, 1, 1}};
  Tensor<double> out = random_tensor({4, 5, 3}, 217, -1, 1);
  for (int64_t i = 0; i < out.size(); i += 3) out[i] += 900;
  const auto targets = ctc_targets(seqs);
  CtcLoss<double> loss(0, CtcReduction::kSum);
  Tensor<double> grad;
  loss.compute(out, targets, grad);
  for (int64_t b = 0; b < 4; ++b) {
    CAPTURE(b);
    const double expected = -brute_force(out, b, 5, 0).at(seqs[size_t(b)]);
    CHECK(expected > 1700);  // astronomically unlikely: the log-space path
    CHECK(loss.sample_losses()[size_t(b)] == Approx(expected).epsilon(1e-12));
  }
  check_loss_gradients(loss, out, targets);
}

// Reference values from libtorch 1.13 (Debian's libtorch-dev), computed by a throwaway program:
// z = sine_logits({2, 5, 4}) as double, logp = torch::log_softmax(z, 2).transpose(0, 1),
// torch::ctc_loss(logp, targets, input_lengths, target_lengths, blank, Reduction::None / Mean),
// then .backward() on the mean for the gradient, values printed with %.17g.
TEST_CASE("ctc loss matches libtorch's ctc_loss on fixed inputs", "[ctc][loss]") {
  const Tensor<double> out = sine_logits({2, 5, 4});
  Tensor<double> grad;
  SECTION("blank 0, a repeat, second sample shorter") {
    CtcLoss<double> loss(0);
    const double mean = loss.compute(out, ctc_targets({{1, 2, 2}, {3, 1}}, {5, 4}), grad);
    CHECK(loss.sample_losses()[0] == Approx(4.0463622960108117).epsilon(1e-12));
    CHECK(loss.sample_losses()[1] == Approx(2.4325853216551927).epsilon(1e-12));
    CHECK(mean == Approx(1.2825400464156003).epsilon(1e-12));
    const double g00[4] = {0.0063676480442511904, -0.1076309136822713, 0.066128375074483062,
                           0.035134890563537045};
    const double g12[4] = {0.030558223926670777, -0.086790966484294976, 0.051451039692905196,
                           0.0047817028647190096};
    for (int k = 0; k < 4; ++k) {
      CHECK(grad[k] == Approx(g00[k]).epsilon(1e-10));
      CHECK(grad[(1 * 5 + 2) * 4 + k] == Approx(g12[k]).epsilon(1e-10));
      CHECK(grad[(1 * 5 + 4) * 4 + k] == 0);  // padded frame
    }
  }
  SECTION("blank 3, label 0 repeated") {
    CtcLoss<double> loss(3);
    const double mean = loss.compute(out, ctc_targets({{1, 0, 0}, {2}}, {5, 3}), grad);
    CHECK(loss.sample_losses()[0] == Approx(3.0813218079884028).epsilon(1e-12));
    CHECK(loss.sample_losses()[1] == Approx(4.4482109985046954).epsilon(1e-12));
    CHECK(mean == Approx(2.7376591339170817).epsilon(1e-12));
    const double g12[4] = {0.16307673541547399, 0.20576732649390198, -0.20812877781400993,
                           -0.16071528409536603};
    for (int k = 0; k < 4; ++k) CHECK(grad[(1 * 5 + 2) * 4 + k] == Approx(g12[k]).epsilon(1e-10));
  }
}

TEST_CASE("ctc loss ignores padded frames and gives them zero gradient", "[ctc][loss]") {
  const Tensor<double> full = random_tensor({2, 9, 5}, 221, -2, 2);
  const auto targets = ctc_targets({{1, 4, 4}, {2}}, {6, 9});
  CtcLoss<double> loss(0, CtcReduction::kSum);
  Tensor<double> grad;
  const double padded = loss.compute(full, targets, grad);
  for (int64_t t = 6; t < 9; ++t)
    for (int64_t k = 0; k < 5; ++k) CHECK(grad[t * 5 + k] == 0);
  // The same first sample alone, cut to its 6 frames; garbage in the padding changes nothing.
  Tensor<double> alone({1, 6, 5}), grad_alone;
  std::copy(full.data(), full.data() + 30, alone.data());
  CtcLoss<double> single(0, CtcReduction::kSum);
  const double first = single.compute(alone, ctc_targets({{1, 4, 4}}), grad_alone);
  CHECK(loss.sample_losses()[0] == Approx(first).epsilon(1e-14));
  for (int64_t i = 0; i < 30; ++i) CHECK(grad[i] == Approx(grad_alone[i]).margin(1e-15));
  Tensor<double> noisy = full;
  for (int64_t i = 30; i < 45; ++i) noisy[i] = 1e3 * double(i);
  CHECK(loss.compute(noisy, targets, grad) == Approx(padded).epsilon(1e-14));
}

TEST_CASE("ctc loss in float agrees with double and survives large logits", "[ctc][loss]") {
  const Tensor<double> out = random_tensor({3, 20, 6}, 231, -3, 3);
  const auto targets = ctc_targets({{1, 2, 3, 3, 5}, {4}, {5, 5, 5}}, {20, 12, 7});
  Tensor<float> outf(out.shape()), gradf;
  for (int64_t i = 0; i < out.size(); ++i) outf[i] = float(out[i]);
  Targets<float> tf;
  tf.sequences = targets.sequences;
  tf.lengths = targets.lengths;
  Tensor<double> grad;
  CtcLoss<double> loss;
  CtcLoss<float> lossf;
  const double expected = loss.compute(out, targets, grad);
  CHECK(lossf.compute(outf, tf, gradf) == Approx(expected).epsilon(1e-5));
  for (int64_t i = 0; i < out.size(); ++i) CHECK(gradf[i] == Approx(grad[i]).margin(1e-6));
  for (float& v : outf) v += 1000;  // shift-invariant
  CHECK(lossf.compute(outf, tf, gradf) == Approx(expected).epsilon(1e-5));
  for (int64_t i = 0; i < out.size(); ++i) CHECK(std::isfinite(gradf[i]));
  // A second, smaller batch reuses the buffers and still gives the right answer.
  Tensor<double> small({1, 20, 6});
  std::copy(out.data(), out.data() + 120, small.data());
  const double first = loss.sample_losses()[0];
  CHECK(loss.compute(small, ctc_targets({{1, 2, 3, 3, 5}}), grad) ==
        Approx(first / 5).epsilon(1e-14));  // the mean per label
}

TEST_CASE("ctc loss refuses bad targets with errors that name the sample", "[ctc][loss][errors]") {
  const Tensor<double> out = random_tensor({2, 4, 3}, 241);
  Tensor<double> grad;
  CtcLoss<double> loss;
  auto fails = [&](const Targets<double>& t, const std::string& what) {
    CHECK_THROWS_WITH(loss.compute(out, t, grad), Catch::Contains(what));
  };
  fails(ctc_targets({{1}, {3}}), "sample 1: label 3 at position 0 outside [0, 3)");
  fails(ctc_targets({{1}, {-1}}), "sample 1: label -1");
  fails(ctc_targets({{1, 0}, {1}}), "sample 0: label 0 at position 1 is the blank index");
  fails(ctc_targets({{1}}), "1 label sequences for a batch of 2");
  fails(ctc_targets({{1}, {1}}, {4}), "1 sequence lengths for a batch of 2");
  fails(ctc_targets({{1}, {1}}, {4, 5}), "sample 1: length 5 outside [1, 4]");
  fails(ctc_targets({{1}, {1}}, {0, 4}), "sample 0: length 0 outside [1, 4]");
  // {1,1,2,2} needs 4 + 2 = 6 frames; {1,2,1} needs 3 and fits, but not in 2.
  fails(ctc_targets({{1, 2}, {1, 1, 2, 2}}),
        "sample 1: 4 labels (2 repeats) need at least 6 frames, but the sample has 4");
  fails(ctc_targets({{1, 2, 1}, {1}}, {2, 4}), "sample 0: 3 labels (0 repeats) need at least 3");
  CHECK_THROWS_WITH(loss.compute(Tensor<double>({2, 12}), ctc_targets({{1}, {1}}), grad),
                    Catch::Contains("[batch, frames, classes]"));
  CHECK_THROWS_WITH(CtcLoss<double>(3).compute(out, ctc_targets({{1}, {1}}), grad),
                    Catch::Contains("blank index 3 outside the 3 classes"));
  CHECK_THROWS_AS(CtcLoss<double>(-1), std::invalid_argument);

  SECTION("zero_infinity skips an unalignable sample instead") {
    CtcLoss<double> lenient(0, CtcReduction::kSum, /*zero_infinity=*/true);
    const double total = lenient.compute(out, ctc_targets({{1, 2}, {1, 1, 2, 2}}), grad);
    CHECK(std::isfinite(total));
    CHECK(lenient.sample_losses()[1] == 0);
    CHECK(total == Approx(lenient.sample_losses()[0]));
    for (int64_t i = 12; i < 24; ++i) CHECK(grad[i] == 0);
    CHECK(grad[0] != 0);
  }
}

TEST_CASE("make_loss builds the ctc loss", "[ctc][loss]") {
  auto loss = make_loss<float>("ctc");
  CHECK(loss->kind() == "ctc");
  CHECK(dynamic_cast<CtcLoss<float>*>(loss.get()) != nullptr);
}

// ---- Decoding -----------------------------------------------------------------------------------

namespace {

// [T, C] log-probabilities from rows of probabilities.
Tensor<double> log_prob_rows(const std::vector<std::vector<double>>& p) {
  Tensor<double> lp({int64_t(p.size()), int64_t(p[0].size())});
  for (size_t t = 0; t < p.size(); ++t)
    for (size_t k = 0; k < p[t].size(); ++k) lp[int64_t(t * p[t].size() + k)] = std::log(p[t][k]);
  return lp;
}

// The most probable sequence by brute force, optionally only among those `accept` takes.
template <class Accept>
std::pair<Labels, double> brute_force_best(const Tensor<double>& out, int64_t b, int64_t frames,
                                           int blank, Accept&& accept) {
  std::pair<Labels, double> best{{}, -HUGE_VAL};
  for (const auto& kv : brute_force(out, b, frames, blank))
    if (accept(kv.first) && kv.second > best.second) best = kv;
  return best;
}

void check_positions(const CtcResult& r, int64_t frames) {
  int32_t prev_end = -1;
  for (const CtcSymbol& s : r.symbols) {
    CHECK(s.start > prev_end);
    CHECK(s.start <= s.peak);
    CHECK(s.peak <= s.end);
    CHECK(s.end < frames);
    CHECK(s.confidence > 0);
    CHECK(s.confidence <= 1);
    prev_end = s.end;
  }
}

}  // namespace

TEST_CASE("greedy decoding collapses the best path and reports its runs", "[ctc][decode]") {
  // Best path 1 1 _ 2 2 2 _ _ 1 (blank 0): labels 1 2 1.
  const double hi = 0.7, lo = 0.15;
  const Tensor<double> lp = log_prob_rows({{lo, hi, lo},
                                           {lo, hi, lo},
                                           {hi, lo, lo},
                                           {0.2, 0.2, 0.6},
                                           {0.1, 0.1, 0.8},
                                           {lo, lo, hi},
                                           {hi, lo, lo},
                                           {hi, lo, lo},
                                           {0.05, 0.9, 0.05}});
  const CtcResult r = ctc_greedy_decode(lp);
  REQUIRE(r.labels() == Labels{1, 2, 1});
  CHECK(r.symbols[0].start == 0);
  CHECK(r.symbols[0].end == 1);
  CHECK(r.symbols[1].start == 3);
  CHECK(r.symbols[1].end == 5);
  CHECK(r.symbols[1].peak == 4);
  CHECK(r.symbols[1].confidence == Approx(0.8));
  CHECK(r.symbols[2].start == 8);
  CHECK(r.symbols[2].end == 8);
  CHECK(r.symbols[0].peak == 0);  // ties go to the first frame
  CHECK(r.symbols[2].confidence == Approx(0.9));
  CHECK(r.confidence == Approx(0.7));  // the weakest symbol
  check_positions(r, 9);
  // log_prob is the sequence's probability over all its alignments.
  Tensor<double> batch({1, 9, 3});
  std::copy(lp.begin(), lp.end(), batch.begin());
  CHECK(r.log_prob == Approx(brute_force(batch, 0, 9, 0).at({1, 2, 1})).epsilon(1e-12));

  SECTION("a blank between equal labels keeps both; a valid length cuts the tail") {
    const Tensor<double> rep =
        log_prob_rows({{lo, hi, lo}, {hi, lo, lo}, {lo, hi, lo}, {lo, lo, hi}});
    CHECK(ctc_greedy_decode(rep).labels() == Labels{1, 1, 2});
    CHECK(ctc_greedy_decode(rep, 0, 3).labels() == Labels{1, 1});
    CHECK(ctc_greedy_decode(rep, 0, -1, /*blank=*/1).labels() == Labels{0, 2});
  }
  SECTION("a sample of a batch, in float") {
    Tensor<float> two({2, 9, 3});
    for (int64_t i = 0; i < 27; ++i) two[27 + i] = float(lp[i]), two[i] = 0;
    CHECK(ctc_greedy_decode(two, 1).labels() == Labels{1, 2, 1});
    CHECK(ctc_greedy_decode(two, 0).labels().empty());  // uniform: argmax picks the blank
  }
}

TEST_CASE("beam search sums alignments and beats the best path where they differ",
          "[ctc][decode]") {
  // Two frames, blank 0.6 and label 1 0.4 in each: the best path (blank, blank) gives the empty
  // sequence with p = 0.36, but "1" has three alignments (1 1, 1 _, _ 1): p = 0.64.
  const Tensor<double> lp = log_prob_rows({{0.6, 0.4}, {0.6, 0.4}});
  const CtcResult greedy = ctc_greedy_decode(lp);
  CHECK(greedy.labels().empty());
  CHECK(greedy.log_prob == Approx(std::log(0.36)));
  CtcBeamOptions opt;
  opt.beam_width = 4;
  const CtcResult beam = ctc_beam_decode(lp, 0, -1, opt);
  REQUIRE(beam.labels() == Labels{1});
  CHECK(beam.log_prob == Approx(std::log(0.64)));
  CHECK(beam.log_prob > greedy.log_prob);
  CHECK(beam.symbols[0].start == 0);  // best alignment 1 _ (tied with _ 1 and 1 1)
  check_positions(beam, 2);
}

TEST_CASE("wide beam search finds the most probable sequence of the brute force", "[ctc][decode]") {
  int differs_from_greedy = 0;
  for (uint64_t seed = 300; seed < 312; ++seed) {
    CAPTURE(seed);
    // Flat-ish logits make many alignments per sequence, where best path and best sequence part.
    const Tensor<double> out = random_tensor({1, 6, 3}, seed, -1, 1);
    const auto best = brute_force_best(out, 0, 6, 0, [](const Labels&) { return true; });
    CtcBeamOptions opt;
    opt.beam_width = 1000;  // more than the number of prefixes: exact
    const CtcResult r = ctc_beam_decode(out, 0, -1, opt);
    CHECK(r.labels() == best.first);
    CHECK(r.log_prob == Approx(best.second).epsilon(1e-12));
    check_positions(r, 6);
    const CtcResult g = ctc_greedy_decode(out);
    CHECK(g.log_prob <= r.log_prob + 1e-12);
    differs_from_greedy += g.labels() != r.labels();
    // A narrow beam returns a real sequence with its exact probability, never above the best.
    opt.beam_width = 2;
    const CtcResult narrow = ctc_beam_decode(out, 0, -1, opt);
    CHECK(narrow.log_prob == Approx(brute_force(out, 0, 6, 0).at(narrow.labels())).epsilon(1e-12));
    CHECK(narrow.log_prob <= best.second + 1e-12);
  }
  CHECK(differs_from_greedy > 0);  // the cases exercise what beam search is for
}

TEST_CASE("label acceptors: repeat and lexicon", "[ctc][decode]") {
  const LabelFsa digits = LabelFsa::repeat({1, 2, 3}, 1, 7);
  CHECK_FALSE(digits.accepts({}));
  CHECK(digits.accepts({1}));
  CHECK(digits.accepts({3, 3, 3, 3, 3, 3, 3}));
  CHECK_FALSE(digits.accepts({3, 3, 3, 3, 3, 3, 3, 3}));
  CHECK_FALSE(digits.accepts({1, 4}));
  CHECK(LabelFsa::repeat({1}, 0, 2).accepts({}));

  // Words "ab", "b", "abc" (a=1, b=2, c=3), separator 4.
  const std::vector<Labels> words = {{1, 2}, {2}, {1, 2, 3}};
  const LabelFsa one = LabelFsa::lexicon(words);
  CHECK(one.accepts({1, 2}));
  CHECK(one.accepts({1, 2, 3}));
  CHECK(one.accepts({2}));
  CHECK_FALSE(one.accepts({1}));  // a prefix, not a word
  CHECK_FALSE(one.accepts({2, 2}));
  const LabelFsa line = LabelFsa::lexicon(words, 4);
  CHECK(line.accepts({1, 2, 4, 2, 4, 1, 2, 3}));
  CHECK_FALSE(line.accepts({1, 2, 4}));
  CHECK_FALSE(line.accepts({4, 2}));
  CHECK_FALSE(line.accepts({2, 4, 4, 2}));
  CHECK_FALSE(line.accepts({}));

  LabelFsa fsa;
  const int s1 = fsa.add_state(true), s2 = fsa.add_state();
  fsa.add_arc(0, 5, s1);
  fsa.add_arc(0, 5, s1);  // the same arc again is harmless
  CHECK_THROWS_WITH(fsa.add_arc(0, 5, s2), Catch::Contains("must be deterministic"));
  CHECK_THROWS_WITH(fsa.add_arc(0, 1, 7), Catch::Contains("unknown states"));
  CHECK_THROWS_WITH(fsa.add_arc(0, -2, s1), Catch::Contains("negative label"));
  CHECK_THROWS_WITH(LabelFsa::lexicon({{1}, {}}), Catch::Contains("word 1 is empty"));
  CHECK_THROWS_WITH(LabelFsa::lexicon({{1, 4}}, 4), Catch::Contains("contains the separator"));
  CHECK_THROWS_AS(LabelFsa::lexicon({}), std::invalid_argument);
  CHECK_THROWS_AS(LabelFsa::repeat({1}, 3, 2), std::invalid_argument);
}

TEST_CASE("constrained beam search returns the best sequence the constraint accepts",
          "[ctc][decode]") {
  // Classes: blank 0, letters 1-3, separator 4. Brute force over 5^7 paths per case.
  const LabelFsa lexicon = LabelFsa::lexicon({{1, 2}, {3}, {2, 2, 1}}, 4);
  const LabelFsa digits = LabelFsa::repeat({1, 2, 3}, 1, 2);
  int changed = 0;
  for (uint64_t seed = 400; seed < 406; ++seed) {
    for (const LabelFsa* fsa : {&lexicon, &digits}) {
      CAPTURE(seed, fsa == &lexicon);
      const Tensor<double> out = random_tensor({1, 7, 5}, seed, -2, 2);
      const auto best =
          brute_force_best(out, 0, 7, 0, [&](const Labels& l) { return fsa->accepts(l); });
      CtcBeamOptions opt;
      opt.beam_width = 64;
      opt.constraint = fsa;
      const CtcResult r = ctc_beam_decode(out, 0, -1, opt);
      CHECK(fsa->accepts(r.labels()));
      CHECK(r.labels() == best.first);
      CHECK(r.log_prob == Approx(best.second).epsilon(1e-12));
      check_positions(r, 7);
      opt.constraint = nullptr;
      changed += ctc_beam_decode(out, 0, -1, opt).labels() != r.labels();
    }
  }
  CHECK(changed > 0);

  SECTION("nothing accepted within the frames") {
    const LabelFsa five = LabelFsa::repeat({1}, 5, 5);  // needs 9 frames (repeats)
    CtcBeamOptions opt;
    opt.constraint = &five;
    const CtcResult r = ctc_beam_decode(random_tensor({1, 7, 5}, 410), 0, -1, opt);
    CHECK(r.symbols.empty());
    CHECK(r.log_prob == -HUGE_VAL);
    CHECK(r.confidence == 0);
  }
}

TEST_CASE("forced alignment gives symbol timings", "[ctc][decode]") {
  // Label 1 dominates frames 2-4 (peak at 3), label 2 frames 6-7; blank elsewhere.
  const double b = 0.8, o = 0.1;
  const Tensor<double> lp = log_prob_rows({{b, o, o},
                                           {b, o, o},
                                           {o, b, o},
                                           {0.05, 0.9, 0.05},
                                           {o, b, o},
                                           {b, o, o},
                                           {o, o, b},
                                           {o, o, b},
                                           {b, o, o}});
  const CtcResult r = ctc_align(lp, 0, -1, {1, 2});
  REQUIRE(r.symbols.size() == 2);
  CHECK(r.symbols[0].start == 2);
  CHECK(r.symbols[0].end == 4);
  CHECK(r.symbols[0].peak == 3);
  CHECK(r.symbols[0].confidence == Approx(0.9));
  CHECK(r.symbols[1].start == 6);
  CHECK(r.symbols[1].end == 7);
  Tensor<double> batch({1, 9, 3});
  std::copy(lp.begin(), lp.end(), batch.begin());
  CHECK(r.log_prob == Approx(brute_force(batch, 0, 9, 0).at({1, 2})).epsilon(1e-12));
  // Forced onto an unlikely sequence, the alignment still places every symbol.
  const CtcResult forced = ctc_align(lp, 0, -1, {2, 2, 1});
  CHECK(forced.labels() == Labels{2, 2, 1});
  check_positions(forced, 9);
  CHECK(forced.log_prob < r.log_prob);
  CHECK(ctc_align(lp, 0, 4, {}).symbols.empty());
  CHECK_THROWS_WITH(ctc_align(lp, 0, 4, {1, 1, 1}),
                    Catch::Contains("3 labels need at least 5 frames, but the sequence has 4"));
  CHECK_THROWS_WITH(ctc_align(lp, 0, -1, {0}), Catch::Contains("is the blank index"));
  CHECK_THROWS_WITH(ctc_align(lp, 0, -1, {3}), Catch::Contains("outside [0, 3)"));
}

TEST_CASE("decoders refuse bad arguments", "[ctc][decode][errors]") {
  const Tensor<double> out = random_tensor({2, 5, 4}, 420);
  CHECK_THROWS_WITH(ctc_greedy_decode(out, 2), Catch::Contains("sample 2 outside [0, 2)"));
  CHECK_THROWS_WITH(ctc_greedy_decode(out, 0, 6), Catch::Contains("length 6 outside [1, 5]"));
  CHECK_THROWS_WITH(ctc_greedy_decode(out, 0, 0), Catch::Contains("length 0"));
  CHECK_THROWS_WITH(ctc_greedy_decode(out, 0, -1, 4), Catch::Contains("blank index 4"));
  CHECK_THROWS_WITH(ctc_greedy_decode(Tensor<double>({20})), Catch::Contains("expects scores"));
  CtcBeamOptions opt;
  opt.beam_width = 0;
  CHECK_THROWS_WITH(ctc_beam_decode(out, 0, -1, opt), Catch::Contains("beam width 0"));
  opt.beam_width = 4;
  const LabelFsa with_blank = LabelFsa::repeat({0, 1}, 1, 2);
  opt.constraint = &with_blank;
  CHECK_THROWS_WITH(ctc_beam_decode(out, 0, -1, opt), Catch::Contains("label 0 is the blank"));
  const LabelFsa too_big = LabelFsa::repeat({1, 4}, 1, 2);
  opt.constraint = &too_big;
  CHECK_THROWS_WITH(ctc_beam_decode(out, 0, -1, opt), Catch::Contains("not one of the 4"));
}

TEST_CASE("beam search in float agrees with double; pruning keeps the clear winner",
          "[ctc][decode]") {
  const Tensor<double> out = random_tensor({3, 30, 8}, 430, -3, 3);
  Tensor<float> outf(out.shape());
  for (int64_t i = 0; i < out.size(); ++i) outf[i] = float(out[i]);
  CtcBeamOptions opt;
  opt.beam_width = 8;
  for (int64_t b = 0; b < 3; ++b) {
    const CtcResult d = ctc_beam_decode(out, b, 25, opt), f = ctc_beam_decode(outf, b, 25, opt);
    CHECK(d.labels() == f.labels());
    CHECK(f.log_prob == Approx(d.log_prob).epsilon(1e-5));
    check_positions(d, 25);
    CtcBeamOptions pruned = opt;
    pruned.min_log_prob = std::log(1e-3);
    CHECK(ctc_beam_decode(out, b, 25, pruned).labels() == d.labels());
  }
  // Pruning does cut: in the two-frame case of the test above, "1" (0.4 a frame) wins only while
  // label 1 may be appended.
  const Tensor<double> two = log_prob_rows({{0.6, 0.4}, {0.6, 0.4}});
  opt.min_log_prob = std::log(0.3);
  CHECK(ctc_beam_decode(two, 0, -1, opt).labels() == Labels{1});
  opt.min_log_prob = std::log(0.5);
  CHECK(ctc_beam_decode(two, 0, -1, opt).labels().empty());
}

namespace {

// Textbook prefix beam search over a map from prefix to (log p ending in blank, log p ending in
// its last label), for comparison with the engine's candidate-list implementation.
Labels reference_beam_search(const Tensor<double>& out, int64_t frames, int blank, size_t width,
                             const LabelFsa* fsa) {
  const int64_t C = out.dim(2);
  const auto lp = log_softmax_rows(out, 0, frames);
  using Beam = std::map<Labels, std::pair<double, double>>;
  auto total = [](const std::pair<double, double>& p) { return log_add(p.first, p.second); };
  auto at = [](Beam& beam, const Labels& l) -> std::pair<double, double>& {
    return beam.emplace(l, std::make_pair(-HUGE_VAL, -HUGE_VAL)).first->second;
  };
  Beam beam;
  beam[{}] = {0.0, -HUGE_VAL};
  for (int64_t t = 0; t < frames; ++t) {
    const auto& row = lp[size_t(t)];
    Beam next;
    for (const auto& [prefix, p] : beam) {
      auto& same = at(next, prefix);
      same.first = log_add(same.first, total(p) + row[size_t(blank)]);
      if (!prefix.empty())
        same.second = log_add(same.second, p.second + row[size_t(prefix.back())]);
      for (int32_t c = 0; c < C; ++c) {
        if (c == blank) continue;
        Labels longer = prefix;
        longer.push_back(c);
        if (fsa) {  // the prefix must still be readable by the acceptor
          int state = 0;
          for (int32_t l : longer)
            if (state >= 0) state = fsa->next(state, l);
          if (state < 0) continue;
        }
        const double from = !prefix.empty() && c == prefix.back() ? p.first : total(p);
        auto& e = at(next, longer);
        e.second = log_add(e.second, from + row[size_t(c)]);
      }
    }
    std::vector<std::pair<double, Labels>> ranked;
    for (const auto& [prefix, p] : next) ranked.push_back({total(p), prefix});
    std::sort(ranked.begin(), ranked.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    beam.clear();
    for (size_t i = 0; i < std::min(width, ranked.size()); ++i)
      beam[ranked[i].second] = next[ranked[i].second];
  }
  std::pair<double, Labels> best{-HUGE_VAL, {}};
  for (const auto& [prefix, p] : beam)
    if ((!fsa || fsa->accepts(prefix)) && total(p) > best.first) best = {total(p), prefix};
  return best.second;
}

}  // namespace

TEST_CASE("beam search keeps the same prefixes as the textbook algorithm at every width",
          "[ctc][decode]") {
  const LabelFsa lexicon = LabelFsa::lexicon({{1, 2}, {3}, {2, 2, 1}, {1, 1}}, 4);
  for (uint64_t seed = 500; seed < 510; ++seed) {
    const Tensor<double> out = random_tensor({1, 14, 5}, seed, -2, 2);
    for (int width : {1, 2, 3, 5, 8}) {
      for (const LabelFsa* fsa : {static_cast<const LabelFsa*>(nullptr), &lexicon}) {
        CAPTURE(seed, width, fsa != nullptr);
        CtcBeamOptions opt;
        opt.beam_width = width;
        opt.constraint = fsa;
        CHECK(ctc_beam_decode(out, 0, -1, opt).labels() ==
              reference_beam_search(out, 14, 0, size_t(width), fsa));
      }
    }
  }
}

TEST_CASE("words of a decoded sequence with their timings", "[ctc][decode]") {
  // Classes: blank 0, letters 1-2, separator 3. "1 2 _ 3 _ 2" with a stray separator at the end.
  CtcResult r;
  r.symbols = {{1, 0, 1, 0, 0.9},  {2, 3, 4, 4, 0.6},   {3, 6, 6, 6, 0.99},
               {3, 7, 7, 7, 0.99}, {2, 9, 12, 10, 0.8}, {3, 14, 14, 14, 0.7}};
  const std::vector<CtcWord> words = ctc_words(r, 3);
  REQUIRE(words.size() == 2);
  CHECK(words[0].labels == Labels{1, 2});
  CHECK(words[0].start == 0);
  CHECK(words[0].end == 4);
  CHECK(words[0].confidence == Approx(0.6));
  CHECK(words[1].labels == Labels{2});
  CHECK(words[1].start == 9);
  CHECK(words[1].end == 12);
  CHECK(words[1].confidence == Approx(0.8));
  CHECK(ctc_words(r, -1).size() == 1);  // no separator: one word of every symbol
  CHECK(ctc_words(CtcResult{}, 3).empty());
}

namespace {

// [1, T, C] log-probabilities from per-frame probabilities (rows need not be normalized).
Tensor<double> frames_of(const std::vector<std::vector<double>>& p) {
  Tensor<double> t({1, int64_t(p.size()), int64_t(p[0].size())});
  for (size_t i = 0; i < p.size(); ++i)
    for (size_t k = 0; k < p[i].size(); ++k)
      t.data()[i * p[i].size() + k] = std::log(std::max(p[i][k], 1e-12));
  return t;
}

}  // namespace

TEST_CASE("lexicon correction replaces words the scores allow, and only those", "[ctc][decode]") {
  // Classes: blank 0, letters a=1 b=2 q=3, digit 7=4, space 5.
  const std::vector<uint8_t> word_label{0, 2, 2, 2, 1, 3};
  const LabelFsa lexicon = LabelFsa::lexicon({{1, 2}, {2, 1, 2}});  // "ab", "bab"
  // "qb ab 7b": the first word reads q where a is nearly as likely; the second is a lexicon word;
  // the third has a digit and a letter, with the digit sure.
  auto line = [](double a_given_q) {
    return frames_of({{0.05, a_given_q, 0.01, 0.5, 0.01, 0.01},  // q (or a)
                      {0.9, 0.02, 0.02, 0.02, 0.02, 0.02},
                      {0.02, 0.02, 0.9, 0.02, 0.02, 0.02},  // b
                      {0.02, 0.02, 0.02, 0.02, 0.02, 0.9},  // space
                      {0.02, 0.9, 0.02, 0.02, 0.02, 0.02},  // a
                      {0.02, 0.02, 0.9, 0.02, 0.02, 0.02},  // b
                      {0.02, 0.02, 0.02, 0.02, 0.02, 0.9},  // space
                      {0.02, 0.02, 0.02, 0.02, 0.9, 0.02},  // 7
                      {0.9, 0.02, 0.02, 0.02, 0.02, 0.02},
                      {0.02, 0.02, 0.9, 0.02, 0.02, 0.02}});  // b
  };
  const Tensor<double> close = line(0.4);
  const CtcResult greedy = ctc_greedy_decode(close, 0, -1, 0);
  REQUIRE(greedy.labels() == Labels{3, 2, 5, 1, 2, 5, 4, 2});
  CtcLexiconOptions o;
  const CtcResult fixed = ctc_lexicon_correct(close, 0, -1, greedy, lexicon, word_label, o);
  CHECK(fixed.labels() == Labels{1, 2, 5, 1, 2, 5, 4, 2});
  // The result is the forced alignment of the new labels over the whole line.
  const CtcResult want = ctc_align(close, 0, -1, fixed.labels(), 0);
  CHECK(fixed.log_prob == want.log_prob);
  CHECK(fixed.symbols[0].start == 0);
  CHECK(fixed.symbols[7].end == 9);
  check_positions(fixed, 10);

  // max_cost 0: a replacement must be at least as probable; 0.4 against 0.5 is not.
  o.max_cost = 0;
  CHECK(ctc_lexicon_correct(close, 0, -1, greedy, lexicon, word_label, o).labels() ==
        greedy.labels());
  // a at 0.004 against q at 0.5 costs log(125) = 4.8 nats: above the default 3, below 5.
  const Tensor<double> far = line(0.004);
  const CtcResult g2 = ctc_greedy_decode(far, 0, -1, 0);
  o.max_cost = 3;
  CHECK(ctc_lexicon_correct(far, 0, -1, g2, lexicon, word_label, o).labels() == g2.labels());
  o.max_cost = 5;
  CHECK(ctc_lexicon_correct(far, 0, -1, g2, lexicon, word_label, o).labels()[0] == 1);

  // Nothing to correct at the default cost ("7b" would take 3.8 nats to become "ab"): the
  // decoding comes back as it was (same positions and confidences).
  o.max_cost = 3;
  const Tensor<double> clean = line(0.6);
  const CtcResult g3 = ctc_greedy_decode(clean, 0, -1, 0);
  REQUIRE(g3.labels()[0] == 1);
  const CtcResult same = ctc_lexicon_correct(clean, 0, -1, g3, lexicon, word_label, o);
  CHECK(same.labels() == g3.labels());
  CHECK(same.log_prob == g3.log_prob);
  CHECK(same.confidence == g3.confidence);

  CHECK_THROWS_WITH(ctc_lexicon_correct(close, 0, -1, greedy, lexicon, {0, 2, 2}, o),
                    Catch::Matchers::Contains("word_label has 3 entries for 6 classes"));
}

TEST_CASE("lexicon correction picks the most probable lexicon word of the brute force",
          "[ctc][decode]") {
  // Random scores over 7 frames: a lone word (every symbol a letter) is replaced, with an
  // unbounded cost, by the lexicon word of highest exact probability over all its alignments.
  const std::vector<uint8_t> word_label{0, 2, 2, 2, 2};
  const LabelFsa lexicon = LabelFsa::lexicon({{1, 2}, {3}, {2, 2, 1}, {4, 1, 4}, {1, 3, 4, 2}});
  CtcLexiconOptions o;
  o.max_cost = 1e9;
  o.beam_width = 64;
  int replaced = 0;
  for (uint64_t seed = 700; seed < 712; ++seed) {
    CAPTURE(seed);
    const Tensor<double> out = random_tensor({1, 7, 5}, seed, -2, 2);
    const CtcResult greedy = ctc_greedy_decode(out, 0, -1, 0);
    const CtcResult r = ctc_lexicon_correct(out, 0, -1, greedy, lexicon, word_label, o);
    if (greedy.labels().size() < 2 || lexicon.accepts(greedy.labels())) {
      CHECK(r.labels() == greedy.labels());
      continue;
    }
    const auto best =
        brute_force_best(out, 0, 7, 0, [&](const Labels& l) { return lexicon.accepts(l); });
    CHECK(r.labels() == best.first);
    CHECK(r.log_prob == Approx(best.second).epsilon(1e-12));
    ++replaced;
  }
  CHECK(replaced >= 4);
}

TEST_CASE("lexicon correction joins two words split by a doubtful punctuation symbol",
          "[ctc][decode]") {
  // Classes: blank 0, a=1, b=2, space 3, '?' 4, apostrophe 5. "ba?ab" where '?' is nearly a b:
  // "babab".
  const std::vector<uint8_t> word_label{0, 2, 2, 3, 0, 4};
  const LabelFsa lexicon = LabelFsa::lexicon({{2, 1, 2, 1, 2}, {1, 2, 1}});  // "babab", "aba"
  auto line = [](double b_at_mark, int mark) {
    std::vector<double> m{0.02, 0.02, b_at_mark, 0.02, 0.02, 0.02};
    m[size_t(mark)] = 0.5;
    return frames_of({{0.02, 0.02, 0.9, 0.02, 0.02, 0.02},
                      {0.02, 0.9, 0.02, 0.02, 0.02, 0.02},
                      m,  // '?' (or the apostrophe), or b
                      {0.02, 0.9, 0.02, 0.02, 0.02, 0.02},
                      {0.02, 0.02, 0.9, 0.02, 0.02, 0.02}});
  };
  const Tensor<double> close = line(0.4, 4);
  const CtcResult greedy = ctc_greedy_decode(close, 0, -1, 0);
  REQUIRE(greedy.labels() == Labels{2, 1, 4, 1, 2});
  CHECK(ctc_lexicon_correct(close, 0, -1, greedy, lexicon, word_label).labels() ==
        Labels{2, 1, 2, 1, 2});
  // A sure '?' stays, and so do the words around it.
  const Tensor<double> sure = line(0.001, 4);
  const CtcResult g2 = ctc_greedy_decode(sure, 0, -1, 0);
  CHECK(ctc_lexicon_correct(sure, 0, -1, g2, lexicon, word_label).labels() == g2.labels());
  // A space is no punctuation: words around it are never joined.
  const std::vector<uint8_t> space_kind{0, 2, 2, 3, 3, 4};
  CHECK(ctc_lexicon_correct(close, 0, -1, greedy, lexicon, space_kind).labels() == greedy.labels());
  // An apostrophe is never joined across ("it's" is not "its"), and the words beside it are
  // left alone ("he'll" does not become "he'Il").
  const Tensor<double> apostrophe = line(0.4, 5);
  const CtcResult g3 = ctc_greedy_decode(apostrophe, 0, -1, 0);
  REQUIRE(g3.labels() == Labels{2, 1, 5, 1, 2});
  CHECK(ctc_lexicon_correct(apostrophe, 0, -1, g3, lexicon, word_label).labels() == g3.labels());
  const std::vector<uint8_t> as_punctuation{0, 2, 2, 3, 0, 0};
  CHECK(ctc_lexicon_correct(apostrophe, 0, -1, g3, lexicon, as_punctuation).labels() ==
        Labels{2, 1, 2, 1, 2});
  // Both pieces need two symbols: "b?ab" is not joined (and "ab" alone is corrected to "aba"
  // only if the frames allow; here they do not: 2 frames).
  const Tensor<double> short_piece = frames_of({{0.02, 0.02, 0.9, 0.02, 0.02, 0.02},
                                                {0.02, 0.02, 0.4, 0.02, 0.5, 0.02},
                                                {0.02, 0.9, 0.02, 0.02, 0.02, 0.02},
                                                {0.02, 0.02, 0.9, 0.02, 0.02, 0.02}});
  const CtcResult g4 = ctc_greedy_decode(short_piece, 0, -1, 0);
  REQUIRE(g4.labels() == Labels{2, 4, 1, 2});
  CHECK(ctc_lexicon_correct(short_piece, 0, -1, g4, lexicon, word_label).labels() == g4.labels());
}
