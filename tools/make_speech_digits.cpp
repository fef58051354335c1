// make_speech_digits: connected-digit utterances ("zero" to "nine" and "oh", 1-7 words, as
// TIDIGITS) spoken by espeak-ng (libespeak-ng), for training and testing speech recognizers, with a
// manifest of "wav/NAME_000000.wav<TAB>TRANSCRIPT" lines. The transcript spells each word with one
// symbol: 0-9 for "zero" to "nine", o for "oh".
//
//   make_speech_digits --out DIR [--name NAME] [--count N] [--seed S] [--voices SET]
//                      [--random-voices P] [--clean] [--noise LO,HI] [--list-voices]
//
// Voices: an espeak-ng English accent (en-gb, en-us, en-us-nyc, en-gb-x-rp, en-gb-x-gbclan,
// en-gb-x-gbcwmd, en-gb-scotland, en-029) with a voice variant (m1-m8, f1-f5, klatt, croak, whisper
// and the named ones). --voices train (default) draws only from training accents and variants;
// heldout draws voices with a held-out accent or a held-out variant (never heard in training), to
// measure how a recognizer generalizes to unseen voices; all draws from everything.
// --random-voices P: a share P of the utterances (0-1) replace the variant with one drawn at
// random (formants, pitch, voicing, tone, breath, roughness, Klatt synthesis; see random_variant):
// far more speakers than the named variants, for recognizers that must hear voices unlike them.
// Every utterance gets its own rate (110-260 words per minute), pitch, pitch range and word gap.
// Augmentation (unless --clean): speed perturbation (0.9-1.1, resampled), reverberation (an
// exponentially decaying noise impulse response, RT60 0.1-0.6 s), telephone band (300-3400 Hz, 8
// kHz), additive noise (white, pink, brown, hum, babble of non-digit words) at an SNR drawn from
// --noise (dB, default 5,30), gain, and leading/trailing silence with a noise floor.
// --clean: none of these, only the silence, and --noise LO,HI still adds noise when given.
// Output: 16 kHz 16-bit mono WAV files DIR/wav/NAME_000000.wav ..., DIR/NAME.tsv, and
// DIR/NAME.info.tsv (voice, rate, pitch and augmentation of each file). Sample i depends only on
// (seed, i) and the espeak-ng version.
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <samplerate.h>
#include <sndfile.h>
#include <stdlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "augment_dsp.h"
#include "bpkit/version.h"
#include "tool_args.h"

namespace fs = std::filesystem;

