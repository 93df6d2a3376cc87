#!/usr/bin/env bash
# Builds the connected digit-string corpus in datasets/digit_strings (2,730 strings of 1–7
# digits from 91 TTS voices, and two real recordings as the `real` split), from Debian's
# espeak-ng, flite, festival and sox (installed if missing).
#   bash datasets/build_digit_strings.sh [--seed N] [--jobs N]
# Then: experiment train experiments/digit-strings.toml
set -euo pipefail
cd "$(dirname "$0")/.."
bash datasets/install_engines.sh
python3 datasets/build_digit_strings.py --out datasets/digit_strings "$@"
