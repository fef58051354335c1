// Trained model directories: loading (TrainedModel), ensembles, word lists, shipped models, and
// the files bpkit train writes beside the network. Kept apart from train.cpp so that programs
// that only run models (the apps) link none of the training report's image code.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "bpkit/ctc.h"
#include "bpkit/error.h"
#include "bpkit/train.h"
#include "model_dir.h"

namespace bpkit {

namespace fs = std::filesystem;

namespace model_dir {

void remove_members_above(const std::string& dir, size_t members) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (member_number(e.path().filename().string()) > members) stale.push_back(e.path());
  if (ec) throw FileError(dir + ": cannot list the directory: " + ec.message());
  // Highest first: a reader meanwhile sees members 2..N without a gap.
  std::sort(stale.begin(), stale.end(), [](const fs::path& x, const fs::path& y) {
    return member_number(x.filename().string()) > member_number(y.filename().string());
  });
  for (const fs::path& f : stale)
    if (!fs::remove(f, ec) && ec)
      throw FileError(f.string() + ": cannot remove a stale member: " + ec.message());
}

size_t member_number(const std::string& name) {
  if (name.size() <= 10 || name.compare(0, 6, "model.") != 0 ||
      name.compare(name.size() - 4, 4, ".bpk") != 0)
    return 0;
  const std::string n = name.substr(6, name.size() - 10);
  if (n.size() > 4 || n[0] == '0' ||
      !std::all_of(n.begin(), n.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return 0;
  const size_t v = size_t(std::stoul(n));
  return v >= 2 ? v : 0;
}

std::vector<std::string> class_names(const Metadata& meta) {
  std::vector<std::string> names;
  for (size_t i = 0;; ++i) {
    const auto it = std::find_if(meta.begin(), meta.end(), [&](const auto& kv) {
      return kv.first == "class." + std::to_string(i);
    });
    if (it == meta.end()) return names;
    names.push_back(it->second);
  }
}

bool is_transcript_model(const Metadata& meta) {
  return std::any_of(meta.begin(), meta.end(), [](const auto& kv) {
    return kv.first == "labels" && kv.second == "transcript";
  });
}

void write_fit_states(const std::string& path, const Pipeline& p,
                      const std::vector<std::pair<size_t, std::string>>& states) {
  YAML::Emitter e;
  e << YAML::Comment(
      "statistics the pipeline's fit stages learned from the training set (bpkit train)");
  e << YAML::BeginSeq;
  for (const auto& [stage, state] : states)
    e << YAML::BeginMap << YAML::Key << "stage" << YAML::Value << stage + 1 << YAML::Key << "plugin"
      << YAML::Value << p.stages()[stage].plugin << YAML::Key << "state" << YAML::Value
      << YAML::Literal << state << YAML::EndMap;
  e << YAML::EndSeq;
  write_file_atomically(path, std::string(e.c_str()) + "\n");
}

void read_fit_states(const std::string& dir, Pipeline& p) {
  const std::vector<size_t> fits = p.fit_stages();
  const std::string path = (fs::path(dir) / kFittedFile).string();
  if (fits.empty()) return;
  if (!fs::exists(path))
    throw FileError(path + ": missing; stage " + std::to_string(fits[0] + 1) + " ('" +
                    p.stages()[fits[0]].plugin +
                    "') learns from the training set and needs what bpkit train stored there");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    throw FileError(path + ": not a fit-state file: " + e.what());
  }
  if (!root.IsSequence())
    throw FileError(path + ": not a fit-state file (expected a list of {stage, plugin, state})");
  // Each fit stage's entry, by stage number (a pipeline cut short, as export_features --upto
  // makes, uses the entries of the stages it kept).
  for (size_t k : fits) {
    const std::string want = p.stages()[k].plugin;
    bool found = false;
    for (size_t i = 0; i < root.size() && !found; ++i) try {
        const YAML::Node n = root[i];
        if (!n.IsMap() || !n["stage"] || !n["plugin"] || !n["state"])
          throw FileError(path + ": entry " + std::to_string(i + 1) +
                          " is not a {stage, plugin, state} mapping");
        if (n["stage"].as<std::string>() != std::to_string(k + 1)) continue;
        if (n["plugin"].as<std::string>() != want)
          throw FileError(path + ": entry " + std::to_string(i + 1) + " is the state of '" +
                          n["plugin"].as<std::string>() + "', but stage " + std::to_string(k + 1) +
                          " is '" + want + "'");
        p.load_fit_state(k, n["state"].as<std::string>());
        found = true;
      } catch (const YAML::Exception& e) {
        throw FileError(path + ": entry " + std::to_string(i + 1) + ": " + e.what());
      }
    if (!found)
      throw FileError(path + ": no state for stage " + std::to_string(k + 1) + " ('" + want +
                      "'), which learns from the training set");
  }
}

}  // namespace model_dir

using namespace model_dir;

namespace {

// The class of one row of logits, with the softmax probabilities of every class.
TrainedModel::Prediction classify(const float* row, const std::vector<std::string>& classes) {
  const int64_t k = int64_t(classes.size());
  const float mx = *std::max_element(row, row + k);
  TrainedModel::Prediction p;
  double z = 0;
  for (int64_t c = 0; c < k; ++c) z += std::exp(double(row[c] - mx));
  for (int64_t c = 0; c < k; ++c) p.probabilities.push_back(std::exp(double(row[c] - mx)) / z);
  p.label = int(std::max_element(row, row + k) - row);
  p.name = classes[size_t(p.label)];
  p.confidence = p.probabilities[size_t(p.label)];
  return p;
}

// Adds the softmax probabilities of `n` rows of `k` logits to `acc` (n x k).
void add_probabilities(const float* logits, size_t n, size_t k, std::vector<double>& acc) {
  for (size_t i = 0; i < n; ++i) {
    const float* row = logits + i * k;
    const float mx = *std::max_element(row, row + k);
    double z = 0;
    for (size_t c = 0; c < k; ++c) z += std::exp(double(row[c] - mx));
    for (size_t c = 0; c < k; ++c) acc[i * k + c] += std::exp(double(row[c] - mx)) / z;
  }
}

// The prediction from the sum of `members` probability rows (the first class of the highest mean
// wins a tie).
TrainedModel::Prediction from_probabilities(const double* sum, size_t members,
                                            const std::vector<std::string>& classes) {
  TrainedModel::Prediction p;
  for (size_t c = 0; c < classes.size(); ++c) p.probabilities.push_back(sum[c] / double(members));
  p.label = int(std::max_element(p.probabilities.begin(), p.probabilities.end()) -
                p.probabilities.begin());
  p.name = classes[size_t(p.label)];
  p.confidence = p.probabilities[size_t(p.label)];
  return p;
}

// Why member `other` (file `file`) cannot join an ensemble whose first network is `first` with
// `classes`; empty when it can.
std::string member_mismatch(const LoadedModel<float>& first, const LoadedModel<float>& other,
                            const std::vector<std::string>& classes) {
  if (is_transcript_model(other.meta))
    return "a transcript (CTC) model; an ensemble averages class probabilities";
  if (other.net.input_shape() != first.net.input_shape())
    return "its input " + to_string(other.net.input_shape()) + " differs from the first member's " +
           to_string(first.net.input_shape());
  if (other.net.output_shape() != first.net.output_shape())
    return "its output " + to_string(other.net.output_shape()) +
           " differs from the first member's " + to_string(first.net.output_shape());
  if (class_names(other.meta) != classes) return "its class names differ from the first member's";
  return "";
}

// Members of a verifier's ensemble: embedding networks of the same input; their embeddings are
// concatenated, so their widths may differ.
std::string embedding_member_mismatch(const LoadedModel<float>& first,
                                      const LoadedModel<float>& other) {
  const std::string* labels = nullptr;
  for (const auto& kv : other.meta)
    if (kv.first == "labels") labels = &kv.second;
  if (!labels || *labels != "writer")
    return "not an embedding model (a verifier's members are verifiers)";
  if (other.net.input_shape() != first.net.input_shape())
    return "its input " + to_string(other.net.input_shape()) + " differs from the first member's " +
           to_string(first.net.input_shape());
  if (other.net.output_shape().size() != 1)
    return "its output " + to_string(other.net.output_shape()) + " is not a vector";
  return "";
}

// A verifier's members (metadata "members" and "ensemble", written by training since ensembles
// exist) must be as many as they say and of one run. Older single-network verifiers have neither.
void check_ensemble_members(const std::string& dir, const LoadedModel<float>& first,
                            const std::vector<LoadedModel<float>>& more) {
  auto value = [](const Metadata& meta, const char* key) {
    for (const auto& kv : meta)
      if (kv.first == key) return kv.second;
    return std::string();
  };
  const std::string count = value(first.meta, "members"), run = value(first.meta, "ensemble");
  if (count.empty() && more.empty()) return;
  if (count != std::to_string(more.size() + 1))
    throw FileError(dir + ": " + std::to_string(more.size() + 1) +
                    " verifier network file(s), but " + kModelFile +
                    " was trained in an ensemble of " + (count.empty() ? std::string("1") : count) +
                    " (an interrupted write or files of two runs; train it again)");
  for (size_t i = 0; i < more.size(); ++i)
    if (value(more[i].meta, "ensemble") != run)
      throw FileError(dir + "/model." + std::to_string(i + 2) +
                      ".bpk: from another training run than " + kModelFile +
                      " (an interrupted write or files of two runs; train it again)");
}

}  // namespace

LabelFsa dictionary_acceptor(const std::string& path, const std::vector<std::string>& alphabet,
                             size_t* words) {
  // Labels: k + 1 is alphabet[k] (0 is the blank).
  std::vector<int32_t> label_of(256, -1);
  for (size_t k = 0; k < alphabet.size(); ++k)
    if (alphabet[k].size() == 1)
      label_of[static_cast<unsigned char>(alphabet[k][0])] = int32_t(k + 1);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open the dictionary (" + std::strerror(errno) + ")");
  // Words are spelled in lower case, Capitalized or in UPPER case: a trie of the lower-case
  // spellings and one of the upper-case ones, and a start state whose lower-case arcs enter the
  // first and whose upper-case arcs enter, per first letter, a state that continues in either.
  LabelFsa acceptor;
  LabelFsa* const fsa = &acceptor;
  const int lower_root = fsa->add_state(), upper_root = fsa->add_state();
  // Adds the word spelled in one case to the trie at `root`; true when it was not there yet.
  auto insert = [&](int root, const std::string& word, bool upper) {
    int state = root;
    for (char ch : word) {
      const unsigned char u = static_cast<unsigned char>(ch);
      const int32_t label = label_of[size_t(upper ? std::toupper(u) : std::tolower(u))];
      if (label < 0) return false;  // the alphabet cannot spell it in this case
    }
    for (char ch : word) {
      const unsigned char u = static_cast<unsigned char>(ch);
      const int32_t label = label_of[size_t(upper ? std::toupper(u) : std::tolower(u))];
      int to = fsa->next(state, label);
      if (to < 0) {
        to = fsa->add_state();
        fsa->add_arc(state, label, to);
      }
      state = to;
    }
    const bool added = !fsa->is_final(state);
    fsa->set_final(state);
    return added;
  };
  size_t kept = 0, line_no = 0;
  std::string line;
  std::vector<std::string> as_written;
  // Bounds on what a word list may cost: lines, line length and trie states (each about 70
  // bytes; wamerican's 74 585 words take 341 317).
  constexpr size_t kMaxLines = 2000000, kMaxLine = 256, kMaxStates = 4000000;
  // getline on a file without newlines would read it whole: lines are read in bounded pieces.
  while (true) {
    line.clear();
    int c;
    while ((c = in.get()) != EOF && c != '\n') {
      if (line.size() >= kMaxLine)
        throw FileError(path + ":" + std::to_string(line_no + 1) + ": a line longer than " +
                        std::to_string(kMaxLine) + " bytes (expected one word per line)");
      line += char(c);
    }
    if (c == EOF && line.empty()) break;
    if (++line_no > kMaxLines)
      throw FileError(path + ": more than " + std::to_string(kMaxLines) +
                      " lines (expected a word list)");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.compare(0, 3, "\xEF\xBB\xBF") == 0) line.erase(0, 3);  // UTF-8 BOM
    if (fsa->num_states() > int(kMaxStates))
      throw FileError(path + ":" + std::to_string(line_no) + ": the word list is too large (over " +
                      std::to_string(kMaxStates) +
                      " trie states, about 700 000 words of English; expected a dictionary)");
    const bool letters = !line.empty() && std::all_of(line.begin(), line.end(), [](char ch) {
      const unsigned char u = static_cast<unsigned char>(ch);
      return u < 128 && std::isalpha(u);
    });
    if (!letters) continue;
    const bool in_lower = insert(lower_root, line, false);
    const bool in_upper = insert(upper_root, line, true);
    kept += in_lower || in_upper;
    // Spellings of their own ("MHz", "iPod") are added as written once the tries are joined.
    const bool capitalized = std::all_of(line.begin() + 1, line.end(), [](char ch) {
      return std::islower(static_cast<unsigned char>(ch));
    });
    const bool upper = std::all_of(line.begin(), line.end(), [](char ch) {
      return std::isupper(static_cast<unsigned char>(ch));
    });
    if (!capitalized && !upper) as_written.push_back(line);
  }
  if (in.bad()) throw FileError(path + ": cannot read the dictionary");
  if (kept == 0) throw FileError(path + ": no usable word (expected one word of letters per line)");
  for (const auto& [label, child] : fsa->arcs(lower_root)) fsa->add_arc(0, label, child);
  const std::vector<std::pair<int32_t, int>> upper_first = fsa->arcs(upper_root);
  for (const auto& [label, child] : upper_first) {
    // After an upper-case first letter: the rest in upper case, or in lower case (Capitalized).
    const int both = fsa->add_state(fsa->is_final(child));
    const std::vector<std::pair<int32_t, int>> up = fsa->arcs(child);
    for (const auto& [l, to] : up) fsa->add_arc(both, l, to);
    const unsigned char first = static_cast<unsigned char>(alphabet[size_t(label - 1)][0]);
    const int32_t lower_label = label_of[size_t(std::tolower(first))];
    const int lower = lower_label >= 0 ? fsa->next(lower_root, lower_label) : -1;
    if (lower >= 0) {
      const std::vector<std::pair<int32_t, int>> down = fsa->arcs(lower);
      for (const auto& [l, to] : down) fsa->add_arc(both, l, to);
      if (fsa->is_final(lower)) fsa->set_final(both);
    }
    fsa->add_arc(0, label, both);
  }
  for (const std::string& word : as_written) {
    int state = 0;
    bool spelled = true;
    for (size_t i = 0; spelled && i < word.size(); ++i) {
      const int32_t label = label_of[static_cast<unsigned char>(word[i])];
      if (label < 0) {
        spelled = false;
        break;
      }
      int to = fsa->next(state, label);
      if (to < 0) {
        to = fsa->add_state();
        fsa->add_arc(state, label, to);
      }
      state = to;
    }
    if (spelled) fsa->set_final(state);
  }
  if (words) *words = kept;
  return acceptor;
}

