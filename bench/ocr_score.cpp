// ocr_score: character error rate of an OCR program's output against ground-truth pages.
//
//   ocr_score --split header|tesseract-tsv|none [--per-page] HYP REF.txt...
//
// HYP is what the recognizer printed for the pages REF.txt... (one reference file per image, same
// stem as the image), split into pages by
//   header    `==> FILE <==` lines before each image's text (ocr_app with several images; also
//             head/tail); FILE's stem is matched to the reference's stem, so the order does not
//             matter, and a page without a header (the program failed on it) counts as empty;
//   tesseract-tsv  Tesseract's TSV output for a list of images (`tesseract LIST OUT tsv`): words
//             (level 5) by page_num (1-based, the references' order), a new line whenever
//             (block_num, par_num, line_num) changes. (Its plain-text output for a list cannot be
//             split: a page where it finds no text adds no form feed.) A page without its level-1
//             row counts as missing;
//   none      the whole of HYP is the one page (one REF only).
// Both texts are normalized before comparing: typographic quotes to ASCII (’‘‚‛′ to ', “”„‟″ to "),
// dashes (‐‑‒–—―) to '-', the ligatures ﬀ ﬁ ﬂ ﬃ ﬄ and … spelled out, every run of white space
// inside a line to one space, lines trimmed, empty lines dropped; the lines are then joined by one
// '\n', which counts as a character like any other (a missed or extra line break is one error).
// Errors: Levenshtein distance between the normalized texts in Unicode code points. CER = errors
// / normalized reference length, summed over pages (pages weigh by their length).
// Output: with --per-page, `STEM errors=E ref_chars=N cer=X` per page; last line
// `pages=N missing=M errors=E ref_chars=R cer=X`.
#include <bpkit/trainer.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bpkit/version.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

const char kProgram[] = "ocr_score";

const char kUsage[] =
    "usage: ocr_score --split header|tesseract-tsv|none [--per-page] HYP REF.txt...\n"
    "\n"
    "Character error rate of an OCR program's output HYP against the ground-truth pages\n"
    "REF.txt... (one per image, same stem as the image): both texts normalized (typographic\n"
    "quotes and dashes, ligatures, white space, empty lines), errors = Levenshtein distance in\n"
    "code points, a line break counting as one character. Last line:\n"
    "pages=N missing=M errors=E ref_chars=R cer=X.\n"
    "\n"
    "  --split header         HYP holds '==> FILE <==' lines before each image's text (ocr_app\n"
    "                         with several images); FILE's stem is matched to the references'\n"
    "  --split tesseract-tsv  HYP is Tesseract's TSV output for the list of images, pages in the\n"
    "                         order of the references\n"
    "  --split none           the whole of HYP is the one page (one REF only)\n"
    "  --per-page             also print 'STEM errors=E ref_chars=N cer=X' per page\n"
    "  -h, --help             this text\n"
    "  --version              the version, revision, plugin ABI and kernel level\n"
    "\n"
    "Exit status: 0 success, 1 failure (unreadable or malformed file), 2 usage error.\n";

[[noreturn]] void usage_error(const std::string& msg) {
  bpkit_tools::usage_error(kProgram, msg);
}

// The whole of `path`; on failure "ocr_score: PATH: why" and exit status 1.
std::string read_file(const std::string& path) {
  auto fail = [&](const char* why) {
    std::fprintf(stderr, "%s: %s: %s\n", kProgram, path.c_str(), why);
    std::exit(1);
  };
  std::error_code ec;
  if (fs::is_directory(path, ec)) fail("is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(std::strerror(errno));
  std::ostringstream ss;
  if (in.peek() != std::ifstream::traits_type::eof()) ss << in.rdbuf();
  if (in.bad() || !ss) fail("read error");
  return ss.str();
}

// UTF-8 to code points; an invalid byte becomes U+FFFD (it still counts as one character).
std::vector<int32_t> decode_utf8(const std::string& s) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (n < 0 || i + size_t(n) >= s.size()) {  // not a lead byte, or the sequence is cut off
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    int32_t cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k <= n; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + size_t(k)]);
      if ((d >> 6) != 2) ok = false;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (!ok) {
      out.push_back(0xfffd);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += size_t(n) + 1;
  }
  return out;
}

