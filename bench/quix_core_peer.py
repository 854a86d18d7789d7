"""Quix Streams running gridpulse's own metering core: the fair comparison of engines and designs.

The same per-message work as the naive Faust agent (bench/naive_faust.py), in a Quix Streams
application instead of a Faust agent: one stateful ``apply`` per message of ``meter.readings``
that

1. decodes and validates the message with gridpulse's code: a single reading with
   ``schemas.codec.decode_keyed`` and ``schemas.validation.check_reading``, a block
   (``GP_QUIX_FORM=blocks``) as the pipeline reads one (`bench.blocks.checked_block`:
   ``schemas.blocks.decode_reading``, ``check_block``); an unusable message or interval is
   skipped with a counter (no dead-letter topic, as in the naive agent);
2. reads the customer's compact ``LoadState`` bytes from Quix's ``State`` (RocksDB, with Quix's
   changelog topic), applies the reading with the same ``LoadState.apply`` or the block's valid
   intervals with the same ``LoadState.apply_block``, and writes the bytes back;
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
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from bench.blocks import BlockError, checked_block
from bench.quix_peer import Counted, serve
from gridpulse.settings import get_settings
from metering.arrears import ArrearsLedger
from metering.load import ApplyResult, LoadState
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

    def update(cid: str, apply: Callable[[LoadState], ApplyResult], state: State) -> bytes | None:
        raw = state.get(_LOAD)
        load = (
            LoadState(tz=tz, lateness_s=lateness_s)
            if raw is None
            else LoadState.from_bytes(raw, tz=tz, lateness_s=lateness_s)
        )
        for status in apply(load).statuses:
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
        return update(reading.customer_id, lambda load: load.apply([reading]), state)

    def block(value: bytes, key: bytes, timestamp: int, headers: Any, state: State) -> bytes | None:
        try:
            checked = checked_block(
                key, value, now=datetime.now(UTC), future_tolerance_s=s.future_tolerance_s
            )
        except BlockError as exc:
            skipped[exc.kind] += 1
            return None
        counted.readings += checked.readings
        skipped.update(checked.issues)
        return update(checked.customer_id, checked.apply, state)

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