void TrainedModel::use_dictionary(const std::string& path, double max_cost) {
  if (!transcripts_)
    throw ConfigError(dir_ + ": a dictionary corrects text; this is a class model");
  if (!(max_cost >= 0) || !std::isfinite(max_cost))
    throw ConfigError("the dictionary cost must be a finite number >= 0, got " +
                      std::to_string(max_cost));
  std::vector<uint8_t> word_label(classes_.size() + 1, 0);
  for (size_t k = 0; k < classes_.size(); ++k) {
    const unsigned char ch = static_cast<unsigned char>(classes_[k][0]);
    word_label[k + 1] = std::isalpha(ch)                ? 2
                        : std::isdigit(ch)              ? 1
                        : std::isspace(ch) || ch == '-' ? 3
                        : ch == '\''                    ? 4
                                                        : 0;
  }
  size_t kept = 0;
  auto fsa = std::make_unique<LabelFsa>(dictionary_acceptor(path, classes_, &kept));
  lexicon_ = std::move(fsa);
  word_label_ = std::move(word_label);
  lexicon_options_.max_cost = max_cost;
  dictionary_words_ = kept;
}

std::vector<std::string> member_files(const std::string& dir) {
  std::vector<std::string> files{(fs::path(dir) / kModelFile).string()};
  if (!fs::is_regular_file(files[0]))
    throw FileError(dir + ": not a model directory (no " + kModelFile + ")");
  size_t highest = 1;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    highest = std::max(highest, member_number(e.path().filename().string()));
  if (ec) throw FileError(dir + ": cannot list the directory: " + ec.message());
  for (size_t i = 2; i <= highest; ++i) {
    const fs::path f = fs::path(dir) / ("model." + std::to_string(i) + ".bpk");
    if (!fs::is_regular_file(f))
      throw FileError(dir + ": ensemble member " + f.filename().string() +
                      " is missing (members are numbered 2, 3, ... up to the highest, model." +
                      std::to_string(highest) + ".bpk)");
    files.push_back(f.string());
  }
  return files;
}

