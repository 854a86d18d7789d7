"""Transformer areas with summary meters, and the inspection cases (issue 13, DOMAIN.md 6).

A transformer area (台区) takes its energy through one summary meter (台区总表) on the low-voltage
side; its customers' meters sit behind it, and what the summary meter counts that the customers'
meters do not is the area's line loss (DOMAIN.md 6: loss_kwh = supplied - consumed, loss_rate =
loss_kwh / supplied). For a population (simulator/population.py: every customer has a
``transformer_area`` TA#### under a feeder) and whole local days, :class:`AreaSimulation` gives,
day by day (:meth:`AreaSimulation.day`):

- the TRUE energy of every customer interval: the load model's (simulator/load.py; the same
  numbers as the simulator's single readings and blocks of the same seed, rounded to 0.1 Wh),
  times the holiday factor where a holiday applies;
- what every meter REPORTS (``meter.readings``): that energy split evenly among the customer's
  meters (one unless a case gives it more), with the cases below applied, rounded as every
  simulated reading (kWh, kvarh to 4 decimals, kW to 3); the load model's quality codes
  (``power_fail``, ``estimated``) carried over;
- every summary meter's reading (``area.readings``, meter ``SUM-<area>``): the true energy of
  the customers PHYSICALLY in the area times (1 + technical loss), rounded to 4 decimals.

Technical loss (the "few per cent" of issue 13): each area has a base rate drawn uniform in
[2 %, 5 %] (:class:`LossOptions`; low-voltage areas are managed to a 0-10 % band, DOMAIN.md 6),
plus a daily gaussian noise of 0.3 points, clipped to [0.5 %, 8 %]. Since the loss rate is
loss / supplied, a technical loss ``l`` shows as the loss rate l / (1 + l).

The cases (:class:`Scenario`; an instant is epoch seconds on a 15-minute boundary, and an interval
is affected when it starts in [since, until)):

- ``theft``: the customer's meters report (1 - share) of its true load; the summary meter still
  sees all of it, so the area's loss rises by share x the customer's energy;
- ``white_screen``: the customer's ``meters`` meters (its load split evenly among them; several
  meters of one customer failing alike, the microwave-jammed case of DOMAIN.md 6) report
  nothing: no single reading stamped after ``since``, nulls in the day's block (no block for a
  day with nothing read); the energy still flows through the summary meter;
- ``tamper``: the meters' readings carry the quality ``codes`` (of DOMAIN.md 6: ``tamper``,
  ``cover_open``, ``magnetic``; the contract's quality field takes any code and names
  ``tamper`` among its examples: no other code is added); with ``share`` the meter also
  under-registers as a thief's would;
- ``wrong_area``: the topology (the customer's ``customers`` profile, unchanged) keeps the
  customer in its area while its energy flows through ``physical_area``'s summary meter: the
  topology area's loss falls (negative when the customer is a large enough part of it), the
  physical area's rises by the customer's energy;
- ``holiday``: the customer's TRUE consumption is (1 - share) of the model's: its meter and its
  area's summary meter both drop, the area's loss rate stays where it was.

Every scenario carries its :class:`Outcome`, what the inspection rules of DOMAIN.md 6 should make
of it (which area's loss goes high or negative, which customer rules fire, whether the customer
ranks first among its area's suspects), so the tests and the stream's integration test assert on
the same description. :func:`plan_scenarios` picks, on a population, customers and areas for every
case with a margin on each threshold, from the days' exact aggregates (:func:`daily_totals`).

Pure and seeded: numbers in, documents out; no clock read, no I/O. The loss of an area is drawn
from generators seeded by (seed, the area's name) and (seed, the day's start), so a day's numbers
do not depend on where the run started.
"""

from __future__ import annotations

import heapq
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from schemas import topics
from simulator.bad import BadConfig, ReadingDelivery
from simulator.blocks import (
    CollectionOptions,
    DayCurves,
    _block_value,
    daily_blocks,
    day_curves,
    local_midnights,
)
from simulator.clock import INTERVAL_S, rfc3339
from simulator.load import LoadModel
from simulator.population import Population
from simulator.run import Message

Case = Literal["theft", "white_screen", "tamper", "wrong_area", "holiday"]
CASES: tuple[str, ...] = get_args(Case)
TAMPER_CODES: tuple[str, ...] = ("tamper", "cover_open", "magnetic")  # DOMAIN.md 6, tamper_flag
Form = Literal["single", "block"]