// The normalization described at the top: code points of the lines joined by '\n'.
std::vector<int32_t> normalize(const std::string& text) {
  std::vector<int32_t> spelled;
  for (int32_t c : decode_utf8(text)) {
    switch (c) {
      case 0x2018:
      case 0x2019:
      case 0x201a:
      case 0x201b:
      case 0x2032:
        spelled.push_back('\'');
        break;
      case 0x201c:
      case 0x201d:
      case 0x201e:
      case 0x201f:
      case 0x2033:
        spelled.push_back('"');
        break;
      case 0x2010:
      case 0x2011:
      case 0x2012:
      case 0x2013:
      case 0x2014:
      case 0x2015:
        spelled.push_back('-');
        break;
      case 0xfb00:
        spelled.insert(spelled.end(), {'f', 'f'});
        break;
      case 0xfb01:
        spelled.insert(spelled.end(), {'f', 'i'});
        break;
      case 0xfb02:
        spelled.insert(spelled.end(), {'f', 'l'});
        break;
      case 0xfb03:
        spelled.insert(spelled.end(), {'f', 'f', 'i'});
        break;
      case 0xfb04:
        spelled.insert(spelled.end(), {'f', 'f', 'l'});
        break;
      case 0x2026:
        spelled.insert(spelled.end(), {'.', '.', '.'});
        break;
      default:
        spelled.push_back(c);
    }
  }
  auto is_space = [](int32_t c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == 0xa0 || c == 0x2009 ||
           c == 0x200a || c == 0x202f;
  };
  std::vector<int32_t> out;
  std::vector<int32_t> line;
  auto end_line = [&]() {
    while (!line.empty() && line.back() == ' ') line.pop_back();
    if (line.empty()) return;
    if (!out.empty()) out.push_back('\n');
    out.insert(out.end(), line.begin(), line.end());
    line.clear();
  };
  for (int32_t c : spelled) {
    if (c == '\n' || c == '\f') {
      end_line();
    } else if (is_space(c)) {
      if (!line.empty() && line.back() != ' ') line.push_back(' ');
    } else {
      line.push_back(c);
    }
  }
  end_line();
  return out;
}

