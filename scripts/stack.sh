#!/usr/bin/env bash
# The local gridpulse stack without Docker: Kafka (KRaft, one node), Redis and PostgreSQL, all
# started as this checkout's own processes, bound to 127.0.0.1, with data, logs and pid files
# under .run/.
#
#   scripts/stack.sh up     [kafka|redis|postgres ...]   start (already running -> no-op)
#   scripts/stack.sh down   [kafka|redis|postgres ...]   stop what `up` started
#   scripts/stack.sh status [kafka|redis|postgres ...]   one line per component
#   scripts/stack.sh kill   [kafka|redis|postgres ...]   SIGKILL (fault tests)
#   scripts/stack.sh wipe   [kafka|redis|postgres ...]   down, then delete the data
#
# Kafka version: GRIDPULSE_KAFKA_VERSION (default: infra/kafka/pom.xml's, 3.9.1, jars in
#        infra/kafka/libs); another one (e.g. 4.4.0) is resolved by Maven into infra/kafka/libs-<v>
#        at its first start. A stack's data stays with the version that formatted it.
# Ports: GRIDPULSE_KAFKA_PORT (9092), GRIDPULSE_KAFKA_CONTROLLER_PORT (9093),
#        GRIDPULSE_REDIS_PORT (6379), GRIDPULSE_PG_PORT (5432).
# A second stack beside the first: another GRIDPULSE_RUN_DIR (.run) and other ports.
# Secured: GRIDPULSE_STACK_SECURE=1 at a run dir's first `up` (it stays secured until wiped):
#        Kafka's client listener SASL_SSL with SCRAM-SHA-512 (users admin, the broker's own, and
#        gridpulse, the apps'), certificates by scripts/make_certs.sh in $RUN_DIR/tls; PostgreSQL
#        with scram-sha-256 passwords, no trust; passwords generated into $RUN_DIR/secrets (0600,
#        never printed); the clients' settings in $RUN_DIR/secure.env (`up` prints its path).
# Needs `scripts/bootstrap.sh` (make setup) to have run: Kafka jars, .venv, redis, postgres.
set -euo pipefail
umask 022
# The servers keep the real clock, also when a test run under a fake one (scripts/at_clock.sh)
# restarts them: libfaketime stays out of their environment.
if [[ ${LD_PRELOAD:-} == *libfaketime* ]]; then
    unset LD_PRELOAD FAKETIME FAKETIME_ONLY_CMDS FAKETIME_DONT_FAKE_MONOTONIC FAKETIME_SHARED NO_FAKE_STAT
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${GRIDPULSE_RUN_DIR:-$ROOT/.run}
KAFKA_DIR=$RUN_DIR/kafka
REDIS_DIR=$RUN_DIR/redis
PG_LINK=$RUN_DIR/postgres
KAFKA_DEFAULT_VERSION=$(sed -n 's|.*<kafka.version>\(.*\)</kafka.version>.*|\1|p' "$ROOT/infra/kafka/pom.xml")
KAFKA_VERSION=${GRIDPULSE_KAFKA_VERSION:-$KAFKA_DEFAULT_VERSION}
if [[ $KAFKA_VERSION == "$KAFKA_DEFAULT_VERSION" ]]; then
    KAFKA_LIBS=$ROOT/infra/kafka/libs
else
    KAFKA_LIBS=$ROOT/infra/kafka/libs-$KAFKA_VERSION
fi
VENV_PY=$ROOT/.venv/bin/python
SECRETS_DIR=$RUN_DIR/secrets
TLS_DIR=$RUN_DIR/tls
SECURE_ENV=$RUN_DIR/secure.env
# a run dir once set up secured stays so (its Kafka storage holds the SCRAM users, its PostgreSQL
# wants passwords) until wiped
SECURE=0
if [[ ${GRIDPULSE_STACK_SECURE:-0} == 1 || -d $SECRETS_DIR ]]; then SECURE=1; fi
KAFKA_FORMAT_ARGS=()
PG_INITDB_AUTH=(--auth=trust)

