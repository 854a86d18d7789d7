"""`gridpulse scores explain CUSTOMER`: why a customer has its scores, from the live topics.

Reads the latest `stats.customer` of every customer and every profile from Kafka (what the
worker's population view holds), runs the value model over that population and prints the
customer's explanation: each indicator's raw value, 1–5 score, breakpoints, weight and
contribution; the quadrant against the origin; the tier cut; the credit deductions.
"""

from __future__ import annotations

from typing import Any

from gridpulse.settings import Settings
from schemas import topics as contract
from scoring import ModelConfig, load_config, run_population
from streams.kafka import read_latest


async def explain_customer(settings: Settings, customer_id: str) -> dict[str, Any]:
    stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
    if customer_id not in stats:
        raise KeyError(f"no stats.customer for {customer_id!r} on {settings.topic(contract.STATS_CUSTOMER)}")
    profiles = await read_latest(settings, contract.CUSTOMERS, "customer_id")
    config = load_config(settings.scoring_model_path) if settings.scoring_model_path else ModelConfig()
    run = run_population(
        list(stats.values()),
        {cid: {k: v for k, v in p.items() if k != "name"} for cid, p in profiles.items()},
        config,
    )
    return run.explain(customer_id)
