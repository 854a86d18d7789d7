"""Import rules, enforced rather than promised.

1. The pure cores — ``metering/``, ``schemas/``, ``scoring/``, ``inspection/`` and the pure alert rules
   (``alerts/credit_rules.py``, ``alerts/outage_impact.py``, ``alerts/reliability.py``) — import
   nothing of Kafka, Redis, PostgreSQL, HTTP or the layers above them (``streams``, the
   ``gridpulse`` application, the alert store, consumer and notifier). Checked twice: in the
   source (every import statement, at module level, inside functions or under TYPE_CHECKING,
   and ``importlib.import_module`` / ``__import__`` with a literal name), and by importing them
   in a fresh interpreter and reading ``sys.modules`` (which also sees what their imports import).
2. Test modules import helper modules (tests/samples.py, tests/integration/helpers.py, ...),
   never another test module or a conftest.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PURE_PACKAGES = ("metering", "schemas", "scoring", "inspection")
PURE_ALERT_MODULES = ("alerts", "alerts.credit_rules", "alerts.outage_impact", "alerts.reliability")
"""``alerts`` itself is its package's ``__init__``, which importing a rule module runs."""

DENIED = frozenset(
    {
        # Kafka and the stream processors
        "faust",
        "mode",
        "aiokafka",
        "kafka",
        "confluent_kafka",
        "quixstreams",
        # Redis, PostgreSQL
        "redis",
        "asyncpg",
        "psycopg",
        "psycopg2",
        "sqlalchemy",
        # HTTP
        "aiohttp",
        "httpx",
        "requests",
        "urllib3",
        # the layers above the cores
        "streams",
        "gridpulse",
        "simulator",
        "bench",
        "tests",
    }
)
"""Top-level names a pure module may not import."""


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def pure_modules(root: Path = REPO) -> dict[str, Path]:
    """Every pure module's dotted name and file."""
    found: dict[str, Path] = {}
    for package in PURE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            found[module_name(path, root)] = path
    for name in PURE_ALERT_MODULES:
        path = root / Path(*name.split("."))
        found[name] = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    return found


def _dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, dotted name) of everything the source imports, wherever the statement is.

    ``from a.b import c`` gives ``a.b`` and ``a.b.c`` (c may be a module); relative imports are
    resolved against ``module``'s package.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base and parent else (base or parent)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif (
            isinstance(node, ast.Call)
            and _dynamic_import(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def why_not_pure(name: str) -> str | None:
    """Why a pure module may not import ``name``, or None when it may."""
    top = name.split(".")[0]
    if top in DENIED:
        return f"{top} is denied"
    if top == "alerts" and name != "alerts":
        rules = [m for m in PURE_ALERT_MODULES if m != "alerts"]
        if not any(name == m or name.startswith(m + ".") for m in rules):
            return "not one of the pure alert modules"
    return None


def violations_in_source(modules: dict[str, Path]) -> list[str]:
    out = []
    for module, path in modules.items():
        for line, name in imports_of(path, module):
            reason = why_not_pure(name)
            if reason:
                out.append(f"{path}:{line}: {module} imports {name} ({reason})")
    return out


def loaded_by(modules: list[str], root: Path = REPO) -> list[str]:
    """``sys.modules`` of a fresh interpreter after importing ``modules`` from ``root``."""
    script = (
        "import importlib, json, sys\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    loaded: list[str] = json.loads(proc.stdout)
    return loaded


def violations_loaded(modules: list[str], root: Path = REPO) -> list[str]:
    return [f"{name} ({reason})" for name in loaded_by(modules, root) if (reason := why_not_pure(name))]


# --- the pure cores ----------------------------------------------------------------------------


def test_the_pure_modules_are_all_found() -> None:
    found = pure_modules()
    for name in (
        "metering.load",
        "metering.arrears",
        "schemas.models",
        "schemas.codec",
        "scoring",
        "scoring.model",
        "alerts.credit_rules",
        "alerts.outage_impact",
        "alerts.reliability",
    ):
        assert name in found and found[name].is_file(), name
    assert all(path.is_file() for path in found.values())


def test_pure_sources_import_no_kafka_redis_postgres_http_or_streams() -> None:
    assert violations_in_source(pure_modules()) == []


def test_pure_modules_load_none_of_it_in_a_fresh_interpreter() -> None:
    assert violations_loaded(sorted(pure_modules())) == []


PLANTED = {
    "at_top": "import redis\n",
    "in_function": "def f():\n    from streams.runtime import Runtime\n    return Runtime\n",
    "type_checking": (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from aiokafka.errors import KafkaError\n"
    ),
    "from_package": "from alerts import store\n",
    "dynamic": "import importlib\nfaust = importlib.import_module('faust')\n",
    "relative": "from ..gridpulse import settings\n",
    "settings": "from gridpulse.settings import Settings\n",
    "asyncpg_alias": "import asyncpg as pg\n",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_the_source_check_catches_a_planted_import(kind: str, tmp_path: Path) -> None:
    path = tmp_path / "metering" / "planted.py"
    path.parent.mkdir()
    path.write_text(PLANTED[kind])
    found = violations_in_source({"metering.planted": path})
    assert len(found) >= 1, kind


def test_the_source_check_lets_pure_imports_pass(tmp_path: Path) -> None:
    path = tmp_path / "metering" / "fine.py"
    path.parent.mkdir()
    path.write_text(
        "import numpy as np\nfrom . import local_time\nfrom .load import LoadState\n"
        "from alerts.outage_impact import lost\nfrom schemas.models import StatsCustomer\n"
        "import alerts.credit_rules\n"
    )
    assert violations_in_source({"metering.fine": path}) == []


def test_the_load_check_catches_an_indirect_import(tmp_path: Path) -> None:
    # the source names only a harmless-looking module of its own; that one pulls in redis
    pkg = tmp_path / "plantedpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("import redis.asyncio\n")
    (pkg / "core.py").write_text("from plantedpkg import helper\n")
    assert violations_in_source({"plantedpkg.core": pkg / "core.py"}) == []
    assert "redis (redis is denied)" in violations_loaded(["plantedpkg.core"], tmp_path)


# --- tests import helpers ----------------------------------------------------------------------


def test_test_modules_import_helpers_never_tests_or_conftests() -> None:
    bad = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        module = module_name(path, REPO)
        for line, name in imports_of(path, module):
            if not name.startswith("tests."):
                continue
            last = name.rsplit(".", 1)[-1]
            if last.startswith("test_") or last == "conftest":
                bad.append(f"{path.relative_to(REPO)}:{line}: imports {name}")
    assert bad == []
