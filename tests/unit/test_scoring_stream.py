"""The scoring stage's decisions, without a broker: what the view keeps, how customers are
rescored against a kept state, and which scores are published again."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from schemas.models import CustomerProfile, ScoresCustomer
from scoring import ModelConfig, run_population, score_one
from streams.agents.scoring import (
    PopulationView,
    changed_scores,
    pass_due,
    score_against,
    total_value,
    trim_stats,
    value_matrix_entry,
)
from streams.ownership import partition_of
from tests.scoring_samples import full_doc, simulated_stats


@pytest.fixture(scope="module")
def population() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs, profiles = simulated_stats(300, seed=3)
    return [full_doc(d) for d in docs], profiles


def view_of(docs: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> PopulationView:
    view = PopulationView()
    for d in reversed(docs):  # arrival order does not matter: the snapshot is sorted
        assert view.apply_stats_message(orjson.dumps(d))
    for p in profiles:
        full = CustomerProfile.model_validate(p).model_dump_json().encode()
        assert view.apply_profile_message(p["customer_id"].encode(), full)
    return view


def test_trimmed_view_scores_exactly_like_whole_documents(population) -> None:
    docs, profiles = population
    expected = run_population(sorted(docs, key=lambda d: d["customer_id"]), profiles)
    snap_docs, snap_profiles = view_of(docs, profiles).snapshot()
    got = run_population(snap_docs, snap_profiles)
    assert got.documents == expected.documents
    assert got.state == expected.state
    assert len(orjson.dumps(trim_stats(docs[0]))) < 500  # compact: no gaps, windows, months


def test_batch_rescoring_equals_score_one(population) -> None:
    docs, profiles = population
    config = ModelConfig()
    state = run_population(docs[:200], profiles, config).state
    by_id = {p["customer_id"]: p for p in profiles}
    newcomers = docs[200:]
    batch = score_against(
        newcomers, {d["customer_id"]: by_id.get(d["customer_id"]) for d in newcomers}, state, config
    )
    assert batch == [score_one(d, by_id.get(d["customer_id"]), state, config) for d in newcomers]
    for s in batch:
        ScoresCustomer.model_validate(s)


def test_pass_member_rescored_against_its_own_pass_is_unchanged(population) -> None:
    docs, profiles = population
    run = run_population(docs, profiles)
    published: dict[str, bytes] = {}
    assert len(changed_scores(run.documents, published)) == len(docs)
    # the hook rescoring every customer with unchanged stats publishes nothing
    by_id = {p["customer_id"]: p for p in profiles}
    again = score_against(
        docs, {d["customer_id"]: by_id.get(d["customer_id"]) for d in docs}, run.state, run.config
    )
    assert changed_scores(again, published) == []


def test_only_changed_scores_are_republished_after_a_pass(population) -> None:
    docs, profiles = population
    published: dict[str, bytes] = {}
    changed_scores(run_population(docs, profiles).documents, published)
    # a slight change of one customer's consumption moves its raw indicator, not its score:
    # nothing is republished (the raw indicators ride along, they do not decide)
    moved = copy.deepcopy(docs)
    moved[0]["d30"]["kwh"] *= 1.0001
    before = {cid: d for cid, d in published.items()}
    assert changed_scores(run_population(moved, profiles).documents, published) == []
    assert published == before
    # the smallest consumer becomes ten times the largest: its score changes, and the
    # breakpoints move for some others too
    kwh = [d["d30"]["kwh"] or 0.0 for d in docs]
    small = min(range(len(docs)), key=kwh.__getitem__)
    moved[small]["d30"]["kwh"] = max(kwh) * 10
    second = run_population(moved, profiles).documents
    out = changed_scores(second, published)
    assert 0 < len(out) < len(docs)
    ids = {s["customer_id"] for s in out}
    assert docs[small]["customer_id"] in ids
    for s in second:
        changed = published[s["customer_id"]] != before[s["customer_id"]]
        assert changed == (s["customer_id"] in ids)
    assert changed_scores(second, published) == []  # the same pass twice: nothing


def test_view_keeps_hook_entries_against_older_topic_records() -> None:
    docs, _ = simulated_stats(2, seed=1)
    older = full_doc(docs[0], as_of="2026-11-01T00:00:00+08:00")
    newer = full_doc(docs[0], as_of="2026-11-01T00:05:00+08:00")
    newer["d30"]["kwh"] = 999.0
    view = PopulationView()
    view.put_own(newer)
    assert not view.apply_stats_message(orjson.dumps(older))  # the reader lags behind the hook
    assert view.stats(docs[0]["customer_id"])["d30"]["kwh"] == 999.0  # type: ignore[index]
    assert view.apply_stats_message(orjson.dumps(newer))  # caught up: the topic's entry again
    later = full_doc(docs[0], as_of="2026-11-01T00:10:00+08:00")
    later["d30"]["kwh"] = 5.0
    assert view.apply_stats_message(orjson.dumps(later))
    assert view.stats(docs[0]["customer_id"])["d30"]["kwh"] == 5.0  # type: ignore[index]


def test_view_profiles_follow_the_customers_agent_rules() -> None:
    view = PopulationView()
    good = CustomerProfile(customer_id="c1", voltage_kv=10.0, feeders=["f1", "f2"]).model_dump_json().encode()
    assert view.apply_profile_message(b"c1", good)
    assert not view.apply_profile_message(b"c2", good)  # key mismatch
    assert not view.apply_profile_message(b"c1", b"{not json")  # the previous profile stays
    assert view.profile("c1") == {
        "customer_id": "c1",
        "voltage_kv": 10.0,
        "feeders": ["f1", "f2"],
        "emergency_generator": False,
    }
    assert view.apply_profile_message(b"c1", None)  # tombstone
    assert view.profile("c1") is None


def test_redis_entries_and_partitioning() -> None:
    score = {"customer_id": "c1", "current_value": 2.5, "potential_value": 1.25, "quadrant": "vip"}
    assert total_value(score) == 3.75
    assert orjson.loads(value_matrix_entry(score)) == [2.5, 1.25, "vip"]
    # Kafka's default partitioner (murmur2), the same as the producers of the input topics
    from aiokafka.partitioner import DefaultPartitioner

    parts = list(range(4))
    for cid in ("c1", "C00042", "客户-7"):
        assert partition_of(cid, 4) == DefaultPartitioner()(cid.encode(), parts, parts)


# ---------------------------------------------------------------------- when passes run

PASS = {"interval_s": 300.0, "growth": 0.5, "min_gap_s": 2.0}


def test_no_pass_on_an_empty_view() -> None:
    # a worker started before any data: nothing to rank, and nothing to wait an interval for
    assert not pass_due(view_size=0, last_size=0, has_state=False, since_last_s=None, **PASS)
    assert not pass_due(view_size=0, last_size=0, has_state=False, since_last_s=1e9, **PASS)


def test_first_pass_as_soon_as_the_view_holds_customers() -> None:
    assert pass_due(view_size=1, last_size=0, has_state=False, since_last_s=None, **PASS)
    # after a failed first attempt: again once the gap has passed, not after the interval
    assert not pass_due(view_size=60, last_size=0, has_state=False, since_last_s=1.9, **PASS)
    assert pass_due(view_size=60, last_size=0, has_state=False, since_last_s=2.0, **PASS)


def test_a_grown_population_is_ranked_again_before_the_interval() -> None:
    kw = {"last_size": 60, "has_state": True, **PASS}
    assert not pass_due(view_size=90, since_last_s=10.0, **kw)  # grown by exactly half: not more
    assert pass_due(view_size=91, since_last_s=10.0, **kw)
    assert not pass_due(view_size=10_000, since_last_s=1.0, **kw)  # within the gap: coalesce
    assert pass_due(view_size=10_000, since_last_s=2.0, **kw)


def test_a_stable_population_is_ranked_every_interval() -> None:
    kw = {"view_size": 1000, "last_size": 1000, "has_state": True, **PASS}
    assert not pass_due(since_last_s=299.0, **kw)
    assert pass_due(since_last_s=300.0, **kw)
    # a population that shrank (tombstoned profiles do not shrink it; a stats view never does)
    assert not pass_due(view_size=500, last_size=1000, has_state=True, since_last_s=10.0, **PASS)