void write_ensemble(const std::vector<std::string>& dirs, const std::string& out) {
  if (dirs.empty()) throw std::invalid_argument("an ensemble needs at least one model directory");
  // Fit states go with the pipeline: every member must have learned the same ones (members
  // trained on other data would normalize their features differently).
  auto fitted_text = [](const std::string& dir) -> std::string {
    const fs::path f = fs::path(dir) / kFittedFile;
    if (!fs::exists(f)) return "";
    std::ifstream in(f, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(f.string() + ": cannot read");
    return text.str();
  };
  const std::string fitted = fitted_text(dirs[0]);
  for (size_t i = 1; i < dirs.size(); ++i)
    if (fitted_text(dirs[i]) != fitted)
      throw FileError(dirs[i] + ": its " + kFittedFile + " differs from " + dirs[0] +
                      "'s: members of an ensemble must share what their fit stages learned");

  for (size_t i = 0; i < dirs.size(); ++i) {
    std::error_code eq;
    for (size_t j = 0; j < i; ++j)
      if (fs::equivalent(dirs[i], dirs[j], eq))
        throw FileError(dirs[i] + ": named twice (as member " + std::to_string(j + 1) + " and " +
                        std::to_string(i + 1) + ")");
    // The output may be the first member's directory (its network stays model.bpk), no other.
    if (i > 0 && fs::equivalent(dirs[i], out, eq))
      throw FileError(
          out + ": the output is member " + std::to_string(i + 1) +
          "'s directory; it would lose that network (write elsewhere, or name it first)");
  }
  // Everything is read and checked before anything is written.
  std::vector<std::string> bytes;
  std::string pipeline_text;
  LoadedModel<float> first{Network<float>({1}, 0), {}, {}};
  std::vector<std::string> classes;
  PipelineConfig first_config;
  auto read_all = [](const std::string& path) {  // a model file's bytes, copied unchanged
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(path + ": cannot read the file");
    return text.str();
  };
  for (size_t i = 0; i < dirs.size(); ++i) {
    const std::vector<std::string> files = member_files(dirs[i]);
    LoadedModel<float> m = load_model<float>(files[0]);
    for (const auto& kv : m.meta)
      if (kv.first == "labels" && kv.second == "writer")
        throw FileError(dirs[i] +
                        ": a verifier; its ensemble needs a threshold calibrated on "
                        "validation writers: train one with training.members: K");
    if (files.size() > 1)
      throw FileError(dirs[i] + ": already an ensemble of " + std::to_string(files.size()) +
                      " networks; name the directories of its members instead");
    const std::string pfile = (fs::path(dirs[i]) / kPipelineFile).string();
    if (!fs::is_regular_file(pfile))
      throw FileError(dirs[i] + ": not a model directory (no " + kPipelineFile + ")");
    const PipelineConfig config = load_pipeline_config(pfile);
    if (i == 0) {
      if (is_transcript_model(m.meta))
        throw FileError(dirs[i] +
                        ": a transcript (CTC) model; an ensemble averages class probabilities");
      classes = class_names(m.meta);
      if (classes.empty()) throw FileError(files[0] + ": a class model without its class names");
      first_config = config;
      pipeline_text = config.text;
      first = std::move(m);
    } else {
      const std::string why = member_mismatch(first, m, classes);
      if (!why.empty()) throw FileError(dirs[i] + ": cannot join the ensemble: " + why);
      bool same = config.stages.size() == first_config.stages.size();
      for (size_t s = 0; same && s < config.stages.size(); ++s)
        same = config.stages[s].plugin == first_config.stages[s].plugin &&
               config.stages[s].params == first_config.stages[s].params;
      if (!same)
        throw FileError(dirs[i] + ": cannot join the ensemble: its pipeline's stages differ from " +
                        dirs[0] + "'s (members must see the same features)");
    }
    bytes.push_back(read_all(files[0]));
  }
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec || !fs::is_directory(out))
    throw FileError(out + ": cannot create the directory" + (ec ? ": " + ec.message() : ""));
  // Stale members go first, so that no reader meets members of two ensembles.
  model_dir::remove_members_above(out, dirs.size());
  for (size_t i = dirs.size(); i-- > 0;)
    write_file_atomically((fs::path(out) / (i == 0 ? std::string(kModelFile)
                                                   : "model." + std::to_string(i + 1) + ".bpk"))
                              .string(),
                          bytes[i]);
  write_file_atomically((fs::path(out) / kPipelineFile).string(), pipeline_text);
  if (!fitted.empty()) write_file_atomically((fs::path(out) / kFittedFile).string(), fitted);
}

