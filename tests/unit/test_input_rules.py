"""The input rules every reader of a topic shares (schemas/): decode then check the key
(``decode_keyed``), a ``customers`` record (``profile_record``), and a validation error told
without its input (``describe_validation_error``); and the readers that apply them agree."""

from __future__ import annotations

import orjson
import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from schemas.codec import (
    DETAIL_MAX_CHARS,
    KEY_MISMATCH,
    DecodeError,
    decode,
    decode_keyed,
    describe_validation_error,
)
from schemas.models import CustomerProfile, MeterReading, OutageEvent
from schemas.validation import Issue, ProfileChange, profile_record
from streams.agents.outages import OutageView
from streams.agents.scoring import PopulationView
from tests.samples import NAME, OUTAGE, PROFILE, READING


def raw(doc: object) -> bytes:
    return orjson.dumps(doc)


# ------------------------------------------------------------------------------- decode_keyed


def test_a_message_keyed_by_its_own_id_decodes() -> None:
    assert decode_keyed(MeterReading, b"c1", raw(READING)) == decode(MeterReading, raw(READING))
    assert decode_keyed(MeterReading, bytearray(b"c1"), raw(READING)).customer_id == "c1"
    assert decode_keyed(OutageEvent, b"o1", raw(OUTAGE), "outage_id").outage_id == "o1"


def test_a_message_without_a_key_passes() -> None:
    assert decode_keyed(MeterReading, None, raw(READING)).customer_id == "c1"


@pytest.mark.parametrize(
    ("model", "key", "value", "field"),
    [
        (MeterReading, b"c2", READING, "customer_id"),
        (MeterReading, b"", READING, "customer_id"),
        (CustomerProfile, b"C1", PROFILE, "customer_id"),  # keys are compared byte for byte
        (OutageEvent, b"c1", OUTAGE, "outage_id"),
    ],
)
def test_a_message_keyed_by_something_else_is_a_key_mismatch(
    model: type[BaseModel], key: bytes, value: dict[str, object], field: str
) -> None:
    with pytest.raises(DecodeError) as exc:
        decode_keyed(model, key, raw(value), field)
    assert exc.value.kind == KEY_MISMATCH == "key_mismatch"
    assert field in exc.value.detail and NAME not in exc.value.detail


def test_an_undecodable_message_is_told_by_decode_before_its_key() -> None:
    with pytest.raises(DecodeError) as exc:
        decode_keyed(MeterReading, b"other", raw(READING | {"kwh": -1}))
    assert exc.value.kind == "negative_energy"
    with pytest.raises(DecodeError) as exc:
        decode_keyed(MeterReading, b"c1", None)
    assert exc.value.kind == "decode"


# -------------------------------------------------------------------------------- describe


def test_a_validation_error_is_told_without_its_input() -> None:
    """Any model's error, ours (which hide their input) or not: the name never appears."""
    with pytest.raises(ValidationError) as plain:
        TypeAdapter(dict[str, int]).validate_python({"contract_kva": NAME, "voltage_kv": NAME})
    assert NAME in str(plain.value)  # what the function is for
    text = describe_validation_error(plain.value)
    assert NAME not in text
    assert text.startswith("contract_kva: ") and "; voltage_kv: " in text

    with pytest.raises(ValidationError) as ours:
        CustomerProfile.model_validate(PROFILE | {"contract_kva": NAME})
    assert describe_validation_error(ours.value).startswith("contract_kva: ")


def test_a_long_validation_error_is_cut_and_counted() -> None:
    with pytest.raises(ValidationError) as many:
        TypeAdapter(list[int]).validate_python([NAME * 40] * 12)
    text = describe_validation_error(many.value)
    assert NAME not in text and text.endswith("(+7 more)")  # five told, the rest counted
    assert text.startswith("0: ") and text.count(";") == 5
    with pytest.raises(ValidationError) as long_loc:
        TypeAdapter(dict[str, int]).validate_python({"k" * 2000: "x"})
    assert len(describe_validation_error(long_loc.value)) == DETAIL_MAX_CHARS


