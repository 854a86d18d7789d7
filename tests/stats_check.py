"""Compare a published ``stats.customer`` document with the independent numpy reference
(tests/reference.py), field by field. Shared by the unit and integration tests."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from schemas.models import StatsCustomer
from tests.reference import reference_arrears, reference_load

WINDOW_FIELDS = ("kwh", "kvarh", "avg_kw", "max_kw", "load_factor", "power_factor", "hours", "intervals")
ARREARS_FIELDS = (
    "outstanding",
    "oldest_overdue_days",
    "late_fees_12m",
    "reversals_12m",
    "theft_12m",
    "paid_36m",
    "due_36m",
    "late_fee_amount_36m",
    "credit",
    "bills_open",
)


def close(a: Any, b: Any, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-9)


def assert_hourly_match(got: list[float | None] | None, want: list[float | None], who: Any = None) -> None:
    """The hour-of-day profile: float32 kWh per hour and day in the state, so ~1e-6 relative."""
    assert got is not None and len(got) == 24, who
    for h, (a, b) in enumerate(zip(got, want, strict=True)):
        assert close(a, b, rel=1e-5), (who, h, a, b)


def reading_row(value: dict[str, Any]) -> dict[str, Any]:
    """A contract reading as the reference takes it (ts as epoch seconds)."""
    return {**value, "ts": int(datetime.fromisoformat(value["ts"]).timestamp())}


def computed_at(doc: dict[str, Any], since: datetime, slack_s: float = 5.0) -> datetime:
    """The wall-clock instant the worker computed ``doc`` at: its ``arrears.as_of``, the ``now``
    with which the product aged the arrears and decided whether the month is closed.

    A test cannot know that instant otherwise (the worker computes when it gets to a batch), so
    it takes it from the document, checked to lie between ``since`` (taken before the test sent
    anything) and the test's own clock now: the worker used the wall clock, not the data's time.
    """
    as_of = datetime.fromisoformat(doc["arrears"]["as_of"])
    latest = datetime.now(UTC)
    assert since - timedelta(seconds=slack_s) <= as_of <= latest + timedelta(seconds=slack_s), (
        doc["customer_id"],
        since,
        as_of,
        latest,
    )
    return as_of


def assert_stats_match(
    doc: dict[str, Any],
    readings: list[dict[str, Any]],
    billing: list[dict[str, Any]],
    tz: ZoneInfo,
    lateness_s: int,
    seeds: dict[str, float] | None = None,
    *,
    now: datetime,
) -> None:
    """``readings``: the customer's contract readings in delivery order, bad ones excluded.
    ``now``: the instant the document was computed at (`computed_at`); the reference's arrears
    and month closing are taken as of it, so the comparison does not depend on when it runs."""
    StatsCustomer.model_validate(doc)  # the published document is what the JSON Schema says
    cid = doc["customer_id"]
    assert datetime.fromisoformat(doc["arrears"]["as_of"]) == now, (cid, doc["arrears"]["as_of"], now)
    ref = reference_load(
        [[reading_row(r) for r in readings]], tz, lateness_s, seeds=seeds, now=now.timestamp()
    )
    for window in ("day", "d30", "month"):
        for name in WINDOW_FIELDS:
            assert close(doc[window][name], ref[window][name]), (cid, window, name, doc[window], ref[window])
    assert doc["month"]["period"] == ref["period"]
    assert close(doc["month"]["projected_power_factor"], ref["projected_power_factor"]), cid
    got, want = doc["consumption"].keys(), ref["consumption"].keys()
    assert got == want, (
        cid,
        f"consumption months only in the document: {sorted(got - want)}, "
        f"only in the reference: {sorted(want - got)} (of them from consumption.history: "
        f"{sorted((want - got) & (seeds or {}).keys())}); document {min(got, default=None)}.."
        f"{max(got, default=None)} ({len(got)}), reference {min(want, default=None)}.."
        f"{max(want, default=None)} ({len(want)}); month {doc['month']['period']}, ts {doc['ts']}, now {now}",
    )
    for period, kwh in ref["consumption"].items():
        assert close(doc["consumption"][period], kwh), (cid, period)
    assert close(doc["yoy_growth_rate"], ref["yoy_growth_rate"]), cid
    assert close(doc["yoy_growth_kwh"], ref["yoy_growth_kwh"]), cid
    assert_hourly_match(doc.get("hourly_kw"), ref["hourly_kw"], cid)
    if billing:
        events = [{**e, "ts": datetime.fromisoformat(e["ts"])} for e in billing]
        arrears = reference_arrears(events, now, tz)
        for name in ARREARS_FIELDS:
            assert close(doc["arrears"][name], arrears[name]), (cid, name, doc["arrears"], arrears)
        assert doc["arrears"]["overdue_buckets"] == arrears["overdue_buckets"], cid
