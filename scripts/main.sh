#!/usr/bin/env bash
# The main job: trains the default experiment on the data that ships with the repository.
# Extra arguments go to `experiment train`, e.g. `bash scripts/main.sh --backend wgpu`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --release --locked -p train --bin experiment -- \
  train experiments/spoken-digits.toml "$@"