namespace {

constexpr int kRate = 16000;
constexpr double kPi = 3.14159265358979323846;

const char* const kAccents[] = {"en-gb",          "en-us",          "en-us-nyc",      "en-gb-x-rp",
                                "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-gb-scotland", "en-029"};
// libespeak-ng names voices by their files (gmw/...), not by language (the CLI's -v maps both).
const char* const kAccentFiles[] = {"gmw/en",
                                    "gmw/en-US",
                                    "gmw/en-US-nyc",
                                    "gmw/en-GB-x-rp",
                                    "gmw/en-GB-x-gbclan",
                                    "gmw/en-GB-x-gbcwmd",
                                    "gmw/en-GB-scotland",
                                    "gmw/en-029"};
std::string voice_file(const std::string& accent) {
  for (size_t i = 0; i < sizeof kAccents / sizeof *kAccents; ++i)
    if (accent == kAccents[i]) return kAccentFiles[i];
  return accent;
}
const std::set<std::string> kHeldoutAccents = {"en-gb-scotland", "en-029"};
const char* const kVariants[] = {
    "m1",       "m2",         "m3",      "m4",        "m5",       "m6",     "m7",
    "m8",       "f1",         "f2",      "f3",        "f4",       "f5",     "klatt",
    "klatt2",   "klatt3",     "klatt4",  "klatt5",    "klatt6",   "croak",  "whisper",
    "whisperf", "Alex",       "Alicia",  "Andrea",    "Andy",     "Annie",  "AnxiousAndy",
    "Denis",    "Diogo",      "Gene",    "Gene2",     "Henrique", "Hugo",   "Jacky",
    "Lee",      "Marco",      "Mario",   "Michael",   "Mike",     "Nguyen", "Storm",
    "Tweaky",   "adam",       "anika",   "announcer", "antonio",  "aunty",  "belinda",
    "benjamin", "boris",      "caleb",   "david",     "ed",       "edward", "edward2",
    "grandma",  "grandpa",    "gustave", "iven",      "iven2",    "iven3",  "iven4",
    "john",     "kaukovalta", "linda",   "marcelo",   "max",      "michel", "miguel",
    "norbert",  "pablo",      "paul",    "pedro",     "quincy",   "rob",    "robert",
    "sandro",   "shelby",     "steph",   "steph2",    "steph3",   "travis", "victor",
    "zac"};
// Variants never used for training (a spread of male, female, klatt and named voices).
const std::set<std::string> kHeldoutVariants = {"m4",    "f3",       "klatt4",  "whisperf", "Annie",
                                                "aunty", "benjamin", "grandma", "iven3",    "linda",
                                                "max",   "quincy",   "steph2",  "travis",   "Lee"};
const char* const kWords[] = {"zero", "one", "two",   "three", "four",
                              "five", "six", "seven", "eight", "nine"};
// Babble: words that are not digits.
const char* const kBabble[] = {"the",    "weather", "station", "morning", "paper",  "window",
                               "garden", "yellow",  "market",  "people",  "coffee", "river",
                               "table",  "silver",  "planet",  "music",   "letter", "orange"};

struct Options {
  std::string out, name = "digits", voices = "train";
  int64_t count = 1000;
  uint64_t seed = 1;
  bool clean = false;
  double snr_lo = 5, snr_hi = 30;
  bool noise_given = false;
  double random_voices = 0;  // share of utterances spoken by a newly drawn voice variant
};

bool heldout_voice(const std::string& accent, const std::string& variant) {
  return kHeldoutAccents.count(accent) || kHeldoutVariants.count(variant);
}

// espeak-ng's synchronous output, collected by the callback.
std::vector<short>* g_pcm = nullptr;
int collect(short* wav, int n, espeak_EVENT*) {
  if (wav && n > 0) g_pcm->insert(g_pcm->end(), wav, wav + n);
  return 0;
}

std::vector<float> resample(const std::vector<float>& in, double ratio) {
  if (in.empty() || ratio == 1.0) return in;
  std::vector<float> out(size_t(std::ceil(double(in.size()) * ratio)) + 16);
  SRC_DATA d{};
  d.data_in = in.data();
  d.input_frames = long(in.size());
  d.data_out = out.data();
  d.output_frames = long(out.size());
  d.src_ratio = ratio;
  if (int err = src_simple(&d, SRC_SINC_MEDIUM_QUALITY, 1)) {
    std::fprintf(stderr, "make_speech_digits: resampling failed: %s\n", src_strerror(err));
    std::exit(1);
  }
  out.resize(size_t(d.output_frames_gen));
  return out;
}

// Speech for `text` at 16 kHz in [-1, 1], or empty when espeak-ng fails.
std::vector<float> speak(const std::string& text, const std::string& voice, int rate, int pitch,
                         int range, int gap, int espeak_rate) {
  std::vector<short> pcm;
  g_pcm = &pcm;
  const size_t plus = voice.find('+');
  const std::string file =
      voice_file(voice.substr(0, plus)) + voice.substr(std::min(plus, voice.size()));
  if (espeak_SetVoiceByName(file.c_str()) != EE_OK) return {};
  espeak_SetParameter(espeakRATE, rate, 0);
  espeak_SetParameter(espeakPITCH, pitch, 0);
  espeak_SetParameter(espeakRANGE, range, 0);
  espeak_SetParameter(espeakWORDGAP, gap, 0);
  if (espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_AUTO, nullptr,
                   nullptr) != EE_OK)
    return {};
  espeak_Synchronize();
  std::vector<float> x(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) x[i] = float(pcm[i]) / 32768.f;
  return resample(x, double(kRate) / espeak_rate);
}

