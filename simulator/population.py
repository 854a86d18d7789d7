"""A seeded, deterministic population of supply customers.

`make_population(n, seed)` returns the public profiles (one `customers` message each, CONTRACT.md)
and the hidden traits the other generators draw on: base load, target power factor, growth,
payer behaviour, which registers the meter has. Same (n, seed) -> same population, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import numpy as np

from schemas.models import TariffClass

TARIFF_CLASSES: tuple[str, ...] = get_args(TariffClass)  # the contract's, in its order
_CLASS_SHARE = np.array([0.55, 0.25, 0.10, 0.05, 0.03, 0.01, 0.01])

# contract kVA range per class; drawn log-uniform because sizes span orders of magnitude
_KVA_RANGE = {
    "residential": (8, 20),
    "commercial": (50, 400),
    "general_industrial": (100, 2_000),
    "large_industrial": (315, 20_000),
    "agricultural": (10, 200),
    "wholesale": (5_000, 50_000),
    "other": (10, 400),
}
# average load / (contract kVA * PF): how much of its contract a class uses on average
_UTILISATION = {
    "residential": (0.04, 0.12),
    "commercial": (0.15, 0.40),
    "general_industrial": (0.20, 0.50),
    "large_industrial": (0.30, 0.70),
    "agricultural": (0.10, 0.30),
    "wholesale": (0.30, 0.60),
    "other": (0.15, 0.40),
}
_TARIFF = {  # CNY/kWh, all-in energy price
    "residential": (0.50, 0.62),
    "commercial": (0.70, 0.90),
    "general_industrial": (0.60, 0.80),
    "large_industrial": (0.50, 0.70),
    "agricultural": (0.50, 0.60),
    "wholesale": (0.50, 0.60),
    "other": (0.60, 0.80),
}
_INDUSTRIES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "residential": ((), ()),
    "commercial": (
        ("retail", "office", "hotel", "restaurant", "school", "hospital", "data_center"),
        (0.30, 0.25, 0.12, 0.15, 0.08, 0.06, 0.04),
    ),
    "general_industrial": (
        ("machinery", "textiles", "food_processing", "electronics", "plastics", "printing"),
        (0.25, 0.20, 0.20, 0.15, 0.10, 0.10),
    ),
    "large_industrial": (
        ("steel", "chemicals", "cement", "semiconductors", "nonferrous_metals", "paper"),
        (0.22, 0.22, 0.15, 0.12, 0.15, 0.14),
    ),
    "agricultural": (("irrigation", "aquaculture", "greenhouse"), (0.6, 0.2, 0.2)),
    "wholesale": (("county_utility",), (1.0,)),
    "other": (("government", "water_works", "telecom", "street_lighting"), (0.3, 0.3, 0.2, 0.2)),
}
# probability that a customer of this class / industry is an important customer (重要电力客户)
_IMPORTANT_P_CLASS = {
    "residential": 0.0,
    "commercial": 0.02,
    "general_industrial": 0.06,
    "large_industrial": 0.35,
    "agricultural": 0.0,
    "wholesale": 0.5,
    "other": 0.10,
}
_IMPORTANT_P_INDUSTRY = {
    "hospital": 0.85,
    "data_center": 0.7,
    "water_works": 0.8,
    "telecom": 0.6,
    "semiconductors": 0.7,
    "chemicals": 0.5,
}
IMPORTANCE_LEVELS = ("special", "level1", "level2", "temporary")
_IMPORTANCE_SHARE = np.array([0.10, 0.35, 0.45, 0.10])
_DUAL_P = {"special": 0.95, "level1": 0.85, "level2": 0.90, "temporary": 0.30, "none": 0.03}
_GENERATOR_P = {"special": 0.90, "level1": 0.70, "level2": 0.50, "temporary": 0.40, "none": 0.02}

# Load-shape profiles (see load.py); industrial customers pick a shift pattern.
PROFILES = (
    "residential",
    "commercial",
    "industrial_1shift",
    "industrial_2shift",
    "industrial_continuous",
    "agricultural",
    "wholesale",
    "other",
)
PAYER_TYPES = ("punctual", "late", "bouncer", "thief")
_PAYER_SHARE = np.array([0.75, 0.15, 0.07, 0.03])

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国志红玉梅文斌鹏辉宇浩然欣怡子轩雨"
_PLACES = ("江宁", "滨江", "浦东", "天河", "龙华", "高新", "东湖", "金山", "新城", "清河", "南山", "武进")
_WORDS = ("宏达", "华联", "恒通", "鑫源", "瑞丰", "永盛", "金鼎", "新拓", "中天", "汇通", "明阳", "嘉禾")
_INDUSTRY_SUFFIX = {
    None: "商贸",
    "retail": "商贸",
    "office": "置业",
    "hotel": "酒店管理",
    "restaurant": "餐饮",
    "school": "教育",
    "hospital": "医院",
    "data_center": "数据科技",
    "machinery": "机械制造",
    "textiles": "纺织",
    "food_processing": "食品",
    "electronics": "电子科技",
    "plastics": "塑胶",
    "printing": "印务",
    "steel": "钢铁",
    "chemicals": "化工",
    "cement": "水泥",
    "semiconductors": "半导体",
    "nonferrous_metals": "有色金属",
    "paper": "纸业",
    "irrigation": "农业灌溉",
    "aquaculture": "水产养殖",
    "greenhouse": "农业科技",
    "county_utility": "县供电",
    "government": "行政服务中心",
    "water_works": "自来水",
    "telecom": "通信",
    "street_lighting": "市政照明",
}


@dataclass(frozen=True)
class Population:
    """Profiles (wire dicts) plus hidden per-customer traits as numpy arrays of length n."""

    profiles: list[dict[str, Any]]
    customer_ids: list[str]
    class_idx: np.ndarray  # index into TARIFF_CLASSES
    profile_idx: np.ndarray  # index into PROFILES (load shape)
    contract_kva: np.ndarray
    base_kw: np.ndarray  # average load before season and growth
    target_pf: np.ndarray
    growth_per_month: np.ndarray  # fraction per month, e.g. 0.02
    payer_idx: np.ndarray  # index into PAYER_TYPES
    tariff: np.ndarray  # CNY/kWh
    has_kvarh: np.ndarray  # meter has a reactive import register
    has_kvarh_export: np.ndarray
    has_demand: np.ndarray  # meter records maximum demand
    estimated_rate: np.ndarray  # probability a reading is estimated by the head-end
    slot_shift: np.ndarray  # personal shift of the daily shape, in 15-min slots
    noise_sigma: np.ndarray  # lognormal sigma of the interval noise

    @property
    def n(self) -> int:
        return len(self.customer_ids)

    def meter_id(self, i: int) -> str:
        return f"MTR-{self.customer_ids[i]}-1"

    @property
    def feeders(self) -> list[list[str]]:
        return [p["feeders"] for p in self.profiles]

    @property
    def transformer_areas(self) -> list[str]:
        return [p["transformer_area"] for p in self.profiles]


def derived_pf_standard(tariff_class: str, contract_kva: float, voltage_kv: float) -> float | None:
    """The PF standard of the (83)水电财字215号 rules (DOMAIN.md §2); None when none applies."""
    if tariff_class == "wholesale":
        return 0.80
    if tariff_class == "agricultural":
        return 0.80 if contract_kva >= 100 else None
    if (
        tariff_class in ("general_industrial", "large_industrial")
        and voltage_kv >= 10
        and contract_kva >= 160
    ):
        return 0.90
    if contract_kva >= 100:
        return 0.85
    return None


def _voltage(tariff_class: str, kva: float) -> float:
    if tariff_class == "residential":
        return 0.4
    if tariff_class == "wholesale":
        return 35.0 if kva < 20_000 else 110.0
    if kva <= 250:
        return 0.4
    if kva <= 6_300:
        return 10.0
    if kva <= 12_500:
        return 35.0
    return 110.0


def _person_name(rng: np.random.Generator) -> str:
    s = _SURNAMES[rng.integers(len(_SURNAMES))]
    given = "".join(_GIVEN[k] for k in rng.integers(len(_GIVEN), size=int(rng.integers(1, 3))))
    return s + given


def _company_name(rng: np.random.Generator, industry: str | None) -> str:
    place = _PLACES[rng.integers(len(_PLACES))]
    word = _WORDS[rng.integers(len(_WORDS))]
    suffix = _INDUSTRY_SUFFIX.get(industry, "实业")
    return f"{place}{word}{suffix}有限公司"


def make_population(n: int, seed: int = 0) -> Population:
    """Draw n customers. Deterministic in (n, seed)."""
    if n < 1:
        raise ValueError("a population needs at least one customer")
    rng = np.random.default_rng([seed, 0xC057])
    n_feeders = max(4, round(n / 500))
    areas_per_feeder = int(np.clip(round(n / n_feeders / 40), 3, 30))
    feeder_ids = [f"F{k + 1:03d}" for k in range(n_feeders)]
    area_ids = [f"TA{k + 1:04d}" for k in range(n_feeders * areas_per_feeder)]
    area_feeder = [feeder_ids[k // areas_per_feeder] for k in range(len(area_ids))]

    class_idx = rng.choice(len(TARIFF_CLASSES), size=n, p=_CLASS_SHARE)
    u_kva = rng.random(n)
    u_util = rng.random(n)
    u_tariff = rng.random(n)
    poor_pf = rng.random(n) < 0.10
    target_pf = np.where(poor_pf, rng.uniform(0.65, 0.88, n), rng.uniform(0.92, 0.98, n))
    growing = rng.random(n) < 0.20
    growth = np.where(growing, rng.uniform(0.01, 0.03, n), rng.normal(0.0, 0.002, n))
    payer_idx = rng.choice(len(PAYER_TYPES), size=n, p=_PAYER_SHARE)
    flaky = rng.random(n) < 0.05
    estimated_rate = np.where(flaky, 0.03, 0.001)
    slot_shift = rng.integers(-3, 4, size=n)

    profiles: list[dict[str, Any]] = []
    ids: list[str] = []
    kva_arr = np.empty(n)
    base_kw = np.empty(n)
    tariff = np.empty(n)
    profile_idx = np.empty(n, dtype=np.int64)
    has_kvarh = np.empty(n, dtype=bool)
    has_export = np.empty(n, dtype=bool)
    has_demand = np.empty(n, dtype=bool)
    noise_sigma = np.empty(n)
    for i in range(n):
        cls = TARIFF_CLASSES[class_idx[i]]
        lo, hi = _KVA_RANGE[cls]
        kva = float(np.round(np.exp(np.log(lo) + u_kva[i] * (np.log(hi) - np.log(lo))), 0))
        voltage = _voltage(cls, kva)
        inds, weights = _INDUSTRIES[cls]
        industry = str(rng.choice(inds, p=weights)) if inds else None
        p_imp = max(_IMPORTANT_P_CLASS[cls], _IMPORTANT_P_INDUSTRY.get(industry or "", 0.0))
        if cls in ("residential", "agricultural"):
            p_imp = 0.0
        importance = "none"
        if rng.random() < p_imp:
            importance = IMPORTANCE_LEVELS[rng.choice(4, p=_IMPORTANCE_SHARE)]
            if industry == "hospital" and importance == "temporary":
                importance = "level1"
        area = int(rng.integers(len(area_ids)))
        feeders = [area_feeder[area]]
        if rng.random() < _DUAL_P[importance]:
            others = [f for f in feeder_ids if f != feeders[0]]
            feeders.append(others[int(rng.integers(len(others)))])
        generator = bool(rng.random() < _GENERATOR_P[importance] + (0.03 if voltage >= 10 else 0.0))
        pf_std = derived_pf_standard(cls, kva, voltage) if rng.random() < 0.15 else None
        t_lo, t_hi = _TARIFF[cls]
        price = round(float(t_lo + u_tariff[i] * (t_hi - t_lo)), 4)
        ulo, uhi = _UTILISATION[cls]
        base = kva * target_pf[i] * (ulo + u_util[i] * (uhi - ulo))
        name = _person_name(rng) if cls == "residential" else _company_name(rng, industry)
        customer_id = f"C{i + 1:06d}"
        ids.append(customer_id)
        profiles.append(
            {
                "customer_id": customer_id,
                "name": name,
                "tariff_class": cls,
                "contract_kva": kva,
                "voltage_kv": voltage,
                "importance": importance,
                "feeders": feeders,
                "transformer_area": area_ids[area],
                "emergency_generator": generator,
                "manager_id": f"M{int(rng.integers(1, 21)):02d}",
                "industry": industry,
                "pf_standard": pf_std,
                "tariff_cny_per_kwh": price,
            }
        )
        kva_arr[i] = kva
        base_kw[i] = base
        tariff[i] = price
        if cls in ("general_industrial", "large_industrial"):
            if industry in ("steel", "chemicals", "cement", "semiconductors", "nonferrous_metals", "paper"):
                shape = "industrial_continuous" if rng.random() < 0.7 else "industrial_2shift"
            else:
                shape = PROFILES[2 + int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
        elif cls == "commercial" and industry in ("hospital", "data_center"):
            shape = "industrial_continuous"
        else:
            shape = cls
        profile_idx[i] = PROFILES.index(shape)
        # Many single-phase household meters have no reactive register.
        has_kvarh[i] = cls != "residential" or rng.random() < 0.6
        has_export[i] = has_kvarh[i] and voltage >= 10 and rng.random() < 0.25
        has_demand[i] = kva >= 315 or cls in ("large_industrial", "wholesale")
        noise_sigma[i] = {"residential": 0.30, "commercial": 0.10, "agricultural": 0.15}.get(cls, 0.06)

    return Population(
        profiles=profiles,
        customer_ids=ids,
        class_idx=class_idx,
        profile_idx=profile_idx,
        contract_kva=kva_arr,
        base_kw=base_kw,
        target_pf=target_pf,
        growth_per_month=growth,
        payer_idx=payer_idx,
        tariff=tariff,
        has_kvarh=has_kvarh,
        has_kvarh_export=has_export,
        has_demand=has_demand,
        estimated_rate=estimated_rate,
        slot_shift=slot_shift,
        noise_sigma=noise_sigma,
    )
