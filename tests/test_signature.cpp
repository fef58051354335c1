// Signature verification in the library: writer datasets, the verification protocol, enrollment
// files, and a verifier trained end to end by bpkit's training driver (data.layout: writers) on
// drawn "signatures", then run by SignatureVerifier.
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "bpkit/config.h"
#include "bpkit/error.h"
#include "bpkit/random.h"
#include "bpkit/signature.h"
#include "bpkit/train.h"
#include "temp_dir.h"

using bpkit_test::TempDir;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("writer datasets: layout, order and mistakes", "[signature]") {
  TempDir t("writers");
  touch(t.file("w2/genuine/b.png"));
  touch(t.file("w2/genuine/a.jpg"));
  touch(t.file("w2/genuine/notes.txt"));  // not an image
  touch(t.file("w1/genuine/1.png"));
  touch(t.file("w1/genuine/2.png"));
  touch(t.file("w1/forgeries/f.png"));
  fs::create_directories(t.file("cache"));  // not a writer
  const bpkit::WriterDataset d = bpkit::read_writer_dataset(t.path());
  REQUIRE(d.writers.size() == 2);
  CHECK(d.writers[0].id == "w1");
  CHECK(d.writers[0].forgeries.size() == 1);
  CHECK(d.writers[1].id == "w2");
  REQUIRE(d.writers[1].genuine.size() == 2);
  CHECK(fs::path(d.writers[1].genuine[0]).filename() == "a.jpg");
  CHECK(d.writers[1].forgeries.empty());

  touch(t.file("w3/genuine/only.png"));
  CHECK_THAT(error_of([&] { bpkit::read_writer_dataset(t.path()); }), Contains("at least two"));
  TempDir e("writers-empty");
  CHECK_THAT(error_of([&] { bpkit::read_writer_dataset(e.path()); }),
             Contains("no writer directories"));
  CHECK_THAT(error_of([&] { bpkit::read_writer_dataset(e.file("missing")); }),
             Contains("not a dataset directory"));
  touch(e.file("w9/forgeries/f.png"));
  CHECK_THAT(error_of([&] { bpkit::read_writer_dataset(e.path()); }), Contains("no genuine/"));
}

TEST_CASE("the verification protocol: references, trials and scores", "[signature]") {
  // Two writers in two dimensions: writer a's genuine signatures at (1, 0), its forgery at (0, 1);
  // writer b's at (0, 1) too (so b's genuine is a perfect random forgery of a... at score 0).
  bpkit::WriterDataset d;
  d.writers = {{"a", {"a1", "a2", "a3"}, {"af"}}, {"b", {"b1", "b2", "b3"}, {}}};
  const std::map<std::string, std::vector<float>> emb{
      {"a1", {1, 0}}, {"a2", {1, 0}}, {"a3", {0.6f, 0.8f}}, {"af", {0, 1}},
      {"b1", {0, 1}}, {"b2", {0, 1}}, {"b3", {0, 1}}};
  const bpkit::VerificationTrials t = bpkit::verification_trials(
      d, [&](const std::string& f) { return emb.at(f).data(); }, 2, 2);
  CHECK(t.writers == 2);
  // a: refs a1, a2; genuine a3 (score 1 − 0.8/2 = 0.6), skilled af (0), random b3 (0).
  // b: refs b1, b2; genuine b3 (1), random a3 (1 − (0.36 + 0.04)/2 = 0.8).
  REQUIRE(t.genuine.size() == 2);
  CHECK(t.genuine[0] == Approx(0.6));
  CHECK(t.genuine[1] == Approx(1.0));
  REQUIRE(t.skilled.size() == 1);
  CHECK(t.skilled[0] == Approx(0.0));
  REQUIRE(t.random.size() == 2);
  CHECK(t.random[0] == Approx(0.0));
  CHECK(t.random[1] == Approx(0.8));
  const bpkit::VerificationSummary s = bpkit::summarize_trials(t, 0.7);
  CHECK(s.frr == Approx(0.5));  // a3 at 0.6 is rejected
  CHECK(s.far_skilled == 0);
  CHECK(s.far_random == Approx(0.5));  // a3 against b's references is accepted
  CHECK(s.skilled.eer == 0);
  // Three references leave writer a no genuine query: it gives no trial at all.
  CHECK(bpkit::verification_trials(
            d, [&](const std::string& f) { return emb.at(f).data(); }, 2, 3)
            .writers == 0);
}

