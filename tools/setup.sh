#!/usr/bin/env bash
# Installs what bpkit needs on Debian 12 (as root; skips packages already present) and, with
# --build, configures and builds into build/ (programs land in build/bin/).
#   tools/setup.sh            install packages only
#   tools/setup.sh --build    install, then build (Release)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake ninja-build pkg-config
  libopenblas-dev libeigen3-dev zlib1g-dev catch2
  libboost-dev libboost-filesystem-dev libyaml-cpp-dev libopencv-dev nlohmann-json3-dev
  libsndfile1-dev libsamplerate0-dev libkissfft-dev libespeak-ng-dev sox libxxhash-dev
  pocketsphinx-en-us
  clang libclang-rt-14-dev
  dataset-fashion-mnist opencv-doc opencv-data
  libfreetype-dev fonts-dejavu-core fonts-dejavu-extra fonts-liberation2 fonts-freefont-ttf
  fonts-croscore fonts-urw-base35 fonts-crosextra-carlito fonts-crosextra-caladea fonts-noto-mono
  fonts-beteckna fonts-league-spartan fonts-comic-neue fonts-quicksand fonts-manrope fonts-dosis
  fonts-cantarell fonts-karla fonts-cabin fonts-clear-sans fonts-roboto-unhinted fonts-junction
  fonts-adf-gillius fonts-adf-universalis fonts-linuxlibertine fonts-ebgaramond fonts-adf-accanthis
  fonts-adf-baskervald fonts-oldstandard fonts-gfs-didot fonts-sil-gentium fonts-hack
  fonts-inconsolata fonts-jetbrains-mono fonts-sil-andika fonts-comfortaa fonts-eurofurence
  fonts-oxygen wamerican
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]}; run this script as root (or with sudo)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--build" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build
fi
