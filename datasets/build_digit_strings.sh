#!/usr/bin/env bash
# Builds the connected digit-string corpus in datasets/digit_strings (2,730 strings of 1–7
# digits from 91 TTS voices, and two real recordings as the `real` split), from Debian's
# espeak-ng, flite, festival and sox (installed if missing).
#   bash datasets/build_digit_strings.sh [--seed N] [--jobs N]
# Then: experiment train experiments/digit-strings.toml
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
python3 datasets/build_digit_strings.py --out datasets/digit_strings "$@"
