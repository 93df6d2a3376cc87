#!/usr/bin/env bash
# Every check CI runs: formatting, clippy, rustdoc without warnings, then all tests (unit,
# doc, end-to-end in tests/) in the release profile that the main job uses, so both share
# compiled dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# lavapipe compiles every kernel on the CPU; minimal autotuning keeps the wgpu tests short.
export CUBECL_AUTOTUNE_LEVEL="${CUBECL_AUTOTUNE_LEVEL:-minimal}"
cargo fmt --all --check
cargo clippy --release --locked --workspace --all-targets -- -D warnings
# `listen --mic` (cpal) cannot be exercised without a microphone; it must still compile.
cargo clippy --release --locked -p train --features mic --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --release --locked --workspace --no-deps
# The export test writes every exported ONNX case with our outputs here (checked below).
cases="$(mktemp -d)"
trap 'rm -rf "$cases"' EXIT
SPEECHRNN_ONNX_CASES="$cases" cargo test --release --locked --workspace
# The vendored burn-communication's own tests (its token check; `vendor/README.md`).
cargo test --release --locked -p burn-communication --lib
# The exported ONNX cases in two independent runtimes (docs/export.md): onnxruntime (with
# onnx.checker) from a pinned Python environment, and tract (its own workspace).
"$(bash tests/onnx/env.sh)" tests/onnx/check_onnxruntime.py "$cases"
cargo run --release --locked --manifest-path scripts/tract-check/Cargo.toml -- "$cases"
# The Python package (python/): built with maturin into a pinned environment, then pytest.
bash python/test.sh
