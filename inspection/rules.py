"""Inspection screening rules (``alerts.inspection``) as pure functions: figures and ``now`` in,
messages out.

DOMAIN.md 6, defaults in ``InspectionThresholds`` (all configurable):

| rule (alert family) | scope | fires when (default) | severity |
|---|---|---|---|
| ``area_high_loss`` | area | complete day's loss rate > 10 % (> 20 %) | major (critical) |
| ``area_negative_loss`` | area | complete day's loss rate < -1 % | minor |
| ``area_loss_jump`` | area | complete day's loss rate > trailing 30-day median + 5 points | major |
| ``consumption_drop`` | customer | daily kWh < 40 % of its 30-day median, 3 complete days | minor (1) |
| ``stopped_reporting`` | customer | a meter silent > 4 h while the area reports (2) | minor (3) |
| ``tamper_flag`` | customer | quality code tamper, cover_open or magnetic | major |

(1) major when the area's loss rose over the same days; (2) the summary meter and >= 80 % of
the area's other meters report, all judged at the area's data time (below); (3) major for
special, level-1 and large-industrial customers.

Where the defaults come from: all are DOMAIN.md 6's. 10 % is the upper edge of the 0-10 % band
low-voltage areas are managed to (above it, a "high-loss area"); -1 % rather than 0 leaves room for
the meters' own accuracy before a loss counts as negative (a mis-mapped customer, a summary-meter
or CT-ratio fault); 4 h and 80 % tell the "white screen" (one meter silent while its neighbours
report) from an area outage or a collection failure.

Choices made here, documented:

- **The judged day** of the area rules is the newest *complete* day (``inspection.area``): an
  incomplete day fires no loss rule, and an open alert keeps its state while the days after it
  are incomplete. Its loss rate is the one after the estimate of the missing customer-intervals
  (``loss_rate_net``) when ``judge_with_estimate`` (default), so a complete day's 1-2 % of missing
  intervals does not read as loss; the metered rate is in the evidence too.
- **area_loss_jump** is not judged on a negative-loss day: with a customer mapped to the wrong
  area the rate measures the mapping error, and its swings are not loss jumps (the simulated
  wrong-area case: -5 to -25 %, moving by several points from day to day with the customer's
  load).
- **Trailing medians** (jump, drop) use the complete days among the 30 before the judged days,
  and need at least ``min_trailing_days`` (7) of them; a customer's median must be above
  ``drop_median_floor_kwh`` (1 kWh a day: an empty flat's standby is not a "drop").
- **"The area's loss rose"** (``consumption_drop`` major): the area's loss rate over the drop
  days (loss / supply, summed) is at least ``drop_area_rise_points`` (1 point) above the median of
  its complete trailing days.
- **stopped_reporting** is a statement about the data, not the wall clock: silence is measured
  at the area's *data time*, the newest interval end of the summary meter and of the area's
  other customers' meters. A meter is silent when its newest interval ends more than ``silent_s``
  (4 h) before it; the summary meter and each other meter report when theirs ends within 4 h of
  it. So whole days delivered after midnight (daily curves) are judged whenever they arrive, and
  an area whose collection stopped altogether (no newer data) accuses nobody. The area's *other
  customers'* meters count (a customer whose meters all failed together is one case: the meters
  are evidence, ``stopped_together``); without any other meter, the summary meter alone decides.
  Once open, the alert stays open until the meter reports again, whatever its neighbours do. The
  wall clock keeps only the history horizon (below).
- **tamper_flag** stays open while a tamper code was seen within ``tamper_keep_s`` (30 days,
  an inspection round), then resolves; a new tamper reading re-publishes it (evidence).
- **History** (``timing.recent_s``, 7 days, as the credit alerts): a judged day that ended before
  ``now - recent_s`` publishes nothing (a load of old data opens no alert); neither does a drop
  that ended before it, a tamper code older than it, or a meter silent since before it (also a
  meter replaced long ago: it is remembered while its readings are in the kept days; one
  replaced within the horizon reads as stopped until then, the replacement is not known here).

The life cycle is the credit alerts' (``alerts.credit_rules.decide``: holds, flapping, evidence
refresh: an open area alert is published again when its loss rate moves by more than
``evidence_change_points`` or a new first suspect leads the second by ``lead_margin`` of score,
never because a day passed), with
``alert_id = inspection:<customer or area>:<rule>`` (``inspection_kind``). Area
alerts carry ``suspects`` (``inspection.suspects``), most suspicious first, and ``manager_ids``
(their managers); no customer name anywhere.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from alerts.credit_rules import (
    AlertKind,
    AlertTrack,
    CreditThresholds,
    CreditTiming,
    CustomerAlerts,
    Evaluation,
    Firing,
    decide,
    is_open,
)
from inspection.area import CustomerDay, DayFigures
from inspection.suspects import Suspect
from metering.load import DEFAULT_TZ

HIGH_LOSS = "area_high_loss"
NEGATIVE_LOSS = "area_negative_loss"
LOSS_JUMP = "area_loss_jump"
CONSUMPTION_DROP = "consumption_drop"
STOPPED_REPORTING = "stopped_reporting"
TAMPER_FLAG = "tamper_flag"
AREA_RULES = (HIGH_LOSS, NEGATIVE_LOSS, LOSS_JUMP)
CUSTOMER_RULES = (CONSUMPTION_DROP, STOPPED_REPORTING, TAMPER_FLAG)
MAJOR_IMPORTANCE = frozenset({"special", "level1"})
SUSPECTS_IN_EVIDENCE = 3  # the top suspects an area alert's evidence names (its first is news)

Conditions = dict[str, tuple[Firing | None, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class InspectionThresholds:
    high_loss_major: float = 0.10
    high_loss_critical: float = 0.20
    negative_loss: float = -0.01
    jump_points: float = 0.05
    trailing_days: int = 30
    min_trailing_days: int = 7
    judge_with_estimate: bool = True
    drop_share: float = 0.40
    drop_days: int = 3
    drop_median_floor_kwh: float = 1.0
    drop_area_rise_points: float = 0.01
    silent_s: float = 4 * 3600.0
    neighbours_share: float = 0.80
    tamper_codes: frozenset[str] = frozenset({"tamper", "cover_open", "magnetic"})
    tamper_keep_s: float = 30 * 86400.0
    evidence_change_points: float = 0.02  # an open loss alert is re-published when its rate moves this much
    lead_margin: float = 0.05  # ... or when a new first suspect leads the second by this much of score
    suspects_listed: int = 10


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate * 100:.1f} %"


def _iso(instant: float | None) -> str | None:
    return None if instant is None else datetime.fromtimestamp(instant, UTC).isoformat()


def judged_rate(day: DayFigures, t: InspectionThresholds) -> float | None:
    """The loss rate the area rules judge: after the estimate when configured and available."""
    if t.judge_with_estimate and day.loss_rate_net is not None:
        return day.loss_rate_net
    return day.loss_rate


def judged_day(days: Sequence[DayFigures]) -> DayFigures | None:
    """The newest complete day of ``days`` (oldest first), None without one."""
    return next((d for d in reversed(days) if d.complete), None)


def trailing_median(values: Sequence[float | None], t: InspectionThresholds) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if len(known) >= t.min_trailing_days else None


# ---------------------------------------------------------------------- area conditions


def area_conditions(days: Sequence[DayFigures], t: InspectionThresholds) -> Conditions:
    """Per area rule: the firing (or None) and the evidence, judged on the newest complete day
    of ``days`` (the area's local days, oldest first, the trailing ones included)."""
    day = judged_day(days)
    if day is None:
        return {rule: (None, {}) for rule in AREA_RULES}
    rate = judged_rate(day, t)
    base: dict[str, Any] = {
        "date": day.date.isoformat(),
        "loss_rate": rate,
        "loss_rate_metered": day.loss_rate,
        "loss_kwh": day.loss_kwh,
        "supplied_kwh": day.supplied_kwh,
        "consumed_kwh": day.consumed_kwh,
        "estimated_missing_kwh": day.estimated_missing_kwh,
        "coverage": day.coverage,
    }
    out: Conditions = {}
    if rate is None:
        return {rule: (None, dict(base)) for rule in AREA_RULES}
    on = f"on {day.date.isoformat()}"

    ev = {**base, "threshold": t.high_loss_major, "threshold_critical": t.high_loss_critical}
    if rate > t.high_loss_critical:
        reason = f"line loss {_pct(rate)} {on}, above {_pct(t.high_loss_critical)}"
        out[HIGH_LOSS] = (Firing("critical", HIGH_LOSS, reason, ev), ev)
    elif rate > t.high_loss_major:
        reason = f"line loss {_pct(rate)} {on}, above {_pct(t.high_loss_major)}"
        out[HIGH_LOSS] = (Firing("major", HIGH_LOSS, reason, ev), ev)
    else:
        out[HIGH_LOSS] = (None, ev)

    ev = {**base, "threshold": t.negative_loss}
    if rate < t.negative_loss:
        reason = (
            f"negative line loss {_pct(rate)} {on}, below {_pct(t.negative_loss)}: a customer mapped "
            "to the wrong area, or a summary-meter or CT-ratio fault"
        )
        out[NEGATIVE_LOSS] = (Firing("minor", NEGATIVE_LOSS, reason, ev), ev)
    else:
        out[NEGATIVE_LOSS] = (None, ev)

    ordinal = day.date.toordinal()
    trailing = [
        judged_rate(d, t)
        for d in days
        if d.complete and ordinal - t.trailing_days <= d.date.toordinal() < ordinal
    ]
    median = trailing_median(trailing, t)
    if rate < t.negative_loss:
        median = None  # a negative-loss day measures a mapping or metering error, not loss: no jump
    ev = {
        **base,
        "trailing_median": median,
        "trailing_days": sum(1 for v in trailing if v is not None),
        "threshold_points": t.jump_points,
    }
    if median is not None and rate > median + t.jump_points:
        reason = (
            f"line loss {_pct(rate)} {on}, {(rate - median) * 100:.1f} points above its 30-day "
            f"median {_pct(median)} (more than {t.jump_points * 100:g})"
        )
        out[LOSS_JUMP] = (Firing("major", LOSS_JUMP, reason, ev), ev)
    else:
        out[LOSS_JUMP] = (None, ev)
    return out


# ---------------------------------------------------------------------- customer conditions


def consumption_drop(
    series: Sequence[CustomerDay], area_days: Sequence[DayFigures], t: InspectionThresholds
) -> tuple[Firing | None, dict[str, Any]]:
    """``series``: the customer's local days, oldest first; ``area_days``: its area's. A day
    counts when both the area's day and the customer's own day are complete. The drop days are
    the ``drop_days`` calendar days ending with the newest such day."""
    area = {d.date: d for d in area_days}

    def complete(day: CustomerDay) -> bool:
        a = area.get(day.date)
        return day.complete and a is not None and a.complete

    usable = [d for d in series if complete(d)]
    if not usable:
        return None, {}
    end = usable[-1].date
    drop_dates = [end - timedelta(days=k) for k in reversed(range(t.drop_days))]
    by_date = {d.date: d for d in usable}
    first = drop_dates[0].toordinal()
    trailing = [d.kwh for d in usable if first - t.trailing_days <= d.date.toordinal() < first]
    median = trailing_median(trailing, t)
    drop = [by_date.get(d) for d in drop_dates]
    evidence: dict[str, Any] = {
        "dates": [d.isoformat() for d in drop_dates],
        "kwh": [None if d is None else d.kwh for d in drop],
        "trailing_median_kwh": median,
        "trailing_days": len(trailing),
        "threshold_share": t.drop_share,
    }
    if median is None or median <= t.drop_median_floor_kwh or any(d is None for d in drop):
        return None, evidence
    if not all(d is not None and d.kwh < t.drop_share * median for d in drop):
        return None, evidence
    # did the area's loss rise over the same days?
    drop_area = [area[d] for d in drop_dates]
    supplied = sum(d.supplied_kwh for d in drop_area)
    loss = sum(
        d.loss_kwh_net if t.judge_with_estimate and d.loss_kwh_net is not None else d.loss_kwh
        for d in drop_area
    )
    area_rate = loss / supplied if supplied > 0 else None
    area_trailing = [
        judged_rate(d, t)
        for d in area_days
        if d.complete and first - t.trailing_days <= d.date.toordinal() < first
    ]
    area_median = trailing_median(area_trailing, t)
    rose = (
        area_rate is not None
        and area_median is not None
        and area_rate - area_median >= t.drop_area_rise_points
    )
    evidence.update(
        {
            "share_of_median": max(d.kwh for d in drop if d is not None) / median,
            "area_loss_rate": area_rate,
            "area_trailing_median": area_median,
            "area_loss_rose": rose,
        }
    )
    reason = (
        f"daily consumption below {t.drop_share * 100:g} % of its 30-day median ({median:.1f} kWh) "
        f"for {t.drop_days} days to {end.isoformat()}"
        + (f"; its area's loss rose to {_pct(area_rate)} (median {_pct(area_median)})" if rose else "")
    )
    return Firing("major" if rose else "minor", CONSUMPTION_DROP, reason, evidence), evidence


def area_data_end(other_meters: Sequence[int], supply_end: int | None) -> int | None:
    """The area's data time for ``stopped_reporting``: the newest interval end of its summary
    meter and its other customers' meters (None without any)."""
    ends = [*other_meters, *([supply_end] if supply_end is not None else [])]
    return max(ends) if ends else None


def stopped_reporting(
    own_meters: Mapping[str, int],
    other_meters: Sequence[int],
    supply_end: int | None,
    *,
    importance: str | None,
    tariff_class: str | None,
    already_open: bool,
    t: InspectionThresholds,
) -> tuple[Firing | None, dict[str, Any]]:
    """``own_meters``: the customer's meters and the end of each one's newest interval (epoch
    s); ``other_meters``: the same ends of the area's other customers' meters; ``supply_end``:
    the summary meter's. Judged at the area's data time (`area_data_end`), not the wall clock:
    silent, a meter without an interval ending within ``silent_s`` of it."""
    at = area_data_end(other_meters, supply_end)
    if at is None:
        silent: dict[str, int] = {}
        reporting, supply_on = 0, False
    else:
        silent = {m: end for m, end in own_meters.items() if at - end > t.silent_s}
        reporting = sum(1 for end in other_meters if at - end <= t.silent_s)
        supply_on = supply_end is not None and at - supply_end <= t.silent_s
    share = reporting / len(other_meters) if other_meters else None
    ends = sorted(silent.values())
    evidence: dict[str, Any] = {
        "silent_meters": [{"meter_id": m, "last_interval_end": _iso(silent[m])} for m in sorted(silent)],
        "meters": len(own_meters),
        "stopped_together": len(ends) > 1 and ends[-1] - ends[0] <= 3600,
        "neighbours_reporting_share": share,
        "summary_meter_reporting": supply_on,
        "area_data_end": None if at is None else _iso(at),
        "threshold_h": t.silent_s / 3600.0,
    }
    if not silent:
        return None, evidence
    area_reports = supply_on and (share is None or share >= t.neighbours_share)
    if not (already_open or area_reports):
        return None, evidence
    major = (importance in MAJOR_IMPORTANCE) or tariff_class == "large_industrial"
    since = _iso(ends[0])
    what = f"{len(silent)} of its {len(own_meters)} meters" if len(own_meters) > 1 else "its meter"
    reason = f"{what} silent since {since} (more than {t.silent_s / 3600:g} h) while the area reports" + (
        " (stopped together)" if evidence["stopped_together"] else ""
    )
    return Firing("major" if major else "minor", STOPPED_REPORTING, reason, evidence), evidence


def tamper_codes(quality: Sequence[str] | None, t: InspectionThresholds) -> list[str]:
    """The tamper codes among a reading's quality codes."""
    return sorted({code for code in quality or () if code in t.tamper_codes})


@dataclass(frozen=True, slots=True)
class TamperSeen:
    """The newest reading of a customer that carried a tamper code."""

    meter_id: str
    interval_end: int  # epoch s
    codes: tuple[str, ...]


def tamper_flag(
    seen: TamperSeen | None, now: float, t: InspectionThresholds
) -> tuple[Firing | None, dict[str, Any]]:
    if seen is None:
        return None, {}
    evidence: dict[str, Any] = {
        "meter_id": seen.meter_id,
        "interval_end": _iso(seen.interval_end),
        "codes": list(seen.codes),
        "keep_days": t.tamper_keep_s / 86400.0,
    }
    if now - seen.interval_end > t.tamper_keep_s:
        return None, evidence
    reason = f"meter {seen.meter_id} reported {', '.join(seen.codes)} at {evidence['interval_end']}"
    return Firing("major", TAMPER_FLAG, reason, evidence), evidence


# ---------------------------------------------------------------------- the life cycle


def _rate_moved(old: Mapping[str, Any], new: Mapping[str, Any], points: float) -> bool:
    a, b = old.get("loss_rate"), new.get("loss_rate")
    if a is None or b is None:
        return a is not b
    return abs(float(b) - float(a)) > points


def _leader(evidence: Mapping[str, Any]) -> str | None:
    suspects = evidence.get("suspects") or []
    return str(suspects[0]) if suspects else None


def _evidence_changed(
    t: InspectionThresholds, family: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> bool:
    """What a reader of the open alert would want to know again: not a new day alone."""
    if family in AREA_RULES:
        # a new suspect an inspector would visit first, clearly ahead of the rest: the order
        # among near-equal scores (an area whose loss no member explains) moves with daily noise
        new_leader = _leader(old) != _leader(new) and float(new.get("lead") or 0.0) >= t.lead_margin
        return _rate_moved(old, new, t.evidence_change_points) or new_leader
    if family == CONSUMPTION_DROP:
        return old.get("area_loss_rose") != new.get("area_loss_rose")
    if family == STOPPED_REPORTING:
        return old.get("silent_meters") != new.get("silent_meters")
    return old.get("interval_end") != new.get("interval_end")


def _resolution_reason(
    t: InspectionThresholds, family: str, last: Mapping[str, Any], now: Mapping[str, Any]
) -> str:
    if family in AREA_RULES:
        return f"resolved: line loss {_pct(now.get('loss_rate'))} on {now.get('date')}"
    if family == CONSUMPTION_DROP:
        return f"resolved: daily consumption back above {t.drop_share * 100:g} % of its median"
    if family == STOPPED_REPORTING:
        return "resolved: reporting again"
    return f"resolved: no tamper code for {t.tamper_keep_s / 86400:g} days"


def inspection_kind(scope: str, t: InspectionThresholds) -> AlertKind:
    """The alert kind of a customer (``scope = "customer"``) or an area (``"transformer_area"``)."""
    field = "customer_id" if scope == "customer" else "transformer_area"
    return AlertKind(
        kind="inspection",
        alert_id=lambda scope_id, family: f"inspection:{scope_id}:{family}",
        scope_fields=lambda scope_id: {"scope": scope, field: scope_id},
        evidence_changed=lambda family, old, new: _evidence_changed(t, family, old, new),
        resolution_reason=lambda family, last, now: _resolution_reason(t, family, last, now),
    )


def _evaluate(
    scope_id: str,
    conditions: Conditions,
    held: CustomerAlerts,
    now: float,
    *,
    ts: str,
    manager_id: str | None,
    kind: AlertKind,
    timing: CreditTiming,
) -> Evaluation:
    """Every family of one scope at ``now`` through ``decide``; ``held.tracks`` is updated,
    ``held.published`` is not (the caller applies what it publishes)."""
    out: list[dict[str, Any]] = []
    due: float | None = None
    for family, (firing, evidence) in conditions.items():
        previous = held.published.get(family)
        track = held.tracks.get(family)
        if track is None:
            if firing is None and previous is None:
                continue
            track = held.tracks[family] = AlertTrack.start(previous, now)
        decision = decide(
            scope_id,
            family,
            previous,
            firing,
            evidence,
            track,
            now,
            ts=ts,
            manager_id=manager_id,
            thresholds=_CREDIT_UNUSED,
            timing=timing,
            kind=kind,
        )
        if decision.message is not None:
            out.append(decision.message)
        if decision.due is not None:
            due = decision.due if due is None else min(due, decision.due)
        if track.idle(now, timing) and not is_open(decision.message or previous):
            del held.tracks[family]
    return Evaluation(out, due)


_CREDIT_UNUSED = CreditThresholds()  # `decide` takes them for credit's kind; ours is passed


def _day_end(day: date, tz: ZoneInfo) -> float:
    nxt = day + timedelta(days=1)
    return datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz).timestamp()


def evaluate_area(
    transformer_area: str,
    days: Sequence[DayFigures],
    suspects: Sequence[Suspect],
    held: CustomerAlerts,
    now: float,
    *,
    ts: str,
    thresholds: InspectionThresholds,
    timing: CreditTiming,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Evaluation:
    """The area rules of one area at ``now``: ``days`` its local days (oldest first, the 30
    trailing ones included), ``suspects`` its ranked suspects (``inspection.suspects.rank``).
    High-loss and jump alerts list the suspects (top ``suspects_listed``) and their managers."""
    day = judged_day(days)
    if day is None or _day_end(day.date, tz) < now - timing.recent_s:
        return Evaluation([], None)  # nothing complete, or history: nothing is news
    conditions = area_conditions(days, thresholds)
    listed = list(suspects[: thresholds.suspects_listed])
    top = [s.customer_id for s in listed[:SUSPECTS_IN_EVIDENCE]]
    lead = round(listed[0].score - (listed[1].score if len(listed) > 1 else 0.0), 4) if listed else None
    for rule in (HIGH_LOSS, LOSS_JUMP):
        conditions[rule][1]["suspects"] = top
        conditions[rule][1]["lead"] = lead  # the first suspect's score less the second's
    evaluation = _evaluate(
        transformer_area,
        conditions,
        held,
        now,
        ts=ts,
        manager_id=None,
        kind=inspection_kind("transformer_area", thresholds),
        timing=timing,
    )
    for message in evaluation.messages:
        message.pop("manager_id", None)
        with_suspects = message["rule"] in (HIGH_LOSS, LOSS_JUMP) and message["status"] != "resolved"
        shown = listed if with_suspects else []
        message["suspects"] = [s.to_dict() for s in shown]
        message["manager_ids"] = sorted({s.manager_id for s in shown if s.manager_id})
    return evaluation


@dataclass(frozen=True, slots=True)
class CustomerInputs:
    """What the customer rules read of one customer at an evaluation."""

    days: Sequence[CustomerDay]  # its local days, oldest first
    meters: Mapping[str, int]  # its meters' newest interval ends (epoch s)
    tamper: TamperSeen | None = None
    importance: str | None = None
    tariff_class: str | None = None
    manager_id: str | None = None


def evaluate_customer(
    customer_id: str,
    inputs: CustomerInputs,
    area_days: Sequence[DayFigures],
    other_meters: Sequence[int],
    supply_end: int | None,
    held: CustomerAlerts,
    now: float,
    *,
    ts: str,
    thresholds: InspectionThresholds,
    timing: CreditTiming,
    tz: ZoneInfo = DEFAULT_TZ,
) -> Evaluation:
    """The customer rules of one member of an area at ``now`` (``other_meters``: the newest
    interval ends of the area's other customers' meters; ``supply_end``: the summary meter's)."""
    drop = consumption_drop(inputs.days, area_days, thresholds)
    if drop[0] is not None and not is_open(held.published.get(CONSUMPTION_DROP)):
        newest = date.fromisoformat(drop[1]["dates"][-1])
        if _day_end(newest, tz) < now - timing.recent_s:
            drop = (None, drop[1])  # history: a drop that ended before the horizon opens nothing
    horizon = now - timing.recent_s
    silent_open = is_open(held.published.get(STOPPED_REPORTING))
    # a meter silent since before the horizon (history, or a meter replaced long ago) opens nothing
    meters = {m: end for m, end in inputs.meters.items() if silent_open or end >= horizon}
    tamper = inputs.tamper
    if tamper is not None and tamper.interval_end < horizon and not is_open(held.published.get(TAMPER_FLAG)):
        tamper = None  # a tamper code in loaded history opens nothing
    conditions: Conditions = {
        CONSUMPTION_DROP: drop,
        STOPPED_REPORTING: stopped_reporting(
            meters,
            other_meters,
            supply_end,
            importance=inputs.importance,
            tariff_class=inputs.tariff_class,
            already_open=silent_open,
            t=thresholds,
        ),
        TAMPER_FLAG: tamper_flag(tamper, now, thresholds),
    }
    return _evaluate(
        customer_id,
        conditions,
        held,
        now,
        ts=ts,
        manager_id=inputs.manager_id,
        kind=inspection_kind("customer", thresholds),
        timing=timing,
    )


__all__ = [
    "AREA_RULES",
    "CONSUMPTION_DROP",
    "CUSTOMER_RULES",
    "HIGH_LOSS",
    "LOSS_JUMP",
    "NEGATIVE_LOSS",
    "STOPPED_REPORTING",
    "TAMPER_FLAG",
    "CustomerInputs",
    "InspectionThresholds",
    "TamperSeen",
    "area_conditions",
    "area_data_end",
    "consumption_drop",
    "evaluate_area",
    "evaluate_customer",
    "inspection_kind",
    "stopped_reporting",
    "tamper_codes",
    "tamper_flag",
]
