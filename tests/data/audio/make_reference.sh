#!/bin/bash
# Regenerates every file in this directory (see README.md) with the reference front ends:
#   espeak-ng 1.51, sox 14.4.2, sphinxbase-utils 0.8+5prealpha+1 (sphinx_fe), python3-torchaudio
#   0.13.1 (Debian bookworm; apt-get install espeak-ng sox sphinxbase-utils python3-torchaudio).
# Run from anywhere: bash tests/data/audio/make_reference.sh
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-/usr/bin/python3}  # the system Python, which has torchaudio
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The signals. espeak-ng speaks at 22050 Hz; sox resamples without dither (-D) so the result is
# deterministic.
espeak-ng -v en-us -w "$tmp/speech22k.wav" "seven three oh"
sox "$tmp/speech22k.wav" -D -r 16000 -b 16 -c 1 speech.wav
sox "$tmp/speech22k.wav" -D -r 8000 -b 16 -c 1 speech8k.wav
"$PYTHON" make_synthetic.py synthetic.wav

# sphinx_fe: defaults plus no dither, no silence removal, no noise removal. Its binary output (a
# 32-bit count, then float32 values) is written out as text, one frame per line, with the 9
# significant digits that give back the exact float32 values.
sphinx_to_text() {  # NAME.mfc COLUMNS OUT.txt
  "$PYTHON" - "$@" <<'PY'
import struct, sys
path, cols, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
data = open(path, "rb").read()
(count,) = struct.unpack("<i", data[:4])
values = struct.unpack("<%df" % count, data[4:4 + 4 * count])
with open(out, "w") as f:
    for t in range(0, count, cols):
        f.write(" ".join("%.9g" % v for v in values[t:t + cols]) + "\n")
PY
}
sphinx=(-mswav yes -dither no -remove_silence no -remove_noise no)
for name in speech synthetic; do
  sphinx_fe "${sphinx[@]}" -i $name.wav -o "$tmp/$name.mfc" 2>/dev/null
  sphinx_to_text "$tmp/$name.mfc" 13 $name.sphinx.mfcc.txt
done
sphinx_fe "${sphinx[@]}" -logspec yes -i synthetic.wav -o "$tmp/synthetic.logspec" 2>/dev/null
sphinx_to_text "$tmp/synthetic.logspec" 40 synthetic.sphinx.fbank.txt
# At 8 kHz the preset keeps the FFT at the next power of two above the 205-sample frame and the
# filters below Nyquist (sphinx_fe's defaults, -nfft 512 -upperf 6855.4976, are 16 kHz ones).
sphinx_fe "${sphinx[@]}" -samprate 8000 -nfft 256 -upperf 4000 -i speech8k.wav \
  -o "$tmp/speech8k.mfc" 2>/dev/null
sphinx_to_text "$tmp/speech8k.mfc" 13 speech8k.sphinx.mfcc.txt

# Kaldi's compute-mfcc-feats / compute-fbank-feats defaults through torchaudio.compliance.kaldi:
# dither 0, energy_floor 0 (torchaudio's default is 1), use_energy true for MFCC (Kaldi's default;
# torchaudio's is false), int16-scaled samples. In float64, so the reference carries no FFT
# rounding of its own (7 significant digits: Kaldi itself computes in float).
kaldi() {  # mfcc|fbank IN.wav OUT.txt
  "$PYTHON" - "$@" <<'PY'
import sys, torch, torchaudio, torchaudio.compliance.kaldi as kaldi
kind, path, out = sys.argv[1:4]
x, rate = torchaudio.load(path)
x = (x * 32768).to(torch.float64)
if kind == "mfcc":
    y = kaldi.mfcc(x, sample_frequency=rate, dither=0.0, energy_floor=0.0, use_energy=True)
else:
    y = kaldi.fbank(x, sample_frequency=rate, dither=0.0, energy_floor=0.0, use_energy=False)
with open(out, "w") as f:
    for row in y.tolist():
        f.write(" ".join("%.7g" % v for v in row) + "\n")
PY
}
for name in speech synthetic; do
  kaldi mfcc $name.wav $name.kaldi.mfcc.txt
  kaldi fbank $name.wav $name.kaldi.fbank.txt
done
kaldi mfcc speech8k.wav speech8k.kaldi.mfcc.txt