TEST_CASE("the score: cosine with the references' mean direction", "[signature]") {
  const float x[2] = {1, 0}, y[2] = {0, 1}, q[2] = {3, 0}, zero[2] = {0, 0};
  // References (1, 0) and (0, 1): their mean points along (1, 1), 45 degrees from the query
  // (3, 0), whatever the query's length (the mean of the two cosines would be 0.5).
  CHECK(bpkit::verification_score(q, {x, y}, 2) == Approx(std::sqrt(0.5)));
  CHECK(bpkit::verification_score(y, {y}, 2) == Approx(1.0));
  CHECK(bpkit::verification_score(x, {y}, 2) == Approx(0.0));
  // A reference set that cancels out, and a zero query, resemble nothing.
  const float mx[2] = {-1, 0};
  CHECK(bpkit::verification_score(q, {x, mx}, 2) == -1);
  CHECK(bpkit::verification_score(zero, {x}, 2) == -1);
  CHECK_THROWS_AS(bpkit::verification_score(q, {}, 2), std::invalid_argument);
}

TEST_CASE("per-count thresholds: the metadata format", "[signature]") {
  const std::vector<std::pair<int, double>> th{{1, 0.5}, {3, 0.6125}, {12, -0.1}};
  CHECK(bpkit::format_thresholds(th) == "1=0.5 3=0.61250000000000004 12=-0.10000000000000001");
  CHECK(bpkit::parse_thresholds(bpkit::format_thresholds(th)) == th);
  CHECK(bpkit::parse_thresholds("").empty());
  for (const char* bad : {"3", "=0.5", "0=0.5", "1001=0.5", "2=", "2=x", "2=nan", "2=0.5x",
                          "3=0.5 2=0.4", "3=0.5 3=0.6", "a=1"}) {
    INFO(bad);
    CHECK_THROWS_AS(bpkit::parse_thresholds(bad), std::invalid_argument);
  }
}

TEST_CASE("enrollment files: add, skip repeats, refuse another model, bad ids", "[signature]") {
  TempDir t("enroll");
  bpkit::EnrollmentDb db(t.file("db"));
  CHECK_FALSE(db.has("alice"));
  CHECK(db.add("alice", "m1", {{"a.png", "d1", {1, 0}}, {"b.png", "d2", {0, 1}}}) == 2);
  CHECK(db.add("alice", "m1", {{"b-again.png", "d2", {0, 1}}, {"c.png", "d3", {1, 1}}}) == 1);
  const bpkit::EnrollmentDb::Writer w = db.load("alice");
  CHECK(w.model_id == "m1");
  REQUIRE(w.references.size() == 3);
  CHECK(w.references[2].file == "c.png");
  CHECK(w.references[1].embedding == std::vector<float>{0, 1});
  CHECK_THAT(error_of([&] {
               db.add("alice", "m2", {{"d.png", "d4", {1, 0}}});
             }),
             Contains("another verifier model"));
  CHECK(db.load("alice").references.size() == 3);  // unchanged by the refused add
  CHECK_THAT(error_of([&] { db.load("bob"); }), Contains("not enrolled"));
  for (const char* bad : {"", "../x", ".hidden", "a/b", "a b"})
    CHECK_THROWS_AS(db.add(bad, "m1", {}), std::invalid_argument);
  bpkit_test::write_bytes(t.file("db/carol.json"), "{\"format\": \"bpkit-signature-enr");
  CHECK_THAT(error_of([&] { db.load("carol"); }), Contains("damaged"));
  bpkit_test::write_bytes(t.file("db/dave.json"),
                          "{\"format\": \"bpkit-signature-enrollment\", \"version\": 7}");
  CHECK_THAT(error_of([&] { db.load("dave"); }), Contains("version 7"));
  // Only the writers' files are in the directory (no temporary file left behind).
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(t.file("db")))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"alice.json", "carol.json", "dave.json"});
}

namespace {

// A drawn "signature": writer w's plan is a random polyline of 6 points; genuine samples move the
// points a little, forgeries more. Black strokes on white, 64×64.
void draw_writer(const std::string& dir, int w, int genuine, int forgeries) {
  bpkit::Rng plan(1000 + uint64_t(w));
  std::vector<cv::Point2d> pts;
  for (int i = 0; i < 6; ++i) pts.emplace_back(8 + plan.uniform() * 48, 8 + plan.uniform() * 48);
  auto draw = [&](const std::string& path, double jitter, uint64_t seed) {
    bpkit::Rng r(seed);
    cv::Mat img(64, 64, CV_8UC1, cv::Scalar(255));
    std::vector<cv::Point> p;
    for (const auto& q : pts)
      p.emplace_back(int(q.x + jitter * (r.uniform() * 2 - 1)),
                     int(q.y + jitter * (r.uniform() * 2 - 1)));
    cv::polylines(img, p, false, cv::Scalar(0), 2, cv::LINE_AA);
    fs::create_directories(fs::path(path).parent_path());
    cv::imwrite(path, img);
  };
  const std::string base = dir + "/w" + std::to_string(w);
  for (int i = 0; i < genuine; ++i)
    draw(base + "/genuine/" + std::to_string(i) + ".png", 2.0, uint64_t(w) * 100 + uint64_t(i));
  for (int i = 0; i < forgeries; ++i)
    draw(base + "/forgeries/" + std::to_string(i) + ".png", 9.0,
         uint64_t(w) * 100 + 50 + uint64_t(i));
}

}  // namespace

