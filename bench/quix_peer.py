"""The peer a Python user would pick instead of gridpulse: the same daily load factor and power
factor per customer, written with Quix Streams (``quixstreams``, the ``bench`` extra).

A plain Quix application, with Quix's defaults where they matter: RocksDB state with its
changelog topic, at-least-once processing, checkpoints every 5 s. It reads ``meter.readings``
(JSON, keyed by customer_id) from the beginning with a fresh consumer group and, per reading,
updates the customer's record of the current local day in ``State`` (``apply(stateful=True)``)
and produces the day's statistics to an output topic, as the gridpulse worker publishes a
``stats.customer`` update per changed customer.

The day statistics are those of gridpulse's ``day`` window (metering/load.py ``_window`` and
``LoadState._apply_rows``), with the same formulas and the same order of additions:

- the interval starts at ``ts - interval_s`` and belongs to the local day it starts in
  (``GRIDPULSE_TIMEZONE``, Asia/Shanghai: UTC+8, local-midnight boundaries);
- kwh: sum; kvarh: sum of |kvarh| + |kvarh_export|; kwh_q: the kWh of the readings that have a
  reactive register (either field present), so a meter without one does not fake PF 1.0;
- kW of a reading: ``demand_kw`` when metered, else kwh * 3600 / interval_s; readings of several
  meters of the customer with the same interval start are summed (coincident demand) and
  max_kw is the day's largest such sum; the interval's time is counted once (``hours``);
- a (meter, interval start) already counted is a duplicate and changes nothing;
- avg_kw = kwh / hours; load_factor = avg_kw / max_kw (None when max_kw or hours is 0);
  power_factor = kwh_q / sqrt(kwh_q^2 + kvarh^2) (None when both are 0).

Simplifications against the gridpulse worker (none of them is exercised by the benchmark's data,
which is in time order, valid and without duplicates):

- only the current local day is kept: a reading for an earlier day than the customer's newest
  is ignored (gridpulse adds it to that day's bucket within its 48 h lateness; the ``day``
  window it publishes, that of the newest day, is the same either way);
- no d30 / month windows, PF tariff adjustment, consumption history, gaps or profiles; no
  schema validation and no dead-letter topic (a malformed value stops the application);
- an update is produced for every reading (duplicates and ignored ones included), where
  gridpulse publishes one per changed customer per batch.

Why State and not ``tumbling_window(timedelta(days=1))``: Quix's windows are aligned to the
epoch (UTC midnight, no offset), not to local midnight, and the coincident per-interval demand
needs per-interval slots in the aggregate anyway; a stateful apply is Quix's idiom for that.

Run as its own process (``quix_rps`` does it), like bench/faust_floor.py::

    GP_QUIX_TOPIC=... GP_QUIX_N=... GP_QUIX_OUT=... GP_QUIX_GROUP=... GP_QUIX_OUTPUT_TOPIC=... \\
        GP_QUIX_STATE=... python -m bench.quix_peer

The Kafka connection and the zone come from the GRIDPULSE_* settings. After the N-th message it
writes its rate (readings/s, from the first processed message to the N-th) and its CPU time over
that span (`bench.proc.Rate`) to GP_QUIX_OUT and stops gracefully (the last checkpoint is
committed, so the output topic is complete). With ``GP_QUIX_FORM=blocks`` each message is a block
(the block form): its intervals are applied to the day record one by one, with one state read and
write and one update per block. `serve` is the application both Quix peers run
(bench/quix_core_peer.py is the other).
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bench.proc import Rate, Stopwatch, run_for_rate
from gridpulse.settings import Settings, get_settings
from gridpulse.workerproc import worker_env
from schemas import topics as contract
from streams.kafka import make_admin

if TYPE_CHECKING:
    from quixstreams.kafka.configuration import ConnectionConfig
    from quixstreams.state import State

OUTPUT_TOPIC = "bench.quix-stats"  # under the settings' topic prefix
DEFAULT_INTERVAL_S = 900
_DAY = "day"  # the State key of the customer's current-day record


# ---------------------------------------------------------------------- the statistics


def day_update(value: dict[str, Any], state: State, tz: ZoneInfo) -> dict[str, Any]:
    """Apply one reading to its customer's current-day record in ``state``; the day's
    statistics after it."""
    interval_s = value.get("interval_s") or DEFAULT_INTERVAL_S
    end = round(datetime.fromisoformat(value["ts"]).timestamp())
    rec: dict[str, Any] | None = state.get(_DAY)
    rec, changed = day_apply(
        rec,
        tz,
        value["meter_id"],
        end - interval_s,
        interval_s,
        value["kwh"],
        value.get("kvarh"),
        value.get("kvarh_export"),
        value.get("demand_kw"),
    )
    if changed:
        state.set(_DAY, rec)
    return day_stats(value["customer_id"], rec)


def day_update_block(value: dict[str, Any], state: State, tz: ZoneInfo) -> dict[str, Any]:
    """Apply a block (the block form: ``start`` and lists) interval by interval to the
    customer's current-day record: one state read and write, one update, per block."""
    start = round(datetime.fromisoformat(value["start"]).timestamp())
    interval_s = value.get("interval_s") or DEFAULT_INTERVAL_S
    kwh = value["kwh"]
    n = len(kwh)
    kvarh = value.get("kvarh") or [None] * n
    export = value.get("kvarh_export") or [None] * n
    demand = value.get("demand_kw") or [None] * n
    meter = value["meter_id"]
    rec: dict[str, Any] | None = state.get(_DAY)
    any_change = False
    for i in range(n):
        if kwh[i] is None:
            continue
        rec, changed = day_apply(
            rec, tz, meter, start + i * interval_s, interval_s, kwh[i], kvarh[i], export[i], demand[i]
        )
        any_change |= changed
    if rec is None:
        return {"customer_id": value["customer_id"], "data_end": None, "day": None}
    if any_change:
        state.set(_DAY, rec)
    return day_stats(value["customer_id"], rec)


