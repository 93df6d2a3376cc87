#!/usr/bin/env bash
# Builds the synthetic spoken-digit corpus (about 8,000 utterances, a few minutes on 2 cores)
# and refreshes the embedded default subset. Installs the speech engines it needs.
#   bash datasets/build_corpus.sh [--seed N] [--jobs N]
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts sox)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
rm -rf datasets/synthetic
python3 datasets/build_corpus.py --out datasets/synthetic --embedded datasets/default "$@"
