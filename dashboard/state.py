"""The dashboard's merged view: the latest document per (kind, key) and the aggregates the pages
show, kept incrementally.

A document replaces the held one of its (kind, key) only when its event time ``ts`` is at
least the held one's, so the Redis snapshot and the topics (read from their beginning) can be
applied in any order and the newest wins; ``reliability.indices`` may lack ``ts``: then the
order of arrival (topic order) wins. A malformed document (not JSON, not an object, no key, no
or a bad ``ts``, fields its kind needs missing) is skipped and counted per topic.

Memory: a customer's documents are kept as their JSON bytes (what the topic carried), plus the
few figures the aggregates and the value matrix need; 100,000 customers' statistics as Python
dicts would take gigabytes. Alert, area and reliability documents are few and kept parsed too.
Every aggregate (quadrants, grades, tiers, open alerts, the matrix columns) moves when a
document replaces another, so nothing is recomputed per request.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from schemas import topics as contract

KINDS = ("stats", "scores", "alert", "reliability", "area")

# contract topic -> (kind, the key field of its documents)
TOPIC_KINDS: dict[str, tuple[str, str]] = {
    contract.STATS_CUSTOMER: ("stats", "customer_id"),
    contract.SCORES_CUSTOMER: ("scores", "customer_id"),
    contract.ALERTS_CREDIT: ("alert", "alert_id"),
    contract.ALERTS_OUTAGE: ("alert", "alert_id"),
    contract.ALERTS_INSPECTION: ("alert", "alert_id"),
    contract.RELIABILITY_INDICES: ("reliability", "scope_id"),
    contract.STATS_AREA: ("area", "transformer_area"),
}
KEY_FIELD = {kind: key for kind, key in TOPIC_KINDS.values()}
TS_OPTIONAL = frozenset({"reliability"})
OPEN_STATUSES = frozenset({"open", "escalated"})
QUADRANTS = ("vip", "improvement", "maintenance", "abandon")
ALERT_KINDS = ("credit", "outage", "inspection")
SEVERITIES = ("critical", "major", "minor", "info")


class Malformed(ValueError):
    """A document the dashboard cannot use (the reason, never the document: it may hold names)."""


def parse_ts(value: Any) -> float:
    """An RFC 3339 time as epoch seconds (offsets applied: strings with different offsets do not
    compare as text)."""
    if not isinstance(value, str):
        raise Malformed("ts is not a string")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Malformed("ts is not RFC 3339") from exc
    if dt.tzinfo is None:
        raise Malformed("ts has no offset")
    return dt.timestamp()


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


@dataclass(slots=True)
class Entry:
    ts: float | None
    raw: bytes  # the document's JSON, one line
    doc: dict[str, Any] | None  # parsed, for the kinds kept parsed
    facts: tuple[Any, ...]  # what the aggregates need of it (per kind, below)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    key: str
    raw: bytes | None  # None: the key was removed (a tombstone)


def _one_line(raw: bytes, doc: Any) -> bytes:
    return orjson.dumps(doc) if (b"\n" in raw or b"\r" in raw) else raw


class MatrixColumns:
    """The value matrix as columns in scored-customer order; a customer's row is updated in
    place, a removed one swapped with the last row."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.current: list[float] = []
        self.potential: list[float] = []
        self.credit: list[str] = []
        self.quadrant: list[str] = []
        self.kwh30: list[float | None] = []

    def put(self, cid: str, current: float, potential: float, credit: str, quadrant: str) -> None:
        i = self.index.get(cid)
        if i is None:
            self.index[cid] = len(self.ids)
            self.ids.append(cid)
            self.current.append(current)
            self.potential.append(potential)
            self.credit.append(credit)
            self.quadrant.append(quadrant)
            self.kwh30.append(None)
        else:
            self.current[i] = current
            self.potential[i] = potential
            self.credit[i] = credit
            self.quadrant[i] = quadrant

    def set_kwh30(self, cid: str, kwh30: float | None) -> bool:
        i = self.index.get(cid)
        if i is None:
            return False
        self.kwh30[i] = kwh30
        return True

    def remove(self, cid: str) -> None:
        i = self.index.pop(cid, None)
        if i is None:
            return
        last = len(self.ids) - 1
        columns: tuple[list[Any], ...] = (
            self.ids,
            self.current,
            self.potential,
            self.credit,
            self.quadrant,
            self.kwh30,
        )
        for col in columns:
            col[i] = col[last]
            col.pop()
        if i != last:
            self.index[self.ids[i]] = i

    def __len__(self) -> int:
        return len(self.ids)