# DOMAIN.md 6 thresholds the planner keeps its margins from (the rules live in inspection/)
HIGH_LOSS = 0.10  # area_high_loss: a complete day's loss rate above it
NEGATIVE_LOSS = -0.01  # area_negative_loss: below it
JUMP = 0.05  # area_loss_jump: above the trailing 30-day median by more
DROP = 0.40  # consumption_drop: daily kWh below this share of the trailing median ...
DROP_DAYS = 3  # ... for this many consecutive complete days
MARGIN = 0.02  # the planner keeps every planned loss rate this far from a threshold
CRITICAL_LOSS = 0.20  # area_high_loss is critical above it
WRONG_PART = (0.05, 0.30)  # a wrong-area customer's load: this part of its physical area's
WRONG_RATE = (-0.25, -0.05)  # the topology area's loss rate the planner aims the wrong area at


def summary_meter_id(area: str) -> str:
    """The summary meter of a transformer area."""
    return f"SUM-{area}"


@dataclass(frozen=True)
class LossOptions:
    """Technical loss of the areas: base uniform in [base_min, base_max] per area, plus a daily
    gaussian noise of ``daily_sigma``, clipped to [floor, ceiling] (fractions of the energy the
    customers take: the summary meter reads their sum x (1 + loss))."""

    base_min: float = 0.02
    base_max: float = 0.05
    daily_sigma: float = 0.003
    floor: float = 0.005
    ceiling: float = 0.08

    def __post_init__(self) -> None:
        if not 0 <= self.floor <= self.base_min <= self.base_max <= self.ceiling < 1:
            raise ValueError("technical loss: need 0 <= floor <= base_min <= base_max <= ceiling < 1")
        if self.daily_sigma < 0:
            raise ValueError("technical loss: daily_sigma must be >= 0")


@dataclass(frozen=True)
class Outcome:
    """What the inspection rules (DOMAIN.md 6) should make of a scenario.

    ``area_rules`` fire on ``transformer_area`` (area_high_loss, area_negative_loss,
    area_loss_jump), ``other_area_rules`` on ``other_area`` (the physical area of a wrong-area
    customer); ``customer_rules`` on the customer (consumption_drop, stopped_reporting,
    tamper_flag); ``rank_first``: True = the customer ranks first among the suspects of its
    area's alert, False = it must not, None = no claim. ``from_day``: the first local day
    (ISO date) that shows it."""

    transformer_area: str
    area_rules: tuple[str, ...] = ()
    customer_rules: tuple[str, ...] = ()
    rank_first: bool | None = None
    other_area: str | None = None
    other_area_rules: tuple[str, ...] = ()
    from_day: str | None = None


@dataclass(frozen=True)
class Scenario:
    """One inspection case on one customer: from ``since`` (epoch s, on a 15-minute boundary) to
    ``until`` (exclusive; None = to the end of the run). ``share``: the part of the true load the
    meter does not count (theft, tamper) or the customer does not use (holiday). ``meters``: how
    many meters the customer has (white_screen: all of them go silent). ``codes``: the quality
    codes of a tamper case. ``physical_area``: where a wrong-area customer's energy flows."""

    case: Case
    customer_id: str
    since: int
    until: int | None = None
    share: float = 0.0
    meters: int = 1
    codes: tuple[str, ...] = ()
    physical_area: str | None = None
    expected: Outcome | None = None

    def __post_init__(self) -> None:
        if self.case not in CASES:
            raise ValueError(f"unknown case {self.case!r}: one of {', '.join(CASES)}")
        if self.since % INTERVAL_S or (self.until is not None and self.until % INTERVAL_S):
            raise ValueError("since and until must be on 15-minute boundaries")
        if self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        if not 0 <= self.share <= 1:
            raise ValueError("share must be in [0, 1]")
        if self.case in ("theft", "holiday") and self.share == 0:
            raise ValueError(f"a {self.case} needs a share > 0")
        if self.case not in ("theft", "tamper", "holiday") and self.share:
            raise ValueError(f"a {self.case} has no share")
        if self.meters < 1 or (self.meters > 1 and self.case != "white_screen"):
            raise ValueError("meters: 1, or more for a white_screen")
        if self.case == "tamper":
            if not self.codes or any(c not in TAMPER_CODES for c in self.codes):
                raise ValueError(f"a tamper needs codes among {', '.join(TAMPER_CODES)}")
        elif self.codes:
            raise ValueError(f"a {self.case} has no codes")
        if (self.case == "wrong_area") != (self.physical_area is not None):
            raise ValueError("physical_area: required for a wrong_area, and only for it")

    def covers(self, starts: np.ndarray) -> np.ndarray:
        """Which of the interval starts the case applies to."""
        on = starts >= self.since
        return on & (starts < self.until) if self.until is not None else on

    def to_dict(self, tz: ZoneInfo) -> dict[str, Any]:
        """A JSON-able description (instants in RFC 3339), for logs and test reports."""
        out: dict[str, Any] = {
            "case": self.case,
            "customer_id": self.customer_id,
            "since": rfc3339(self.since, tz),
            "until": rfc3339(self.until, tz) if self.until is not None else None,
            "share": self.share,
            "meters": self.meters,
            "codes": list(self.codes),
            "physical_area": self.physical_area,
        }
        if self.expected is not None:
            e = self.expected
            out["expected"] = {
                "transformer_area": e.transformer_area,
                "area_rules": list(e.area_rules),
                "customer_rules": list(e.customer_rules),
                "rank_first": e.rank_first,
                "other_area": e.other_area,
                "other_area_rules": list(e.other_area_rules),
                "from_day": e.from_day,
            }
        return out


