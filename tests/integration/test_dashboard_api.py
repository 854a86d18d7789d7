"""The dashboard (`gridpulse dashboard`, its own process on a free port) on the real Kafka, Redis
and PostgreSQL: the Redis snapshot and the topics merged by event time, the SSE stream (a score
reaches a connected client; a client that never reads holds up nobody), Redis and PostgreSQL
down, access and roles, acknowledgements in the alert store, malformed documents, data health,
the OpenAPI schema."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiokafka import TopicPartition
from pydantic import SecretStr

from alerts.store import migrate, upsert_alert
from gridpulse.settings import Settings
from observability.metrics import lint_exposition
from schemas import topics as contract
from scoring import score_population
from streams.kafka import make_consumer
from tests.integration.dashboard_client import (
    records_read,
    signed_in,
    sse_events,
    start_dashboard,
    wait_json,
    wait_records,
)
from tests.integration.fixtures import free_port
from tests.integration.helpers import eventually, js, produce
from tests.integration.ops_helpers import TcpRelay, probe, scrape, series, value
from tests.samples import credit_alert_example, outage_alert_example
from tests.scoring_samples import simulated_stats

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

T0 = datetime(2026, 10, 31, 15, 45, tzinfo=UTC)


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


@pytest_asyncio.fixture
async def redis_client(redis_settings: Settings) -> AsyncIterator[Any]:
    client = aioredis.from_url(redis_settings.redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{redis_settings.topic_prefix}gp:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def population(n: int, seed: int = 5) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(stats.customer, scores.customer) documents of n simulated customers, really scored."""
    stats, profiles = simulated_stats(n, seed=seed)
    return stats, score_population(stats, profiles)