class DashboardState:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.malformed: Counter[str] = Counter()
        self.quadrants: Counter[str] = Counter()
        self.credit_grades: Counter[str] = Counter()
        self.safety_grades: Counter[str] = Counter()
        self.service_tiers: Counter[str] = Counter()
        self.alerts_open_by_severity: Counter[str] = Counter()
        self.alerts_open_by_kind: Counter[str] = Counter()
        self.matrix = MatrixColumns()
        self.newest_reading_ts: float | None = None
        self.newest_reading_text: str | None = None
        self._newest_scores_ts = -math.inf
        self.model_version: str | None = None
        self.value_origin: dict[str, float] | None = None
        self.version = 0  # moves with every change (the overview's "changed")
        self._matrix_cache: bytes | None = None

    # ------------------------------------------------------------------ applying documents

    def apply_raw(self, topic: str, raw: bytes | None, record_key: bytes | None = None) -> Change | None:
        """Apply one record of a contract ``topic`` (prefix removed). ``raw`` None is a
        tombstone (``record_key`` names what it removes). A malformed document is counted and
        skipped (None returned); so is a document older than the one held."""
        kind = TOPIC_KINDS[topic][0]
        if raw is None:
            if record_key is None:
                self.malformed[topic] += 1
                return None
            try:
                key = record_key.decode()
            except UnicodeDecodeError:
                self.malformed[topic] += 1
                return None
            return self.remove(kind, key)
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict):
                raise Malformed("not an object")
            return self.apply_doc(kind, doc, raw)
        except (Malformed, orjson.JSONDecodeError):
            self.malformed[topic] += 1
            return None

    def apply_doc(self, kind: str, doc: dict[str, Any], raw: bytes | None = None) -> Change | None:
        """Apply a parsed document of ``kind``; raises Malformed. None when an older one."""
        key = doc.get(KEY_FIELD[kind])
        if not isinstance(key, str) or not key:
            raise Malformed(f"no {KEY_FIELD[kind]}")
        ts_value = doc.get("ts")
        if ts_value is None and kind in TS_OPTIONAL:
            ts = None
        else:
            ts = parse_ts(ts_value)
        facts = _FACTS[kind](doc)
        held = self.entries[kind].get(key)
        if held is not None and ts is not None and held.ts is not None and ts < held.ts:
            return None
        raw = _one_line(raw, doc) if raw is not None else orjson.dumps(doc)
        entry = Entry(ts, raw, doc if kind in _PARSED_KINDS else None, facts)
        self.entries[kind][key] = entry
        self._account(kind, key, held, entry)
        self.version += 1
        return Change(kind, key, raw)

    def remove(self, kind: str, key: str) -> Change | None:
        held = self.entries[kind].pop(key, None)
        if held is None:
            return None
        self._account(kind, key, held, None)
        self.version += 1
        return Change(kind, key, None)

    def count_malformed(self, topic: str) -> None:
        self.malformed[topic] += 1

    # ------------------------------------------------------------------ aggregates

    def _account(self, kind: str, key: str, old: Entry | None, new: Entry | None) -> None:
        if kind == "scores":
            for entry, step in ((old, -1), (new, 1)):
                if entry is None:
                    continue
                _cur, _pot, quadrant, credit, safety, tier, _mv, _origin = entry.facts
                self.quadrants[quadrant] += step
                self.credit_grades[credit] += step
                self.safety_grades[safety] += step
                self.service_tiers[tier] += step
            if new is None:
                self.matrix.remove(key)
            else:
                cur, pot, quadrant, credit, _s, _t, model_version, origin = new.facts
                self.matrix.put(key, cur, pot, credit, quadrant)
                if old is None:
                    stats = self.entries["stats"].get(key)
                    self.matrix.set_kwh30(key, stats.facts[0] if stats is not None else None)
                if new.ts is not None and new.ts >= self._newest_scores_ts:
                    self._newest_scores_ts = new.ts
                    self.model_version = model_version
                    self.value_origin = origin
            self._matrix_cache = None
        elif kind == "stats":
            kwh30 = new.facts[0] if new is not None else None
            if self.matrix.set_kwh30(key, kwh30):
                self._matrix_cache = None
            if new is not None and new.ts is not None:
                if self.newest_reading_ts is None or new.ts > self.newest_reading_ts:
                    self.newest_reading_ts = new.ts
                    self.newest_reading_text = str(new.facts[1])
        elif kind == "alert":
            for entry, step in ((old, -1), (new, 1)):
                if entry is None:
                    continue
                alert_kind, severity, status = entry.facts
                if status in OPEN_STATUSES:
                    self.alerts_open_by_severity[severity] += step
                    self.alerts_open_by_kind[alert_kind] += step

    # ------------------------------------------------------------------ reading

    def doc(self, kind: str, key: str) -> dict[str, Any] | None:
        entry = self.entries[kind].get(key)
        if entry is None:
            return None
        return entry.doc if entry.doc is not None else orjson.loads(entry.raw)

    def docs(self, kind: str) -> list[dict[str, Any]]:
        """The parsed documents of a kind kept parsed (alert, reliability, area)."""
        return [e.doc for e in self.entries[kind].values() if e.doc is not None]

    def matrix_json(self) -> bytes:
        """``/api/matrix``'s body, built once per change of the scores or their kWh."""
        if self._matrix_cache is None:
            m = self.matrix
            self._matrix_cache = orjson.dumps(
                {
                    "ids": m.ids,
                    "current": m.current,
                    "potential": m.potential,
                    "credit": m.credit,
                    "kwh30": m.kwh30,
                    "quadrant": m.quadrant,
                    "origin": self.value_origin,
                    "model_version": self.model_version,
                }
            )
        return self._matrix_cache

    def counts(self) -> dict[str, Any]:
        """The overview's figures that come from the documents."""

        def nonzero(c: Counter[str], order: tuple[str, ...] = ()) -> dict[str, int]:
            out = {k: c.get(k, 0) for k in order}
            out.update({k: v for k, v in sorted(c.items()) if v and k not in out})
            return out

        return {
            "customers_scored": len(self.entries["scores"]),
            "quadrants": nonzero(self.quadrants, QUADRANTS),
            "credit_grades": nonzero(self.credit_grades, ("A", "B", "C", "D")),
            "safety_grades": nonzero(self.safety_grades, ("A", "B", "C", "D")),
            "service_tiers": nonzero(self.service_tiers, ("special", "level1", "level2", "level3")),
            "alerts_open": {
                "by_severity": nonzero(self.alerts_open_by_severity, SEVERITIES),
                "by_kind": nonzero(self.alerts_open_by_kind, ALERT_KINDS),
            },
            "reliability_system": self.doc("reliability", "system"),
            "malformed": dict(sorted((k, v) for k, v in self.malformed.items() if v)),
        }


