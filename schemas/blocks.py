"""The block form of ``meter.readings``: consecutive intervals of one meter in one value.

``area.readings`` (the transformer areas' summary meters) carries the same two forms with
``transformer_area`` in place of ``customer_id`` (:data:`AREA_READINGS`,
:func:`decode_area_reading`): everything below applies to it, field for field.

Both forms share the topic (docs/CONTRACT.md, "Block form"): a value with ``start`` and a
list-valued ``kwh`` is a block. :func:`decode_reading` tells them apart and decodes either;
a block whose every entry is fine (the usual case) is read into plain lists in one pass over
its bytes by ``MeterReadingBlock``'s compiled validator; any other block by :func:`decode_block`
(``orjson``, then one loop over the intervals). Never a pydantic object per interval.

A block is judged at two levels:

- the message: its header (``meter_id``, ``customer_id``, ``start``, ``interval_s``: the same
  field rules and error kinds as a single reading's, ``start`` as ``ts``), and its shape (``kwh``
  a list of 1..2,976 entries; ``kvarh``, ``kvarh_export``, ``demand_kw`` and ``quality`` absent,
  null or lists of the same length). A bad header or shape raises :class:`DecodeError`: the
  whole message goes to the DLQ;
- each interval i: the single reading stamped ``ts = start + (i+1)*interval_s`` with the block's
  header and the i-th entries. A null ``kwh`` is an interval not read (nothing to apply, nothing
  to dead-letter). An entry a single reading could not carry (a negative, a string, a bad quality
  list) is an issue of that interval only (:attr:`ReadingBlock.issues`), with exactly the kind and
  detail the single reading would get: such an interval is decoded again as that single reading
  by ``MeterReading``'s own validator (the slow path, for bad intervals only).

Validation (``schemas.validation.check_block``), duplicates and lateness (the load state) then
judge the readable intervals one by one, as they would the single readings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas.codec import (
    KEY_MISMATCH,
    DecodeError,
    decode,
    decode_keyed,
    describe_validation_error,
    error_kind,
)
from schemas.models import (
    MAX_BLOCK_INTERVALS,
    AreaReading,
    AreaReadingBlock,
    Id,
    MeterReading,
    MeterReadingBlock,
    Timestamp,
)

VALUE_LISTS: Final = ("kvarh", "kvarh_export", "demand_kw")
"""The optional per-interval number lists besides ``kwh``."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_START_MARK = b'"start"'
_MAX_YEAR = 2999  # as the models' timestamps (schemas.models)


class _Head(BaseModel):
    """The fields of a block that every interval shares (the single reading's rules)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    meter_id: Id
    customer_id: Id
    start: Timestamp
    interval_s: int = Field(default=900, strict=True, gt=0, le=86400)


class _AreaHead(BaseModel):
    """`_Head` of an ``area.readings`` block."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    meter_id: Id
    transformer_area: Id
    start: Timestamp
    interval_s: int = Field(default=900, strict=True, gt=0, le=86400)


@dataclass(frozen=True, slots=True)
class ReadingForm:
    """A topic that carries interval readings in both forms: its single and block models and
    the field its messages are keyed by (``meter.readings``: customer_id; ``area.readings``:
    transformer_area, the summary meters). The rules are the same; only the key field differs."""

    single: type[MeterReading] | type[AreaReading]
    block: type[MeterReadingBlock] | type[AreaReadingBlock]
    head: type[_Head] | type[_AreaHead]
    key_field: str


METER_READINGS: Final = ReadingForm(MeterReading, MeterReadingBlock, _Head, "customer_id")
AREA_READINGS: Final = ReadingForm(AreaReading, AreaReadingBlock, _AreaHead, "transformer_area")


@dataclass(slots=True)
class ReadingBlock:
    """A decoded block: the header, and one entry per interval in each list.

    ``customer_id`` is the block's key value: the customer on ``meter.readings``, the transformer
    area on ``area.readings`` (``key_field`` says which; ``transformer_area`` reads it there).
    ``kwh[i]`` is None for an interval not read and for an interval with an issue
    (``issues[i]``: (error kind, detail), as the single reading would be dead-lettered).
    ``start_s`` is the start in epoch seconds (rounded as the load state rounds a ``ts``),
    ``start_us`` exactly, in microseconds.
    """

    meter_id: str
    customer_id: str
    start: datetime
    interval_s: int
    kwh: list[float | None]
    kvarh: list[float | None] | None = None
    kvarh_export: list[float | None] | None = None
    demand_kw: list[float | None] | None = None
    quality: list[Any] | None = None
    issues: dict[int, tuple[str, str]] = field(default_factory=dict)
    start_s: int = 0
    start_us: int = 0
    key_field: str = "customer_id"

    @property
    def transformer_area(self) -> str:
        """The area of an ``area.readings`` block."""
        if self.key_field != "transformer_area":
            raise AttributeError("a meter.readings block has no transformer_area")
        return self.customer_id

    def __len__(self) -> int:
        return len(self.kwh)

    def ts(self, i: int) -> datetime:
        """The ``ts`` (END) of interval ``i``, in the offset of ``start``."""
        return self.start + timedelta(seconds=(i + 1) * self.interval_s)

    def readable(self) -> list[int]:
        """The intervals that were read and decode: the ones validation and the state judge."""
        return [i for i, kwh in enumerate(self.kwh) if kwh is not None]

    def single(self, i: int) -> dict[str, Any]:
        """Readable interval ``i`` as the single reading it stands for (JSON-ready)."""
        return _single(self, i, self.kwh[i], [self.kvarh, self.kvarh_export, self.demand_kw])

    @property
    def _form(self) -> ReadingForm:
        return AREA_READINGS if self.key_field == "transformer_area" else METER_READINGS


