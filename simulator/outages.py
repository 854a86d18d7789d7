"""Outages on feeders and transformer areas, and who loses supply.

Planned work: `notice` (1–3 days ahead, with planned_start / expected_restore), then `start`
(a few minutes off the plan), then `restore` (usually near the expected time). Unplanned faults:
`start` and `restore` with a cause; about a third are momentary (2–5 minutes, counted by MAIFI,
not SAIFI), the rest last from six minutes to several hours. Events after the simulated end are
not emitted: such an outage is still on when the data stops.

Supply loss (used by load.py to zero the meters): a transformer-area outage cuts every customer of
the area; a feeder outage cuts the customers whose only feeder it is. A dual-circuit customer
keeps supply from its other feeder (loss of redundancy, visible to the pipeline, not to the
meter); two overlapping feeder outages on both circuits are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from simulator.clock import local, rfc3339
from simulator.population import Population

_CAUSES = ("tree_contact", "equipment_failure", "lightning", "animal", "third_party_damage", "overload")
_CAUSE_P = (0.25, 0.25, 0.15, 0.1, 0.15, 0.1)


@dataclass(frozen=True)
class Outage:
    outage_id: str
    scope: str  # feeder | transformer_area
    scope_id: str
    planned: bool
    start: int  # epoch seconds, actual
    restore: int
    notice: int | None = None
    planned_start: int | None = None
    expected_restore: int | None = None
    cause: str | None = None

    @property
    def duration_s(self) -> int:
        return self.restore - self.start

    def messages(self, tz: ZoneInfo, until: int) -> list[tuple[int, dict[str, Any]]]:
        """(epoch, grid.outages value) for every event at or before `until`."""
        base: dict[str, Any] = {
            "outage_id": self.outage_id,
            "scope": self.scope,
            "scope_id": self.scope_id,
            "planned": self.planned,
            "planned_start": rfc3339(self.planned_start, tz) if self.planned_start is not None else None,
            "expected_restore": (
                rfc3339(self.expected_restore, tz) if self.expected_restore is not None else None
            ),
            "cause": self.cause,
        }
        events = [("notice", self.notice), ("start", self.start), ("restore", self.restore)]
        return [
            (t, {**base, "event": name, "ts": rfc3339(t, tz)})
            for name, t in events
            if t is not None and t <= until
        ]


def plan_outages(pop: Population, start: int, end: int, seed: int, tz: ZoneInfo) -> list[Outage]:
    """A few outages starting inside [start, end). At least one planned and two unplanned
    (one of them momentary) when the span is a day or more."""
    rng = np.random.default_rng([seed, 0x0474])
    days = (end - start) / 86400
    if days <= 0:
        return []
    feeders = sorted({f for fs in pop.feeders for f in fs})
    areas = sorted(set(pop.transformer_areas))
    n_planned = max(1 if days >= 1 else 0, int(rng.poisson(0.02 * len(feeders) * days)))
    n_unplanned = max(2 if days >= 1 else 0, int(rng.poisson(0.06 * len(feeders) * days)))
    out: list[tuple[int, dict[str, Any]]] = []
    for k in range(n_planned + n_unplanned):
        planned = k < n_planned
        on_feeder = rng.random() < 0.4
        scope_id = str(rng.choice(feeders if on_feeder else areas))
        cause: str | None
        if planned:
            # work starts in the morning, local time, on a day inside the span
            day0 = local(start, tz).replace(hour=0, minute=0, second=0, microsecond=0)
            day = int(rng.integers(0, max(1, int(days))))
            hour = int(rng.integers(8, 11))
            p_start = int(day0.timestamp()) + day * 86400 + hour * 3600 + int(rng.choice([0, 1800]))
            if p_start < start:
                p_start += 86400
            expected = p_start + int(rng.integers(2, 9)) * 3600
            actual_start = p_start + int(rng.integers(-5, 16)) * 60
            actual_restore = expected + int(rng.integers(-60, 46)) * 60
            notice = p_start - int(rng.integers(1, 4)) * 86400 - int(rng.integers(0, 8)) * 3600
            fields: dict[str, Any] = {
                "notice": notice,
                "planned_start": p_start,
                "expected_restore": expected,
            }
            cause = "maintenance"
            start_t, restore_t = actual_start, actual_restore
        else:
            start_t = start + int(rng.integers(0, int(end - start)))
            momentary = k == n_planned + 1 or rng.random() < 0.3
            if momentary:
                dur = int(rng.integers(120, 300))
            else:
                dur = int(np.clip(rng.lognormal(np.log(75 * 60), 0.8), 6 * 60, 8 * 3600))
            restore_t = start_t + dur
            fields = {}
            cause = str(rng.choice(_CAUSES, p=_CAUSE_P))
        out.append(
            (
                start_t,
                {
                    "scope": "feeder" if on_feeder else "transformer_area",
                    "scope_id": scope_id,
                    "planned": planned,
                    "start": start_t,
                    "restore": restore_t,
                    "cause": cause,
                    **fields,
                },
            )
        )
    out.sort(key=lambda x: x[0])
    outages = []
    for i, (t, f) in enumerate(out):
        stamp = local(t, tz).strftime("%Y%m%d%H%M")
        outages.append(Outage(outage_id=f"OUT-{stamp}-{seed % 1000:03d}{i:03d}", **f))
    return outages


def supply_loss_masks(pop: Population, outages: list[Outage]) -> list[np.ndarray]:
    """Per outage, a boolean mask of the customers that lose supply."""
    areas = np.array(pop.transformer_areas)
    single = np.array([fs[0] if len(fs) == 1 else "" for fs in pop.feeders])
    masks = []
    for o in outages:
        masks.append(areas == o.scope_id if o.scope == "transformer_area" else single == o.scope_id)
    return masks
