#!/usr/bin/env bash
# The main job: builds the synthetic spoken-digit corpus once (datasets/build_corpus.sh),
# then trains the digit recogniser on it and scores it on held-out synthetic voices and on
# real speakers. Extra arguments go to `experiment train`, e.g.
# `bash scripts/main.sh --backend wgpu` or `bash scripts/main.sh --set seed=1 --overwrite`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -f datasets/synthetic/manifest.csv ]; then
  bash datasets/build_corpus.sh
fi
exec cargo run --release --locked -p train --bin experiment -- \
  train experiments/spoken-digits.toml "$@"
