"""The inspection stage in the worker (streams/agents/areas.py), run by faust with tables in memory:
the readings agent's repartition by transformer area, the customers agent's membership, the area
agents (``area.readings`` and the internal ``<app_id>-area-energy``) and what they publish, against
an ``AreaState`` fed directly with the same readings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from inspection.area import AreaState
from inspection.rules import TamperSeen
from schemas.models import InspectionAlert, StatsArea
from schemas.topics import ALERTS_INSPECTION, AREA_READINGS, CUSTOMERS, METER_READINGS, STATS_AREA
from streams.agents.areas import (
    AREA_BATCH_WITHIN_S,
    AREA_SETTLE_S,
    HOLD_S,
    EnergyOut,
    area_at,
    held_energy,
    held_merge,
    in_data_order,
    moved_areas,
)
from streams.app import area_energy_topic
from streams.ownership import partition_of
from tests.unit.area_population import YEAR_END, approx_doc, latest_stats, population, reference
from tests.unit.worker_harness import WorkerUnderTest, js, reading, worker_under_test

# Every instant of these tests derives from this one "now", never from the wall clock: 01:00 on
# 1 March 2024 in the worker's zone (the settings' default), so the quarter hours before it span a
# day's, a month's end and the day before is a leap day; in the past, as the agents refuse
# readings from the future. The stage's rules take it as ``now`` (or ``stage.clock``).
NOW = datetime(2024, 3, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


def quarter_hours_ago(n: int) -> datetime:
    """The end of the 15-minute interval ``n`` quarter hours before ``NOW`` (UTC)."""
    return (NOW - timedelta(seconds=n * 900)).astimezone(UTC)


pytestmark = pytest.mark.timeout(60)


def profile(cid: str, area: str | None, **extra: Any) -> dict[str, Any]:
    return {"customer_id": cid, "transformer_area": area, "manager_id": f"mgr-{cid}", **extra}


def supply(area: str, end: datetime, kwh: float) -> dict[str, Any]:
    return {
        "meter_id": f"SUM-{area}",
        "transformer_area": area,
        "ts": end.isoformat(),
        "interval_s": 900,
        "kwh": kwh,
    }


def block(
    key_field: str, key: str, meter: str, first_start: int, kwh: list[Any], **extra: Any
) -> dict[str, Any]:
    return {
        "meter_id": meter,
        key_field: key,
        "start": datetime.fromtimestamp(first_start).astimezone().isoformat(),
        "interval_s": 900,
        "kwh": kwh,
        **extra,
    }


def energy_sent(w: WorkerUnderTest) -> list[tuple[bytes, dict[str, Any], int]]:
    name = area_energy_topic(w.settings)
    return [
        (s.key, orjson.loads(s.value), s.partition)
        for s in w.producer.sent
        if s.topic == name and s.key and s.value
    ]


def stats_area(w: WorkerUnderTest) -> list[dict[str, Any]]:
    docs = [orjson.loads(s.value) for s in w.sent_to(STATS_AREA) if s.value is not None]
    for doc in docs:
        StatsArea.model_validate(doc)  # the contract's document
    return docs


def alerts(w: WorkerUnderTest) -> list[dict[str, Any]]:
    out = [orjson.loads(s.value) for s in w.sent_to(ALERTS_INSPECTION) if s.value is not None]
    for alert in out:
        InspectionAlert.model_validate(alert)
    return out


async def forward_energy(w: WorkerUnderTest, skip: int = 0) -> int:
    """What the readings and customers agents sent to the repartition topic, put on the area
    agent's stream (in the partition the key's murmur2 gives); returns how many were sent."""
    sent = energy_sent(w)
    async with w.agent("area_energy").test_context() as ctx:
        for key, value, partition in sent[skip:]:
            await w.put(ctx, key, orjson.dumps(value), partition=partition)
    return len(sent)


async def test_a_batch_of_readings_sends_one_message_per_customer_keyed_by_its_area(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, [(b"c1", js(profile("c1", "TA1"))), (b"c2", js(profile("c2", "TA2")))])
        joins = energy_sent(w)
        assert [(k, v["k"], v["c"], v["s"]) for k, v, _ in joins] == [
            (b"TA1", "j", "c1", 0),
            (b"TA2", "j", "c2", 0),
        ]
        assert joins[0][1]["f"] == ["none", "other", "mgr-c1"]  # what the customer rules read, no name

        messages = [
            (cid.encode(), js(reading(cid, quarter_hours_ago(n), kwh, quality=q)))
            for n in range(8, 0, -1)
            for cid, kwh, q in (("c1", 2.0, []), ("c2", 3.5, ["tamper"] if n == 3 else []))
        ]
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, messages)
            await w.put(ctx, *messages[0])  # a redelivered reading: sent again (the area dedups)

        batches = w.rt.counters["readings_batches"]
        energy = [(k, v, p) for k, v, p in energy_sent(w) if v["k"] == "e"]
        # one per customer and batch, not per reading (17 readings)
        for cid in ("c1", "c2"):
            assert 1 <= sum(1 for _, v, _ in energy if v["c"] == cid) <= batches
        assert len(energy) <= 2 * batches < 17
        for key, _value, partition in energy:
            assert partition == partition_of(key.decode(), 4)  # keyed by area: the area's owner
        c1 = [v for k, v, _ in energy if v["c"] == "c1"]
        assert all(k == b"TA1" for k, v, _ in energy if v["c"] == "c1")
        intervals = {
            (m, start + i * step)
            for v in c1[:-1]
            for m, start, step, kwh in v["m"]
            for i, x in enumerate(kwh)
            if x is not None
        }
        assert len(intervals) == 8 and {m for m, _ in intervals} == {"M-c1"}
        ((meter, start, _, kwh),) = c1[-1]["m"]
        assert meter == "M-c1"  # the duplicate resent
        assert kwh == [2.0] and start == int(quarter_hours_ago(8).timestamp()) - 900
        tamper = [v["t"] for _, v, _ in energy if v["c"] == "c2" and "t" in v]
        assert tamper == [["M-c2", int(quarter_hours_ago(3).timestamp()), ["tamper"]]]


async def test_the_area_agents_compute_the_figures_of_an_area_state_fed_directly(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, [(c.encode(), js(profile(c, "TA1"))) for c in ("c1", "c2", "c3")])
        ref = AreaState(tz=w.rt.tz, lateness_s=w.settings.lateness_s)
        for c in ("c1", "c2", "c3"):
            ref.join(c, 0)
        readings = []
        for n in range(12, 0, -1):
            end = quarter_hours_ago(n)
            start = int(end.timestamp()) - 900
            for c, kwh in (("c1", 1.0 + n / 10), ("c2", 0.5), ("c3", 2.25)):
                if c == "c3" and n == 5:
                    continue  # a missing interval
                readings.append((c.encode(), js(reading(c, end, kwh))))
                ref.apply_customer(c, f"M-{c}", start, [kwh])
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, readings[:20])
            await w.put_many(ctx, readings[20:])
        await forward_energy(w)
        # the summary meter: singles and a block, with a duplicate and a bad value
        first = int(quarter_hours_ago(12).timestamp()) - 900
        kwh = [4.5 + i / 100 for i in range(12)]
        sums = [(b"TA1", js(supply("TA1", quarter_hours_ago(n), kwh[12 - n]))) for n in (12, 11, 10)]
        sums.append(
            (b"TA1", js(block("transformer_area", "TA1", "SUM-TA1", first + 3 * 900, [*kwh[3:11], -1.0])))
        )
        sums.append(sums[0])
        async with w.agent("area_readings").test_context() as ctx:
            await w.put_many(ctx, sums)
        ref.apply_supply(first, kwh[:11])

        assert [d["error"] for d in w.dead_letters(AREA_READINGS)] == ["negative_energy"]
        assert w.dead_letters(AREA_READINGS)[0]["interval_index"] == 8
        docs = stats_area(w)
        assert docs and all(s.key == b"TA1" for s in w.sent_to(STATS_AREA))
        want = ref.stats_document("TA1")
        assert docs[-1] == orjson.loads(orjson.dumps(want))
        assert docs[-1]["d30"]["customers"] == 3
        # the table holds the same state (what a restarted worker reads back)
        raw = w.worker.areas.table[b"TA1"]
        w.worker.areas.areas.clear()
        assert w.worker.areas.area("TA1").state.stats_document("TA1") == want
        assert raw == w.worker.areas.area("TA1").to_bytes()
        # the energy again (a replay after a crash): the figures do not move
        sent = await forward_energy(w)
        assert sent == len(energy_sent(w))
        assert stats_area(w)[-1] == docs[-1]


async def test_bad_area_readings_go_to_their_dlq_with_context(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        good = supply("TA1", quarter_hours_ago(1), 3.0)
        bad = [
            (b"TA1", b"not json"),
            (b"TA2", js(good)),  # key is another area
            (b"TA1", js({**good, "kwh": -2.0})),
            (b"TA1", js({k: v for k, v in good.items() if k != "transformer_area"})),
        ]
        async with w.agent("area_readings").test_context() as ctx:
            await w.put_many(ctx, [*bad, (b"TA1", js(good))])
        dead = w.dead_letters(AREA_READINGS)
        assert [d["error"] for d in dead][:2] == ["decode", "key_mismatch"]
        assert len(dead) == 4 and {d["offset"] for d in dead} == {0, 1, 2, 3}
        assert base64.b64decode(dead[1]["raw"]) == js(good)
        assert dead[0]["topic"] == w.settings.topic(AREA_READINGS)
        assert stats_area(w)[-1]["day"]["supplied_kwh"] == pytest.approx(3.0)


async def test_a_customer_moving_counts_in_the_new_area_from_the_move_and_loses_nothing(
    tmp_path: Path,
) -> None:
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(profile("c1", "TA1")))
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, [(b"c1", js(reading("c1", quarter_hours_ago(n), 1.0))) for n in (10, 9, 8)])
        newest = int(quarter_hours_ago(8).timestamp()) - 900  # the newest interval already sent to TA1
        async with w.agent("customers").test_context() as ctx:
            # a change stamped before it: it takes effect after what TA1 already counted
            await w.put_many(ctx, [(b"c1", js(profile("c1", "TA2")))], timestamp=newest - 3600)
        history = w.rt.area_history("c1")
        assert history == (("TA1", 0), ("TA2", newest + 1))
        moved_after = newest
        async with w.agent("readings").test_context() as ctx:
            # newer intervals, and a late one of before the move
            await w.put_many(ctx, [(b"c1", js(reading("c1", quarter_hours_ago(n), 2.0))) for n in (2, 1, 11)])
        sent = energy_sent(w)
        membership = [(k, v["k"]) for k, v, _ in sent if v["k"] != "e"]
        assert membership == [(b"TA1", "j"), (b"TA1", "l"), (b"TA2", "j")]
        routed = {
            (k, start + i * 900): x
            for k, v, _ in sent
            if v["k"] == "e"
            for _, start, _, kwh in v["m"]
            for i, x in enumerate(kwh)
            if x is not None
        }
        late = int(quarter_hours_ago(11).timestamp()) - 900
        assert routed[(b"TA1", late)] == 2.0  # before the move: to the old area
        assert {k for (k, s) in routed if s > moved_after} == {b"TA2"}
        await forward_energy(w)
        areas = w.worker.areas
        ta1, ta2 = areas.area("TA1").state, areas.area("TA2").state
        assert ta1.is_member("c1", moved_after) and not ta1.is_member("c1", history[1][1])
        assert ta2.is_member("c1", history[1][1]) and not ta2.is_member("c1", moved_after)
        total = sum(d.consumed_kwh for d in ta1.days()) + sum(d.consumed_kwh for d in ta2.days())
        assert w.rt.counters["area_energy_applied"] == 6  # nothing refused (not_member), nothing lost
        assert total == 0.0  # no summary meter yet: consumed counts only covered intervals
        kwh1 = sum(s.kwh for days in ta1.customer_days().values() for s in days)
        kwh2 = sum(s.kwh for days in ta2.customer_days().values() for s in days)
        assert (kwh1, kwh2) == (pytest.approx(5.0), pytest.approx(4.0))


async def test_energy_read_before_the_customer_s_profile_is_held_and_sent_after_its_join(
    tmp_path: Path,
) -> None:
    """``customers`` and ``meter.readings`` are read in no order between them: a new customer's
    readings (or a backlog at a fresh start) may come before its first profile. Their energy is
    held (changelogged table) and sent to the area the first profile names, after its join; a
    customer whose profile names no area is counted, not held."""
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c2", js(profile("c2", None)))
        first = [(b"c1", js(reading("c1", quarter_hours_ago(n), 1.5))) for n in (6, 5, 4)]
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, first)
            await w.put(ctx, *first[0])  # redelivered before the profile: held once
            await w.put(ctx, b"c2", js(reading("c2", quarter_hours_ago(4), 9.0)))
        assert energy_sent(w) == []  # nothing routed: c1 has no area yet, c2 none at all
        assert w.rt.counters["area_energy_held"] == 3
        assert w.rt.counters["area_energy_no_area"] == 1  # c2's
        assert w.rt.held_energy_table.get(b"c1") is not None
        assert w.rt.held_energy_table.get(b"c2") is None

        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(profile("c1", "TA1")))
        sent = [(k, v["k"], v["c"]) for k, v, _ in energy_sent(w)]
        assert sent == [(b"TA1", "j", "c1"), (b"TA1", "e", "c1")]  # the join first, then its energy
        ((meter, start, step, kwh),) = energy_sent(w)[1][1]["m"]
        assert (meter, step, kwh) == ("M-c1", 900, [1.5, 1.5, 1.5])
        assert start == int(quarter_hours_ago(6).timestamp()) - 900
        assert w.rt.counters["area_energy_released"] == 3
        assert w.rt.held_energy_table.get(b"c1") is None  # delivered, then deleted

        async with w.agent("readings").test_context() as ctx:  # from now on: routed directly
            await w.put(ctx, b"c1", js(reading("c1", quarter_hours_ago(3), 1.5)))
        await forward_energy(w)
        area = w.worker.areas.area("TA1").state
        assert w.rt.counters["area_energy_applied"] == 4  # every interval, once; nothing refused
        assert sum(s.kwh for days in area.customer_days().values() for s in days) == pytest.approx(6.0)
        assert w.rt.counters["area_energy_held"] == 3  # the later reading was not held


def test_held_energy_keeps_first_values_and_the_last_seven_days() -> None:
    t0 = 1_700_000_100
    a = EnergyOut()
    a.add("M1", t0, 900, 1.0)
    a.add("M1", t0 + 900, 900, 2.0, quality=["tamper"])
    record, added, dropped = held_merge(None, a)
    assert (added, dropped) == (2, 0)
    b = EnergyOut()
    b.add("M1", t0, 900, 7.0)  # a redelivery with another value: the first one counts
    b.add("M2", t0 + HOLD_S + 900, 900, 3.0)  # a week after: t0 falls out, t0 + 900 stays
    record, added, dropped = held_merge(record, b)
    assert (added, dropped) == (1, 1)
    out = held_energy(record)
    assert out.meters == {"M1": {t0 + 900: (900, 2.0)}, "M2": {t0 + HOLD_S + 900: (900, 3.0)}}
    assert out.tamper == TamperSeen("M1", t0 + 1800, ("tamper",))
    assert held_energy(None).meters == {} and held_energy(b"").tamper is None


def test_an_area_batch_is_applied_membership_first_then_oldest_energy_first() -> None:
    t0 = 1_700_006_400

    def e(cid: str, day: int, kwh: float = 1.0) -> tuple[Any, tuple[str, Any]]:
        return (
            f"{cid}@{day}",
            ("e", {"k": "e", "c": cid, "m": [["M-" + cid, t0 + day * 86400, 900, [kwh]]]}),
        )

    join = ("j-c3", ("j", {"k": "j", "c": "c3", "s": 0}))
    tamper_only = ("t-c4", ("e", {"k": "e", "c": "c4", "m": [], "t": ["M-c4", t0 + 86400 + 900, ["tamper"]]}))
    # one partition's customer c1 days ahead of c2's (a fetch of a backlog); c1 re-sends day 4
    items = [e("c1", 4), e("c1", 5), e("c1", 4, 9.0), join, e("c2", 1), tamper_only, e("c2", 2), e("c2", 0)]
    order = [event for event, _ in in_data_order(items)]
    assert order == ["j-c3", "c2@1", "t-c4", "c2@2", "c2@0", "c1@4", "c1@5", "c1@4"]
    # each customer's messages keep their arrival order (the first value of an interval wins)
    for cid in ("c1", "c2"):
        assert [o for o in order if o.startswith(cid)] == [ev for ev, _ in items if ev.startswith(cid)]

    state = AreaState(ZoneInfo("Asia/Shanghai"), lateness_s=2 * 86400)
    for cid in ("c1", "c2"):
        state.join(cid, 0)
    statuses = []
    for _, (kind, body) in in_data_order(items):
        for meter, start, step, kwh in body["m"] if kind == "e" else []:
            statuses += state.apply_customer(body["c"], meter, start, kwh, step).statuses
    assert "late" not in statuses  # in arrival order, c2's days 0-2 are behind c1's day 5 by > 48 h
    late = []
    arrival = AreaState(ZoneInfo("Asia/Shanghai"), lateness_s=2 * 86400)
    for cid in ("c1", "c2"):
        arrival.join(cid, 0)
    for _, (kind, body) in items:
        for meter, start, step, kwh in body["m"] if kind == "e" else []:
            late += arrival.apply_customer(body["c"], meter, start, kwh, step).statuses
    assert "late" in late


def test_area_history_routing() -> None:
    assert moved_areas((), "A", 100) == (("A", 0),)
    assert moved_areas((("A", 0),), "A", 100) is None
    assert moved_areas((("A", 0),), None, 100) is None
    assert moved_areas((("A", 0), ("B", 500)), "A", 100) == (("A", 0), ("B", 500), ("A", 500))
    areas = (("A", 0), ("B", 1000))
    assert [area_at(areas, t) for t in (0, 999, 1000, 5000)] == ["A", "A", "B", "B"]
    assert area_at((), 5) is None


async def test_a_high_loss_day_opens_one_alert_with_suspects_and_history_opens_none(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        tz = w.rt.tz
        today = NOW.astimezone(tz).date()
        day = today - timedelta(days=1)
        lo = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        n = (int(datetime(today.year, today.month, today.day, tzinfo=tz).timestamp()) - lo) // 900
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, [(c.encode(), js(profile(c, "TA1"))) for c in ("c1", "c2")])
        blocks = [
            (b"c1", js(block("customer_id", "c1", "M-c1", lo, [1.0] * n))),
            (b"c2", js(block("customer_id", "c2", "M-c2", lo, [0.5] * n))),
        ]
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, blocks)
        await forward_energy(w)
        async with w.agent("area_readings").test_context() as ctx:  # 30 % loss
            await w.put(ctx, b"TA1", js(block("transformer_area", "TA1", "SUM-TA1", lo, [1.5 / 0.7] * n)))
        doc = stats_area(w)[-1]["day"]
        assert doc["date"] == day.isoformat() and doc["complete"] is True
        assert doc["loss_rate"] == pytest.approx(0.3)
        assert stage.pending["TA1"] > 0  # to be judged once settled (the tick)

        now = NOW.timestamp()
        stage.evaluate("TA1", now)
        await w.producer.flush()
        (alert,) = alerts(w)
        assert alert["alert_id"] == "inspection:TA1:area_high_loss" and alert["severity"] == "critical"
        assert alert["status"] == "open" and alert["evidence"]["date"] == day.isoformat()
        assert [s["customer_id"] for s in alert["suspects"]] == ["c1", "c2"]  # no drop: a tie, by id
        assert alert["manager_ids"] == ["mgr-c1", "mgr-c2"]
        assert "name" not in orjson.dumps(alert).decode()
        stage.evaluate("TA1", now + 60)  # re-evaluated: nothing new
        await w.producer.flush()
        assert len(alerts(w)) == 1

        # a fresh stage (a restart without the read-back) judging the same data 10 days later:
        # history older than the horizon opens nothing
        stage.held.clear()
        stage.evaluate("TA1", now + 10 * 86400)
        await w.producer.flush()
        assert len(alerts(w)) == 1


async def complete_day_with_loss(w: WorkerUnderTest, loss_rate: float, days_ago: int = 1) -> str:
    """Two customers of TA1 and its summary meter over a whole local day ``days_ago`` days back,
    the summary meter ``loss_rate`` above their sum; the day's date."""
    tz = w.rt.tz
    day = NOW.astimezone(tz).date() - timedelta(days=days_ago)
    nxt = day + timedelta(days=1)
    lo = int(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
    n = (int(datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()) - lo) // 900
    async with w.agent("customers").test_context() as ctx:
        await w.put_many(ctx, [(c.encode(), js(profile(c, "TA1"))) for c in ("c1", "c2")])
    blocks = [
        (b"c1", js(block("customer_id", "c1", "M-c1", lo, [1.0] * n))),
        (b"c2", js(block("customer_id", "c2", "M-c2", lo, [0.5] * n))),
    ]
    async with w.agent("readings").test_context() as ctx:
        await w.put_many(ctx, blocks)
    await forward_energy(w)
    async with w.agent("area_readings").test_context() as ctx:
        await w.put(
            ctx, b"TA1", js(block("transformer_area", "TA1", "SUM-TA1", lo, [1.5 / (1 - loss_rate)] * n))
        )
    return day.isoformat()


async def test_the_tick_judges_an_area_once_it_has_settled(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        t0 = NOW.timestamp()
        stage.clock = lambda: t0
        stage.owns = lambda area: True  # type: ignore[method-assign]  # no consumer assignment here
        w.worker.app.tables.recovery.completed.set()  # type: ignore[attr-defined]
        await complete_day_with_loss(w, 0.15)
        assert stage.settle_s == pytest.approx(0.01 + AREA_SETTLE_S - AREA_BATCH_WITHIN_S)  # window + 5 s
        assert stage.pending == {"TA1": t0 + stage.settle_s}
        stage.clock = lambda: t0 + stage.settle_s - 1.0
        await stage.tick()
        await w.producer.flush()
        assert alerts(w) == []  # still settling: a backlog is judged at its end, once
        stage.clock = lambda: t0 + stage.settle_s
        await stage.tick()
        await w.producer.flush()
        (alert,) = alerts(w)
        assert (alert["rule"], alert["severity"], alert["status"]) == ("area_high_loss", "major", "open")
        assert stage.pending == {}
        assert stage.redis_days.backlog == 1  # customer_days for explain, waiting for Redis here
        # the recheck re-judges every owned area; nothing changed: nothing published
        stage.clock = lambda: t0 + 400.0
        await stage.tick()
        await w.producer.flush()
        assert len(alerts(w)) == 1


async def test_history_loaded_later_than_the_horizon_publishes_nothing(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        stage.owns = lambda area: True  # type: ignore[method-assign]
        w.worker.app.tables.recovery.completed.set()  # type: ignore[attr-defined]
        await complete_day_with_loss(w, 0.30, days_ago=9)  # older than the 7-day horizon
        stage.clock = lambda: NOW.timestamp() + 10.0
        await stage.tick()
        await w.producer.flush()
        assert stats_area(w)[-1]["day"]["loss_rate"] == pytest.approx(0.30)
        assert alerts(w) == []


async def test_energy_lost_in_a_crash_is_resent_by_the_replay(tmp_path: Path) -> None:
    """A crash after the readings' state reached the store but before their energy message was
    sent: the replayed readings are duplicates for LoadState, and are sent again."""
    async with worker_under_test(tmp_path) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("customers").test_context() as ctx:
            await w.put(ctx, b"c1", js(profile("c1", "TA1")))
        batch = [(b"c1", js(reading("c1", quarter_hours_ago(n), 1.5))) for n in (4, 3, 2)]
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, batch)
        lost = len(energy_sent(w))  # these never reach the area (the crash)
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, batch)  # the replay from the last committed offset
        assert w.rt.counters["readings_duplicate"] == 3
        joins = [(k, orjson.dumps(v), p) for k, v, p in energy_sent(w)[:1]]
        async with w.agent("area_energy").test_context() as ctx:
            for key, value, partition in joins:
                await w.put(ctx, key, value, partition=partition)
        await forward_energy(w, skip=lost)
        state = w.worker.areas.area("TA1").state
        assert sum(d.kwh for d in state.customer_days()["c1"]) == pytest.approx(4.5)
        assert w.rt.counters["area_energy_applied"] == 3


async def test_a_restarted_stage_that_read_its_alerts_back_publishes_nothing_again(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, credit_open_hold_s=0.0) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        await complete_day_with_loss(w, 0.25)
        now = NOW.timestamp()
        stage.evaluate("TA1", now)
        await w.producer.flush()
        (sent,) = w.sent_to(ALERTS_INSPECTION)
        # a restart: nothing held in memory, the alert read back from the compacted topic
        stage.held.clear()
        stage.ready.clear()
        stage.apply_record(sent.key, sent.value)
        stage.ready.set()
        stage.evaluate("TA1", now + 30)
        await w.producer.flush()
        assert len(w.sent_to(ALERTS_INSPECTION)) == 1
        # a tombstone: the alert is gone, and the next evaluation opens it again
        stage.apply_record(sent.key, None)
        assert "TA1" not in stage.held
        stage.evaluate("TA1", now + 60)
        await w.producer.flush()
        assert [orjson.loads(s.value or b"")["status"] for s in w.sent_to(ALERTS_INSPECTION)] == [
            "open",
            "open",
        ]


async def test_summary_meter_intervals_the_area_refuses_go_to_the_dlq(tmp_path: Path) -> None:
    async with worker_under_test(tmp_path, lateness_s=3600) as w:
        w.worker.areas.batch_within_s = 0.01
        async with w.agent("area_readings").test_context() as ctx:
            await w.put(ctx, b"TA1", js(supply("TA1", quarter_hours_ago(1), 3.0)))
            old = int(quarter_hours_ago(9).timestamp()) - 900  # 2 h behind the area's newest input
            await w.put(ctx, b"TA1", js(block("transformer_area", "TA1", "SUM-TA1", old, [1.0, 1.0])))
            await w.put(ctx, b"TA1", js(supply("TA1", quarter_hours_ago(1), 9.0)))  # a duplicate: first wins
        dead = w.dead_letters(AREA_READINGS)
        assert [(d["error"], d["interval_index"]) for d in dead] == [("late", 0), ("late", 1)]
        assert "3600 s" in dead[0]["detail"] and dead[0]["offset"] == 1
        assert w.rt.counters["area_supply_duplicate"] == 1
        assert stats_area(w)[-1]["day"]["supplied_kwh"] == pytest.approx(3.0)


@pytest.mark.timeout(300)
async def test_a_multi_day_backlog_summary_meters_first_loses_no_energy(tmp_path: Path) -> None:
    """The planned population (tests/unit/area_population.py) as one backlog of 12 days: every
    summary meter's blocks first through the area.readings agent, then all the customers'
    curves through the readings agent and the repartition. The summary meters run days ahead of
    the customers' energy; nothing is refused, and every area's ``stats.area`` equals the
    day-by-day reference."""
    async with worker_under_test(tmp_path) as w:
        stage = w.worker.areas
        stage.batch_within_s = 0.01
        sim, _plan, messages = population(w.settings.topic_prefix, YEAR_END)
        of = lambda t: [(m.key, m.value) for m in messages if m.topic == w.settings.topic(t)]  # noqa: E731
        async with w.agent("customers").test_context() as ctx:
            await w.put_many(ctx, of(CUSTOMERS))
        async with w.agent("area_readings").test_context() as ctx:
            await w.put_many(ctx, of(AREA_READINGS))
        async with w.agent("readings").test_context() as ctx:
            await w.put_many(ctx, of(METER_READINGS))
        await forward_energy(w)
        assert w.dead_letters(METER_READINGS) == []  # the reference counts every interval
        counters = w.rt.counters
        assert counters["area_energy_applied"] > 0 and counters["area_supply_applied"] > 0
        for side in ("energy", "supply"):
            assert counters[f"area_{side}_late"] == 0 and counters[f"area_{side}_not_member"] == 0
        assert w.dead_letters(AREA_READINGS) == []
        # the summary meters did run ahead: the areas' supply reached the run's end first
        supply_first = min(a.state.supply_mark or 0 for a in stage.areas.values())
        assert supply_first - w.settings.lateness_s > sim.start
        latest = latest_stats(w, STATS_AREA)
        refs = reference(sim, w.rt.tz, w.settings.lateness_s)
        assert latest.keys() == refs.keys()
        for area, ref in refs.items():
            assert latest[area] == approx_doc(orjson.loads(orjson.dumps(ref.stats_document(area)))), area
            assert stage.areas[area].state.customer_days() == ref.customer_days(), area


def test_a_batch_of_several_days_is_sent_oldest_day_first_across_customers() -> None:
    from inspection.rules import TamperSeen
    from streams.agents.areas import ENERGY_PIECE_S, EnergyOut, batch_energy_messages

    t0 = 1_790_000_100 // 900 * 900
    energies = []
    for cid in ("c1", "c2"):
        out = EnergyOut()
        for day in range(3):
            for j in range(4):
                out.add(f"M-{cid}", t0 + day * ENERGY_PIECE_S + j * 900, 900, 1.0)
        energies.append((cid, [("TA1", 0)], out))
    energies[1][2].tamper = TamperSeen("M-c2", t0 + ENERGY_PIECE_S + 900, ("tamper",))
    messages, no_area = batch_energy_messages(energies)
    assert no_area == 0 and {k for k, _ in messages} == {b"TA1"}
    bodies = [orjson.loads(v) for _, v in messages]
    order = [(b["c"], (b["m"][0][1] - t0) // ENERGY_PIECE_S) for b in bodies]
    assert order == [("c1", 0), ("c2", 0), ("c1", 1), ("c2", 1), ("c1", 2), ("c2", 2)]
    assert all(len(b["m"]) == 1 and b["m"][0][3] == [1.0] * 4 for b in bodies)
    assert [b.get("t") for b in bodies if b["c"] == "c2"] == [
        None,
        ["M-c2", t0 + ENERGY_PIECE_S + 900, ["tamper"]],
        None,
    ]
    # within a day: one message per customer, as before
    one = EnergyOut()
    for j in range(8):
        one.add("M-c1", t0 + j * 900, 900, 2.0)
    messages, _ = batch_energy_messages([("c1", [("TA1", 0)], one), ("c3", [("TA2", 0)], one)])
    assert [k for k, _ in messages] == [b"TA1", b"TA2"]
