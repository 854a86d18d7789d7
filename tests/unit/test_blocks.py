"""The block form of meter.readings: decoding (schemas/blocks.py), per-interval validation
(schemas.validation.check_block), the state's one-call apply (LoadState.apply_block) — each
against the same intervals sent as single readings, and the statistics against tests/reference.py."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import orjson
import pytest

from metering.load import LoadState
from schemas.blocks import ReadingBlock, _valid_block, decode_block, decode_reading
from schemas.codec import DecodeError, decode
from schemas.jsonschema import render_all
from schemas.models import MAX_BLOCK_INTERVALS, MeterReading
from schemas.validation import check_block, check_reading
from tests.reference import reference_load
from tests.stats_check import WINDOW_FIELDS, assert_hourly_match, close

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def block(
    start: str = "2026-03-09T00:00:00+08:00", kwh: list[Any] | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "meter_id": "m1",
        "customer_id": "c1",
        "start": start,
        "interval_s": 900,
        "kwh": [1.0] * 96 if kwh is None else kwh,
        **extra,
    }


def js(obj: Any) -> bytes:
    return orjson.dumps(obj)


def singles(value: dict[str, Any]) -> list[dict[str, Any] | None]:
    """The single readings a block value stands for (None for an interval not read)."""
    start = datetime.fromisoformat(value["start"])
    step = value.get("interval_s", 900)
    out: list[dict[str, Any] | None] = []
    for i, kwh in enumerate(value["kwh"]):
        if kwh is None:
            out.append(None)
            continue
        r = {
            "meter_id": value["meter_id"],
            "customer_id": value["customer_id"],
            "ts": (start + timedelta(seconds=(i + 1) * step)).isoformat(),
            "interval_s": step,
            "kwh": kwh,
        }
        for name in ("kvarh", "kvarh_export", "demand_kw"):
            if value.get(name) is not None and value[name][i] is not None:
                r[name] = value[name][i]
        if value.get("quality") is not None and value["quality"][i] is not None:
            r["quality"] = value["quality"][i]
        out.append(r)
    return out


def single_issue(r: dict[str, Any], contract_kva: float | None) -> tuple[str, str] | None:
    """What the readings agent does with a single reading before the state: its DLQ kind/detail."""
    try:
        reading = decode(MeterReading, js(r))
    except DecodeError as exc:
        return exc.kind, exc.detail
    issue = check_reading(reading, now=NOW, contract_kva=contract_kva)
    return None if issue is None else (issue.kind, issue.detail)


def block_issues(value: dict[str, Any], contract_kva: float | None) -> dict[int, tuple[str, str]]:
    b = decode_reading(b"c1", js(value))
    assert isinstance(b, ReadingBlock)
    issues = dict(b.issues)
    issues |= {i: (x.kind, x.detail) for i, x in check_block(b, now=NOW, contract_kva=contract_kva).items()}
    return issues


# ------------------------------------------------------------------------------- decoding


def test_both_forms_decode_from_one_topic() -> None:
    single = decode_reading(b"c1", js(singles(block())[0]))
    assert isinstance(single, MeterReading) and single.kwh == 1.0
    b = decode_reading(b"c1", js(block(kvarh=[0.5] * 96, quality=[None] * 95 + [["estimated"]])))
    assert isinstance(b, ReadingBlock) and len(b) == 96 and not b.issues
    assert b.kwh == [1.0] * 96 and b.kvarh == [0.5] * 96 and b.demand_kw is None
    assert b.start_s == int(datetime.fromisoformat("2026-03-09T00:00:00+08:00").timestamp())
    assert b.ts(95) == datetime.fromisoformat("2026-03-10T00:00:00+08:00")
    # a single reading that merely carries a "start" field is still a single reading
    assert isinstance(decode_reading(None, js(singles(block())[0] | {"start": "x"})), MeterReading)
    ints = decode_reading(None, js(block(kwh=[2] * 96)))
    assert isinstance(ints, ReadingBlock) and ints.kwh[0] == 2.0 and type(ints.kwh[0]) is float


@pytest.mark.parametrize("seed", range(20))
def test_the_one_pass_validator_and_the_interval_loop_read_a_block_alike(seed: int) -> None:
    """A block without a bad entry takes the compiled validator (schemas.blocks._valid_block),
    any other block the loop (decode_block): on good blocks both give the same ReadingBlock,
    and a bad entry anywhere sends the block to the loop."""
    rng = random.Random(seed)
    n = rng.randint(1, 200)

    def entry() -> Any:
        return rng.choice([None, 0, 3, 0.0, round(rng.random() * 9, 4), 1e-9])

    value = block(kwh=[entry() for _ in range(n)])
    for name in ("kvarh", "kvarh_export", "demand_kw"):
        if rng.random() < 0.6:
            value[name] = [entry() for _ in range(n)]
    if rng.random() < 0.5:
        value["quality"] = [rng.choice([None, [], ["estimated"], ["power_fail", "x" * 64]]) for _ in range(n)]
    raw = js(value)
    fast = decode_reading(b"c1", raw)
    assert fast == _valid_block(raw) == decode_block(orjson.loads(raw))  # both paths, the same
    if n > 1:
        bad = dict(value, kwh=[*value["kwh"][:-1], -1.0])
        assert decode_reading(b"c1", js(bad)) == decode_block(orjson.loads(js(bad)))
        assert _valid_block(js(bad)) is None
        slow = decode_reading(b"c1", js(bad))
        assert isinstance(slow, ReadingBlock) and slow.issues[n - 1][0] == "negative_energy"


def test_nulls_are_intervals_not_read() -> None:
    b = decode_block(block(kwh=[None, 1.0, None, 2.0], kvarh=[1.0, 0.5, 3.0, None]))
    assert b.readable() == [1, 3] and not b.issues
    assert b.kvarh == [None, 0.5, None, None]  # an interval not read carries nothing


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (block(kwh=[1.0] * (MAX_BLOCK_INTERVALS + 1)), "schema"),
        (block(kwh=[]), "schema"),
        (block(kvarh=[1.0] * 95), "schema"),  # unequal lengths
        (block(demand_kw=[1.0] * 97), "schema"),
        (block(quality=[[]] * 3), "schema"),
        (block(kvarh="1.0"), "schema"),
        (block(start="yesterday"), "bad_timestamp"),
        (block(start="2026-03-09T00:00:00"), "bad_timestamp"),  # no offset
        (block(interval_s=0), "interval_length"),
        (block(interval_s="900"), "schema"),
        ({k: v for k, v in block().items() if k != "meter_id"}, "schema"),
        (block(customer_id=""), "schema"),
    ],
)
def test_a_bad_block_is_a_bad_message(value: dict[str, Any], kind: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_reading(None, js(value))
    assert err.value.kind == kind


def test_the_longest_block_is_31_days_of_quarter_hours() -> None:
    b = decode_reading(None, js(block(kwh=[0.5] * MAX_BLOCK_INTERVALS)))
    assert isinstance(b, ReadingBlock) and len(b.readable()) == MAX_BLOCK_INTERVALS == 2976


def test_a_block_keyed_by_another_customer_is_a_key_mismatch() -> None:
    with pytest.raises(DecodeError) as err:
        decode_reading(b"c2", js(block()))
    assert err.value.kind == "key_mismatch"


def test_each_bad_interval_gets_the_single_readings_dead_letter() -> None:
    """Every check that applies to a single reading, interval by interval: the same kind and
    the same detail as the interval sent alone; the block's other intervals pass."""
    kwh: list[Any] = [1.0] * 96
    kwh[3] = -1.0  # negative_energy
    kwh[4] = "1.0"  # schema
    kwh[5] = 60.0  # 240 kW: impossible_demand under a 100 kVA contract
    kwh[6] = True  # schema (strict)
    kwh[7] = 1e308 * 10  # orjson writes inf as null: not read
    kvarh: list[Any] = [0.2] * 96
    kvarh[8] = -0.1
    demand: list[Any] = [None] * 96
    demand[9] = 500.0
    quality: list[Any] = [None] * 96
    quality[10] = ["x" * 65]
    quality[13] = ["estimated"] * 65  # more codes than a single reading may carry
    quality[11] = "estimated"
    value = block(start="2026-03-10T16:00:00+08:00", kwh=kwh, kvarh=kvarh, demand_kw=demand, quality=quality)
    # 16:00 +08:00 = 08:00 UTC: intervals ending after NOW (12:00 UTC) + 300 s are in the future
    issues = block_issues(value, contract_kva=100.0)
    expected = {}
    for i, r in enumerate(singles(orjson.loads(js(value)))):
        if r is not None and (issue := single_issue(r, contract_kva=100.0)) is not None:
            expected[i] = issue
    assert issues == expected
    kinds = {i: kind for i, (kind, _) in issues.items()}
    assert kinds[3] == "negative_energy" and kinds[4] == "schema" and kinds[5] == "impossible_demand"
    assert kinds[6] == "schema" and 7 not in kinds and kinds[8] == "negative_energy"
    assert kinds[9] == "impossible_demand" and kinds[10] == "schema" and kinds[11] == "schema"
    assert kinds[13] == "schema" and not {0, 1, 2, 12, 14, 15} & set(kinds)
    assert {i for i, k in kinds.items() if k == "future_timestamp"} == set(range(16, 96))  # 12:15 UTC on