KAFKA_PORT=${GRIDPULSE_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${GRIDPULSE_KAFKA_CONTROLLER_PORT:-9093}
REDIS_PORT=${GRIDPULSE_REDIS_PORT:-6379}
PG_PORT=${GRIDPULSE_PG_PORT:-5432}
KAFKA_HEAP=${GRIDPULSE_KAFKA_HEAP:-512m}

KAFKA_START_TIMEOUT=90
START_TIMEOUT=30
STOP_TIMEOUT=30
ALL_COMPONENTS=(kafka redis postgres)

say() { printf '%s\n' "$*"; }
warn() { printf 'stack: %s\n' "$*" >&2; }
die() {
    warn "$*"
    exit 1
}

usage() {
    awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "${BASH_SOURCE[0]}"
    exit "${1:-2}"
}

# ------------------------------------------------------------------------------------ helpers

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# true when /proc/<pid>/cmdline contains every given string: guards against a recycled pid
pid_runs() {
    local pid=$1 cmdline
    shift
    pid_alive "$pid" || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    local needle
    for needle in "$@"; do
        [[ $cmdline == *"$needle"* ]] || return 1
    done
}

read_pid() { [[ -s $1 ]] && head -n1 "$1" | tr -dc '0-9'; }

# port free on 127.0.0.1? SO_REUSEADDR so TIME_WAIT leftovers of our own last run don't count
port_free() {
    python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

port_holder() {
    local line
    line=$(ss -ltnpH "sport = :$1" 2>/dev/null | head -n1 | grep -o 'users:(([^)]*))' || true)
    [[ -n $line ]] && printf ' (held by %s)' "$line"
    return 0
}

show_log() { # file [lines]
    local file=$1 lines=${2:-30}
    if [[ -s $file ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf -- '-----\n' >&2
    else
        printf 'stack: (%s is empty or missing)\n' "$file" >&2
    fi
}

# SIGTERM, wait up to STOP_TIMEOUT s, then SIGKILL
stop_pid() { # pid name
    local pid=$1 name=$2 waited=0
    kill -TERM "$pid" 2>/dev/null || return 0
    while pid_alive "$pid"; do
        if ((waited >= STOP_TIMEOUT * 10)); then
            warn "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT} s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    # a SIGKILLed process can take a moment to disappear
    for _ in $(seq 50); do pid_alive "$pid" || return 0; sleep 0.1; done
}

need_venv() {
    [[ -x $VENV_PY ]] || die "$VENV_PY is missing: run \`make setup\` (scripts/bootstrap.sh) first"
}

# ------------------------------------------------------------------------------------ kafka

kafka_props() { printf '%s' "$KAFKA_DIR/server.properties"; }

kafka_pid() {
    local pid
    pid=$(read_pid "$KAFKA_DIR/kafka.pid") || return 1
    pid_runs "$pid" kafka.Kafka "$(kafka_props)" && printf '%s' "$pid"
}

# *_port: the port the component was configured with; nothing (and success) before its first
# start or after a wipe, so that `status` works on a fresh clone
kafka_port() {
    sed -n 's/^listeners=[A-Z_]*:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$(kafka_props)" 2>/dev/null || true
}

# Kafka 4.x logs through log4j2 (its own config file), 3.x through reload4j (log4j 1.2)
kafka_log4j2() { [[ ${KAFKA_VERSION%%.*} -ge 4 ]]; }

kafka_log_opts() {
    if kafka_log4j2; then
        printf '%s\n' "-Dlog4j2.configurationFile=$ROOT/infra/kafka/log4j2.yaml"
    else
        printf '%s\n' "-Dlog4j.configuration=file:$ROOT/infra/kafka/log4j.properties"
    fi
}

# a version other than the pom's default: its jars (and its logging binding) into libs-<version>
kafka_resolve() {
    [[ $KAFKA_VERSION =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
        die "GRIDPULSE_KAFKA_VERSION='$KAFKA_VERSION' is not a Kafka release like 4.4.0"
    compgen -G "$KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null && return 0
    [[ $KAFKA_LIBS != "$ROOT/infra/kafka/libs" ]] || return 0
    command -v mvn >/dev/null || die "mvn not found: Kafka $KAFKA_VERSION's jars need Maven (make setup)"
    say "kafka: resolving Kafka $KAFKA_VERSION's jars with Maven into $KAFKA_LIBS"
    local args=("-Dkafka.version=$KAFKA_VERSION" "-Dkafka.libs=$KAFKA_LIBS.tmp")
    kafka_log4j2 && args+=(-Dkafka.log4j2)
    rm -rf "$KAFKA_LIBS.tmp"
    mkdir -p "$RUN_DIR"
    mvn -q -B -f "$ROOT/infra/kafka/pom.xml" dependency:copy-dependencies "${args[@]}" \
        >"$RUN_DIR/maven-kafka-$KAFKA_VERSION.log" 2>&1 ||
        { show_log "$RUN_DIR/maven-kafka-$KAFKA_VERSION.log"; die "kafka: Maven could not resolve Kafka $KAFKA_VERSION"; }
    mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
}

kafka_java() { # java args... with the broker's classpath
    java -cp "$KAFKA_LIBS/*" "$@"
}

kafka_start() {
    local pid
    if pid=$(kafka_pid); then
        say "kafka: already running (pid $pid, port $(kafka_port))"
        return 0
    fi
    rm -f "$KAFKA_DIR/kafka.pid"
    kafka_resolve
    compgen -G "$KAFKA_LIBS/kafka_2.13-*.jar" >/dev/null ||
        die "Kafka jars missing in $KAFKA_LIBS: run \`make setup\` (scripts/bootstrap.sh) first"
    command -v java >/dev/null || die "java not found: Kafka needs a Java 17 runtime (make setup)"
    need_venv
    mkdir -p "$KAFKA_DIR/data" "$KAFKA_DIR/logs"

    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$KAFKA_DIR/data|g" \
        "$ROOT/infra/kafka/server.properties.template" >"$(kafka_props)"
    if ((SECURE)); then kafka_secure_props; fi

    if [[ ! -s $KAFKA_DIR/cluster.id ]]; then
        kafka_java kafka.tools.StorageTool random-uuid >"$KAFKA_DIR/cluster.id.tmp" 2>"$KAFKA_DIR/logs/format.log" ||
            { show_log "$KAFKA_DIR/logs/format.log"; die "kafka: could not generate a cluster id"; }
        mv "$KAFKA_DIR/cluster.id.tmp" "$KAFKA_DIR/cluster.id"
    fi
    if [[ -s $KAFKA_DIR/kafka.version && $(cat "$KAFKA_DIR/kafka.version") != "$KAFKA_VERSION" ]]; then
        warn "kafka: $KAFKA_DIR/data was formatted by Kafka $(cat "$KAFKA_DIR/kafka.version"), starting $KAFKA_VERSION" \
            "(an upgrade works; an older broker refuses newer data: wipe it or use another GRIDPULSE_RUN_DIR)"
    fi
    if [[ ! -f $KAFKA_DIR/data/meta.properties ]]; then
        # formatted once; --ignore-formatted keeps a re-run harmless anyway
        kafka_java kafka.tools.StorageTool format -t "$(tr -d '[:space:]' <"$KAFKA_DIR/cluster.id")" \
            -c "$(kafka_props)" --ignore-formatted "${KAFKA_FORMAT_ARGS[@]}" >"$KAFKA_DIR/logs/format.log" 2>&1 ||
            { show_log "$KAFKA_DIR/logs/format.log"; die "kafka: formatting the storage in $KAFKA_DIR/data failed"; }
        printf '%s\n' "$KAFKA_VERSION" >"$KAFKA_DIR/kafka.version"
    fi

    # nohup and setsid exec in place, so $! is the JVM's pid; setsid detaches it from make's group
    nohup setsid java "-Xmx$KAFKA_HEAP" "-Xms$KAFKA_HEAP" \
        -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        "$(kafka_log_opts)" \
        "-Dkafka.logs.dir=$KAFKA_DIR/logs" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$(kafka_props)" \
        >>"$KAFKA_DIR/logs/kafka.out" 2>&1 </dev/null 9>&- &
    printf '%s\n' "$!" >"$KAFKA_DIR/kafka.pid"
    KAFKA_STARTED=1
}

# scripts/wait_kafka.py as a client of this stack: the plain listener, or secure.env's settings
kafka_waiter() {
    if ((SECURE)); then
        (set -a && . "$SECURE_ENV" && set +a && exec "$VENV_PY" "$ROOT/scripts/wait_kafka.py" "$@")
    else
        "$VENV_PY" "$ROOT/scripts/wait_kafka.py" --plaintext "$@"
    fi
}

kafka_wait() {
    [[ ${KAFKA_STARTED:-0} == 1 ]] || return 0
    local pid
    pid=$(read_pid "$KAFKA_DIR/kafka.pid")
    if ! kafka_waiter --bootstrap "127.0.0.1:$KAFKA_PORT" \
        --timeout "$KAFKA_START_TIMEOUT" --pid "$pid"; then
        show_log "$KAFKA_DIR/logs/server.log" 40
        show_log "$KAFKA_DIR/logs/kafka.out" 15
        if pid_alive "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
        rm -f "$KAFKA_DIR/kafka.pid"
        die "kafka: the broker did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT} s (logs in $KAFKA_DIR/logs)"
    fi
    say "kafka: started (pid $pid, port $KAFKA_PORT, Kafka $KAFKA_VERSION)"
}

kafka_stop() {
    local pid
    if pid=$(kafka_pid); then
        stop_pid "$pid" kafka
        say "kafka: stopped (pid $pid)"
    else
        say "kafka: not running"
    fi
    rm -f "$KAFKA_DIR/kafka.pid"
}

kafka_answers() { [[ -x $VENV_PY ]] && kafka_waiter --quiet \
    --bootstrap "127.0.0.1:$1" --timeout 5; }

# ------------------------------------------------------------------------------------ redis

redis_pid() {
    local pid
    pid=$(read_pid "$REDIS_DIR/redis.pid") || return 1
    pid_runs "$pid" redis-server && printf '%s' "$pid"
}

redis_port() { sed -n 's/^port \([0-9]*\)$/\1/p' "$REDIS_DIR/redis.conf" 2>/dev/null || true; }

redis_answers() { [[ $(timeout 5 redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]]; }

redis_start() {
    local pid
    if pid=$(redis_pid); then
        say "redis: already running (pid $pid, port $(redis_port))"
        return 0
    fi
    rm -f "$REDIS_DIR/redis.pid"
    command -v redis-server >/dev/null ||
        die "redis-server not found: run \`make setup\` (scripts/bootstrap.sh) first"
    mkdir -p "$REDIS_DIR/data" "$REDIS_DIR/logs"
    sed -e "s|@REDIS_PORT@|$REDIS_PORT|g" -e "s|@REDIS_DIR@|$REDIS_DIR|g" \
        "$ROOT/infra/redis/redis.conf.template" >"$REDIS_DIR/redis.conf"
    redis-server "$REDIS_DIR/redis.conf" >>"$REDIS_DIR/logs/redis.out" 2>&1 </dev/null 9>&- ||
        { show_log "$REDIS_DIR/logs/redis.log"; show_log "$REDIS_DIR/logs/redis.out" 10; die "redis: redis-server failed to start"; }
    local waited=0
    until redis_answers "$REDIS_PORT"; do
        # fail fast when the daemon already exited (it logs why)
        if ((waited >= START_TIMEOUT * 5)) || { ((waited > 10)) && ! redis_pid >/dev/null; }; then
            show_log "$REDIS_DIR/logs/redis.log"
            die "redis: no PONG from 127.0.0.1:$REDIS_PORT within ${START_TIMEOUT} s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    say "redis: started (pid $(redis_pid || echo '?'), port $REDIS_PORT)"
}

redis_stop() {
    local pid
    if pid=$(redis_pid); then
        stop_pid "$pid" redis
        say "redis: stopped (pid $pid)"
    else
        say "redis: not running"
    fi
    rm -f "$REDIS_DIR/redis.pid"
}

# ------------------------------------------------------------------------------------ postgres

PG_BIN=""
PG_DIR=""

pg_bin() {
    [[ -n $PG_BIN ]] && return 0
    local bin
    bin=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)
    [[ -n $bin && -x $bin/postgres ]] ||
        die "no PostgreSQL server under /usr/lib/postgresql/*/bin: run \`make setup\` (scripts/bootstrap.sh) first"
    PG_BIN=$bin
}

# initdb/pg_ctl refuse to run as root: as root, the server runs as the Debian `postgres` user
as_pg() {
    if ((EUID == 0)); then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# Where the cluster lives: .run/postgres, unless the postgres user cannot reach the checkout
# (say a clone under /root) or the socket path would not fit in 107 bytes; then a private dir
# under /tmp, with .run/postgres a symlink to it.
pg_dir() {
    # cached only once the place exists: a look-up before the first start must not pin it
    [[ -n $PG_DIR && ( -e $PG_LINK || ${1:-} != create ) ]] && return 0
    if [[ -L $PG_LINK ]]; then
        PG_DIR=$(readlink -f "$PG_LINK")
    elif [[ -d $PG_LINK || ${1:-} != create ]]; then
        PG_DIR=$PG_LINK
    else
        mkdir -p "$RUN_DIR"
        if ((${#PG_LINK} + 20 < 100)) && { ((EUID != 0)) || runuser -u postgres -- test -x "$RUN_DIR"; }; then
            PG_DIR=$PG_LINK
        else
            PG_DIR=${TMPDIR:-/tmp}/gridpulse-pg-$(printf '%s' "$RUN_DIR" | sha256sum | cut -c1-12)
            ln -s "$PG_DIR" "$PG_LINK"
        fi
    fi
}

pg_pid() {
    pg_dir
    local pid
    pid=$(read_pid "$PG_DIR/data/postmaster.pid") || return 1
    pid_runs "$pid" postgres && printf '%s' "$pid"
}

pg_port() { sed -n 's/^port = \([0-9]*\)$/\1/p' "$PG_DIR/data/gridpulse.conf" 2>/dev/null || true; }

pg_answers() {
    pg_bin
    "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$1" -t 3 >/dev/null 2>&1
}

pg_psql() { "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres "$@"; }

pg_start() {
    pg_bin
    pg_dir create
    local pid
    if pid=$(pg_pid); then
        say "postgres: already running (pid $pid, port $(pg_port))"
        return 0
    fi
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 ||
            die "the \`postgres\` system user is missing (it comes with Debian's postgresql package): run \`make setup\`"
    fi
    mkdir -p "$PG_DIR/logs"
    ((EUID == 0)) && chown postgres: "$PG_DIR" "$PG_DIR/logs"
    if [[ ! -s $PG_DIR/data/PG_VERSION ]]; then
        if ((SECURE)); then pg_secure_initdb_auth; fi
        as_pg "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres "${PG_INITDB_AUTH[@]}" -E UTF8 --locale=C \
            >"$PG_DIR/logs/initdb.log" 2>&1 ||
            { rm -f "$PG_DIR/initdb.pw"; show_log "$PG_DIR/logs/initdb.log"; die "postgres: initdb into $PG_DIR/data failed"; }
        rm -f "$PG_DIR/initdb.pw"
        printf "\ninclude_if_exists = 'gridpulse.conf'\n" >>"$PG_DIR/data/postgresql.conf"
    fi
    sed -e "s|@PG_PORT@|$PG_PORT|g" -e "s|@PG_DIR@|$PG_DIR|g" \
        "$ROOT/infra/postgres/gridpulse.conf.template" >"$PG_DIR/data/gridpulse.conf"
    ((EUID == 0)) && chown postgres: "$PG_DIR/data/gridpulse.conf"
    # a crash can leave a postmaster.pid whose pid is gone; postgres itself copes with that
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/logs/postgres.log" -W start \
        >"$PG_DIR/logs/pg_ctl.out" 2>&1 </dev/null 9>&- ||
        { show_log "$PG_DIR/logs/pg_ctl.out" 10; show_log "$PG_DIR/logs/postgres.log"; die "postgres: pg_ctl start failed"; }
    local waited=0
    until pg_answers "$PG_PORT"; do
        # fail fast when the postmaster already died (bad config, port race)
        if ((waited >= START_TIMEOUT * 5)) || { ((waited > 15)) && ! pg_pid >/dev/null; }; then
            show_log "$PG_DIR/logs/postgres.log"
            die "postgres: not accepting connections on 127.0.0.1:$PG_PORT within ${START_TIMEOUT} s"
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
    pg_psql -c "DO \$\$ BEGIN
                  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridpulse') THEN
                    CREATE ROLE gridpulse LOGIN SUPERUSER;
                  END IF;
                END \$\$;" ||
        die "postgres: could not create role gridpulse"
    if ((SECURE)); then pg_secure_role; fi
    if [[ -z $(pg_psql -c "SELECT 1 FROM pg_database WHERE datname = 'gridpulse'") ]]; then
        pg_psql -c "CREATE DATABASE gridpulse OWNER gridpulse" || die "postgres: could not create database gridpulse"
    fi
    say "postgres: started (pid $(pg_pid || echo '?'), port $PG_PORT, database gridpulse)"
}

pg_stop() {
    pg_dir
    local pid
    if pid=$(pg_pid); then
        pg_bin
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DIR/data" stop -m fast -w -t "$STOP_TIMEOUT" >/dev/null 2>&1; then
            warn "postgres: fast shutdown timed out; sending SIGKILL to the postmaster"
            stop_pid "$pid" postgres
        fi
        say "postgres: stopped (pid $pid)"
    else
        say "postgres: not running"
    fi
}

# ------------------------------------------------------------------------------------ commands

component_pid() {
    case $1 in
    kafka) kafka_pid ;;
    redis) redis_pid ;;
    postgres) pg_pid ;;
    esac
}

check_ports() { # components... ; all problems at once, before anything starts
    local c problems=()
    for c in "$@"; do
        component_pid "$c" >/dev/null && continue
        local -a checks=()
        case $c in
        kafka) checks=("$KAFKA_PORT:GRIDPULSE_KAFKA_PORT:Kafka" "$KAFKA_CONTROLLER_PORT:GRIDPULSE_KAFKA_CONTROLLER_PORT:the Kafka controller") ;;
        redis) checks=("$REDIS_PORT:GRIDPULSE_REDIS_PORT:Redis") ;;
        postgres) checks=("$PG_PORT:GRIDPULSE_PG_PORT:PostgreSQL") ;;
        esac
        local check port var what
        for check in "${checks[@]}"; do
            IFS=: read -r port var what <<<"$check"
            port_free "$port" ||
                problems+=("port $port on 127.0.0.1, wanted by $what, is already in use$(port_holder "$port"); stop that process or pick another port with $var=<port>")
        done
    done
    if ((${#problems[@]})); then
        local p
        for p in "${problems[@]}"; do warn "$p"; done
        die "nothing was started"
    fi
}

# Serialises up/down/kill/wipe of concurrent callers. Every server is launched with fd 9 closed:
# a daemon inheriting it would hold the lock for as long as it runs.
lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$RUN_DIR/.stack.lock"
    flock -w 180 9 || die "another scripts/stack.sh has held $RUN_DIR/.stack.lock for 3 minutes"
}

has() { # component list...
    local want=$1 c
    shift
    for c in "$@"; do [[ $c == "$want" ]] && return 0; done
    return 1
}

# ------------------------------------------------------------------------------------ secured stack

# generated passwords (URL-safe, no quoting needed anywhere), certificates, the clients' env file;
# refuses a run dir whose Kafka or PostgreSQL was set up plain (no SCRAM users, trust)
secure_setup() { # components...
    [[ $RUN_DIR != *[[:space:]]* ]] || die "a secured stack's GRIDPULSE_RUN_DIR must not contain spaces: $RUN_DIR"
    command -v python3 >/dev/null || die "python3 not found"
    if has kafka "$@" && [[ -f $KAFKA_DIR/data/meta.properties && ! -s $SECRETS_DIR/kafka-admin.password ]]; then
        die "kafka: $KAFKA_DIR/data was formatted without SCRAM users (a plain stack): \`scripts/stack.sh wipe kafka\` or another GRIDPULSE_RUN_DIR"
    fi
    if has postgres "$@"; then
        pg_dir
        if [[ -s $PG_DIR/data/PG_VERSION && ! -s $SECRETS_DIR/pg-postgres.password ]]; then
            die "postgres: $PG_DIR/data was initialised with trust (a plain stack): \`scripts/stack.sh wipe postgres\` or another GRIDPULSE_RUN_DIR"
        fi
    fi
    mkdir -p "$SECRETS_DIR"
    chmod 700 "$SECRETS_DIR"
    local name
    for name in kafka-admin kafka-gridpulse pg-postgres pg-gridpulse; do
        [[ -s $SECRETS_DIR/$name.password ]] && continue
        (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(24))' >"$SECRETS_DIR/$name.password.tmp") ||
            die "could not generate a password into $SECRETS_DIR"
        mv "$SECRETS_DIR/$name.password.tmp" "$SECRETS_DIR/$name.password"
    done
    "$ROOT/scripts/make_certs.sh" "$TLS_DIR" || die "could not make the certificates in $TLS_DIR"
    # psql (pg_psql) signs in as postgres with its password from a pgpass file
    (umask 077 && printf '*:*:*:postgres:%s\n' "$(<"$SECRETS_DIR/pg-postgres.password")" >"$SECRETS_DIR/pgpass")
    export PGPASSFILE=$SECRETS_DIR/pgpass
    # the SCRAM users go into the metadata log at format time, salted: no password on a command line
    KAFKA_FORMAT_ARGS=(--add-scram "$(scram_sha512_credential admin)" --add-scram "$(scram_sha512_credential gridpulse)")
    (umask 022 && cat >"$SECURE_ENV.tmp" <<EOF
# gridpulse's settings for the secured local stack of $RUN_DIR (scripts/stack.sh); no secrets in here
GRIDPULSE_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
GRIDPULSE_KAFKA_SECURITY_PROTOCOL=SASL_SSL
GRIDPULSE_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
GRIDPULSE_KAFKA_SASL_USERNAME=gridpulse
GRIDPULSE_KAFKA_SASL_PASSWORD_FILE=$SECRETS_DIR/kafka-gridpulse.password
GRIDPULSE_KAFKA_SSL_CAFILE=$TLS_DIR/ca.crt
GRIDPULSE_PG_DSN=postgresql://gridpulse@127.0.0.1:$PG_PORT/gridpulse
GRIDPULSE_PG_PASSWORD_FILE=$SECRETS_DIR/pg-gridpulse.password
GRIDPULSE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
EOF
    ) && mv "$SECURE_ENV.tmp" "$SECURE_ENV" || die "could not write $SECURE_ENV"
}

# StorageTool's --add-scram value for a user: SCRAM-SHA-512, salted here from its password file
scram_sha512_credential() { # user
    python3 - "$1" "$SECRETS_DIR/kafka-$1.password" <<'PY'
import base64, hashlib, os, sys
user, path = sys.argv[1:3]
password = open(path, encoding="utf-8").readline().rstrip("\n").encode()
salt, iterations = os.urandom(24), 8192
salted = hashlib.pbkdf2_hmac("sha512", password, salt, iterations)
b64 = lambda b: base64.b64encode(b).decode()
print(f'SCRAM-SHA-512=[name={user},iterations={iterations},salt="{b64(salt)}",saltedpassword="{b64(salted)}"]')
PY
}

# the secured broker's properties: the listener lines replaced by the secure template's, the
# admin user's JAAS line (its password) appended; the file 0600
kafka_secure_props() {
    local props tmp
    props=$(kafka_props)
    tmp=$props.tmp
    (
        umask 077
        grep -v -E '^(listeners|advertised\.listeners|inter\.broker\.listener\.name|listener\.security\.protocol\.map)=' \
            "$props" >"$tmp"
        sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
            -e "s|@TLS_DIR@|$TLS_DIR|g" "$ROOT/infra/kafka/server-secure.properties.template" >>"$tmp"
        printf 'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=%s username="admin" password="%s";\n' \
            org.apache.kafka.common.security.scram.ScramLoginModule\ required \
            "$(<"$SECRETS_DIR/kafka-admin.password")" >>"$tmp"
    ) || die "kafka: could not write the secured broker's properties"
    mv "$tmp" "$props"
}

# initdb with scram-sha-256 for every connection (no trust) and postgres's password, from a copy
# the postgres user can read (removed after initdb)
pg_secure_initdb_auth() {
    install -m 600 "$SECRETS_DIR/pg-postgres.password" "$PG_DIR/initdb.pw"
    ((EUID == 0)) && chown postgres: "$PG_DIR/initdb.pw"
    PG_INITDB_AUTH=(--auth=scram-sha-256 "--pwfile=$PG_DIR/initdb.pw")
}

# gridpulse's role: its password as a SCRAM-SHA-256 verifier computed here (the password itself
# never reaches the server or a command line); no superuser in the secured stack
pg_secure_role() {
    local verifier
    verifier=$(python3 - "$SECRETS_DIR/pg-gridpulse.password" <<'PY'
import base64, hashlib, hmac, os, sys
password = open(sys.argv[1], encoding="utf-8").readline().rstrip("\n").encode()
salt, iterations = os.urandom(16), 4096
salted = hashlib.pbkdf2_hmac("sha256", password, salt, iterations)
stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
server = hmac.new(salted, b"Server Key", "sha256").digest()
b64 = lambda b: base64.b64encode(b).decode()
print(f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}")
PY
    ) || die "postgres: could not compute gridpulse's password verifier"
    printf "ALTER ROLE gridpulse NOSUPERUSER CREATEDB PASSWORD '%s';\n" "$verifier" | pg_psql ||
        die "postgres: could not set gridpulse's password"
}

cmd_up() {
    lock
    check_ports "$@"
    if ((SECURE)); then secure_setup "$@"; fi
    # Kafka boots slowest: launch it first, start the others meanwhile, then wait for it
    if has kafka "$@"; then kafka_start; fi
    if has redis "$@"; then redis_start; fi
    if has postgres "$@"; then pg_start; fi
    if has kafka "$@"; then kafka_wait; fi
    local hint=()
    [[ $KAFKA_PORT != 9092 ]] && has kafka "$@" && hint+=("GRIDPULSE_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT")
    [[ $REDIS_PORT != 6379 ]] && has redis "$@" && hint+=("GRIDPULSE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0")
    [[ $PG_PORT != 5432 ]] && has postgres "$@" && hint+=("GRIDPULSE_PG_DSN=postgresql://gridpulse@127.0.0.1:$PG_PORT/gridpulse")
    if ((${#hint[@]})) && ((!SECURE)); then say "non-default ports: export ${hint[*]}"; fi
    if ((SECURE)); then say "secured stack: the clients' settings are in $SECURE_ENV (no secrets in it)"; fi
    return 0
}

cmd_down() {
    lock
    if has kafka "$@"; then kafka_stop; fi
    if has redis "$@"; then redis_stop; fi
    if has postgres "$@"; then pg_stop; fi
}

cmd_kill() {
    lock
    local c pid
    for c in "$@"; do
        if pid=$(component_pid "$c"); then
            kill -KILL "$pid"
            for _ in $(seq 50); do pid_alive "$pid" || break; sleep 0.1; done
            say "$c: killed (SIGKILL, pid $pid)"
        else
            say "$c: not running"
        fi
        # postgres keeps its postmaster.pid: the next start needs it to detect the crash
        [[ $c == kafka ]] && rm -f "$KAFKA_DIR/kafka.pid"
        [[ $c == redis ]] && rm -f "$REDIS_DIR/redis.pid"
    done
    return 0
}

cmd_status() {
    local c pid port answers
    for c in "$@"; do
        port=""
        case $c in
        kafka) port=$(kafka_port) ;;
        redis) port=$(redis_port) ;;
        postgres) pg_dir && port=$(pg_port) ;;
        esac
        if pid=$(component_pid "$c"); then
            answers="NOT answering"
            case $c in
            kafka) kafka_answers "$port" && answers="answers" ;;
            redis) redis_answers "$port" && answers="answers" ;;
            postgres) pg_answers "$port" && answers="answers" ;;
            esac
            printf '%-9s running  pid %-7s port %-5s %s\n' "$c" "$pid" "$port" "$answers"
        else
            printf '%-9s stopped\n' "$c"
        fi
    done
}

cmd_wipe() {
    cmd_down "$@"
    local c
    if (($# == ${#ALL_COMPONENTS[@]})); then
        pg_dir
        [[ -L $PG_LINK ]] && rm -rf "$PG_DIR"
        rm -rf "$RUN_DIR"
        say "wiped $RUN_DIR"
        return 0
    fi
    for c in "$@"; do
        case $c in
        kafka) rm -rf "$KAFKA_DIR" ;;
        redis) rm -rf "$REDIS_DIR" ;;
        postgres)
            pg_dir
            [[ -L $PG_LINK ]] && rm -rf "$PG_DIR"
            rm -rf "$PG_LINK"
            ;;
        esac
        say "$c: data wiped"
    done
}

main() {
    (($# >= 1)) || usage
    local cmd=$1
    shift
    local components=("$@") c
    ((${#components[@]})) || components=("${ALL_COMPONENTS[@]}")
    for c in "${components[@]}"; do
        has "$c" "${ALL_COMPONENTS[@]}" || die "unknown component '$c' (kafka, redis or postgres)"
    done
    case $cmd in
    up) cmd_up "${components[@]}" ;;
    down | stop) cmd_down "${components[@]}" ;;
    status) cmd_status "${components[@]}" ;;
    kill) cmd_kill "${components[@]}" ;;
    wipe) cmd_wipe "${components[@]}" ;;
    -h | --help | help) usage 0 ;;
    *) warn "unknown command '$cmd'" && usage ;;
    esac
}

main "$@"
