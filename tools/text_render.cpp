// text_render.cpp: the font table, the text generator and FreeType line rendering shared by
// render_lines and render_page (text_render.h).
#include "text_render.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace fs = std::filesystem;

namespace bpkit_tools {

const FontFile kFonts[] = {
    // fonts-dejavu-core, fonts-dejavu-extra
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-Bold.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-Oblique.ttf", false},
    {"DejaVu Sans", "truetype/dejavu/DejaVuSans-BoldOblique.ttf", false},
    {"DejaVu Sans Condensed", "truetype/dejavu/DejaVuSansCondensed.ttf", false},
    {"DejaVu Sans Condensed", "truetype/dejavu/DejaVuSansCondensed-Bold.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif-Bold.ttf", false},
    {"DejaVu Serif", "truetype/dejavu/DejaVuSerif-Italic.ttf", false},
    {"DejaVu Serif Condensed", "truetype/dejavu/DejaVuSerifCondensed.ttf", false},
    {"DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono.ttf", false},
    {"DejaVu Sans Mono", "truetype/dejavu/DejaVuSansMono-Bold.ttf", false},
    // fonts-liberation2
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Regular.ttf", false},
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Bold.ttf", false},
    {"Liberation Sans", "truetype/liberation2/LiberationSans-Italic.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Regular.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Bold.ttf", false},
    {"Liberation Serif", "truetype/liberation2/LiberationSerif-Italic.ttf", false},
    {"Liberation Mono", "truetype/liberation2/LiberationMono-Regular.ttf", false},
    {"Liberation Mono", "truetype/liberation2/LiberationMono-Bold.ttf", false},
    // fonts-freefont-ttf
    {"FreeSans", "truetype/freefont/FreeSans.ttf", false},
    {"FreeSans", "truetype/freefont/FreeSansBold.ttf", false},
    {"FreeSans", "truetype/freefont/FreeSansOblique.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerif.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerifBold.ttf", false},
    {"FreeSerif", "truetype/freefont/FreeSerifItalic.ttf", false},
    {"FreeMono", "truetype/freefont/FreeMono.ttf", false},
    {"FreeMono", "truetype/freefont/FreeMonoBold.ttf", false},
    // fonts-croscore
    {"Arimo", "truetype/croscore/Arimo-Regular.ttf", false},
    {"Tinos", "truetype/croscore/Tinos-Regular.ttf", false},
    {"Cousine", "truetype/croscore/Cousine-Regular.ttf", false},
    // fonts-urw-base35
    {"Nimbus Sans", "opentype/urw-base35/NimbusSans-Regular.otf", false},
    {"Nimbus Sans", "opentype/urw-base35/NimbusSans-Bold.otf", false},
    {"Nimbus Sans Narrow", "opentype/urw-base35/NimbusSansNarrow-Regular.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Regular.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Bold.otf", false},
    {"Nimbus Roman", "opentype/urw-base35/NimbusRoman-Italic.otf", false},
    {"Nimbus Mono PS", "opentype/urw-base35/NimbusMonoPS-Regular.otf", false},
    {"Nimbus Mono PS", "opentype/urw-base35/NimbusMonoPS-Bold.otf", false},
    {"URW Bookman", "opentype/urw-base35/URWBookman-Light.otf", false},
    {"URW Bookman", "opentype/urw-base35/URWBookman-Demi.otf", false},
    // More designs, so that the recognizer meets more letter shapes than its held-out test fonts:
    // geometric sans with single-story a (Beteckna, Quicksand, Comic Neue), grotesques, humanist
    // sans, old-style and modern serifs, monospaced fonts. None is a clone of a held-out family
    // (so no Lato, of which Carlito is a derivative; no TeX Gyre Adventor/Schola/Pagella, which
    // are URW Gothic, C059 and P052; no Open Sans or Noto Sans, kin of Noto Sans Mono).
    {"Beteckna", "truetype/beteckna/BetecknaGS.ttf", false},  // fonts-beteckna
    {"Beteckna", "truetype/beteckna/BetecknaGS-Bold.ttf", false},
    {"Beteckna", "truetype/beteckna/BetecknaGS-Italic.ttf", false},
    {"League Spartan", "opentype/league-spartan/LeagueSpartan-Regular.otf", false},
    {"League Spartan", "opentype/league-spartan/LeagueSpartan-Bold.otf", false},
    {"League Spartan", "opentype/league-spartan/LeagueSpartan-Light.otf", false},
    {"Comic Neue", "opentype/comic-neue/ComicNeue-Regular.otf", false},
    {"Comic Neue", "opentype/comic-neue/ComicNeue-Bold.otf", false},
    {"Comic Neue", "opentype/comic-neue/ComicNeue-Italic.otf", false},
    {"Quicksand", "truetype/quicksand/Quicksand-Regular.ttf", false},
    {"Quicksand", "truetype/quicksand/Quicksand-Bold.ttf", false},
    {"Manrope", "truetype/manrope/Manrope-Regular.ttf", false},
    {"Manrope", "truetype/manrope/Manrope-Bold.ttf", false},
    {"Dosis", "opentype/dosis/Dosis-Book.otf", false},
    {"Dosis", "opentype/dosis/Dosis-Bold.otf", false},
    {"Cantarell", "opentype/cantarell/Cantarell-Regular.otf", false},
    {"Cantarell", "opentype/cantarell/Cantarell-Bold.otf", false},
    {"Karla", "truetype/karla/Karla-Regular.otf", false},
    {"Karla", "truetype/karla/Karla-Bold.otf", false},
    {"Karla", "truetype/karla/Karla-Italic.otf", false},
    {"Cabin", "opentype/cabin/Cabin-Regular.otf", false},
    {"Cabin", "opentype/cabin/Cabin-Bold.otf", false},
    {"Cabin", "opentype/cabin/Cabin-Italic.otf", false},
    {"Clear Sans", "truetype/clear-sans/ClearSans-Regular.ttf", false},
    {"Clear Sans", "truetype/clear-sans/ClearSans-Bold.ttf", false},
    {"Clear Sans", "truetype/clear-sans/ClearSans-Italic.ttf", false},
    {"Roboto", "truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf", false},
    {"Roboto", "truetype/roboto/unhinted/RobotoTTF/Roboto-Bold.ttf", false},
    {"Roboto", "truetype/roboto/unhinted/RobotoTTF/Roboto-Italic.ttf", false},
    {"Junction", "opentype/junction/Junction.otf", false},
    {"Gillius ADF", "truetype/adf/GilliusADF-Regular.otf", false},
    {"Gillius ADF", "truetype/adf/GilliusADF-Bold.otf", false},
    {"Gillius ADF", "truetype/adf/GilliusADF-Italic.otf", false},
    {"Universalis ADF", "truetype/adf/UniversalisADFStd-Regular.otf", false},
    {"Universalis ADF", "truetype/adf/UniversalisADFStd-Bold.otf", false},
    {"Linux Biolinum", "opentype/linux-libertine/LinBiolinum_R.otf", false},
    {"Linux Biolinum", "opentype/linux-libertine/LinBiolinum_RB.otf", false},
    {"Linux Libertine", "opentype/linux-libertine/LinLibertine_R.otf", false},
    {"Linux Libertine", "opentype/linux-libertine/LinLibertine_RB.otf", false},
    {"Linux Libertine", "opentype/linux-libertine/LinLibertine_RI.otf", false},
    {"EB Garamond", "opentype/ebgaramond/EBGaramond12-Regular.otf", false},
    {"EB Garamond", "opentype/ebgaramond/EBGaramond12-Bold.otf", false},
    {"EB Garamond", "opentype/ebgaramond/EBGaramond12-Italic.otf", false},
    {"Accanthis ADF", "truetype/adf/AccanthisADFStd-Regular.otf", false},
    {"Accanthis ADF", "truetype/adf/AccanthisADFStd-Italic.otf", false},
    {"Baskervald ADF", "truetype/adf/BaskervaldADFStd.otf", false},
    {"Baskervald ADF", "truetype/adf/BaskervaldADFStd-Bold.otf", false},
    {"Old Standard", "truetype/fonts-oldstandard/OldStandard-Regular.ttf", false},
    {"Old Standard", "truetype/fonts-oldstandard/OldStandard-Bold.ttf", false},
    {"Old Standard", "truetype/fonts-oldstandard/OldStandard-Italic.ttf", false},
    {"GFS Didot", "opentype/didot/GFSDidot.otf", false},
    {"GFS Didot", "opentype/didot/GFSDidotBold.otf", false},
    {"Gentium", "truetype/gentium/Gentium-R.ttf", false},
    {"Gentium", "truetype/gentium/Gentium-I.ttf", false},
    {"Hack", "truetype/hack/Hack-Regular.ttf", false},
    {"Hack", "truetype/hack/Hack-Bold.ttf", false},
    {"Inconsolata", "truetype/inconsolata/Inconsolata.otf", false},
    {"JetBrains Mono", "truetype/jetbrains-mono/JetBrainsMono-Regular.ttf", false},
    {"JetBrains Mono", "truetype/jetbrains-mono/JetBrainsMono-Bold.ttf", false},
    // Set `extra`: training faces added later (single-storey a, rounded geometric shapes; none
    // a clone of a held-out family). fonts-sil-andika, fonts-comfortaa, fonts-eurofurence,
    // fonts-oxygen.
    {"Andika", "truetype/andika/Andika-Regular.ttf", false, true},
    {"Andika", "truetype/andika/Andika-Bold.ttf", false, true},
    {"Andika", "truetype/andika/Andika-Italic.ttf", false, true},
    {"Comfortaa", "truetype/comfortaa/Comfortaa-Light.ttf", false, true},
    {"Comfortaa", "truetype/comfortaa/Comfortaa-Regular.ttf", false, true},
    {"Comfortaa", "truetype/comfortaa/Comfortaa-Bold.ttf", false, true},
    {"Eurofurence", "truetype/eurofurence/eurof35.ttf", false, true},
    {"Eurofurence", "truetype/eurofurence/eurof55.ttf", false, true},
    {"Eurofurence", "truetype/eurofurence/eurof56.ttf", false, true},
    {"Eurofurence", "truetype/eurofurence/eurof75.ttf", false, true},
    {"Eurofurence", "truetype/eurofurence/eurofc55.ttf", false, true},
    {"Oxygen Sans", "truetype/oxygen/Oxygen-Sans.ttf", false, true},
    {"Oxygen Sans", "truetype/oxygen/Oxygen-Sans-Bold.ttf", false, true},
    // Held out: never rendered for training.
    {"Carlito", "truetype/crosextra/Carlito-Regular.ttf", true},  // fonts-crosextra-carlito
    {"Carlito", "truetype/crosextra/Carlito-Bold.ttf", true},
    {"Carlito", "truetype/crosextra/Carlito-Italic.ttf", true},
    {"Caladea", "truetype/crosextra/Caladea-Regular.ttf", true},  // fonts-crosextra-caladea
    {"Caladea", "truetype/crosextra/Caladea-Bold.ttf", true},
    {"C059", "opentype/urw-base35/C059-Roman.otf", true},  // fonts-urw-base35
    {"C059", "opentype/urw-base35/C059-Italic.otf", true},
    {"P052", "opentype/urw-base35/P052-Roman.otf", true},
    {"P052", "opentype/urw-base35/P052-Bold.otf", true},
    {"URW Gothic", "opentype/urw-base35/URWGothic-Book.otf", true},
    {"URW Gothic", "opentype/urw-base35/URWGothic-Demi.otf", true},
    {"Noto Sans Mono", "truetype/noto/NotoSansMono-Regular.ttf", true},  // fonts-noto-mono
    {"Noto Sans Mono", "truetype/noto/NotoSansMono-Bold.ttf", true},
};
const size_t kFontCount = sizeof kFonts / sizeof kFonts[0];

namespace {

const char* const kWords[] = {
    "the",         "of",        "and",       "to",          "in",        "is",        "that",
    "for",         "it",        "as",        "was",         "with",      "be",        "by",
    "on",          "not",       "he",        "this",        "are",       "or",        "his",
    "from",        "at",        "which",     "but",         "have",      "an",        "had",
    "they",        "you",       "were",      "their",       "one",       "all",       "we",
    "can",         "her",       "has",       "there",       "been",      "if",        "more",
    "when",        "will",      "would",     "who",         "so",        "no",        "time",
    "people",      "year",      "way",       "day",         "man",       "thing",     "woman",
    "life",        "child",     "world",     "school",      "state",     "family",    "student",
    "group",       "country",   "problem",   "hand",        "part",      "place",     "case",
    "week",        "company",   "system",    "program",     "question",  "work",      "government",
    "number",      "night",     "point",     "home",        "water",     "room",      "mother",
    "area",        "money",     "story",     "fact",        "month",     "lot",       "right",
    "study",       "book",      "eye",       "job",         "word",      "business",  "issue",
    "side",        "kind",      "head",      "house",       "service",   "friend",    "father",
    "power",       "hour",      "game",      "line",        "end",       "member",    "law",
    "car",         "city",      "community", "name",        "president", "team",      "minute",
    "idea",        "kid",       "body",      "information", "back",      "parent",    "face",
    "others",      "level",     "office",    "door",        "health",    "person",    "art",
    "war",         "history",   "party",     "result",      "change",    "morning",   "reason",
    "research",    "girl",      "guy",       "moment",      "air",       "teacher",   "force",
    "education",   "quickly",   "brown",     "fox",         "jumps",     "over",      "lazy",
    "dog",         "zebra",     "quartz",    "jackdaws",    "love",      "my",        "big",
    "sphinx",      "vow",       "judge",     "quiz",        "wizard",    "oxygen",    "jazz",
    "pixel",       "query",     "yellow",    "velvet",      "kayak",     "fjord",     "network",
    "recognition", "character", "printed",   "text",        "scanner",   "page",      "paragraph",
    "total",       "invoice",   "address",   "street",      "avenue",    "phone",     "email",
    "date",        "amount",    "between",   "through",     "during",    "without",   "against",
    "under",       "around",    "among",     "however",     "therefore", "although",  "because",
    "important",   "different", "following", "national",    "possible",  "available", "American",
    "English",     "London",    "Paris",     "Monday",      "January",   "Dr",        "Mr",
    "Mrs",         "St",        "Inc",       "Ltd",         "No",        "vs",        "etc",
    "e.g",         "i.e",       "OK",        "USA",         "EU",        "ID",        "PDF",
    "HTML",        "Q3",        "B2B",       "x86",         "CO2",       "kg",        "km",
    "mm",          "MHz",       "GB"};

}  // namespace

std::string TextGenerator::line(int max_chars) {
  std::string s;
  const int target = int(uniform(4, double(max_chars)));
  const bool random_chars = chance(0.12);
  while (int(s.size()) < target) {
    if (!s.empty()) s += ' ';
    s += random_chars ? random_string() : token();
  }
  if (int(s.size()) > max_chars) s.resize(size_t(max_chars));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string TextGenerator::digits(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += char('0' + below(10));
  return s;
}

std::string TextGenerator::number() {
  switch (below(8)) {
    case 0:
      return digits(1 + below(4));
    case 1:
      return digits(1 + below(3)) + "." + digits(1 + below(3));
    case 2:
      return "$" + digits(1 + below(3)) + "." + digits(2);
    case 3:
      return digits(1 + below(2)) + "%";
    case 4:
      return std::to_string(1 + below(28)) + "/" + std::to_string(1 + below(12)) + "/" +
             std::to_string(1950 + below(80));
    case 5:
      return digits(3) + "-" + digits(4);
    case 6:
      return std::to_string(1 + below(9)) + "," + digits(3);
    default:
      return "#" + digits(1 + below(3));
  }
}

std::string TextGenerator::word() {
  std::string w = kWords[below(int(sizeof kWords / sizeof kWords[0]))];
  const double r = uniform(0, 1);
  if (r < 0.2)
    w[0] = char(std::toupper(static_cast<unsigned char>(w[0])));
  else if (r < 0.25)
    for (char& c : w) c = char(std::toupper(static_cast<unsigned char>(c)));
  return w;
}

std::string TextGenerator::token() {
  std::string t = chance(0.2) ? number() : word();
  if (chance(0.08)) {
    static const char* const wraps[][2] = {{"(", ")"}, {"\"", "\""}, {"'", "'"},
                                           {"[", "]"}, {"<", ">"},   {"{", "}"}};
    const auto& w = wraps[below(6)];
    t = std::string(w[0]) + t + w[1];
  }
  if (chance(0.25)) {
    static const char kEnd[] = ".,;:!?.,";
    t += kEnd[below(int(sizeof kEnd) - 1)];
  } else if (chance(0.05)) {
    static const char* const kJoin[] = {"-", "/", "&", "+",  "=", "*", "_",
                                        "@", "~", "|", "\\", "^", "`"};
    t += kJoin[below(13)];
    t += word();
  }
  return t;
}

std::string TextGenerator::random_string() {
  std::string s;
  const int n = 1 + below(8);
  for (int i = 0; i < n; ++i) s += char(0x21 + below(0x7e - 0x21 + 1));
  return s;
}

std::string TextGenerator::prose_line(int min_chars, int max_chars) {
  const int target = min_chars + below(max_chars - min_chars + 1);
  std::string s = prose_token();
  // Bounded: a line that cannot reach `target` with short enough tokens ends after 1000 draws.
  for (int draws = 0; int(s.size()) < target && draws < 1000; ++draws) {
    const std::string t = prose_token();
    if (int(s.size() + 1 + t.size()) > max_chars) {
      if (int(s.size()) >= min_chars) break;
      continue;  // too long to end the line with; draw another token
    }
    s += ' ';
    s += t;
  }
  if (int(s.size()) > max_chars) s.resize(size_t(max_chars));
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

std::string TextGenerator::prose_token() {
  std::string t = chance(0.15) ? number() : word();
  if (chance(0.04)) {
    static const char* const wraps[][2] = {{"(", ")"}, {"\"", "\""}, {"'", "'"}};
    const auto& w = wraps[below(3)];
    t = std::string(w[0]) + t + w[1];
  }
  if (chance(0.15)) {
    static const char kEnd[] = ".,.,;:!?";
    t += kEnd[below(int(sizeof kEnd) - 1)];
  } else if (chance(0.02)) {
    static const char* const kJoin[] = {"-", "/", "&"};
    t += kJoin[below(3)];
    t += word();
  }
  return t;
}

FaceSet::~FaceSet() {
  for (Face& f : faces_) FT_Done_Face(f.face);
  if (ft_) FT_Done_FreeType(ft_);
}

int FaceSet::open(const char* program, const std::string& spec, const std::string& font_dir) {
  std::vector<std::pair<std::string, std::string>> chosen;  // family, file
  {
    std::stringstream ss(spec);
    std::string item;
    while (std::getline(ss, item, ',')) {
      bool found = false;
      if (item == "train" || item == "extra" || item == "heldout" || item == "all") {
        for (size_t i = 0; i < kFontCount; ++i)
          if (item == "all" || (item == "heldout" && kFonts[i].heldout) ||
              (item == "extra" && kFonts[i].extra) ||
              (item == "train" && !kFonts[i].heldout && !kFonts[i].extra))
            chosen.emplace_back(kFonts[i].family, (fs::path(font_dir) / kFonts[i].path).string());
        continue;
      }
      for (size_t i = 0; i < kFontCount; ++i)
        if (item == kFonts[i].family) {
          chosen.emplace_back(kFonts[i].family, (fs::path(font_dir) / kFonts[i].path).string());
          found = true;
        }
      if (!found && fs::exists(item)) {
        chosen.emplace_back(fs::path(item).stem().string(), item);
        found = true;
      }
      if (!found) {
        std::fprintf(stderr, "%s: '%s' is neither a font family of --list-fonts nor a font file\n",
                     program, item.c_str());
        return 2;
      }
    }
  }
  // A face named twice ("train,all") is drawn as often as the others.
  {
    std::vector<std::pair<std::string, std::string>> unique;
    for (const auto& c : chosen)
      if (std::none_of(unique.begin(), unique.end(),
                       [&](const auto& u) { return u.second == c.second; }))
        unique.push_back(c);
    chosen = std::move(unique);
  }
  if (!ft_ && FT_Init_FreeType(&ft_)) {
    ft_ = nullptr;
    std::fprintf(stderr, "%s: cannot initialize FreeType\n", program);
    return 1;
  }
  for (const auto& [family, path] : chosen) {
    Face f{family, path};
    if (FT_New_Face(ft_, path.c_str(), 0, &f.face)) {
      std::fprintf(stderr,
                   "%s: cannot load font '%s' (%s); install the font packages "
                   "(tools/setup.sh) or choose others with --fonts\n",
                   program, path.c_str(), family.c_str());
      return 1;
    }
    faces_.push_back(f);
  }
  if (faces_.empty()) {
    std::fprintf(stderr, "%s: no fonts chosen\n", program);
    return 2;
  }
  return 0;
}

bool render_text(FT_Face face, const std::string& text, int px, cv::Mat& out, int& baseline_top,
                 int& ascender_px, int& descender_px) {
  if (FT_Set_Pixel_Sizes(face, 0, FT_UInt(px))) return false;
  const int asc = int(face->size->metrics.ascender >> 6);
  const int desc = int(-face->size->metrics.descender >> 6);
  // Generous canvas: overhangs of italics and accents stay inside.
  const int margin = px;
  int width = 0;
  {
    FT_UInt prev = 0;
    for (char ch : text) {
      const FT_UInt gi = FT_Get_Char_Index(face, FT_ULong(static_cast<unsigned char>(ch)));
      if (gi == 0 && ch != ' ') return false;
      if (prev && gi && FT_HAS_KERNING(face)) {
        FT_Vector k;
        FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k);
        width += int(k.x >> 6);
      }
      if (FT_Load_Glyph(face, gi, FT_LOAD_DEFAULT)) return false;
      width += int(face->glyph->advance.x >> 6);
      prev = gi;
    }
  }
  const int H = asc + desc + 2 * margin, W = std::max(1, width) + 2 * margin;
  out = cv::Mat::zeros(H, W, CV_8U);
  const int base = margin + asc;
  int pen = margin;
  FT_UInt prev = 0;
  for (char ch : text) {
    const FT_UInt gi = FT_Get_Char_Index(face, FT_ULong(static_cast<unsigned char>(ch)));
    if (prev && gi && FT_HAS_KERNING(face)) {
      FT_Vector k;
      FT_Get_Kerning(face, prev, gi, FT_KERNING_DEFAULT, &k);
      pen += int(k.x >> 6);
    }
    if (FT_Load_Glyph(face, gi, FT_LOAD_RENDER)) return false;
    const FT_GlyphSlot g = face->glyph;
    const FT_Bitmap& bm = g->bitmap;
    for (unsigned r = 0; r < bm.rows; ++r)
      for (unsigned c = 0; c < bm.width; ++c) {
        const int y = base - g->bitmap_top + int(r), x = pen + g->bitmap_left + int(c);
        if (y < 0 || y >= H || x < 0 || x >= W) continue;
        uint8_t& dst = out.at<uint8_t>(y, x);
        dst = std::max(dst, bm.buffer[int(r) * bm.pitch + int(c)]);
      }
    pen += int(g->advance.x >> 6);
    prev = gi;
  }
  baseline_top = base;
  ascender_px = asc;
  descender_px = desc;
  return true;
}

}  // namespace bpkit_tools
