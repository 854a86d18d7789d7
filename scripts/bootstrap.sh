#!/usr/bin/env bash
# Idempotent set-up of a development or CI machine (Debian 12) for gridpulse:
#   1. Debian packages: redis-server, postgresql, faketime, openssl (and a JDK / Maven when missing), only
#      if absent;
#   2. the Kafka broker jars, resolved by Maven into infra/kafka/libs (redone when the pom changes);
#   3. .venv with Python 3.11 and `pip install -e '.[dev,bench]'` (redone when pyproject.toml changes);
#   4. the dashboard's front-end packages (ECharts): `npm ci` in dashboard/web (redone when
#      node_modules is missing or package-lock.json changes). Chromium and CJK fonts come with 1.
# Quiet when there is nothing to do; on failure, says what failed and shows the tail of its log.
set -euo pipefail
umask 022

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOG_DIR=$ROOT/.run/bootstrap
KAFKA_POM=$ROOT/infra/kafka/pom.xml
KAFKA_LIBS=$ROOT/infra/kafka/libs
VENV=$ROOT/.venv

say() { printf 'bootstrap: %s\n' "$*"; }
die() {
    printf 'bootstrap: ERROR: %s\n' "$*" >&2
    exit 1
}
fail_with_log() { # log message
    if [[ -s $1 ]]; then
        printf -- '----- last 40 lines of %s -----\n' "$1" >&2
        tail -n 40 "$1" >&2
        printf -- '-----\n' >&2
    fi
    die "$2 (full log: $1)"
}
hash_of() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$LOG_DIR"

# ------------------------------------------------------------------------------ apt packages

SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install Debian packages"
    SUDO=(sudo)
fi

apt_missing=()
command -v redis-server >/dev/null || apt_missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || apt_missing+=(postgresql)
command -v java >/dev/null || apt_missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || apt_missing+=(maven)
# libfaketime, for the suites under fixed clocks (scripts/at_clock.sh, make test-clocks)
compgen -G '/usr/lib/*-linux-gnu/faketime/libfaketimeMT.so.1' >/dev/null || apt_missing+=(faketime)
# certificates of the secured local stack (scripts/make_certs.sh, GRIDPULSE_STACK_SECURE=1)
command -v openssl >/dev/null || apt_missing+=(openssl)
# the dashboard's front end (npm ci below) and its browser tests (tests/browser: Debian's
# Chromium, never a downloaded browser; CJK fonts for the Chinese labels and screenshots)
command -v npm >/dev/null || apt_missing+=(npm)
[[ -x /usr/bin/chromium ]] || apt_missing+=(chromium)
compgen -G '/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc' >/dev/null || apt_missing+=(fonts-noto-cjk)

if ((${#apt_missing[@]})); then
    say "installing Debian packages: ${apt_missing[*]}"
    # Don't let the packages start their system-wide services (Docker-style policy-rc.d):
    # the stack runs its own servers under .run/ on the same ports.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        made_policy=1
        trap '"${SUDO[@]}" rm -f "$policy"' EXIT
    fi
    "${SUDO[@]}" apt-get update -qq >"$LOG_DIR/apt.log" 2>&1 ||
        fail_with_log "$LOG_DIR/apt.log" "apt-get update failed"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${apt_missing[@]}" >>"$LOG_DIR/apt.log" 2>&1 ||
        fail_with_log "$LOG_DIR/apt.log" "apt-get install ${apt_missing[*]} failed"
    if ((made_policy)); then
        "${SUDO[@]}" rm -f "$policy"
        trap - EXIT
    fi
    # Where no policy-rc.d applied, Debian's postinst may have started the system-wide services
    # on 6379/5432: stop just those this run installed, so that our own servers get the ports.
    if command -v service >/dev/null; then
        for pkg in "${apt_missing[@]}"; do
            case $pkg in
            redis-server | postgresql) "${SUDO[@]}" service "$pkg" stop >/dev/null 2>&1 || true ;;
            esac
        done
    fi
fi
command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
[[ -x /usr/bin/chromium ]] || die "/usr/bin/chromium still missing after apt-get install chromium"
command -v npm >/dev/null || die "npm still missing after apt-get install npm"
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null ||
    die "no PostgreSQL server under /usr/lib/postgresql/*/bin after apt-get install"

# ------------------------------------------------------------------------------ Kafka jars

stamp=$KAFKA_LIBS/.pom.sha256
if [[ ! -f $stamp || $(cat "$stamp") != "$(hash_of "$KAFKA_POM")" ]] ||
    ! compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null; then
    say "resolving the Kafka broker jars with Maven into infra/kafka/libs"
    rm -rf "$KAFKA_LIBS"
    mvn -q -B -f "$KAFKA_POM" dependency:copy-dependencies >"$LOG_DIR/maven.log" 2>&1 ||
        fail_with_log "$LOG_DIR/maven.log" "mvn dependency:copy-dependencies failed"
    compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null ||
        fail_with_log "$LOG_DIR/maven.log" "Maven ran but put no kafka_2.13 jar into $KAFKA_LIBS"
    hash_of "$KAFKA_POM" >"$stamp"
fi

# ------------------------------------------------------------------------------ Python venv

find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

stamp=$VENV/.pyproject.sha256
if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    python=$(find_python) || die "Python 3.11 not found (python3.11 / python3); gridpulse needs 3.11"
    say "creating .venv with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV" >"$LOG_DIR/venv.log" 2>&1 ||
        fail_with_log "$LOG_DIR/venv.log" "python -m venv failed (on Debian: apt-get install python3.11-venv)"
fi
if [[ ! -f $stamp || $(cat "$stamp") != "$(hash_of "$ROOT/pyproject.toml")" ]]; then
    say "installing gridpulse, its dev and bench dependencies into .venv (pip install -e '.[dev,bench]')"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install --disable-pip-version-check -q -e '.[dev,bench]') \
        >"$LOG_DIR/pip.log" 2>&1 ||
        fail_with_log "$LOG_DIR/pip.log" "pip install -e '.[dev,bench]' failed"
    hash_of "$ROOT/pyproject.toml" >"$stamp"
fi

# ------------------------------------------------------------------------------ dashboard front end

WEB=$ROOT/dashboard/web
stamp=$WEB/node_modules/.package-lock.sha256
if [[ -f $WEB/package-lock.json ]] &&
    [[ ! -f $stamp || $(cat "$stamp") != "$(hash_of "$WEB/package-lock.json")" ||
        ! -f $WEB/node_modules/echarts/dist/echarts.min.js ]]; then
    say "installing the dashboard's front-end packages (npm ci in dashboard/web)"
    (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error) >"$LOG_DIR/npm.log" 2>&1 ||
        fail_with_log "$LOG_DIR/npm.log" "npm ci in dashboard/web failed (is the npm registry reachable?)"
    [[ -f $WEB/node_modules/echarts/dist/echarts.min.js ]] ||
        fail_with_log "$LOG_DIR/npm.log" "npm ci ran but dashboard/web/node_modules/echarts/dist/echarts.min.js is missing"
    hash_of "$WEB/package-lock.json" >"$stamp"
fi
