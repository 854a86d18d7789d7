"""The worker's profile cache holds ProfileFacts (streams.runtime), not CustomerProfile objects:
what the agents read of a profile, with repeated values shared. Its terms give the same
statistics documents and scores as the pydantic profile, and it costs a fraction of its memory
(the sizes of the objects each holds)."""

from __future__ import annotations

import gc
import sys
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import schemas.shared
from alerts.outage_impact import CustomerNode
from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import stats_document
from schemas.models import CustomerProfile, MeterReading
from schemas.shared import shared
from scoring.config import ModelConfig
from scoring.model import run_population
from streams.agents.outages import OutageView
from streams.agents.scoring import PopulationView, score_against, trim_profile
from streams.runtime import ProfileFacts
from tests.samples import PROFILE, reading
from tests.scoring_samples import simulated_stats

TZ = ZoneInfo("Asia/Shanghai")


def profiles(n: int) -> list[CustomerProfile]:
    """n customers' profiles as the simulator's population has them: a few tariff classes,
    voltages, tariffs and managers, distinct contracts, one or two feeders out of many."""
    classes = ("large_industrial", "general_industrial", "commercial", "residential", "agricultural")
    return [
        CustomerProfile.model_validate(
            PROFILE
            | {
                "customer_id": f"C{i:07d}",
                "name": f"Customer {i}",
                "tariff_class": classes[i % len(classes)],
                "contract_kva": float(100 + i),
                "voltage_kv": (0.38, 10.0, 35.0)[i % 3],
                "feeders": [f"F{i % 500:03d}", f"F{(i + 7) % 500:03d}"][: 1 + i % 2],
                "manager_id": f"mgr{i % 40}",
                "tariff_cny_per_kwh": (0.55, 0.65, 0.8)[i % 3],
            }
        )
        for i in range(n)
    ]


def test_the_facts_are_the_profile_s_fields() -> None:
    p = CustomerProfile.model_validate(PROFILE)
    f = ProfileFacts.of(p)
    for name in (
        "tariff_class",
        "contract_kva",
        "voltage_kv",
        "pf_standard",
        "tariff_cny_per_kwh",
        "manager_id",
    ):
        assert getattr(f, name) == getattr(p, name)
        assert type(getattr(f, name)) is type(getattr(p, name))
    assert f.feeders == ("F101", "F202") and f.emergency_generator is True
    assert f.scoring_terms("c1") == trim_profile(p)
    assert not hasattr(f, "name") and "Customer" not in repr(f)  # the name is not kept
    assert ProfileFacts.of(CustomerProfile(customer_id="c2")).feeders == ()


def test_equal_values_are_one_object_and_distinct_ones_stay_apart() -> None:
    # two customers' profiles decoded apart: equal values are distinct objects in them
    p1, p2 = (CustomerProfile.model_validate_json(p.model_dump_json()) for p in profiles(16)[::15])
    assert p1.voltage_kv == p2.voltage_kv and p1.voltage_kv is not p2.voltage_kv
    a, b = ProfileFacts.of(p1), ProfileFacts.of(p2)
    assert a.voltage_kv is b.voltage_kv and a.tariff_cny_per_kwh is b.tariff_cny_per_kwh
    assert a.tariff_class is b.tariff_class and a.contract_kva != b.contract_kva
    assert shared(10) == 10 and type(shared(10)) is int
    assert type(shared(10.0)) is float  # 10 and 10.0 are equal, and stay apart
    assert str(shared(-0.0)) == "-0.0" and str(shared(0.0)) == "0.0"
    assert shared(True) is True and shared(None) is None


def test_the_shared_values_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(schemas.shared, "_floats", {})
    monkeypatch.setattr(schemas.shared, "SHARED_VALUES_KEPT", 3)
    values = [float(1000 + i) for i in range(10)]
    assert [shared(v) for v in values] == values
    assert len(schemas.shared._floats) == 3


def test_the_statistics_document_is_the_same_with_the_facts() -> None:
    now = datetime(2026, 3, 10, 4, 0, tzinfo=UTC)
    state = LoadState(tz=TZ, lateness_s=3600)
    ends = [datetime(2026, 3, 9, 1, 15 * k, tzinfo=UTC) for k in range(1, 4)]
    state.apply([MeterReading.model_validate(reading("c1", end, 2.0)) for end in ends])
    ledger = ArrearsLedger(tz=TZ)
    for changes in ({}, {"pf_standard": 0.85}, {"tariff_class": "residential", "contract_kva": None}):
        p = CustomerProfile.model_validate(PROFILE | changes)
        want = stats_document("c1", state, ledger, p, now, TZ, 90)
        assert want is not None and want["profile_known"] is True
        assert stats_document("c1", state, ledger, ProfileFacts.of(p), now, TZ, 90) == want


