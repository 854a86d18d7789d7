"""End to end: a real worker (gridpulse.workerproc) scores a small simulated population while
the dashboard runs as its own process; once the topics settle, /api/matrix and
/api/customers/{id} equal the latest stats.customer and scores.customer documents on the topics,
and no customer name (the customers topic carries them) is in the dashboard's log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from gridpulse.settings import Settings
from schemas import topics as contract
from streams.kafka import read_latest
from tests.integration.dashboard_client import (
    signed_in,
    start_dashboard,
)
from tests.integration.helpers import eventually
from tests.integration.population import send, simulate

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CUSTOMERS = 30


async def test_the_workers_scores_and_stats_reach_the_dashboard(
    topics: Settings, worker_factory: Any, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    worker = worker_factory(settings, GRIDPULSE_SCORING_INTERVAL_S="2").start()
    dash = start_dashboard(settings, tmp_path, dashboards)
    await worker.wait_ready()
    await dash.wait_feed_ready()
    messages = simulate(settings, customers=CUSTOMERS, days=1.0, billing_history_months=2)
    names = {
        orjson.loads(m.value)["name"]
        for m in messages
        if m.topic.endswith(contract.CUSTOMERS) and m.value and b'"name"' in m.value
    }
    await send(settings, messages)

    async with signed_in(dash.url, "view") as client:
        state: dict[str, Any] = {}

        async def dashboard_equals_topics() -> bool:
            scores = await read_latest(settings, contract.SCORES_CUSTOMER, "customer_id")
            stats = await read_latest(settings, contract.STATS_CUSTOMER, "customer_id")
            matrix = (await client.get("/api/matrix")).json()
            state.update(scores=scores, stats=stats, matrix=matrix)
            if len(scores) < CUSTOMERS or sorted(matrix["ids"]) != sorted(scores):
                return False
            for i, cid in enumerate(matrix["ids"]):
                doc = scores[cid]
                row = (
                    matrix["current"][i],
                    matrix["potential"][i],
                    matrix["credit"][i],
                    matrix["quadrant"][i],
                )
                if row != (
                    doc["current_value"],
                    doc["potential_value"],
                    doc["credit_grade"],
                    doc["quadrant"],
                ):
                    return False
                if matrix["kwh30"][i] != stats[cid]["d30"]["kwh"]:
                    return False
            for cid in sorted(scores):
                body = (await client.get(f"/api/customers/{cid}")).json()
                if body["scores"] != scores[cid] or body["stats"] != stats[cid]:
                    return False
            return True

        try:
            await eventually(
                dashboard_equals_topics, 180, "the dashboard equals the topics' latest documents"
            )
        except AssertionError:
            raise AssertionError(
                f"scores on the topic {len(state.get('scores', {}))}, in the matrix "
                f"{len(state.get('matrix', {}).get('ids', []))}\nworker:\n{worker.log_tail(30)}\n"
                f"dashboard:\n{dash.log_tail(30)}"
            ) from None
        newest = max(state["scores"].values(), key=lambda d: d["ts"])
        assert state["matrix"]["origin"] == newest["value_origin"]
        assert state["matrix"]["model_version"] == newest["model_version"]
        overview = (await client.get("/api/overview")).json()
        assert overview["customers_scored"] == CUSTOMERS
        quadrants = [d["quadrant"] for d in state["scores"].values()]
        assert overview["quadrants"] == {
            q: quadrants.count(q) for q in ("vip", "improvement", "maintenance", "abandon")
        }
        assert overview["data_health"]["newest_reading_ts"] is not None
        # the explanation of a published score from the model's weights adds up to its values
        one = state["scores"][sorted(state["scores"])[0]]
        explanation = (await client.get(f"/api/customers/{one['customer_id']}")).json()["explanation"]
        current = sum(r["contribution"] for r in explanation["indicators"] if r["part"] == "current")
        assert current == pytest.approx(one["current_value"])
    log = dash.log_tail(10_000)
    assert names and not [n for n in names if n in log]
