#!/usr/bin/env bash
# Installs what the main job and the tests need beyond the Rust toolchain:
# Mesa's software Vulkan driver (lavapipe), so burn-wgpu finds an adapter on machines
# without a GPU, and ALSA's headers (libasound2-dev), so `experiment listen --mic` (feature
# `mic`, cpal) compiles, and python3-venv for the pinned onnxruntime that checks the exported
# ONNX files (tests/onnx). Idempotent: does nothing when everything is already there.
set -euo pipefail

packages=(mesa-vulkan-drivers libasound2-dev python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
