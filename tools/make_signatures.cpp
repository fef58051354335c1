// make_signatures: synthetic handwritten signatures for training and testing writer-independent
// signature verification: writers whose genuine signatures and skilled forgeries are drawn with
// the sigma-lognormal model of handwriting and rendered as scans (signature_synth.h; the model, the
// parameter ranges and the clutter's probabilities are in docs/signature-data.md).
//
//   make_signatures --out DIR --writers N [--first-writer K] [--genuine G] [--forgeries F]
//                   [--seed S] [--forgery-skill X] [--variation X] [--dpi LO[,HI]] [--clean]
//                   [--threads T]
//
// Output: DIR/<writer>/genuine/<n>.png|jpg (G genuine signatures),
// DIR/<writer>/forgeries/<n>.png|jpg (F skilled forgeries), writers w0001... numbered from K;
// DIR/writers.tsv (one line per writer: name, strokes and style) and DIR/images.tsv (one line per
// image: dpi, rotation, pen, ink, clutter). Random forgeries are not generated: they are other
// writers' genuine signatures. A writer's plan depends only on (seed, writer index) and each image
// only on (seed, writer index, kind, n): disjoint index ranges or seeds give disjoint writers, and
// the output does not depend on the number of threads. Images are written under a temporary name
// and renamed.
#include <malloc.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bpkit/version.h"
#include "signature_synth.h"
#include "tool_args.h"

namespace fs = std::filesystem;
namespace sig = bpkit_signatures;

