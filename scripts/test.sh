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
# two worker processes (each with an index, bucket and queue of its own: tests/conftest.py), a
# test file per worker at a time, so a module's fixtures are built once; MAILVAULT_TEST_WORKERS=0
# runs in one process
workers="${MAILVAULT_TEST_WORKERS:-2}"
if [[ "$workers" == 0 ]]; then
    python -m pytest -p no:cacheprovider "$@"
else
    python -m pytest -p no:cacheprovider -n "$workers" --dist loadfile "$@"
fi
