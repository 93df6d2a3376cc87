#!/usr/bin/env bash
# Training from memory against training from a feature store on disk ([task.stream]), on the
# main job's corpus and on a 105,555-utterance copy of it (datasets/replicate_corpus.py):
# peak RSS (GNU time) and training throughput (utterances per second of the epochs' own
# timing, which leaves out loading). Prints the CPU first; ratios are what to compare.
#
#   bash scripts/stream_bench.sh [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-2}"
cargo build --release --locked -p train --bin experiment
[ -f datasets/synthetic/manifest.csv ] || bash datasets/build_corpus.sh
[ -f datasets/synthetic-x15/manifest.csv ] ||
  python3 datasets/replicate_corpus.py datasets/synthetic/manifest.csv datasets/synthetic-x15 15
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores," \
  "$(grep -o -w -E 'avx512f|avx2|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
out=runs/stream-bench
run() { # name, then experiment arguments
  local name="$1"
  shift
  /usr/bin/time -f "%M" -o "$out-$name.rss" target/release/experiment train \
    experiments/spoken-digits.toml --out-dir "$out" --overwrite \
    --set name="\"$name\"" --set training.epochs="$epochs" "$@" >"$out-$name.log" 2>&1
  python3 - "$out/$name/metrics.json" "$out-$name.rss" "$name" <<'PY'
import json, sys
metrics = json.load(open(sys.argv[1]))
rss_mb = int(open(sys.argv[2]).read().split()[-1]) / 1024
history = metrics["epochs"]
seconds = sum(e["seconds"] for e in history) / len(history)
print(f"{sys.argv[3]:<28} peak RSS {rss_mb:7.0f} MB   {seconds:6.1f} s/epoch")
PY
}
mkdir -p "$out"
run memory
run stream --set 'task.stream.dir="runs/feature-store"'
run stream-again --set 'task.stream.dir="runs/feature-store"'
# 105,555 training utterances, one version each (no augmentation), one epoch.
x15=(--set 'task.manifest="datasets/synthetic-x15/manifest.csv"'
  --set 'task.augment.vtln_warps=[]' --set 'task.augment.speeds=[]'
  --set 'task.augment.noise_snrs=[]' --set training.epochs=1)
run x15-stream "${x15[@]}" --set 'task.stream.dir="runs/feature-store"'
run x15-memory "${x15[@]}"