TEST_CASE("a verifier trained on writers verifies writers it never saw", "[signature][learning]") {
  TempDir t("verifier");
  for (int w = 0; w < 24; ++w) draw_writer(t.file("train"), w, 8, 4);
  for (int w = 24; w < 32; ++w) draw_writer(t.file("test"), w, 8, 4);
  const std::string config = t.file("signature.yaml");
  bpkit_test::write_bytes(config,
                          "name: drawn\n"
                          "stages:\n"
                          "  - plugin: image.read\n"
                          "  - plugin: image.gray\n"
                          "  - plugin: image.invert\n"
                          "  - plugin: image.resize\n"
                          "    params: {width: 32, height: 32}\n"
                          "  - plugin: image.features\n"
                          "data:\n"
                          "  layout: writers\n"
                          "  train: train\n"
                          "  test: test\n"
                          "  validation_split: 0.2\n"
                          "  tuples: 1500\n"
                          "  references: 3\n"
                          "network:\n"
                          "  layers:\n"
                          "    - flatten: {}\n"
                          "    - dense: {units: 64}\n"
                          "    - tanh: {}\n"
                          "    - dense: {units: 16}\n"
                          "    - l2_normalize: {}\n"
                          "loss: {type: triplet, margin: 0.4}\n"
                          "optimizer: {type: adam, lr: 0.002}\n"
                          "training: {epochs: 6, batch: 32, seed: 3}\n"
                          "cache: false\n");
  bpkit::TrainRequest r;
  r.config = config;
  r.out_dir = t.file("model");
  r.plugin_dirs = {BPKIT_SIGNATURE_TEST_PLUGIN_DIR};
  r.use_cache = false;
  std::ostringstream log;
  r.log = &log;
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  INFO(log.str());
  CHECK(out.epochs_run == 6);
  REQUIRE(out.test_eer_skilled >= 0);
  // Untrained, the pixels alone already tell writers apart; what is checked is that training
  // and calibration produce a working verifier: low EERs on unseen writers.
  CHECK(out.test_eer_random < 0.1);
  CHECK(out.test_eer_skilled < 0.3);
  for (const char* f : {"model.bpk", "pipeline.yaml", "metrics.json", "curves.png", "det.png"})
    CHECK(fs::exists(t.file("model/") + f));
  CHECK_FALSE(fs::exists(t.file("model/checkpoint.bpk")));
  CHECK(cv::imread(t.file("model/det.png")).cols == 900);

  bpkit::SignatureVerifier v(t.file("model"), {BPKIT_SIGNATURE_TEST_PLUGIN_DIR});
  CHECK(v.dim() == 16);
  const std::vector<float> e = v.embed(t.file("test/w24/genuine/0.png"));
  double norm = 0;
  for (float x : e) norm += double(x) * x;
  CHECK(norm == Approx(1.0).epsilon(1e-4));
  // The batch path gives the one-file path's embeddings.
  const auto many = v.embed(
      std::vector<std::string>{t.file("test/w25/genuine/1.png"), t.file("test/w24/genuine/0.png")});
  for (size_t i = 0; i < e.size(); ++i) CHECK(many[1][i] == Approx(e[i]).margin(1e-5));
  // Scores: a writer's own genuine signature scores above another writer's.
  std::vector<std::vector<float>> refs;
  for (int i = 0; i < 3; ++i)
    refs.push_back(v.embed(t.file("test/w26/genuine/" + std::to_string(i) + ".png")));
  const double own = v.score(v.embed(t.file("test/w26/genuine/5.png")), refs);
  const double other = v.score(v.embed(t.file("test/w27/genuine/5.png")), refs);
  CHECK(own > other);
  CHECK(own >= v.threshold());
  // A threshold for every reference count the validation writers allow (8 genuine signatures:
  // 1-7 references); the trained count's is the model's threshold, and a mean of more
  // references is steadier, so the threshold rises with the count.
  std::string stored;
  for (const auto& kv : v.model().metadata())
    if (kv.first == "thresholds") stored = kv.second;
  INFO("thresholds: " << stored);
  const auto th = bpkit::parse_thresholds(stored);
  REQUIRE(th.size() == 7);
  CHECK(th.front().first == 1);
  CHECK(th.back().first == 7);
  CHECK(v.references() == 3);
  CHECK(v.threshold(3) == v.threshold());
  CHECK(v.threshold(1) == th.front().second);
  CHECK(v.threshold(1) < v.threshold(7));
  CHECK(v.threshold(12) == v.threshold(7));  // beyond the counts calibrated: the nearest
  // Each is the equal-error point of its own count's trials: calibrated on the training writers
  // (no validation split), the library protocol on them gives the same thresholds back.
  {
    std::string text = bpkit_test::read_bytes(config);
    text.replace(text.find("validation_split: 0.2"), 21, "validation_split: 0");
    bpkit_test::write_bytes(t.file("nosplit.yaml"), text);
    r.config = t.file("nosplit.yaml");
    r.out_dir = t.file("nosplit");
    r.log = nullptr;
    bpkit::train_pipeline(r);
    bpkit::SignatureVerifier w(t.file("nosplit"), {BPKIT_SIGNATURE_TEST_PLUGIN_DIR});
    const bpkit::WriterDataset train_set = bpkit::read_writer_dataset(t.file("train"));
    for (int n = 1; n <= 7; ++n) {
      const bpkit::VerificationTrials tr = bpkit::evaluate_verifier(w, train_set, n);
      INFO("references " << n);
      CHECK(w.threshold(size_t(n)) ==
            Approx(bpkit::equal_error_rate(tr.genuine, tr.skilled).threshold).margin(1e-5));
    }
  }
  // The library protocol on the test set agrees with what training reported.
  const bpkit::VerificationSummary s = bpkit::summarize_trials(
      bpkit::evaluate_verifier(v, bpkit::read_writer_dataset(t.file("test")), 3), v.threshold());
  CHECK(s.skilled.eer == Approx(out.test_eer_skilled).margin(1e-4));
  CHECK(s.random.eer == Approx(out.test_eer_random).margin(1e-4));
  // A blank page is refused with its file name.
  cv::imwrite(t.file("blank.png"), cv::Mat(64, 64, CV_8UC1, cv::Scalar(255)));
  CHECK_NOTHROW(v.embed(t.file("blank.png")));  // the drawn pipeline has no ink check
  CHECK_THROWS_AS(v.embed(t.file("missing.png")), std::exception);
  // A classifier's directory is not a verifier.
  CHECK_THROWS_AS(bpkit::SignatureVerifier(t.file("missing-model")), bpkit::FileError);
}

