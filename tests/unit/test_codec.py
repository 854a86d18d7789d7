"""schemas.codec: decode kinds, encode, dead-letter records, the counter."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from pydantic import BaseModel

from schemas.codec import (
    DECODE_KINDS,
    DETAIL_MAX_CHARS,
    DeadLetterCounter,
    DecodeError,
    dead_letter,
    decode,
    encode,
)
from schemas.models import BillingEvent, CustomerProfile, DeadLetter, MeterReading, OutageEvent
from tests.samples import BILL, NAME, OUTAGE, PROFILE, READING, stats_example

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _raw(doc: object) -> bytes:
    return orjson.dumps(doc)


def test_decode_valid() -> None:
    r = decode(MeterReading, _raw(READING))
    assert r == MeterReading.model_validate(READING)
    assert decode(BillingEvent, bytearray(_raw(BILL))).bill_id == "b-2026-02"
    assert decode(OutageEvent, _raw(OUTAGE)).planned is True
    assert decode(CustomerProfile, _raw(PROFILE)).feeders == ["F101", "F202"]


@pytest.mark.parametrize(
    ("model", "raw", "kind"),
    [
        (MeterReading, None, "decode"),
        (MeterReading, b"", "decode"),
        (MeterReading, b"\xff\xfe{}", "decode"),  # not UTF-8
        (MeterReading, b'{"meter_id": "m\xff1"}', "decode"),
        (MeterReading, b"{meter_id: 1}", "decode"),  # not JSON
        (MeterReading, b'{"kwh": 1', "decode"),
        (MeterReading, b"[1, 2]", "decode"),  # not an object
        (MeterReading, b"null", "decode"),
        (MeterReading, b'"text"', "decode"),
        (MeterReading, b"[" * 10_000, "decode"),  # deep nesting
        (MeterReading, _raw({k: v for k, v in READING.items() if k != "meter_id"}), "schema"),
        (MeterReading, _raw(READING | {"kwh": "12"}), "schema"),
        (MeterReading, _raw(READING | {"customer_id": None}), "schema"),
        (MeterReading, _raw(READING | {"quality": [None]}), "schema"),
        (MeterReading, _raw(READING | {"kwh": -0.5}), "negative_energy"),
        (MeterReading, _raw(READING | {"kvarh": -1}), "negative_energy"),
        (MeterReading, _raw(READING | {"kvarh_export": -1}), "negative_energy"),
        (MeterReading, _raw(READING | {"demand_kw": -1}), "negative_energy"),
        (
            MeterReading,
            b'{"meter_id":"m","customer_id":"c","ts":"2026-03-01T10:15:00Z","kwh":1e999}',
            "schema",
        ),
        (MeterReading, _raw(READING | {"ts": "2026-03-01T10:15:00"}), "bad_timestamp"),
        (MeterReading, _raw(READING | {"ts": 1772331300}), "bad_timestamp"),
        (MeterReading, _raw(READING | {"ts": "2026-02-30T10:15:00+08:00"}), "bad_timestamp"),
        (MeterReading, _raw(READING | {"interval_s": 0}), "interval_length"),
        (MeterReading, _raw(READING | {"interval_s": -900}), "interval_length"),
        (MeterReading, _raw(READING | {"interval_s": 86401}), "interval_length"),
        (MeterReading, _raw(READING | {"ts": "0001-01-01T00:00:00+08:00"}), "bad_timestamp"),
        (MeterReading, _raw(READING | {"ts": "9999-12-31T23:59:59-08:00"}), "bad_timestamp"),
        (BillingEvent, _raw(BILL | {"due_date": "0001-01-01"}), "bad_date"),
        (BillingEvent, _raw(BILL | {"type": "refund"}), "unknown_code"),
        (BillingEvent, _raw(BILL | {"due_date": "25/03/2026"}), "bad_date"),
        (BillingEvent, _raw(BILL | {"period": "2026-3"}), "bad_date"),
        (OutageEvent, _raw(OUTAGE | {"expected_restore": "2026-03-03T15:00:00"}), "bad_timestamp"),
        (OutageEvent, _raw(OUTAGE | {"scope": "station"}), "unknown_code"),
        (CustomerProfile, _raw(PROFILE | {"importance": "vip"}), "unknown_code"),
        (CustomerProfile, None, "decode"),  # a tombstone: handle deletes before decoding
    ],
)
def test_decode_error_kinds(model: type[BaseModel], raw: bytes | None, kind: str) -> None:
    with pytest.raises(DecodeError) as exc:
        decode(model, raw)
    assert exc.value.kind == kind
    assert exc.value.kind in DECODE_KINDS
    assert exc.value.detail
    assert str(exc.value).startswith(kind)


def test_every_decode_kind_is_tested() -> None:
    kinds = {p[2] for p in test_decode_error_kinds.pytestmark[0].args[1]}  # type: ignore[attr-defined]
    assert kinds == set(DECODE_KINDS)


def test_decode_detail_names_the_field_not_the_value() -> None:
    with pytest.raises(DecodeError) as exc:
        decode(CustomerProfile, _raw(PROFILE | {"contract_kva": "lots", "feeders": [1]}))
    assert "contract_kva" in exc.value.detail and "feeders.0" in exc.value.detail
    assert NAME not in exc.value.detail
    assert "lots" not in exc.value.detail


def test_decode_detail_is_bounded() -> None:
    garbage = {f"x{i}": 1 for i in range(1000)} | {"quality": list(range(60))}
    with pytest.raises(DecodeError) as exc:
        decode(MeterReading, _raw(garbage))
    assert len(exc.value.detail) <= DETAIL_MAX_CHARS
    assert "more)" in exc.value.detail


def test_decode_never_leaks_other_exceptions() -> None:
    for raw in (memoryview(b"{}"), 12, object(), "{\ud800}", b"\x00" * 10):
        with pytest.raises(DecodeError):
            decode(MeterReading, raw)  # type: ignore[arg-type]


def test_decode_error_is_not_retriable() -> None:
    assert DecodeError.retriable is False


def test_encode_outputs() -> None:
    stats = stats_example()
    raw = encode(stats)
    assert isinstance(raw, bytes)
    doc = orjson.loads(raw)
    assert "0_30" in doc["arrears"]["overdue_buckets"]
    assert doc["d30"]["power_factor"] is None
    assert type(stats).model_validate_json(raw) == stats


# --- dead letters ------------------------------------------------------------------------------


def _dlq(raw: bytes | None, **kw: object) -> DeadLetter:
    args: dict[str, object] = dict(
        key=b"c1", topic="meter.readings", partition=3, offset=42, error_kind="schema", detail="bad", now=NOW
    )
    out = dead_letter(raw, **(args | kw))  # type: ignore[arg-type]
    return DeadLetter.model_validate_json(out)


def test_dead_letter_record() -> None:
    raw = b'\x00\xff{"kwh": -1}'
    d = _dlq(raw)
    assert d.raw is not None and base64.b64decode(d.raw, validate=True) == raw
    assert d.key is not None and base64.b64decode(d.key, validate=True) == b"c1"
    assert (d.topic, d.partition, d.offset, d.error, d.detail) == ("meter.readings", 3, 42, "schema", "bad")
    assert d.ts == NOW and d.ts.utcoffset() == timedelta(0)


def test_dead_letter_nulls_and_utc() -> None:
    cst = timezone(timedelta(hours=8))
    out = dead_letter(
        None, None, "customers", 0, 0, "decode", "null value", datetime(2026, 3, 1, 20, tzinfo=cst)
    )
    doc = orjson.loads(out)
    assert doc["raw"] is None and doc["key"] is None
    assert doc["ts"] == "2026-03-01T12:00:00Z"
    DeadLetter.model_validate_json(out)
    with pytest.raises(ValueError, match="aware"):
        dead_letter(None, None, "customers", 0, 0, "decode", "x", datetime(2026, 3, 1))


def test_dead_letter_detail_is_truncated_and_valid_utf8() -> None:
    d = _dlq(b"x", detail="é" * 5000 + "\ud800")
    assert len(d.detail) <= DETAIL_MAX_CHARS
    d = _dlq(b"x", detail="bad \ud800 surrogate")
    assert "surrogate" in d.detail


def test_dead_letter_bad_kind_is_unknown() -> None:
    assert _dlq(b"x", error_kind="Not A Kind!").error == "unknown"
    assert _dlq(b"x", error_kind="late").error == "late"


def test_dead_letter_never_echoes_customer_name() -> None:
    name = NAME
    raw = _raw(PROFILE | {"contract_kva": "x"})
    d = _dlq(raw, topic="customers", detail=f"profile of {name} rejected")
    assert name not in d.detail and "<redacted>" in d.detail
    assert d.raw is not None and base64.b64decode(d.raw) == raw  # the raw bytes stay intact
    # and the codec's own detail never had it
    with pytest.raises(DecodeError) as exc:
        decode(CustomerProfile, raw)
    assert name not in _dlq(raw, topic="customers", detail=exc.value.detail).detail


def test_dead_letter_counter() -> None:
    c = DeadLetterCounter()
    assert c.as_dict() == {} and c.total == 0
    c.add("meter.readings", "schema")
    c.add("meter.readings", "schema")
    c.add("meter.readings", "decode")
    c.add("billing.events", "bad_amount", 3)
    assert c.get("meter.readings", "schema") == 2
    assert c.get("customers", "decode") == 0
    assert c.total == 6
    assert c.as_dict() == {
        "billing.events": {"bad_amount": 3},
        "meter.readings": {"decode": 1, "schema": 2},
    }
    assert orjson.loads(orjson.dumps(c.as_dict())) == c.as_dict()
