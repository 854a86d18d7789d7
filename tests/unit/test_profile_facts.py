"""The worker's profile cache holds ProfileFacts (streams.runtime), not CustomerProfile objects:
what the agents read of a profile, with repeated values shared. Its terms give the same
statistics documents and scores as the pydantic profile, and it costs a fraction of its memory
(the sizes of the objects each holds)."""

from __future__ import annotations

import gc
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from metering.arrears import ArrearsLedger
from metering.load import LoadState
from metering.stats import stats_document
from schemas.models import CustomerProfile, MeterReading
from scoring.config import ModelConfig
from scoring.model import run_population
from streams import runtime
from streams.agents.scoring import score_against, trim_profile
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
    assert runtime._shared(10) == 10 and type(runtime._shared(10)) is int
    assert type(runtime._shared(10.0)) is float  # 10 and 10.0 are equal, and stay apart
    assert str(runtime._shared(-0.0)) == "-0.0" and str(runtime._shared(0.0)) == "0.0"
    assert runtime._shared(True) is True and runtime._shared(None) is None


def test_the_shared_values_are_bounded(monkeypatch: Any) -> None:
    monkeypatch.setattr(runtime, "_shared_floats", {})
    monkeypatch.setattr(runtime, "SHARED_VALUES_KEPT", 3)
    values = [float(1000 + i) for i in range(10)]
    assert [runtime._shared(v) for v in values] == values
    assert len(runtime._shared_floats) == 3


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
