#!/bin/sh
# Makes the Sphinx reference files for tests/test_feature_files.cpp (run from any directory):
#   seven_two.mfc      sphinx_fe's binary cepstra (int32 float count + float32 values, 13 per frame)
#   seven_two.mfc.txt  the same frames as sphinx_fe writes them as text (-ofmt text)
# from "seven two" spoken by espeak-ng, resampled to 16 kHz 16-bit mono with sox. Made with
# eSpeak NG 1.51, SoX 14.4.2 and sphinxbase 0.8+5prealpha (Debian 12 sphinxbase-utils); other versions
# give other numbers, so the test compares the two files with each other, not with fixed values.
set -eu
out=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 200 -w "$tmp/raw.wav" "seven two"
sox "$tmp/raw.wav" -r 16000 -b 16 -c 1 "$tmp/seven_two.wav"
fe="sphinx_fe -i $tmp/seven_two.wav -mswav yes -dither no -remove_silence no -remove_noise no"
$fe -o "$out/seven_two.mfc"
$fe -o "$out/seven_two.mfc.txt" -ofmt text
