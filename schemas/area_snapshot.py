"""The Redis snapshot of a transformer area: what the inspection stage writes, what
``gridpulse inspection explain`` reads. Pure: bytes and lists, no Redis client.

One hash per area, ``{prefix}gp:areas:<transformer_area>`` (the topic prefix, as the customers'
``{prefix}gp:stats:<customer>``), written like them (``streams.sinks.flatten``):

- ``doc``: the latest ``stats.area`` document, exactly the JSON the topic carried;
- ``ts``: its ``ts``;
- ``customer_days`` (optional): the members' local days over the same 30 days as ``doc.daily``,
  what the suspect score reads (``inspection.area.AreaState.customer_days``), so that a customer's
  own daily consumption can be shown beside its area's loss and its score's parts recomputed:
  JSON ``{"dates": ["YYYY-MM-DD", ...], "customers": {"<customer_id>": [[kwh, reported,
  expected], ...]}}``, one entry per date, oldest first (:func:`customer_days_value`). About
  20 bytes a customer-day (120 KB for a 200-customer area): written when the area's suspects
  are ranked, not on every change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any, Final, Protocol

import orjson

AREA_KEY_PREFIX: Final = "gp:areas:"
DOC_FIELD: Final = "doc"
TS_FIELD: Final = "ts"
CUSTOMER_DAYS_FIELD: Final = "customer_days"


def area_key(topic_prefix: str, transformer_area: str) -> str:
    """The Redis key of an area's snapshot."""
    return f"{topic_prefix}{AREA_KEY_PREFIX}{transformer_area}"


class _Day(Protocol):  # inspection.area.CustomerDay
    @property
    def date(self) -> date: ...
    @property
    def kwh(self) -> float: ...
    @property
    def reported(self) -> int: ...
    @property
    def expected(self) -> int: ...


def customer_days_value(customer_days: Mapping[str, Sequence[_Day]]) -> bytes:
    """The ``customer_days`` field: every customer's days must be the same dates, oldest first
    (as ``AreaState.customer_days`` gives them)."""
    dates: list[str] | None = None
    customers: dict[str, list[list[Any]]] = {}
    for customer, days in customer_days.items():
        these = [d.date.isoformat() for d in days]
        if dates is None:
            dates = these
        elif these != dates:
            raise ValueError(f"customer_days: {customer!r} has other dates than the first customer")
        customers[customer] = [[float(d.kwh), int(d.reported), int(d.expected)] for d in days]
    return orjson.dumps({"dates": dates or [], "customers": customers})


DayRow = tuple[date, float, int, int]
"""(date, kwh, reported, expected): the fields of ``inspection.area.CustomerDay``, in order."""


def parse_customer_days(raw: bytes | str) -> dict[str, list[DayRow]]:
    """The ``customer_days`` field back: per customer, its days oldest first. ``ValueError``
    when the value is not that shape."""
    try:
        value = orjson.loads(raw)
        dates = [date.fromisoformat(d) for d in value["dates"]]
        out: dict[str, list[DayRow]] = {}
        for customer, rows in value["customers"].items():
            if len(rows) != len(dates):
                raise ValueError(f"{customer!r}: {len(rows)} days for {len(dates)} dates")
            out[str(customer)] = [
                (d, float(kwh), int(reported), int(expected))
                for d, (kwh, reported, expected) in zip(dates, rows, strict=True)
            ]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a customer_days value ({type(exc).__name__}: {exc})") from None
    return out


__all__ = [
    "AREA_KEY_PREFIX",
    "CUSTOMER_DAYS_FIELD",
    "DOC_FIELD",
    "TS_FIELD",
    "DayRow",
    "area_key",
    "customer_days_value",
    "parse_customer_days",
]
