#!/usr/bin/env bash
# The main job: install, score the registry's default models on their tasks, build the leaderboard.
#   bash scripts/main.sh [extra pytest args, e.g. --model all]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source scripts/setup.sh
python -m pytest suite/ -p no:randomly -n 2 --dist loadgroup "$@"
covbench leaderboard build --results results --out site
echo "leaderboard: $(pwd)/site/index.html"
