// The export list of the built-in audio plugin library.
#include <bpkit/plugin.h>

#include "audio_stages.h"
#include "feature_files.h"

BPKIT_PLUGIN_LIBRARY(bpkit_audio::Read, bpkit_audio::Trim, bpkit_audio::Mfcc, bpkit_audio::Deltas,
                     bpkit_audio::Cmvn, bpkit_audio::GlobalCmvn, bpkit_audio::Splice,
                     bpkit_audio::Noise, bpkit_audio::Speed, bpkit_audio::Reverb,
                     bpkit_audio::Equalizer, bpkit_audio::SpecAugment, bpkit_audio::SequenceRead)
