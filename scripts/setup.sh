#!/usr/bin/env bash
# Creates (once) the virtual environment and installs covbench with its pinned dependencies.
# Sourced by scripts/main.sh and scripts/test.sh; safe to run again (pip skips what is installed).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV="${COVBENCH_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
# torch first, pinned to the CPU build: anything looser pulls several GB of CUDA packages.
pip install -q --disable-pip-version-check "torch==2.13.0"
pip install -q --disable-pip-version-check -e ".[dev]"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
