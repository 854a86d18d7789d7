"""`gridpulse simulate --blocks` (simulator/blocks.py): daily curves in the block form, delivered
as a collection run: the same intervals as the single readings of the same run, whole local days,
after local midnight, some hours late, retried, partly missing and re-sent overlapping; every block
decodes as the contract's block form and its intervals pass validation."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest

from gridpulse.cli import build_parser
from metering.load import LoadState
from schemas import topics
from schemas.blocks import ReadingBlock, decode_reading
from schemas.validation import check_block
from simulator.blocks import CollectionOptions, block_readings
from simulator.run import Message, Simulation, SimulationOptions, generate

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 3, 2, 10, 30, tzinfo=SHANGHAI)
SHARES = CollectionOptions(late_share=0.2, partial_share=0.2, retry_share=0.2, overlap_share=0.3)


def options(**kw: object) -> SimulationOptions:
    base: dict[str, object] = {
        "customers": 30,
        "days": 4,
        "start": START,
        "seed": 5,
        "billing": False,
        "outages": False,
        "consumption_history_months": 0,
    }
    return SimulationOptions(**(base | kw))  # type: ignore[arg-type]


def readings_of(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.topic == topics.METER_READINGS]


@pytest.fixture(scope="module")
def stream() -> list[Message]:
    return list(generate(options(blocks=True, collection=SHARES)))


def test_blocks_are_whole_local_days_of_the_singles_values(stream: list[Message]) -> None:
    singles = {
        (v["meter_id"], v["ts"]): v
        for m in readings_of(
            list(
                generate(
                    options(
                        start=datetime(2026, 3, 2, tzinfo=SHANGHAI),
                        bad_share=0,
                        duplicate_share=0,
                        late_share=0,
                    )
                )
            )
        )
        for v in [orjson.loads(m.value)]
    }
    days = Counter()
    for m in readings_of(stream):
        value = orjson.loads(m.value)
        start = datetime.fromisoformat(value["start"])
        if len(value["kwh"]) == 96:
            assert start.hour == 0 and start.minute == 0  # a local day
            days[start.date()] += 1
        for r in block_readings(value):
            single = singles[
                (r["meter_id"], datetime.fromisoformat(r["ts"]).astimezone(SHANGHAI).isoformat())
            ]
            for name in ("kwh", "kvarh", "kvarh_export", "demand_kw"):
                assert r.get(name) == single.get(name), name
    # from the local midnight of the start's day, four whole days
    assert sorted(days) == [datetime(2026, 3, d).date() for d in (2, 3, 4, 5)]


def test_delivery_is_a_collection_run_after_midnight(stream: list[Message]) -> None:
    sim = Simulation(options(blocks=True, collection=SHARES))
    assert (sim.start, sim.end) == (
        int(datetime(2026, 3, 2, tzinfo=SHANGHAI).timestamp()),
        int(datetime(2026, 3, 6, tzinfo=SHANGHAI).timestamp()),
    )
    values = [orjson.loads(m.value) for m in readings_of(stream)]
    outcomes = Counter(m.outcome for m in readings_of(stream))
    firsts = [v for v in values if len(v["kwh"]) == 96]
    assert outcomes["duplicate"] > 0  # retried whole: the same bytes again
    raws = Counter(m.value for m in readings_of(stream))
    assert all(raws[m.value] == 2 for m in readings_of(stream) if m.outcome == "duplicate")
    assert any(None in v["kwh"] for v in firsts)  # partly missing days
    overlapping = [v for v in values if len(v["kwh"]) == 96 + 24]  # 6 h of the day before
    assert overlapping and all(datetime.fromisoformat(v["start"]).hour == 18 for v in overlapping)
    # day by day: every block of a day before any of the next (the runs do not interleave)
    day_of = [
        datetime.fromisoformat(v["start"]).date() + timedelta(days=1 if len(v["kwh"]) > 96 else 0)
        for v in values
    ]
    assert day_of == sorted(day_of)
    assert len(firsts) >= 4 * 30 - outcomes["duplicate"]


def test_every_block_decodes_and_its_intervals_pass_validation(stream: list[Message]) -> None:
    now = datetime(2026, 3, 7, tzinfo=UTC)
    states: dict[str, LoadState] = {}
    for m in readings_of(stream):
        block = decode_reading(m.key, m.value)
        assert isinstance(block, ReadingBlock) and not block.issues
        assert check_block(block, now=now, contract_kva=None) == {}
        state = states.setdefault(block.customer_id, LoadState(SHANGHAI))
        result = state.apply_block(
            block.meter_id,
            block.start_s,
            block.interval_s,
            block.kwh,
            block.kvarh,
            block.kvarh_export,
            block.demand_kw,
        )
        if m.outcome == "duplicate":
            assert set(result.statuses) == {"duplicate"}
        assert "late" not in result.statuses


def test_same_seed_same_blocks(stream: list[Message]) -> None:
    assert list(generate(options(blocks=True, collection=SHARES))) == stream


def test_the_cli_flag() -> None:
    args = build_parser().parse_args(["simulate", "--blocks", "--days", "3"])
    assert args.blocks is True
    assert build_parser().parse_args(["simulate"]).blocks is False
