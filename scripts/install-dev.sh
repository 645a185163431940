#!/usr/bin/env bash
# Development install into the active Python environment: the CPU build of torch first (so nothing
# pulls a multi-GB CUDA build), then ferkit with its training, test, Keras-import and Ray extras.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! python -c "import torch" 2>/dev/null; then
  # This machine keeps torch 2.13.0+cpu on disk (pip's find-links); elsewhere take PyTorch's CPU index.
  pip install -q torch==2.13.0 2>/dev/null || pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
pip install -q -e '.[train,dev,dlib,serve,keras,ray]'
# the browser test of `ferkit serve` drives Debian's chromium (no browser download by Playwright)
if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "warning: could not install chromium; the serve browser test will be skipped"
fi
