#!/usr/bin/env bash
# Installs the speech engines the corpus builders use (espeak-ng, flite, festival with its voices,
# three voices, sox) and any extra Debian packages named as arguments; does nothing when
# they are all there. Run by build_corpus.sh, build_keywords.sh and build_digit_strings.sh.
set -euo pipefail
packages=(espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-ca-ona-hts sox "$@")
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}"
fi