@dataclass(frozen=True)
class AreaDay:
    """One local day of every area, customer and meter. Arrays are [row, interval]; NaN in the
    reported arrays = nothing reported (no reading; for kvarh/export/demand also: no register)."""

    start: int  # epoch of local midnight
    starts: np.ndarray  # epoch start of each interval
    true_kwh: np.ndarray  # [customer, interval], holidays applied, unrounded
    physical_area: np.ndarray  # [customer, interval]: index into AreaSimulation.areas
    technical_loss: np.ndarray  # [area]: the day's loss, as a fraction of the customers' energy
    summary_kwh: np.ndarray  # [area, interval]
    kwh: np.ndarray  # [meter, interval]: what the meters report
    kvarh: np.ndarray
    kvarh_export: np.ndarray
    demand_kw: np.ndarray
    quality: list[list[list[str]]]  # [meter][interval]: the reading's quality codes

    @property
    def end(self) -> int:
        return int(self.starts[-1]) + INTERVAL_S


@dataclass(eq=False)
class AreaSimulation:
    """Areas, summary meters and cases over whole local days: ``days`` of them from the local
    midnight ``start`` (:func:`simulator.blocks.local_midnights`)."""

    pop: Population
    load: LoadModel
    start: int
    days: int
    seed: int
    scenarios: Sequence[Scenario] = ()
    loss: LossOptions = field(default_factory=LossOptions)

    def __post_init__(self) -> None:
        tz = self.load.tz
        if self.days < 1:
            raise ValueError("at least one day")
        first = datetime.fromtimestamp(self.start, tz)
        if first != datetime(first.year, first.month, first.day, tzinfo=tz):
            raise ValueError("start must be a local midnight")
        last = first.date() + timedelta(days=self.days)
        self.end = int(datetime(last.year, last.month, last.day, tzinfo=tz).timestamp())
        self.midnights = local_midnights(self.start, self.end, tz)
        self.tz = tz
        self.topology: list[str] = self.pop.transformer_areas
        self.areas: list[str] = sorted(set(self.topology))
        self._area_index = {a: k for k, a in enumerate(self.areas)}
        index = {c: i for i, c in enumerate(self.pop.customer_ids)}
        self._topology_idx = np.array([self._area_index[a] for a in self.topology], dtype=np.int64)
        self._of: dict[int, Scenario] = {}
        for s in self.scenarios:
            if s.customer_id not in index:
                raise ValueError(f"scenario for an unknown customer {s.customer_id}")
            i = index[s.customer_id]
            if i in self._of:
                raise ValueError(f"customer {s.customer_id} has two scenarios")
            if s.physical_area is not None:
                if s.physical_area not in self._area_index:
                    raise ValueError(f"unknown physical area {s.physical_area}")
                if s.physical_area == self.topology[i]:
                    raise ValueError(f"{s.customer_id} is already in {s.physical_area}")
            self._of[i] = s
        meter_ids: list[str] = []
        meter_customer: list[int] = []
        meter_share: list[float] = []
        for i in range(self.pop.n):
            k = self._of[i].meters if i in self._of else 1
            for j in range(k):
                meter_ids.append(
                    self.pop.meter_id(i) if j == 0 else f"MTR-{self.pop.customer_ids[i]}-{j + 1}"
                )
                meter_customer.append(i)
                meter_share.append(1 / k)
        self.meter_ids = meter_ids
        self.meter_customer = np.array(meter_customer, dtype=np.int64)
        self._meter_share = np.array(meter_share)
        crc = [zlib.crc32(a.encode()) for a in self.areas]
        self.base_loss = np.array(
            [
                np.random.default_rng([self.seed, 0x1055, c]).uniform(self.loss.base_min, self.loss.base_max)
                for c in crc
            ]
        )

    def technical_loss(self, day_start: int) -> np.ndarray:
        """Each area's technical loss on the local day starting at ``day_start``."""
        noise = np.random.default_rng([self.seed, 0x1055, day_start]).standard_normal(len(self.areas))
        return np.clip(self.base_loss + self.loss.daily_sigma * noise, self.loss.floor, self.loss.ceiling)

    def customers_in(self, area: str) -> list[str]:
        """The customers the topology puts in ``area``."""
        return [c for c, a in zip(self.pop.customer_ids, self.topology, strict=True) if a == area]

    def day(self, day_start: int) -> AreaDay:
        """The local day starting at ``day_start`` (one of ``midnights``)."""
        curves = day_curves(self.load, day_start, self.tz)
        length = curves.kwh.shape[1]
        starts = day_start + INTERVAL_S * np.arange(length, dtype=np.int64)
        n = self.pop.n
        true_factor = np.ones((n, length))
        report_factor = np.ones((n, length))
        silent = np.zeros((n, length), dtype=bool)
        physical = np.repeat(self._topology_idx[:, None], length, axis=1)
        codes: dict[int, tuple[np.ndarray, tuple[str, ...]]] = {}
        for i, s in self._of.items():
            on = s.covers(starts)
            if s.case == "holiday":
                true_factor[i, on] = 1 - s.share
            elif s.case in ("theft", "tamper"):
                report_factor[i, on] = 1 - s.share
                if s.case == "tamper":
                    codes[i] = (on, s.codes)
            elif s.case == "white_screen":
                silent[i, on] = True
            elif s.physical_area is not None:  # wrong_area
                physical[i, on] = self._area_index[s.physical_area]
        true_kwh = curves.kwh * true_factor
        loss = self.technical_loss(day_start)
        cells = (physical * length + np.arange(length)[None, :]).ravel()
        through = np.bincount(cells, weights=true_kwh.ravel(), minlength=len(self.areas) * length)
        summary = np.round(through.reshape(len(self.areas), length) * (1 + loss[:, None]), 4)

        c = self.meter_customer
        scale = np.where(silent[c], np.nan, true_factor[c] * report_factor[c] * self._meter_share[:, None])
        quality: list[list[list[str]]] = []
        for i in c.tolist():
            row = [list(q) if q else [] for q in curves.quality[i]]
            if i in codes:
                on, extra = codes[i]
                for t in np.flatnonzero(on).tolist():
                    row[t] = [*row[t], *extra]
            if silent[i].any():
                row = [[] if silent[i, t] else q for t, q in enumerate(row)]
            quality.append(row)
        return AreaDay(
            start=day_start,
            starts=starts,
            true_kwh=true_kwh,
            physical_area=physical,
            technical_loss=loss,
            summary_kwh=summary,
            kwh=np.round(curves.kwh[c] * scale, 4),
            kvarh=np.round(curves.kvarh[c] * scale, 4),
            kvarh_export=np.round(curves.kvarh_export[c] * scale, 4),
            demand_kw=np.round(curves.demand_kw[c] * scale, 3),
            quality=quality,
        )

    def all_days(self) -> Iterator[AreaDay]:
        for midnight in self.midnights:
            yield self.day(midnight)

    # -- messages ------------------------------------------------------------------------------

    def profile_messages(self, prefix: str = "") -> Iterator[Message]:
        """The ``customers`` profiles: the topology (a wrong-area customer keeps its area)."""
        topic = prefix + topics.CUSTOMERS
        for p in self.pop.profiles:
            yield Message(topic, p["customer_id"].encode(), orjson.dumps(p), "valid")

    def area_values(self, day: AreaDay, form: Form) -> Iterator[dict[str, Any]]:
        """The day's ``area.readings`` values: one daily curve per area (block), or one reading
        per area and interval (single), interval by interval, areas in order."""
        if form == "block":
            for a, area in enumerate(self.areas):
                yield {
                    "meter_id": summary_meter_id(area),
                    "transformer_area": area,
                    "start": rfc3339(day.start, self.tz),
                    "interval_s": INTERVAL_S,
                    "kwh": day.summary_kwh[a].tolist(),
                }
            return
        for t in range(len(day.starts)):
            yield from self._area_singles(day, t)

    def _area_singles(self, day: AreaDay, t: int) -> Iterator[dict[str, Any]]:
        ts = rfc3339(int(day.starts[t]) + INTERVAL_S, self.tz)
        for a, area in enumerate(self.areas):
            yield {
                "meter_id": summary_meter_id(area),
                "transformer_area": area,
                "ts": ts,
                "interval_s": INTERVAL_S,
                "kwh": float(day.summary_kwh[a, t]),
            }

    def meter_values(self, day: AreaDay, form: Form) -> Iterator[dict[str, Any]]:
        """The day's ``meter.readings`` values, cases applied: one daily curve per meter
        (block; ``null`` where not read, no block for a meter that read nothing that day), or
        single readings interval by interval, meters in order, none for an interval not read."""
        customers = self.pop.customer_ids
        if form == "block":
            for m, i in enumerate(self.meter_customer.tolist()):
                if np.isnan(day.kwh[m]).all():
                    continue
                columns = {
                    "kwh": day.kwh[m],
                    "kvarh": day.kvarh[m],
                    "kvarh_export": day.kvarh_export[m],
                    "demand_kw": day.demand_kw[m],
                }
                quality = [q or None for q in day.quality[m]]
                yield _block_value(self.meter_ids[m], customers[i], day.start, self.tz, columns, quality)
            return
        for t in range(len(day.starts)):
            yield from self._meter_singles(day, t)

    def _meter_singles(self, day: AreaDay, t: int) -> Iterator[dict[str, Any]]:
        ts = rfc3339(int(day.starts[t]) + INTERVAL_S, self.tz)
        customers = self.pop.customer_ids
        kwh, kvarh = day.kwh[:, t].tolist(), day.kvarh[:, t].tolist()
        export, demand = day.kvarh_export[:, t].tolist(), day.demand_kw[:, t].tolist()
        for m, i in enumerate(self.meter_customer.tolist()):
            if kwh[m] != kwh[m]:  # NaN: not read
                continue
            kv, ex, dm = kvarh[m], export[m], demand[m]
            yield {
                "meter_id": self.meter_ids[m],
                "customer_id": customers[i],
                "ts": ts,
                "interval_s": INTERVAL_S,
                "kwh": kwh[m],
                "kvarh": None if kv != kv else kv,  # NaN: no register
                "kvarh_export": None if ex != ex else ex,
                "demand_kw": None if dm != dm else dm,
                "quality": day.quality[m][t],
            }

    def messages(
        self,
        form: Form = "single",
        prefix: str = "",
        profiles: bool = True,
        singles: BadConfig | None = None,
        collection: CollectionOptions | None = None,
    ) -> Iterator[Message]:
        """The whole run as delivered: the ``customers`` profiles first (``profiles``), then
        day by day the summary meters' values (``area.readings``, key transformer_area) and the
        customers' meters' values (``meter.readings``, key customer_id): single readings
        interval by interval (the areas', then the meters'), or each day's curves after it.

        ``singles`` (single form): both topics delivered as a head-end does (simulator/bad.py's
        ReadingDelivery): a share late, a share retried (outcome ``duplicate``), and on
        ``meter.readings`` a share of corrupted copies (outcome: the DLQ kind); the summary
        meters get no corrupted copies (bad.py corrupts meter.readings' fields).
        ``collection`` (block form): both topics' curves delivered as a collection run
        (simulator/blocks.py's daily_blocks: some late, some retried, some re-sent overlapping);
        its ``partial_share`` must be 0: nulls would change the coverage the expected outcomes
        are planned on. Late and retried inputs carry the same intervals: the figures are those
        of the in-order run."""
        if form not in get_args(Form):
            raise ValueError(f"form: one of {', '.join(get_args(Form))}")
        if (singles is not None and form != "single") or (collection is not None and form != "block"):
            raise ValueError("singles goes with the single form, collection with the block form")
        if collection is not None and collection.partial_share:
            raise ValueError("collection.partial_share must be 0 (nulls change the days' coverage)")
        t_area, t_read = prefix + topics.AREA_READINGS, prefix + topics.METER_READINGS
        if profiles:
            yield from self.profile_messages(prefix)
        if form == "block":
            yield from self._block_messages(t_area, t_read, collection)
            return
        meters = ReadingDelivery(singles, self.seed) if singles is not None else None
        areas = (
            None if singles is None else ReadingDelivery(replace(singles, bad_share=0.0), self.seed ^ 0xA4EA)
        )
        for day in self.all_days():
            for t in range(len(day.starts)):
                step = int(day.starts[t])
                area_values = [(v["transformer_area"].encode(), v) for v in self._area_singles(day, t)]
                meter_values = [(v["customer_id"].encode(), v) for v in self._meter_singles(day, t)]
                for topic, values, delivery in ((t_area, area_values, areas), (t_read, meter_values, meters)):
                    if delivery is None:
                        for key, v in values:
                            yield Message(topic, key, orjson.dumps(v), "valid")
                        continue
                    for key, raw, outcome in delivery.push(
                        step, [(k, v, orjson.dumps(v)) for k, v in values]
                    ):
                        yield Message(topic, key, raw, outcome)
        for topic, delivery in ((t_area, areas), (t_read, meters)):
            if delivery is not None:
                for key, raw, outcome in delivery.flush():
                    yield Message(topic, key, raw, outcome)

    def _block_messages(
        self, t_area: str, t_read: str, collection: CollectionOptions | None
    ) -> Iterator[Message]:
        if collection is None:
            for day in self.all_days():
                for v in self.area_values(day, "block"):
                    yield Message(t_area, v["transformer_area"].encode(), orjson.dumps(v), "valid")
                for v in self.meter_values(day, "block"):
                    yield Message(t_read, v["customer_id"].encode(), orjson.dumps(v), "valid")
            return
        owners = [self.pop.customer_ids[i] for i in self.meter_customer.tolist()]
        sums = [summary_meter_id(a) for a in self.areas]
        previous: tuple[DayCurves, DayCurves] | None = None
        for day in self.all_days():
            length = len(day.starts)
            none = np.full((len(self.areas), length), np.nan)
            curves = (
                DayCurves(
                    day.start, day.summary_kwh, none, none, none, [[None] * length for _ in self.areas]
                ),
                DayCurves(
                    day.start,
                    day.kwh,
                    day.kvarh,
                    day.kvarh_export,
                    day.demand_kw,
                    [[q or None for q in row] for row in day.quality],
                ),
            )
            area_blocks = daily_blocks(
                curves[0], self.areas, sums, self.tz, self.seed ^ 0xA4EA, collection, previous and previous[0]
            )
            meter_blocks = daily_blocks(
                curves[1], owners, self.meter_ids, self.tz, self.seed, collection, previous and previous[1]
            )
            merged = heapq.merge(
                ((t_area, b) for b in area_blocks),
                ((t_read, b) for b in meter_blocks),
                key=lambda x: x[1].sent_at,
            )
            for topic, block in merged:
                value = orjson.loads(block.value)
                if all(v is None for v in value["kwh"]):
                    continue  # a meter that read nothing sends nothing
                raw = block.value
                if topic == t_area:  # daily_blocks writes the owner as customer_id
                    value["transformer_area"] = value.pop("customer_id")
                    raw = orjson.dumps(value)
                yield Message(topic, block.key, raw, block.outcome)
            previous = curves


