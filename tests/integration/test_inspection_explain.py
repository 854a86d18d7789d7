"""`gridpulse inspection explain` on the real Kafka and Redis: the profile on `customers`, the
area's snapshot in Redis (`gp:areas:<area>`: doc and customer_days, as the stage writes them),
the alerts on `alerts.inspection`; without the snapshot, stats.area from its topic.

The figures come from an AreaState fed directly (a thief under-reporting 70 % from day 26);
the explanation's score must be the stage's own function's on that state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from gridpulse.explain import explain_suspect
from gridpulse.settings import Settings
from inspection.area import AreaState
from inspection.suspects import rank_area
from metering.load import DEFAULT_TZ
from schemas import topics as t
from schemas.area_snapshot import CUSTOMER_DAYS_FIELD, DOC_FIELD, TS_FIELD, area_key, customer_days_value
from tests.integration.helpers import js, produce

pytestmark = pytest.mark.integration

FIRST = date(2027, 1, 1)
DAYS = 35


def area_state() -> AreaState:
    state = AreaState(DEFAULT_TZ)
    lo = int(datetime(FIRST.year, FIRST.month, FIRST.day, tzinfo=DEFAULT_TZ).timestamp())
    for c in ("c1", "c2", "c3"):
        state.join(c, lo)
    for k in range(DAYS):
        start = lo + k * 86400
        true = {"c1": 0.50 + 0.01 * (k % 3), "c2": 0.30 + 0.005 * (k % 4), "c3": 0.25}
        state.apply_supply(start, [round(sum(true.values()) * (1.03 + 0.002 * (k % 5)), 4)] * 96)
        for c, kwh in true.items():
            state.apply_customer(
                c, f"m-{c}", start, [round(kwh * 0.3, 4) if c == "c1" and k >= 26 else kwh] * 96
            )
    return state


def profile(cid: str, manager: str) -> dict[str, Any]:
    return {
        "customer_id": cid,
        "name": f"secret name of {cid}",
        "tariff_class": "residential",
        "transformer_area": "A1",
        "manager_id": manager,
    }


@pytest_asyncio.fixture
async def published(topics: Settings, redis_settings: Settings) -> AsyncIterator[dict[str, Any]]:
    settings = topics
    state = area_state()
    doc = orjson.loads(orjson.dumps(state.stats_document("A1"), option=orjson.OPT_SERIALIZE_NUMPY))
    await produce(
        settings,
        t.CUSTOMERS,
        [(c.encode(), js(profile(c, m))) for c, m in (("c1", "M1"), ("c2", "M2"), ("c3", "M3"))],
    )
    await produce(settings, t.STATS_AREA, [(b"A1", js(doc))])
    tamper = {
        "alert_id": "inspection:c1:tamper_flag",
        "kind": "inspection",
        "severity": "major",
        "status": "open",
        "ts": doc["ts"],
        "reason": "meter m-c1 reported magnetic",
        "evidence": {"meter_id": "m-c1", "codes": ["magnetic"]},
        "scope": "customer",
        "customer_id": "c1",
        "rule": "tamper_flag",
        "manager_id": "M1",
        "flapping": False,
    }
    await produce(settings, t.ALERTS_INSPECTION, [(tamper["alert_id"].encode(), js(tamper))])
    client = aioredis.from_url(settings.redis_url)
    key = area_key(settings.topic_prefix, "A1")
    try:
        yield {"settings": settings, "state": state, "doc": doc, "client": client, "key": key}
    finally:
        await client.delete(key)
        await client.aclose()


async def test_explain_reads_the_snapshot_and_recomputes_the_stages_score(published: dict[str, Any]) -> None:
    settings, state, client = published["settings"], published["state"], published["client"]
    await client.hset(
        published["key"],
        mapping={
            DOC_FIELD: orjson.dumps(published["doc"]),
            TS_FIELD: published["doc"]["ts"],
            CUSTOMER_DAYS_FIELD: customer_days_value(state.customer_days()),
        },
    )
    e = await explain_suspect(settings, "c1")
    stage = {
        s.customer_id: s for s in rank_area(state.customer_days(), state.days(), {"c1": ["tamper_flag"]})
    }
    assert (e["transformer_area"], e["manager_id"], e["rank"], e["members"]) == ("A1", "M1", 1, 3)
    assert e["score"]["score"] == stage["c1"].score and e["score"]["parts"] == stage["c1"].evidence
    assert [a["rule"] for a in e["own_alerts"]] == ["tamper_flag"]
    assert len(e["series"]) == 30 and all(row["customer_kwh"] is not None for row in e["series"])
    assert "secret name" not in orjson.dumps(e).decode()  # never a name


async def test_without_the_snapshot_explain_reads_stats_area_from_its_topic(
    published: dict[str, Any],
) -> None:
    e = await explain_suspect(published["settings"], "c2")
    assert e["area"]["day"]["date"] == published["doc"]["day"]["date"]
    assert e["score"] is None and any("customer_days" in note for note in e["notes"])
    assert e["series"][-1]["area_supplied_kwh"] == published["doc"]["daily"][-1]["supplied_kwh"]
    with pytest.raises(KeyError):
        await explain_suspect(published["settings"], "c404")
    assert (date.fromisoformat(e["area"]["day"]["date"]) - FIRST) == timedelta(days=DAYS - 1)
