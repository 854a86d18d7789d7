"""What a real head-end does to the readings topic: retries, late delivery, and garbage.

`ReadingDelivery` takes each step's valid readings in order and returns them in delivery order,
every message labelled with the outcome the pipeline should reach:
- `valid` — a reading to use;
- `duplicate` — an exact re-send (same bytes) of a reading delivered earlier: head-end retry;
- a DLQ kind — `decode` (not JSON, not UTF-8), `schema` (wrong type, missing required field),
  `negative_energy` (kwh < 0), `future_timestamp` (the meter clock jumped years ahead).
Late delivery: a share of readings arrive up to `max_lateness_s` after their interval (later
than newer readings of the same meter). A duplicate always arrives after its original (a retry
cannot overtake the first send on one partition), so "first seen = valid" holds by construction.

Bad messages are extra, corrupted copies of a reading, delivered with the readings of its
interval: the valid data set stays complete, so totals can be compared exactly. Shares are per
valid reading. A pipeline must not let a dead-lettered message enter its duplicate detection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson

OUTCOMES = ("valid", "duplicate", "decode", "schema", "negative_energy", "future_timestamp")
DLQ_KINDS = ("decode", "schema", "negative_energy", "future_timestamp")
# variant -> the DLQ kind the pipeline must give it
BAD_VARIANTS: dict[str, str] = {
    "not_json": "decode",
    "not_utf8": "decode",
    "wrong_type": "schema",
    "missing_field": "schema",
    "negative_energy": "negative_energy",
    "future_timestamp": "future_timestamp",
}
_DEFAULT_WEIGHTS = {
    "not_json": 0.15,
    "not_utf8": 0.10,
    "wrong_type": 0.20,
    "missing_field": 0.15,
    "negative_energy": 0.20,
    "future_timestamp": 0.20,
}
REQUIRED_READING_FIELDS = ("meter_id", "customer_id", "ts", "kwh")


@dataclass(frozen=True)
class BadConfig:
    bad_share: float = 0.02
    duplicate_share: float = 0.01
    late_share: float = 0.02
    max_lateness_s: int = 1800
    weights: Mapping[str, float] = field(default_factory=lambda: dict(_DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        for name in ("bad_share", "duplicate_share", "late_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        unknown = set(self.weights) - set(BAD_VARIANTS)
        if unknown:
            raise ValueError(f"unknown bad-message variants: {sorted(unknown)}")


Delivered = tuple[bytes, bytes, str]  # key, value bytes, expected outcome
Reading = tuple[bytes, dict[str, Any], bytes]  # key, value, value bytes


def corrupt(value: dict[str, Any], raw: bytes, variant: str, rng: np.random.Generator) -> bytes:
    """A corrupted copy of a valid reading. `variant` is a key of BAD_VARIANTS."""
    if variant == "not_json":
        if rng.random() < 0.5:
            return raw[: max(1, len(raw) // 2)]  # truncated in transit
        return b"HEADEND-ERR 503 " + value["meter_id"].encode()
    if variant == "not_utf8":
        return raw.replace(b'"MTR-', b'"MTR-\xff\xfe', 1)  # Latin-1 junk inside a string
    bad = dict(value)
    if variant == "wrong_type":
        # (an unparseable ts is left out: schemas.codec gives it its own kind, bad_timestamp)
        k = int(rng.integers(4))
        if k == 0:
            bad["kwh"] = "n/a"
        elif k == 1:
            bad["kwh"] = {"value": value["kwh"]}
        elif k == 2:
            bad["meter_id"] = 12345
        else:
            bad["interval_s"] = "fifteen"
    elif variant == "missing_field":
        del bad[REQUIRED_READING_FIELDS[int(rng.integers(len(REQUIRED_READING_FIELDS)))]]
    elif variant == "negative_energy":
        bad["kwh"] = -round(abs(float(value["kwh"])) + 0.001, 4)
    elif variant == "future_timestamp":
        years = int(rng.integers(5, 31))
        bad["ts"] = (datetime.fromisoformat(value["ts"]) + timedelta(days=365 * years)).isoformat()
    else:
        raise ValueError(f"unknown bad-message variant {variant!r}")
    return orjson.dumps(bad)


class ReadingDelivery:
    """Turns in-order readings into the head-end's delivery order. Deterministic in the seed."""

    def __init__(self, cfg: BadConfig, seed: int, interval_s: int = 900) -> None:
        self.cfg = cfg
        self.seed = seed
        self.max_delay_steps = max(0, cfg.max_lateness_s // interval_s)
        self.interval_s = interval_s
        self._pending: dict[int, list[Delivered]] = {}
        names = [v for v in BAD_VARIANTS if cfg.weights.get(v, 0) > 0]
        w = np.array([cfg.weights[v] for v in names], dtype=float)
        self._variants = names
        self._p = w / w.sum() if len(names) else w

    def push(self, step_start: int, readings: list[Reading]) -> list[Delivered]:
        """Readings of the interval starting at step_start; returns what is delivered now."""
        k = step_start // self.interval_s
        rng = np.random.default_rng([self.seed, 0xBAD, k])
        n = len(readings)
        cfg = self.cfg
        late = rng.random(n) < cfg.late_share if self.max_delay_steps else np.zeros(n, bool)
        dup = rng.random(n) < cfg.duplicate_share
        bad = (rng.random(n) < cfg.bad_share) if len(self._variants) else np.zeros(n, bool)
        delay = rng.integers(1, self.max_delay_steps + 1, n) if self.max_delay_steps else np.zeros(n, int)
        dup_delay = rng.integers(0, self.max_delay_steps + 1, n)
        late_idx = np.flatnonzero(late).tolist()
        if late_idx:
            held = set(late_idx)
            now: list[Delivered] = [
                (key, raw, "valid") for i, (key, _, raw) in enumerate(readings) if i not in held
            ]
        else:
            now = [(key, raw, "valid") for key, _, raw in readings]
        at = np.where(late, k + delay, k)
        for i in late_idx:
            key, _, raw = readings[i]
            self._pending.setdefault(int(at[i]), []).append((key, raw, "valid"))
        for i in np.flatnonzero(bad).tolist():
            key, value, raw = readings[i]
            variant = self._variants[int(rng.choice(len(self._variants), p=self._p))]
            now.append((key, corrupt(value, raw, variant, rng), BAD_VARIANTS[variant]))
        # a retry goes out after the first send was delivered, never before it
        for i in np.flatnonzero(dup).tolist():
            key, _, raw = readings[i]
            self._pending.setdefault(int(at[i] + dup_delay[i]), []).append((key, raw, "duplicate"))
        now.extend(self._pending.pop(k, ()))
        return now

    def flush(self) -> list[Delivered]:
        """Everything still held back, in delivery order."""
        out: list[Delivered] = []
        for at in sorted(self._pending):
            out.extend(self._pending[at])
        self._pending.clear()
        return out