TEST_CASE("tuple manifests: format, paths and mistakes", "[signature]") {
  TempDir t("tuple_manifest");
  for (const char* f : {"a/1.png", "a/2.png", "b/1.png"}) touch(t.file(f));
  const std::string pairs = t.file("pairs.tsv");
  bpkit_test::write_bytes(pairs,
                          "# reference\tquery\tlabel\n"
                          "a/1.png\ta/2.png\t1\n"
                          "\n"
                          "a/1.png\tb/1.png\trandom\r\n"
                          "a/2.png\tb/1.png\tskilled\n"
                          "b/1.png\ta/2.png\t0\n");
  const bpkit::TupleManifest m = bpkit::read_tuple_manifest(pairs, 2);
  REQUIRE(m.size() == 4);
  CHECK(m.files ==
        std::vector<std::string>{t.file("a/1.png"), t.file("a/2.png"), t.file("b/1.png")});
  CHECK(m.tuples == std::vector<int64_t>{0, 1, 0, 2, 1, 2, 2, 1});
  CHECK(m.kinds == std::vector<int32_t>{bpkit::kGenuinePair, bpkit::kRandomPair,
                                        bpkit::kSkilledPair, bpkit::kSkilledPair});
  CHECK(m.lines == std::vector<int>{2, 4, 5, 6});
  // Trials: each pair's cosine, by kind.
  const std::vector<std::vector<float>> e{{1, 0}, {0.6f, 0.8f}, {0, 1}};
  const bpkit::VerificationTrials tr = bpkit::tuple_trials(
      m, {}, [&](int64_t i) { return e[size_t(i)].data(); }, 2);
  REQUIRE(tr.genuine.size() == 1);
  CHECK(tr.genuine[0] == Approx(0.6));
  CHECK(tr.random == std::vector<double>{0.0});
  REQUIRE(tr.skilled.size() == 2);
  CHECK(tr.skilled[0] == Approx(0.8));
  CHECK(bpkit::tuple_trials(
            m, {2}, [&](int64_t i) { return e[size_t(i)].data(); }, 2)
            .skilled.size() == 1);
  // A triplet is a genuine and a skilled-forgery trial.
  bpkit_test::write_bytes(t.file("triplets.tsv"), "a/1.png\ta/2.png\tb/1.png\n");
  const bpkit::TupleManifest tm = bpkit::read_tuple_manifest(t.file("triplets.tsv"), 3);
  const bpkit::VerificationTrials tt = bpkit::tuple_trials(
      tm, {}, [&](int64_t i) { return e[size_t(i)].data(); }, 2);
  REQUIRE(tt.genuine.size() == 1);
  CHECK(tt.genuine[0] == Approx(0.6));
  CHECK(tt.skilled == std::vector<double>{0.0});
  // Mistakes name the file and line.
  auto error = [&](const std::string& text, int arity = 2) {
    bpkit_test::write_bytes(t.file("bad.tsv"), text);
    return error_of([&] { bpkit::read_tuple_manifest(t.file("bad.tsv"), arity); });
  };
  CHECK_THAT(error("a/1.png\ta/2.png\n"), Contains("bad.tsv:1: 2 tab-separated field(s)"));
  CHECK_THAT(error("# c\na/1.png a/2.png 1\n"), Contains("bad.tsv:2: 1 tab-separated"));
  CHECK_THAT(error("a/1.png\ta/2.png\tyes\n"), Contains("bad.tsv:1: label 'yes'"));
  CHECK_THAT(error("a/1.png\tc/9.png\t1\n"), Contains("c/9.png: no such file"));
  CHECK_THAT(error("a/1.png\t./a/1.png\t1\n"), Contains("bad.tsv:1: names"));
  CHECK_THAT(error("a/1.png\t\t1\n"), Contains("bad.tsv:1: field 2 is empty"));
  CHECK_THAT(error("a\ta/2.png\t1\n"), Contains("not a regular file"));
  CHECK_THAT(error("# nothing\n"), Contains("no tuple in it"));
  CHECK_THAT(error("a/1.png\ta/2.png\t1\n", 3),
             Contains("bad.tsv:1: ") && Contains("no such file"));
  CHECK_THAT(error_of([&] { bpkit::read_tuple_manifest(t.file("a"), 2); }),
             Contains("a directory") && Contains("data.layout: writers"));
  CHECK_THAT(error_of([&] { bpkit::read_tuple_manifest(t.file("none.tsv"), 2); }),
             Contains("none.tsv: cannot read the tuple manifest (No such file"));
}