int run(int argc, char** argv) {
  std::string split;
  bool per_page = false;
  std::vector<std::string> files;
  bpkit_tools::ArgReader args{kProgram, argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--split") {
      split = args.value();
      if (split != "header" && split != "tesseract-tsv" && split != "none")
        usage_error("--split expects header, tesseract-tsv or none, got '" + split + "'");
    } else if (a == "--per-page") {
      per_page = true;
    } else if (a.size() > 1 && a[0] == '-') {
      usage_error("unknown option '" + a + "'");
    } else {
      files.push_back(a);
    }
  }
  if (split.empty()) usage_error("--split header|tesseract-tsv|none is required");
  if (files.size() < 2)
    usage_error("expected the output file HYP and at least one reference REF.txt, got " +
                std::to_string(files.size()) + " file(s)");
  const std::string hyp = read_file(files[0]);
  const std::vector<std::string> refs(files.begin() + 1, files.end());

  // The hypothesis text of each reference, by index; `found` says which had one.
  std::vector<std::string> pages(refs.size());
  std::vector<bool> found(refs.size(), false);
  if (split == "none") {
    if (refs.size() != 1) {
      usage_error("--split none takes one reference, got " + std::to_string(refs.size()));
    }
    pages[0] = hyp;
    found[0] = true;
  } else if (split == "tesseract-tsv") {
    std::istringstream in(hyp);
    std::string line;
    int line_no = 0;
    std::vector<std::string> last_key(refs.size());
    while (std::getline(in, line)) {
      ++line_no;
      if (line_no == 1 && line.compare(0, 5, "level") == 0) continue;  // the column names
      std::vector<std::string> col;
      std::stringstream ss(line);
      for (std::string c; std::getline(ss, c, '\t');) col.push_back(c);
      if (col.size() < 11) {
        std::fprintf(stderr,
                     "ocr_score: %s:%d: expected 12 tab-separated columns of Tesseract's TSV\n",
                     files[0].c_str(), line_no);
        return 1;
      }
      const long page = std::strtol(col[1].c_str(), nullptr, 10);
      if (page < 1 || size_t(page) > refs.size()) {
        std::fprintf(stderr, "ocr_score: %s:%d: page_num %s, expected 1..%zu (one per reference)\n",
                     files[0].c_str(), line_no, col[1].c_str(), refs.size());
        return 1;
      }
      const size_t p = size_t(page - 1);
      if (col[0] == "1") found[p] = true;
      if (col[0] != "5") continue;
      const std::string key = col[2] + "/" + col[3] + "/" + col[4];
      if (!pages[p].empty()) pages[p] += key == last_key[p] ? ' ' : '\n';
      last_key[p] = key;
      pages[p] += col.size() > 11 ? col[11] : "";
    }
  } else {
    std::map<std::string, size_t> by_stem;
    for (size_t i = 0; i < refs.size(); ++i) {
      const std::string stem = fs::path(refs[i]).stem().string();
      if (!by_stem.emplace(stem, i).second) {
        usage_error("two references named '" + stem + "'");
      }
    }
    std::istringstream in(hyp);
    std::string line;
    long current = -1;  // the page being read; -1 before the first header or for unknown pages
    bool any_header = false;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (line.size() >= 8 && line.compare(0, 4, "==> ") == 0 &&
          line.compare(line.size() - 4, 4, " <==") == 0) {
        any_header = true;
        const std::string stem = fs::path(line.substr(4, line.size() - 8)).stem().string();
        const auto it = by_stem.find(stem);
        if (it == by_stem.end()) {
          std::fprintf(stderr, "ocr_score: %s:%d: '%s' has no reference among the %zu given\n",
                       files[0].c_str(), line_no, stem.c_str(), refs.size());
          return 1;
        }
        current = long(it->second);
        found[size_t(current)] = true;
        continue;
      }
      if (current < 0) {
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        std::fprintf(stderr, "ocr_score: %s:%d: text before the first '==> FILE <==' header\n",
                     files[0].c_str(), line_no);
        return 1;
      }
      pages[size_t(current)] += line + '\n';
    }
    if (!any_header && refs.size() == 1) {  // one image: programs print no header
      pages[0] = hyp;
      found[0] = true;
    }
  }

  int64_t errors = 0, chars = 0, missing = 0;
  for (size_t i = 0; i < refs.size(); ++i) {
    const std::vector<int32_t> want = normalize(read_file(refs[i]));
    const std::vector<int32_t> got = normalize(pages[i]);
    const int64_t e = bpkit::edit_distance(got, want);
    errors += e;
    chars += int64_t(want.size());
    missing += !found[i];
    if (per_page)
      std::printf("%s errors=%lld ref_chars=%zu cer=%.4f%s\n",
                  fs::path(refs[i]).stem().string().c_str(), (long long)e, want.size(),
                  want.empty() ? 0.0 : double(e) / double(want.size()),
                  found[i] ? "" : " (no output)");
  }
  std::printf("pages=%zu missing=%lld errors=%lld ref_chars=%lld cer=%.4f\n", refs.size(),
              (long long)missing, (long long)errors, (long long)chars,
              chars ? double(errors) / double(chars) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, kProgram)) return 0;
  return bpkit_tools::guarded(kProgram, [&] { return run(argc, argv); });
}
