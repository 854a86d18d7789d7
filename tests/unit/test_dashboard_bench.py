"""bench/dashboard_bench.py's pure helpers: percentiles and the delay summary, the RFC 3339 time
stamps and their reading back from an SSE event, the SSE parser over the hub's real encoding,
and the documents the bench publishes (valid by the contract's models, consistent with the
scored population)."""

from __future__ import annotations

import math
import random
from datetime import datetime

import numpy as np
import orjson
import pytest

from bench.dashboard_bench import (
    SseParser,
    delay_summary,
    event_ts,
    percentile,
    population,
    rfc3339_us,
    socket_queues,
    stats_documents,
    ts_epoch,
    update_of,
)
from bench.scoring_bench import simulate
from dashboard.hub import PING, RESET, overview_event, update_event
from schemas.models import ScoresCustomer, StatsCustomer
from scoring import Population


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100) == 4.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    rnd = random.Random(3)
    values = [rnd.expovariate(5.0) for _ in range(1001)]
    for q in (1, 50, 95, 99, 99.9):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)
    with pytest.raises(ValueError):
        percentile(values, 101)


def test_delay_summary_in_milliseconds() -> None:
    delays = [i / 1000.0 for i in range(1, 101)]  # 1..100 ms
    s = delay_summary(delays)
    assert s["n"] == 100
    assert s["p50_ms"] == 50.5
    assert s["p99_ms"] == 99.0
    assert s["max_ms"] == 100.0
    assert s["min_ms"] == 1.0
    assert delay_summary([])["p99_ms"] is None


def test_rfc3339_with_microseconds_reads_back() -> None:
    t = 1796168440.135355
    text = rfc3339_us(t)
    assert text.endswith("+00:00")
    assert len(text.split(".")[1]) == len("135355+00:00")
    assert datetime.fromisoformat(text).timestamp() == pytest.approx(t, abs=1e-6)
    assert ts_epoch("2026-10-31T23:45:00+08:00") == ts_epoch("2026-10-31T15:45:00+00:00")
    with pytest.raises(ValueError):
        ts_epoch("2026-10-31T23:45:00")


def test_event_ts_reads_the_documents_ts_from_the_hubs_event() -> None:
    _, scores = population(20)
    raw = update_of(scores[3], 1796168440.25)
    data = update_event("scores", scores[3]["customer_id"], raw).split(b"data: ", 1)[1].rstrip(b"\n")
    assert event_ts(data) == pytest.approx(1796168440.25, abs=1e-6)
    # a key that looks like a ts is escaped by the encoder: the document's ts is read
    tricky = update_event("scores", 'k"ts":"2000-01-01T00:00:00+00:00', raw).split(b"data: ", 1)[1]
    assert event_ts(tricky.rstrip(b"\n")) == pytest.approx(1796168440.25, abs=1e-6)
    assert event_ts(update_event("scores", "c1", None).split(b"data: ", 1)[1]) is None  # removed
    assert event_ts(b'{"kind":"scores","key":"c1","doc":{"customer_id":"c1"}}') is None
    assert event_ts(b'{"kind":"scores","key":"c1","doc":{"ts":"yesterday"}}') is None


def test_sse_parser_across_any_chunk_boundaries() -> None:
    stream = (
        b"retry: 3000\n\n"
        + update_event("scores", "c1", b'{"customer_id":"c1","ts":"2026-12-01T00:00:00+00:00"}')
        + PING
        + RESET
        + overview_event(b'{"customers_scored":2}')
        + b"event: update\ndata: line one\ndata: line two\n\n"
        + update_event("scores", "c2", None)
    )
    expected = [
        (
            "update",
            b'{"kind":"scores","key":"c1","doc":{"customer_id":"c1","ts":"2026-12-01T00:00:00+00:00"}}',
        ),
        ("reset", b"{}"),
        ("overview", b'{"customers_scored":2}'),
        ("update", b"line one\nline two"),
        ("update", b'{"kind":"scores","key":"c2","doc":null}'),
    ]
    assert SseParser().feed(stream) == expected
    for cut in range(1, len(stream)):
        p = SseParser()
        assert p.feed(stream[:cut]) + p.feed(stream[cut:]) == expected, cut
    p = SseParser()
    assert [e for i in range(len(stream)) for e in p.feed(stream[i : i + 1])] == expected
    assert p.feed(b"event: update\ndata: half") == []  # incomplete: kept for the next chunk


def test_stats_documents_are_valid_and_carry_the_scored_figures() -> None:
    pop = simulate(400, 5)
    docs = stats_documents(pop)
    assert [d["customer_id"] for d in docs] == pop.customer_id
    for d in docs:
        StatsCustomer.model_validate(d)
        assert len(d["consumption"]) == 26
    back = Population.from_docs(docs)
    finite = np.isfinite(pop.d30_kwh)
    assert not finite.all()  # the population has customers without a d30 kWh: 0 kWh in stats
    assert np.array_equal(back.d30_kwh[finite], pop.d30_kwh[finite])
    assert (back.d30_kwh[~finite] == 0).all()
    for name in ("paid_36m", "due_36m", "late_fee_amount_36m", "theft_12m", "late_fees_12m", "reversals_12m"):
        assert np.array_equal(getattr(back, name), getattr(pop, name)), name
    assert np.array_equal(back.yoy_growth_rate, pop.yoy_growth_rate, equal_nan=True)
    has_load = finite & (pop.d30_kwh > 0)
    assert np.array_equal(back.load_factor[has_load], pop.load_factor[has_load], equal_nan=True)
    assert np.isnan(back.load_factor[~has_load]).all()
    curves = [(d["hourly_kw"], d["d30"]["avg_kw"]) for d in docs if d["hourly_kw"] is not None]
    assert curves
    for hourly, avg_kw in curves:  # the hour-of-day curve averages to the d30 load
        assert math.isclose(sum(hourly) / 24, avg_kw, rel_tol=1e-9)


def test_population_scores_are_the_published_documents() -> None:
    stats, scores = population(300)
    assert [s["customer_id"] for s in scores] == [d["customer_id"] for d in stats]
    origins = {orjson.dumps(s["value_origin"]) for s in scores}
    assert len(origins) == 1  # one pass: one origin
    for s in scores:
        ScoresCustomer.model_validate(s)
    quadrants = {s["quadrant"] for s in scores}
    assert quadrants == {"vip", "improvement", "maintenance", "abandon"}


def test_update_of_changes_only_ts() -> None:
    _, scores = population(10)
    doc = orjson.loads(update_of(scores[0], 1796168440.5))
    assert doc.pop("ts") == rfc3339_us(1796168440.5)
    assert doc == {k: v for k, v in scores[0].items() if k != "ts"}
    assert list(orjson.loads(update_of(scores[0], 0.0))) == list(scores[0])  # key order kept


def test_socket_queues_sums_each_side_of_the_dashboards_connections() -> None:
    ss = "\n".join(
        [
            "0      0      127.0.0.1:56960   127.0.0.1:9092",  # Kafka: not ours
            "65536  0      127.0.0.1:40001   127.0.0.1:8123",  # a client's unread bytes
            "1000   0      127.0.0.1:40002   127.0.0.1:8123",
            "0      200000 127.0.0.1:8123    127.0.0.1:40001",  # the server's unsent bytes
            "7      9      127.0.0.1:8123    127.0.0.1:40002",
            "Recv-Q Send-Q Local Peer",
            "",
        ]
    )
    assert socket_queues(ss, 8123) == {"client_recv_q": 66536, "server_send_q": 200009}
    assert socket_queues(ss, 9092) == {"client_recv_q": 0, "server_send_q": 0}
