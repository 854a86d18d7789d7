"""`gridpulse inspection explain` (gridpulse/explain.py) on what the stage writes: the area's
stats.area document and members' series (the Redis snapshot's fields), the customer's stats and
the alerts.inspection messages of a real AreaState with a thief and a holiday customer. The
score's parts recomputed from the published figures equal the stage's own (inspection.suspects
on the AreaState), and the explanation says what it lacks when the series is not there. Also
`gridpulse alerts list`'s line and the CLI's new commands."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from alerts.credit_rules import CreditTiming, CustomerAlerts
from gridpulse.cli import build_parser, format_alert_line
from gridpulse.explain import build_suspect_explanation, format_suspect_explanation
from inspection.area import AreaState
from inspection.rules import HIGH_LOSS, InspectionThresholds, evaluate_area
from inspection.suspects import rank_area
from metering.load import DEFAULT_TZ
from schemas.area_snapshot import customer_days_value, parse_customer_days

FIRST = date(2027, 1, 1)
DAYS = 35
THEFT_FROM = 26  # c1's meter counts 30 % from this day on
HOLIDAY = range(29, 33)  # c3 away: 10 % of its use, the loss does not move


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=DEFAULT_TZ).timestamp())


def wire(doc: Any) -> Any:
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


@pytest.fixture(scope="module")
def area() -> AreaState:
    state = AreaState(DEFAULT_TZ)
    lo = midnight(FIRST)
    for c in ("c1", "c2", "c3", "c4"):
        state.join(c, lo)
    for k in range(DAYS):
        start = lo + k * 86400
        true = {
            "c1": 0.50 + 0.01 * (k % 3),
            "c2": 0.30 + 0.005 * (k % 4),
            "c3": (0.40 if k not in HOLIDAY else 0.04) + 0.01 * (k % 2),
            "c4": 0.25,
        }
        state.apply_supply(start, [round(sum(true.values()) * (1.03 + 0.002 * (k % 5)), 4)] * 96)
        for c, kwh in true.items():
            metered = round(kwh * 0.3, 4) if c == "c1" and k >= THEFT_FROM else kwh
            state.apply_customer(c, f"m-{c}", start, [metered] * 96)
    return state


@pytest.fixture(scope="module")
def published(area: AreaState) -> dict[str, Any]:
    """What the stage published and wrote: the area's document, its snapshot's members' series,
    the area alert (suspects ranked with c1's tamper flag) and c1's own alert."""
    doc = wire(area.stats_document("A1"))
    days = area.days()
    suspects = rank_area(area.customer_days(), days, {"c1": ["tamper_flag"]}, {"c1": "M1", "c3": "M3"})
    held, timing = CustomerAlerts(), CreditTiming()
    now = float(midnight(FIRST + timedelta(days=DAYS)) + 3600)
    messages: list[dict[str, Any]] = []
    for at in (now, now + timing.open_hold_s + 1):
        messages += evaluate_area(
            "A1", days, suspects, held, at, ts=doc["ts"], thresholds=InspectionThresholds(), timing=timing
        ).messages
    tamper = {
        "alert_id": "inspection:c1:tamper_flag",
        "kind": "inspection",
        "severity": "major",
        "status": "open",
        "ts": doc["ts"],
        "reason": "meter m-c1 reported magnetic",
        "evidence": {"meter_id": "m-c1", "codes": ["magnetic"]},
        "scope": "customer",
        "customer_id": "c1",
        "rule": "tamper_flag",
        "manager_id": "M1",
        "flapping": False,
    }
    return {
        "doc": doc,
        "customer_days": parse_customer_days(customer_days_value(area.customer_days())),
        "alerts": [wire(m) for m in messages] + [tamper],
        "suspects": suspects,
    }


PROFILE = {"transformer_area": "A1", "manager_id": "M1", "importance": "none", "tariff_class": "residential"}


def test_the_thief_is_explained_with_the_stages_own_score(area: AreaState, published: dict[str, Any]) -> None:
    e = build_suspect_explanation(
        "c1", PROFILE, published["doc"], published["customer_days"], None, published["alerts"]
    )
    stage = {s.customer_id: s for s in published["suspects"]}
    assert (e["rank"], e["members"]) == (1, 4)
    # the parts from the published figures are the stage's, from the AreaState itself
    assert e["score"] == {
        "score": stage["c1"].score,
        "reasons": list(stage["c1"].reasons),
        "parts": stage["c1"].evidence,
    }
    assert "negative_loss_correlation" in e["score"]["reasons"] and "tamper_flag" in e["score"]["reasons"]
    # its daily kWh beside the area's daily loss, day by day
    assert len(e["series"]) == 30
    own = {d.date.isoformat(): d.kwh for d in area.customer_days()["c1"]}
    loss = {d.date.isoformat(): d.loss_kwh_net for d in area.days()}
    for row in e["series"]:
        assert row["customer_kwh"] == own[row["date"]]
        assert row["area_loss_kwh"] == pytest.approx(loss[row["date"]], abs=1e-9)
    assert e["listed_in"][0]["rule"] == HIGH_LOSS and e["listed_in"][0]["position"] == 1
    assert [a["rule"] for a in e["own_alerts"]] == ["tamper_flag"]
    text = format_suspect_explanation(e)
    assert "rank 1 of 4" in text and "correlation with the area's loss" in text
    assert f"listed #1 in inspection:A1:{HIGH_LOSS}" in text


def test_the_holiday_customer_is_explained_below_the_thief(published: dict[str, Any]) -> None:
    profile = {**PROFILE, "manager_id": "M3"}
    e = build_suspect_explanation(
        "c3", profile, published["doc"], published["customer_days"], None, published["alerts"]
    )
    stage = {s.customer_id: s for s in published["suspects"]}
    assert e["rank"] > 1 and e["score"]["score"] == stage["c3"].score < stage["c1"].score
    assert e["own_alerts"] == []


def test_without_the_members_series_the_explanation_says_what_it_lacks(published: dict[str, Any]) -> None:
    stats = {
        "ts": "t",
        "day": {"date": "2027-02-04", "kwh": 3.6},
        "d30": {"from": "a", "to": "b", "kwh": 99.0},
    }
    e = build_suspect_explanation("c1", PROFILE, published["doc"], None, stats, published["alerts"])
    assert e["score"] is None and e["rank"] is None
    assert len(e["series"]) == 30 and all(row["customer_kwh"] is None for row in e["series"])
    assert e["listed_in"][0]["suspect"]["customer_id"] == "c1"  # the stage's parts, from the alert
    assert e["consumption"]["day"] == {"date": "2027-02-04", "kwh": 3.6}
    assert any("customer_days" in note for note in e["notes"])
    assert "note:" in format_suspect_explanation(e)


def test_a_customer_without_an_area_or_its_figures() -> None:
    e = build_suspect_explanation("c9", {"transformer_area": None, "manager_id": None}, None, None, None, [])
    assert e["area"] is None and e["notes"] == ["the customer's profile names no transformer area"]
    e = build_suspect_explanation("c9", {"transformer_area": "A9", "manager_id": None}, None, None, None, [])
    assert e["notes"][0].startswith("no stats.area of area A9")
    format_suspect_explanation(e)


def test_an_alert_line_names_ids_state_and_suspects() -> None:
    row = {
        "alert_id": "inspection:A1:area_high_loss",
        "status": "open",
        "severity": "major",
        "manager_ids": ["M1", "M3"],
        "reason": "line loss 15.0 %",
        "last_ts": datetime(2027, 2, 5, 1, tzinfo=UTC),
        "acknowledged_at": datetime(2027, 2, 5, 2, tzinfo=UTC),
        "acknowledged_severity": "major",
        "payload": {
            "suspects": [{"customer_id": "c1", "score": 0.8123}, {"customer_id": "c3", "score": 0.1}]
        },
    }
    line = format_alert_line(row)
    assert line.startswith("2027-02-05T01:00:00+00:00  open/major ack")
    assert "[M1,M3]" in line and line.endswith("suspects: c1 0.81, c3 0.10")
    assert "ack" not in format_alert_line({**row, "acknowledged_severity": "minor"}).split("  ")[1]


def test_the_cli_has_alerts_list_and_inspection_explain() -> None:
    parser = build_parser()
    args = parser.parse_args(["alerts", "list", "--customer", "c1", "--kind", "inspection", "--all"])
    assert (args.customer, args.kind, args.all, args.manager, args.area) == (
        "c1",
        "inspection",
        True,
        None,
        None,
    )
    args = parser.parse_args(["inspection", "explain", "c1", "--json"])
    assert args.customer_id == "c1" and args.json
    with pytest.raises(SystemExit):
        parser.parse_args(["alerts", "list", "--kind", "weather"])


class FakeRedis:
    """The two calls explain makes, on a dict of hashes (bytes, as redis-py returns them)."""

    def __init__(self, hashes: dict[str, dict[bytes, bytes]]) -> None:
        self.hashes = hashes
        self.closed = False

    async def hgetall(self, key: str) -> dict[bytes, bytes]:
        return self.hashes.get(key, {})

    async def hget(self, key: str, field: str) -> bytes | None:
        return self.hashes.get(key, {}).get(field.encode())

    async def aclose(self) -> None:
        self.closed = True


def test_explain_suspect_reads_the_keys_the_stage_writes(
    area: AreaState, published: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sources' plumbing (the Redis keys with the topic prefix, bytes fields, the topics
    read), on stand-ins for Redis and Kafka: the real ones are tests/integration's."""
    import asyncio

    import redis.asyncio

    import gridpulse.explain as explain
    from gridpulse.settings import Settings
    from schemas.area_snapshot import area_key

    settings = Settings(topic_prefix="p.")
    fake = FakeRedis(
        {
            area_key("p.", "A1"): {
                b"doc": orjson.dumps(published["doc"]),
                b"customer_days": customer_days_value(area.customer_days()),
            },
            "p.gp:stats:c1": {b"doc": orjson.dumps({"ts": "t", "day": {"date": "d", "kwh": 1.5}, "d30": {}})},
        }
    )
    topics_read: list[str] = []

    async def read_latest(s: Settings, topic: str, key_field: str) -> dict[str, dict[str, Any]]:
        topics_read.append(topic)
        if topic == "customers":
            return {"c1": {**PROFILE, "customer_id": "c1", "name": "a secret name"}}
        if topic == "alerts.inspection":
            return {a["alert_id"]: a for a in published["alerts"]}
        return {}

    monkeypatch.setattr(redis.asyncio, "from_url", lambda *a, **kw: fake)
    monkeypatch.setattr(explain, "read_latest", read_latest)
    e = asyncio.run(explain.explain_suspect(settings, "c1"))
    assert (e["rank"], e["consumption"]["day"]["kwh"]) == (1, 1.5) and fake.closed
    assert topics_read == ["customers", "alerts.inspection"]  # the snapshot had the area's doc
    assert "secret" not in orjson.dumps(e).decode()
    del fake.hashes[area_key("p.", "A1")]
    e = asyncio.run(explain.explain_suspect(settings, "c1"))
    assert topics_read[2:] == ["customers", "stats.area", "alerts.inspection"] and e["area"] is None
    with pytest.raises(KeyError):
        asyncio.run(explain.explain_suspect(settings, "c404"))
