#!/usr/bin/env bash
# Run a command with the wall clock of its Python processes set to TIME (libfaketime):
#
#   scripts/at_clock.sh 2027-03-01T00:05 .venv/bin/pytest -q tests/unit
#   scripts/at_clock.sh 2027-04-30T23:55:00+08:00 .venv/bin/pytest -q tests/integration/test_x.py
#
# TIME is anything GNU `date -d` reads. Without an offset it is a local time in the settings'
# zone (GRIDPULSE_TIMEZONE, default Asia/Shanghai), the zone of gridpulse's days and months.
#
# What is faked, and what is not:
# - the clock starts at TIME and ticks on: FAKETIME="+<TIME - the real clock at start>", one
#   offset for every process started under it, so pytest, the workers it starts and the gridpulse
#   CLI share one clock (the "@TIME" form would restart at TIME in every new process: a worker
#   started a minute into the run would be a minute behind its test);
# - only Python processes are faked (FAKETIME_ONLY_CMDS): Kafka, Redis and PostgreSQL keep the
#   real clock, also when a test restarts one of them through scripts/stack.sh; code that mixes
#   their clock with Python's (PostgreSQL now(), broker timestamps) must take the project's own
#   `now`, not assume one clock;
# - monotonic clocks stay real (FAKETIME_DONT_FAKE_MONOTONIC: faked, every timed wait of a thread
#   hangs), and so do file times (NO_FAKE_STAT: .pyc, RocksDB and log files); Python's time.sleep
#   needs a work-around for libfaketime 0.9.10 (scripts/faketime_site/sitecustomize.py).
# Pick FUTURE times: records produced under the fake clock carry its timestamps, and the broker's
# retention (48 h on the local stack) deletes records stamped further in the past.
#
# Needs libfaketime (Debian: apt-get install faketime; `make setup` installs it).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    printf 'at_clock: %s\n' "$*" >&2
    exit 2
}

(($# >= 2)) || die "usage: scripts/at_clock.sh TIME COMMAND [ARGS...]   (e.g. 2027-03-01T00:05)"
when=$1
shift

py=$ROOT/.venv/bin/python
[[ -x $py ]] || py=$(command -v python3) || die "no Python found (make setup)"

lib=
for candidate in /usr/lib/*-linux-gnu/faketime/libfaketimeMT.so.1 /usr/local/lib/faketime/libfaketimeMT.so.1 \
    /usr/lib/faketime/libfaketimeMT.so.1; do
    if [[ -f $candidate ]]; then
        lib=$candidate
        break
    fi
done
[[ -n $lib ]] || die "libfaketime not found: apt-get install faketime (or make setup)"

# The settings' zone (environment or .env, as the worker reads it), for a TIME without offset.
zone=${GRIDPULSE_TIMEZONE:-}
if [[ -z $zone ]]; then
    zone=$(cd "$ROOT" && "$py" -c 'from gridpulse.settings import Settings; print(Settings().timezone)' 2>/dev/null) ||
        zone=Asia/Shanghai
fi
target=$(TZ=$zone date -d "$when" +%s) || die "cannot read the time '$when'"

# libfaketime's multi-threaded variant (Python runs threads: asyncio.to_thread, aiokafka, RocksDB)
export LD_PRELOAD=$lib${LD_PRELOAD:+:$LD_PRELOAD}
export FAKETIME_ONLY_CMDS=python,python3,python3.11
export FAKETIME_DONT_FAKE_MONOTONIC=1
export NO_FAKE_STAT=1
# and a time.sleep that works with Debian 12's libfaketime 0.9.10 (see that file)
export PYTHONPATH=$ROOT/scripts/faketime_site${PYTHONPATH:+:$PYTHONPATH}
unset FAKETIME_SKIP_CMDS FAKETIME_SHARED FAKETIME_DONT_RESET FAKETIME_TIMESTAMP_FILE FAKETIME_FOLLOW_FILE
# signed: "+3600" ahead, "-3600" behind ("+-3600" is no offset libfaketime reads: the real clock)
FAKETIME=$(printf '%+d' $((target - $(date +%s))))
export FAKETIME

# The clock really moved for Python (a run that silently kept the real clock would prove nothing).
seen=$("$py" -c 'import time; print(int(time.time()))')
((seen - target >= -2 && seen - target <= 30)) ||
    die "libfaketime did not take: Python sees $(date -d "@$seen" -Is), wanted $(date -d "@$target" -Is)"
printf 'at_clock: %s (%s) for Python processes; the servers keep the real clock\n' \
    "$(TZ=$zone date -d "@$target" '+%Y-%m-%dT%H:%M:%S%:z')" "$zone" >&2

# libfaketime's semaphore and shared memory (/dev/shm) of processes that are gone: a process
# killed with SIGKILL (the fault tests' workers) cannot remove its own.
clean_shm() {
    local f pid
    for f in /dev/shm/faketime_shm_* /dev/shm/sem.faketime_sem_*; do
        [[ -e $f ]] || continue
        pid=${f##*_}
        [[ -d /proc/$pid ]] || rm -f "$f"
    done
}
clean_shm
trap clean_shm EXIT
"$@"
