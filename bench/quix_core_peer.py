"""Quix Streams running gridpulse's own metering core: the fair comparison of engines and designs.

The same per-message work as the naive Faust agent (bench/naive_faust.py), in a Quix Streams
application instead of a Faust agent: one stateful ``apply`` per message of ``meter.readings``
that

1. decodes and validates the message with gridpulse's code: a single reading with
   ``schemas.codec.decode_keyed`` and ``schemas.validation.check_reading``, a block
   (``GP_QUIX_FORM=blocks``) with the bench's `bench.blocks.block_readings`; an unusable one is
   skipped with a counter (no dead-letter topic, as in the naive agent);
2. reads the customer's compact ``LoadState`` bytes from Quix's ``State`` (RocksDB, with Quix's
   changelog topic), applies the reading or the block's intervals with the same
   ``LoadState.apply`` and writes the bytes back;
3. builds the document with the same ``metering.stats.stats_document`` (no profile and an empty
   arrears ledger, as in the naive agent) and produces it, orjson bytes, to its output topic:
   one output message per input message.

Quix's State stores values with a JSON ``dumps``/``loads`` by default; this peer stores the
state's own bytes instead (`raw_dumps`/`raw_loads` in the RocksDB options: bytes as they are),
as gridpulse's tables and the naive agent's raw-serialized table do. Quix's defaults otherwise:
at-least-once, checkpoints every 5 s, its librdkafka producer.

Run as its own process by `bench.run` (``quix_rps(..., module="bench.quix_core_peer")``), with
the environment of bench/quix_peer.py; it writes its `bench.proc.Rate` to GP_QUIX_OUT.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bench.blocks import BlockError, block_readings
from bench.quix_peer import Counted, serve
from gridpulse.settings import get_settings
from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import stats_document
from schemas.codec import DecodeError, decode_keyed
from schemas.models import MeterReading
from schemas.validation import check_reading

if TYPE_CHECKING:
    from quixstreams.state import State

OUTPUT_TOPIC = "bench.quix-core-stats"  # under the settings' topic prefix
_LOAD = "load"  # the State key of the customer's LoadState bytes


def raw_dumps(value: Any) -> bytes:
    """State values: bytes as they are; anything else (Quix's own keys) as JSON."""
    return value if isinstance(value, bytes) else orjson.dumps(value)


def raw_loads(value: bytes) -> bytes:
    return value


def main() -> None:
    from quixstreams.state.rocksdb import RocksDBOptions

    s = get_settings()
    tz, lateness_s, gap_days = s.tz, s.lateness_s, s.gap_report_days
    counted = Counted(int(os.environ["GP_QUIX_N"]))
    no_bills = ArrearsLedger(tz=tz)  # no billing input: every customer's ledger is empty
    skipped: Counter[str] = Counter()

    def update(cid: str, intervals: list[Any], state: State) -> bytes | None:
        raw = state.get(_LOAD)
        load = (
            LoadState(tz=tz, lateness_s=lateness_s)
            if raw is None
            else LoadState.from_bytes(raw, tz=tz, lateness_s=lateness_s)
        )
        for status in load.apply(intervals).statuses:
            if status not in ("applied", "duplicate"):
                skipped[status] += 1
        state.set(_LOAD, load.to_bytes())
        doc = stats_document(cid, load, no_bills, None, datetime.now(UTC), tz, gap_days)
        return None if doc is None else orjson.dumps(doc)

    def single(value: bytes, key: bytes, timestamp: int, headers: Any, state: State) -> bytes | None:
        counted.readings += 1
        try:
            reading = decode_keyed(MeterReading, key, value)
        except DecodeError as exc:
            skipped[exc.kind] += 1
            return None
        now = datetime.now(UTC)
        issue = check_reading(reading, now=now, contract_kva=None, future_tolerance_s=s.future_tolerance_s)
        if issue is not None:
            skipped[issue.kind] += 1
            return None
        return update(reading.customer_id, [reading], state)

    def block(value: bytes, key: bytes, timestamp: int, headers: Any, state: State) -> bytes | None:
        try:
            cid, intervals = block_readings(key, value)
        except BlockError as exc:
            skipped[exc.kind] += 1
            return None
        counted.readings += len(intervals)
        return update(cid, intervals, state)

    blocks = os.environ.get("GP_QUIX_FORM") == "blocks"
    try:
        serve(
            block if blocks else single,
            counted,
            json=False,
            metadata=True,
            rocksdb_options=RocksDBOptions(dumps=raw_dumps, loads=raw_loads),
            drop_none=True,
        )
    finally:
        if skipped:
            print(f"quix core: skipped {dict(skipped)}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
