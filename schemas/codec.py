"""Bytes <-> models for the stream agents. Pure: no faust, no Kafka client.

``decode`` is the hot path (one call per input message). It hands the raw bytes straight to the
model's compiled pydantic validator (``__pydantic_validator__.validate_json``, what
``model_validate_json`` calls): parsing and validating in one pass in Rust was the fastest of
the paths measured (``python -m schemas.bench``): about 1.9 µs for a ``MeterReading`` against
2.1 µs for ``TypeAdapter.validate_json`` and 2.9 µs for ``orjson.loads`` + ``model_validate``.

Whatever the bytes, ``decode`` raises nothing but :class:`DecodeError`; its ``kind`` is the
``error`` of the dead-letter record (see :data:`DECODE_KINDS`). ``decode_keyed`` adds the key
check of a keyed input topic (:data:`KEY_MISMATCH`).

A pydantic error is only ever told by field and reason (:func:`describe_validation_error`): its
own message quotes the input, which may be a profile with the customer's name. Every log line and
dead-letter detail that reports one goes through that function.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)

DECODE_KINDS: Final = (
    "decode",  # null value, not UTF-8, not JSON, not a JSON object
    "schema",  # missing field, wrong type, out-of-range value not covered below
    "negative_energy",  # kwh / kvarh / kvarh_export / demand_kw < 0
    # ts, a block's start, planned_start, expected_restore: not RFC 3339, no offset, year outside 1970..2999
    "bad_timestamp",
    "bad_date",  # due_date not YYYY-MM-DD, period not YYYY-MM
    "interval_length",  # interval_s outside 1..86400 (reading validation adds the allowed lengths)
    "unknown_code",  # a value outside an enumeration: billing type, outage event, tariff class, ...
)
"""The error kinds ``decode`` produces, in the dead-letter record's ``error`` field."""

KEY_MISMATCH: Final = "key_mismatch"
"""The kind ``decode_keyed`` raises for a message keyed by something else than its key field: it
would land in another partition's state."""

DETAIL_MAX_CHARS: Final = 512
"""Dead-letter details are cut to this length: enough to diagnose, not a copy of the message."""

_TIMESTAMP_FIELDS = frozenset({"ts", "start", "planned_start", "expected_restore"})  # start: a block's
_ENERGY_FIELDS = frozenset({"kwh", "kvarh", "kvarh_export", "demand_kw"})
_DATE_FIELDS = frozenset({"due_date", "period"})
_ROOT_DECODE_TYPES = frozenset({"json_invalid", "json_type", "model_type", "model_attributes_type"})
_MAX_ERRORS_IN_DETAIL = 5


class DecodeError(Exception):
    """An input message that cannot be used as its model. Never retriable: dead-letter it."""

    retriable: Final = False

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(kind, detail)
        self.kind = kind
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def error_kind(err: Any) -> str:
    """The dead-letter kind of one pydantic error (the first error of a message decides)."""
    loc = err["loc"]
    etype = err["type"]
    if not loc:
        return "decode" if etype in _ROOT_DECODE_TYPES else "schema"
    if etype == "missing":
        return "schema"
    field = loc[0]
    if field in _TIMESTAMP_FIELDS:
        return "bad_timestamp"
    if field in _ENERGY_FIELDS and etype == "greater_than_equal":
        return "negative_energy"
    if field in _DATE_FIELDS:
        return "bad_date"
    if field == "interval_s" and etype in ("greater_than", "less_than_equal"):
        return "interval_length"
    if etype == "literal_error":
        return "unknown_code"
    return "schema"


def _describe(errors: list[Any]) -> str:
    # Only locations and pydantic's messages: never the input values, so a customer's name (or
    # anything else in the message) is not copied into logs or the dead-letter detail.
    parts = []
    for err in errors[:_MAX_ERRORS_IN_DETAIL]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    if len(errors) > _MAX_ERRORS_IN_DETAIL:
        parts.append(f"(+{len(errors) - _MAX_ERRORS_IN_DETAIL} more)")
    return _truncate("; ".join(parts))


def describe_validation_error(exc: ValidationError) -> str:
    """A validation error as ``field: reason; ...`` (up to five, then ``(+N more)``), within
    :data:`DETAIL_MAX_CHARS`: never the input values, whichever model raised it."""
    try:
        return _describe(exc.errors(include_input=False, include_url=False))
    except Exception:  # a broken error report must not escape a log line
        return "invalid message"


def decode(model: type[M], raw: bytes | bytearray | None) -> M:
    """Parse and validate one message value as ``model``.

    Raises :class:`DecodeError` (and nothing else) with ``kind`` from :data:`DECODE_KINDS`:
    the first error in field order decides the kind; ``detail`` lists up to five errors. A null
    value (a tombstone on ``customers``) is ``decode`` too: handle deletes before decoding.
    """
    if raw is None:
        raise DecodeError("decode", "null value")
    try:
        return model.__pydantic_validator__.validate_json(raw)
    except ValidationError as exc:
        try:
            errors = exc.errors(include_input=False, include_url=False)
            kind, detail = error_kind(errors[0]), _describe(errors)
        except Exception:  # a broken error report must not escape either
            kind, detail = "schema", "invalid message"
        raise DecodeError(kind, detail) from None
    except Exception as exc:  # RecursionError, MemoryError, TypeError for odd buffers, ...
        raise DecodeError("decode", f"unreadable message ({type(exc).__name__})") from None