def test_scores_are_the_same_with_the_facts() -> None:
    docs, profile_docs = simulated_stats(400, seed=5)
    pydantic = {p["customer_id"]: CustomerProfile.model_validate(p) for p in profile_docs}
    state = run_population(docs, [trim_profile(p) for p in pydantic.values()]).state
    with_trimmed = {cid: trim_profile(p) for cid, p in pydantic.items()}
    with_facts = {cid: ProfileFacts.of(p).scoring_terms(cid) for cid, p in pydantic.items()}
    config = ModelConfig()
    assert score_against(docs, with_facts, state, config) == score_against(docs, with_trimmed, state, config)


def held_per_item(items: list[Any]) -> float:
    """Bytes of every distinct object the items reach (an object shared by several counts
    once), per item; classes and their machinery are not counted."""
    seen: set[int] = set()
    total = 0
    todo = list(items)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, type) or obj is None or type(obj) is bool:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        todo.extend(gc.get_referents(obj))
    return total / len(items)


def test_the_facts_hold_a_fraction_of_a_profile() -> None:
    n = 5000
    raw = [p.model_dump_json() for p in profiles(n)]
    # what the cache held before: the decoded profile, read back from the table's JSON
    decoded = [CustomerProfile.model_validate_json(r) for r in raw]
    pydantic = held_per_item(decoded)
    # now: the facts, with a contract capacity of its own per customer
    facts = held_per_item([ProfileFacts.of(p) for p in decoded])
    assert pydantic > 1000, pydantic
    assert facts < 150, facts


def test_the_views_share_the_repeated_values() -> None:
    """scoring's population view and the outage view keep the same terms as before, with
    one feeder set (216 B as a frozenset) or scoring tuple for all customers that have it."""
    ps = [CustomerProfile.model_validate_json(p.model_dump_json()) for p in profiles(5000)]
    view = PopulationView()
    for p in ps:
        assert view.apply_profile_message(p.customer_id.encode(), p.model_dump_json().encode())
    for p in ps:
        assert view.profile(p.customer_id) == trim_profile(p)
    nodes = [CustomerNode.from_profile(p) for p in ps]
    for p, node in zip(ps, nodes, strict=True):
        assert node.feeders == frozenset(p.feeders) and node.manager_id == p.manager_id
        assert node.tariff_cny_per_kwh == p.tariff_cny_per_kwh and node.importance == p.importance
    assert len({id(n.feeders) for n in nodes}) == len({n.feeders for n in nodes}) < 1000
    # each customer's node as it was before: a frozenset of its own
    unshared = [replace(n, feeders=frozenset(p.feeders)) for p, n in zip(ps, nodes, strict=True)]
    assert held_per_item(unshared) - held_per_item(nodes) > 150
    assert held_per_item(list(view._profiles.values())) < 80
    # a zero voltage is kept as it came (0.0 and -0.0 are equal)
    for v in (0.0, -0.0):
        p = CustomerProfile(customer_id="z", voltage_kv=v)
        view.apply_profile_message(b"z", p.model_dump_json().encode())
        assert str(view.profile("z")["voltage_kv"]) == str(v)  # type: ignore[index]


def test_the_views_key_their_customers_by_one_string() -> None:
    """Each view decodes the customer id from its own message: the keys are one object."""
    p = CustomerProfile.model_validate(PROFILE | {"customer_id": "C-shared-1"})
    doc = {"customer_id": "".join(["C-shared-", "1"]), "d30": {"avg_kw": 2.0}}
    scoring = PopulationView()
    scoring.apply_profile_message(b"C-shared-1", p.model_dump_json().encode())
    scoring.put_own(doc)
    outage = OutageView("c", "s", "o")
    outage.apply_profile_message(b"C-shared-1", p.model_dump_json().encode())
    outage.put_own(dict(doc, customer_id="".join(["C-shared-", "1"])))
    keys = [
        *scoring._profiles,
        *scoring._stats,
        *outage.topology.customers,
        *outage.est_kw,
        *outage.topology.on_feeder("F101"),
    ]
    assert len(keys) == 5 and all(k is keys[0] for k in keys)