// A second-order high-pass (RBJ biquad) at `hz`.
void highpass(std::vector<float>& x, double hz) {
  const double w = 2 * kPi * hz / kRate, c = std::cos(w), alpha = std::sin(w) / (2 * 0.707);
  const double a0 = 1 + alpha, b0 = (1 + c) / 2 / a0, b1 = -(1 + c) / a0, b2 = b0, a1 = -2 * c / a0,
               a2 = (1 - alpha) / a0;
  bpkit_audio::biquad(x, b0, b1, b2, a1, a2);
}

// A voice variant drawn at random (espeak-ng's variant-file syntax, voices/!v): a speaker of
// any vocal-tract length with formants scaled together and each of F1-F3 moved on its own
// (vowel spaces differ between speakers), formant strengths and bandwidths, pitch, voicing and
// consonant strength, spectral tone, breathiness, jitter and roughness, and sometimes one of the
// Klatt synthesizers (not klatt 4, whose variant is held out). Drawn from its own generator so that
// the rest of an utterance is the same with or without random voices.
std::string random_variant(std::mt19937_64& rng) {
  auto u = [&](double a, double b) { return std::uniform_real_distribution<double>(a, b)(rng); };
  auto ui = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  std::string v = "language variant\nname bpkit-random\n";
  const bool female = u(0, 1) < 0.45;
  const double tract = female ? u(1.0, 1.2) : u(0.86, 1.04);
  const int base = female ? ui(140, 240) : ui(65, 150);
  v += "pitch " + std::to_string(base) + " " + std::to_string(base + ui(15, 110)) + "\n";
  for (int k = 0; k <= 8; ++k) {
    const double move = k >= 1 && k <= 3 ? u(0.9, 1.1) : u(0.96, 1.04);
    const int freq = int(std::lround(100 * tract * move));
    const int height = k >= 6 ? ui(0, 140) : ui(65, 135), width = ui(70, 170);
    v += "formant " + std::to_string(k) + " " + std::to_string(freq) + " " +
         std::to_string(height) + " " + std::to_string(width) + "\n";
  }
  v += "voicing " + std::to_string(ui(60, 160)) + "\n";
  v += "consonants " + std::to_string(ui(70, 150)) + " " + std::to_string(ui(70, 150)) + "\n";
  if (u(0, 1) < 0.5)
    v += "tone 600 " + std::to_string(ui(60, 255)) + " 1200 " + std::to_string(ui(60, 255)) +
         " 2000 " + std::to_string(ui(40, 255)) + "\n";
  if (u(0, 1) < 0.25) {
    const int b = ui(2, 40);
    v += "breath 0 " + std::to_string(b) + " " + std::to_string(b) + " " + std::to_string(b / 2) +
         " " + std::to_string(b / 2) + " " + std::to_string(b / 4) + "\n";
  }
  if (u(0, 1) < 0.5) v += "flutter " + std::to_string(ui(0, 30)) + "\n";
  if (u(0, 1) < 0.3) v += "roughness " + std::to_string(ui(1, 5)) + "\n";
  const int klatt[] = {1, 2, 3, 5, 6};
  if (u(0, 1) < 0.25) v += "klatt " + std::to_string(klatt[ui(0, 4)]) + "\n";
  return v;
}

