// Associative memory on 8×8 characters (bench/assoc_memory.h): a fixed-point network trained by
// recurrent backpropagation against static networks of the same number of units and of the same
// number of parameters, at several corruption levels. Prints one table row per network and level,
// then a machine-readable last line. Never asserts; the fast test in tests/test_fixed_point.cpp
// does.
//
// usage: assoc_memory [--hidden H] [--steps S] [--chars C] [--seeds K] [--max-flips F]
//                     [--max-occluded R] [--eval N] [--threads T] [--symmetric] [--tol X]
//                     [--damping X] [--lr X]
// Defaults: H = 32 hidden units, S = 3000 Adam steps of 64 fresh corruptions, C = 20 characters,
// K = 3 seeds (networks and data), training flips uniform in [0, 16] and up to 3 hidden rows,
// N = 2000 held-out corruptions per level.
#include "assoc_memory.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include "bpkit/threading.h"
#include "bpkit/version.h"
#include "tool_args.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Level {
  const char* name;
  assoc::Corruption c;
};

struct Row {
  std::string name;
  int64_t params = 0, units = 0;
  std::vector<double> pixel, exact;  // per level, summed over seeds
  double train_s = 0, fwd_iters = 0, adj_iters = 0;
  int skipped = 0;          // training steps skipped (relaxation failed), all seeds
  int64_t unconverged = 0;  // held-out samples without an answer, all seeds and levels
};

const char kProgram[] = "assoc_memory";

const char kUsage[] =
    "usage: assoc_memory [--hidden H] [--steps S] [--chars C] [--seeds K] [--max-flips F]\n"
    "                    [--max-occluded R] [--eval N] [--threads T] [--symmetric] [--tol X]\n"
    "                    [--damping X] [--lr X]\n"
    "\n"
    "Associative memory on 8x8 characters: a fixed-point network trained by recurrent\n"
    "backpropagation against static networks of the same number of units and of parameters, at\n"
    "several corruption levels (docs/fixed_point.md). Prints one table row per network, then a\n"
    "machine-readable last line (rK_lL_pixel_err=...).\n"
    "\n"
    "  --hidden H        hidden units of the fixed-point net, 1..4096 (default 32)\n"
    "  --steps S         Adam steps of 64 fresh corruptions, 1..10000000 (default 3000)\n"
    "  --chars C         characters to store, 2..20 (default 20)\n"
    "  --seeds K         seeds (networks and data), 1..1000 (default 3)\n"
    "  --max-flips F     training flips uniform in [0, F], 0..64 (default 16)\n"
    "  --max-occluded R  training hidden rows uniform in [0, R], 0..8 (default 3)\n"
    "  --eval N          held-out corruptions per level and seed, 1..10000000 (default 2000)\n"
    "  --threads T       engine threads, 1..1024 (default: BPKIT_NUM_THREADS, else every\n"
    "                    hardware thread)\n"
    "  --symmetric       a symmetric weight matrix W for the fixed-point net\n"
    "  --tol X           forward relaxation tolerance, > 0 and <= 1 (default 1e-05)\n"
    "  --damping X       relaxation damping, > 0 and <= 1 (default 0.5)\n"
    "  --lr X            Adam learning rate, > 0 and <= 10 (default 0.01)\n"
    "  -h, --help        this text\n"
    "  --version         the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure, 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

