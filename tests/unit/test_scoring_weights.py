"""Fuzzy consistent matrix weights and the model config (DOMAIN.md section 3, article 1)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from scoring.config import ModelConfig, dump_config, load_config, to_toml
from scoring.weights import (
    ARTICLE_LEVEL1_MATRIX,
    ARTICLE_LEVEL1_MATRIX_CORRECTED,
    ARTICLE_LEVEL1_WEIGHTS,
    ARTICLE_LEVEL2_MATRICES,
    INDICATORS,
    JudgementMatrixError,
    check_judgement_matrix,
    fuzzy_consistent_weights,
    hierarchical_weights,
)


@pytest.mark.parametrize(
    ("criterion", "expected"),
    [("B1", (0.7, 0.3)), ("B2", (0.4, 0.6)), ("B3", (0.3, 0.7)), ("B4", (0.6, 0.4))],
)
def test_article_level2_weights(criterion: str, expected: tuple[float, float]) -> None:
    w = fuzzy_consistent_weights(ARTICLE_LEVEL2_MATRICES[criterion])
    np.testing.assert_allclose(w, expected, atol=1e-12)


def test_printed_level1_matrix_gives_the_misprinted_weights() -> None:
    w = fuzzy_consistent_weights(ARTICLE_LEVEL1_MATRIX)
    np.testing.assert_allclose(w, (0.3667, 0.3, 0.1333, 0.2), atol=5e-5)
    assert not np.allclose(w, ARTICLE_LEVEL1_WEIGHTS, atol=1e-3)


def test_corrected_level1_matrix_gives_the_published_weights() -> None:
    corrected = [list(r) for r in ARTICLE_LEVEL1_MATRIX]
    corrected[2][3], corrected[3][2] = 0.2, 0.8  # r34 = 0.2, r43 = 0.8
    assert tuple(map(tuple, corrected)) == ARTICLE_LEVEL1_MATRIX_CORRECTED
    w = fuzzy_consistent_weights(corrected)
    np.testing.assert_allclose(np.round(w, 3), ARTICLE_LEVEL1_WEIGHTS, atol=1e-12)


def test_weights_sum_to_one_for_any_complementary_matrix() -> None:
    rng = np.random.default_rng(1)
    for n in (2, 3, 5, 9):
        upper = rng.choice(np.arange(1, 10) / 10, size=(n, n))
        r = np.triu(upper, 1)
        r = r + np.tril(1 - r.T, -1) + np.eye(n) * 0.5
        w = fuzzy_consistent_weights(r)
        assert w.sum() == pytest.approx(1.0)
        assert (w >= -1e-12).all()


def test_total_weights_reproduce_the_article() -> None:
    total = ModelConfig().total_weights()
    assert list(total) == list(INDICATORS)
    published = dict(zip(INDICATORS, (0.257, 0.110, 0.12, 0.18, 0.03, 0.07, 0.14, 0.093), strict=True))
    for name, w in total.items():
        assert round(w, 3) == pytest.approx(published[name]), name
    assert sum(total.values()) == pytest.approx(1.0)
    # the split the worked example's coordinates fit: current in [0.667, 3.335]
    current = sum(total[n] for n in ("B11", "B12", "B21", "B22"))
    assert 5 * current == pytest.approx(3.335, abs=1e-9)


def test_hierarchical_weights_checks_shapes() -> None:
    with pytest.raises(ValueError, match="level-1"):
        hierarchical_weights([0.5, 0.5], {})
    with pytest.raises(ValueError, match="B2"):
        hierarchical_weights([0.25] * 4, {"B1": [0.5, 0.5], "B2": [1.0], "B3": [1, 0], "B4": [1, 0]})


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        ([[0.5, 0.7], [0.4, 0.5]], r"r12 \+ r21 = 0.7 \+ 0.4"),
        ([[0.5, 0.6, 0.9], [0.4, 0.5, 0.7], [0.1, 0.4, 0.5]], "r23 .*must be 1"),
        ([[0.6, 0.4], [0.6, 0.5]], "r11 = 0.6 must be 0.5"),
        ([[0.5, 1.2], [-0.2, 0.5]], r"r12 = 1.2 is outside \[0, 1\]"),
        ([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]], "not square: row 1 has 3 cells"),
        ([], "empty"),
    ],
)
def test_bad_matrix_names_the_cell(matrix: list[list[float]], message: str) -> None:
    with pytest.raises(JudgementMatrixError, match=message):
        check_judgement_matrix(matrix)


def test_complement_tolerance() -> None:
    check_judgement_matrix([[0.5, 0.7], [0.3 + 1e-12, 0.5]])
    with pytest.raises(JudgementMatrixError):
        check_judgement_matrix([[0.5, 0.7], [0.3 + 1e-6, 0.5]])


def test_default_config_carries_both_level1_forms() -> None:
    cfg = ModelConfig()
    assert cfg.level1_weights == ARTICLE_LEVEL1_WEIGHTS
    assert cfg.level1() == ARTICLE_LEVEL1_WEIGHTS
    assert cfg.level1_matrix == ARTICLE_LEVEL1_MATRIX
    printed = cfg.model_copy(update={"level1_weights": None})
    np.testing.assert_allclose(printed.level1(), (0.3667, 0.3, 0.1333, 0.2), atol=5e-5)


def test_own_matrix_without_weights_uses_the_matrix() -> None:
    cfg = ModelConfig.model_validate({"level1_matrix": ARTICLE_LEVEL1_MATRIX_CORRECTED})
    assert cfg.level1_weights is None
    np.testing.assert_allclose(cfg.level1(), (0.36667, 0.3, 0.1, 0.23333), atol=5e-5)


def test_config_rejects_bad_matrices_and_values() -> None:
    bad = [list(r) for r in ARTICLE_LEVEL1_MATRIX]
    bad[0][1] = 0.9
    with pytest.raises(ValidationError, match="level1_matrix: not complementary: r12"):
        ModelConfig.model_validate({"level1_matrix": bad})
    with pytest.raises(ValidationError, match=r"level2_matrices.B3: not complementary: r12"):
        ModelConfig.model_validate(
            {"level2_matrices": {**ARTICLE_LEVEL2_MATRICES, "B3": ((0.5, 0.3), (0.6, 0.5))}}
        )
    with pytest.raises(ValidationError, match="exactly"):
        ModelConfig.model_validate({"level2_matrices": {"B1": ((0.5, 0.5), (0.5, 0.5))}})
    with pytest.raises(ValidationError, match="summing to 1"):
        ModelConfig.model_validate({"level1_weights": [0.5, 0.5, 0.5, 0.5]})
    with pytest.raises(ValidationError, match="tier shares"):
        ModelConfig.model_validate({"tiers": {"special": 0.2}})
    with pytest.raises(ValidationError, match="pf_p1"):
        ModelConfig.model_validate({"indicators": {"pf_p1": 0.95, "pf_p2": 0.9}})
    with pytest.raises(ValidationError, match="unknown indicator"):
        ModelConfig.model_validate({"assignment": {"breakpoints": {"B99": [1, 2, 3, 4]}}})
    with pytest.raises(ValidationError, match="ascending"):
        ModelConfig.model_validate({"assignment": {"breakpoints": {"B11": [1, 3, 2, 4]}}})
    with pytest.raises(ValidationError, match="extra"):
        ModelConfig.model_validate({"orgin": "mean"})


def test_model_version_is_a_hash_of_the_config() -> None:
    a, b = ModelConfig(), ModelConfig()
    assert a.model_version == b.model_version
    assert a.model_version.startswith("fahp-1-") and len(a.model_version) == len("fahp-1-") + 8
    assert ModelConfig(origin="mean").model_version != a.model_version
    assert ModelConfig(level1_weights=None).model_version != a.model_version


def _company_config() -> ModelConfig:
    return ModelConfig.model_validate(
        {
            "level1_matrix": ARTICLE_LEVEL1_MATRIX_CORRECTED,
            "origin": "mean",
            "indicators": {
                "growth_amount_m_kwh": 50_000,
                "transmission_bands": [{"min_kv": 0, "cny_per_kwh": 0.3}, {"min_kv": 10, "cny_per_kwh": 0.1}],
            },
            "assignment": {"breakpoints": {"B21": [0.3, 0.4, 0.5, 0.6]}},
            "tiers": {"special": 0.05, "level1": 0.25, "level2": 0.6, "level3": 0.1, "by": "current"},
            "credit": {"grade_b": 70, "overdue_steps": [{"days": 30, "points": 15}]},
        }
    )


@pytest.mark.parametrize("suffix", [".json", ".toml"])
@pytest.mark.parametrize("factory", [ModelConfig, _company_config])
def test_config_file_round_trip(tmp_path: Path, suffix: str, factory: object) -> None:
    cfg = factory()  # type: ignore[operator]
    path = tmp_path / f"model{suffix}"
    dump_config(cfg, path)
    loaded = load_config(path)
    assert loaded == cfg
    assert loaded.model_version == cfg.model_version
    assert loaded.total_weights() == cfg.total_weights()


def test_hand_written_toml(tmp_path: Path) -> None:
    path = tmp_path / "company.toml"
    path.write_text(
        """
origin = "mean"
level1_matrix = [[0.5, 0.6, 0.9, 0.7], [0.4, 0.5, 0.7, 0.7], [0.1, 0.3, 0.5, 0.2], [0.3, 0.3, 0.8, 0.5]]

[indicators]
growth_amount_m_kwh = 20000

[credit]
grade_a = 95
""",
        encoding="utf-8",
    )
    cfg = load_config(path)
    assert cfg.origin == "mean" and cfg.indicators.growth_amount_m_kwh == 20000
    assert cfg.credit.grade_a == 95 and cfg.credit.grade_b == 75
    np.testing.assert_allclose(cfg.level1(), (0.36667, 0.3, 0.1, 0.23333), atol=5e-5)


def test_json_file_and_bad_suffix(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"origin": [2.0, 1.0]}), encoding="utf-8")
    assert load_config(path).origin == (2.0, 1.0)
    with pytest.raises(ValueError, match=r"json or \.toml"):
        load_config(tmp_path / "c.yaml")


def test_toml_text_is_parseable() -> None:
    import tomllib

    assert tomllib.loads(to_toml(ModelConfig().model_dump(mode="json")))["origin"] == [2.2, 1.1]
