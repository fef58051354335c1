// The built-in audio and sequence stages (plugin library bpkit_audio):
//   audio.read      file -> audio      libsndfile (WAV, FLAC, OGG, AIFF, ...), mixed to mono,
//                                      resampled (libsamplerate, band-limited sinc)
//   audio.trim      audio -> audio     leading and trailing silence removed (energy endpointer)
//   audio.mfcc      audio -> sequence  MFCC or log-mel filterbank frames, Kaldi or Sphinx preset
//   sequence.deltas   sequence -> sequence  deltas and delta-deltas appended
//   sequence.cmvn     sequence -> sequence  per-utterance mean (and variance) normalization
//   sequence.splice   sequence -> sequence  neighbouring frames stacked, every n-th frame kept
//   sequence.global_cmvn  sequence -> sequence  mean (and variance) normalization with statistics
//                                      learned from the whole training set (a fit stage)
// Training-time augmentation (random stages: they draw from Value::seed while training and pass
// their input through unchanged at seed 0, i.e. at inference):
//   audio.noise     audio -> audio     additive noise at a random SNR (a pool of noise files, or
//                                      white/pink/brown noise)
//   audio.speed     audio -> audio     speed perturbation (tempo and pitch together, resampled)
//   audio.reverb    audio -> audio     reverberation by a random exponentially decaying response
//   audio.eq        audio -> audio     a random channel: spectral tilt and peaking filters
//   sequence.specaugment  sequence -> sequence  time masks and feature masks (SpecAugment)
#pragma once

#include <bpkit/plugin.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mfcc.h"

namespace bpkit_audio {

class Read : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int rate_ = 16000;
  double max_seconds_ = 600;
  int quality_ = 0;
};

class Trim : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  double threshold_db_ = -40, margin_ = 0.1;
};

class Mfcc : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  // Vocal-tract-length perturbation, frequency masks.
  bool random() const override { return vtlp_ > 0 || mel_masks_ > 0; }

 private:
  std::unique_ptr<MfccComputer> mfcc_;
  double vtlp_ = 0;
  int mel_masks_ = 0, mel_mask_width_ = 6;
};

class Deltas : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int order_ = 2, window_ = 2;
};

class Cmvn : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  bool variance_ = true;
};

class GlobalCmvn : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool fits() const override { return true; }
  void fit_add(const bpkit::Value& in) override;
  std::string fit_finish() override;
  void fit_load(const std::string& state) override;

 private:
  bool variance_ = true;
  std::vector<double> sum_, sum2_;  // while fitting
  double frames_ = 0;
  std::vector<float> mean_, inv_std_;  // learned (empty: not fitted)
};

class Splice : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;

 private:
  int left_ = 1, right_ = 1, every_ = 3;
};

class Noise : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool random() const override { return true; }

 private:
  // The pool is read on the first training call, not in configure(): a model trained with a
  // pool runs anywhere (at inference the stage passes audio through and never needs it).
  const std::vector<std::vector<float>>& pool() const;
  double p_ = 0.7, snr_lo_ = 5, snr_hi_ = 30;
  std::string pool_dir_;
  int pool_rate_ = 0;
  mutable std::once_flag pool_once_;
  mutable std::vector<std::vector<float>> pool_;  // noise recordings at pool_rate_
  mutable std::string pool_error_;
};

class Speed : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool random() const override { return true; }

 private:
  double p_ = 0.5, lo_ = 0.9, hi_ = 1.1;
};

class Reverb : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool random() const override { return true; }

 private:
  double p_ = 0.3, lo_ = 0.1, hi_ = 0.6;
};

class Equalizer : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool random() const override { return true; }

 private:
  double p_ = 0.5, tilt_ = 0.5, gain_db_ = 10;
  int bands_ = 2;
};

class SpecAugment : public bpkit::FeaturePlugin {
 public:
  static bpkit::PluginInfo info();
  void configure(const bpkit::ParamValues& p) override;
  bpkit::Value process(const bpkit::Value& in) const override;
  bool random() const override { return true; }

 private:
  int time_masks_ = 2, feature_masks_ = 2, feature_width_ = 4;
  double time_width_ = 0.05;
};

// Reads an audio file as mono float samples in [-1, 1] at its own rate. Checks the header before
// allocating: refuses an empty file, more than 64 channels, a rate outside [1000, 384000] Hz, and
// more than max_seconds of audio. Throws std::runtime_error saying what is wrong.
// With window.length > 0, reads only that part (max_seconds bounds the window, not the file),
// plus at least `margin` seconds on each side where the file has them (returned in `*before`
// and `*after` as samples, for a resampler's edges: a multiple of the samples that make whole
// samples at `out_rate`); offset = window.start. A window past the data the file holds (its
// header may claim more) gives what could be read, possibly nothing.
bpkit::Audio read_audio(const std::string& path, double max_seconds,
                        const bpkit::ReadWindow& window = {}, double margin = 0, int out_rate = 0,
                        size_t* before = nullptr, size_t* after = nullptr);
// Resamples with libsamplerate's band-limited sinc (quality 0 best, 1 medium, 2 fastest).
bpkit::Audio resample(const bpkit::Audio& in, int rate, int quality);

}  // namespace bpkit_audio