def test_intervals_after_year_2999_are_bad_timestamps_as_their_singles() -> None:
    value = block(start="2999-12-31T23:00:00+00:00", kwh=[0.1] * 8)
    got = decode_reading(None, js(value))
    assert isinstance(got, ReadingBlock) and got.readable() == [0, 1, 2]  # those ending in 2999
    expected = {}
    for i, r in enumerate(singles(value)):
        assert r is not None
        try:
            decode(MeterReading, js(r))
        except DecodeError as exc:
            expected[i] = (exc.kind, exc.detail)
    assert got.issues == expected and {k for k, _ in expected.values()} == {"bad_timestamp"}
    assert sorted(expected) == [3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    "value",
    [
        block(interval_s=7, kwh=[0.1] * 10),  # not an allowed length
        block(start="2026-03-09T00:05:00+08:00", kwh=[0.1] * 10),  # not on a boundary
        block(start="2026-03-09T00:00:00.5+08:00", kwh=[0.1] * 10),
        block(start="2026-03-09T00:00:00+05:30", kwh=[0.1] * 10, interval_s=3600),
    ],
)
def test_interval_length_and_alignment_judge_every_interval(value: dict[str, Any]) -> None:
    issues = block_issues(value, contract_kva=None)
    expected = {i: single_issue(r, None) for i, r in enumerate(singles(value)) if r is not None}
    assert issues == expected and {k for k, _ in issues.values()} == {"interval_length"}


