// The synthetic-signature generator (tools/sigma_lognormal.h, tools/signature_synth.h and
// tools/make_signatures): the sigma-lognormal maths against numerical integration, determinism,
// the ordering genuine < skilled forgery < other writer in shape distance, the forgers' skill,
// the clean scans and their resolution, and the command line.
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "sigma_lognormal.h"
#include "signature_synth.h"
#include "temp_dir.h"

namespace sl = bpkit_sigma;
namespace sig = bpkit_signatures;
namespace fs = std::filesystem;

namespace {

const std::string kTool = BPKIT_MAKE_SIGNATURES;

double path_length(const std::vector<sl::PenSample>& p) {
  double len = 0;
  for (size_t i = 1; i < p.size(); ++i) len += std::hypot(p[i].x - p[i - 1].x, p[i].y - p[i - 1].y);
  return len;
}

double wrap(double a) {
  return std::remainder(a, 2 * sl::kPi);
}

// Strokes with straight, gently and strongly curved paths, both ways, fast and slow.
std::vector<sl::Stroke> test_strokes() {
  return {{10, 0.0, -1.8, 0.25, 0.3, 0.3},
          {25, 0.05, -1.2, 0.4, 1.0, 2.2},
          {4, 0.1, -2.3, 0.15, -0.5, -2.9},
          {60, 0.0, -0.9, 0.3, 2.0, 2.0 - 4.0},
          {7, 0.2, -1.6, 0.5, 3.0, 1.4}};
}

// A signature's shape for comparisons: its ink cropped to the bounding box, resized to 96 x 32,
// blurred and normalized (L2): close shapes have a small distance whatever the pen and size.
cv::Mat shape_of(const cv::Mat& image) {
  cv::Mat gray = image;
  if (gray.channels() == 3) cv::cvtColor(image, gray, cv::COLOR_BGR2GRAY);
  cv::Mat ink;
  gray.convertTo(ink, CV_32F, -1.0 / 255, 1.0);
  cv::Mat mask = ink > 0.15;
  const cv::Rect box = cv::boundingRect(mask);
  REQUIRE(box.area() > 0);
  cv::Mat small;
  cv::resize(ink(box), small, cv::Size(96, 32), 0, 0, cv::INTER_AREA);
  cv::GaussianBlur(small, small, cv::Size(0, 0), 1.5);
  return small / cv::norm(small);
}

cv::Mat clean_scan(const sig::Signing& s, uint64_t seed, double dpi) {
  sig::ScanOptions o;
  o.clean = true;
  o.dpi_lo = o.dpi_hi = dpi;
  return sig::render_scan(s, seed, o).image;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / double(v.size());
}

int run(const std::string& args, const std::string& dir) {
  const int rc =
      std::system((kTool + " " + args + " >" + dir + "/tool.out 2>" + dir + "/tool.err").c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

// ---- The sigma-lognormal model ---------------------------------------------------------------

TEST_CASE("a lognormal stroke travels D along an arc and ends heading theta_e",
          "[signatures][sigma_lognormal]") {
  for (const sl::Stroke& s : test_strokes()) {
    CAPTURE(s.D, s.mu, s.sigma, s.theta_s, s.theta_e);
    sl::Component c{{1, 2}, {s}};
    const std::vector<sl::PenSample> num = sl::integrate(c, 1000);
    REQUIRE(num.size() > 10);
    // Numerical integration of the velocity: the distance is D, the end is the closed form's.
    CHECK(path_length(num) == Approx(s.D).epsilon(2e-3));
    const sl::Vec2 chord = sl::displacement(s);
    CHECK(num.back().x == Approx(1 + chord.x).margin(1e-3 * s.D));
    CHECK(num.back().y == Approx(2 + chord.y).margin(1e-3 * s.D));
    // The closed-form trajectory agrees with the integration at every sample time.
    const std::vector<sl::PenSample> closed = sl::trajectory(c, 1000);
    double worst = 0;
    for (const sl::PenSample& p : closed) {
      const sl::Vec2 d = sl::displacement(s, p.t);
      worst = std::max(worst, std::hypot(1 + d.x - p.x, 2 + d.y - p.y));
    }
    CHECK(worst < 1e-9 * s.D + 1e-12);
    for (size_t i = 0; i < num.size(); i += 97) {
      const sl::Vec2 d = sl::displacement(s, num[i].t);
      CHECK(std::hypot(1 + d.x - num[i].x, 2 + d.y - num[i].y) < 1e-4 * s.D);
    }
    // Direction: theta_s at the start, theta_e at the end, and the last movement heads there.
    CHECK(sl::direction(s, sl::onset_time(s, 6)) == Approx(s.theta_s).margin(1e-6));
    CHECK(sl::direction(s, sl::end_time(s, 6)) == Approx(s.theta_e).margin(1e-6));
    const size_t n = num.size();
    const double last = std::atan2(num[n - 1].y - num[n - 2].y, num[n - 1].x - num[n - 2].x);
    CHECK(std::fabs(wrap(last - s.theta_e)) < 0.01);
    // The distance is the integral of the speed: its derivative is the speed.
    const double t = sl::peak_time(s) + 0.01, h = 1e-6;
    CHECK((sl::distance(s, t + h) - sl::distance(s, t - h)) / (2 * h) ==
          Approx(sl::speed(s, t)).epsilon(1e-5));
  }
}

TEST_CASE("a lognormal stroke's speed peaks at t0 + exp(mu - sigma^2)",
          "[signatures][sigma_lognormal]") {
  for (const sl::Stroke& s : test_strokes()) {
    CAPTURE(s.t0, s.mu, s.sigma);
    double best_t = 0, best_v = -1;
    for (double t = s.t0; t < sl::end_time(s); t += 1e-5) {
      const double v = sl::speed(s, t);
      if (v > best_v) {
        best_v = v;
        best_t = t;
      }
    }
    CHECK(best_t == Approx(sl::peak_time(s)).margin(2e-5));
    CHECK(sl::peak_time(s) == Approx(s.t0 + std::exp(s.mu - s.sigma * s.sigma)));
    CHECK(sl::speed(s, s.t0) == 0);
    CHECK(sl::speed(s, s.t0 - 1) == 0);
  }
}

TEST_CASE("arc_stroke reaches its virtual target along an arc turning by the bend",
          "[signatures][sigma_lognormal]") {
  const double bends[] = {0, 0.4, -0.9, 2.5, -4.0, 5.5};
  for (double bend : bends) {
    CAPTURE(bend);
    const sl::Vec2 a{3, -1}, b{-2, 4};
    const sl::Stroke s = sl::arc_stroke(a, b, bend, 0.1, -1.7, 0.3);
    const sl::Vec2 d = sl::displacement(s);
    CHECK(d.x == Approx(b.x - a.x).margin(1e-9));
    CHECK(d.y == Approx(b.y - a.y).margin(1e-9));
    CHECK(s.theta_e - s.theta_s == Approx(bend));
    CHECK(s.D >= std::hypot(b.x - a.x, b.y - a.y) - 1e-12);  // an arc is longer than its chord
  }
}

TEST_CASE("overlapping strokes: the closed form is the integral of the summed velocity",
          "[signatures][sigma_lognormal]") {
  // A loop: four strokes, each starting before the previous ends.
  sl::Component c;
  c.start = {0, 0};
  const sl::Vec2 pts[] = {{0, 0}, {5, 5}, {0, 10}, {-5, 5}, {0, 0.5}};
  for (int i = 0; i < 4; ++i)
    c.strokes.push_back(sl::arc_stroke(pts[i], pts[i + 1], 0.8, 0.07 * i, -1.9, 0.3));
  const std::vector<sl::PenSample> closed = sl::trajectory(c, 1000), num = sl::integrate(c, 1000);
  REQUIRE(closed.size() > 100);
  for (size_t i = 0; i < closed.size(); i += 13) {
    // The integration starts at the first command, the closed form at the first onset.
    const double t = closed[i].t;
    const auto it = std::lower_bound(num.begin(), num.end(), t - 1e-9,
                                     [](const sl::PenSample& p, double v) { return p.t < v; });
    if (it == num.end() || std::fabs(it->t - t) > 1e-9) continue;
    CHECK(std::hypot(it->x - closed[i].x, it->y - closed[i].y) < 1e-6);
    CHECK(it->speed == Approx(closed[i].speed).margin(1e-6));
  }
  // With overlap, the pen never stops between the first onset and the last stroke's peak.
  double slowest = 1e9;
  for (const sl::PenSample& p : closed)
    if (p.t > sl::peak_time(c.strokes[0]) && p.t < sl::peak_time(c.strokes[3]))
      slowest = std::min(slowest, p.speed);
  CHECK(slowest > 5);
  // The pen ends at the sum of the chords, the last virtual target (but for the 0.02% of the
  // last stroke left after its end time, 3.5 sigma).
  CHECK(closed.back().x == Approx(0).margin(3e-3));
  CHECK(closed.back().y == Approx(0.5).margin(3e-3));
}

// ---- Writers, signings and scans -------------------------------------------------------------

TEST_CASE("plans and images depend only on (seed, writer, kind, n)", "[signatures]") {
  const sig::WriterPlan a = sig::make_writer(5, 17), b = sig::make_writer(5, 17);
  CHECK(a.name == b.name);
  REQUIRE(a.parts.size() == b.parts.size());
  CHECK(a.strokes() == b.strokes());
  // The plan's strokes are those of its unperturbed components.
  size_t strokes = 0;
  for (const sl::Component& c : sig::plan_components(a)) strokes += c.strokes.size();
  CHECK(int(strokes) == a.strokes());
  CHECK(a.parts.back().points.back().x == b.parts.back().points.back().x);
  const sig::SampleOptions opt;
  for (sig::SampleKind kind : {sig::SampleKind::kGenuine, sig::SampleKind::kForgery}) {
    const cv::Mat x = clean_scan(sig::sign(a, kind, 3, 5, opt), 99, 120);
    const cv::Mat y = clean_scan(sig::sign(b, kind, 3, 5, opt), 99, 120);
    REQUIRE(x.size() == y.size());
    CHECK(cv::norm(x, y, cv::NORM_INF) == 0);
  }
  sig::ScanOptions noisy;
  const sig::Signing s = sig::sign(a, sig::SampleKind::kGenuine, 0, 5, opt);
  const sig::Scan s1 = sig::render_scan(s, 1234, noisy), s2 = sig::render_scan(s, 1234, noisy);
  CHECK(s1.clutter == s2.clutter);
  CHECK(cv::norm(s1.image, s2.image, cv::NORM_INF) == 0);
  // Another writer, another sample, another seed: other signatures.
  const sig::WriterPlan c = sig::make_writer(5, 18), d = sig::make_writer(6, 17);
  CHECK((c.name != a.name || c.strokes() != a.strokes()));
  CHECK((d.name != a.name || d.strokes() != a.strokes()));
  const sig::Signing s0 = sig::sign(a, sig::SampleKind::kGenuine, 0, 5, opt);
  const sig::Signing s3 = sig::sign(a, sig::SampleKind::kGenuine, 1, 5, opt);
  CHECK(s0.traces[0][10].x != s3.traces[0][10].x);
}

TEST_CASE(
    "genuine signatures are closer to each other than skilled forgeries, and those than "
    "other writers'",
    "[signatures]") {
  const int writers = 8, n = 6;
  sig::SampleOptions opt;
  opt.forgery_skill = 0.5;
  std::vector<std::vector<cv::Mat>> gen(writers), forg(writers);
  for (int w = 0; w < writers; ++w) {
    const sig::WriterPlan p = sig::make_writer(3, w);
    for (int i = 0; i < n; ++i) {
      gen[size_t(w)].push_back(
          shape_of(clean_scan(sig::sign(p, sig::SampleKind::kGenuine, i, 3, opt), 100 + i, 100)));
      forg[size_t(w)].push_back(
          shape_of(clean_scan(sig::sign(p, sig::SampleKind::kForgery, i, 3, opt), 200 + i, 100)));
    }
  }
  std::vector<double> gg, gf, gr;
  for (int w = 0; w < writers; ++w)
    for (int i = 0; i < n; ++i) {
      const cv::Mat& g = gen[size_t(w)][size_t(i)];
      for (int j = i + 1; j < n; ++j) gg.push_back(cv::norm(g, gen[size_t(w)][size_t(j)]));
      for (int j = 0; j < n; ++j) gf.push_back(cv::norm(g, forg[size_t(w)][size_t(j)]));
      const int other = (w + 1) % writers;
      for (int j = 0; j < n; ++j) gr.push_back(cv::norm(g, gen[size_t(other)][size_t(j)]));
    }
  INFO("genuine-genuine " << mean(gg) << ", genuine-forgery " << mean(gf)
                          << ", genuine-other writer " << mean(gr));
  CHECK(mean(gg) < 0.9 * mean(gf));
  CHECK(mean(gf) < 0.9 * mean(gr));
}

TEST_CASE("skilled forgers: the more skilled, the closer to the genuine shape, and all slower",
          "[signatures]") {
  const int writers = 6, n = 6;
  std::vector<double> d_expert, d_novice, t_gen, t_forg;
  for (int w = 0; w < writers; ++w) {
    const sig::WriterPlan p = sig::make_writer(9, w);
    sig::SampleOptions expert, novice;
    expert.forgery_skill = 1;
    novice.forgery_skill = 0;
    for (int i = 0; i < n; ++i) {
      const sig::Signing g = sig::sign(p, sig::SampleKind::kGenuine, i, 9, expert);
      const sig::Signing fe = sig::sign(p, sig::SampleKind::kForgery, i, 9, expert);
      const sig::Signing fn = sig::sign(p, sig::SampleKind::kForgery, i, 9, novice);
      const cv::Mat sg = shape_of(clean_scan(g, 1, 100));
      d_expert.push_back(cv::norm(sg, shape_of(clean_scan(fe, 2, 100))));
      d_novice.push_back(cv::norm(sg, shape_of(clean_scan(fn, 2, 100))));
      t_gen.push_back(g.duration_s);
      t_forg.push_back(fe.duration_s);
      CHECK(fn.skill < fe.skill);
    }
  }
  INFO("expert " << mean(d_expert) << ", novice " << mean(d_novice));
  CHECK(mean(d_expert) < 0.8 * mean(d_novice));
  CHECK(mean(t_forg) > 1.3 * mean(t_gen));
}

TEST_CASE("clean scans: white paper, dark ink, size proportional to the resolution",
          "[signatures]") {
  const sig::WriterPlan p = sig::make_writer(4, 2);
  const sig::Signing s = sig::sign(p, sig::SampleKind::kGenuine, 0, 4, {});
  const cv::Mat a = clean_scan(s, 7, 150), b = clean_scan(s, 7, 300);
  for (const cv::Mat& m : {a, b}) {
    cv::Mat g = m;
    if (g.channels() == 3) cv::cvtColor(m, g, cv::COLOR_BGR2GRAY);
    CHECK(g.at<uchar>(0, 0) == 255);
    CHECK(g.at<uchar>(g.rows - 1, g.cols - 1) == 255);
    CHECK(cv::countNonZero(g == 255) > 0.7 * g.total());  // the paper is white
    double lo = 0;
    cv::minMaxLoc(g, &lo);
    CHECK(lo < 110);  // and the ink dark
  }
  // The same signature at twice the resolution: twice the pixels across (mm stay mm).
  auto ink_width = [](const cv::Mat& m) {
    cv::Mat g = m;
    if (g.channels() == 3) cv::cvtColor(m, g, cv::COLOR_BGR2GRAY);
    return double(cv::boundingRect(g < 200).width);
  };
  CHECK(ink_width(b) / ink_width(a) == Approx(2).epsilon(0.04));
  CHECK(double(b.cols) / a.cols == Approx(2).epsilon(0.02));
  // 150 dpi is 5.9 pixels per mm: the signature is 30-90 mm wide.
  CHECK(ink_width(a) / (150 / 25.4) > 25);
  CHECK(ink_width(a) / (150 / 25.4) < 95);
}

// ---- The command line ------------------------------------------------------------------------

TEST_CASE("make_signatures writes the documented layout, the same with any number of threads",
          "[signatures][cli]") {
  bpkit_test::TempDir dir("signatures");
  const std::string one = dir.file("one"), two = dir.file("two");
  const std::string common = " --writers 3 --first-writer 5 --genuine 2 --forgeries 3 --seed 8";
  REQUIRE(run("--out " + one + common + " --threads 1", dir.path()) == 0);
  REQUIRE(run("--out " + two + common + " --threads 2", dir.path()) == 0);
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(one))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), one).string());
  std::sort(files.begin(), files.end());
  // 3 writers x (2 + 3) images, writers.tsv and images.tsv; no temporary files left.
  REQUIRE(files.size() == 3 * 5 + 2);
  for (const std::string& f : files) {
    CAPTURE(f);
    CHECK(fs::path(f).filename().string()[0] != '.');
    CHECK(bpkit_test::read_bytes(one + "/" + f) == bpkit_test::read_bytes(two + "/" + f));
  }
  CHECK(fs::exists(one + "/w0005/genuine/00.png") != fs::exists(one + "/w0005/genuine/00.jpg"));
  CHECK(fs::exists(one + "/w0007/forgeries/02.png") != fs::exists(one + "/w0007/forgeries/02.jpg"));
  CHECK(!fs::exists(one + "/w0008"));
  const std::string images = bpkit_test::read_bytes(one + "/images.tsv");
  CHECK(std::count(images.begin(), images.end(), '\n') == 1 + 15);
  CHECK(images.find("w0006/forgeries/01.") != std::string::npos);
  const std::string writers = bpkit_test::read_bytes(one + "/writers.tsv");
  CHECK(std::count(writers.begin(), writers.end(), '\n') == 1 + 3);
  // Each image decodes, at 150-600 dpi for a 30-90 mm signature with 3-20 mm margins.
  for (const std::string& f : files) {
    if (f.find(".tsv") != std::string::npos) continue;
    const cv::Mat m = cv::imread(one + "/" + f, cv::IMREAD_UNCHANGED);
    CAPTURE(f);
    REQUIRE(!m.empty());
    CHECK(m.cols > 150);
    CHECK(m.cols * m.rows < 8000000);
  }
  // Another first writer gives other writers; the same index the same writer.
  REQUIRE(run("--out " + dir.file("three") +
                  " --writers 1 --first-writer 6 --genuine 2 --forgeries 0 --seed 8",
              dir.path()) == 0);
  for (const char* name : {"00.png", "00.jpg", "01.png", "01.jpg"}) {
    const std::string a = one + "/w0006/genuine/" + name,
                      b = dir.file("three") + "/w0006/genuine/" + name;
    CHECK(fs::exists(a) == fs::exists(b));
    if (fs::exists(a)) CHECK(bpkit_test::read_bytes(a) == bpkit_test::read_bytes(b));
  }
}