TEST_CASE("verifiers trained on pair and triplet manifests", "[signature][learning]") {
  TempDir t("verifier_tuples");
  for (int w = 0; w < 24; ++w) draw_writer(t.file("train"), w, 8, 4);
  for (int w = 24; w < 32; ++w) draw_writer(t.file("test"), w, 8, 4);
  // Pairs and triplets of the drawn writers, paths relative to the manifests.
  auto g = [](const std::string& set, int w, int i) {
    return set + "/w" + std::to_string(w) + "/genuine/" + std::to_string(i) + ".png";
  };
  auto f = [](const std::string& set, int w, int i) {
    return set + "/w" + std::to_string(w) + "/forgeries/" + std::to_string(i) + ".png";
  };
  auto write_pairs = [&](const std::string& file, const std::string& set, int from, int to) {
    std::string text = "# reference\tquery\tlabel\n";
    for (int w = from; w < to; ++w) {
      const int o = w + 1 < to ? w + 1 : from;
      for (int i = 0; i < 7; ++i) text += g(set, w, i) + "\t" + g(set, w, i + 1) + "\t1\n";
      for (int i = 0; i < 4; ++i) text += g(set, w, i) + "\t" + f(set, w, i) + "\tskilled\n";
      for (int i = 0; i < 4; ++i) text += g(set, w, i) + "\t" + g(set, o, i) + "\trandom\n";
    }
    bpkit_test::write_bytes(t.file(file), text);
  };
  write_pairs("train_pairs.tsv", "train", 0, 24);
  write_pairs("test_pairs.tsv", "test", 24, 32);
  std::string triplets;
  for (int w = 0; w < 24; ++w)
    for (int i = 0; i < 7; ++i)
      triplets += g("train", w, i) + "\t" + g("train", w, i + 1) + "\t" +
                  (i % 2 ? f("train", w, i % 4) : g("train", (w + 1 + i) % 24, i)) + "\n";
  bpkit_test::write_bytes(t.file("train_triplets.tsv"), triplets);
  auto config = [&](const std::string& name, const std::string& data, const std::string& loss) {
    bpkit_test::write_bytes(t.file(name),
                            "name: drawn\n"
                            "stages:\n"
                            "  - plugin: image.read\n"
                            "  - plugin: image.gray\n"
                            "  - plugin: image.invert\n"
                            "  - plugin: image.resize\n"
                            "    params: {width: 32, height: 32}\n"
                            "  - plugin: image.features\n"
                            "data:\n" +
                                data +
                                "network:\n"
                                "  layers:\n"
                                "    - flatten: {}\n"
                                "    - dense: {units: 64}\n"
                                "    - tanh: {}\n"
                                "    - dense: {units: 16}\n"
                                "    - l2_normalize: {}\n" +
                                loss +
                                "optimizer: {type: adam, lr: 0.002}\n"
                                "training: {epochs: 12, batch: 16, seed: 3}\n"
                                "cache: false\n");
    return t.file(name);
  };
  auto train = [&](const std::string& cfg, const std::string& out) {
    bpkit::TrainRequest r;
    r.config = cfg;
    r.out_dir = t.file(out);
    r.plugin_dirs = {BPKIT_SIGNATURE_TEST_PLUGIN_DIR};
    r.use_cache = false;
    return bpkit::train_pipeline(r);
  };
  const std::vector<std::string> plugins{BPKIT_SIGNATURE_TEST_PLUGIN_DIR};

  // Pairs, with the contrastive loss (the default for pairs).
  const bpkit::TrainOutcome p = train(config("pairs.yaml",
                                             "  layout: pairs\n"
                                             "  train: train_pairs.tsv\n"
                                             "  test: test_pairs.tsv\n"
                                             "  validation_split: 0.2\n",
                                             ""),
                                      "pairs");
  CHECK(p.epochs_run == 12);
  // Unseen writers (8, with 56 genuine, 32 skilled and 32 random pairs: coarse figures).
  CHECK(p.test_eer_skilled < 0.35);
  CHECK(p.test_eer_random < 0.25);
  bpkit::SignatureVerifier v(t.file("pairs"), plugins);
  CHECK(v.references() == 1);
  // What training reported on the test pairs is the library's trials on the verifier.
  const bpkit::TupleManifest test_m = bpkit::read_tuple_manifest(t.file("test_pairs.tsv"), 2);
  const auto emb = v.embed(test_m.files);
  const bpkit::VerificationSummary s = bpkit::summarize_trials(
      bpkit::tuple_trials(
          test_m, {}, [&](int64_t i) { return emb[size_t(i)].data(); }, v.dim()),
      v.threshold());
  CHECK(s.skilled.eer == Approx(p.test_eer_skilled).margin(1e-4));
  CHECK(s.random.eer == Approx(p.test_eer_random).margin(1e-4));
  std::map<std::string, std::string> meta;
  for (const auto& kv : v.model().metadata()) meta[kv.first] = kv.second;
  // Validation holds out whole writers (the groups genuine pairs join): 4 of 24, 15 pairs each;
  // training leaves out the 4 random pairs of each of the 4 writers whose next writer (their
  // random pairs' queries) is held out: 300 - 16.
  CHECK(meta["train_pairs"] == "284");
  CHECK(meta["validation_pairs"] == "60");
  // The pairs were learned with their labels: the training pairs are told apart.
  CHECK(std::stod(meta["train_eer_skilled"]) < 0.05);
  CHECK(std::stod(meta["train_eer_random"]) < 0.05);
  CHECK(bpkit::parse_thresholds(meta["thresholds"]).size() == 1);

  // Triplets with no validation split: the threshold is the training triplets' equal-error point.
  train(config("triplets.yaml",
               "  layout: triplets\n"
               "  train: train_triplets.tsv\n",
               "loss: {type: triplet, margin: 0.4}\n"),
        "triplets");
  bpkit::SignatureVerifier tv(t.file("triplets"), plugins);
  const bpkit::TupleManifest train_m = bpkit::read_tuple_manifest(t.file("train_triplets.tsv"), 3);
  const auto temb = tv.embed(train_m.files);
  const bpkit::VerificationTrials tt = bpkit::tuple_trials(
      train_m, {}, [&](int64_t i) { return temb[size_t(i)].data(); }, tv.dim());
  CHECK(tv.threshold() ==
        Approx(bpkit::equal_error_rate(tt.genuine, tt.skilled).threshold).margin(1e-5));
  CHECK(bpkit::summarize_trials(tt, tv.threshold()).skilled.eer < 0.2);

  // Mistakes in the pipeline file.
  CHECK_THAT(error_of([&] {
               train(config("bad1.yaml", "  layout: pairs\n  train: train_pairs.tsv\n",
                            "loss: {type: triplet}\n"),
                     "bad1");
             }),
             Contains("data.layout: pairs trains with loss: contrastive, not triplet"));
  CHECK_THAT(error_of([&] {
               train(config("bad2.yaml",
                            "  layout: triplets\n  train: train_triplets.tsv\n  mining: 4\n", ""),
                     "bad2");
             }),
             Contains("data.mining is for data.layout: writers"));
  CHECK_THAT(error_of([&] {
               train(config("bad3.yaml", "  layout: pairs\n  train: train\n", ""), "bad3");
             }),
             Contains("a directory, but data.layout: pairs reads a manifest file"));
  CHECK_THAT(error_of([&] {
               train(config("bad4.yaml", "  layout: pairs\n  train: train_triplets.tsv\n", ""),
                     "bad4");
             }),
             Contains("train_triplets.tsv:1: label"));
}

