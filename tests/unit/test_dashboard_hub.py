"""dashboard.hub: per-client coalescing queues (latest per key, bound -> reset), filtering, and a
client that does not read never holding up the others or the publisher."""

from __future__ import annotations

import asyncio

import orjson

from dashboard.hub import RESET, ClientQueue, Hub, Subscription, update_event


def data_of(event: bytes) -> dict:
    lines = event.decode().split("\n")
    assert lines[0] == "event: update"
    return orjson.loads(lines[1].removeprefix("data: "))


def test_the_queue_keeps_only_the_latest_event_per_key_in_first_change_order() -> None:
    q = ClientQueue(bound=10)
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":1}'))
    q.put("scores", "c2", update_event("scores", "c2", b'{"v":1}'))
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":2}'))
    q.put("stats", "c1", update_event("stats", "c1", b'{"v":3}'))
    events = q.take()
    assert [(d["kind"], d["key"], d["doc"]["v"]) for d in map(data_of, events)] == [
        ("scores", "c1", 2),
        ("scores", "c2", 1),
        ("stats", "c1", 3),
    ]
    assert q.coalesced == 1 and len(q) == 0 and q.take() == []


def test_beyond_the_bound_the_client_gets_a_reset_and_then_new_changes_only() -> None:
    q = ClientQueue(bound=3)
    for i in range(3):
        q.put("scores", f"c{i}", update_event("scores", f"c{i}", b"{}"))
    q.put("scores", "c1", update_event("scores", "c1", b'{"v":9}'))  # an existing key: still fits
    assert len(q) == 3 and not q.reset
    q.put("scores", "c3", update_event("scores", "c3", b"{}"))  # the 4th key
    assert q.reset and len(q) == 0 and q.resets == 1
    q.put("scores", "c4", update_event("scores", "c4", b"{}"))  # covered by the refetch
    assert q.take() == [RESET]
    q.put("scores", "c5", update_event("scores", "c5", b"{}"))
    assert [data_of(e)["key"] for e in q.take()] == ["c5"]


def test_an_update_event_is_one_sse_message_with_kind_key_and_doc() -> None:
    event = update_event("alert", 'a"1', b'{"x":[1,2]}')
    assert event.endswith(b"\n\n") and event.count(b"\n") == 3
    assert data_of(event) == {"kind": "alert", "key": 'a"1', "doc": {"x": [1, 2]}}
    assert data_of(update_event("scores", "c1", None))["doc"] is None


def test_subscriptions_filter_by_kind_and_customer() -> None:
    hub = Hub(bound=100)
    everything = hub.subscribe(Subscription(frozenset({"stats", "scores", "alert", "reliability", "area"})))
    one = hub.subscribe(Subscription(frozenset({"scores", "alert", "reliability"}), customer="c1"))
    hub.publish("scores", "c1", b"{}", "c1")
    hub.publish("scores", "c2", b"{}", "c2")
    hub.publish("stats", "c1", b"{}", "c1")
    hub.publish("alert", "credit:c1:overdue", b"{}", "c1")
    hub.publish("alert", "outage:o1", b"{}", None)
    hub.publish("reliability", "system", b"{}", None)
    assert len(everything) == 6
    assert [(d["kind"], d["key"]) for d in map(data_of, one.take())] == [
        ("scores", "c1"),
        ("alert", "credit:c1:overdue"),
        ("reliability", "system"),
    ]
    hub.publish_overview(b'{"customers_scored":1}')
    assert len(everything) == 6  # did not ask for overview


async def test_a_client_that_never_reads_does_not_hold_up_the_publisher_or_a_reading_client() -> None:
    hub = Hub(bound=1000)
    slow = hub.subscribe(Subscription(frozenset({"scores"})))
    fast = hub.subscribe(Subscription(frozenset({"scores"})))
    latest: dict[str, int] = {}

    async def read_fast() -> None:
        async for chunk in hub.stream(fast):
            for part in chunk.split(b"\n\n"):
                if part.startswith(b"event: update"):
                    d = data_of(part + b"\n\n")
                    latest[d["key"]] = d["doc"]["n"]
            if latest.get("c199") == 9999:
                return

    reader = asyncio.create_task(read_fast())
    for n in range(10_000):
        hub.publish("scores", f"c{n % 200}", orjson.dumps({"n": n}), f"c{n % 200}")
        if n % 100 == 0:
            await asyncio.sleep(0)  # the reader gets a turn now and then
    await asyncio.wait_for(reader, 5.0)
    # the reader ends with every key's latest document
    assert latest == {f"c{k}": 9800 + k for k in range(200)}
    # the slow client holds one event per key, the latest, not 10,000
    assert len(slow) == 200 and not slow.reset
    assert data_of(slow.pending[("scores", "c7")])["doc"]["n"] == 9807
    # the reader's stream ended: it is unsubscribed; the slow one stays until it disconnects
    assert fast not in hub.clients and slow in hub.clients


async def test_a_stream_sends_pings_when_idle_and_unsubscribes_when_cancelled(monkeypatch) -> None:
    import dashboard.hub as hub_module

    monkeypatch.setattr(hub_module, "PING_S", 0.05)
    hub = Hub(bound=10)
    q = hub.subscribe(Subscription(frozenset({"scores"})))
    chunks: list[bytes] = []

    async def read() -> None:
        async for chunk in hub.stream(q, [b"event: overview\ndata: {}\n\n"]):
            chunks.append(chunk)

    task = asyncio.create_task(read())
    await asyncio.sleep(0.2)
    assert chunks[0].startswith(b"retry:") and chunks[1].startswith(b"event: overview")
    assert b": ping\n\n" in chunks
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert q not in hub.clients
