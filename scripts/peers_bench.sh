#!/usr/bin/env bash
# Data-parallel training on this machine: the main job's epoch (its corpus read from the
# feature store) in one process with one thread, in one process with every core, and as
# `experiment launch --peers 2` (two processes of one thread each over 127.0.0.1). Prints
# utterances per second of each, from the epochs' own timing; compare the ratios.
#
#   bash scripts/peers_bench.sh [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-1}"
cargo build --release --locked -p train --bin experiment
[ -f datasets/synthetic/manifest.csv ] || bash datasets/build_corpus.sh
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "$(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
out=runs/peers-bench
mkdir -p "$out"
args=(experiments/spoken-digits.toml --out-dir "$out" --overwrite
  --set 'task.stream.dir="runs/feature-store"' --set training.epochs="$epochs")
report() { # name, run folder
  python3 - "$out/$2/metrics.json" "$out/$2.log" "$1" <<'PY'
import json, sys
epochs = json.load(open(sys.argv[1]))["epochs"]
seconds = sum(e["seconds"] for e in epochs) / len(epochs)
train = int(open(sys.argv[2]).read().split("corpus: ")[1].split()[0])
print(f"{sys.argv[3]:<34} {seconds:6.1f} s/epoch  {train / seconds:7.0f} utterances/s")
PY
}
RAYON_NUM_THREADS=1 target/release/experiment train "${args[@]}" --set 'name="one-thread"' >"$out/one-thread.log" 2>&1
report "1 process, 1 thread" one-thread
target/release/experiment train "${args[@]}" --set 'name="all-cores"' >"$out/all-cores.log" 2>&1
report "1 process, $(nproc) threads" all-cores
target/release/experiment launch --peers 2 -- "${args[@]}" --set 'name="two-peers"' >"$out/two-peers.log" 2>&1
report "2 peers of 1 thread (launch)" two-peers