def test_a_root_error_names_the_message() -> None:
    with pytest.raises(ValidationError) as root:
        CustomerProfile.model_validate_json(b"[1]")
    assert describe_validation_error(root.value).startswith("message: ")


# ------------------------------------------------------------------------------ profile_record

VALID = raw(PROFILE)


@pytest.mark.parametrize(
    ("key", "value", "want"),
    [
        (b"c1", VALID, "set"),
        (None, VALID, "set"),  # an unkeyed producer: the value says whose it is
        (b"c1", None, "delete"),
        (None, None, None),  # a tombstone without a key deletes nothing
        (b"", None, None),
        (b"c2", VALID, "key_mismatch"),
        (b"c1", b"{not json", "decode"),
        (b"c1", raw({"name": NAME}), "schema"),
        (b"c1", raw(PROFILE | {"tariff_class": "cheap"}), "unknown_code"),
        (b"c1", raw(PROFILE | {"feeders": ["F1", "F1"]}), "bad_feeders"),
        (b"c1", raw(PROFILE | {"contract_kva": -5}), "bad_contract_kva"),
        (b"c1", raw(PROFILE | {"pf_standard": 0.7}), "bad_pf_standard"),
    ],
)
def test_profile_record_rules(key: bytes | None, value: bytes | None, want: str | None) -> None:
    got = profile_record(key, value)
    if want is None:
        assert got is None
    elif want == "set":
        assert got == ProfileChange("c1", CustomerProfile.model_validate(PROFILE))
    elif want == "delete":
        assert got == ProfileChange("c1", None)
    else:
        assert isinstance(got, Issue) and got.kind == want, got
        assert NAME not in got.detail


def test_a_tombstone_key_that_is_not_utf8_still_deletes_its_customer() -> None:
    assert profile_record(b"c\xff", None) == ProfileChange("c\ufffd", None)


# ------------------------------------------------------------------ the readers agree with it

RECORDS: list[tuple[bytes | None, bytes | None]] = [
    (b"c1", VALID),
    (b"c2", VALID),  # key mismatch
    (b"c1", raw(PROFILE | {"feeders": ["F9"], "manager_id": "mgr8"})),  # a change
    (b"c1", raw(PROFILE | {"feeders": [" "]})),  # invalid: the change before it stays
    (b"c3", raw(PROFILE | {"customer_id": "c3"})),
    (b"c3", b"[]"),
    (b"c1", None),  # deleted
    (None, None),
    (b"c4", raw(PROFILE | {"customer_id": "c4", "voltage_kv": -1})),
]


def profiles_by_the_rule() -> dict[str, CustomerProfile]:
    held: dict[str, CustomerProfile] = {}
    for key, value in RECORDS:
        change = profile_record(key, value)
        if isinstance(change, ProfileChange):
            if change.profile is None:
                held.pop(change.customer_id, None)
            else:
                held[change.customer_id] = change.profile
    return held


def test_the_views_of_customers_follow_the_same_rule() -> None:
    """The scoring population and the outage topology read ``customers`` without a DLQ; they
    accept, keep and delete exactly what the customers agent does."""
    want = profiles_by_the_rule()
    assert set(want) == {"c3"}  # the sequence above exercises every branch

    scoring, outages = PopulationView(), OutageView("customers", "stats.customer", "grid.outages")
    for key, value in RECORDS:
        accepted = isinstance(profile_record(key, value), ProfileChange)
        assert scoring.apply_profile_message(key, value) is accepted, (key, value)
        assert outages.apply_profile_message(key, value) is accepted, (key, value)

    assert {cid for cid in ("c1", "c2", "c3", "c4") if scoring.profile(cid) is not None} == set(want)
    assert set(outages.topology.customers) == set(want)
    assert outages.topology.customers["c3"].feeders == frozenset(want["c3"].feeders)