def is_block(value: Any) -> bool:
    """Whether a decoded JSON value is the block form (``start`` and a list-valued ``kwh``)."""
    return isinstance(value, dict) and "start" in value and isinstance(value.get("kwh"), list)


def decode_reading(
    key: bytes | bytearray | None, raw: bytes | bytearray | None
) -> MeterReading | ReadingBlock:
    """A ``meter.readings`` value in either form, key-checked (``schemas.codec.decode_keyed``).

    A single reading takes the codec's one-pass path unless its bytes name ``start`` at all.
    Raises :class:`DecodeError` only.
    """
    return _decode_either(METER_READINGS, key, raw)  # type: ignore[return-value]


def decode_area_reading(
    key: bytes | bytearray | None, raw: bytes | bytearray | None
) -> AreaReading | ReadingBlock:
    """An ``area.readings`` value (a summary meter) in either form, keyed by its
    transformer_area: `decode_reading`'s rules and error kinds exactly."""
    return _decode_either(AREA_READINGS, key, raw)  # type: ignore[return-value]


def _decode_either(
    form: ReadingForm, key: bytes | bytearray | None, raw: bytes | bytearray | None
) -> MeterReading | AreaReading | ReadingBlock:
    if raw is not None and _START_MARK in raw:
        block = _valid_block(raw, form)
        if block is None:  # not a block, or a block with something to say about: by hand
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError:
                value = None  # the single path says why
            if is_block(value):
                block = decode_block(value, form)
        if block is not None:
            if key is not None and key != block.customer_id.encode():
                raise DecodeError(
                    KEY_MISMATCH,
                    f"message key is not the {form.key_field} (the topic is keyed by it)",
                )
            return block
    return decode_keyed(form.single, key, raw, form.key_field)


def _valid_block(raw: bytes | bytearray, form: ReadingForm = METER_READINGS) -> ReadingBlock | None:
    """The fast path: a block whose every entry a single reading could carry passes
    ``MeterReadingBlock``'s compiled validator in one pass over the bytes (about 12 µs for a
    96-interval curve with three lists, against 220 µs entry by entry in Python); None when it
    does not (not a block, or a block with a bad header, shape or interval: `decode_block` then
    says which). Lists of unequal length raise as in `decode_block`."""
    try:
        model = form.block.__pydantic_validator__.validate_json(raw)
    except Exception:  # ValidationError, or anything odd: the slow path judges it
        return None
    kwh: list[float | None] = model.kwh
    n = len(kwh)
    columns = [model.kvarh, model.kvarh_export, model.demand_kw]
    _check_lengths(n, {**dict(zip(VALUE_LISTS, columns, strict=True)), "quality": model.quality})
    if None in kwh:  # an interval not read carries nothing (as in `decode_block`)
        columns = [
            None if c is None else [v if k is not None else None for v, k in zip(c, kwh, strict=True)]
            for c in columns
        ]
    start = model.start
    start_us = (start - _EPOCH) // _US
    block = ReadingBlock(
        meter_id=model.meter_id,
        customer_id=getattr(model, form.key_field),
        start=start,
        interval_s=model.interval_s,
        kwh=kwh,
        kvarh=columns[0],
        kvarh_export=columns[1],
        demand_kw=columns[2],
        quality=model.quality,
        start_s=round(start_us / 1_000_000),
        start_us=start_us,
        key_field=form.key_field,
    )
    _past_the_last_year(block)
    return block


def _past_the_last_year(block: ReadingBlock) -> None:
    """Intervals whose ``ts`` falls after year 2999 (a block starting late in 2999): what their
    single readings get from the model (``bad_timestamp``), not a value the state must place."""
    if block.ts(len(block) - 1).year <= _MAX_YEAR:
        return
    for i in block.readable():
        if block.ts(i).year > _MAX_YEAR:
            try:
                decode(block._form.single, orjson.dumps(block.single(i)))
            except DecodeError as exc:
                block.issues[i] = (exc.kind, exc.detail)
                block.kwh[i] = None