std::string resolve_model_dir(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    // A model directory's model.bpk stands for the directory (its pipeline and members).
    const fs::path p(path);
    if (p.filename() == kModelFile && fs::exists(p.parent_path() / kPipelineFile, ec))
      return p.parent_path().empty() ? std::string(".") : p.parent_path().string();
    throw FileError(path + ": a file; a model directory is expected (the directory that holds " +
                    kModelFile + " and " + kPipelineFile + ")");
  }
  return path;
}

TrainedModel::TrainedModel(const std::string& given, const std::vector<std::string>& plugin_dirs,
                           bool trust_model_plugins)
    : dir_(resolve_model_dir(given)), model_{Network<float>({1}, 0), {}, {}} {
  const std::string& dir = dir_;
  const std::string pfile = (fs::path(dir) / kPipelineFile).string();
  const std::string mfile = (fs::path(dir) / kModelFile).string();
  if (!fs::is_directory(dir)) throw FileError(dir + ": not a model directory (no such directory)");
  if (!fs::exists(mfile)) throw FileError(dir + ": not a model directory (no " + kModelFile + ")");
  if (!fs::exists(pfile))
    throw FileError(dir + ": not a model directory (no " + kPipelineFile + ")");
  {
    // Relative paths in the copied pipeline resolve against the original file's directory when it
    // is still where it was relative to the model directory, else against the model directory.
    std::string base;
    model_ = load_model<float>(mfile);
    for (const auto& kv : model_.meta)
      if (kv.first == "pipeline_dir" && fs::is_directory(fs::path(dir) / kv.second))
        base = (fs::path(dir) / kv.second).lexically_normal().string();
    std::ifstream in(pfile, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw FileError(pfile + ": cannot read the pipeline file");
    config_ = parse_pipeline_config(text.str(), pfile, base);
  }
  auto meta = [&](const std::string& key) -> const std::string* {
    for (const auto& kv : model_.meta)
      if (kv.first == key) return &kv.second;
    return nullptr;
  };
  const std::string* labels = meta("labels");
  transcripts_ = labels && *labels == "transcript";
  frames_ = labels && *labels == "frames";
  embeddings_ = labels && *labels == "writer";
  if (embeddings_) {
    const Shape& out = model_.net.output_shape();
    if (out.size() != 1 || out[0] < 1)
      throw FileError(mfile + ": an embedding model whose output " + to_string(out) +
                      " is not a vector");
  } else if (transcripts_) {
    const std::string* alphabet = meta("alphabet");
    if (!alphabet || alphabet->empty())
      throw FileError(mfile + ": a transcript model without its alphabet");
    for (char ch : *alphabet) classes_.emplace_back(1, ch);
    if (config_.max_words > 0) {
      std::vector<int32_t> labels(classes_.size());
      for (size_t i = 0; i < labels.size(); ++i) labels[i] = int32_t(i + 1);
      grammar_ = std::make_unique<LabelFsa>(
          LabelFsa::repeat(labels, config_.min_words, config_.max_words));
    }
  } else {
    classes_ = class_names(model_.meta);
  }
  const Shape& out = model_.net.output_shape();
  const int64_t k = int64_t(classes_.size());
  if (!embeddings_ && (classes_.empty() || (transcripts_ ? out.size() != 2 || out[1] != k + 1
                                            : frames_    ? out.size() != 2 || out[1] != k
                                                         : out != Shape{k})))
    throw FileError(mfile + ": the model's class names (or alphabet) do not match its output " +
                    to_string(out));
  const std::vector<std::string> files = member_files(dir);
  for (size_t i = 1; i < files.size(); ++i) {
    if (transcripts_)
      throw FileError(files[i] + ": an ensemble member beside a transcript (CTC) model; " +
                      "ensembles average class probabilities and take class models only");
    LoadedModel<float> m = load_model<float>(files[i]);
    const std::string why =
        embeddings_ ? embedding_member_mismatch(model_, m) : member_mismatch(model_, m, classes_);
    if (!why.empty()) throw FileError(files[i] + ": not a member of this ensemble: " + why);
    more_.push_back(std::move(m));
  }
  if (embeddings_) check_ensemble_members(dir, model_, more_);
  // Only the libraries of this pipeline's plugins (and, for speech models, the audio library's
  // feature-file reader and filterbank, which live beside its stages), and only from directories
  // the user chose.
  load_model_plugins(registry_, config_, plugin_dirs, trust_model_plugins);
  pipeline_ = std::make_unique<Pipeline>(config_, registry_);
  read_fit_states(dir, *pipeline_);
}

TrainedModel::Prediction TrainedModel::predict(const std::string& file) {
  Value v = pipeline_->run(file);
  std::vector<Tensor<float>> one;
  one.push_back(std::move(v.tensor));
  return predict(one)[0];
}

std::vector<TrainedModel::Prediction> TrainedModel::predict(
    const std::vector<Tensor<float>>& feats) {
  if (embeddings_)
    throw ConfigError(dir_ +
                      ": an embedding model (a verifier) compares scans with references; it has "
                      "no classes to predict (use signature_app or bpkit eval)");
  std::vector<Prediction> out;
  const Shape& in = model_.net.input_shape();
  if (transcripts_ || (!in.empty() && in[0] == kDynamic)) {
    // Sequences, one at a time (no padding); a kDynamic dimension takes any size.
    Tensor<float> x;
    for (const Tensor<float>& f : feats) {
      bool fits = f.rank() == int(in.size());
      for (size_t i = 0; fits && i < in.size(); ++i)
        fits = in[i] == kDynamic ? f.dim(int(i)) >= 1 : f.dim(int(i)) == in[i];
      if (!fits)
        throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                         to_string(in));
      Shape s{1};
      s.insert(s.end(), f.shape().begin(), f.shape().end());
      x.resize(s);
      std::copy(f.data(), f.data() + f.size(), x.data());
      Prediction p;
      if (frames_) {
        const FrameLabels fl = label_frames(f);
        p.confidence = 1;
        for (size_t t = 0; t < fl.labels.size(); ++t) {
          p.name += (t ? " " : "") + classes_[size_t(fl.labels[t])];
          p.confidence = std::min(p.confidence, fl.confidence[t]);
        }
        out.push_back(std::move(p));
        continue;
      }
      const Tensor<float>& y = model_.net.forward(x, Mode::kInfer);
      if (transcripts_) {
        const CtcResult r = decode(y);
        for (const CtcSymbol& sym : r.symbols) p.name += classes_[size_t(sym.label - 1)];
        p.confidence = r.confidence;
      } else if (more_.empty()) {
        p = classify(y.data(), classes_);
      } else {
        std::vector<double> sum(classes_.size());
        add_probabilities(y.data(), 1, classes_.size(), sum);
        for (LoadedModel<float>& m : more_)
          add_probabilities(m.net.forward(x, Mode::kInfer).data(), 1, classes_.size(), sum);
        p = from_probabilities(sum.data(), members(), classes_);
      }
      out.push_back(std::move(p));
    }
    return out;
  }
  const int64_t per = shape_size(in);
  const int64_t k = int64_t(classes_.size());
  Tensor<float> x;
  for (size_t i0 = 0; i0 < feats.size(); i0 += 256) {
    const size_t n = std::min<size_t>(256, feats.size() - i0);
    Shape s{int64_t(n)};
    s.insert(s.end(), in.begin(), in.end());
    x.resize(s);
    for (size_t i = 0; i < n; ++i) {
      const Tensor<float>& f = feats[i0 + i];
      if (f.shape() != in)
        throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                         to_string(in));
      std::copy(f.data(), f.data() + per, x.data() + int64_t(i) * per);
    }
    const Tensor<float>& y = model_.net.forward(x, Mode::kInfer);
    if (more_.empty()) {
      for (size_t i = 0; i < n; ++i) out.push_back(classify(y.data() + int64_t(i) * k, classes_));
      continue;
    }
    std::vector<double> sum(n * size_t(k));
    add_probabilities(y.data(), n, size_t(k), sum);
    for (LoadedModel<float>& m : more_)
      add_probabilities(m.net.forward(x, Mode::kInfer).data(), n, size_t(k), sum);
    for (size_t i = 0; i < n; ++i)
      out.push_back(from_probabilities(sum.data() + i * size_t(k), members(), classes_));
  }
  return out;
}

