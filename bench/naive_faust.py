"""The naive baseline: a straightforward per-message Faust agent computing the same statistics.

What a competent Faust user writes without tuning for throughput: one agent (concurrency 1)
iterating the readings topic message by message. Per message it

1. decodes and validates the reading with our own code (``schemas.codec.decode_keyed``: decode
   and key check, ``schemas.validation.check_reading``); an unusable one is skipped with a
   counter (no dead-letter topic: fine for a baseline);
2. reads the customer's state from a plain faust Table (value: the compact ``LoadState`` bytes
   of metering/load.py, raw serializer, RocksDB store), applies the one reading with the same
   ``LoadState.apply`` the pipeline uses and writes the state back (one table write, so one
   changelog message, per reading);
3. builds the stats.customer document with the pipeline's own ``metering.stats.stats_document``
   and ``await``s ``stats.send`` of it to an output topic of its own (``<prefix>naive.stats``).

On the block form (``GP_NAIVE_FORM=blocks``) a message is a meter's block of intervals: it is
read and checked as the pipeline reads one (`bench.blocks.checked_block`: ``decode_reading``,
``check_block``) and its valid intervals are applied in one ``LoadState.apply_block`` call, then
one state write and one document, per block message.

No batching, no ``take_events``, no event-context tricks, no Redis. When it has processed N
messages it writes its rate (readings/s from the first to the N-th message) and its CPU time
over the same span (`bench.proc.Rate`) to a file once the broker has acknowledged every
changelog record and stats document (flushed after the clock stopped, with the pipeline's
complete buffer flush), and exits with ``os._exit(0)``, like bench/faust_floor.py.

It has no customers agent, so it knows no profiles: its documents say ``profile_known: false``
and carry no PF standard or tariff (the month's PF adjustment is left empty). The day, d30 and
month windows, consumption and hourly profile do not depend on a profile and are the pipeline's.

Run by bench/run.py through :func:`naive_faust_rps`, or by hand as a worker process:
    GP_NAIVE_TOPIC=... GP_NAIVE_N=... GP_NAIVE_OUT=... GP_NAIVE_DATA=... \\
        python -m bench.naive_faust worker -l info
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import faust
import orjson
from aiokafka.admin import NewTopic

from bench.blocks import BlockError, checked_block
from bench.proc import FAUST_WORKER, Rate, Stopwatch, run_for_rate
from gridpulse.settings import Settings, get_settings
from gridpulse.workerproc import worker_env
from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import stats_document
from schemas import topics as contract
from schemas.codec import DecodeError, decode_keyed
from schemas.models import MeterReading
from schemas.validation import check_reading
from streams.kafka import delete_topics, make_admin

STATS_TOPIC = "naive.stats"  # under the run's topic prefix: settings.topic(STATS_TOPIC)


def changelog_topic(app_id: str) -> str:
    """The changelog topic of the naive agent's table."""
    return f"{app_id}-naive-load-state-changelog"


def app_topics(settings: Settings, app_id: str) -> list[str]:
    """Every topic a naive run leaves behind: its output, its changelog, faust's leader topic."""
    return [settings.topic(STATS_TOPIC), changelog_topic(app_id), f"{app_id}-__assignor-__leader"]


