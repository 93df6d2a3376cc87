#!/usr/bin/env bash
# Fetches a public corpus for users with internet access (this project's CI has none).
#   bash datasets/fetch_public.sh fsdd DIR             # Free Spoken Digit Dataset (git, ~20 MB)
#   bash datasets/fetch_public.sh speech_commands DIR  # Google Speech Commands v0.02 (~2.3 GB) into DIR
#   bash datasets/fetch_public.sh speech_commands_v1 DIR  # v0.01 (~1.4 GB) into DIR
# The experiments expect data/fsdd (fsdd.toml) and data/speech_commands_v0.02
# (speech-commands-12.toml): `bash datasets/fetch_public.sh fsdd data`,
# `bash datasets/fetch_public.sh speech_commands data/speech_commands_v0.02`.
set -euo pipefail
corpus=${1:?fsdd or speech_commands}
dir=${2:?target folder}
mkdir -p "$dir"
case "$corpus" in
  fsdd) git clone --depth 1 https://github.com/Jakobovski/free-spoken-digit-dataset "$dir/fsdd" ;;
  speech_commands | speech_commands_v1)
    version=$([ "$corpus" = speech_commands ] && echo v0.02 || echo v0.01)
    curl -fL "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_$version.tar.gz" \
      | tar -xz -C "$dir" ;;
  *) echo "unknown corpus $corpus" >&2; exit 1 ;;
esac