void TrainedModel::check_frame_input(const Tensor<float>& features) const {
  if (!frames_) throw ConfigError(dir_ + ": not a frame-labelling model (data.labels: frames)");
  const Shape& in = model_.net.input_shape();
  bool fits = features.rank() == int(in.size());
  for (size_t i = 0; fits && i < in.size(); ++i)
    fits = in[i] == kDynamic ? features.dim(int(i)) >= 1 : features.dim(int(i)) == in[i];
  if (!fits || in.empty() || in[0] != kDynamic)
    throw ShapeError("features of shape " + to_string(features.shape()) + ", but the model takes " +
                     to_string(in));
}

TrainedModel::FrameLabels TrainedModel::label_frames(const Tensor<float>& features) {
  return label_frames(std::vector<Tensor<float>>{features}, 1)[0];
}

std::vector<TrainedModel::FrameLabels> TrainedModel::label_frames(
    const std::vector<Tensor<float>>& features, size_t batch) {
  for (const Tensor<float>& f : features) check_frame_input(f);
  batch = std::max<size_t>(batch, 1);
  // Sequences of similar lengths together: little padding.
  std::vector<size_t> order(features.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return features[a].dim(0) < features[b].dim(0); });
  std::vector<FrameLabels> out(features.size());
  Tensor<float> x;
  std::vector<int32_t> lengths;
  for (size_t i0 = 0; i0 < order.size(); i0 += batch) {
    const size_t n = std::min(batch, order.size() - i0);
    int64_t T = 0;
    for (size_t k = 0; k < n; ++k) T = std::max(T, features[order[i0 + k]].dim(0));
    Shape s = features[order[i0]].shape();
    const int64_t per_frame = shape_size(s) / s[0];
    s[0] = T;
    s.insert(s.begin(), int64_t(n));
    x.resize(s);
    x.zero();
    lengths.assign(n, 0);
    for (size_t k = 0; k < n; ++k) {
      const Tensor<float>& f = features[order[i0 + k]];
      std::copy(f.data(), f.data() + f.size(), x.data() + int64_t(k) * T * per_frame);
      lengths[k] = int32_t(f.dim(0));
    }
    std::vector<FrameLabels> got = batch_frames(x, lengths);
    for (size_t k = 0; k < n; ++k) out[order[i0 + k]] = std::move(got[k]);
  }
  return out;
}