TEST_CASE("training.on_error: skip drops the scans a verifier's stages refuse", "[signature]") {
  TempDir t("verifier_skip");
  for (int w = 0; w < 10; ++w) draw_writer(t.file("train"), w, 5, 2);
  for (int w = 10; w < 14; ++w) draw_writer(t.file("test"), w, 5, 2);
  touch(t.file("train/w3/genuine/9.png"));    // not an image
  touch(t.file("test/w11/forgeries/9.png"));  // not an image
  // A writer left with one genuine signature is no longer a training writer.
  for (int i = 1; i < 5; ++i) touch(t.file("train/w7/genuine/" + std::to_string(i) + ".png"));
  auto config = [&](const std::string& on_error) {
    bpkit_test::write_bytes(t.file("s.yaml"),
                            "name: drawn\n"
                            "stages:\n"
                            "  - plugin: image.read\n"
                            "  - plugin: image.gray\n"
                            "  - plugin: image.resize\n"
                            "    params: {width: 16, height: 16}\n"
                            "  - plugin: image.features\n"
                            "data: {layout: writers, train: train, test: test, tuples: 100,"
                            " references: 2}\n"
                            "network:\n  layers:\n    - flatten: {}\n    - dense: {units: 8}\n"
                            "    - l2_normalize: {}\n"
                            "training: {epochs: 1, batch: 16, seed: 1, threads: 1" +
                                on_error + "}\ncache: false\n");
    return t.file("s.yaml");
  };
  bpkit::TrainRequest r;
  r.config = config("");
  r.out_dir = t.file("m");
  r.plugin_dirs = {BPKIT_SIGNATURE_TEST_PLUGIN_DIR};
  r.use_cache = false;
  CHECK_THAT(error_of([&] { bpkit::train_pipeline(r); }), Contains("w3/genuine/9.png"));
  r.config = config(", on_error: skip");
  std::ostringstream log;
  r.log = &log;
  const bpkit::TrainOutcome out = bpkit::train_pipeline(r);
  INFO(log.str());
  CHECK_THAT(log.str(), Contains("skipped 5 scan(s) the stages refused"));
  CHECK(out.test_eer_skilled >= 0);
  std::string meta;
  bpkit::SignatureVerifier v(t.file("m"), {BPKIT_SIGNATURE_TEST_PLUGIN_DIR});
  for (const auto& kv : v.model().metadata())
    if (kv.first == "train_writers") meta = kv.second;
  CHECK(meta == "9");  // w7 is left out
}

