"""The inspection topics' models (issue 13) agree with the code that writes the documents:
``stats.area`` is ``AreaState.stats_document`` field for field, ``alerts.inspection`` what
``inspection.rules`` publishes (area and customer alerts, with real suspects), and
``area.readings`` decodes in both forms by ``meter.readings``' rules with its own key."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from alerts.credit_rules import CreditTiming, CustomerAlerts
from inspection.area import AreaState, CustomerDay
from inspection.rules import (
    HIGH_LOSS,
    TAMPER_FLAG,
    CustomerInputs,
    InspectionThresholds,
    TamperSeen,
    evaluate_area,
    evaluate_customer,
)
from inspection.suspects import rank_area
from metering.load import DEFAULT_TZ
from schemas.area_snapshot import area_key, customer_days_value, parse_customer_days
from schemas.blocks import ReadingBlock, decode_area_reading, decode_reading
from schemas.codec import DecodeError, encode
from schemas.models import AreaReading, InspectionAlert, StatsArea
from schemas.validation import check_block, check_reading

FIRST = date(2027, 1, 1)
DAYS = 35
THEFT_FROM = 28  # the thief's meter counts 30 % from this day on


def midnight(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=DEFAULT_TZ).timestamp())


def wire(doc: dict[str, Any]) -> dict[str, Any]:
    """The document as a consumer reads it off the topic."""
    return orjson.loads(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))


def json_keys(model: type[BaseModel]) -> set[str]:
    return {f.serialization_alias or name for name, f in model.model_fields.items()}


@pytest.fixture(scope="module")
def area() -> AreaState:
    """Four customers over 35 days, the summary meter 4 % above their true use; c1 steals 70 %
    of its load from day 28; c4 misses a few intervals every day (estimate of missing ones)."""
    state = AreaState(DEFAULT_TZ)
    lo = midnight(FIRST)
    for c in ("c1", "c2", "c3", "c4"):
        state.join(c, lo)
    for k in range(DAYS):
        start = lo + k * 86400
        true = {"c1": 0.50 + 0.01 * (k % 3), "c2": 0.30, "c3": 0.20 + 0.02 * (k % 2), "c4": 0.25}
        state.apply_supply(start, [round(sum(true.values()) * 1.04, 4)] * 96)
        for c, kwh in true.items():
            metered = round(kwh * 0.3, 4) if c == "c1" and k >= THEFT_FROM else kwh
            values: list[float | None] = [metered] * 96
            if c == "c4":
                values[10] = values[50] = None
            state.apply_customer(c, f"m-{c}", start, values)
    return state


def test_stats_area_is_the_document_area_state_writes(area: AreaState) -> None:
    doc = wire(area.stats_document("A1"))
    model = StatsArea.model_validate(doc)  # extra="forbid": no field the model does not know
    # and no field of the model the document lacks: the two agree key for key
    assert set(doc) == json_keys(StatsArea)
    assert set(doc["day"]) == json_keys(type(model.day))
    assert set(doc["d30"]) == json_keys(type(model.d30))
    assert all(set(d) == json_keys(type(model.daily[0])) for d in doc["daily"])
    assert len(model.daily) == 30 and model.daily[-1].date == model.day.date
    assert model.day.estimated_missing_kwh is not None and model.day.estimated_missing_kwh > 0
    assert orjson.loads(encode(model)) == doc  # written back, the same JSON


def test_stats_area_of_a_day_without_supply_has_null_rates() -> None:
    state = AreaState(DEFAULT_TZ)
    lo = midnight(FIRST)
    state.join("c1", lo)
    state.apply_customer("c1", "m1", lo, [0.5] * 4)
    model = StatsArea.model_validate(wire(state.stats_document("A2")))
    assert model.day.loss_rate is None and model.day.coverage is None and not model.day.complete


def area_alerts(area: AreaState) -> list[dict[str, Any]]:
    days = area.days(count=DAYS)
    suspects = rank_area(
        area.customer_days(count=DAYS), days, {"c1": ["tamper_flag"]}, {"c1": "M1", "c2": "M2"}
    )
    assert suspects[0].customer_id == "c1"
    held, t, timing = CustomerAlerts(), InspectionThresholds(), CreditTiming()
    now = float(midnight(FIRST + timedelta(days=DAYS)) + 3600)
    out: list[dict[str, Any]] = []
    for at in (now, now + timing.open_hold_s + 1):
        out += evaluate_area(
            "A1", days, suspects, held, at, ts=area.stats_document("A1")["ts"], thresholds=t, timing=timing
        ).messages
    return out


def test_area_alerts_from_the_rules_are_inspection_alerts(area: AreaState) -> None:
    messages = area_alerts(area)
    assert HIGH_LOSS in {m["rule"] for m in messages}
    for message in messages:
        doc = wire(message)
        alert = InspectionAlert.model_validate(doc)
        assert set(doc) <= json_keys(InspectionAlert)
        assert alert.scope == "transformer_area" and alert.transformer_area == "A1"
        assert alert.customer_id is None and alert.manager_id is None
        if alert.rule == HIGH_LOSS:
            assert alert.suspects[0].customer_id == "c1" and 0 <= alert.suspects[0].score <= 1
            assert alert.manager_ids == ["M1", "M2"]
            assert "correlation" in alert.suspects[0].evidence


def test_customer_alerts_from_the_rules_are_inspection_alerts(area: AreaState) -> None:
    now = float(midnight(FIRST + timedelta(days=DAYS)) + 3600)
    held, timing = CustomerAlerts(), CreditTiming()
    inputs = CustomerInputs(
        days=area.customer_days(count=DAYS)["c1"],
        meters={"m-c1": int(now) - 3600},
        tamper=TamperSeen("m-c1", int(now) - 7200, ("cover_open",)),
        manager_id="M1",
    )
    messages: list[dict[str, Any]] = []
    for at in (now, now + timing.open_hold_s + 1):
        messages += evaluate_customer(
            "c1",
            inputs,
            area.days(count=DAYS),
            [int(now) - 900] * 3,
            int(now) - 900,
            held,
            at,
            ts="2027-02-05T01:00:00+08:00",
            thresholds=InspectionThresholds(),
            timing=timing,
        ).messages
    assert TAMPER_FLAG in {m["rule"] for m in messages}
    for message in messages:
        doc = wire(message)
        alert = InspectionAlert.model_validate(doc)
        assert set(doc) <= json_keys(InspectionAlert)
        assert (alert.scope, alert.customer_id, alert.manager_id) == ("customer", "c1", "M1")
        assert alert.suspects == [] and alert.transformer_area is None


def test_an_inspection_alert_names_its_scope() -> None:
    base = {
        "alert_id": "inspection:A1:area_high_loss",
        "severity": "major",
        "status": "open",
        "ts": "2027-02-05T01:00:00+08:00",
        "reason": "r",
        "evidence": {"dates": ["2027-02-04"], "nested": {"a": [1, None]}},
        "rule": "area_high_loss",
    }
    assert InspectionAlert.model_validate({**base, "scope": "transformer_area", "transformer_area": "A1"})
    # a customer alert may name the area it was judged in (the stage does)
    own = {**base, "scope": "customer", "customer_id": "c1", "transformer_area": "A1"}
    assert InspectionAlert.model_validate(own).transformer_area == "A1"
    with pytest.raises(ValidationError):
        InspectionAlert.model_validate({**base, "scope": "transformer_area", "customer_id": "c1"})
    with pytest.raises(ValidationError):
        InspectionAlert.model_validate({**base, "scope": "customer"})
    with pytest.raises(ValidationError):  # a customer alert lists no suspects
        InspectionAlert.model_validate(
            {
                **base,
                "scope": "customer",
                "customer_id": "c1",
                "suspects": [{"customer_id": "c2", "score": 0.5, "reasons": [], "evidence": {}}],
            }
        )
    with pytest.raises(ValidationError):  # scores are 0-1
        InspectionAlert.model_validate(
            {
                **base,
                "scope": "transformer_area",
                "transformer_area": "A1",
                "suspects": [{"customer_id": "c2", "score": 1.5, "reasons": [], "evidence": {}}],
            }
        )


# ------------------------------------------------------------------ area.readings

SUM = {"meter_id": "SUM-A1", "transformer_area": "A1", "ts": "2027-01-02T00:15:00+08:00", "kwh": 12.5}
BLOCK = {
    "meter_id": "SUM-A1",
    "transformer_area": "A1",
    "start": "2027-01-02T00:00:00+08:00",
    "kwh": [12.5, None, 13.0, -1.0],
    "quality": [None, None, ["tamper"], None],
}


def test_an_area_reading_decodes_in_the_single_form_keyed_by_its_area() -> None:
    reading = decode_area_reading(b"A1", orjson.dumps(SUM))
    assert isinstance(reading, AreaReading)
    assert (reading.transformer_area, reading.kwh, reading.interval_s) == ("A1", 12.5, 900)
    with pytest.raises(DecodeError) as exc:
        decode_area_reading(b"A2", orjson.dumps(SUM))
    assert exc.value.kind == "key_mismatch" and "transformer_area" in exc.value.detail
    with pytest.raises(DecodeError) as exc:  # a customer's reading is not a summary meter's
        decode_area_reading(b"c1", orjson.dumps({**SUM, "customer_id": "c1", "transformer_area": None}))
    assert exc.value.kind == "schema"
    with pytest.raises(DecodeError) as exc:
        decode_area_reading(b"A1", orjson.dumps({**SUM, "kwh": -0.1}))
    assert exc.value.kind == "negative_energy"
    now = datetime(2027, 1, 2, 1, tzinfo=DEFAULT_TZ)
    assert check_reading(reading, now=now, contract_kva=None) is None


@pytest.mark.parametrize("fast", [True, False])
def test_an_area_block_decodes_interval_by_interval(fast: bool) -> None:
    value = dict(BLOCK) if fast else {**BLOCK, "kwh": [12.5, None, 13.0, 0.0]}
    block = decode_area_reading(b"A1", orjson.dumps(value))
    assert isinstance(block, ReadingBlock)
    assert block.transformer_area == "A1" and block.key_field == "transformer_area"
    assert block.quality is not None and block.quality[2] == ["tamper"]
    if fast:  # a bad interval is that interval's issue, as its single reading's
        assert block.readable() == [0, 2] and block.issues[3][0] == "negative_energy"
    else:  # every interval fine: the one-pass path
        assert block.readable() == [0, 2, 3] and block.issues == {}
    assert block.single(2) == {
        "meter_id": "SUM-A1",
        "transformer_area": "A1",
        "ts": "2027-01-02T00:45:00+08:00",
        "interval_s": 900,
        "kwh": 13.0,
        "quality": ["tamper"],
    }
    assert check_block(block, now=datetime(2027, 1, 2, 1, tzinfo=DEFAULT_TZ), contract_kva=None) == {}


def test_area_and_meter_blocks_keep_to_their_topics() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_area_reading(b"A1", orjson.dumps({**BLOCK, "kwh": [1.0] * 2977, "quality": None}))
    assert exc.value.kind == "schema"
    with pytest.raises(DecodeError) as exc:
        decode_area_reading(b"A2", orjson.dumps(BLOCK))
    assert exc.value.kind == "key_mismatch"
    meter_block = {**BLOCK, "customer_id": "c1"}
    del meter_block["transformer_area"]
    with pytest.raises(DecodeError) as exc:  # no transformer_area: the whole message is bad
        decode_area_reading(b"c1", orjson.dumps(meter_block))
    assert exc.value.kind == "schema"
    block = decode_reading(b"c1", orjson.dumps(meter_block))
    assert isinstance(block, ReadingBlock) and block.customer_id == "c1"
    with pytest.raises(AttributeError):
        _ = block.transformer_area


# ------------------------------------------------------------------ the Redis snapshot of an area


def test_customer_days_round_trip_through_the_snapshot_field(area: AreaState) -> None:
    days = area.customer_days()
    rows = parse_customer_days(customer_days_value(days))
    assert set(rows) == {"c1", "c2", "c3", "c4"}
    for customer, series in days.items():
        assert [CustomerDay(*row) for row in rows[customer]] == series  # the very same days
    assert area_key("t-", "A1") == "t-gp:areas:A1"
    with pytest.raises(ValueError):
        parse_customer_days(b'{"dates": ["2027-01-01"], "customers": {"c1": []}}')
    with pytest.raises(ValueError):
        parse_customer_days(b"[]")
    with pytest.raises(ValueError):
        customer_days_value({"c1": days["c1"], "c2": days["c2"][1:]})
