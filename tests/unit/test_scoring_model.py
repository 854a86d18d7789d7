"""End to end: simulated stats.customer documents -> scores.customer messages."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from schemas.models import CustomerProfile, ScoresCustomer, StatsCustomer
from scoring import (
    INDICATORS,
    ModelConfig,
    PopulationState,
    explain_one,
    run_population,
    score_one,
    score_population,
)
from tests.scoring_samples import simulated_stats


@pytest.fixture(scope="module")
def population() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return simulated_stats(1000)


def test_every_output_validates(population: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    docs, profiles = population
    out = score_population(docs, profiles)
    assert [d["customer_id"] for d in out] == [d["customer_id"] for d in docs]
    for d in out:
        ScoresCustomer.model_validate(d)
        assert d["model_version"] == ModelConfig().model_version
    # every category is reached on a varied population
    assert {d["quadrant"] for d in out} == {"vip", "improvement", "maintenance", "abandon"}
    assert {d["credit_grade"] for d in out} == {"A", "B", "C", "D"}
    assert {d["safety_grade"] for d in out} == {"A", "B", "C", "D"}
    tiers = [d["service_tier"] for d in out]
    shares = {t: tiers.count(t) / len(tiers) for t in ("special", "level1", "level2", "level3")}
    assert shares == pytest.approx({"special": 0.1, "level1": 0.3, "level2": 0.5, "level3": 0.1}, abs=0.03)


def test_missing_inputs_are_null_and_score_1(
    population: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    docs, profiles = population
    out = score_population(docs, profiles)
    nulls = 0
    for d in out:
        for name in INDICATORS:
            if d["indicators"][name] is None:
                nulls += 1
                assert d["scores"][name] == 1
    assert nulls > 0


def test_score_one_matches_the_population_pass(
    population: tuple[list[dict[str, Any]], list[dict[str, Any]]],
) -> None:
    docs, profiles = population
    run = run_population(docs, profiles)
    state = PopulationState.model_validate_json(run.state.model_dump_json())  # survives storage
    by_id = {p["customer_id"]: p for p in profiles}
    for i in range(0, len(docs), 13):
        one = score_one(docs[i], by_id.get(docs[i]["customer_id"]), state)
        assert one == run.documents[i]


def test_score_one_rescoring_a_changed_customer() -> None:
    docs, profiles = simulated_stats(200, seed=4)
    run = run_population(docs, profiles)
    worse = {**docs[0], "arrears": {**docs[0]["arrears"], "theft_12m": 80_000.0}}
    assert score_one(worse, profiles[0], run.state)["credit_grade"] == "D"


def test_score_one_refuses_another_models_state() -> None:
    docs, profiles = simulated_stats(50, seed=2)
    run = run_population(docs, profiles)
    with pytest.raises(ValueError, match="model"):
        score_one(docs[0], None, run.state, ModelConfig(origin="mean"))


def test_explain(population: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    docs, profiles = population
    run = run_population(docs, profiles)
    doc = run.documents[3]
    ex = run.explain(doc["customer_id"])
    contributions = [r["contribution"] for r in ex["indicators"]]
    assert contributions == sorted(contributions, reverse=True)
    current = sum(r["contribution"] for r in ex["indicators"] if r["part"] == "current")
    potential = sum(r["contribution"] for r in ex["indicators"] if r["part"] == "potential")
    assert current == pytest.approx(doc["current_value"]) and potential == pytest.approx(
        doc["potential_value"]
    )
    for r in ex["indicators"]:
        assert r["score"] == doc["scores"][r["indicator"]] and r["raw"] == doc["indicators"][r["indicator"]]
    assert ex["quadrant"] == doc["quadrant"] and ex["service_tier"] == doc["service_tier"]
    assert ex["credit"]["grade"] == doc["credit_grade"]
    assert ex["credit"]["points"] == pytest.approx(100 - sum(d["points"] for d in ex["credit"]["deductions"]))
    by_id = {p["customer_id"]: p for p in profiles}
    assert explain_one(docs[3], by_id.get(docs[3]["customer_id"]), run.state) == ex


def test_explain_lists_credit_deductions_and_caps() -> None:
    docs, profiles = simulated_stats(100, seed=9)
    doc = docs[0]
    doc["arrears"] |= {
        "theft_12m": 70_000.0,
        "late_fees_12m": 2,
        "reversals_12m": 0,
        "oldest_overdue_days": 0,
    }
    ex = run_population(docs, profiles).explain(doc["customer_id"])
    rules = {d["rule"]: d["points"] for d in ex["credit"]["deductions"]}
    assert rules["theft"] == 30 and rules["late_fees"] == 25
    assert {c["cap"] for c in ex["credit"]["caps"]} == {"theft_any", "theft_major"}
    assert ex["credit"]["grade"] == "D"


def test_origin_mean(population: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    docs, profiles = population
    run = run_population(docs, profiles, ModelConfig(origin="mean"))
    c = np.mean([d["current_value"] for d in run.documents])
    p = np.mean([d["potential_value"] for d in run.documents])
    assert run.state.origin == pytest.approx((c, p))
    for d in run.documents[:50]:
        high_c, high_p = d["current_value"] >= c, d["potential_value"] >= p
        expected = {(True, True): "vip", (False, True): "improvement", (True, False): "maintenance"}
        assert d["quadrant"] == expected.get((high_c, high_p), "abandon")


def test_accepts_models_and_empty_population() -> None:
    docs, profiles = simulated_stats(20, seed=1)
    as_models = score_population(
        [StatsCustomer.model_validate(d) for d in docs],
        {p["customer_id"]: CustomerProfile(**p) for p in profiles},
    )
    assert as_models == score_population(docs, profiles)
    assert score_population([], []) == []