std::vector<TrainedModel::FrameLabels> TrainedModel::batch_frames(
    const Tensor<float>& x, const std::vector<int32_t>& lengths) {
  const size_t B = lengths.size();
  const Tensor<float>& y = model_.net.forward(x, Mode::kInfer, &lengths);
  const int64_t T = y.dim(1), C = y.dim(2);
  std::vector<double> sum(B * size_t(T * C), 0.0);
  add_probabilities(y.data(), B * size_t(T), size_t(C), sum);
  for (LoadedModel<float>& m : more_)
    add_probabilities(m.net.forward(x, Mode::kInfer, &lengths).data(), B * size_t(T), size_t(C),
                      sum);
  std::vector<FrameLabels> out(B);
  for (size_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < lengths[b]; ++t) {
      const double* row = sum.data() + (int64_t(b) * T + t) * C;
      std::vector<double> p(row, row + C);
      for (double& v : p) v /= double(members());
      const auto best = std::max_element(p.begin(), p.end());
      out[b].labels.push_back(int32_t(best - p.begin()));
      out[b].confidence.push_back(*best);
      out[b].probabilities.push_back(std::move(p));
    }
  return out;
}

int64_t TrainedModel::embedding_dim() const {
  int64_t d = shape_size(model_.net.output_shape());
  for (const LoadedModel<float>& m : more_) d += shape_size(m.net.output_shape());
  return d;
}