int run_program(int argc, char** argv) {
  int64_t hidden = 32, eval_n = 2000;
  int chars = 20, seeds = 3;
  bool symmetric = false;
  double tol = 1e-5, damping = 0.5;
  assoc::TrainSettings ts;
  ts.steps = 3000;
  ts.max_flips = 16;
  ts.max_occluded = 3;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  // The option's value, a real number in (0, hi].
  auto positive = [&](const std::string& option, const char* hi_text, double hi) {
    const std::string v = args.value();
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end || !(x > 0 && x <= hi))
      usage_error(option + " expects a number > 0 and <= " + hi_text + ", got '" + v + "'");
    return x;
  };
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--hidden") {
      hidden = args.number(a, args.value(), 1, 4096);
    } else if (a == "--steps") {
      ts.steps = int(args.number(a, args.value(), 1, 10000000));
    } else if (a == "--chars") {
      chars = int(args.number(a, args.value(), 2, 20));
    } else if (a == "--seeds") {
      seeds = int(args.number(a, args.value(), 1, 1000));
    } else if (a == "--max-flips") {
      ts.max_flips = int(args.number(a, args.value(), 0, assoc::kPixels));
    } else if (a == "--max-occluded") {
      ts.max_occluded = int(args.number(a, args.value(), 0, 8));
    } else if (a == "--eval") {
      eval_n = args.number(a, args.value(), 1, 10000000);
    } else if (a == "--threads") {
      bpkit::set_num_threads(int(args.number(a, args.value(), 1, 1024)));
    } else if (a == "--symmetric") {
      symmetric = true;
    } else if (a == "--tol") {
      tol = positive(a, "1", 1);
    } else if (a == "--damping") {
      damping = positive(a, "1", 1);
    } else if (a == "--lr") {
      ts.lr = positive(a, "10", 10);
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      usage_error("unexpected argument '" + a + "'");
    }
  }
  const auto set = assoc::glyphs(chars);
  int min_dist = assoc::kPixels;
  for (size_t a = 0; a < set.size(); ++a)
    for (size_t b = a + 1; b < set.size(); ++b) {
      int d = 0;
      for (int i = 0; i < assoc::kPixels; ++i) d += set[a][size_t(i)] != set[b][size_t(i)];
      min_dist = std::min(min_dist, d);
    }

  const std::vector<Level> levels = {
      {"flip 4", {4, 0}},      {"flip 8", {8, 0}},          {"flip 12", {12, 0}},
      {"flip 16", {16, 0}},    {"flip 20", {20, 0}},        {"hide 3 rows", {0, 3}},
      {"hide 4 rows", {0, 4}}, {"hide 3 + flip 8", {8, 3}},
  };
  const size_t L = levels.size();
  // Held-out corruptions: their own random stream per seed, never used in training.
  auto held_out = [&](int seed, size_t level) {
    bpkit::Rng rng(1000003 * uint64_t(seed + 1) + level);
    return assoc::make_batch(set, eval_n, levels[level].c, rng);
  };

  // Same parameters as the fixed-point net: (64+H)² + 64·(64+H) + (64+H) = 129·H' + 64.
  const int64_t n = assoc::kPixels + hidden;
  const int64_t fp_params = n * n + assoc::kPixels * n + n;
  const int64_t mlp_same_params = std::max<int64_t>(1, (fp_params - assoc::kPixels) / 129);

  std::vector<Row> rows;
  struct Model {
    std::string name;
    std::function<bpkit::Network<float>(uint64_t)> make;
  };
  std::vector<Model> models = {
      {std::string("fixed point ") + (symmetric ? "symmetric " : "") + "64+" +
           std::to_string(hidden),
       [&](uint64_t s) { return assoc::fixed_point_net(hidden, s, symmetric, tol, damping); }},
      {"MLP 64-" + std::to_string(hidden) + "-64 (same units)",
       [&](uint64_t s) { return assoc::mlp_net(hidden, s); }},
      {"MLP 64-" + std::to_string(mlp_same_params) + "-64 (same params)",
       [&](uint64_t s) { return assoc::mlp_net(mlp_same_params, s); }},
      {"MLP 64-" + std::to_string(4 * mlp_same_params) + "-64 (4x the params)",
       [&](uint64_t s) { return assoc::mlp_net(4 * mlp_same_params, s); }},
  };
  Row copy{"copy the corrupted input", 0, 0, std::vector<double>(L), std::vector<double>(L)};
  Row nearest{"nearest stored character", 0, 0, std::vector<double>(L), std::vector<double>(L)};
  for (int seed = 0; seed < seeds; ++seed)
    for (size_t l = 0; l < L; ++l) {
      const assoc::Batch b = held_out(seed, l);
      const assoc::Score c = assoc::copy_input_score(b), r = assoc::nearest_character_score(set, b);
      copy.pixel[l] += c.pixel_error / seeds;
      copy.exact[l] += c.exact / seeds;
      nearest.pixel[l] += r.pixel_error / seeds;
      nearest.exact[l] += r.exact / seeds;
    }

  for (const Model& m : models) {
    Row row{m.name, 0, 0, std::vector<double>(L), std::vector<double>(L)};
    for (int seed = 0; seed < seeds; ++seed) {
      bpkit::Network<float> net = m.make(uint64_t(seed + 1));
      row.params = net.param_count();
      row.units = 0;
      for (size_t i = 0; i < net.size(); ++i)
        if (net.layer(i).kind() == "dense" || net.layer(i).kind() == "fixed_point")
          row.units += bpkit::shape_size(net.shape_after(i));
      if (net.layer(0).kind() == "fixed_point") row.units = n;
      assoc::TrainSettings s = ts;
      s.data_seed = uint64_t(seed + 1);
      const double t0 = now_s();
      const assoc::TrainResult tr = assoc::train(net, set, s);
      row.skipped += tr.skipped;
      if (tr.skipped > 0)
        std::fprintf(stderr, "%s seed %d: %d steps skipped; first: %s\n", m.name.c_str(), seed + 1,
                     tr.skipped, tr.first_failure.c_str());
      row.train_s += (now_s() - t0) / seeds;
      auto* fp = dynamic_cast<bpkit::FixedPoint<float>*>(&net.layer(0));
      if (fp) {
        row.adj_iters += fp->last_adjoint().mean_iterations / seeds;
      }
      double fwd = 0;
      for (size_t l = 0; l < L; ++l) {
        const assoc::Score sc = assoc::evaluate(net, held_out(seed, l));
        row.pixel[l] += sc.pixel_error / seeds;
        row.exact[l] += sc.exact / seeds;
        row.unconverged += sc.unconverged;
        if (fp) fwd += fp->last_forward().mean_iterations / double(L);
      }
      row.fwd_iters += fwd / seeds;
      std::fprintf(stderr, "%-40s seed %d: final training loss %.4f, %.1f s\n", m.name.c_str(),
                   seed + 1, tr.final_loss, now_s() - t0);
    }
    rows.push_back(row);
  }
  rows.push_back(copy);
  rows.push_back(nearest);

  std::printf(
      "Associative memory: %d characters of 8x8 (closest pair %d pixels apart), %d hidden "
      "units, %d Adam steps (lr %g) of %lld fresh corruptions (flips 0-%d, hidden rows "
      "0-%d), %d seeds, %lld held-out corruptions per level and seed\n\n",
      chars, min_dist, int(hidden), ts.steps, ts.lr, (long long)ts.batch, ts.max_flips,
      ts.max_occluded, seeds, (long long)eval_n);
  std::printf("pixel error %% (exact restorations %%)\n");
  std::printf("%-40s %7s %5s", "network", "params", "units");
  for (const Level& l : levels) std::printf(" %16s", l.name);
  std::printf(" %8s %9s\n", "train s", "fwd/adj it");
  for (const Row& r : rows) {
    std::printf("%-40s %7lld %5lld", r.name.c_str(), (long long)r.params, (long long)r.units);
    for (size_t l = 0; l < L; ++l) {
      char cell[32];
      std::snprintf(cell, sizeof cell, "%.2f (%.1f)", 100 * r.pixel[l], 100 * r.exact[l]);
      std::printf(" %16s", cell);
    }
    if (r.train_s > 0) std::printf(" %8.1f", r.train_s);
    if (r.fwd_iters > 0)
      std::printf(" %4.1f/%4.1f  %d steps skipped, %lld samples unconverged", r.fwd_iters,
                  r.adj_iters, r.skipped, (long long)r.unconverged);
    std::printf("\n");
  }
  // Machine-readable: pixel error of each network at each level, in the table's order.
  std::printf("\n");
  for (size_t k = 0; k < rows.size(); ++k)
    for (size_t l = 0; l < L; ++l)
      std::printf("r%zu_l%zu_pixel_err=%.5f%s", k, l, rows[k].pixel[l],
                  k + 1 == rows.size() && l + 1 == L ? "\n" : " ");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run_program(argc, argv); });
}