TEST_CASE("a verifier ensemble (training.members) concatenates its members' embeddings",
          "[signature][learning]") {
  TempDir t("verifier_members");
  for (int w = 0; w < 16; ++w) draw_writer(t.file("train"), w, 7, 3);
  for (int w = 16; w < 22; ++w) draw_writer(t.file("test"), w, 7, 3);
  auto config = [&](const std::string& name, int members, const std::string& training = "") {
    const std::string path = t.file(name);
    bpkit_test::write_bytes(path,
                            "name: drawn\n"
                            "stages:\n"
                            "  - plugin: image.read\n"
                            "  - plugin: image.gray\n"
                            "  - plugin: image.resize\n"
                            "    params: {width: 24, height: 24}\n"
                            "  - plugin: image.features\n"
                            "data:\n"
                            "  layout: writers\n"
                            "  train: train\n"
                            "  test: test\n"
                            "  validation_split: 0.25\n"
                            "  tuples: 400\n"
                            "  references: 3\n"
                            "network:\n"
                            "  layers:\n"
                            "    - flatten: {}\n"
                            "    - dense: {units: 32}\n"
                            "    - tanh: {}\n"
                            "    - dense: {units: 8}\n"
                            "    - l2_normalize: {}\n"
                            "loss: {type: triplet, margin: 0.4}\n"
                            "optimizer: {type: adam, lr: 0.002}\n"
                            "training: {epochs: 3, batch: 32, seed: 5, threads: 1, members: " +
                                std::to_string(members) + training +
                                "}\n"
                                "cache: false\n");
    return path;
  };
  auto train = [&](const std::string& cfg, const std::string& out, uint64_t seed = 0) {
    bpkit::TrainRequest r;
    r.config = cfg;
    r.out_dir = out;
    r.use_cache = false;
    r.plugin_dirs = {BPKIT_SIGNATURE_TEST_PLUGIN_DIR};
    if (seed) r.seed = int64_t(seed);
    return bpkit::train_pipeline(r);
  };
  // A stale third member of an earlier run in the output directory is removed.
  fs::create_directories(t.file("ens"));
  bpkit_test::write_bytes(t.file("ens/model.3.bpk"), "stale");
  const bpkit::TrainOutcome ens = train(config("ens.yaml", 2), t.file("ens"));
  CHECK(fs::exists(t.file("ens/model.bpk")));
  CHECK(fs::exists(t.file("ens/model.2.bpk")));
  CHECK_FALSE(fs::exists(t.file("ens/model.3.bpk")));
  CHECK_FALSE(fs::exists(t.file("ens/member.1.bpk")));
  CHECK_FALSE(fs::exists(t.file("ens/member.2.bpk")));
  CHECK_FALSE(fs::exists(t.file("ens/checkpoint.bpk")));
  // The report says whose curves it draws and gives every member's best epoch.
  const std::string report = bpkit_test::read_bytes(t.file("ens/metrics.json"));
  CHECK_THAT(report, Contains("(curves: member 1 of 2)"));
  for (const char* key : {"\"member_1_best_epoch\"", "\"member_2_best_epoch\"",
                          "\"member_2_val_acc\"", "\"member_2_val_loss\""})
    CHECK_THAT(report, Contains(key));
  // Member 1 is the single network of the same seed; member 2 starts from, and draws its tuples
  // with, the next seed (the validation writers stay the same).
  train(config("one.yaml", 1), t.file("one"));
  const std::vector<std::string> plugins{BPKIT_SIGNATURE_TEST_PLUGIN_DIR};
  bpkit::SignatureVerifier v(t.file("ens"), plugins), a(t.file("one"), plugins);
  REQUIRE(v.dim() == 16);
  const std::string scan = t.file("test/w17/genuine/4.png");
  const std::vector<float> e = v.embed(scan), ea = a.embed(scan);
  double norm = 0, second = 0, apart = 0;
  for (float x : e) norm += double(x) * x;
  CHECK(norm == Approx(1.0).epsilon(1e-4));
  for (size_t i = 0; i < 8; ++i) {
    CHECK(e[i] == Approx(ea[i] / std::sqrt(2.0)).margin(1e-5));
    second += double(e[8 + i]) * e[8 + i];
    apart += std::abs(double(e[8 + i]) - e[i]);
  }
  CHECK(second == Approx(0.5).epsilon(1e-4));
  CHECK(apart > 0.05);
  // The score is the cosine of the concatenations, and training's test figures are the library
  // protocol's on the ensemble.
  const bpkit::VerificationSummary s = bpkit::summarize_trials(
      bpkit::evaluate_verifier(v, bpkit::read_writer_dataset(t.file("test")), 3), v.threshold());
  CHECK(s.skilled.eer == Approx(ens.test_eer_skilled).margin(1e-4));
  CHECK(s.random.eer == Approx(ens.test_eer_random).margin(1e-4));
  CHECK(v.model_id() != a.model_id());
  // training.init: an ensemble fine-tuned from the ensemble, each member from its own (a learning
  // rate of 1e-9 keeps the weights); the first member of a longer ensemble starts from model.bpk.
  const std::string ft = config("ft.yaml", 3, ", init: ens");
  {
    std::string text = bpkit_test::read_bytes(ft);
    text.replace(text.find("lr: 0.002"), 9, "lr: 1e-9");
    bpkit_test::write_bytes(ft, text);
  }
  train(ft, t.file("ft"));
  bpkit::SignatureVerifier f(t.file("ft"), plugins);
  REQUIRE(f.dim() == 24);
  const std::vector<float> ef = f.embed(scan);
  for (size_t i = 0; i < 16; ++i)
    CHECK(ef[i] * std::sqrt(3.0) == Approx(e[i] * std::sqrt(2.0)).margin(1e-4));
  for (size_t i = 0; i < 8; ++i) CHECK(ef[16 + i] == Approx(ef[i]).margin(1e-4));
  // training.init: DIR/model.bpk stands for DIR (each member from its own).
  {
    const std::string ft2 = config("ft2.yaml", 3, ", init: ens/model.bpk");
    std::string text = bpkit_test::read_bytes(ft2);
    text.replace(text.find("lr: 0.002"), 9, "lr: 1e-9");
    bpkit_test::write_bytes(ft2, text);
    train(ft2, t.file("ft2"));
    const std::vector<float> e2 = bpkit::SignatureVerifier(t.file("ft2"), plugins).embed(scan);
    for (size_t i = 0; i < ef.size(); ++i) CHECK(e2[i] == Approx(ef[i]).margin(1e-5));
  }
  // Files of two runs, or an ensemble short of a member (an interrupted write), are refused.
  fs::copy(t.file("ens"), t.file("mixed"));
  fs::copy_file(t.file("ft/model.2.bpk"), t.file("mixed/model.2.bpk"),
                fs::copy_options::overwrite_existing);
  CHECK_THAT(error_of([&] { bpkit::SignatureVerifier(t.file("mixed"), plugins); }),
             Contains("model.2.bpk: from another training run"));
  fs::remove(t.file("mixed/model.2.bpk"));
  CHECK_THAT(error_of([&] { bpkit::SignatureVerifier(t.file("mixed"), plugins); }),
             Contains("1 verifier network file(s), but model.bpk was trained in an ensemble of 2"));
  CHECK_THAT(error_of([&] { train(config("bad.yaml", 1, ", init: nowhere"), t.file("bad")); }),
             Contains("bad.yaml:24:67: training.init"));
  // bpkit ensemble refuses verifiers (their threshold must be calibrated on the ensemble), and
  // training.members is for verifiers only.
  CHECK_THAT(error_of([&] {
               bpkit::write_ensemble({t.file("one"), t.file("ens")}, t.file("x"));
             }),
             Contains("training.members"));
  bpkit_test::write_bytes(t.file("class.yaml"),
                          "name: c\nstages: [image.read]\ndata: {train: m.tsv}\n"
                          "network: {layers: [flatten, {dense: {units: 2}}]}\n"
                          "training: {members: 2}\n");
  CHECK_THAT(error_of([&] { bpkit::load_pipeline_config(t.file("class.yaml")); }),
             Contains("class.yaml:5"));
}