void TrainedModel::embed(const Tensor<float>& x, Tensor<float>& out) {
  if (!embeddings_)
    throw ConfigError(dir_ + ": not an embedding model (a verifier); it has no embeddings");
  std::vector<Network<float>*> nets{&model_.net};
  for (LoadedModel<float>& m : more_) nets.push_back(&m.net);
  ensemble_embed(nets, x, out);
}

void ensemble_embed(const std::vector<Network<float>*>& nets, const Tensor<float>& x,
                    Tensor<float>& out) {
  const int64_t n = x.rows();
  int64_t d = 0;
  for (Network<float>* net : nets) d += shape_size(net->output_shape());
  out.resize({n, d});
  // Each member's embedding scaled by 1/sqrt(K): unit embeddings concatenate into a unit vector,
  // and the cosine of two of them is the mean of the members' cosines.
  const float scale = nets.size() == 1 ? 1.0f : 1.0f / std::sqrt(float(nets.size()));
  int64_t offset = 0;
  for (Network<float>* net : nets) {
    const Tensor<float>& y = net->forward(x, Mode::kInfer);
    const int64_t dk = shape_size(net->output_shape());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < dk; ++j) out[i * d + offset + j] = scale * y[i * dk + j];
    offset += dk;
  }
}

CtcResult TrainedModel::decode(const Tensor<float>& y) {
  CtcResult r;
  if (grammar_) {
    CtcBeamOptions o;
    o.beam_width = config_.beam;
    o.constraint = grammar_.get();
    r = ctc_beam_decode(y, 0, -1, o);
  } else {
    r = ctc_greedy_decode(y, 0, -1, 0);
  }
  if (lexicon_ && !r.symbols.empty())
    r = ctc_lexicon_correct(y, 0, -1, r, *lexicon_, word_label_, lexicon_options_);
  return r;
}

