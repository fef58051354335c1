// Feature files of other toolkits, so that a speech model can be trained or evaluated on features
// made by Kaldi or CMU Sphinx (and features made here can be used by them):
//
//   Kaldi archives (.ark) of float matrices, as Kaldi's table writers write them
//     binary:  KEY ' ' '\0' 'B' "FM " '\4' int32 rows '\4' int32 cols  rows*cols float32
//              (little-endian, row-major); "DM " (float64 data) is read too, converted to float
//     text:    KEY ' ' " [" then each row as "\n  v v ... v " then "]\n"
//   Kaldi script files (.scp): "KEY RXFILENAME" lines, RXFILENAME = PATH:BYTE_OFFSET (the offset of
//     the matrix in the archive, i.e. of its "\0B" or of the " [" of a text matrix, as written by
//     `ark,scp:` writers) or PATH alone (a file holding one matrix without a key, e.g. written by
//     copy-matrix)
//   Sphinx cepstra (.mfc, sphinx_fe's default output): int32 header = number of floats, then the
//     float32 values, ncep (13) per frame; big- or little-endian, whichever reading of the header
//     matches the file's size (sphinxbase's rule, the little-endian reading first)
//
// Not supported: Kaldi's compressed matrices ("CM", "CM2", "CM3", from copy-feats --compress or
// compress=true): refused with a message saying to rewrite them uncompressed; vectors and other
// objects; pipes and range specifiers ("cmd |", "x.ark:12[0:9]") in scp files.
//
// Readers check every claimed size against the bytes there are before allocating anything, and
// refuse an empty matrix, more than kMaxFeatureColumns columns or kMaxFeatureValues values,
// non-finite values and truncated or damaged data with a std::runtime_error naming the file, the
// key and the byte offset. Writers write to a temporary file in the destination's directory and
// rename it into place, so a reader never sees half a file.
//
// The plugin sequence.read (file -> sequence) reads one matrix of these files as a {T, F} sequence.
#pragma once

#include <bpkit/plugin.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bpkit_audio {

// Limits of what readers accept (far above any real feature matrix).
constexpr int64_t kMaxFeatureColumns = 1 << 16;
constexpr int64_t kMaxFeatureValues = int64_t(1) << 30;  // 4 GiB of float32

// ---- Kaldi ----------------------------------------------------------------------------------

struct KaldiMatrix {
  std::string key;
  bpkit::Tensor<float> matrix;  // {rows, cols}
};

// Every matrix of an archive, in file order (binary and text entries may be mixed).
std::vector<KaldiMatrix> read_kaldi_ark(const std::string& path);
// The matrix with this key, or with an empty key the archive's first matrix. Skips the data of
// other binary matrices without reading it. Throws naming the keys there are when none matches.
KaldiMatrix read_kaldi_ark_entry(const std::string& path, const std::string& key);
// A file holding one matrix without a key ("\0B" + matrix, or a text matrix).
bpkit::Tensor<float> read_kaldi_matrix_file(const std::string& path);

struct KaldiScpEntry {
  std::string key;
  std::string path;     // as written, resolved by read_kaldi_scp (see there)
  int64_t offset = -1;  // byte offset in `path`; -1: the whole file is one matrix without a key
  std::string where;    // "file.scp:line"
};
// The lines of a script file. A relative PATH is taken relative to the current directory, as Kaldi
// does, or when no such file exists there, relative to the scp file's directory. Refuses blank
// keys, lines without a file, pipes ("... |"), range specifiers and duplicate keys.
std::vector<KaldiScpEntry> read_kaldi_scp(const std::string& path);
// The matrix an scp entry points at.
bpkit::Tensor<float> read_kaldi_scp_entry(const KaldiScpEntry& entry);
// Every matrix of a script file, in its order.
std::vector<KaldiMatrix> read_kaldi_scp_matrices(const std::string& path);

// True for a valid Kaldi key (table key): not empty, no ASCII whitespace or control characters.
bool is_kaldi_key(const std::string& key);

// Writes a Kaldi archive (and optionally its scp file) one matrix at a time, into temporary files
// next to the destinations; commit() renames them into place (archive first). Without commit()
// (an exception, say) the temporary files are removed and the destinations left as they were.
class KaldiArkWriter {
 public:
  struct Options {
    bool text = false;  // text archive instead of binary
    // Significant digits of text values: 9 reads back exactly; Kaldi itself writes 7.
    int precision = 9;
    // The archive's name as written into the scp file (empty: ark_path as given).
    std::string scp_ark_name;
  };
  // scp_path empty: no script file.
  KaldiArkWriter(const std::string& ark_path, const std::string& scp_path, const Options& options);
  KaldiArkWriter(const std::string& ark_path, const std::string& scp_path = "")
      : KaldiArkWriter(ark_path, scp_path, Options()) {}
  ~KaldiArkWriter();
  KaldiArkWriter(const KaldiArkWriter&) = delete;
  KaldiArkWriter& operator=(const KaldiArkWriter&) = delete;

  // Appends one matrix: a {rows, cols} tensor with rows, cols >= 1 (a rank-1 tensor is one row),
  // finite values. Throws std::runtime_error for an invalid key, a duplicate key, a bad shape or a
  // write failure.
  void write(const std::string& key, const bpkit::Tensor<float>& matrix);
  void commit();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// All at once.
void write_kaldi_ark(const std::string& ark_path, const std::vector<KaldiMatrix>& matrices,
                     bool text = false, const std::string& scp_path = "");

// ---- Sphinx ---------------------------------------------------------------------------------

enum class ByteOrder { kLittle, kBig };

// Reads a Sphinx cepstrum file as {frames, ncep}. `order` (optional) gets the file's byte order.
bpkit::Tensor<float> read_sphinx_mfc(const std::string& path, int ncep = 13,
                                     ByteOrder* order = nullptr);
// Writes {frames, ncep} (a rank-1 tensor is one frame) in the given byte order; sphinx_fe writes
// the machine's (little-endian on x86 and ARM).
void write_sphinx_mfc(const std::string& path, const bpkit::Tensor<float>& frames,
                      ByteOrder order = ByteOrder::kLittle);

// ---- detection ------------------------------------------------------------------------------

enum class FeatureFileFormat { kKaldiArk, kKaldiScp, kKaldiMatrix, kSphinx };
// By extension (.mfc/.mfcc: Sphinx, .ark: Kaldi archive, .scp: Kaldi script), else by content: a
// key followed by " \0B" or " [" is an archive, "\0B" or "[" at the start a lone Kaldi matrix, a
// header matching the file size a Sphinx file. Throws when none fits.
FeatureFileFormat detect_feature_file(const std::string& path);

// ---- the plugin -----------------------------------------------------------------------------

// sequence.read: file -> sequence. Reads one matrix of a Kaldi archive / scp / matrix file or a
// Sphinx cepstrum file as a {T, F} sequence. `key` empty takes an archive's (or scp's) first
// matrix, so a file per utterance needs no key; a key takes that utterance out of a larger
// archive.
class SequenceRead : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  std::string format_ = "auto", key_;
  int ncep_ = 13;
};

}  // namespace bpkit_audio