def build_app(
    settings: Settings,
    *,
    app_id: str,
    topic: str,
    total: int,
    out: Path,
    data_dir: Path,
    blocks: bool = False,
) -> faust.App:
    """The naive app: one table, one agent, one output topic. ``total``: messages to process;
    ``blocks``: they are blocks (the block form)."""
    from streams.app import _credentials, rocksdb_options
    from streams.faust_patches import complete_buffer_flush

    s = settings
    # the pipeline's producer, commit, buffer and store settings (streams.app.make_app); no web
    # server, faust's default consumer-group timeouts, no GC tuning (a straightforward app)
    app = faust.App(
        app_id,
        broker=[f"kafka://{h.strip()}" for h in s.kafka_bootstrap.split(",")],
        broker_credentials=_credentials(s),
        store="rocksdb://",
        datadir=str(data_dir),
        topic_partitions=s.topic_partitions,
        topic_replication_factor=s.topic_replication,
        key_serializer="raw",
        value_serializer="raw",
        processing_guarantee="at_least_once",
        producer_acks=-1,
        producer_linger_ms=10,
        broker_commit_every=10_000,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=8192,
        web_enabled=False,
        timezone=s.tz,
    )
    readings = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    stats = app.topic(
        s.topic(STATS_TOPIC), key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    # a plain table: the state lands in the partition of the reading being processed
    # (the readings topic is keyed by customer_id)
    table = app.Table(
        "naive-load-state",
        key_type=bytes,
        value_type=bytes,
        partitions=s.topic_partitions,
        options=rocksdb_options(s),
    )
    tz, lateness_s = s.tz, s.lateness_s
    # no billing agent: every customer's ledger is empty, as the pipeline's is without bills
    no_bills = ArrearsLedger(tz=tz)
    skipped: Counter[str] = Counter()
    seen = {"n": 0, "readings": 0}
    clock = Stopwatch()
    # the pipeline's producer-buffer flush: faust's own gives up after 0.1 s without progress,
    # and a slow broker left the last changelog record unsent before os._exit
    complete_buffer_flush(app.producer.buffer)

    @app.agent(readings, name="naive", concurrency=1)
    async def naive(stream: faust.StreamT) -> None:
        async for key, value in stream.items():
            if not clock.started:
                clock.start()
            seen["n"] += 1
            await (process_block(key, value) if blocks else process(key, value))
            if seen["n"] >= total:
                rate = clock.rate(seen["readings"])
                # the clock has stopped: deliver what is buffered (changelog, stats) and wait for
                # the broker's acks, then report
                await app.producer.flush()
                if skipped:
                    print(f"naive: skipped {dict(skipped)}", file=sys.stderr, flush=True)
                out.write_text(rate.to_json())  # noqa: ASYNC240 (a benchmark's own files, tiny)
                os._exit(0)  # the measurement is done; no orderly shutdown needed

    async def process(key: bytes | None, value: bytes | None) -> None:
        seen["readings"] += 1
        try:
            reading = decode_keyed(MeterReading, key, value)
        except DecodeError as exc:
            skipped[exc.kind] += 1
            return
        cid = reading.customer_id
        now = datetime.now(UTC)
        issue = check_reading(reading, now=now, contract_kva=None, future_tolerance_s=s.future_tolerance_s)
        if issue is not None:
            skipped[issue.kind] += 1
            return
        state_key = cid.encode()
        raw = table.get(state_key)
        state = (
            LoadState(tz=tz, lateness_s=lateness_s)
            if raw is None
            else LoadState.from_bytes(raw, tz=tz, lateness_s=lateness_s)
        )
        status = state.apply([reading]).statuses[0]
        if status not in ("applied", "duplicate"):  # late or rejected by the state
            skipped[status] += 1
            return
        table[state_key] = state.to_bytes()
        # no customers agent: no profile (profile_known false, no PF standard or tariff)
        doc = stats_document(cid, state, no_bills, None, now, tz, s.gap_report_days)
        if doc is not None:
            await stats.send(key=state_key, value=orjson.dumps(doc))

    async def process_block(key: bytes | None, value: bytes | None) -> None:
        now = datetime.now(UTC)
        try:
            block = checked_block(key, value, now=now, future_tolerance_s=s.future_tolerance_s)
        except BlockError as exc:
            skipped[exc.kind] += 1
            return
        seen["readings"] += block.readings
        skipped.update(block.issues)
        cid = block.customer_id
        state_key = cid.encode()
        raw = table.get(state_key)
        state = (
            LoadState(tz=tz, lateness_s=lateness_s)
            if raw is None
            else LoadState.from_bytes(raw, tz=tz, lateness_s=lateness_s)
        )
        for status in block.apply(state).statuses:
            if status not in ("applied", "duplicate"):
                skipped[status] += 1
        table[state_key] = state.to_bytes()
        doc = stats_document(cid, state, no_bills, None, now, tz, s.gap_report_days)
        if doc is not None:
            await stats.send(key=state_key, value=orjson.dumps(doc))

    return app


# ---------------------------------------------------------------------- run it (bench/run.py)


async def create_stats_topic(settings: Settings) -> None:
    """The naive agent's output topic (faust does not create a topic it only sends to)."""
    admin = make_admin(settings)
    await admin.start()
    try:
        name = settings.topic(STATS_TOPIC)
        if name not in set(await admin.list_topics()):
            await admin.create_topics(
                [
                    NewTopic(
                        name=name,
                        num_partitions=settings.topic_partitions,
                        replication_factor=settings.topic_replication,
                    )
                ]
            )
    finally:
        await admin.close()


async def naive_faust_rps(
    settings: Settings,
    expected: int,
    out_dir: Path,
    *,
    app_id: str | None = None,
    keep: bool = False,
    timeout_s: float = 3600.0,
    blocks: bool = False,
) -> Rate:
    """The naive agent in its own process over ``settings.topic(meter.readings)`` from the start
    until it has processed ``expected`` messages (readings, or blocks with ``blocks``): its
    rate (readings/s) and CPU time.

    Its RocksDB lives in a temporary directory under ``out_dir`` (removed afterwards); its output
    topic (``settings.topic("naive.stats")``) and table changelog are deleted afterwards unless
    ``keep`` (the test reads them; :func:`app_topics` names them)."""
    app_id = app_id or f"gridpulse-naive-{int(time.time())}"
    out_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a benchmark's own files, tiny)
    out = out_dir / "naive.txt"
    out.unlink(missing_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="naive-data-", dir=out_dir))
    await create_stats_topic(settings)
    env = worker_env(
        settings,
        GP_NAIVE_APP=app_id,
        GP_NAIVE_TOPIC=settings.topic(contract.METER_READINGS),
        GP_NAIVE_N=str(expected),
        GP_NAIVE_OUT=str(out),
        GP_NAIVE_DATA=str(data_dir),
        GP_NAIVE_FORM="blocks" if blocks else "readings",
    )
    try:
        return await run_for_rate(
            ["bench.naive_faust", *FAUST_WORKER], env, out_dir / "naive.log", out, timeout_s
        )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
        if not keep:
            await delete_topics(settings, app_topics(settings, app_id))


def _main() -> None:
    env = os.environ
    app = build_app(
        get_settings(),
        app_id=env.get("GP_NAIVE_APP") or f"gridpulse-naive-{int(time.time())}",
        topic=env["GP_NAIVE_TOPIC"],
        total=int(env["GP_NAIVE_N"]),
        out=Path(env["GP_NAIVE_OUT"]),
        data_dir=Path(env["GP_NAIVE_DATA"]),
        blocks=env.get("GP_NAIVE_FORM") == "blocks",
    )
    app.main()


if __name__ == "__main__":
    _main()