CtcResult TrainedModel::transcribe(const Tensor<float>& f) {
  if (!transcripts_)
    throw ConfigError(dir_ + ": a class model; transcribe needs a transcript model");
  const Shape& in = model_.net.input_shape();
  bool fits = f.rank() == int(in.size());
  for (size_t i = 0; fits && i < in.size(); ++i)
    fits = in[i] == kDynamic ? f.dim(int(i)) >= 1 : f.dim(int(i)) == in[i];
  if (!fits)
    throw ShapeError("features of shape " + to_string(f.shape()) + ", but the model takes " +
                     to_string(in));
  Shape s{1};
  s.insert(s.end(), f.shape().begin(), f.shape().end());
  Tensor<float> x(s);
  std::copy(f.data(), f.data() + f.size(), x.data());
  return decode(model_.net.forward(x, Mode::kInfer));
}

void load_fit_states(const std::string& model_dir, Pipeline& pipeline) {
  read_fit_states(model_dir, pipeline);
}

std::string shipped_model_dir(const std::string& name) {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("BPKIT_MODEL_PATH")) {
    const std::string s = env;
    for (size_t start = 0; start <= s.size();) {
      const size_t end = std::min(s.find(':', start), s.size());
      if (end > start) dirs.push_back(s.substr(start, end - start));
      start = end + 1;
    }
  }
  if (!program_directory().empty())
    dirs.push_back((fs::path(program_directory()) / ".." / "share" / "bpkit" / "models").string());
  for (const std::string& d : dirs) {
    const fs::path p = fs::path(d) / name;
    std::error_code ec;
    if (fs::is_regular_file(p / kModelFile, ec)) return p.lexically_normal().string();
  }
  return "";
}

}  // namespace bpkit
