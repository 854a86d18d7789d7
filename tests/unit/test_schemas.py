"""The topic models: contract field names, strictness, personal data, and the JSON Schemas."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from schemas import jsonschema, topics
from schemas.codec import encode
from schemas.models import (
    INPUT_MODELS,
    OUTPUT_MODELS,
    BillingEvent,
    CustomerProfile,
    DeadLetter,
    IndicatorScores,
    MeterReading,
    OutageEvent,
    ReliabilityIndices,
    Window,
)
from tests.samples import (
    BILL,
    NAME,
    OUTAGE,
    PROFILE,
    READING,
    credit_alert_example,
    outage_alert_example,
    reliability_example,
    scores_example,
    stats_example,
    window,
)

# --- inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "example"),
    [(MeterReading, READING), (BillingEvent, BILL), (OutageEvent, OUTAGE), (CustomerProfile, PROFILE)],
)
def test_input_round_trip(model: type[BaseModel], example: dict[str, object]) -> None:
    parsed = model.model_validate_json(orjson.dumps(example))
    assert parsed == model.model_validate(example)  # JSON and Python paths agree
    again = model.model_validate_json(parsed.model_dump_json())
    assert again == parsed
    assert set(example) == set(model.model_fields)  # the contract's fields, no more


def test_reading_defaults_and_types() -> None:
    r = MeterReading.model_validate(
        {"meter_id": "m1", "customer_id": "c1", "ts": "2026-03-01T10:15:00Z", "kwh": 1}
    )
    assert r.interval_s == 900
    assert r.quality == []
    assert isinstance(r.kwh, float)  # JSON int accepted as a float
    assert r.ts == datetime(2026, 3, 1, 10, 15, tzinfo=UTC)
    assert MeterReading.model_validate(READING).ts.utcoffset() == timedelta(hours=8)


def test_inputs_ignore_unknown_fields() -> None:
    r = MeterReading.model_validate(READING | {"firmware": "1.2", "phase": {"a": 1}})
    assert not hasattr(r, "firmware")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": "2026-03-01T10:15:00"}, "ts"),  # naive
        ({"ts": 1772331300}, "ts"),  # epoch seconds
        ({"ts": "1772331300"}, "ts"),
        ({"ts": "yesterday"}, "ts"),
        ({"kwh": "1.5"}, "kwh"),  # numbers are numbers
        ({"kwh": True}, "kwh"),
        ({"kwh": -0.1}, "kwh"),
        ({"kwh": float("nan")}, "kwh"),
        ({"kvarh": -1}, "kvarh"),
        ({"demand_kw": float("inf")}, "demand_kw"),
        ({"interval_s": 900.5}, "interval_s"),
        ({"interval_s": "900"}, "interval_s"),
        ({"interval_s": 0}, "interval_s"),
        ({"meter_id": 17}, "meter_id"),
        ({"meter_id": ""}, "meter_id"),
        ({"quality": "estimated"}, "quality"),
        ({"quality": [1]}, "quality"),
    ],
)
def test_reading_rejects_garbage(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        MeterReading.model_validate(READING | change)
    assert exc.value.errors()[0]["loc"][0] == field


@pytest.mark.parametrize(
    "change",
    [
        {"type": "refund"},
        {"period": "2026-13"},
        {"period": "202602"},
        {"due_date": "2026-03-25T00:00:00"},
        {"due_date": 1774396800},
        {"amount": None},
        {"amount": "12"},
    ],
)
def test_billing_rejects_garbage(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        BillingEvent.model_validate(BILL | change)


def test_billing_types_and_date() -> None:
    for kind in ("bill", "payment", "late_fee", "payment_reversal", "theft_penalty", "adjustment"):
        assert BillingEvent.model_validate(BILL | {"type": kind}).type == kind
    assert BillingEvent.model_validate(BILL).due_date == date(2026, 3, 25)


@pytest.mark.parametrize(
    "change",
    [
        {"event": "begin"},
        {"scope": "substation"},
        {"planned": "yes"},
        {"planned": 1},
        {"expected_restore": "soon"},
    ],
)
def test_outage_rejects_garbage(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        OutageEvent.model_validate(OUTAGE | change)


def test_profile_defaults() -> None:
    p = CustomerProfile.model_validate({"customer_id": "c9"})
    assert (p.tariff_class, p.importance, p.feeders, p.emergency_generator) == ("other", "none", [], False)
    with pytest.raises(ValidationError):
        CustomerProfile.model_validate(PROFILE | {"importance": "vip"})
    with pytest.raises(ValidationError):
        CustomerProfile.model_validate(PROFILE | {"tariff_class": "industrial"})


def test_profile_name_is_personal_data() -> None:
    p = CustomerProfile.model_validate(PROFILE)
    assert p.name == NAME
    assert NAME not in repr(p)
    assert NAME not in str(p)
    assert NAME not in f"{p}"
    assert CustomerProfile.model_json_schema()["properties"]["name"]["x-personal-data"] is True
    # nor in validation errors, whichever field fails
    with pytest.raises(ValidationError) as exc:
        CustomerProfile.model_validate(PROFILE | {"feeders": "F1"})
    assert NAME not in str(exc.value)
    with pytest.raises(ValidationError) as exc:
        CustomerProfile.model_validate({"name": NAME})
    assert NAME not in str(exc.value)


def test_inputs_are_frozen() -> None:
    r = MeterReading.model_validate(READING)
    with pytest.raises(ValidationError):
        r.kwh = 2.0


# --- outputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [stats_example, scores_example, credit_alert_example, outage_alert_example, reliability_example],
)
def test_output_round_trip(factory: object) -> None:
    model = factory()  # type: ignore[operator]
    raw = encode(model)
    assert type(model).model_validate_json(raw) == model


def test_stats_json_shape() -> None:
    doc = orjson.loads(encode(stats_example()))
    assert {"customer_id", "ts", "day", "d30", "month", "arrears"} <= set(doc)
    assert doc["d30"]["from"] == "2026-10-02" and doc["d30"]["to"] == "2026-10-31"
    assert {"kwh", "kvarh", "avg_kw", "max_kw", "load_factor", "power_factor"} <= set(doc["day"])
    assert doc["d30"]["load_factor"] is None  # None as null, not dropped
    assert {"period", "pf_standard", "pf_adjustment_pct"} <= set(doc["month"])
    assert doc["arrears"]["overdue_buckets"] == {"0_30": 20.0, "31_60": 100.0, "61_90": 0.0, "over_90": 0.0}
    assert {
        "outstanding",
        "oldest_overdue_days",
        "late_fees_12m",
        "reversals_12m",
        "paid_36m",
        "due_36m",
    } <= set(doc["arrears"])
    assert doc["ts"] == "2026-10-31T23:45:00+08:00"


def test_contract_output_fields() -> None:
    alert = orjson.loads(encode(outage_alert_example()))
    common = {"alert_id", "kind", "severity", "status", "ts", "reason", "evidence"}
    assert common | {"outage_id", "scope", "scope_id", "planned", "manager_ids", "affected"} <= set(alert)
    assert set(alert["affected"][0]) == {
        "customer_id",
        "importance",
        "safety_grade",
        "impact",
        "est_kw",
        "revenue_at_risk_cny_per_h",
        "manager_id",
    }
    credit = orjson.loads(encode(credit_alert_example()))
    assert common | {"customer_id", "rule", "manager_id"} <= set(credit)
    rel = set(ReliabilityIndices.model_fields)
    assert {"scope", "scope_id", "year", "customers_served", "customer_interruptions"} <= rel
    assert {"customer_minutes", "SAIFI", "SAIDI", "CAIDI", "momentary_interruptions"} <= rel
    scores = orjson.loads(encode(scores_example()))
    assert {"current_value", "potential_value", "quadrant", "credit_grade", "service_tier"} <= set(scores)
    assert {"safety_grade", "model_version"} <= set(scores)
    assert set(scores["indicators"]) == set(scores["scores"]) == {
        "B11", "B12", "B21", "B22", "B31", "B32", "B41", "B42",
    }  # fmt: skip
    assert set(DeadLetter.model_fields) == {
        "raw",
        "key",
        "topic",
        "partition",
        "offset",
        "error",
        "detail",
        "ts",
        "interval_index",  # addition: the dead-lettered interval of a block
    }


def test_outputs_reject_typos_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        Window.model_validate(window().model_dump() | {"lod_factor": 1})
    with pytest.raises(ValidationError):
        scores_example().model_validate(scores_example().model_dump() | {"quadrant": "gold"})
    with pytest.raises(ValidationError):
        IndicatorScores.model_validate(
            dict.fromkeys(("B11", "B12", "B21", "B22", "B31", "B32", "B41", "B42"), 6)
        )


def test_every_topic_has_a_model() -> None:
    assert set(INPUT_MODELS) == set(topics.INPUTS)
    assert set(OUTPUT_MODELS) == set(topics.OUTPUTS)
    for model in (*INPUT_MODELS.values(), *OUTPUT_MODELS.values(), DeadLetter):
        assert model.schema_version >= 1  # type: ignore[attr-defined]


# --- JSON Schemas ------------------------------------------------------------------------------


def test_json_schemas_are_fresh() -> None:
    assert jsonschema.stale_files() == [], "run `python -m schemas.jsonschema` and commit schemas/json/"


def test_json_schemas_cover_every_topic(tmp_path: object) -> None:
    files = set(jsonschema.render_all())
    assert files == {f"{t}.json" for t in (*topics.INPUTS, *topics.OUTPUTS)} | {"dlq.json"}
    stats = orjson.loads(jsonschema.render_all()["stats.customer.json"])
    assert set(stats["$defs"]["OverdueBuckets"]["properties"]) == {"0_30", "31_60", "61_90", "over_90"}
    assert "additionalProperties" not in orjson.dumps(stats).decode()
    assert stats["x-schema-version"] == 1


def test_check_mode_detects_stale(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonschema, "JSON_DIR", tmp_path)
    assert jsonschema.main(["--check"]) == 1
    assert jsonschema.main([]) == 0
    assert jsonschema.main(["--check"]) == 0
    (tmp_path / "dlq.json").write_text("{}\n")  # type: ignore[operator]
    assert jsonschema.main(["--check"]) == 1