# -- the planner -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DailyTotals:
    """Daily aggregates of a run without cases: ``kwh`` [customer, day] (true = reported),
    ``loss`` [area, day] (technical), ``days`` (ISO dates) and ``starts`` (local midnights)."""

    kwh: np.ndarray
    loss: np.ndarray
    days: list[str]
    starts: list[int]


def daily_totals(sim: AreaSimulation) -> DailyTotals:
    """Each customer's kWh and each area's technical loss per local day (cases ignored)."""
    bare = replace(sim, scenarios=())
    kwh, loss = [], []
    for midnight in bare.midnights:
        curves = day_curves(bare.load, midnight, bare.tz)
        kwh.append(curves.kwh.sum(axis=1))
        loss.append(bare.technical_loss(midnight))
    days = [datetime.fromtimestamp(m, sim.tz).date().isoformat() for m in bare.midnights]
    return DailyTotals(np.stack(kwh, axis=1), np.stack(loss, axis=1), days, list(bare.midnights))


def _rates(supplied: np.ndarray, consumed: np.ndarray) -> np.ndarray:
    """Daily loss rates; NaN for a day without supply (it then passes no check)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(supplied > 0, (supplied - consumed) / np.where(supplied > 0, supplied, 1), np.nan)


def expected_rules(plan: Sequence[Scenario]) -> set[tuple[str, str]]:
    """(scope id, rule) of every alert the planned scenarios should open, and no other: each
    case's area rules on its area, its customer rules on the customer, a wrong-area customer's
    rules on its physical area."""
    out: set[tuple[str, str]] = set()
    for s in plan:
        if s.expected is None:
            raise ValueError(f"scenario {s.case} of {s.customer_id} has no expected outcome")
        e = s.expected
        out |= {(e.transformer_area, rule) for rule in e.area_rules}
        out |= {(s.customer_id, rule) for rule in e.customer_rules}
        if e.other_area is not None:
            out |= {(e.other_area, rule) for rule in e.other_area_rules}
    return out


def plan_scenarios(
    sim: AreaSimulation,
    event_day: int | None = None,
    theft_share: float = 0.45,
    holiday_customers: int = 2,
    holiday_days: int = 4,
    holiday_share: float = 0.75,
    white_screen_meters: int = 2,
) -> list[Scenario]:
    """One scenario of every case (and ``holiday_customers`` holidays) on ``sim``'s population,
    in distinct areas, with the outcome each should have by the rules of DOMAIN.md 6. The cases
    start on day ``event_day`` of the run (default: a week before its end; at least 5 days of
    normal history before it and the holiday inside the run are required).

    - theft (from event_day's midnight, ``theft_share``): the customer that is the largest and
      steadiest part of its area (daily kWh never below 90 % of its median, so a share up to
      0.5 keeps it clear of consumption_drop's 40 %), in the area where the theft lifts every
      day's loss rate to 12 % or more (area_high_loss) and 7 points or more above the days
      before (area_loss_jump); it should rank first among the area's suspects;
    - holiday (from the day after the theft, ``holiday_days`` days, ``holiday_share`` of the
      load gone): the largest other customers of the thief's area with a steady load (the day's
      load at most 1.4 x the median, so 25 % of it stays under 40 %): consumption_drop fires,
      they must not rank first;
    - wrong_area (the whole run): a plausible customer, its load 5-30 % of its physical area's
      every day (``WRONG_PART``; not one far larger than the area it is mapped to), mapped to an
      area (of 3 customers or more) whose loss rate it turns clearly negative: every day under
      -3 % (area_negative_loss; preferably within -5 % and -25 %, ``WRONG_RATE``) and not
      below -30 %; its physical area's loss rises to stay either within 12-18 % or over 22 %
      (area_high_loss, major or critical; preferred) or under 8 %, moving by less than 3 points
      over the run (no area_loss_jump);
    - white_screen (event_day 10:00, to the end, ``white_screen_meters`` meters): a small
      customer (at most 2 % of its area, with 5 or more other meters there) whose missing energy
      leaves the area's loss rate under 8 % and within 3 points of before: stopped_reporting only
      (a day without the customer's readings is no complete day of its consumption, so no
      consumption_drop);
    - tamper (event_day 14:00 to 15:00, every code of TAMPER_CODES): tamper_flag only.
    Raises ValueError when the population has no area fit for a case (a larger one will)."""
    totals = daily_totals(sim)
    n_days = totals.kwh.shape[1]
    event = n_days - 7 if event_day is None else event_day
    if event < 5 or event + 1 + holiday_days > n_days:
        raise ValueError("need 5 days before the event and the holiday inside the run")
    if not 0 < theft_share <= 0.5:
        raise ValueError("theft_share: in (0, 0.5], so the thief stays clear of consumption_drop")
    kwh, loss = totals.kwh, totals.loss
    topo = sim._topology_idx
    n_areas = len(sim.areas)
    area_kwh = np.zeros((n_areas, n_days))
    np.add.at(area_kwh, topo, kwh)
    median = np.median(kwh, axis=1)
    share = np.divide(kwh, area_kwh[topo], out=np.zeros_like(kwh), where=area_kwh[topo] > 0)
    members = np.bincount(topo, minlength=n_areas)
    used: set[int] = set()
    ids = sim.pop.customer_ids
    midnight = totals.starts
    after = np.arange(n_days) >= event

    def rate(area: int, supplied_extra: np.ndarray, consumed_less: np.ndarray) -> np.ndarray:
        supplied = (area_kwh[area] + supplied_extra) * (1 + loss[area])
        return _rates(supplied, area_kwh[area] - consumed_less)

    # theft: the largest, steadiest share of an area
    best: tuple[float, int, int] | None = None
    for i in range(sim.pop.n):
        a = int(topo[i])
        if members[a] < 2 + holiday_customers or median[i] <= 0 or kwh[i].min() < 0.9 * median[i]:
            continue
        r = rate(a, np.zeros(n_days), np.where(after, theft_share * kwh[i], 0.0))
        before_max = float(r[~after].max())
        if (
            r[after].min() >= HIGH_LOSS + MARGIN
            and before_max <= HIGH_LOSS - MARGIN
            and r[after].min() - before_max >= JUMP + MARGIN
        ):
            key = (float(share[i, after].min()), -i, a)
            best = key if best is None or key > best else best
    if best is None:
        raise ValueError("no area where a theft of that share shows clearly: use more customers")
    thief, theft_area = -best[1], best[2]
    used.add(theft_area)
    day_of = totals.days
    plans = [
        Scenario(
            "theft",
            ids[thief],
            since=midnight[event],
            share=theft_share,
            expected=Outcome(
                sim.areas[theft_area],
                area_rules=("area_high_loss", "area_loss_jump"),
                rank_first=True,
                from_day=day_of[event],
            ),
        )
    ]

    # holidays: the largest other steady customers of the thief's area
    steady = [
        i
        for i in np.flatnonzero(topo == theft_area).tolist()
        if i != thief and median[i] > 0 and kwh[i].max() <= 1.4 * median[i]
    ]
    steady.sort(key=lambda i: (-float(median[i]), i))
    if len(steady) < holiday_customers:
        raise ValueError("not enough steady customers for the holidays in the theft's area")
    h0 = event + 1
    remaining = 1 - holiday_share
    drop_rule = ("consumption_drop",) if remaining * 1.4 < DROP and holiday_days >= DROP_DAYS else ()
    for i in steady[:holiday_customers]:
        plans.append(
            Scenario(
                "holiday",
                ids[i],
                since=midnight[h0],
                until=midnight[h0 + holiday_days] if h0 + holiday_days < n_days else None,
                share=holiday_share,
                expected=Outcome(
                    sim.areas[theft_area], customer_rules=drop_rule, rank_first=False, from_day=day_of[h0]
                ),
            )
        )

    # wrong area: a plausible customer mapped to another area; its physical area high, or not
    wrong: tuple[int, int, tuple[str, ...]] | None = None
    best_key: tuple[Any, ...] | None = None
    for i in range(sim.pop.n):
        a = int(topo[i])
        if a in used or members[a] < 3 or median[i] <= 0:
            continue
        ra = _rates((area_kwh[a] - kwh[i]) * (1 + loss[a]), area_kwh[a])
        # (NaN: a day without supply fails every check)
        if not (ra.max() <= NEGATIVE_LOSS - MARGIN and ra.min() >= WRONG_RATE[0] - 0.05):
            continue
        aimed = bool(ra.max() <= WRONG_RATE[1] and ra.min() >= WRONG_RATE[0])
        for b in range(n_areas):
            if b == a or b in used or members[b] == 0:
                continue
            part = kwh[i] / (area_kwh[b] + kwh[i])
            if not (part.min() >= WRONG_PART[0] and part.max() <= WRONG_PART[1]):
                continue
            rb = rate(b, kwh[i], np.zeros(n_days))
            if not rb.max() - rb.min() <= JUMP - MARGIN:
                continue
            major = rb.min() >= HIGH_LOSS + MARGIN and rb.max() <= CRITICAL_LOSS - MARGIN
            critical = rb.min() >= CRITICAL_LOSS + MARGIN
            if major or critical:
                rules: tuple[str, ...] = ("area_high_loss",)
            elif rb.max() <= HIGH_LOSS - MARGIN:
                rules = ()
            else:
                continue
            middle = abs(float(np.median(part)) - sum(WRONG_PART) / 2)
            preference = (bool(rules), aimed, -middle, -i, -b)
            if best_key is None or preference > best_key:
                best_key, wrong = preference, (i, b, rules)
    if wrong is None:
        raise ValueError("no plausible customer makes another area's loss negative: use more customers")
    w, b, b_rules = wrong
    a = int(topo[w])
    used |= {a, b}
    plans.append(
        Scenario(
            "wrong_area",
            ids[w],
            since=midnight[0],
            physical_area=sim.areas[b],
            expected=Outcome(
                sim.areas[a],
                area_rules=("area_negative_loss",),
                other_area=sim.areas[b],
                other_area_rules=b_rules,
                from_day=day_of[0],
            ),
        )
    )

    # white screen: a small customer of a well-metered area
    silent: int | None = None
    for i in sorted(range(sim.pop.n), key=lambda i: (-float(median[i]), i)):
        a = int(topo[i])
        if a in used or members[a] < 6 or median[i] <= 0 or share[i].max() > 0.02:
            continue
        r = rate(a, np.zeros(n_days), np.where(after, kwh[i], 0.0))
        base = rate(a, np.zeros(n_days), np.zeros(n_days))
        if r.max() <= HIGH_LOSS - MARGIN and (r - base).max() <= JUMP - MARGIN:
            silent = i
            break
    if silent is None:
        raise ValueError("no small customer in a free area for the white screen: use more customers")
    used.add(int(topo[silent]))
    plans.append(
        Scenario(
            "white_screen",
            ids[silent],
            since=midnight[event] + 10 * 3600,
            meters=white_screen_meters,
            expected=Outcome(
                sim.areas[int(topo[silent])], customer_rules=("stopped_reporting",), from_day=day_of[event]
            ),
        )
    )

    # tamper: any reporting customer of a free area
    free = [i for i in range(sim.pop.n) if int(topo[i]) not in used and median[i] > 0]
    if not free:
        raise ValueError("no free area for the tamper case: use more customers")
    t = free[0]
    plans.append(
        Scenario(
            "tamper",
            ids[t],
            since=midnight[event] + 14 * 3600,
            until=midnight[event] + 15 * 3600,
            codes=TAMPER_CODES,
            expected=Outcome(
                sim.areas[int(topo[t])], customer_rules=("tamper_flag",), from_day=day_of[event]
            ),
        )
    )
    return plans
