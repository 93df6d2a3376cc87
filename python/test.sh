#!/usr/bin/env bash
# Builds the Python package with maturin (release, sharing the workspace's target folder) into
# a pinned virtual environment under ~/.cache/speechrnn, then runs python/tests with pytest.
# The Recogniser tests train small runs with the workspace's `experiment` binary, built by
# `cargo test --release --workspace` (or `cargo build --release -p train`).
#   bash python/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/speechrnn/py-venv"
requirements=python/requirements-test.txt
if ! cmp -s "$requirements" "$venv/requirements.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r "$requirements"
  cp "$requirements" "$venv/requirements.txt"
fi
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
"$venv/bin/maturin" build --release --locked --quiet -m python/Cargo.toml -o "$wheels" \
  --interpreter "$venv/bin/python"
"$venv/bin/pip" install -q --force-reinstall --no-deps "$wheels"/*.whl
export SPEECHRNN_EXPERIMENT="${SPEECHRNN_EXPERIMENT:-$(realpath -m "${CARGO_TARGET_DIR:-target}")/release/experiment}"
# From python/tests, so `import speechrnn` finds the installed wheel, not the source folder.
cd python/tests
"$venv/bin/python" -m pytest -q "$@"
