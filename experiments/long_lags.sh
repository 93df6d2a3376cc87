#!/usr/bin/env bash
# The long-time-lag table of experiments/README.md: RNN, LSTM (PyTorch's initialisation and
# chrono initialisation) and GRU on the temporal-order
# task and the adding problem at growing lags, each run stopped as soon as 99% of its 512
# validation sequences are right. Prints one CSV row per run:
#   task,lag,cell,solved,epochs,training_sequences,valid_accuracy
# Usage: experiments/long_lags.sh [max_epochs] [lags...]   (defaults: 30 epochs; lags 20 50 100)
set -euo pipefail
cd "$(dirname "$0")/.."
max_epochs=${1:-30}
shift || true
lags=("${@:-20 50 100}")
bin=target/release/experiment
out=runs/long-lags
echo "task,lag,cell,solved,epochs,training_sequences,valid_accuracy"
for lag in ${lags[@]}; do
  for task in temporal-order adding; do
    for cell in rnn lstm lstm-chrono gru; do
      name="$task-$lag-$cell"
      # lstm-chrono: the LSTM with chrono initialisation for lags up to the longest sequence.
      kind=(--set "model.cell.kind=${cell%-chrono}")
      [ "$cell" = lstm-chrono ] && kind+=(--set "model.cell.chrono_init=$((lag + lag / 10))")
      if [ "$task" = temporal-order ]; then
        # The paper's proportions: windows at 10–20% and 50–60% of a 100–110 step sequence.
        sets=(--set task.min_length=$lag --set "task.max_length=$((lag + lag / 10))"
              --set "task.first_window=[$((lag / 10)), $((lag / 5))]"
              --set "task.second_window=[$((lag / 2)), $((lag * 6 / 10))]")
        config=experiments/temporal-order-smoke.toml
      else
        sets=(--set task.min_length=$lag)
        config=experiments/adding.toml
      fi
      "$bin" train "$config" "${sets[@]}" --set "name=\"$name\"" "${kind[@]}" \
        --set training.epochs=$max_epochs --set training.stop_at_accuracy=0.99 \
        --out-dir "$out" > "$out-$name.log" 2>&1 || { echo "$task,$lag,$cell,error,,,"; continue; }
      last=$(tail -n 1 "$out/$name/metrics.csv")
      epochs=${last%%,*}
      accuracy=$(echo "$last" | cut -d, -f5)
      solved=$(awk -v a="$accuracy" 'BEGIN { print (a >= 0.99) ? "yes" : "no" }')
      # Sequences seen = epochs × steps_per_epoch × batch_size, from the run's resolved config.
      per_epoch=$(awk -F' = ' '$1 == "steps_per_epoch" { s = $2 } $1 == "batch_size" { b = $2 } END { print s * b }' "$out/$name/config.toml")
      echo "$task,$lag,$cell,$solved,$epochs,$((epochs * per_epoch)),$accuracy"
    done
  done
done
