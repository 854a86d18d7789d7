"""Pydantic models of every topic of the wire contract (docs/CONTRACT.md).

Field names are the contract's and must not change; adding a field is allowed (say in its
description that it is an addition). Units are in each field's description.

Inputs (``meter.readings``, ``billing.events``, ``grid.outages``, ``customers``) ignore unknown
fields: producers may add fields without asking us. Outputs forbid unknown fields when *we*
build them (a typo in our own code fails loudly), but their published JSON Schemas allow
additional properties so that a consumer keeps working when we add a field.

Strictness: strings, numbers and booleans are validated strictly (``"1.5"`` is not a number,
``1`` is not ``true``), except that a JSON integer is a valid float. Timestamps must be RFC 3339
strings (or ``datetime`` objects in Python) carrying an offset; a naive timestamp or a Unix
epoch number is rejected. Floats must be finite.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    model_validator,
)

from schemas import topics

# --- shared field types ------------------------------------------------------------------------


# Years outside this range are garbage on a live stream, and near datetime's limits converting
# to UTC or local time (or adding a margin) would raise OverflowError inside the agents.
_MIN_YEAR, _MAX_YEAR = "1970", "2999"


def _rfc3339_only(v: Any) -> Any:
    # pydantic also reads Unix epoch numbers (and numeric strings) as datetimes; on the wire that
    # is almost always a producer bug (seconds or milliseconds?), so only RFC 3339 text passes.
    if isinstance(v, datetime):
        if not int(_MIN_YEAR) <= v.year <= int(_MAX_YEAR):
            raise ValueError(f"year outside {_MIN_YEAR}..{_MAX_YEAR}")
        return v
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[7] == "-" and v[10] in "Tt ":
        if not _MIN_YEAR <= v[:4] <= _MAX_YEAR:
            raise ValueError(f"year outside {_MIN_YEAR}..{_MAX_YEAR}")
        return v
    raise ValueError("expected an RFC 3339 timestamp with an offset, e.g. 2026-03-01T10:15:00+08:00")


def _iso_date_only(v: Any) -> Any:
    if isinstance(v, date) and not isinstance(v, datetime):
        if not int(_MIN_YEAR) <= v.year <= int(_MAX_YEAR):
            raise ValueError(f"year outside {_MIN_YEAR}..{_MAX_YEAR}")
        return v
    if isinstance(v, str) and len(v) == 10 and v[4] == "-" and v[7] == "-":
        if not _MIN_YEAR <= v[:4] <= _MAX_YEAR:
            raise ValueError(f"year outside {_MIN_YEAR}..{_MAX_YEAR}")
        return v
    raise ValueError("expected a date YYYY-MM-DD")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339_only)]
"""RFC 3339 with an offset, years 1970..2999; naive timestamps and epoch numbers are rejected."""
IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
Id = Annotated[str, Field(strict=True, min_length=1, max_length=256)]
Text = Annotated[str, Field(strict=True, max_length=4096)]
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A finite float; a JSON integer is accepted (and becomes a float)."""
NonNegative = Annotated[float, Field(strict=True, allow_inf_nan=False, ge=0)]
Count = Annotated[int, Field(strict=True, ge=0)]
Flag = Annotated[bool, Field(strict=True)]
Period = Annotated[str, Field(strict=True, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")]
"""A billing month, ``YYYY-MM``."""
Grade = Literal["A", "B", "C", "D"]
Importance = Literal["special", "level1", "level2", "temporary", "none"]
TariffClass = Literal[
    "residential",
    "commercial",
    "general_industrial",
    "large_industrial",
    "agricultural",
    "wholesale",
    "other",
]
Severity = Literal["critical", "major", "minor", "info"]
AlertStatus = Literal["open", "escalated", "resolved"]
OutageScope = Literal["feeder", "transformer_area"]

_INPUT = ConfigDict(extra="ignore", frozen=True)
_OUTPUT = ConfigDict(extra="forbid")


# --- inputs ------------------------------------------------------------------------------------


class MeterReading(BaseModel):
    """One interval reading from the meter head-end (``meter.readings``, key customer_id).

    The same (meter_id, ts) may arrive twice and out of order; de-duplication is stateful and
    lives with the per-customer state, not here. Unknown fields are ignored.
    """

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    meter_id: Id = Field(description="meter identifier")
    customer_id: Id = Field(description="customer the meter bills")
    ts: Timestamp = Field(description="END of the interval, RFC 3339 with offset")
    interval_s: int = Field(
        default=900, strict=True, gt=0, le=86400, description="interval length, seconds (1..86400)"
    )
    kwh: NonNegative = Field(description="active import energy in the interval, kWh, >= 0")
    kvarh: NonNegative | None = Field(
        default=None, description="reactive import energy in the interval, kvarh"
    )
    kvarh_export: NonNegative | None = Field(
        default=None,
        description="reactive export energy in the interval, kvarh, when the meter has the register",
    )
    demand_kw: NonNegative | None = Field(
        default=None, description="maximum demand in the interval, kW, when metered"
    )
    quality: list[Annotated[str, Field(strict=True, max_length=64)]] = Field(
        default_factory=list,
        max_length=64,
        description="head-end quality codes (estimated, power_fail, clock_set, tamper, ...); "
        "carried through, not errors",
    )


MAX_BLOCK_INTERVALS: Final = 2976
"""Intervals of one block at most: 31 days of quarter hours."""

Codes = Annotated[list[Annotated[str, Field(strict=True, max_length=64)]], Field(max_length=64)]
"""One interval's quality codes: as a single reading's ``quality``."""
Intervals = Annotated[list[NonNegative | None], Field(min_length=1, max_length=MAX_BLOCK_INTERVALS)]


class MeterReadingBlock(BaseModel):
    """Consecutive intervals of one meter in one ``meter.readings`` value (the block form; IEC
    61968-9 ``IntervalBlock``, the acquisition system's 96-point daily curve). An addition agreed
    in the shared contract; both forms share the topic: a value with ``start`` and a list-valued
    ``kwh`` is a block.

    Interval i covers [start + i*interval_s, start + (i+1)*interval_s): it is the single reading
    stamped ``ts = start + (i+1)*interval_s`` and is judged like one (its values, VEE, duplicates,
    lateness), on its own: a bad interval is dead-lettered with the block's bytes and its
    ``interval_index``, the others apply. The stream agent does not build this model (nor one
    per interval): ``schemas.blocks.decode_block`` reads a block into lists in one pass with the
    same rules; the model is the block's JSON Schema and documentation.
    """

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    meter_id: Id = Field(description="meter identifier")
    customer_id: Id = Field(description="customer the meter bills")
    start: Timestamp = Field(description="START of the first interval, RFC 3339 with offset")
    interval_s: int = Field(
        default=900, strict=True, gt=0, le=86400, description="interval length, seconds (1..86400)"
    )
    kwh: Intervals = Field(
        description="active import energy per interval, kWh, >= 0; null = not read; "
        f"1..{MAX_BLOCK_INTERVALS} intervals"
    )
    kvarh: Intervals | None = Field(
        default=None, description="reactive import energy per interval, kvarh; same length as kwh"
    )
    kvarh_export: Intervals | None = Field(
        default=None, description="reactive export energy per interval, kvarh; same length as kwh"
    )
    demand_kw: Intervals | None = Field(
        default=None, description="maximum demand per interval, kW; same length as kwh"
    )
    quality: list[Codes | None] | None = Field(
        default=None,
        max_length=MAX_BLOCK_INTERVALS,
        description="head-end quality codes per interval (null: none); same length as kwh",
    )


class AreaReading(BaseModel):
    """One interval of a transformer area's summary meter (台区总表; ``area.readings``, key
    transformer_area; inspection, issue 13): the energy delivered into the area. The fields and
    rules of a single ``MeterReading`` with ``transformer_area`` in place of ``customer_id``;
    the same (meter_id, ts) may arrive twice and out of order. Unknown fields are ignored."""

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    meter_id: Id = Field(description="summary meter identifier")
    transformer_area: Id = Field(description="the transformer area (台区) the meter supplies")
    ts: Timestamp = Field(description="END of the interval, RFC 3339 with offset")
    interval_s: int = Field(
        default=900, strict=True, gt=0, le=86400, description="interval length, seconds (1..86400)"
    )
    kwh: NonNegative = Field(description="active energy delivered into the area in the interval, kWh, >= 0")
    kvarh: NonNegative | None = Field(
        default=None, description="reactive import energy in the interval, kvarh"
    )
    kvarh_export: NonNegative | None = Field(
        default=None, description="reactive export energy in the interval, kvarh, when metered"
    )
    demand_kw: NonNegative | None = Field(
        default=None, description="maximum demand in the interval, kW, when metered"
    )
    quality: list[Annotated[str, Field(strict=True, max_length=64)]] = Field(
        default_factory=list,
        max_length=64,
        description="head-end quality codes (estimated, power_fail, clock_set, tamper, ...); "
        "carried through, not errors",
    )


class AreaReadingBlock(BaseModel):
    """Consecutive intervals of one summary meter in one ``area.readings`` value: the block form
    of ``MeterReadingBlock`` with ``transformer_area`` in place of ``customer_id``, read by the
    same rules (``schemas.blocks.decode_area_reading``)."""

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    meter_id: Id = Field(description="summary meter identifier")
    transformer_area: Id = Field(description="the transformer area (台区) the meter supplies")
    start: Timestamp = Field(description="START of the first interval, RFC 3339 with offset")
    interval_s: int = Field(
        default=900, strict=True, gt=0, le=86400, description="interval length, seconds (1..86400)"
    )
    kwh: Intervals = Field(
        description="active energy per interval, kWh, >= 0; null = not read; "
        f"1..{MAX_BLOCK_INTERVALS} intervals"
    )
    kvarh: Intervals | None = Field(
        default=None, description="reactive import energy per interval, kvarh; same length as kwh"
    )
    kvarh_export: Intervals | None = Field(
        default=None, description="reactive export energy per interval, kvarh; same length as kwh"
    )
    demand_kw: Intervals | None = Field(
        default=None, description="maximum demand per interval, kW; same length as kwh"
    )
    quality: list[Codes | None] | None = Field(
        default=None,
        max_length=MAX_BLOCK_INTERVALS,
        description="head-end quality codes per interval (null: none); same length as kwh",
    )


BillingType = Literal["bill", "payment", "late_fee", "payment_reversal", "theft_penalty", "adjustment"]


class BillingEvent(BaseModel):
    """A billing system event (``billing.events``, key customer_id). Unknown fields are ignored.

    Business rules beyond types (a bill needs a due date, amount > 0) are in
    ``schemas.validation.check_billing``.
    """

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    event_id: Id = Field(description="unique event id; the same event may be delivered twice")
    customer_id: Id = Field(description="customer")
    ts: Timestamp = Field(description="when it happened, RFC 3339 with offset")
    type: BillingType = Field(
        description="bill, payment, late_fee, payment_reversal (bounced/returned payment), "
        "theft_penalty, adjustment"
    )
    amount: Number = Field(description="CNY; > 0 (an adjustment may be negative)")
    bill_id: Id | None = Field(default=None, description="the bill; for a payment, when it names the bill")
    due_date: IsoDate | None = Field(
        default=None, description="due date of a bill, YYYY-MM-DD; required for a bill"
    )
    period: Period | None = Field(default=None, description="billing period of a bill, YYYY-MM")


class OutageEvent(BaseModel):
    """A grid operations event (``grid.outages``, key outage_id). Unknown fields are ignored."""

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    outage_id: Id = Field(description="outage identifier")
    event: Literal["notice", "start", "restore"] = Field(
        description="notice (planned work announced), start, restore"
    )
    ts: Timestamp = Field(description="when it happened, RFC 3339 with offset")
    scope: OutageScope = Field(description="what is out: a feeder or a transformer area (台区)")
    scope_id: Id = Field(description="the feeder id or transformer area id")
    planned: Flag = Field(default=False, description="planned work (true) or fault (false)")
    planned_start: Timestamp | None = Field(default=None, description="announced start of planned work")
    expected_restore: Timestamp | None = Field(default=None, description="expected restoration time")
    cause: Text | None = Field(default=None, description="free-text cause")


class CustomerProfile(BaseModel):
    """The latest profile of a customer (``customers``, compacted; a null value deletes).

    ``name`` is personal data: it is left out of ``repr()``/``str()`` and of validation error
    messages, and must never reach logs or alert payloads. Only customer_id is required by the
    contract; the other fields default to "unknown". Unknown fields are ignored.
    """

    model_config = ConfigDict(extra="ignore", frozen=True, hide_input_in_errors=True)
    schema_version: ClassVar[int] = 1

    customer_id: Id = Field(description="customer")
    name: Text | None = Field(
        default=None,
        repr=False,
        description="customer name; PERSONAL DATA: never in logs or alert payloads",
        json_schema_extra={"x-personal-data": True},
    )
    tariff_class: TariffClass = Field(default="other", description="tariff class")
    contract_kva: Number | None = Field(default=None, description="contracted capacity, kVA")
    voltage_kv: Number | None = Field(default=None, description="supply voltage, kV")
    importance: Importance = Field(
        default="none", description="important-customer tier (重要电力客户); none = ordinary customer"
    )
    feeders: list[Id] = Field(
        default_factory=list,
        max_length=64,
        description="feeders that can supply the customer; two or more = dual circuit (双回路)",
    )
    transformer_area: Id | None = Field(default=None, description="transformer area (台区) id")
    emergency_generator: Flag = Field(
        default=False, description="has its own emergency source (自备应急电源)"
    )
    manager_id: Id | None = Field(default=None, description="the customer manager (客户经理) who is warned")
    industry: Text | None = Field(default=None, description="industry")
    pf_standard: Number | None = Field(
        default=None,
        description="power-factor standard 0.90 / 0.85 / 0.80; derived from tariff_class and "
        "contract_kva when null",
    )
    tariff_cny_per_kwh: Number | None = Field(
        default=None, description="average tariff, CNY/kWh, for money estimates"
    )


class ConsumptionHistory(BaseModel):
    """(gridpulse addition, topic ``consumption.history``, key customer_id) The billed kWh of a
    past billing month, from the billing system's history: seeds year-over-year growth. Used
    only for months without metered readings; a later record for the same month replaces it."""

    model_config = _INPUT
    schema_version: ClassVar[int] = 1

    customer_id: Id = Field(description="customer")
    period: Period = Field(description="billing month, YYYY-MM")
    kwh: NonNegative = Field(description="billed active energy of the month, kWh")
    source: Text | None = Field(default=None, description="where the figure comes from (e.g. CIS export)")


# --- outputs -----------------------------------------------------------------------------------


class Window(BaseModel):
    """Rolling statistics over one window (``day`` or ``d30``)."""

    model_config = _OUTPUT

    kwh: NonNegative = Field(description="active energy in the window, kWh")
    kvarh: NonNegative = Field(
        description="reactive energy the power factor uses (|import| + |export|), kvarh"
    )
    avg_kw: NonNegative = Field(description="kwh / hours covered by the intervals received, kW")
    max_kw: NonNegative = Field(description="highest interval demand in the window, kW")
    load_factor: Number | None = Field(
        description="avg_kw / max_kw, 0 < LF <= 1; null when the window has no load"
    )
    power_factor: Number | None = Field(
        description="kWh / sqrt(kWh^2 + kvarh^2) over the window's sums; null when no energy"
    )
    intervals: Count = Field(default=0, description="(addition) number of intervals received in the window")
    hours: NonNegative = Field(default=0.0, description="(addition) hours covered by the intervals received")


class DayWindow(Window):
    """Rolling statistics of the local calendar day of the newest reading."""

    date: IsoDate = Field(description="(addition) the local day, YYYY-MM-DD")


class D30Window(Window):
    """Rolling statistics of the 30 local calendar days ending with the newest reading's day."""

    first_day: IsoDate = Field(
        validation_alias=AliasChoices("from", "first_day"),
        serialization_alias="from",
        description="(addition) first local day of the window, YYYY-MM-DD (JSON key `from`)",
    )
    last_day: IsoDate = Field(
        validation_alias=AliasChoices("to", "last_day"),
        serialization_alias="to",
        description="(addition) last local day of the window, YYYY-MM-DD (JSON key `to`)",
    )


class MonthWindow(Window):
    """Rolling statistics of the current billing month (local time zone)."""

    period: Period = Field(description="billing month, YYYY-MM")
    pf_standard: Number | None = Field(description="power-factor standard applied: 0.90 / 0.85 / 0.80")
    pf_adjustment_pct: Number | None = Field(
        description="power-factor tariff adjustment, % of basic + energy charge; positive = surcharge, "
        "negative = rebate; null when no standard applies or no energy"
    )
    projected_power_factor: Number | None = Field(
        default=None, description="(addition) projected month-end power factor while the month is open"
    )
    projected_pf_adjustment_pct: Number | None = Field(
        default=None, description="(addition) adjustment at the projected month-end power factor, %"
    )
    pf_adjustment_cny: Number | None = Field(
        default=None,
        description="(addition) the adjustment in money: pct x energy charge (kWh x tariff), CNY; the "
        "basic (capacity) charge is not on our inputs; null without a tariff",
    )
    projected_pf_adjustment_cny: Number | None = Field(
        default=None, description="(addition) the projected adjustment in money at month end, CNY"
    )


class OverdueBuckets(BaseModel):
    """Outstanding amounts by days past due, CNY. JSON keys: ``0_30``, ``31_60``, ``61_90``, ``over_90``."""

    model_config = _OUTPUT

    d0_30: NonNegative = Field(
        default=0.0,
        validation_alias=AliasChoices("0_30", "d0_30"),
        serialization_alias="0_30",
        description="0-30 days past due, CNY",
    )
    d31_60: NonNegative = Field(
        default=0.0,
        validation_alias=AliasChoices("31_60", "d31_60"),
        serialization_alias="31_60",
        description="31-60 days past due, CNY",
    )
    d61_90: NonNegative = Field(
        default=0.0,
        validation_alias=AliasChoices("61_90", "d61_90"),
        serialization_alias="61_90",
        description="61-90 days past due, CNY",
    )
    over_90: NonNegative = Field(default=0.0, description="more than 90 days past due, CNY")


class Arrears(BaseModel):
    """Arrears (欠费) of a customer."""

    model_config = _OUTPUT

    outstanding: Number = Field(description="open amount, CNY (negative = credit balance)")
    oldest_overdue_days: Count = Field(description="days past due of the oldest unpaid bill; 0 when none")
    overdue_buckets: OverdueBuckets = Field(description="outstanding by days past due")
    late_fees_12m: Count = Field(description="late-fee (违约金) events in the trailing 12 months")
    reversals_12m: Count = Field(description="payment reversals (退票) in the trailing 12 months")
    paid_36m: Number = Field(description="paid in the trailing 36 months, net of reversals, CNY")
    due_36m: NonNegative = Field(description="billed (due) in the trailing 36 months, CNY")
    late_fee_amount_36m: NonNegative = Field(
        default=0.0, description="(addition) late fees charged in the trailing 36 months, CNY (B32)"
    )
    theft_12m: NonNegative = Field(
        default=0.0, description="(addition) theft (窃电) penalties in the trailing 12 months, CNY"
    )
    credit: NonNegative = Field(default=0.0, description="(addition) unapplied credit (overpayment), CNY")
    bills_open: Count = Field(default=0, description="(addition) bills not fully paid")
    as_of: Timestamp | None = Field(
        default=None, description="(addition) when ages and trailing windows were evaluated"
    )
    oldest_overdue_id: Id | None = Field(
        default=None,
        description="(addition) the oldest overdue open charge: its bill_id (a bill) or event_id "
        "(a late fee, theft penalty, adjustment or untraceable reversal); null when nothing is overdue",
    )
    oldest_overdue_type: BillingType | None = Field(
        default=None, description="(addition) the type of that charge"
    )
    oldest_overdue_due_date: IsoDate | None = Field(
        default=None, description="(addition) its due date: days overdue = as_of's local date - this"
    )
    oldest_overdue_open: NonNegative = Field(
        default=0.0, description="(addition) the amount still open on it, CNY"
    )
    late_fee_amount_12m: NonNegative = Field(
        default=0.0, description="(addition) late fees charged in the trailing 12 months, CNY"
    )
    reversal_amount_12m: NonNegative = Field(
        default=0.0, description="(addition) payments reversed in the trailing 12 months, CNY"
    )
    last_event_ts: Timestamp | None = Field(
        default=None, description="(addition) event time of the newest billing event; null without any"
    )


class IntervalGap(BaseModel):
    """A recent local day on which a meter delivered fewer intervals than expected."""

    model_config = _OUTPUT

    date: IsoDate = Field(description="local day")
    meter_id: Id = Field(description="meter")
    expected: Count = Field(description="intervals expected that day (up to the newest reading)")
    found: Count = Field(description="intervals received")


class StatsCustomer(BaseModel):
    """Latest rolling statistics of a customer (``stats.customer``, key customer_id)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    customer_id: Id = Field(description="customer")
    ts: Timestamp = Field(description="event time of the newest input")
    day: DayWindow = Field(description="the current local day")
    d30: D30Window = Field(description="the trailing 30 days")
    month: MonthWindow = Field(description="the current billing month")
    arrears: Arrears = Field(description="arrears")
    consumption: dict[Period, NonNegative] = Field(
        default_factory=dict, description="(addition) kWh per billing month, up to 26 months (B41/B42)"
    )
    yoy_growth_rate: Number | None = Field(
        default=None,
        description="(addition) x of B41: (last 12 complete months - the 12 before) / the 12 before; "
        "null without 24 complete months",
    )
    yoy_growth_kwh: Number | None = Field(
        default=None,
        description="(addition) x of B42: last complete month - the same month a year earlier, kWh",
    )
    hourly_kw: Annotated[list[NonNegative | None], Field(min_length=24, max_length=24)] | None = Field(
        default=None,
        description="(addition) hour-of-day load profile of the d30 days: for local hours 0..23, "
        "kWh of the intervals starting in that hour / hours they cover; null for an hour without data",
    )
    profile_known: bool = Field(
        default=True, description="(addition) false while no valid `customers` profile has arrived"
    )
    gaps: list[IntervalGap] = Field(
        default_factory=list, description="(addition) recent days with missing intervals, per meter"
    )


IndicatorScore = Annotated[int, Field(strict=True, ge=1, le=5)]


class Indicators(BaseModel):
    """Raw values of the customer value indicators (DOMAIN.md section 3); null when not computable."""

    model_config = _OUTPUT

    B11: Number | None = Field(description="power-energy ratio: customer energy / supplier total energy")
    B12: Number | None = Field(description="transmission cost share: customer fee / supplier total fee")
    B21: Number | None = Field(description="load factor: average / maximum load")
    B22: Number | None = Field(description="power factor indicator, 0..1 (ramp p1=0.80 .. p2=0.95)")
    B31: Number | None = Field(description="cumulative recovery: paid 36 months / due 36 months")
    B32: Number | None = Field(description="punctuality: (a - late fees / receivable) / a, 0..1")
    B41: Number | None = Field(description="growth rate indicator, 0..1")
    B42: Number | None = Field(description="growth amount indicator, 0..1")


class IndicatorScores(BaseModel):
    """1-5 scores of the indicators (position in the population, 5 = best)."""

    model_config = _OUTPUT

    B11: IndicatorScore
    B12: IndicatorScore
    B21: IndicatorScore
    B22: IndicatorScore
    B31: IndicatorScore
    B32: IndicatorScore
    B41: IndicatorScore
    B42: IndicatorScore


class ValueOrigin(BaseModel):
    """The value matrix's origin the quadrant was decided against (the population pass's)."""

    model_config = _OUTPUT

    current: Number = Field(description="current value at the origin (the vertical quadrant line)")
    potential: Number = Field(description="potential value at the origin (the horizontal quadrant line)")


class ScoresCustomer(BaseModel):
    """Customer value, credit and safety scores (``scores.customer``, key customer_id)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    customer_id: Id = Field(description="customer")
    ts: Timestamp = Field(description="event time of the newest input behind the scores")
    indicators: Indicators = Field(description="raw indicator values B11..B42")
    scores: IndicatorScores = Field(description="1-5 scores of B11..B42")
    current_value: Number = Field(description="weighted score sum over B11, B12, B21, B22 (当前价值)")
    potential_value: Number = Field(description="weighted score sum over B31, B32, B41, B42 (潜在价值)")
    quadrant: Literal["vip", "improvement", "maintenance", "abandon"] = Field(
        description="customer value matrix quadrant"
    )
    credit_grade: Grade = Field(description="credit grade, A best")
    service_tier: Literal["special", "level1", "level2", "level3"] = Field(
        description="service tier by value: top 10% special, 30% level1, 50% level2, 10% level3"
    )
    safety_grade: Grade = Field(
        description="supply-safety grade: A dual circuit + emergency source, B dual circuit, "
        "C emergency source, D neither"
    )
    model_version: Id = Field(description="version of the scoring model and its weights")
    value_origin: ValueOrigin | None = Field(
        default=None,
        description="(addition) the origin of the value matrix the quadrant was decided against: "
        "the resolved origin of the population pass behind the score (the population mean by "
        "default); absent in documents published before it was added",
    )


EvidenceValue = float | int | str | bool | None


class CreditAlert(BaseModel):
    """A credit-risk warning (``alerts.credit``, key alert_id)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    alert_id: Id = Field(description="deterministic id: a re-emitted alert updates the same record")
    kind: Literal["credit"] = Field(default="credit", description="alert family")
    severity: Severity
    status: AlertStatus
    ts: Timestamp = Field(description="event time of the input that changed the alert")
    reason: Text = Field(description="human-readable reason; never the customer's name")
    evidence: dict[str, EvidenceValue] = Field(
        description="what fired the rule, named so that it does not go stale: ids, due dates, counts "
        "and amounts, and `as_of`, when ages were measured"
    )
    customer_id: Id
    rule: Id = Field(
        description="overdue_30, overdue_90, late_fees_12m, reversals_12m, theft_12m, grade_downgrade, ..."
    )
    manager_id: Id | None = Field(description="the customer manager warned; null when unknown")
    flapping: bool = Field(
        default=False,
        description="(addition) the alert kept opening and resolving: held open, its flips not "
        "published, until its condition is steady again (alerts.credit_rules)",
    )


class AffectedCustomer(BaseModel):
    """A customer hit by an outage."""

    model_config = _OUTPUT

    customer_id: Id
    importance: Importance
    safety_grade: Grade
    impact: Literal["loss_of_supply", "loss_of_redundancy"]
    est_kw: NonNegative | None = Field(description="estimated interrupted load, kW; null when unknown")
    revenue_at_risk_cny_per_h: NonNegative | None = Field(
        description="revenue at risk, CNY per hour; null when unknown"
    )
    manager_id: Id | None = Field(description="the customer manager; null when unknown")


class OutageAlert(BaseModel):
    """An outage that hits customers (``alerts.outage``, key alert_id)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    alert_id: Id = Field(description="deterministic id: a re-emitted alert updates the same record")
    kind: Literal["outage"] = Field(default="outage", description="alert family")
    severity: Severity
    status: AlertStatus
    ts: Timestamp = Field(description="event time of the outage event behind this state")
    reason: Text
    evidence: dict[str, EvidenceValue] = Field(description="the numbers that fired the alert")
    outage_id: Id
    scope: OutageScope
    scope_id: Id
    planned: Flag
    manager_ids: list[Id] = Field(description="customer managers warned")
    affected: list[AffectedCustomer] = Field(description="affected customers, most important first")
    planned_start: Timestamp | None = Field(
        default=None, description="(addition) announced start of planned work"
    )
    expected_restore: Timestamp | None = Field(default=None, description="(addition) expected restoration")
    cause: Text | None = Field(default=None, description="(addition) cause as reported by grid operations")


class ReliabilityIndices(BaseModel):
    """IEEE 1366 reliability indices, year to date (``reliability.indices``, key feeder id or ``system``)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    scope: Literal["feeder", "system"]
    scope_id: Id = Field(description="feeder id, or 'system'")
    year: int = Field(strict=True, ge=1900, le=9999)
    customers_served: Count = Field(description="N_T")
    customer_interruptions: Count = Field(description="sum of N_i over sustained interruptions (> 5 min)")
    customer_minutes: NonNegative = Field(description="sum of r_i * N_i, customer-minutes")
    SAIFI: NonNegative | None = Field(description="interruptions per customer served; null when N_T = 0")
    SAIDI: NonNegative | None = Field(description="minutes per customer served; null when N_T = 0")
    CAIDI: NonNegative | None = Field(description="minutes per interruption; null when SAIFI = 0")
    momentary_interruptions: Count = Field(description="customer interruptions of 5 minutes or less")
    ts: Timestamp | None = Field(
        default=None, description="(addition) event time of the newest outage event counted"
    )


# --- inspection (issue 13): stats.area and alerts.inspection -------------------------------------

Rate = Annotated[float, Field(strict=True, allow_inf_nan=False)]
"""A ratio as a fraction (0.1 = 10 %); may be negative (a loss rate)."""


class AreaWindow(BaseModel):
    """Line loss of a transformer area over a window (``inspection.area``, DOMAIN.md 6): the
    summary meter against its customers' meters over the intervals the summary meter covered."""

    model_config = _OUTPUT

    supplied_kwh: NonNegative = Field(description="energy delivered into the area (summary meter), kWh")
    consumed_kwh: NonNegative = Field(
        description="the sum of the area's customers' meters over the same intervals, kWh (metered only)"
    )
    loss_kwh: Number = Field(description="supplied_kwh - consumed_kwh, kWh (negative: negative loss)")
    loss_rate: Rate | None = Field(description="loss_kwh / supplied_kwh; null without supply")
    customers: Count = Field(description="customers in the area's topology during the window")
    customers_reporting: Count = Field(description="of them, with at least one reading in the window")
    coverage: Rate | None = Field(
        description="customer-intervals reported / expected over the covered intervals; null when "
        "none were expected"
    )
    complete: Flag = Field(
        description="the summary meter covered every interval and coverage >= 98 % (every day of "
        "the window, for d30); an incomplete window fires no loss rule"
    )
    customer_intervals_expected: Count = Field(
        default=0, description="(addition) customer-intervals expected over the covered intervals"
    )
    customer_intervals_reported: Count = Field(default=0, description="(addition) of them, reported")
    estimated_missing_kwh: NonNegative | None = Field(
        default=None,
        description="(addition) estimate of the missing customer-intervals of complete days, kWh, "
        "apart from consumed_kwh; null without a complete day",
    )


class AreaDayWindow(AreaWindow):
    """Line loss of one local day."""

    date: IsoDate = Field(description="(addition) the local day, YYYY-MM-DD")
    intervals: Count = Field(default=0, description="(addition) intervals in the local day (92/96/100)")
    covered_intervals: Count = Field(
        default=0, description="(addition) of them, covered by the summary meter"
    )
    estimate_unavailable_intervals: Count = Field(
        default=0,
        description="(addition) missing customer-intervals not estimated (customers without any reading)",
    )
    loss_kwh_net: Number | None = Field(
        default=None, description="(addition) loss_kwh - estimated_missing_kwh; null without an estimate"
    )
    loss_rate_net: Rate | None = Field(
        default=None, description="(addition) loss_kwh_net / supplied_kwh; what the loss rules judge"
    )


class AreaD30Window(AreaWindow):
    """Line loss of the 30 local days ending with ``day``: the days' figures added."""

    first_day: IsoDate = Field(
        validation_alias=AliasChoices("from", "first_day"),
        serialization_alias="from",
        description="(addition) first local day of the window, YYYY-MM-DD (JSON key `from`)",
    )
    last_day: IsoDate = Field(
        validation_alias=AliasChoices("to", "last_day"),
        serialization_alias="to",
        description="(addition) last local day of the window, YYYY-MM-DD (JSON key `to`)",
    )
    complete_days: Count = Field(default=0, description="(addition) complete days in the window")


class AreaDay(BaseModel):
    """One local day of an area's ``daily`` series."""

    model_config = _OUTPUT

    date: IsoDate = Field(description="the local day, YYYY-MM-DD")
    supplied_kwh: NonNegative = Field(description="summary meter, kWh")
    consumed_kwh: NonNegative = Field(
        description="customers' meters over the same intervals, kWh (metered only)"
    )
    loss_rate: Rate | None = Field(description="loss / supplied; null without supply")
    coverage: Rate | None = Field(
        description="customer-intervals reported / expected; null when none expected"
    )
    complete: Flag = Field(description="the day is complete (DOMAIN.md 6)")
    loss_kwh: Number = Field(default=0.0, description="(addition) supplied_kwh - consumed_kwh, kWh")
    estimated_missing_kwh: NonNegative | None = Field(
        default=None, description="(addition) estimate of the missing customer-intervals (complete days), kWh"
    )


class StatsArea(BaseModel):
    """Line loss of a transformer area (``stats.area``, key transformer_area), published on every
    change (``inspection.area.AreaState.stats_document``)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    transformer_area: Id = Field(description="transformer area (台区)")
    ts: Timestamp = Field(description="event time of the newest input")
    day: AreaDayWindow = Field(description="the local day of the newest input")
    d30: AreaD30Window = Field(description="the 30 local days ending with `day`")
    daily: Annotated[list[AreaDay], Field(max_length=31)] = Field(
        description="the last 30 local days, oldest first"
    )


JsonObject = dict[str, Any]
"""An object of JSON values (numbers, strings, booleans, null, lists, objects)."""


class InspectionSuspect(BaseModel):
    """A customer suspected in an area alert (``inspection.suspects``)."""

    model_config = _OUTPUT

    customer_id: Id = Field(description="never a name")
    score: Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)] = Field(
        description="suspicion score, 0-1: weighted loss correlation, drop matching the loss rise, own flags"
    )
    reasons: list[Id] = Field(
        description="rule-like words: negative_loss_correlation, drop_with_loss_rise, tamper_flag, "
        "stopped_reporting, consumption_drop"
    )
    evidence: JsonObject = Field(description="the score's parts, their inputs and the weights")


InspectionScope = Literal["customer", "transformer_area"]


class InspectionAlert(BaseModel):
    """A line-loss or theft-screening alert (``alerts.inspection``, key alert_id; DOMAIN.md 6,
    ``inspection.rules``): one per scope and rule, ``inspection:<customer or area>:<rule>``."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    alert_id: Id = Field(description="deterministic id: a re-emitted alert updates the same record")
    kind: Literal["inspection"] = Field(default="inspection", description="alert family")
    severity: Severity
    status: AlertStatus
    ts: Timestamp = Field(description="event time of the input that changed the alert")
    reason: Text = Field(description="human-readable reason; never a customer's name")
    evidence: JsonObject = Field(description="the figures that fired the rule (lists and objects allowed)")
    rule: Id = Field(
        description="area_high_loss, area_negative_loss, area_loss_jump (area); consumption_drop, "
        "stopped_reporting, tamper_flag (customer)"
    )
    scope: InspectionScope = Field(description="customer or transformer_area")
    customer_id: Id | None = Field(default=None, description="the customer (scope customer)")
    transformer_area: Id | None = Field(
        default=None,
        description="the area (scope transformer_area); on a customer alert, the area it was judged "
        "in (the customer's at the time), or null",
    )
    manager_id: Id | None = Field(
        default=None, description="the customer's manager (scope customer); null when unknown"
    )
    manager_ids: list[Id] = Field(
        default_factory=list, description="the managers of the listed suspects (scope transformer_area)"
    )
    suspects: list[InspectionSuspect] = Field(
        default_factory=list,
        description="area_high_loss and area_loss_jump while open: the ranked suspects, most "
        "suspicious first; empty otherwise",
    )
    flapping: bool = Field(
        default=False,
        description="(addition) the alert kept opening and resolving: held open until steady "
        "(the credit alerts' life cycle)",
    )

    @model_validator(mode="after")
    def _names_its_scope(self) -> InspectionAlert:
        if self.scope == "customer" and (self.customer_id is None or self.suspects):
            raise ValueError("a customer alert names its customer_id and lists no suspects")
        if self.scope == "transformer_area" and self.transformer_area is None:
            raise ValueError("an area alert names its transformer_area")
        return self


class DeadLetter(BaseModel):
    """An input message that could not be used (``<input topic>.dlq``)."""

    model_config = _OUTPUT
    schema_version: ClassVar[int] = 1

    raw: str | None = Field(
        pattern=r"^[A-Za-z0-9+/]*={0,2}$",
        description="the original value bytes, standard base64; null for a null (tombstone) value",
    )
    key: str | None = Field(
        pattern=r"^[A-Za-z0-9+/]*={0,2}$", description="the original key bytes, base64; null when none"
    )
    topic: Annotated[str, Field(strict=True, min_length=1)] = Field(description="source topic")
    partition: int = Field(strict=True, ge=0)
    offset: int = Field(strict=True, ge=0)
    error: str = Field(
        strict=True,
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=64,
        description=(
            "machine-readable kind: decode, schema, negative_energy, bad_timestamp, late, ...;"
            " processing_failed: a defect met while processing a valid message"
        ),
    )
    detail: Annotated[str, Field(strict=True, max_length=1024)] = Field(
        description="human-readable detail; never the customer's name"
    )
    ts: Timestamp = Field(description="when it was dead-lettered, UTC")
    interval_index: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        description="(addition) the position of the dead-lettered interval in a block of "
        "meter.readings or area.readings (raw is the whole block); null when the whole message "
        "is dead-lettered",
    )