def _check_lengths(n: int, lists: dict[str, Any]) -> None:
    for name, entries in lists.items():
        if entries is not None and not (isinstance(entries, list) and len(entries) == n):
            what = f"{len(entries)} entries" if isinstance(entries, list) else "not a list"
            raise DecodeError("schema", f"{name}: {what}; a block's lists have one entry per kwh ({n})")


def decode_block(value: dict[str, Any], form: ReadingForm = METER_READINGS) -> ReadingBlock:
    """A block value (a dict from ``orjson.loads``) as a :class:`ReadingBlock`; raises
    :class:`DecodeError` when the whole message is bad (header or shape)."""
    try:
        head = form.head.model_validate(
            {k: value[k] for k in ("meter_id", form.key_field, "start", "interval_s") if k in value}
        )
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        kind = error_kind(errors[0]) if errors else "schema"
        raise DecodeError(kind, describe_validation_error(exc)) from None
    kwh = value["kwh"]
    n = len(kwh)
    if not 1 <= n <= MAX_BLOCK_INTERVALS:
        raise DecodeError("schema", f"kwh: a block has 1..{MAX_BLOCK_INTERVALS} intervals, not {n}")
    lists: dict[str, list[Any] | None] = {name: value.get(name) for name in (*VALUE_LISTS, "quality")}
    _check_lengths(n, lists)
    start = head.start
    start_us = (start - _EPOCH) // _US
    block = ReadingBlock(
        meter_id=head.meter_id,
        customer_id=getattr(head, form.key_field),
        start=start,
        interval_s=head.interval_s,
        kwh=[None] * n,
        quality=lists["quality"],
        start_s=round(start_us / 1_000_000),
        start_us=start_us,
        key_field=form.key_field,
    )
    columns = [lists[name] for name in VALUE_LISTS]
    out: list[list[float | None] | None] = [[None] * n if c is not None else None for c in columns]
    quality = lists["quality"]
    for i, v in enumerate(kwh):
        if v is None:
            continue  # not read
        good = _number(v)
        others = [None if c is None else _optional_number(c[i]) for c in columns]
        if good is None or _BAD in others or (quality is not None and not _codes(quality[i])):
            _slow(block, i, v, columns, out)
            continue
        block.kwh[i] = good
        for column, o in zip(out, others, strict=True):
            if column is not None:
                column[i] = o
    block.kvarh, block.kvarh_export, block.demand_kw = out
    _past_the_last_year(block)
    return block


_BAD: Final = object()  # marks an entry that a single reading could not carry


def _number(v: Any) -> float | None:
    """A ``NonNegative`` entry as a float, or None when the fast path cannot vouch for it."""
    t = type(v)
    if t is float:
        return v if v >= 0.0 and math.isfinite(v) else None
    if t is int and 0 <= v < 1 << 53:
        return float(v)
    return None


def _optional_number(v: Any) -> Any:
    if v is None:
        return None
    number = _number(v)
    return _BAD if number is None else number


def _codes(q: Any) -> bool:
    if q is None:
        return True
    return type(q) is list and len(q) <= 64 and all(type(c) is str and len(c) <= 64 for c in q)


def _single(block: ReadingBlock, i: int, kwh: Any, columns: list[list[Any] | None]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "meter_id": block.meter_id,
        block.key_field: block.customer_id,
        "ts": block.ts(i).isoformat(),
        "interval_s": block.interval_s,
        "kwh": kwh,
    }
    for name, column in zip(VALUE_LISTS, columns, strict=True):
        if column is not None and column[i] is not None:
            out[name] = column[i]
    if block.quality is not None and block.quality[i] is not None:
        out["quality"] = block.quality[i]
    return out


def _slow(
    block: ReadingBlock, i: int, kwh: Any, raw: list[list[Any] | None], out: list[list[Any] | None]
) -> None:
    """Judge interval ``i`` as its single reading, by the single model's own validator: its
    issue is the single reading's exactly; if that reading is fine after all, use its values."""
    try:
        reading = decode(block._form.single, orjson.dumps(_single(block, i, kwh, raw)))
    except DecodeError as exc:
        block.issues[i] = (exc.kind, exc.detail)
        return
    except TypeError:  # orjson cannot write it (an int beyond 64 bits, ...)
        block.issues[i] = ("schema", "an interval value is not a finite number")
        return
    block.kwh[i] = reading.kwh
    for name, column in zip(VALUE_LISTS, out, strict=True):
        if column is not None:
            column[i] = getattr(reading, name)
