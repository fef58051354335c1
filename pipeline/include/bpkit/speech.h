// The utterance recognizer: an audio file -> the model's pipeline (reading, endpointing, features)
// -> the network -> CTC decoding with the model's grammar -> words with times and confidences.
// Used by `bpkit eval` and `speech_app`, so that what is measured is what users run.
//
// A speech model is a transcript model directory (train.h) whose pipeline has a `decoder` section
// naming each symbol's word (decoder.words) and, optionally, the grammar: min_words..max_words
// symbols, decoded by prefix beam search constrained to that many words.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bpkit/train.h"

namespace bpkit {

struct RecognizedWord {
  std::string word;
  double start = 0, end = 0;  // seconds in the input file
  double confidence = 0;      // the network's probability of the word at its peak frame
};

struct Utterance {
  std::string text;     // the words, lower case as the model names them, separated by one space
  std::string symbols;  // the decoded symbols (the transcript alphabet's), e.g. "1o72"
  std::vector<RecognizedWord> words;
  double confidence = 0;  // the least confident word's (1 with no word; 0 when the grammar
                          // accepted nothing, e.g. too few frames)
  // The file's duration as read (before endpointing); for a feature file, its frames times the
  // frame shift.
  double seconds = 0;
  // An utterance cut from a longer recording (recognize_stream): its span in the file, seconds.
  // Both 0 for an utterance that is the whole file.
  double start = 0, end = 0;
  // An utterance of a longer recording that the stages could not recognize (recognize_stream goes
  // on with the next one): why, naming the file and the stage. Empty otherwise; no words then.
  std::string error;
};

// How a long recording is cut into utterances (UtteranceRecognizer::recognize_stream).
struct SegmentOptions {
  // Seconds read at a time; a recording no longer than this is one utterance unless `always`.
  double chunk_seconds = 30;
  double max_utterance = 20;  // an utterance longer than this is cut at its quietest point
  double min_pause = 0.3;     // a pause this long (seconds) ends an utterance
  // Silence: 10 ms frames this far below the loudest frame so far, or less than 6 dB above the
  // noise floor (the quietest tenth of the frames read), whichever is higher.
  double silence_db = -35;
  bool always = false;  // cut even a recording that fits in one chunk
};

class UtteranceRecognizer {
 public:
  // Loads the model directory (TrainedModel, which says where plugins come from). Throws
  // FileError/ConfigError, also for a model that is not a transcript model or whose pipeline has no
  // decoder.words (not a word recognizer).
  explicit UtteranceRecognizer(const std::string& model_dir,
                               const std::vector<std::string>& plugin_dirs = {},
                               bool trust_model_plugins = false);

  // Runs every stage on the file. Word times: the audio's offset in the file (what an endpointer
  // cut) plus each word's frames at the network's frame period (the audio's duration over the
  // number of frames). A recording without speech (silence or steady noise: not 50 ms louder
  // than 6 dB above its noise floor and within 35 dB of its peak) gives no words. Throws
  // StageError/FileError for a file the stages cannot read.
  Utterance recognize(const std::string& file);
  // A recording of any length, in bounded memory: reads it chunk by chunk (through the pipeline's
  // reading stages, which must support read windows, as audio.read does), cuts it into
  // utterances at pauses and hands each one to `emit` as soon as it is recognized, in order, with
  // times in the file; stretches without speech give none. A recording that fits in one chunk is
  // one utterance, recognized as recognize() would (unless o.always). Memory: the chunk and at
  // most max_utterance seconds of audio. Returns the recording's duration. An utterance cut from
  // the recording that a stage refuses (StageError) is handed out with its `error` set and the
  // next ones still follow; other failures (reading the file) throw as recognize() does.
  double recognize_stream(const std::string& file,
                          const std::function<void(const Utterance&)>& emit,
                          const SegmentOptions& o = {});
  // From features as the pipeline's last stage makes them ({T, F}), e.g. from the feature cache or
  // a feature file. Times count `frame_seconds` per network frame from `offset` (0: no times).
  // Throws ShapeError for features of another width.
  Utterance recognize_features(const Tensor<float>& features, double frame_seconds = 0,
                               double offset = 0);

  // From a feature file (Kaldi ark/scp, Sphinx .mfc; read by the sequence.read plugin) holding
  // what the model's first sequence stage takes, e.g. cepstra for a pipeline that makes them with
  // audio.mfcc: the stages from that one on, then the network. Times count `frame_shift` seconds
  // per input frame (Kaldi's and Sphinx's 10 ms by default). Throws StageError/FileError for an
  // unreadable file, ConfigError when the pipeline has no stage that takes sequences.
  Utterance recognize_feature_file(const std::string& file, double frame_shift = 0.01);

  // Writes a PNG of the file's log-mel spectrogram (64 filters, 10 ms frames, quietest 80 dB
  // dark) with the recognized words marked at their times. Throws StageError/FileError for
  // unreadable audio or an unwritable PNG.
  void write_spectrogram(const std::string& file, const Utterance& u, const std::string& png) const;

  TrainedModel& model() { return model_; }
  const std::vector<std::string>& words() const { return words_; }  // per symbol

 private:
  // The stages after reading, on audio read from the file: endpointing, features, network,
  // decoding. `duration`: the file's.
  Utterance recognize_audio(Value audio, double duration);
  // recognize_audio() for a whole recording: none of it when it holds no speech.
  Utterance recognize_whole(Value audio, double duration);

  TrainedModel model_;
  std::vector<std::string> words_;            // word of class k + 1 (label k + 1 is alphabet[k])
  size_t read_end_ = 0;                       // stages [0, read_end_) read the file into audio
  size_t audio_end_ = 0;                      // stages [0, audio_end_) produce audio
  std::unique_ptr<Pipeline> feature_reader_;  // sequence.read (made on first use)
};

// Word error rate counts: edits (substitutions + insertions + deletions) between the recognized
// and the reference words, and the reference's word count.
struct WordErrors {
  int64_t edits = 0, words = 0, sentences = 0, sentences_right = 0;
  void add(const std::vector<std::string>& hyp, const std::vector<std::string>& ref);
  double wer() const { return words ? double(edits) / double(words) : 0; }
  double sentence_accuracy() const {
    return sentences ? double(sentences_right) / double(sentences) : 0;
  }
};

// Splits text at blanks.
std::vector<std::string> split_words(const std::string& text);

}  // namespace bpkit