INPUT_MODELS: dict[str, type[BaseModel]] = {
    topics.METER_READINGS: MeterReading,
    topics.BILLING_EVENTS: BillingEvent,
    topics.GRID_OUTAGES: OutageEvent,
    topics.CUSTOMERS: CustomerProfile,
    topics.CONSUMPTION_HISTORY: ConsumptionHistory,
    topics.AREA_READINGS: AreaReading,
}
"""The model of each input topic."""
BLOCK_MODELS: dict[str, type[BaseModel]] = {
    topics.METER_READINGS: MeterReadingBlock,
    topics.AREA_READINGS: AreaReadingBlock,
}
"""The block form an input topic also carries (its JSON Schema accepts either form)."""
OUTPUT_MODELS: dict[str, type[BaseModel]] = {
    topics.STATS_CUSTOMER: StatsCustomer,
    topics.SCORES_CUSTOMER: ScoresCustomer,
    topics.ALERTS_CREDIT: CreditAlert,
    topics.ALERTS_OUTAGE: OutageAlert,
    topics.RELIABILITY_INDICES: ReliabilityIndices,
    topics.STATS_AREA: StatsArea,
    topics.ALERTS_INSPECTION: InspectionAlert,
}
"""The model of each output topic. Every ``<input>.dlq`` topic carries ``DeadLetter``."""
