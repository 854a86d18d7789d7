"""`gridpulse simulate --areas`: the transformer areas' run (simulator/areas.py) produced to Kafka.

:func:`area_simulation` draws the run without Kafka: the population and load model of the
ordinary simulator with the same options (``simulator.run.Simulation``: whole local days, as with
``--blocks``; no outages, no billing), every inspection case placed by
:func:`simulator.areas.plan_scenarios`. :func:`run_area_simulation` produces its messages (the
``customers`` profiles, ``meter.readings`` with the cases applied, the summary meters'
``area.readings``; single readings with the options' late, duplicate and bad shares (no bad
copies of summary-meter readings), or daily curves with ``blocks`` delivered as the options'
collection run without partial days) and returns a summary with the counts per topic and
expected outcome and the scenarios with their expected outcomes, so whoever runs it knows what
the pipeline should say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from simulator.areas import AreaSimulation, Form, Scenario, plan_scenarios
from simulator.bad import BadConfig
from simulator.blocks import local_midnights
from simulator.clock import rfc3339
from simulator.run import Message, Simulation, SimulationOptions, _BatchingProducer

MIN_DAYS = 12  # plan_scenarios: 5 days of history, the case day, the holiday, to a week's end


def area_simulation(
    opts: SimulationOptions, now: datetime | None = None
) -> tuple[AreaSimulation, list[Scenario]]:
    """The areas' run for ``opts`` (customers, days, start, seed, tz) with every case planned."""
    if round(opts.days) < MIN_DAYS:
        raise ValueError(f"--areas needs --days {MIN_DAYS} or more (history before the cases, then a week)")
    base = Simulation(
        replace(
            opts, blocks=True, billing=False, outages=False, replay_uci=False, consumption_history_months=0
        ),
        now,
    )
    days = len(local_midnights(base.start, base.end, opts.tz))
    bare = AreaSimulation(base.pop, base.load, base.start, days, opts.seed)
    plan = plan_scenarios(bare)
    return replace(bare, scenarios=plan), plan


def area_messages(sim: AreaSimulation, opts: SimulationOptions) -> Iterator[Message]:
    """The run's messages as ``--areas`` sends them: single readings with the options' late,
    duplicate and bad shares, or (``blocks``) daily curves in the options' collection run without
    partial days."""
    if opts.blocks:
        return sim.messages(
            "block", opts.topic_prefix, collection=replace(opts.collection, partial_share=0.0)
        )
    faults = BadConfig(
        bad_share=opts.bad_share,
        duplicate_share=opts.duplicate_share,
        late_share=opts.late_share,
        max_lateness_s=opts.max_lateness_s,
    )
    return sim.messages("single", opts.topic_prefix, singles=faults)


async def run_area_simulation(opts: SimulationOptions, now: datetime | None = None) -> dict[str, Any]:
    """Produce the areas' run to Kafka (topics prefixed by ``opts.topic_prefix``); the counts
    per topic, the span and the scenarios with their expected outcomes."""
    from aiokafka import AIOKafkaProducer

    sim, plan = area_simulation(opts, now)
    form: Form = "block" if opts.blocks else "single"
    summary: dict[str, Any] = {
        "start": rfc3339(sim.start, opts.tz),
        "end": rfc3339(sim.end, opts.tz),
        "customers": sim.pop.n,
        "areas": len(sim.areas),
        "form": form,
        "messages": {},
        "outcomes": {},
        "scenarios": [s.to_dict(opts.tz) for s in plan],
        "elapsed_s": 0.0,
        "stopped_early": False,
    }
    producer = AIOKafkaProducer(
        bootstrap_servers=opts.bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=opts.linger_ms,
        compression_type=opts.compression,
        max_batch_size=opts.max_batch_bytes,
        **opts.kafka_security,
    )
    prefix_len = len(opts.topic_prefix)
    counts: dict[str, int] = summary["messages"]
    outcomes: dict[str, dict[str, int]] = summary["outcomes"]
    t0 = time.monotonic()
    sent = 0
    await producer.start()
    try:
        out = _BatchingProducer(producer, opts.linger_ms / 1000)
        for m in area_messages(sim, opts):
            await out.send(m.topic, m.key, m.value)
            topic = m.topic[prefix_len:]
            counts[topic] = counts.get(topic, 0) + 1
            by_outcome = outcomes.setdefault(topic, {})
            by_outcome[m.outcome] = by_outcome.get(m.outcome, 0) + 1
            sent += 1
            if opts.seconds is not None and sent % 1000 == 0 and time.monotonic() - t0 >= opts.seconds:
                summary["stopped_early"] = True
                break
            if opts.rate > 0:
                ahead = sent / opts.rate - (time.monotonic() - t0)
                if ahead > 0.005:
                    await out.flush_batches()
                    await asyncio.sleep(ahead)
            elif sent % 5000 == 0:
                await asyncio.sleep(0)  # let the sender task run
        await out.close()
    finally:
        await producer.stop()
    summary["elapsed_s"] = round(time.monotonic() - t0, 3)
    return summary