def decode_keyed(
    model: type[M],
    key: bytes | bytearray | None,
    raw: bytes | bytearray | None,
    key_field: str = "customer_id",
) -> M:
    """:func:`decode`, then the key check of a keyed input topic: a message whose key is not its
    ``key_field`` (customer_id; outage_id on ``grid.outages``) raises :class:`DecodeError` with
    kind :data:`KEY_MISMATCH`. A message without a key passes."""
    value = decode(model, raw)
    if key is not None and key != str(getattr(value, key_field)).encode():
        raise DecodeError(KEY_MISMATCH, f"message key is not the {key_field} (the topic is keyed by it)")
    return value


def encode(model: BaseModel) -> bytes:
    """JSON bytes of an output model: field aliases (``0_30``), every field, None as null.

    Non-finite floats (which the models reject on validation) would be written as null.
    """
    return orjson.dumps(model.model_dump(by_alias=True), option=orjson.OPT_SERIALIZE_NUMPY)


def dumps_kept(obj: Any) -> bytes:
    """``orjson.dumps`` for bytes that are kept in memory (views, caches).

    orjson hands back its write buffer as the bytes object, shortened but not reallocated: a
    300-byte document holds ~4 KB for as long as it lives (tracemalloc; orjson 3.x). Sent and
    dropped that costs nothing; kept for every customer it was 8 KB of the worker's memory per
    customer. The copy is exactly as long.
    """
    return bytes(memoryview(orjson.dumps(obj)))


# --- dead letters ------------------------------------------------------------------------------

_KIND_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_REDACTED = "<redacted>"


def _truncate(text: str) -> str:
    if len(text) <= DETAIL_MAX_CHARS:
        return text
    return text[: DETAIL_MAX_CHARS - 1] + "…"


def _personal_values(raw: bytes | bytearray | None) -> list[str]:
    """The personal-data values of a message (its ``name``) that a detail must not echo."""
    if not raw:
        return []
    try:
        value = orjson.loads(raw)
    except Exception:
        return []
    if isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str) and name.strip():
            return [name, name.strip()]
    return []


def _b64(data: bytes | bytearray | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def dead_letter(
    raw: bytes | bytearray | None,
    key: bytes | bytearray | None,
    topic: str,
    partition: int,
    offset: int,
    error_kind: str,
    detail: str,
    now: datetime,
    interval_index: int | None = None,
) -> bytes:
    """The ``<topic>.dlq`` record (``DeadLetter``) of an unusable input message, as JSON bytes.

    ``raw`` and ``key`` are kept byte for byte (base64). ``detail`` is cut to
    :data:`DETAIL_MAX_CHARS`, made valid UTF-8, and any ``name`` the message carries is
    redacted from it (personal data of ``customers`` messages). ``now`` must be aware; the
    record's ``ts`` is written in UTC. An ``error_kind`` that is not a short snake_case word
    is written as ``unknown``. ``interval_index`` is the position of the dead-lettered interval
    when ``raw`` is a block of ``meter.readings`` and only that interval is unusable; None (null)
    when the whole message is.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("dead_letter needs an aware `now` (e.g. datetime.now(UTC))")
    # lone surrogates (from a caller's str) are not UTF-8: replace them rather than fail
    text = _truncate(str(detail).encode("utf-8", "replace").decode("utf-8"))
    personal = _personal_values(raw)
    if personal:
        for value in personal:
            text = text.replace(value, _REDACTED)
        text = _truncate(text)
        if any(value in text for value in personal):  # a name like "<" or "…" survives: drop it all
            text = ""
    kind = error_kind if len(error_kind) <= 64 and _KIND_RE.match(error_kind) else "unknown"
    record = {
        "raw": _b64(raw),
        "key": _b64(key),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "error": kind,
        "detail": text,
        "ts": now.astimezone(UTC),
        "interval_index": interval_index,
    }
    return orjson.dumps(record, option=orjson.OPT_UTC_Z)


class DeadLetterCounter:
    """Dead-lettered messages per (topic, error kind), for the worker's web endpoint and logs."""

    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str]] = Counter()

    def add(self, topic: str, kind: str, n: int = 1) -> None:
        self._counts[(topic, kind)] += n

    def get(self, topic: str, kind: str) -> int:
        return self._counts[(topic, kind)]

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def as_dict(self) -> dict[str, dict[str, int]]:
        """``{topic: {kind: count}}``, sorted, JSON-ready."""
        out: dict[str, dict[str, int]] = {}
        for (topic, kind), n in sorted(self._counts.items()):
            out.setdefault(topic, {})[kind] = n
        return out
