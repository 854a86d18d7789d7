"""Customer scoring (DOMAIN.md sections 3-5): fuzzy-AHP value model, value matrix, service tiers,
credit and supply-safety grades.

Pure: numpy, pydantic and the standard library; the only I/O is reading a config file whose
path the caller gives (``load_config``). The stream wiring lives elsewhere.
"""

from scoring.assign import Breakpoints
from scoring.config import ModelConfig, dump_config, load_config
from scoring.credit import CREDIT_RULES, GRADES, credit_grades, safety_grades
from scoring.indicators import Population, SupplierTotals, compute_indicators
from scoring.model import (
    PopulationRun,
    PopulationState,
    ScoreArrays,
    explain_one,
    run_population,
    score_arrays,
    score_one,
    score_population,
)
from scoring.value import QUADRANTS, TIERS, TierCuts
from scoring.weights import (
    INDICATORS,
    JudgementMatrixError,
    fuzzy_consistent_weights,
    hierarchical_weights,
)

__all__ = [
    "CREDIT_RULES",
    "GRADES",
    "INDICATORS",
    "QUADRANTS",
    "TIERS",
    "Breakpoints",
    "JudgementMatrixError",
    "ModelConfig",
    "Population",
    "PopulationRun",
    "PopulationState",
    "ScoreArrays",
    "SupplierTotals",
    "TierCuts",
    "compute_indicators",
    "credit_grades",
    "dump_config",
    "explain_one",
    "fuzzy_consistent_weights",
    "hierarchical_weights",
    "load_config",
    "run_population",
    "safety_grades",
    "score_arrays",
    "score_one",
    "score_population",
]