def day_apply(
    rec: dict[str, Any] | None,
    tz: ZoneInfo,
    meter: str,
    start: int,
    interval_s: int,
    kwh: float,
    kvarh: float | None,
    kvarh_export: float | None,
    demand_kw: float | None,
) -> tuple[dict[str, Any], bool]:
    """One interval (starting at ``start``) applied to the current-day record: (the record,
    whether it changed)."""
    day = datetime.fromtimestamp(start, tz).date().toordinal()
    if rec is None or day > rec["day"]:
        rec = {"day": day, "kwh": 0.0, "kwh_q": 0.0, "kvarh": 0.0, "max_kw": 0.0, "seconds": 0, "n": 0}
        rec["slots"] = {}  # interval start -> [coincident kW, meter ids counted]
    elif day < rec["day"]:
        return rec, False  # an earlier day: not kept (see above)
    kw = demand_kw if demand_kw is not None else kwh * 3600.0 / interval_s
    slots = rec["slots"]
    slot = slots.get(str(start))
    if slot is None:
        slots[str(start)] = [kw, meter]
        covered = interval_s
    elif meter in slot:
        return rec, False  # a duplicate
    else:
        slot[0] += kw
        slot.append(meter)
        kw = slot[0]
        covered = 0  # the interval's time is covered once
    rec["kwh"] += kwh
    if kvarh is not None or kvarh_export is not None:
        rec["kvarh"] += abs(kvarh or 0.0) + abs(kvarh_export or 0.0)
        rec["kwh_q"] += kwh
    if kw > rec["max_kw"]:
        rec["max_kw"] = kw
    rec["seconds"] += covered
    rec["n"] += 1
    rec["end"] = max(rec.get("end", 0), start + interval_s)
    return rec, True