TEST_CASE("make_signatures: usage errors exit with 2 and say what is wrong", "[signatures][cli]") {
  bpkit_test::TempDir dir("signatures-usage");
  CHECK(run("--help", dir.path()) == 0);
  CHECK(bpkit_test::read_bytes(dir.file("tool.out")).find("--forgery-skill") != std::string::npos);
  CHECK(run("--writers 2", dir.path()) == 2);
  CHECK(bpkit_test::read_bytes(dir.file("tool.err")).find("--out DIR is required") !=
        std::string::npos);
  CHECK(run("--out " + dir.file("x") + " --writers 2 --forgery-skill 1.5", dir.path()) == 2);
  CHECK(bpkit_test::read_bytes(dir.file("tool.err"))
            .find("--forgery-skill expects a number in 0..1") != std::string::npos);
  CHECK(run("--out " + dir.file("x") + " --writers 2 --dpi 600,150", dir.path()) == 2);
  CHECK(run("--out " + dir.file("x") + " --writers 0", dir.path()) == 2);
  CHECK(run("--out " + dir.file("x") + " --writers 2 --bogus", dir.path()) == 2);
  CHECK(bpkit_test::read_bytes(dir.file("tool.err")).find("unknown option '--bogus'") !=
        std::string::npos);
  CHECK(!fs::exists(dir.file("x")));
  // A file where the output directory should be: a runtime error (1), with the path.
  bpkit_test::write_bytes(dir.file("file"), "x");
  CHECK(run("--out " + dir.file("file") + " --writers 1 --genuine 1 --forgeries 0", dir.path()) ==
        1);
  CHECK(bpkit_test::read_bytes(dir.file("tool.err")).find(dir.file("file")) != std::string::npos);
}