def test_block_json_schema_accepts_either_form() -> None:
    schema = orjson.loads(render_all()["meter.readings.json"])
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(block(kvarh=[None] * 96))
    assert validator.is_valid(singles(block())[0])
    assert not validator.is_valid(block(kwh=[1.0] * (MAX_BLOCK_INTERVALS + 1)))
    assert not validator.is_valid({"meter_id": "m1", "customer_id": "c1"})
    dlq = orjson.loads(render_all()["dlq.json"])
    assert dlq["properties"]["interval_index"]["anyOf"][0]["minimum"] == 0


# ------------------------------------------------------------------------------- the state


def apply_blocks(state: LoadState, values: list[dict[str, Any]]) -> list[list[str]]:
    statuses = []
    for value in values:
        b = decode_block(value)
        result = state.apply_block(
            b.meter_id, b.start_s, b.interval_s, b.kwh, b.kvarh, b.kvarh_export, b.demand_kw
        )
        statuses.append(result.statuses)
    return statuses


def as_rows(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The blocks' readings as the state and the reference take them (ts in epoch s), in order."""
    return [
        {**r, "ts": int(datetime.fromisoformat(r["ts"]).timestamp())}
        for value in values
        for r in singles(value)
        if r is not None
    ]


def collection_run(seed: int) -> list[dict[str, Any]]:
    """Daily curves of a few meters over ~12 days, as a collection system sends them: some
    days partly missing (nulls), some blocks redelivered whole, some re-sent overlapping the
    previous day with other values, some days arriving out of order and late."""
    rng = random.Random(seed)
    meters = [f"m{j}" for j in range(rng.randint(1, 3))]
    kinds = {m: rng.choice(["none", "import", "both", "demand"]) for m in meters}
    first = datetime(2026, 2, 20, tzinfo=SHANGHAI)
    values: list[dict[str, Any]] = []
    for day in range(12):
        for m in meters:
            n = 96
            kwh: list[Any] = [None if rng.random() < 0.05 else round(rng.random() * 5, 3) for _ in range(n)]
            if rng.random() < 0.2:
                lo = rng.randrange(n)
                kwh[lo : lo + rng.randrange(1, 30)] = [None] * len(kwh[lo : lo + 30])
                kwh = kwh[:n]
            v: dict[str, Any] = {
                "meter_id": m,
                "customer_id": "c1",
                "start": (first + timedelta(days=day)).isoformat(),
                "interval_s": 900,
                "kwh": kwh,
            }
            if kinds[m] in ("import", "both"):
                v["kvarh"] = [rng.random() for _ in range(n)]
            if kinds[m] == "both":
                v["kvarh_export"] = [rng.choice([None, rng.random()]) for _ in range(n)]
            if kinds[m] == "demand":
                v["demand_kw"] = [rng.choice([None, 30.0 * rng.random()]) for _ in range(n)]
            values.append(v)
            if rng.random() < 0.15:
                values.append(v)  # redelivered whole
            if rng.random() < 0.15:  # re-sent from 18:00 the day before, other values
                over = dict(v, start=(first + timedelta(days=day, hours=-6)).isoformat())
                over["kwh"] = [round(rng.random() * 5, 3) for _ in range(n)]
                over.pop("kvarh", None), over.pop("kvarh_export", None), over.pop("demand_kw", None)
                values.append(over)
    # a few days swapped with their successor (out of order, within the lateness) and one
    # old day re-sent at the end (late behind the watermark)
    for k in range(0, len(values) - 1, 7):
        values[k], values[k + 1] = values[k + 1], values[k]
    values.append(dict(values[0]))
    return values


@pytest.mark.parametrize("seed", range(12))
def test_blocks_and_the_same_singles_give_identical_state_and_statistics(seed: int) -> None:
    values = collection_run(seed)
    by_block = LoadState(SHANGHAI, lateness_s=3 * 86400)
    statuses = [s for per in apply_blocks(by_block, values) for s in per]
    rows = as_rows(values)
    by_single = LoadState(SHANGHAI, lateness_s=3 * 86400)
    single_result = by_single.apply(rows)
    assert statuses == single_result.statuses
    assert "late" in statuses and "duplicate" in statuses
    assert by_block.to_bytes() == by_single.to_bytes()
    assert by_block.data_end is not None
    for now in (by_block.data_end, by_block.data_end + 40 * 86400):
        snap = by_block.snapshot(now_ts=now)
        assert snap == by_single.snapshot(now_ts=now)
        ref = reference_load([rows], SHANGHAI, 3 * 86400, now=now)
        for window in ("day", "d30", "month"):
            for name in WINDOW_FIELDS:
                assert close(snap[window][name], ref[window][name]), (window, name)
        assert close(snap["month"]["projected_power_factor"], ref["projected_power_factor"])
        assert snap["consumption"].keys() == ref["consumption"].keys()
        assert_hourly_match(snap["hourly_kw"], ref["hourly_kw"])


def test_redelivered_and_overlapping_blocks_are_idempotent() -> None:
    day = block(kwh=[round(0.01 * i, 2) for i in range(96)], kvarh=[0.1] * 96)
    state = LoadState(SHANGHAI)
    (first,) = apply_blocks(state, [day])
    once = state.to_bytes()
    assert first == ["applied"] * 96
    (again,) = apply_blocks(state, [day])  # redelivered whole (a retried collection)
    assert again == ["duplicate"] * 96 and state.to_bytes() == once
    # re-sent from 12:00 to 12:00 the next day with other values: the first half is duplicates
    shifted = block(start="2026-03-09T12:00:00+08:00", kwh=[9.0] * 96)
    (overlap,) = apply_blocks(state, [shifted])
    assert overlap == ["duplicate"] * 48 + ["applied"] * 48
    snap = state.snapshot(now_ts=state.data_end)
    assert snap["d30"]["kwh"] == pytest.approx(sum(0.01 * i for i in range(96)) + 48 * 9.0)
    assert snap["d30"]["intervals"] == 144
    (replay,) = apply_blocks(state, [shifted])
    assert replay == ["duplicate"] * 96


def test_apply_block_takes_the_intervals_it_is_given() -> None:
    state = LoadState(SHANGHAI)
    b = decode_block(block(kwh=[1.0, None, 2.0, 3.0]))
    result = state.apply_block(b.meter_id, b.start_s, b.interval_s, b.kwh, indices=[0, 3])
    assert result.statuses == ["applied", "applied"]
    assert state.snapshot()["day"]["kwh"] == 4.0 and state.snapshot()["day"]["intervals"] == 2
