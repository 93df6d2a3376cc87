#!/usr/bin/env bash
# Makes (once) the virtual environment with the pinned onnx and onnxruntime
# (tests/onnx/requirements.txt) under ~/.cache/speechrnn and prints its Python.
#   python=$(bash tests/onnx/env.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${XDG_CACHE_HOME:-$HOME/.cache}/speechrnn/onnx-venv"
check='import onnx, onnxruntime; assert (onnx.__version__, onnxruntime.__version__) == ("1.19.1", "1.23.2")'
if ! "$venv/bin/python" -c "$check" 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q -r tests/onnx/requirements.txt >&2
fi
echo "$venv/bin/python"