# ---------------------------------------------------------------------- per-kind facts


def _scores_facts(doc: dict[str, Any]) -> tuple[Any, ...]:
    current = _number(doc.get("current_value"))
    potential = _number(doc.get("potential_value"))
    if current is None or potential is None:
        raise Malformed("current_value / potential_value not numbers")
    fields = [doc.get(k) for k in ("quadrant", "credit_grade", "safety_grade", "service_tier")]
    if not all(isinstance(v, str) for v in fields):
        raise Malformed("quadrant / grades / tier not strings")
    origin = doc.get("value_origin")
    value_origin = None
    if isinstance(origin, dict):
        c0, p0 = _number(origin.get("current")), _number(origin.get("potential"))
        if c0 is not None and p0 is not None:
            value_origin = {"current": c0, "potential": p0}
    model_version = doc.get("model_version")
    return (current, potential, *fields, str(model_version) if model_version else None, value_origin)


def _stats_facts(doc: dict[str, Any]) -> tuple[Any, ...]:
    d30 = doc.get("d30")
    kwh30 = _number(d30.get("kwh")) if isinstance(d30, dict) else None
    return (kwh30, doc.get("ts"))


def _alert_facts(doc: dict[str, Any]) -> tuple[Any, ...]:
    kind, severity, status = doc.get("kind"), doc.get("severity"), doc.get("status")
    if not (isinstance(kind, str) and isinstance(severity, str) and isinstance(status, str)):
        raise Malformed("kind / severity / status not strings")
    return (kind, severity, status)


def _no_facts(doc: dict[str, Any]) -> tuple[Any, ...]:
    return ()


_FACTS = {
    "scores": _scores_facts,
    "stats": _stats_facts,
    "alert": _alert_facts,
    "reliability": _no_facts,
    "area": _no_facts,
}
_PARSED_KINDS = frozenset({"alert", "reliability", "area"})
