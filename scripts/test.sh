#!/usr/bin/env bash
# Installs everything the tests need (the venv, and Debian's Chromium for the browser test) and runs them.
#   bash scripts/test.sh [extra pytest args]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source scripts/setup.sh
if [ ! -x /usr/bin/chromium ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
python -m pytest tests/ covbench/ --doctest-modules -p no:randomly "$@"