// espeak-ng reads variants only from its data directory: a private copy of that directory made
// of symbolic links, whose voices/!v also holds the drawn variants. Removed at exit.
class VoiceOverlay {
 public:
  explicit VoiceOverlay(const std::string& system) {
    std::string tmpl = (fs::temp_directory_path() / "bpkit-espeak-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
    root_ = tmpl;
    try {
      const fs::path data = root_ / "espeak-ng-data", sys = system;
      fs::create_directories(data / "voices" / "!v");
      for (const auto& e : fs::directory_iterator(sys))
        if (e.path().filename() != "voices")
          fs::create_symlink(e.path(), data / e.path().filename());
      for (const auto& e : fs::directory_iterator(sys / "voices"))
        if (e.path().filename() != "!v")
          fs::create_symlink(e.path(), data / "voices" / e.path().filename());
      for (const auto& e : fs::directory_iterator(sys / "voices" / "!v"))
        fs::create_symlink(e.path(), data / "voices" / "!v" / e.path().filename());
    } catch (...) {
      std::error_code ec;
      fs::remove_all(root_, ec);
      throw;
    }
  }
  ~VoiceOverlay() {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  VoiceOverlay(const VoiceOverlay&) = delete;
  VoiceOverlay& operator=(const VoiceOverlay&) = delete;
  std::string root() const { return root_.string(); }
  // Writes `text` as variant `name` (a new name each time: espeak-ng may keep a loaded one).
  void put(const std::string& name, const std::string& text) const {
    std::ofstream(root_ / "espeak-ng-data" / "voices" / "!v" / name) << text;
  }
  void drop(const std::string& name) const {
    std::error_code ec;
    fs::remove(root_ / "espeak-ng-data" / "voices" / "!v" / name, ec);
  }

 private:
  fs::path root_;
};

// Noise of one kind, `n` samples, unit power: a colour, or babble from the pool's speech.
std::vector<float> make_noise(const std::string& kind, size_t n, std::mt19937_64& rng,
                              const std::vector<float>& babble) {
  if (kind != "babble") return bpkit_audio::colored_noise(kind, n, kRate, rng);
  std::vector<float> x(n);
  const size_t off = std::uniform_int_distribution<size_t>(0, babble.size() - 1)(rng);
  for (size_t i = 0; i < n; ++i) x[i] = babble[(off + i) % babble.size()];
  const double p = bpkit_audio::mean_power(x);
  if (p > 0)
    for (float& v : x) v = float(v / std::sqrt(p));
  return x;
}

bool write_wav(const std::string& path, const std::vector<float>& x) {
  SF_INFO info{};
  info.samplerate = kRate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  const std::string tmp = path + ".tmp";
  SNDFILE* f = sf_open(tmp.c_str(), SFM_WRITE, &info);
  if (!f) return false;
  sf_command(f, SFC_SET_CLIPPING, nullptr, SF_TRUE);
  const bool ok = sf_writef_float(f, x.data(), sf_count_t(x.size())) == sf_count_t(x.size());
  sf_close(f);
  std::error_code ec;
  if (ok) fs::rename(tmp, path, ec);
  return ok && !ec;
}

constexpr const char* kProgram = "make_speech_digits";

const char* kUsage =
    "usage: make_speech_digits --out DIR [--name NAME] [--count N] [--seed S] [--voices SET]\n"
    "                          [--random-voices P] [--clean] [--noise LO,HI]\n"
    "       make_speech_digits --list-voices [--voices SET]\n"
    "\n"
    "Connected-digit utterances ('zero' to 'nine' and 'oh', 1-7 words) spoken by espeak-ng, for\n"
    "training and testing speech recognizers: DIR/wav/NAME_000000.wav ... (16 kHz mono), the\n"
    "manifest DIR/NAME.tsv (\"wav/NAME_000000.wav<TAB>TRANSCRIPT\", 0-9 and o for 'oh') and\n"
    "DIR/NAME.info.tsv (voice, rate, pitch, augmentation). Sample i depends only on (seed, i).\n"
    "\n"
    "  --out DIR            output directory (created when missing)\n"
    "  --name NAME          file and manifest name (default digits)\n"
    "  --count N            utterances, 1..10000000 (default 1000)\n"
    "  --seed S             seed (default 1)\n"
    "  --voices SET         train (default): training accents and variants; heldout: voices\n"
    "                       with a held-out accent or variant, never heard in training; all\n"
    "  --random-voices P    share 0..1 of utterances by a newly drawn voice variant (training)\n"
    "  --clean              no augmentation (speed, reverberation, telephone band, noise, gain)\n"
    "  --noise LO,HI        additive noise at an SNR drawn from LO..HI dB (default 5,30; with\n"
    "                       --clean, noise only when given)\n"
    "  --list-voices        print the voices of --voices SET and exit\n"
    "  -h, --help           this help\n"
    "  --version            the version, revision, plugin ABI and kernel level\n";

}  // namespace

int main(int argc, char** argv) {
  if (bpkit::print_version_if_asked(argc, argv, "make_speech_digits")) return 0;
  Options o;
  bool list = false;
  bpkit_tools::ArgReader args{"make_speech_digits", argc, argv};
  for (int& i = args.i; ++i < argc;) {
    const std::string a = argv[i];
    if (a == "--out") {
      o.out = args.value();
    } else if (a == "--name") {
      o.name = args.value();
    } else if (a == "--count") {
      o.count = args.number(a, args.value(), 1, 10000000);
    } else if (a == "--seed") {
      o.seed = uint64_t(args.number(a, args.value(), 0, (1LL << 62)));
    } else if (a == "--voices") {
      o.voices = args.value();
      if (o.voices != "train" && o.voices != "heldout" && o.voices != "all")
        bpkit_tools::usage_error(kProgram,
                                 "--voices expects train, heldout or all, got '" + o.voices + "'");
    } else if (a == "--clean") {
      o.clean = true;
    } else if (a == "--noise") {
      const std::string v = args.value();
      if (std::sscanf(v.c_str(), "%lf,%lf", &o.snr_lo, &o.snr_hi) != 2 || o.snr_lo > o.snr_hi ||
          o.snr_lo < -10 || o.snr_hi > 100) {
        bpkit_tools::usage_error(kProgram, "--noise expects LO,HI in dB, got '" + v + "'");
      }
      o.noise_given = true;
    } else if (a == "--random-voices") {
      o.random_voices = args.real(a, args.value(), 0, 1);
    } else if (a == "--list-voices") {
      list = true;
    } else if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      bpkit_tools::usage_error(kProgram, "unknown option '" + a + "'");
    }
  }
  std::vector<std::pair<std::string, std::string>> voices;
  for (const char* acc : kAccents)
    for (const char* var : kVariants) {
      const bool held = heldout_voice(acc, var);
      if (o.voices == "all" || (o.voices == "heldout") == held) voices.emplace_back(acc, var);
    }
  if (list) {
    for (const auto& v : voices)
      std::printf("%s+%s\t%s\n", v.first.c_str(), v.second.c_str(),
                  heldout_voice(v.first, v.second) ? "heldout" : "train");
    return 0;
  }
  if (o.out.empty()) bpkit_tools::usage_error(kProgram, "--out DIR is required");
  if (o.name.empty() || o.name.find('/') != std::string::npos)
    bpkit_tools::usage_error(kProgram,
                             "--name expects a file name without '/', got '" + o.name + "'");

