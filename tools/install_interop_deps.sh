#!/usr/bin/env bash
# Installs what the interop tests need (docs/interop.md), only when missing: python3-torch and
# python3-onnx from Debian, and onnxruntime plus tensorboard from PyPI in a venv that sees the
# system packages (ASAP_ONNX_VENV, default build-onnx-venv/, ignored by git like every build*).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install_deps.sh python3-torch python3-onnx python3-venv python3-pip
venv=${ASAP_ONNX_VENV:-build-onnx-venv}
if ! "$venv/bin/python" -c "import onnx, onnxruntime, tensorboard" >/dev/null 2>&1; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check onnxruntime tensorboard
fi
"$venv/bin/python" -c "import onnxruntime, tensorboard; print('interop venv:', '$venv', 'onnxruntime', onnxruntime.__version__, 'tensorboard', tensorboard.__version__)"
