#!/usr/bin/env bash
# Builds the connected digit-string corpus in datasets/digit_strings (2,730 strings of 1–7
# digits from 91 TTS voices, 240 more from piper's neural voice in train, and two real
# recordings as the `real` split), from Debian's espeak-ng, flite, festival and sox and
# piper from PyPI (installed if missing; --no-piper leaves piper out).
#   bash datasets/build_digit_strings.sh [--no-piper] [--seed N] [--jobs N]
# Then: experiment train experiments/digit-strings.toml --set task.manifest='"datasets/digit_strings/manifest.csv"' --set 'task.report_splits=["test", "real"]'
# (the fluent strings alone; the shipped file trains on datasets/build_paused_strings.sh's corpus)
set -euo pipefail
cd "$(dirname "$0")/.."
piper=1
args=()
for a in "$@"; do
  case "$a" in
    --no-piper) piper=0 ;;
    *) args+=("$a") ;;
  esac
done
bash datasets/install_engines.sh python3-venv
if ((piper)); then
  args+=(--piper-python "$(bash datasets/piper_env.sh)")
fi
python3 datasets/build_digit_strings.py --out datasets/digit_strings "${args[@]}"
