"""consumption.history -> seeded months of the customer's load state -> stats.customer.

Billing history (one record per customer and past billing month) lets year-over-year growth
(B41/B42) work on the first day of a deployment. A seeded month counts only while it has no
metered readings (metering.load.LoadState.seed_history); replaying a record changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import faust

from schemas.models import ConsumptionHistory
from schemas.topics import CONSUMPTION_HISTORY
from streams.runtime import Runtime


async def process_event(rt: Runtime, event: faust.EventT) -> None:
    record = await rt.decode_input(CONSUMPTION_HISTORY, event, ConsumptionHistory)
    if record is None:
        return
    cid = record.customer_id
    state = rt.load_state(cid)
    state.seed_history(record.period, record.kwh)
    rt.load_table[cid.encode()] = state.to_bytes()
    rt.counters["history_months_applied"] += 1
    if state.watermark is not None:  # nothing to publish before the first reading
        doc = rt.stats_snapshot(cid, datetime.now(UTC), load=state)
        if doc is not None:
            await rt.publish_stats([doc])


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topics.history, name="history", concurrency=1)
    async def history(stream: faust.StreamT) -> None:
        async for event in stream.events():
            await rt.guarded(CONSUMPTION_HISTORY, event, partial(process_event, rt, event))
