# shellcheck shell=bash
# Defaults for the mailvault settings and the local service harness.
# Sourced by scripts/setup.sh and scripts/services.sh (and usable by humans:
# `source scripts/env.sh`). Every variable is only set when not already set,
# so anything exported by the caller wins.

# --- settings read by the app (pydantic-settings, prefix MAILVAULT_) -------
export MAILVAULT_ES_URL="${MAILVAULT_ES_URL:-http://127.0.0.1:9200}"
export MAILVAULT_S3_ENDPOINT="${MAILVAULT_S3_ENDPOINT:-127.0.0.1:8333}"
export MAILVAULT_S3_ACCESS_KEY="${MAILVAULT_S3_ACCESS_KEY:-mailvault}"
export MAILVAULT_S3_SECRET_KEY="${MAILVAULT_S3_SECRET_KEY:-mailvault-secret}"
export MAILVAULT_S3_BUCKET="${MAILVAULT_S3_BUCKET:-mailvault-archive}"
export MAILVAULT_REDIS_URL="${MAILVAULT_REDIS_URL:-redis://127.0.0.1:6379/0}"

# --- harness locations (never inside the repo) ------------------------------
# State: unpacked Elasticsearch, data, logs and pid files of all services.
export MAILVAULT_STATE_DIR="${MAILVAULT_STATE_DIR:-$HOME/.local/state/mailvault}"
# Cache: downloaded artifacts (the Elasticsearch zip).
export MAILVAULT_CACHE_DIR="${MAILVAULT_CACHE_DIR:-$HOME/.cache/mailvault}"
# Elasticsearch JVM heap (ES_JAVA_OPTS).
export MAILVAULT_ES_HEAP="${MAILVAULT_ES_HEAP:-1g}"