def with_ts(doc: dict[str, Any], ts: str, **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    out["ts"] = ts
    out.update(changes)
    return out


async def put_redis(client: Any, prefix: str, infix: str, key: str, doc: dict[str, Any]) -> None:
    await client.hset(f"{prefix}gp:{infix}:{key}", mapping={"doc": orjson.dumps(doc), "ts": doc["ts"]})


async def produce_docs(settings: Settings, topic: str, key_field: str, docs: list[dict[str, Any]]) -> None:
    await produce(settings, topic, [(d[key_field].encode(), js(d)) for d in docs])


# ---------------------------------------------------------------------------- merge


async def test_snapshot_and_tail_equal_the_newest_of_redis_and_the_topics(
    topics: Settings, redis_settings: Settings, redis_client: Any, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    prefix = settings.topic_prefix
    stats, scores = population(40)
    expected_scores: dict[str, dict[str, Any]] = {}
    expected_stats: dict[str, dict[str, Any]] = {}
    on_topic_scores, on_topic_stats = [], []
    for i, (st, sc) in enumerate(zip(stats, scores, strict=True)):
        cid = sc["customer_id"]
        old_sc, new_sc = with_ts(sc, at(0)), with_ts(sc, at(1), current_value=100.0 + i)
        old_st = with_ts(st, at(0))
        new_st = with_ts(st, at(1), d30={**st["d30"], "kwh": 5000.0 + i})
        if i < 10:  # only in Redis
            await put_redis(redis_client, prefix, "scores", cid, old_sc)
            await put_redis(redis_client, prefix, "stats", cid, old_st)
            expected_scores[cid], expected_stats[cid] = old_sc, old_st
        elif i < 20:  # Redis older, the topic newer
            await put_redis(redis_client, prefix, "scores", cid, old_sc)
            await put_redis(redis_client, prefix, "stats", cid, old_st)
            on_topic_scores.append(new_sc)
            on_topic_stats.append(new_st)
            expected_scores[cid], expected_stats[cid] = new_sc, new_st
        elif i < 30:  # Redis newer, the topic older (Redis was written after a later doc)
            await put_redis(redis_client, prefix, "scores", cid, new_sc)
            await put_redis(redis_client, prefix, "stats", cid, new_st)
            on_topic_scores.append(old_sc)
            on_topic_stats.append(old_st)
            expected_scores[cid], expected_stats[cid] = new_sc, new_st
        else:  # only on the topic
            on_topic_scores.append(old_sc)
            on_topic_stats.append(old_st)
            expected_scores[cid], expected_stats[cid] = old_sc, old_st
    # the worker's other keys under the prefix are not documents
    await redis_client.zadd(f"{prefix}gp:scores:by_value", {"c00000": 1.0})
    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", on_topic_scores)
    await produce_docs(settings, contract.STATS_CUSTOMER, "customer_id", on_topic_stats)

    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with signed_in(dash.url, "view") as client:

        async def check_all() -> None:
            for cid in expected_scores:
                body = (await client.get(f"/api/customers/{cid}")).json()
                assert body["scores"] == expected_scores[cid], cid
                assert body["stats"] == expected_stats[cid], cid
            matrix = (await client.get("/api/matrix")).json()
            assert sorted(matrix["ids"]) == sorted(expected_scores)
            for i, cid in enumerate(matrix["ids"]):
                doc = expected_scores[cid]
                assert matrix["current"][i] == doc["current_value"]
                assert matrix["potential"][i] == doc["potential_value"]
                assert matrix["credit"][i] == doc["credit_grade"]
                assert matrix["quadrant"][i] == doc["quadrant"]
                assert matrix["kwh30"][i] == expected_stats[cid]["d30"]["kwh"]
            assert matrix["origin"] == scores[0]["value_origin"]
            overview = (await client.get("/api/overview")).json()
            assert overview["customers_scored"] == 40
            for q in ("vip", "improvement", "maintenance", "abandon"):
                assert overview["quadrants"][q] == sum(d["quadrant"] == q for d in expected_scores.values())
            assert overview["data_health"]["newest_reading_ts"] == at(1)
            assert overview["data_health"]["malformed"] == {}

        await check_all()

        # the tail: a newer score of a Redis-only customer replaces it, an older one of a
        # customer whose newer doc came from Redis does not
        first, third = scores[0]["customer_id"], scores[25]["customer_id"]
        newer = with_ts(expected_scores[first], at(2), current_value=999.0)
        older = with_ts(expected_scores[third], at(-5), current_value=-1.0)
        read = await records_read(dash.url)
        await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", [older, newer])
        await wait_records(dash.url, read + 2)
        expected_scores[first] = newer
        await check_all()  # the older doc of `third` changed nothing


async def test_redis_down_the_dashboard_starts_from_the_topics(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens there
    settings = topics.model_copy(update={"redis_url": f"redis://127.0.0.1:{closed}/0"})
    stats, scores = population(15, seed=8)
    await produce_docs(settings, contract.STATS_CUSTOMER, "customer_id", stats)
    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", scores)
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with signed_in(dash.url, "view") as client:
        matrix = (await client.get("/api/matrix")).json()
        assert sorted(matrix["ids"]) == sorted(s["customer_id"] for s in scores)
        one = scores[3]
        body = (await client.get(f"/api/customers/{one['customer_id']}")).json()
        assert body["scores"] == one and body["stats"] == stats[3]
        # the explanation from the document and the model's weights
        rows = {r["indicator"]: r for r in body["explanation"]["indicators"]}
        assert {n: r["score"] for n, r in rows.items()} == one["scores"]
        assert sum(r["contribution"] for r in rows.values() if r["part"] == "current") == pytest.approx(
            one["current_value"]
        )
        assert sum(r["contribution"] for r in rows.values() if r["part"] == "potential") == pytest.approx(
            one["potential_value"]
        )
    assert "Redis snapshot not read" in dash.log_tail(200)


async def test_a_deployment_without_some_output_topics_is_read_all_the_same(
    settings: Settings, dashboards: list, tmp_path: Path
) -> None:
    """Only stats.customer and scores.customer exist (an older deployment without the alert and
    inspection topics): the dashboard reads those."""
    from aiokafka.admin import NewTopic

    from streams.kafka import create_missing_topics, delete_topics

    names = [settings.topic(contract.STATS_CUSTOMER), settings.topic(contract.SCORES_CUSTOMER)]
    await create_missing_topics(settings, [NewTopic(n, 2, settings.topic_replication) for n in names])
    try:
        _, scores = population(3, seed=9)
        await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", scores)
        dash = start_dashboard(settings, tmp_path, dashboards)
        await dash.wait_feed_ready(within_s=30)
        async with signed_in(dash.url, "view") as client:
            matrix = (await client.get("/api/matrix")).json()
            assert sorted(matrix["ids"]) == sorted(s["customer_id"] for s in scores)
        assert "do not exist; reading the others" in dash.log_tail(200)
    finally:
        await delete_topics(settings, names)


# ---------------------------------------------------------------------------- live stream


async def test_a_score_published_while_a_client_is_connected_reaches_it(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    _, scores = population(5, seed=11)
    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", scores[:4])
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    new = with_ts(scores[4], at(3))
    async with (
        signed_in(dash.url, "view") as client,
        client.stream("GET", "/events", params={"kinds": "scores,overview"}) as resp,
    ):
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
        events = sse_events(resp)
        name, first = await asyncio.wait_for(anext(events), 10)
        assert name == "overview" and first["customers_scored"] == 4
        # the state's version at the subscription; a snapshot taken since holds at least it
        name, subscribed = await asyncio.wait_for(anext(events), 10)
        snapshot = await client.get("/api/matrix")
        assert name == "subscribed" and int(snapshot.headers["X-Feed-Version"]) == subscribed["version"] > 0
        t0 = time.monotonic()
        await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", [new])

        async def until_update() -> dict[str, Any]:
            async for name, data in events:
                if name == "update" and data["key"] == new["customer_id"]:
                    return data
            raise AssertionError("stream ended")

        update = await asyncio.wait_for(until_update(), 15)
        assert update == {"kind": "scores", "key": new["customer_id"], "doc": new}
        assert time.monotonic() - t0 < 10
        later = await client.get("/api/matrix")
        assert int(later.headers["X-Feed-Version"]) > subscribed["version"]  # the change moved it
        assert new["customer_id"] in later.json()["ids"]

        async def until_overview() -> dict[str, Any]:
            async for name, data in events:
                if name == "overview" and data["customers_scored"] == 5:
                    return data
            raise AssertionError("stream ended")

        await asyncio.wait_for(until_overview(), 10)


async def test_a_client_that_never_reads_does_not_hold_up_another(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with signed_in(dash.url, "view") as client:
        cookie = client.cookies["gp_session"]
        # the slow client: a small receive buffer, a request, and never a read
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", dash.port))
        sock.sendall(
            f"GET /events?kinds=scores HTTP/1.1\r\nHost: x\r\nCookie: gp_session={cookie}\r\n\r\n".encode()
        )
        try:
            _, scores = population(1, seed=2)
            template = scores[0]
            pad = "x" * 3000  # ~3.7 KB a document: 5 x 1,000 of them overflow every socket buffer
            async with client.stream("GET", "/events", params={"kinds": "scores"}) as resp:
                events = sse_events(resp)
                for rnd in range(5):
                    docs = [
                        with_ts(template, at(rnd), customer_id=f"S{i:04d}", pad=pad, current_value=float(rnd))
                        for i in range(1000)
                    ]
                    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", docs)
                t0 = time.monotonic()

                async def until_last() -> None:
                    async for name, data in events:
                        if (
                            name == "update"
                            and data["key"] == "S0999"
                            and data["doc"]["current_value"] == 4.0
                        ):
                            return

                await asyncio.wait_for(until_last(), 30)
                waited = time.monotonic() - t0
            # the API answers while the slow client still holds its stream
            t1 = time.monotonic()
            overview = (await client.get("/api/overview")).json()
            assert overview["customers_scored"] == 1000
            assert time.monotonic() - t1 < 2.0
            assert (await client.get("/healthz")).json()["sse_clients"] == 1  # the slow one
            print(f"fast client had the last update {waited:.2f} s after the last publication")
            # the slow client, reading at last, ends with the latest documents (coalesced, not lost)
            tail = await asyncio.to_thread(
                read_until, sock, b'"key":"S0999","doc":', b'"current_value":4.0', 30.0
            )
            assert tail
        finally:
            sock.close()


def read_until(sock: socket.socket, marker: bytes, then: bytes, within_s: float) -> bool:
    """Read the raw stream until an event holding ``marker`` followed by ``then`` arrives."""
    sock.settimeout(1.0)
    deadline = time.monotonic() + within_s
    buf = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            return False
        buf += chunk
        events = buf.split(b"\n\n")
        buf = events.pop()
        if any(marker in e and then in e for e in events):
            return True
    return False


# ---------------------------------------------------------------------------- access


async def test_signed_out_nothing_but_the_sign_in(topics: Settings, dashboards: list, tmp_path: Path) -> None:
    dash = start_dashboard(topics, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with httpx.AsyncClient(base_url=dash.url, timeout=10) as anon:
        for path in (
            "/api/me",
            "/api/overview",
            "/api/matrix",
            "/api/customers/c1",
            "/api/alerts",
            "/api/outages",
            "/api/reliability",
            "/api/areas",
            "/events",
        ):
            resp = await anon.get(path)
            assert resp.status_code == 401, path
        assert (await anon.post("/api/alerts/x/ack")).status_code == 401
        assert (await anon.post("/api/logout")).status_code == 401
        for page in (
            "/",
            "/matrix",
            "/customers/c1",
            "/alerts",
            "/outages",
            "/reliability",
            "/areas",
            "/docs",
        ):
            resp = await anon.get(page)
            # to the sign-in page, which goes back to the page asked for afterwards
            target = "/login?" + urlencode({"next": page})
            assert (resp.status_code, resp.headers.get("location")) == (303, target), page
        assert (await anon.get("/login")).status_code != 303
        bad = await anon.post("/api/login", json={"user": "li", "password": "wrong"})
        unknown = await anon.post("/api/login", json={"user": "nobody", "password": "wrong"})
        assert bad.status_code == unknown.status_code == 401
        assert bad.json() == unknown.json() == {"detail": "wrong user or password"}
        assert "gp_session" not in anon.cookies
        # a forged cookie is no session
        anon.cookies.set("gp_session", "bGk.9999999999.AAAA")
        assert (await anon.get("/api/me")).status_code == 401

    async with signed_in(dash.url, "li") as client:
        set_cookie = client.cookies.jar
        assert any(c.name == "gp_session" for c in set_cookie)
        assert (await client.get("/api/me")).json() == {"user": "li", "role": "manager", "manager_id": "M01"}
        assert (await client.get("/")).status_code != 303
        assert (await client.post("/api/logout")).status_code == 200
        assert (await client.get("/api/me")).status_code == 401


async def test_the_session_cookie_is_http_only_and_same_site_strict(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    dash = start_dashboard(topics, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with httpx.AsyncClient(base_url=dash.url, timeout=10) as anon:
        resp = await anon.post("/api/login", json={"user": "sup", "password": "pw-for-tests"})
        header = resp.headers["set-cookie"].lower()
        assert resp.json() == {"user": "sup", "role": "supervisor", "manager_id": None}
        for part in ("gp_session=", "httponly", "samesite=strict", "path=/", "max-age=43200"):
            assert part in header


def alert(aid: str, managers: list[str], ts: str, **kw: Any) -> dict[str, Any]:
    if aid.startswith("outage:"):
        doc = outage_alert_example().model_dump(mode="json")
        doc.update(alert_id=aid, manager_ids=managers, outage_id=aid.split(":")[1], ts=ts, **kw)
    else:
        doc = credit_alert_example().model_dump(mode="json")
        doc.update(alert_id=aid, manager_id=managers[0], customer_id=aid.split(":")[1], ts=ts, **kw)
    return doc


async def test_roles_and_acknowledgements_in_the_alert_store(
    alert_settings: Settings, dashboards: list, tmp_path: Path
) -> None:
    settings = alert_settings
    docs = [
        alert("credit:c1:overdue", ["M01"], at(0)),
        alert("credit:c2:overdue", ["M02"], at(1), severity="critical"),
        alert("outage:o1", ["M01", "M02"], at(2), severity="major"),
    ]
    conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        await migrate(conn)
        for d in docs:
            await upsert_alert(conn, d)
    finally:
        await conn.close()
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()

    async with (
        signed_in(dash.url, "li") as li,
        signed_in(dash.url, "view") as viewer,
        signed_in(dash.url, "sup") as sup,
    ):
        ids = lambda body: [a["alert_id"] for a in body["alerts"]]  # noqa: E731
        assert ids((await li.get("/api/alerts")).json()) == ["outage:o1", "credit:c1:overdue"]
        assert ids((await viewer.get("/api/alerts")).json()) == [
            "outage:o1",
            "credit:c2:overdue",
            "credit:c1:overdue",
        ]
        assert ids((await sup.get("/api/alerts", params={"severity": "critical"})).json()) == [
            "credit:c2:overdue"
        ]
        assert ids((await sup.get("/api/alerts", params={"kind": "outage"})).json()) == ["outage:o1"]
        assert ids((await sup.get("/api/alerts", params={"manager": "M02"})).json()) == [
            "outage:o1",
            "credit:c2:overdue",
        ]
        row = (await li.get("/api/alerts", params={"kind": "credit"})).json()["alerts"][0]
        assert row["manager_ids"] == ["M01"] and row["evidence"] == docs[0]["evidence"]
        assert row["ts"] == datetime.fromisoformat(docs[0]["ts"]).isoformat()
        assert row["acknowledged_at"] is None

        # a manager cannot ack another manager's alert, a viewer none, unknown is 404
        assert (await li.post("/api/alerts/credit:c2:overdue/ack")).status_code == 403
        assert (await viewer.post("/api/alerts/credit:c1:overdue/ack")).status_code == 403
        assert (await li.post("/api/alerts/credit:nobody:overdue/ack")).status_code == 404

        before = datetime.now(UTC)
        resp = await li.post("/api/alerts/credit:c1:overdue/ack")
        assert resp.json() == {"alert_id": "credit:c1:overdue", "acknowledged": True}
        again = await li.post("/api/alerts/credit:c1:overdue/ack")
        assert again.json() == {"alert_id": "credit:c1:overdue", "acknowledged": False}
        resp = await sup.post("/api/alerts/credit:c2:overdue/ack")
        assert resp.json() == {"alert_id": "credit:c2:overdue", "acknowledged": True}

        # the customer page lists the customer's alerts with their history
        await produce_docs(
            settings,
            contract.SCORES_CUSTOMER,
            "customer_id",
            [with_ts(population(1)[1][0], at(0), customer_id="c1")],
        )
        body = await wait_json(li, "/api/customers/c1", lambda b: bool(b["alerts"]), 20, "c1's page")
        assert [a["alert_id"] for a in body["alerts"]] == ["credit:c1:overdue"]
        assert body["alerts"][0]["acknowledged_by"] == "M01"
        assert [h["status"] for h in body["alerts"][0]["history"]] == ["open"]

    conn = await asyncpg.connect(settings.pg_dsn.get_secret_value())
    try:
        rows = {
            r["alert_id"]: r
            for r in await conn.fetch("SELECT alert_id, acknowledged_at, acknowledged_by FROM alerts")
        }
    finally:
        await conn.close()
    assert rows["credit:c1:overdue"]["acknowledged_by"] == "M01"
    assert rows["credit:c2:overdue"]["acknowledged_by"] == "sup"
    assert rows["outage:o1"]["acknowledged_at"] is None
    for aid in ("credit:c1:overdue", "credit:c2:overdue"):
        when = rows[aid]["acknowledged_at"]
        assert before - timedelta(seconds=5) <= when <= datetime.now(UTC) + timedelta(seconds=5)


async def test_postgresql_down_the_alerts_answer_503_and_the_rest_works(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    closed = free_port()
    settings = topics.model_copy(
        update={"pg_dsn": SecretStr(f"postgresql://gridpulse@127.0.0.1:{closed}/gridpulse")}
    )
    _, scores = population(3, seed=4)
    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", scores)
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with signed_in(dash.url, "li") as client:
        resp = await client.get("/api/alerts")
        assert resp.status_code == 503
        assert "alert store (PostgreSQL) unavailable" in resp.json()["detail"]
        assert (await client.post("/api/alerts/credit:c1:overdue/ack")).status_code == 503
        assert (await client.get("/api/overview")).json()["customers_scored"] == 3
        body = (await client.get(f"/api/customers/{scores[0]['customer_id']}")).json()
        assert body["scores"] == scores[0] and body["alerts"] == []
        assert "unavailable" in body["alerts_error"]


# ---------------------------------------------------------------------------- bad input, views


async def test_a_malformed_document_on_an_output_topic_is_skipped_and_counted(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    _, scores = population(4, seed=6)
    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    await produce(
        settings,
        contract.SCORES_CUSTOMER,
        [
            (b"c1", b"{not json"),
            (b"c2", js([1, 2, 3])),
            (b"c3", js({"ts": at(0)})),  # no customer_id
            *((s["customer_id"].encode(), js(s)) for s in scores),
        ],
    )
    await produce(settings, contract.ALERTS_CREDIT, [(b"a", js({"alert_id": "a", "kind": "credit"}))])
    async with signed_in(dash.url, "view") as client:
        overview = await wait_json(
            client,
            "/api/overview",
            lambda b: (
                b["customers_scored"] == 4 and b["data_health"]["malformed"].get(contract.ALERTS_CREDIT)
            ),
            20,
            "the good documents applied and the bad counted",
        )
        assert overview["data_health"]["malformed"] == {
            contract.SCORES_CUSTOMER: 3,
            contract.ALERTS_CREDIT: 1,
        }
        for path in ("/api/matrix", "/api/outages", "/api/reliability", "/api/areas"):
            assert (await client.get(path)).status_code == 200, path


async def test_outages_reliability_areas_and_data_health(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    settings = topics
    now = datetime.now(UTC)
    active = alert("outage:o1", ["M01"], (now - timedelta(minutes=30)).isoformat())
    active["affected"].append(
        {**active["affected"][0], "customer_id": "c2", "impact": "loss_of_redundancy", "est_kw": 10.0}
    )
    planned = alert(
        "outage:o2",
        ["M02"],
        (now - timedelta(hours=1)).isoformat(),
        planned=True,
        planned_start=(now + timedelta(days=1)).isoformat(),
    )
    restored = alert("outage:o3", ["M01"], (now - timedelta(days=1)).isoformat(), status="resolved")
    long_ago = alert("outage:o4", ["M01"], (now - timedelta(days=30)).isoformat(), status="resolved")
    await produce_docs(settings, contract.ALERTS_OUTAGE, "alert_id", [active, planned, restored, long_ago])
    feeders = [
        {
            "scope": "feeder",
            "scope_id": f"F{i}",
            "year": 2026,
            "customers_served": 10,
            "customer_interruptions": 1,
            "customer_minutes": 10.0 * i,
            "SAIFI": 0.1,
            "SAIDI": saidi,
            "CAIDI": 10.0,
            "momentary_interruptions": 0,
        }
        for i, saidi in enumerate([5.0, None, 30.0, 12.0])
    ]
    system = {**feeders[0], "scope": "system", "scope_id": "system", "SAIDI": 7.0}
    await produce_docs(settings, contract.RELIABILITY_INDICES, "scope_id", [*feeders, system])
    area_doc = {"transformer_area": "TA1", "ts": at(0), "day": {}, "d30": {"loss_rate": 0.12}, "daily": []}
    areas = [area_doc, {**area_doc, "transformer_area": "TA2", "d30": {"loss_rate": None}},
             {**area_doc, "transformer_area": "TA3", "d30": {"loss_rate": 0.3}}]  # fmt: skip
    await produce_docs(settings, contract.STATS_AREA, "transformer_area", areas)
    suspects = [{"customer_id": "c7", "score": 0.4}, {"customer_id": "c9", "score": 0.8}]
    area_alert = {
        "alert_id": "inspection:TA1:area_high_loss",
        "kind": "inspection",
        "scope": "transformer_area",
        "transformer_area": "TA1",
        "status": "open",
        "severity": "major",
        "ts": at(0),
        "suspects": suspects,
        "manager_ids": ["M01"],
    }
    await produce_docs(settings, contract.ALERTS_INSPECTION, "alert_id", [area_alert])
    # data health: two dead letters, and the worker group's committed offsets on meter.readings
    dead = {
        "raw": None,
        "key": None,
        "topic": "meter.readings",
        "partition": 0,
        "offset": 1,
        "error": "schema",
        "detail": "x",
        "ts": now.isoformat(),
    }
    await produce(settings, contract.dlq(contract.METER_READINGS), [(b"c1", js(dead)), (b"c2", js(dead))])
    await produce(settings, contract.dlq(contract.BILLING_EVENTS), [(b"c1", js({**dead, "error": "late"}))])
    readings = settings.topic(contract.METER_READINGS)
    await produce(settings, contract.METER_READINGS, [(b"c1", b"{}")] * 5)
    tp = await _partition_of(settings, readings, b"c1")
    group = make_consumer(settings, group_id=settings.app_id)
    await group.start()
    try:
        group.assign([tp])
        from aiokafka.structs import OffsetAndMetadata

        await group.commit({tp: OffsetAndMetadata(2, "")})
    finally:
        await group.stop()

    dash = start_dashboard(settings, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with signed_in(dash.url, "view") as client:
        out = await wait_json(client, "/api/outages", lambda b: len(b["active"]) == 1, 20, "the outages")
        assert [d["alert_id"] for d in out["active"]] == ["outage:o1"]
        assert [d["alert_id"] for d in out["planned"]] == ["outage:o2"]
        assert [d["alert_id"] for d in out["restored"]] == ["outage:o3"]
        assert out["active"][0]["totals"] == {
            "loss_of_supply": 1,
            "loss_of_redundancy": 1,
            "kw": 840.5,
            "cny_per_h": 1080.0,
        }
        assert [a["customer_id"] for a in out["active"][0]["affected"]] == ["c1", "c2"]
        rel = (await client.get("/api/reliability")).json()
        assert rel["system"]["SAIDI"] == 7.0
        assert [f["scope_id"] for f in rel["feeders"]] == ["F2", "F3", "F0", "F1"]
        ar = (await client.get("/api/areas")).json()["areas"]
        assert [a["transformer_area"] for a in ar] == ["TA3", "TA1", "TA2"]
        assert [s["customer_id"] for s in ar[1]["suspects"]] == ["c9", "c7"] and ar[0]["suspects"] == []
        overview = (await client.get("/api/overview")).json()
        assert overview["reliability_system"]["SAIDI"] == 7.0
        assert overview["alerts_open"]["by_kind"] == {"credit": 0, "outage": 2, "inspection": 1}
        health = overview["data_health"]
        assert health["dlq"] == [
            {"topic": "meter.readings", "error": "schema", "count_1h": 2},
            {"topic": "billing.events", "error": "late", "count_1h": 1},
        ]
        assert health["consumer_lag"] == [{"topic": "meter.readings", "partition": tp.partition, "lag": 3}]


async def _partition_of(settings: Settings, topic: str, key: bytes) -> TopicPartition:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()
        for p in sorted(consumer.partitions_for_topic(topic) or ()):
            tp = TopicPartition(topic, p)
            if (await consumer.end_offsets([tp]))[tp] > 0:
                return tp
    finally:
        await consumer.stop()
    raise AssertionError(f"no partition of {topic} holds {key!r}")


async def test_the_openapi_schema_lists_the_routes(
    topics: Settings, dashboards: list, tmp_path: Path
) -> None:
    dash = start_dashboard(topics, tmp_path, dashboards)
    await dash.wait_feed_ready()
    async with httpx.AsyncClient(base_url=dash.url, timeout=10) as anon:
        spec = (await anon.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, method in (
        ("/api/login", "post"),
        ("/api/logout", "post"),
        ("/api/me", "get"),
        ("/api/overview", "get"),
        ("/api/matrix", "get"),
        ("/api/customers/{customer_id}", "get"),
        ("/api/alerts", "get"),
        ("/api/alerts/{alert_id}/ack", "post"),
        ("/api/outages", "get"),
        ("/api/reliability", "get"),
        ("/api/areas", "get"),
        ("/events", "get"),
    ):
        assert method in paths.get(path, {}), (path, method)
    assert {p["name"] for p in paths["/api/alerts"]["get"]["parameters"]} >= {
        "kind",
        "severity",
        "status",
        "manager",
    }
    assert {p["name"] for p in paths["/events"]["get"]["parameters"]} == {"kinds", "customer"}


# ---------------------------------------------------------------------------- operations (issue 15)


async def test_metrics_and_readyz_during_a_run_and_503_while_postgresql_is_unreachable(
    topics: Settings, redis_settings: Settings, dashboards: list, tmp_path: Path
) -> None:
    """A scrape of /metrics against what was published (events in per topic, customers held,
    the feed's lag 0, SSE clients and events, request durations by route template, no customer
    in a label), /livez and /readyz without sign-in, and /readyz 503 while PostgreSQL is
    unreachable (the dashboard reaches the shared server through a relay the test cuts) and 200
    again."""
    dsn = urlparse(topics.pg_dsn.get_secret_value())
    relay = TcpRelay(dsn.hostname or "127.0.0.1", dsn.port or 5432)
    await relay.open()
    relayed = dsn._replace(netloc=dsn.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.port}").geturl()
    settings = topics.model_copy(update={"pg_dsn": SecretStr(relayed)})
    stats, scores = population(20, seed=11)
    await produce_docs(settings, contract.STATS_CUSTOMER, "customer_id", stats)
    await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", scores)
    ids = {s["customer_id"] for s in scores}
    dash = start_dashboard(settings, tmp_path, dashboards)
    try:
        await dash.wait_feed_ready()

        async def ready_is(status: int) -> bool:
            return (await probe(dash.url, "/readyz"))[0] == status

        await eventually(lambda: ready_is(200), 30, "/readyz 200 once the feed has caught up")
        _, body = await probe(dash.url, "/readyz")
        assert body["service"] == "dashboard" and set(body["checks"]) == {
            "feed",
            "redis",
            "postgres",
            "kafka",
        }
        assert (await probe(dash.url, "/livez"))[0] == 200

        async with (
            signed_in(dash.url, "view") as client,
            client.stream("GET", "/events", params={"kinds": "scores"}) as resp,
        ):
            events = sse_events(resp)
            assert (await asyncio.wait_for(anext(events), 10))[0] == "subscribed"
            for cid in sorted(ids)[:3]:
                assert (await client.get(f"/api/customers/{cid}")).status_code == 200
            _, before = await scrape(dash.url)
            assert value(before, "gridpulse_dashboard_sse_clients") == 1
            newer = with_ts(scores[0], at(5), current_value=1.5)
            await produce_docs(settings, contract.SCORES_CUSTOMER, "customer_id", [newer])

            async def until_update() -> None:
                async for name, data in events:
                    if name == "update" and data["key"] == newer["customer_id"]:
                        return

            await asyncio.wait_for(until_update(), 20)
            text, after = await scrape(dash.url)

        stats_topic, scores_topic = (
            settings.topic(contract.STATS_CUSTOMER),
            settings.topic(contract.SCORES_CUSTOMER),
        )
        assert value(after, "gridpulse_events_in_total", topic=stats_topic) == len(stats)
        assert value(after, "gridpulse_events_in_total", topic=scores_topic) == len(scores) + 1
        assert value(after, "gridpulse_dashboard_customers") == len(ids)
        assert value(after, "gridpulse_dashboard_documents", kind="scores") == len(scores)
        assert (
            value(after, "gridpulse_dashboard_sse_events_sent_total")
            >= value(before, "gridpulse_dashboard_sse_events_sent_total") + 1
        )
        lags = series(after, "gridpulse_consumer_lag_records", consumer_group="dashboard")
        assert {dict(labels)["topic"] for labels in lags} >= {stats_topic, scores_topic}
        assert not any(lags.values())
        route = "/api/customers/{customer_id}"
        assert value(after, "gridpulse_dashboard_http_request_seconds_count", route=route) == 3
        forbidden = ids | {str(p.get("name")) for p in simulated_stats(20, seed=11)[1] if p.get("name")}
        assert lint_exposition(text, forbidden_values=forbidden) == []
        assert value(after, "gridpulse_dependency_up", dependency="postgres") == 1
        assert value(after, "gridpulse_dependency_up", dependency="redis") == 1

        await relay.close()
        await eventually(lambda: ready_is(503), 20, "/readyz 503 while PostgreSQL is unreachable")
        _, body = await probe(dash.url, "/readyz")
        checks = body["checks"]
        assert checks["postgres"]["ok"] is False
        assert checks["feed"]["ok"] and checks["redis"]["ok"] and checks["kafka"]["ok"], checks
        _, during = await scrape(dash.url)
        assert value(during, "gridpulse_dependency_up", dependency="postgres") == 0
        assert (await probe(dash.url, "/livez"))[0] == 200
        await relay.open()
        await eventually(lambda: ready_is(200), 20, "/readyz 200 again once PostgreSQL is reachable")
    finally:
        await relay.close()
