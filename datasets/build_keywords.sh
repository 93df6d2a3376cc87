#!/usr/bin/env bash
# Builds a stand-in for Google Speech Commands in datasets/keywords, in the real corpus's
# layout (30 words from 91 TTS voices, three takes each, the two lists, _background_noise_;
# 8,190 one-second takes), from Debian's espeak-ng, flite, festival and sox (installed if missing).
#   bash datasets/build_keywords.sh [--seed N] [--jobs N]
# Then: experiment train experiments/speech-commands-12.toml --set task.corpus.root=datasets/keywords
set -euo pipefail
cd "$(dirname "$0")/.."
bash datasets/install_engines.sh
python3 datasets/build_keywords.py --out datasets/keywords "$@"
