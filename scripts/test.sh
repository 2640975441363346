#!/usr/bin/env bash
# Sets up everything, starts the real services, then lints, type-checks and runs the test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k search).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/services.sh up
# shellcheck source=scripts/env.sh
source scripts/env.sh
echo "== ruff"
ruff check .
ruff format --check archiver ingest search_api ui
echo "== mypy"
mypy
echo "== pytest"
python -m pytest -p no:cacheprovider "$@"