  if (o.random_voices > 0 && o.voices == "heldout") {
    std::fprintf(stderr,
                 "make_speech_digits: --random-voices draws training voices; it cannot be "
                 "combined with --voices heldout\n");
    return 2;
  }
  std::unique_ptr<VoiceOverlay> overlay;
  if (o.random_voices > 0) {  // where espeak-ng keeps its data, then espeak-ng over the overlay
    const char* data = nullptr;
    espeak_ng_InitializePath(nullptr);  // sets the path only (a second espeak_Initialize can hang)
    espeak_Info(&data);
    const std::string system = data ? data : "";
    try {
      overlay = std::make_unique<VoiceOverlay>(system);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "make_speech_digits: cannot prepare random voices over '%s': %s\n",
                   system.c_str(), e.what());
      return 1;
    }
  }
  const int espeak_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                            overlay ? overlay->root().c_str() : nullptr, 0);
  if (espeak_rate <= 0) {
    std::fprintf(stderr,
                 "make_speech_digits: cannot start espeak-ng (is espeak-ng-data "
                 "installed?)\n");
    return 1;
  }
  espeak_SetSynthCallback(collect);

  std::error_code ec;
  fs::create_directories(fs::path(o.out) / "wav", ec);
  if (ec) {
    std::fprintf(stderr, "make_speech_digits: cannot create '%s': %s\n", o.out.c_str(),
                 ec.message().c_str());
    return 1;
  }
  // The babble pool: non-digit words by training voices (any --voices: babble is noise).
  std::vector<float> babble;
  {
    std::mt19937_64 rng(bpkit_tools::mix(o.seed ^ 0xbabb1e));
    for (int k = 0; k < 4; ++k) {
      std::string text;
      for (int w = 0; w < 12; ++w)
        text += std::string(kBabble[std::uniform_int_distribution<size_t>(0, 17)(rng)]) + " ";
      const std::vector<float> s =
          speak(text, std::string(kAccents[k % 6]) + "+" + kVariants[(k * 7) % 14], 200, 50, 50, 0,
                espeak_rate);
      if (babble.empty()) {
        babble = s;
      } else {
        babble.resize(std::max(babble.size(), s.size()), 0.f);
        for (size_t i = 0; i < s.size(); ++i) babble[i] += s[i];
      }
    }
  }

  if (babble.empty()) {
    std::fprintf(stderr, "make_speech_digits: espeak-ng said nothing for the babble noise\n");
    return 1;
  }
  const std::string manifest = (fs::path(o.out) / (o.name + ".tsv")).string();
  std::ofstream tsv(manifest + ".tmp"), info((fs::path(o.out) / (o.name + ".info.tsv")).string());
  tsv << "# make_speech_digits --voices " << o.voices << " --seed " << o.seed
      << (o.clean ? " --clean" : "") << " --noise " << o.snr_lo << "," << o.snr_hi << ": "
      << o.count << " utterances\n";
  info << "file\tvoice\trate\tpitch\tspeed\treverb_rt60\ttelephone\tnoise\tsnr_db\n";
  const char* const noises[] = {"white", "pink", "brown", "hum", "babble"};
  for (int64_t i = 0; i < o.count; ++i) {
    std::mt19937_64 rng(bpkit_tools::mix(o.seed * 0x100000001b3ULL + uint64_t(i)));
    auto uniform = [&](double a, double b) {
      return std::uniform_real_distribution<double>(a, b)(rng);
    };
    auto chance = [&](double p) { return uniform(0, 1) < p; };
    const int words = std::uniform_int_distribution<int>(1, 7)(rng);
    std::string text, label;
    for (int w = 0; w < words; ++w) {
      const int d = std::uniform_int_distribution<int>(0, 9)(rng);
      const bool oh = d == 0 && chance(0.4);
      if (w) text += chance(0.15) ? ", " : " ";
      text += oh ? "oh" : kWords[d];
      label += oh ? 'o' : char('0' + d);
    }
    const auto& v = voices[std::uniform_int_distribution<size_t>(0, voices.size() - 1)(rng)];
    std::string voice = v.first + "+" + v.second, variant_name;
    if (overlay) {
      std::mt19937_64 vrng(bpkit_tools::mix(o.seed * 0x100000001b3ULL + uint64_t(i)) ^ 0x5eed5);
      if (std::uniform_real_distribution<double>(0, 1)(vrng) < o.random_voices) {
        variant_name = "bpkit-random-" + std::to_string(i);
        overlay->put(variant_name, random_variant(vrng));
        voice = v.first + "+" + variant_name;
      }
    }
    const int rate = std::uniform_int_distribution<int>(110, 260)(rng);
    const int pitch = std::uniform_int_distribution<int>(15, 85)(rng);
    const int range = std::uniform_int_distribution<int>(10, 90)(rng);
    const int gap = chance(0.3) ? std::uniform_int_distribution<int>(1, 20)(rng) : 0;
    std::vector<float> x = speak(text, voice, rate, pitch, range, gap, espeak_rate);
    if (!variant_name.empty()) overlay->drop(variant_name);
    if (x.empty()) {
      std::fprintf(stderr, "make_speech_digits: espeak-ng could not say '%s' with voice %s\n",
                   text.c_str(), voice.c_str());
      return 1;
    }
    double speed = 1, rt60 = 0, snr = 0;
    bool phone = false;
    std::string noise = "none";
    if (!o.clean) {
      if (chance(0.5)) {
        speed = uniform(0.9, 1.1);
        x = resample(x, 1.0 / speed);
      }
      if (chance(0.3)) {  // reverberation
        rt60 = uniform(0.1, 0.6);
        x = bpkit_audio::fft_convolve(x, bpkit_audio::room_response(rt60, kRate, rng));
      }
      if (chance(0.15)) {  // telephone band
        phone = true;
        x = resample(resample(x, 0.5), 2.0);
        highpass(x, 300);
      }
    }
    // Silence before and after (the endpointer's job), then noise over the whole.
    const size_t lead = size_t(uniform(0.05, 0.6) * kRate),
                 tail = size_t(uniform(0.05, 0.6) * kRate);
    x.insert(x.begin(), lead, 0.f);
    x.insert(x.end(), tail, 0.f);
    const double speech_power =
        bpkit_audio::mean_power(x) * double(x.size()) / double(x.size() - lead - tail);
    if ((!o.clean && chance(0.7)) || o.noise_given) {
      noise = noises[std::uniform_int_distribution<int>(0, 4)(rng)];
      snr = uniform(o.snr_lo, o.snr_hi);
      const std::vector<float> n = make_noise(noise, x.size(), rng, babble);
      const float a = float(std::sqrt(speech_power / std::pow(10.0, snr / 10)));
      for (size_t k = 0; k < x.size(); ++k) x[k] += a * n[k];
    } else {  // a faint floor, as any recording has
      std::normal_distribution<float> g(0.f, 1.f);
      const float a = float(std::sqrt(speech_power) * std::pow(10.0, -uniform(45, 70) / 20));
      for (float& s : x) s += a * g(rng);
    }
    float peak = 0;
    for (float s : x) peak = std::max(peak, std::fabs(s));
    const float gain = peak > 0 ? float(uniform(o.clean ? 0.5 : 0.05, 0.95)) / peak : 1.f;
    for (float& s : x) s *= gain;
    char index[32];
    std::snprintf(index, sizeof index, "_%06lld.wav", (long long)i);
    const std::string file = "wav/" + o.name + index;
    if (!write_wav((fs::path(o.out) / file).string(), x)) {
      std::fprintf(stderr, "make_speech_digits: cannot write '%s'\n",
                   (fs::path(o.out) / file).string().c_str());
      return 1;
    }
    tsv << file << '\t' << label << '\n';
    info << file << '\t' << voice << '\t' << rate << '\t' << pitch << '\t' << speed << '\t' << rt60
         << '\t' << phone << '\t' << noise << '\t' << snr << '\n';
  }
  tsv.close();
  fs::rename(manifest + ".tmp", manifest, ec);
  if (ec || !tsv) {
    std::fprintf(stderr, "make_speech_digits: cannot write '%s'\n", manifest.c_str());
    return 1;
  }
  std::fprintf(stderr, "make_speech_digits: %lld utterances in %s\n", (long long)o.count,
               manifest.c_str());
  return 0;
}
