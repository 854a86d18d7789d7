"""The scoring model's configuration: everything a power-supply company may set.

``ModelConfig()`` is the article's model (DOMAIN.md sections 3 and 4) with gridpulse's defaults
where the article leaves a choice. A company enters its own judgement matrices, breakpoints,
matrix origin, service tiers and credit points in a JSON or TOML file and loads it with
``load_config(path)``; ``dump_config(config, path)`` writes one (a template to edit).

Level-1 weights: an explicit ``level1_weights`` wins over ``level1_matrix``. The default carries
both: the article's published weights (0.367, 0.3, 0.1, 0.233) as the override and the article's
printed matrix, which (misprint, see ``scoring.weights.ARTICLE_LEVEL1_MATRIX``) would give
(0.3667, 0.3, 0.1333, 0.2). A file that sets ``level1_matrix`` but not ``level1_weights`` uses
its matrix: entering your own matrix must not silently keep the article's weights.

``model_version`` ("fahp-1-<8 hex>") is a hash of the whole configuration, so two score
messages with the same version were computed by the same model and weights.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from scoring.weights import (
    ARTICLE_LEVEL1_MATRIX,
    ARTICLE_LEVEL1_WEIGHTS,
    ARTICLE_LEVEL2_MATRICES,
    CRITERIA,
    INDICATORS,
    check_judgement_matrix,
    fuzzy_consistent_weights,
    hierarchical_weights,
)

MODEL_FAMILY = "fahp-1"
"""Bumped when the formulas change (not when the numbers in the config do)."""

Grade = Literal["A", "B", "C", "D"]
Matrix = tuple[tuple[float, ...], ...]
_STRICT = ConfigDict(extra="forbid", frozen=True)


class TransmissionBand(BaseModel):
    """Transmission fee per kWh for supply voltages from ``min_kv`` up to the next band."""

    model_config = _STRICT
    min_kv: float = Field(ge=0)
    cny_per_kwh: float = Field(ge=0)


# PLACEHOLDER fees: a company sets its own approved transmission & distribution tariff (输配电价)
# per voltage level. Only the ordering matters much for B12's ranking (lower voltage uses more
# of the network per kWh, so pays more per kWh).
DEFAULT_TRANSMISSION_BANDS = (
    TransmissionBand(min_kv=0.0, cny_per_kwh=0.20),  # < 1 kV
    TransmissionBand(min_kv=1.0, cny_per_kwh=0.15),  # 1 - 10 (and 20) kV
    TransmissionBand(min_kv=35.0, cny_per_kwh=0.10),  # 35 - 66 kV
    TransmissionBand(min_kv=110.0, cny_per_kwh=0.05),  # 110 kV and above
)


class IndicatorParams(BaseModel):
    """Parameters of the indicator formulas (DOMAIN.md section 3)."""

    model_config = _STRICT
    pf_p1: float = Field(default=0.80, ge=0, le=1, description="B22: power factor scoring 0 at or below")
    pf_p2: float = Field(default=0.95, ge=0, le=1, description="B22: power factor scoring 1 at or above")
    punctuality_a: float = Field(default=0.5, gt=0, description="B32: late fees / receivable scoring 0")
    growth_rate_r: float = Field(default=0.3, gt=0, description="B41: growth rate scoring 1")
    growth_amount_m_kwh: float = Field(default=10_000.0, gt=0, description="B42: growth (kWh) scoring 1")
    transmission_bands: tuple[TransmissionBand, ...] = Field(
        default=DEFAULT_TRANSMISSION_BANDS,
        min_length=1,
        description="B12: transmission fee per kWh by voltage level (placeholder values)",
    )

    @model_validator(mode="after")
    def _check(self) -> IndicatorParams:
        if not self.pf_p1 < self.pf_p2:
            raise ValueError(f"pf_p1 ({self.pf_p1}) must be below pf_p2 ({self.pf_p2})")
        kv = [b.min_kv for b in self.transmission_bands]
        if kv[0] != 0.0 or any(b <= a for a, b in itertools.pairwise(kv)):
            raise ValueError(f"transmission_bands: min_kv must start at 0 and increase, got {kv}")
        return self


class AssignmentParams(BaseModel):
    """How a raw indicator becomes a 1-5 score (赋值法)."""

    model_config = _STRICT
    quantiles: tuple[float, float, float, float] = Field(
        default=(0.2, 0.4, 0.6, 0.8), description="population quantiles used as breakpoints (quintiles)"
    )
    breakpoints: dict[str, tuple[float, float, float, float]] = Field(
        default_factory=dict,
        description="explicit breakpoints per indicator (ascending); replace the quantiles for it",
    )

    @field_validator("quantiles")
    @classmethod
    def _ascending_q(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not all(0 < q < 1 for q in v) or list(v) != sorted(v):
            raise ValueError(f"quantiles must be ascending in (0, 1), got {v}")
        return v

    @field_validator("breakpoints")
    @classmethod
    def _known_ascending(cls, v: dict[str, tuple[float, ...]]) -> dict[str, tuple[float, ...]]:
        for ind, bp in v.items():
            if ind not in INDICATORS:
                raise ValueError(f"breakpoints: unknown indicator {ind!r}; expected one of {INDICATORS}")
            if not all(math.isfinite(b) for b in bp) or list(bp) != sorted(bp):
                raise ValueError(f"breakpoints[{ind}] must be finite and ascending, got {bp}")
        return v


class TierParams(BaseModel):
    """Service tiers by value rank (article 7): shares from the top, summing to 1."""

    model_config = _STRICT
    by: Literal["total", "current", "potential"] = Field(
        default="total", description="the value ranked: current + potential, or one of them"
    )
    special: float = Field(default=0.10, ge=0, le=1)
    level1: float = Field(default=0.30, ge=0, le=1)
    level2: float = Field(default=0.50, ge=0, le=1)
    level3: float = Field(default=0.10, ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> TierParams:
        total = self.special + self.level1 + self.level2 + self.level3
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"tier shares must sum to 1, got {total}")
        return self


class OverdueStep(BaseModel):
    """Deduct ``points`` when the oldest unpaid bill is more than ``days`` past due."""

    model_config = _STRICT
    days: int = Field(ge=0)
    points: float = Field(ge=0)


class CreditParams(BaseModel):
    """Points model of the credit grade (see ``scoring.credit`` for the reasoning)."""

    model_config = _STRICT
    start: float = Field(default=100.0, description="points before deductions")
    recovery_points_per_pct: float = Field(
        default=1.0, ge=0, description="per % of the 36-month due not recovered (1 - B31)"
    )
    recovery_max: float = Field(default=40.0, ge=0, description="cap of the recovery deduction")
    punctuality_points: float = Field(
        default=10.0, ge=0, description="x (1 - B32): 10 at late fees >= a x receivable"
    )
    overdue_steps: tuple[OverdueStep, ...] = Field(
        default=(
            OverdueStep(days=30, points=10),
            OverdueStep(days=60, points=20),
            OverdueStep(days=90, points=35),
        ),
        description="the largest step whose days the oldest overdue bill exceeds applies",
    )
    late_fee_each: float = Field(default=5.0, ge=0, description="per late-fee event in 12 months")
    late_fee_repeat_count: int = Field(default=2, ge=1, description="Hangzhou rule: this many in 12 months")
    late_fee_repeat_points: float = Field(default=15.0, ge=0, description="... deduct this much more")
    reversal_each: float = Field(default=10.0, ge=0, description="per payment reversal in 12 months")
    reversal_repeat_count: int = Field(default=2, ge=1)
    reversal_repeat_points: float = Field(
        default=0.0, ge=0, description="extra at repeated reversals (Hangzhou lists 2+ as dishonesty)"
    )
    theft_points: float = Field(default=30.0, ge=0, description="any theft penalty in 12 months")
    theft_cap: Grade = Field(default="C", description="best grade with any theft penalty (Wuhan)")
    theft_major_cny: float = Field(default=50_000.0, ge=0, description="theft above this forces the grade")
    theft_major_grade: Grade = Field(default="D", description="grade forced by major theft (Hangzhou)")
    overdue_cap_days: int = Field(default=90, ge=0, description="Wuhan: ~3 months of arrears ...")
    overdue_cap: Grade = Field(default="C", description="... caps the grade here")
    grade_a: float = Field(default=90.0, description="A at or above")
    grade_b: float = Field(default=75.0, description="B at or above")
    grade_c: float = Field(default=60.0, description="C at or above; D below")

    @model_validator(mode="after")
    def _check(self) -> CreditParams:
        if not self.grade_a >= self.grade_b >= self.grade_c:
            raise ValueError("credit thresholds must satisfy grade_a >= grade_b >= grade_c")
        days = [s.days for s in self.overdue_steps]
        if days != sorted(days):
            raise ValueError(f"overdue_steps must be in ascending days, got {days}")
        return self


class SafetyParams(BaseModel):
    """Supply-safety grade (DOMAIN.md section 5)."""

    model_config = _STRICT
    dual_circuit_min_feeders: int = Field(
        default=2, ge=2, description="distinct feeders making a dual circuit"
    )


class ModelConfig(BaseModel):
    """The customer scoring model: weights, indicator parameters, assignment, matrix, tiers, credit."""

    model_config = _STRICT

    level1_matrix: tuple[tuple[float, ...], ...] = Field(
        default=ARTICLE_LEVEL1_MATRIX, description="judgement matrix of B1..B4 (article's, as printed)"
    )
    level1_weights: tuple[float, ...] | None = Field(
        default=ARTICLE_LEVEL1_WEIGHTS,
        description="explicit level-1 weights; win over level1_matrix. Default: the article's "
        "published weights (the printed matrix has a misprint)",
    )
    level2_matrices: dict[str, tuple[tuple[float, ...], ...]] = Field(
        default_factory=lambda: dict(ARTICLE_LEVEL2_MATRICES),
        description="judgement matrix of each criterion's indicators",
    )
    indicators: IndicatorParams = Field(default_factory=IndicatorParams)
    assignment: AssignmentParams = Field(default_factory=AssignmentParams)
    origin: tuple[float, float] | Literal["mean"] = Field(
        default=(2.2, 1.1),
        description="value-matrix origin (current, potential); 'mean' = population mean",
    )
    tiers: TierParams = Field(default_factory=TierParams)
    credit: CreditParams = Field(default_factory=CreditParams)
    safety: SafetyParams = Field(default_factory=SafetyParams)

    @model_validator(mode="before")
    @classmethod
    def _own_matrix_means_own_weights(cls, data: Any) -> Any:
        if isinstance(data, dict) and "level1_matrix" in data and "level1_weights" not in data:
            data = {**data, "level1_weights": None}
        return data

    @field_validator("level1_matrix")
    @classmethod
    def _level1_ok(cls, v: tuple[tuple[float, ...], ...]) -> tuple[tuple[float, ...], ...]:
        check_judgement_matrix(v, "level1_matrix")
        if len(v) != len(CRITERIA):
            raise ValueError(f"level1_matrix must be {len(CRITERIA)}x{len(CRITERIA)} (B1..B4)")
        return v

    @field_validator("level1_weights")
    @classmethod
    def _weights_ok(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is None:
            return v
        if len(v) != len(CRITERIA) or any(w < 0 for w in v) or abs(sum(v) - 1.0) > 1e-3:
            raise ValueError(f"level1_weights must be {len(CRITERIA)} values >= 0 summing to 1, got {v}")
        return v

    @field_validator("level2_matrices")
    @classmethod
    def _level2_ok(cls, v: dict[str, Matrix]) -> dict[str, Matrix]:
        if set(v) != set(CRITERIA):
            raise ValueError(f"level2_matrices must have exactly {list(CRITERIA)}, got {sorted(v)}")
        for crit, m in v.items():
            check_judgement_matrix(m, f"level2_matrices.{crit}")
            if len(m) != len(CRITERIA[crit]):
                k = len(CRITERIA[crit])
                raise ValueError(f"level2_matrices.{crit} must be {k}x{k}")
        return v

    def level1(self) -> tuple[float, ...]:
        """Level-1 weights in use: the override, or those of ``level1_matrix``."""
        if self.level1_weights is not None:
            return tuple(self.level1_weights)
        return tuple(float(w) for w in fuzzy_consistent_weights(self.level1_matrix, "level1_matrix"))

    def level2(self) -> dict[str, tuple[float, ...]]:
        return {
            crit: tuple(float(w) for w in fuzzy_consistent_weights(self.level2_matrices[crit], crit))
            for crit in CRITERIA
        }

    def total_weights(self) -> dict[str, float]:
        """Total weight of each indicator B11..B42."""
        return hierarchical_weights(self.level1(), self.level2())

    @property
    def model_version(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return f"{MODEL_FAMILY}-{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


def load_config(path: str | Path) -> ModelConfig:
    """A ``ModelConfig`` from a ``.json`` or ``.toml`` file; fields left out keep their defaults."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".toml":
        with p.open("rb") as f:
            data = tomllib.load(f)
    elif suffix == ".json":
        data = json.loads(p.read_text(encoding="utf-8"))
    else:
        raise ValueError(f"{p}: expected a .json or .toml file")
    return ModelConfig.model_validate(data)


def dump_config(config: ModelConfig, path: str | Path) -> None:
    """Write the whole config as ``.json`` or ``.toml`` (a template a company edits)."""
    p = Path(path)
    data = config.model_dump(mode="json")
    suffix = p.suffix.lower()
    if suffix == ".json":
        p.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    elif suffix == ".toml":
        p.write_text(to_toml(data), encoding="utf-8")
    else:
        raise ValueError(f"{p}: expected a .json or .toml file")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(data: dict[str, Any]) -> str:
    """TOML text of a config dict: scalars and arrays first, then one table per nested object.

    ``None`` is left out (TOML has no null); in a ``ModelConfig`` only ``level1_weights`` can be
    None, and leaving it out next to ``level1_matrix`` means the same thing.
    """

    def table(prefix: str, d: dict[str, Any]) -> list[str]:
        lines = [f"{k} = {_toml_value(v)}" for k, v in d.items() if v is not None and not isinstance(v, dict)]
        for k, v in d.items():
            if isinstance(v, dict):
                lines += ["", f"[{prefix}{k}]", *table(f"{prefix}{k}.", v)]
        return lines

    return "\n".join(table("", data)) + "\n"