namespace {

const char kUsage[] =
    "usage: make_signatures --out DIR --writers N [--first-writer K] [--genuine G]\n"
    "                       [--forgeries F] [--seed S] [--forgery-skill X] [--variation X]\n"
    "                       [--dpi LO[,HI]] [--clean] [--threads T]\n"
    "\n"
    "Synthetic signatures (sigma-lognormal handwriting rendered as scans) for signature\n"
    "verification; see docs/signature-data.md.\n"
    "\n"
    "  --out DIR          output directory (created)\n"
    "  --writers N        number of writers (1..1000000)\n"
    "  --first-writer K   index of the first writer (default 1): writers wK, wK+1, ...\n"
    "  --genuine G        genuine signatures per writer (default 12, 0..1000)\n"
    "  --forgeries F      skilled forgeries per writer (default 10, 0..1000)\n"
    "  --seed S           seed (default 1): plans depend on (S, index), images on (S, index,\n"
    "                     kind, n)\n"
    "  --forgery-skill X  forgers' skill 0..1 (default 0.6): 1 imitates the shape closely\n"
    "  --variation X      multiplies every writer's genuine variability (default 1, 0..4)\n"
    "  --dpi LO[,HI]      scan resolution, drawn log-uniformly (default 150,600; 50..1200)\n"
    "  --clean            white paper, no clutter, noise, blur or rotation, PNG only\n"
    "  --threads T        writers generated in parallel (default 1, 1..64)\n"
    "  -h, --help         this help\n"
    "  --version          the version, revision, plugin ABI and kernel level\n";

struct Options {
  std::string out;
  long long writers = 0, first = 1, genuine = 12, forgeries = 10;
  uint64_t seed = 1;
  sig::SampleOptions sample;
  sig::ScanOptions scan;
  int threads = 1;
};

std::string writer_id(long long index) {
  char b[32];
  std::snprintf(b, sizeof b, "w%04lld", index);
  return b;
}

// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
// no half-written image ever carries the final name.
bool write_atomic(const fs::path& path, const std::vector<uchar>& bytes, std::string& error) {
  const fs::path tmp = path.parent_path() / ("." + path.filename().string() + ".tmp");
  {
    std::ofstream f(tmp, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    f.close();
    if (!f) {
      error = "cannot write '" + tmp.string() + "'";
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    error = "cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message();
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

struct WriterOutput {
  std::string writer_line;
  std::vector<std::string> image_lines;
};

// One writer: its plan, genuine signatures and skilled forgeries, written under DIR/<id>/.
bool make_writer_images(const Options& o, long long index, WriterOutput& w, std::string& error) {
  const sig::WriterPlan plan = sig::make_writer(o.seed, index);
  const std::string id = writer_id(index);
  const sig::WriterStyle& st = plan.style;
  std::ostringstream wl;
  wl.precision(4);
  wl << id << '\t' << plan.name << '\t' << plan.parts.size() << '\t' << plan.strokes() << '\t'
     << st.x_height_mm << '\t' << st.slant_deg << '\t' << st.width_ratio << '\t'
     << st.capital_height << '\t' << st.legibility << '\t' << st.curviness << '\t' << st.tempo_s
     << '\t' << st.sigma << '\t' << st.overlap << '\t' << st.flying << '\t' << st.lift << '\t'
     << st.variability << '\t' << (st.dots ? 1 : 0) << '\t' << st.layout << '\t' << st.flourish
     << '\t' << (st.lead_in ? 1 : 0);
  w.writer_line = wl.str();
  const int digits = std::max(o.genuine, o.forgeries) > 100 ? 3 : 2;
  for (int kind = 0; kind < 2; ++kind) {
    const long long count = kind == 0 ? o.genuine : o.forgeries;
    if (count == 0) continue;
    const std::string sub = kind == 0 ? "genuine" : "forgeries";
    const fs::path dir = fs::path(o.out) / id / sub;
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      error = "cannot create '" + dir.string() + "': " + ec.message();
      return false;
    }
    for (long long n = 0; n < count; ++n) {
      const sig::SampleKind k = kind == 0 ? sig::SampleKind::kGenuine : sig::SampleKind::kForgery;
      const sig::Signing s = sig::sign(plan, k, n, o.seed, o.sample);
      const sig::Scan scan = sig::render_scan(
          s, sig::item_seed(o.seed, uint64_t(index), 10 + kind, uint64_t(n)), o.scan);
      char name[32];
      std::snprintf(name, sizeof name, "%0*lld.%s", digits, n, scan.jpeg ? "jpg" : "png");
      std::vector<uchar> bytes;
      // Noisy scans compress as well with Huffman coding alone as with LZ77, several times faster.
      const std::vector<int> params =
          scan.jpeg ? std::vector<int>{cv::IMWRITE_JPEG_QUALITY, scan.jpeg_quality}
          : o.scan.clean
              ? std::vector<int>{cv::IMWRITE_PNG_COMPRESSION, 3}
              : std::vector<int>{cv::IMWRITE_PNG_COMPRESSION, 1, cv::IMWRITE_PNG_STRATEGY,
                                 cv::IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY};
      if (!cv::imencode(scan.jpeg ? ".jpg" : ".png", scan.image, bytes, params)) {
        error = "cannot encode " + id + "/" + sub + "/" + name;
        return false;
      }
      if (!write_atomic(dir / name, bytes, error)) return false;
      std::ostringstream il;
      il.precision(4);
      il << id << '/' << sub << '/' << name << '\t' << id << '\t'
         << (kind == 0 ? "genuine" : "forgery") << '\t' << n << '\t' << scan.dpi << '\t'
         << scan.rotation_deg << '\t' << scan.image.cols << '\t' << scan.image.rows << '\t'
         << scan.width_mm << '\t' << (scan.image.channels() == 1 ? "gray" : "color") << '\t'
         << scan.pen << '\t' << scan.ink << '\t' << s.traces.size() << '\t' << s.duration_s << '\t';
      if (kind == 1)
        il << s.forger << '\t' << s.skill;
      else
        il << "-\t-";
      il << '\t' << scan.clutter;
      w.image_lines.push_back(il.str());
    }
  }
  return true;
}

bool write_table(const fs::path& path, const std::string& header,
                 const std::vector<std::string>& lines, std::string& error) {
  std::string text = header + "\n";
  for (const std::string& l : lines) text += l + "\n";
  return write_atomic(path, std::vector<uchar>(text.begin(), text.end()), error);
}

int run(const Options& o) {
  std::error_code ec;
  fs::create_directories(o.out, ec);
  if (ec) {
    std::fprintf(stderr, "make_signatures: cannot create '%s': %s\n", o.out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  // Our threads work on writers; OpenCV's own would only compete with them.
  if (o.threads > 1) cv::setNumThreads(1);
  std::vector<WriterOutput> outputs(size_t(o.writers));
  std::atomic<long long> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mutex;
  std::string first_error;
  const auto start = std::chrono::steady_clock::now();
  auto work = [&] {
    for (;;) {
      const long long i = next++;
      if (i >= o.writers || failed) return;
      std::string error;
      bool ok = false;
      try {
        ok = make_writer_images(o, o.first + i, outputs[size_t(i)], error);
      } catch (const std::exception& e) {
        error = std::string("writer ") + writer_id(o.first + i) + ": " + e.what();
      }
      if (!ok) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!failed) first_error = error;
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < o.threads; ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  if (failed) {
    std::fprintf(stderr, "make_signatures: %s\n", first_error.c_str());
    return 1;
  }
  std::vector<std::string> writers, images;
  for (const WriterOutput& w : outputs) {
    writers.push_back(w.writer_line);
    images.insert(images.end(), w.image_lines.begin(), w.image_lines.end());
  }
  std::string error;
  if (!write_table(fs::path(o.out) / "writers.tsv",
                   "writer\tname\tparts\tstrokes\tx_height_mm\tslant_deg\twidth_ratio\t"
                   "capital_height\tlegibility\tcurviness\ttempo_s\tsigma\toverlap\tflying\t"
                   "lift\tvariability\tdots\tlayout\tflourish\tlead_in",
                   writers, error) ||
      !write_table(fs::path(o.out) / "images.tsv",
                   "path\twriter\tkind\tn\tdpi\trotation_deg\twidth_px\theight_px\twidth_mm\t"
                   "channels\tpen\tink\tpen_downs\tduration_s\tforger\tskill\tclutter",
                   images, error)) {
    std::fprintf(stderr, "make_signatures: %s\n", error.c_str());
    return 1;
  }
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("make_signatures: %lld writers, %zu images in %s (%.1f s, %.1f images/s)\n",
              o.writers, images.size(), o.out.c_str(), secs, double(images.size()) / secs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "make_signatures")) return 0;
  // Every image allocates and frees buffers of several MB: keep them in the heap rather than
  // mapping fresh pages (each one a page fault) for every image. 32 MB is glibc's maximum.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  Options o;
  o.sample.forgery_skill = 0.6;
  bpkit_tools::ArgReader args{"make_signatures", argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "--out") {
      o.out = args.value();
    } else if (a == "--writers") {
      o.writers = args.number(a, args.value(), 1, 1000000);
    } else if (a == "--first-writer") {
      o.first = args.number(a, args.value(), 0, 100000000);
    } else if (a == "--genuine") {
      o.genuine = args.number(a, args.value(), 0, 1000);
    } else if (a == "--forgeries") {
      o.forgeries = args.number(a, args.value(), 0, 1000);
    } else if (a == "--seed") {
      o.seed = uint64_t(args.number(a, args.value(), 0, (1LL << 62)));
    } else if (a == "--forgery-skill") {
      o.sample.forgery_skill = args.real(a, args.value(), 0, 1);
    } else if (a == "--variation") {
      o.sample.variation = args.real(a, args.value(), 0, 4);
    } else if (a == "--dpi") {
      const std::string v = args.value();
      const size_t comma = v.find(',');
      o.scan.dpi_lo = args.real(a, v.substr(0, comma), 50, 1200);
      o.scan.dpi_hi =
          comma == std::string::npos ? o.scan.dpi_lo : args.real(a, v.substr(comma + 1), 50, 1200);
      if (o.scan.dpi_hi < o.scan.dpi_lo) {
        std::fprintf(stderr, "make_signatures: --dpi expects LO,HI with LO <= HI, got '%s'\n",
                     v.c_str());
        return 2;
      }
    } else if (a == "--clean") {
      o.scan.clean = true;
    } else if (a == "--threads") {
      o.threads = int(args.number(a, args.value(), 1, 64));
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      bpkit_tools::usage_error("make_signatures", "unknown option '" + a + "'");
    }
  }
  if (o.out.empty() || o.writers == 0) {
    bpkit_tools::usage_error(
        "make_signatures",
        std::string(o.out.empty() ? "--out DIR" : "--writers N") + " is required");
  }
  if (o.genuine + o.forgeries == 0) {
    std::fprintf(stderr, "make_signatures: --genuine and --forgeries are both 0: nothing to do\n");
    return 2;
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_signatures: %s\n", e.what());
    return 1;
  }
}
