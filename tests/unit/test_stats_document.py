"""metering.stats.stats_document: every field of the ``stats.customer`` document against the
independent numpy reference (tests/reference.py), at set clocks."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.pf_tariff import pf_adjustment_pct, pf_standard_for
from metering.stats import stats_document
from schemas.models import CustomerProfile, StatsCustomer
from tests.reference import reference_arrears, reference_gaps, reference_load

SHANGHAI = ZoneInfo("Asia/Shanghai")
PARIS = ZoneInfo("Europe/Paris")
LATENESS_S = 48 * 3600
INTERVAL_S = 900

PROFILE = CustomerProfile(
    customer_id="C1",
    name="某某机械厂",
    tariff_class="large_industrial",
    contract_kva=2000,
    tariff_cny_per_kwh=0.62,
)


def local(text: str, tz: ZoneInfo) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=tz).timestamp())


def readings(rng: random.Random, first_end: int, last_end: int) -> list[dict[str, Any]]:
    """Two meters (one without a reactive register) every quarter hour, in arrival order: a
    meter's interval missing now and then (gaps), redeliveries (duplicates), a late straggler
    and, at the end, an interval older than the lateness (dead-lettered, counts nowhere)."""
    rows: list[dict[str, Any]] = []
    for end in range(first_end, last_end + 1, INTERVAL_S):
        hour = datetime.fromtimestamp(end, UTC).hour
        for meter in ("m1", "m2"):
            if rng.random() < 0.03 and end != last_end:
                continue
            row: dict[str, Any] = {
                "meter_id": meter,
                "ts": end,
                "interval_s": INTERVAL_S,
                "kwh": rng.uniform(5, 60) * (1.5 if 0 <= hour < 10 else 1.0),
            }
            if meter == "m1":
                row["kvarh"] = rng.uniform(0, 45)
                if rng.random() < 0.2:
                    row["kvarh_export"] = rng.uniform(0, 3)
            if rng.random() < 0.1:
                row["demand_kw"] = rng.uniform(50, 400)
            rows.append(row)
            if rng.random() < 0.02:
                rows.append(dict(row, kwh=row["kwh"] + 1))  # a redelivery: the first one counts
    late = dict(rows[len(rows) // 2], ts=last_end - LATENESS_S - 3 * INTERVAL_S)
    return [*rows, late]


def billing(first: datetime) -> list[dict[str, Any]]:
    t = first
    return [
        {
            "event_id": "e1",
            "ts": t,
            "type": "bill",
            "amount": 812.5,
            "bill_id": "b1",
            "due_date": (t.date() + timedelta(days=3)).isoformat(),
        },
        {"event_id": "e2", "ts": t + timedelta(days=1), "type": "payment", "amount": 300.0, "bill_id": "b1"},
        {"event_id": "e3", "ts": t + timedelta(days=5), "type": "late_fee", "amount": 12.3, "bill_id": None},
        {"event_id": "e3", "ts": t + timedelta(days=5), "type": "late_fee", "amount": 12.3, "bill_id": None},
        {
            "event_id": "e4",
            "ts": t + timedelta(days=6),
            "type": "bill",
            "amount": 95.0,
            "bill_id": "b2",
            "due_date": (t.date() + timedelta(days=40)).isoformat(),
        },
    ]


def state_of(
    rows: list[dict[str, Any]], events: list[dict[str, Any]], tz: ZoneInfo, seeds: dict[str, float]
) -> tuple[LoadState, ArrearsLedger, list[list[dict[str, Any]]]]:
    """The state after the rows in batches of 97 (through its byte form, as the tables keep
    it), and the batches for the reference."""
    batches = [rows[i : i + 97] for i in range(0, len(rows), 97)]
    load = LoadState(tz=tz, lateness_s=LATENESS_S)
    for period, kwh in seeds.items():
        load.seed_history(period, kwh)
    for batch in batches:
        load.apply(batch)
        load = LoadState.from_bytes(load.to_bytes(), tz=tz, lateness_s=LATENESS_S)
    ledger = ArrearsLedger(tz=tz)
    for e in events:
        ledger.apply(e)
    return load, ledger, batches


def money(pct: float | None, kwh: float | None, tariff: float | None) -> float | None:
    """The PF adjustment on the energy charge, CNY (README: kWh x tariff x percentage)."""
    return None if pct is None or kwh is None or tariff is None else pct / 100 * kwh * tariff


def expected_document(
    batches: list[list[dict[str, Any]]],
    events: list[dict[str, Any]],
    profile: CustomerProfile | None,
    now: datetime,
    tz: ZoneInfo,
    gap_days: int,
    seeds: dict[str, float],
) -> dict[str, Any]:
    ref = reference_load(batches, tz, LATENESS_S, seeds=seeds, now=now.timestamp())
    newest_start = max(r["ts"] - r["interval_s"] for b in batches for r in b)
    newest_day = datetime.fromtimestamp(newest_start, tz).date()
    standard = tariff = None
    if profile is not None:
        standard = pf_standard_for(
            profile.tariff_class, profile.contract_kva, profile.voltage_kv, profile.pf_standard
        )
        tariff = profile.tariff_cny_per_kwh
    month_pf, projected_pf = ref["month"]["power_factor"], ref["projected_power_factor"]
    pct = pf_adjustment_pct(month_pf, standard) if month_pf is not None and standard is not None else None
    projected_pct = (
        pf_adjustment_pct(projected_pf, standard)
        if projected_pf is not None and standard is not None
        else None
    )
    newest = max([ref["data_end"], *(e["ts"].timestamp() for e in events)])
    return {
        "customer_id": "C1",
        "ts": datetime.fromtimestamp(newest, tz).isoformat(),
        "day": {**ref["day"], "date": newest_day.isoformat()},
        "d30": {
            **ref["d30"],
            "from": (newest_day - timedelta(days=29)).isoformat(),
            "to": newest_day.isoformat(),
        },
        "month": {
            **ref["month"],
            "period": ref["period"],
            "pf_standard": standard,
            "pf_adjustment_pct": pct,
            "pf_adjustment_cny": money(pct, ref["month"]["kwh"], tariff),
            "projected_power_factor": projected_pf,
            "projected_pf_adjustment_pct": projected_pct,
            "projected_pf_adjustment_cny": money(projected_pct, ref["projected_kwh"], tariff),
        },
        "consumption": ref["consumption"],
        "yoy_growth_rate": ref["yoy_growth_rate"],
        "yoy_growth_kwh": ref["yoy_growth_kwh"],
        "hourly_kw": ref["hourly_kw"],
        "arrears": {**reference_arrears(events, now, tz), "as_of": now.astimezone(tz).isoformat()},
        "profile_known": profile is not None,
        "gaps": reference_gaps(batches, tz, LATENESS_S, days=gap_days),
    }


def assert_same(got: Any, want: Any, path: str = "") -> None:
    """Same keys everywhere, same values: floats to 1e-9 (hourly_kw: float32 state, 1e-5;
    money: rounded to the fen)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), (path, got, want)
        for key in want:
            assert_same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), (path, got, want)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float) and not isinstance(want, bool):
        assert isinstance(got, int | float), (path, got, want)
        if path.endswith("_cny"):
            assert abs(got - want) <= 0.005 + 1e-9, (path, got, want)
        else:
            rel = 1e-5 if path.startswith(".hourly_kw") else 1e-9
            assert math.isclose(got, want, rel_tol=rel, abs_tol=1e-9), (path, got, want)
    else:
        assert got == want and type(got) is type(want), (path, got, want)