def day_stats(customer_id: str, rec: dict[str, Any]) -> dict[str, Any]:
    kwh, kwh_q, kvarh, max_kw = rec["kwh"], rec["kwh_q"], rec["kvarh"], rec["max_kw"]
    hours = rec["seconds"] / 3600.0
    avg_kw = kwh / hours if hours > 0 else 0.0
    apparent = math.hypot(kwh_q, kvarh)
    return {
        "customer_id": customer_id,
        "data_end": rec.get("end"),
        "day": {
            "date": date.fromordinal(rec["day"]).isoformat(),
            "kwh": kwh,
            "kvarh": kvarh,
            "avg_kw": avg_kw,
            "max_kw": max_kw,
            "load_factor": avg_kw / max_kw if max_kw > 0 and hours > 0 else None,
            "power_factor": kwh_q / apparent if apparent > 0 else None,
            "hours": hours,
            "intervals": rec["n"],
        },
    }


# ---------------------------------------------------------------------- the application


def connection(settings: Settings) -> ConnectionConfig:
    """librdkafka's connection settings from gridpulse's (SASL/SSL included)."""
    from pydantic import SecretStr
    from quixstreams.kafka.configuration import ConnectionConfig

    kw: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        kw["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kw["sasl_username"] = settings.kafka_sasl_username
        if (password := settings.kafka_password()) is not None:  # the setting or its file
            kw["sasl_password"] = SecretStr(password)
    if settings.kafka_ssl_cafile:
        kw["ssl_ca_location"] = settings.kafka_ssl_cafile
    if settings.kafka_ssl_certfile:
        kw["ssl_certificate_location"] = settings.kafka_ssl_certfile
    if settings.kafka_ssl_keyfile:
        kw["ssl_key_location"] = settings.kafka_ssl_keyfile
    return ConnectionConfig(**kw)


class Counted:
    """The readings a peer has processed (its process function adds them), and the `Rate`
    from the first processed message to the ``total``-th."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.readings = 0
        self.messages = 0
        self._at_first = 0
        self.clock = Stopwatch()

    def message_done(self) -> Rate | None:
        """Called per processed message: the rate once the ``total``-th is done."""
        self.messages += 1
        if self.messages == 1:
            self._at_first = self.readings  # the rate counts what follows the first message
            self.clock.start()
        if self.messages == self.total:
            return self.clock.rate(self.readings - self._at_first)
        return None


def serve(
    process: Callable[..., Any],
    counted: Counted,
    *,
    json: bool,
    metadata: bool = False,
    rocksdb_options: Any = None,
    drop_none: bool = False,
) -> None:
    """A Quix application over GP_QUIX_TOPIC: ``process`` per message (stateful; with the key
    when ``metadata``), its result to GP_QUIX_OUTPUT_TOPIC; after the ``counted.total``-th
    message the rate goes to GP_QUIX_OUT and the application stops gracefully (the last
    checkpoint, with output, changelog and offsets, is committed). ``drop_none``: a None
    result (a skipped message) produces nothing."""
    from quixstreams import Application
    from quixstreams.models import TopicConfig

    settings = get_settings()
    out = Path(os.environ["GP_QUIX_OUT"])

    def processed(topic: str, partition: int, offset: int) -> None:
        rate = counted.message_done()
        if rate is not None:
            out.write_text(rate.to_json())
            app.stop()

    app = Application(
        broker_address=connection(settings),
        consumer_group=os.environ["GP_QUIX_GROUP"],
        auto_offset_reset="earliest",
        state_dir=os.environ["GP_QUIX_STATE"],
        on_message_processed=processed,
        loglevel="WARNING",
        rocksdb_options=rocksdb_options,
    )
    # json: keys as str and values as JSON (Quix's (de)serializers); else bytes as they are
    source = app.topic(
        os.environ["GP_QUIX_TOPIC"],
        key_deserializer="str" if json else "bytes",
        value_deserializer="json" if json else "bytes",
    )
    sink = app.topic(
        os.environ["GP_QUIX_OUTPUT_TOPIC"],
        key_serializer="str" if json else "bytes",
        value_serializer="json" if json else "bytes",
        config=TopicConfig(
            num_partitions=settings.topic_partitions, replication_factor=settings.topic_replication
        ),
    )
    sdf = app.dataframe(source)
    if metadata:
        sdf = sdf.apply(process, stateful=True, metadata=True)
    else:
        sdf = sdf.apply(process, stateful=True)
    if drop_none:
        sdf = sdf.filter(lambda value: value is not None)
    sdf.to_topic(sink)
    app.run()


def main() -> None:
    tz = get_settings().tz
    counted = Counted(int(os.environ["GP_QUIX_N"]))

    def single(value: dict[str, Any], state: State) -> dict[str, Any]:
        counted.readings += 1
        return day_update(value, state, tz)

    def block(value: dict[str, Any], state: State) -> dict[str, Any]:
        counted.readings += sum(1 for k in value["kwh"] if k is not None)
        return day_update_block(value, state, tz)

    blocks = os.environ.get("GP_QUIX_FORM") == "blocks"
    serve(block if blocks else single, counted, json=True)


# ---------------------------------------------------------------------- from bench/run.py


async def run_peer(
    settings: Settings,
    expected: int,
    out_dir: Path,
    *,
    group: str,
    output_topic: str,
    timeout_s: float = 1800.0,
) -> float:
    """Run the peer over ``settings.topic(meter.readings)`` until it processed ``expected``
    readings; its rate (readings/s). Leaves its topics and state behind (see `quix_rps`)."""
    rate = await measure_peer(
        settings, expected, out_dir, group=group, output_topic=output_topic, timeout_s=timeout_s
    )
    return rate.rps


async def measure_peer(
    settings: Settings,
    expected: int,
    out_dir: Path,
    *,
    group: str,
    output_topic: str,
    timeout_s: float = 1800.0,
    blocks: bool = False,
    module: str = "bench.quix_peer",
) -> Rate:
    """Run a Quix peer (``module``) over ``settings.topic(meter.readings)`` until it processed
    ``expected`` messages (readings, or blocks with ``blocks``): its `Rate`. Leaves its topics
    and state behind (`delete_peer_topics`; the state is ``out_dir / "quix-state"``)."""
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a benchmark's own files, tiny)
    name = module.rsplit(".", 1)[-1]
    out = out_dir / f"{name}.txt"
    env = worker_env(
        settings,
        GP_QUIX_TOPIC=settings.topic(contract.METER_READINGS),
        GP_QUIX_N=str(expected),
        GP_QUIX_OUT=str(out),
        GP_QUIX_GROUP=group,
        GP_QUIX_OUTPUT_TOPIC=output_topic,
        GP_QUIX_STATE=str(out_dir / "quix-state"),
        GP_QUIX_FORM="blocks" if blocks else "readings",
    )
    return await run_for_rate([module], env, out_dir / f"{name}.log", out, timeout_s)


async def delete_peer_topics(settings: Settings, group: str, output_topic: str) -> None:
    """The peer's output topic and the changelog topics Quix made for its group."""
    admin = make_admin(settings)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t == output_topic or group in t]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


async def quix_rps(
    settings: Settings,
    expected: int,
    out_dir: Path,
    *,
    blocks: bool = False,
    module: str = "bench.quix_peer",
    output: str = OUTPUT_TOPIC,
) -> Rate:
    """A Quix peer (``module``) in its own process over ``settings.topic(meter.readings)``, a
    fresh consumer group: readings/s from its first processed message to the ``expected``-th,
    and its CPU time. Its topics and state are deleted afterwards."""
    group = f"{settings.app_id}-{module.rsplit('.', 1)[-1]}-{int(time.time())}"
    output_topic = settings.topic(output)
    try:
        return await measure_peer(
            settings, expected, out_dir, group=group, output_topic=output_topic, blocks=blocks, module=module
        )
    finally:
        await delete_peer_topics(settings, group, output_topic)
        shutil.rmtree(out_dir / "quix-state", ignore_errors=True)


if __name__ == "__main__":
    main()
