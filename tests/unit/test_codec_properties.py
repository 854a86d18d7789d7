"""Property tests: whatever the bytes, decode returns a valid model or raises DecodeError, and
the dead-letter record of a failure validates and keeps the raw bytes exactly."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.codec import DECODE_KINDS, DecodeError, dead_letter, decode
from schemas.models import INPUT_MODELS, BillingEvent, CustomerProfile, DeadLetter, MeterReading
from schemas.validation import check_billing, check_profile, check_reading
from tests.samples import BILL, OUTAGE, PROFILE, READING

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

models = st.sampled_from(list(INPUT_MODELS.values()))
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["2026-03-01T10:15:00+08:00", "2026-03-01T10:15:00", "2026-03", "bill", "-1", ""])
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(sorted({*READING, *BILL, *OUTAGE, *PROFILE}))


def _dumps(value: Any, ascii_only: bool) -> bytes:
    # json, not orjson: big integers, NaN/Infinity and lone surrogates must reach the codec too
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def assert_decodes_or_dead_letters(model: type[BaseModel], raw: bytes) -> None:
    try:
        value = decode(model, raw)
    except DecodeError as exc:
        assert exc.kind in DECODE_KINDS
        out = dead_letter(raw, b"k", "topic", 0, 7, exc.kind, exc.detail, NOW)
        record = DeadLetter.model_validate_json(out)
        assert record.raw is not None
        assert base64.b64decode(record.raw, validate=True) == raw
        assert record.error == exc.kind
        if model is CustomerProfile:
            _assert_no_name(raw, record.detail)
    else:
        assert isinstance(value, model)
        assert type(value).model_validate_json(value.model_dump_json()) == value
        # what the agents do next must not blow up on anything decode lets through
        for attr in ("ts", "planned_start", "expected_restore"):
            if (when := getattr(value, attr, None)) is not None:
                when.astimezone(SHANGHAI)
                when.astimezone(UTC)
        if isinstance(value, MeterReading):
            check_reading(value, now=NOW, contract_kva=100.0)
        elif isinstance(value, BillingEvent):
            check_billing(value)
        elif isinstance(value, CustomerProfile):
            check_profile(value)


def _assert_no_name(raw: bytes, detail: str) -> None:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if isinstance(doc, dict) and isinstance(doc.get("name"), str) and doc["name"].strip():
        assert doc["name"] not in detail


@PROPERTY
@given(models, st.binary(max_size=300))
def test_arbitrary_bytes(model: type[BaseModel], raw: bytes) -> None:
    assert_decodes_or_dead_letters(model, raw)


@PROPERTY
@given(models, json_values, st.booleans())
def test_arbitrary_json(model: type[BaseModel], value: Any, ascii_only: bool) -> None:
    assert_decodes_or_dead_letters(model, _dumps(value, ascii_only))


@st.composite
def mutated_documents(draw: st.DrawFn) -> tuple[type[BaseModel], bytes]:
    cases: list[tuple[type[BaseModel], dict[str, object]]] = [
        (MeterReading, READING),
        (BillingEvent, BILL),
        (INPUT_MODELS["grid.outages"], OUTAGE),
        (CustomerProfile, PROFILE),
    ]
    model, base = draw(st.sampled_from(cases))
    doc = dict(base)
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "replace", "add"]))
        if action == "drop" and doc:
            doc.pop(draw(st.sampled_from(sorted(doc))))
        elif action == "replace":
            doc[draw(field_names)] = draw(json_values)
        else:
            doc[draw(st.text(max_size=8))] = draw(json_values)
    raw = bytearray(_dumps(doc, draw(st.booleans())))
    # and sometimes damage the bytes themselves
    for _ in range(draw(st.integers(0, 2))):
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        op = draw(st.sampled_from(["flip", "cut", "insert"]))
        if op == "flip":
            raw[i] ^= draw(st.integers(1, 255))
        elif op == "cut":
            del raw[i:]
        else:
            raw[i:i] = draw(st.binary(min_size=1, max_size=4))
    return model, bytes(raw)


@PROPERTY
@given(mutated_documents())
def test_mutated_valid_documents(case: tuple[type[BaseModel], bytes]) -> None:
    model, raw = case
    assert_decodes_or_dead_letters(model, raw)


@PROPERTY
@given(st.text(), st.text(max_size=600))
def test_dead_letter_never_echoes_a_name(name: str, detail: str) -> None:
    raw = orjson.dumps({"customer_id": "c1", "name": name})
    record = DeadLetter.model_validate_json(
        dead_letter(raw, None, "customers", 0, 0, "schema", detail + name, NOW)
    )
    if name.strip():
        assert name not in record.detail
    assert base64.b64decode(record.raw or "") == raw
