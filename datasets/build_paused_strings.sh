#!/usr/bin/env bash
# Builds datasets/paused_strings: digit strings said digit by digit with 50–400 ms pauses,
# joined from the isolated digits of datasets/synthetic (built first if missing), and
# combined.csv, the fluent strings of datasets/digit_strings (built first if missing) with
# them. The splits test_paused and real_joined report the paused form on held-out TTS
# voices and on the real speakers' digits; nothing in them is trained on.
#   bash datasets/build_paused_strings.sh [--seed N]
# Then: experiment train experiments/digit-strings.toml (or digit-strings-streaming.toml)
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -f datasets/synthetic/manifest.csv ]] || bash datasets/build_corpus.sh
[[ -f datasets/digit_strings/manifest.csv ]] || bash datasets/build_digit_strings.sh
python3 datasets/build_paused_strings.py "$@"