CASES = {
    # month open: the rest of March projected at the trailing 7 days' rates
    "open_month": (SHANGHAI, "2026-03-02T00:15", "2026-03-17T10:00", timedelta(hours=2)),
    # across a month end and Paris's DST change (25 October), November open
    "new_month_dst": (PARIS, "2026-10-14T00:15", "2026-11-03T08:30", timedelta(minutes=20)),
    # January's last interval is in and the wall clock is past it: closed, no projection
    "closed_complete": (SHANGHAI, "2026-01-12T00:15", "2026-02-01T00:00", timedelta(days=2)),
    # January has ended on the wall clock though its last days never arrived: closed too
    "closed_by_clock": (SHANGHAI, "2026-01-12T00:15", "2026-01-29T16:00", timedelta(days=4, hours=3)),
    # 29 February of a leap year
    "leap_day": (SHANGHAI, "2028-02-10T00:15", "2028-02-29T23:45", timedelta(minutes=5)),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("with_profile", [True, False])
def test_every_field_matches_the_reference(case: str, seed: int, with_profile: bool) -> None:
    tz, first, last, after = CASES[case]
    rng = random.Random(f"{case}-{seed}")
    rows = readings(rng, local(first, tz), local(last, tz))
    last_end = local(last, tz)
    events = billing(datetime.fromtimestamp(local(first, tz), tz) + timedelta(hours=10))
    if seed == 2:  # a billing event after the newest reading: it is the document's ts
        events.append(
            {
                "event_id": "e5",
                "ts": datetime.fromtimestamp(last_end + 60, tz),
                "type": "payment",
                "amount": 40.0,
                "bill_id": None,
            }
        )
    newest_month = datetime.fromtimestamp(last_end - INTERVAL_S, tz).date().replace(day=1)
    # 24 months of billing history before the readings (year-over-year growth), and one seed for
    # a month that has readings (ignored: metered wins)
    seeds = {}
    for k in range(1, 26):
        m = (newest_month.year * 12 + newest_month.month - 1) - k
        seeds[f"{m // 12:04d}-{m % 12 + 1:02d}"] = 20_000.0 + 137.0 * k
    seeds[f"{newest_month:%Y-%m}"] = 1.0
    profile = PROFILE if with_profile else None
    now = datetime.fromtimestamp(last_end, UTC) + after
    load, ledger, batches = state_of(rows, events, tz, seeds)

    doc = stats_document("C1", load, ledger, profile, now, tz, gap_days=3)

    assert doc is not None
    StatsCustomer.model_validate(doc)  # what the JSON Schema says
    assert orjson.loads(orjson.dumps(doc)) == doc  # JSON as it is
    want = expected_document(batches, events, profile, now, tz, 3, seeds)
    assert_same(doc, want)
    # the cases exercise what they claim
    if with_profile:
        assert doc["month"]["pf_standard"] == 0.90 and doc["month"]["pf_adjustment_cny"] is not None
    closed = case.startswith("closed")
    assert (doc["month"]["projected_power_factor"] is None) == closed
    assert doc["yoy_growth_rate"] is not None and doc["yoy_growth_kwh"] is not None
    assert doc["gaps"] and doc["arrears"]["late_fees_12m"] == 1


def test_nothing_known_is_no_document() -> None:
    doc = stats_document(
        "C1", LoadState(tz=SHANGHAI), ArrearsLedger(tz=SHANGHAI), PROFILE, datetime.now(UTC), SHANGHAI, 3
    )
    assert doc is None


def test_billing_only_anchors_the_windows_at_now() -> None:
    """A customer with bills and no reading yet: empty windows on now's local day and month."""
    now = datetime(2026, 4, 30, 17, 0, tzinfo=UTC)  # 1 May 01:00 in Shanghai
    events = billing(datetime(2026, 4, 2, 9, 0, tzinfo=SHANGHAI))
    ledger = ArrearsLedger(tz=SHANGHAI)
    for e in events:
        ledger.apply(e)

    doc = stats_document("C1", LoadState(tz=SHANGHAI), ledger, PROFILE, now, SHANGHAI, 3)

    assert doc is not None
    StatsCustomer.model_validate(doc)
    assert doc["ts"] == "2026-04-08T09:00:00+08:00"  # the newest billing event
    assert doc["day"]["date"] == "2026-05-01" and doc["d30"]["from"] == "2026-04-02"
    assert doc["month"]["period"] == "2026-05" and doc["month"]["pf_standard"] == 0.90
    for window in ("day", "d30", "month"):
        assert doc[window]["kwh"] == 0.0 and doc[window]["intervals"] == 0
        assert doc[window]["power_factor"] is None and doc[window]["load_factor"] is None
    assert doc["month"]["pf_adjustment_pct"] is None and doc["month"]["projected_power_factor"] is None
    assert doc["hourly_kw"] == [None] * 24 and doc["consumption"] == {} and doc["gaps"] == []
    arrears = reference_arrears(events, now, SHANGHAI)
    assert_same(doc["arrears"], {**arrears, "as_of": "2026-05-01T01:00:00+08:00"})
    assert date.fromisoformat(doc["day"]["date"]) == now.astimezone(SHANGHAI).date()


def test_gap_days_bound_the_gap_list() -> None:
    tz = SHANGHAI
    rows = [
        r for r in readings(random.Random(7), local("2026-03-02T00:15", tz), local("2026-03-09T12:00", tz))
    ]
    load, ledger, batches = state_of(rows, [], tz, {})
    now = datetime.fromtimestamp(local("2026-03-09T12:05", tz), UTC)
    for days in (0, 1, 3, 9):
        doc = stats_document("C1", load, ledger, None, now, tz, gap_days=days)
        assert doc is not None
        assert doc["gaps"] == reference_gaps(batches, tz, LATENESS_S, days=days)
        assert {g["date"] for g in doc["gaps"]} <= {
            (date(2026, 3, 9) - timedelta(days=k)).isoformat() for k in range(days)
        }
    assert stats_document("C1", load, ledger, None, now, tz, gap_days=9)["gaps"]  # type: ignore[index]
