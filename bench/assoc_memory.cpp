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
#include <functional>
#include <string>
#include <vector>

#include "bpkit/threading.h"
#include "bpkit/version.h"

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

long long arg_int(int& i, int argc, char** argv) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s expects a number\n", argv[i]);
    std::exit(2);
  }
  char* end = nullptr;
  const long long v = std::strtoll(argv[++i], &end, 10);
  if (*end != '\0' || v < 0) {
    std::fprintf(stderr, "%s expects a non-negative number, got '%s'\n", argv[i - 1], argv[i]);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "assoc_memory")) return 0;
  int64_t hidden = 32, eval_n = 2000;
  int chars = 20, seeds = 3;
  bool symmetric = false;
  double tol = 1e-5, damping = 0.5;
  assoc::TrainSettings ts;
  ts.steps = 3000;
  ts.max_flips = 16;
  ts.max_occluded = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--hidden")
      hidden = arg_int(i, argc, argv);
    else if (a == "--steps")
      ts.steps = int(arg_int(i, argc, argv));
    else if (a == "--chars")
      chars = int(arg_int(i, argc, argv));
    else if (a == "--seeds")
      seeds = int(arg_int(i, argc, argv));
    else if (a == "--max-flips")
      ts.max_flips = int(arg_int(i, argc, argv));
    else if (a == "--max-occluded")
      ts.max_occluded = int(arg_int(i, argc, argv));
    else if (a == "--eval")
      eval_n = arg_int(i, argc, argv);
    else if (a == "--threads")
      bpkit::set_num_threads(int(std::max(1LL, arg_int(i, argc, argv))));
    else if (a == "--symmetric")
      symmetric = true;
    else if (a == "--tol" && i + 1 < argc)
      tol = std::atof(argv[++i]);
    else if (a == "--damping" && i + 1 < argc)
      damping = std::atof(argv[++i]);
    else if (a == "--lr" && i + 1 < argc)
      ts.lr = std::atof(argv[++i]);
    else {
      std::fprintf(stderr, "unknown option '%s' (see the comment at the top of the source)\n",
                   a.c_str());
      return 2;
    }
  }
  if (chars < 2 || chars > 20 || seeds < 1 || ts.steps < 1 || eval_n < 1) {
    std::fprintf(stderr, "--chars must be in [2, 20]; --seeds, --steps and --eval at least 1\n");
    return 2;
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
