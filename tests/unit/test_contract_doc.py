"""docs/CONTRACT.md stays true to the models: every topic has its section, every field of a
topic's model (nested objects included) is in that section's tables and no other field is, the
topic table says how each topic is cleaned up, and every dead-letter error kind the code
enumerates is named. A topic's block form (``BLOCK_MODELS``) is documented under ``#### `block```."""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from schemas import topics
from schemas.codec import DECODE_KINDS
from schemas.models import BLOCK_MODELS, INPUT_MODELS, OUTPUT_MODELS, DeadLetter
from schemas.validation import ISSUE_KINDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "CONTRACT.md"
DLQ_SECTION = "<input>.dlq"
PLANNED = "Agreed, not implemented yet"  # the H2 of what has no model yet

MODELS: dict[str, type[BaseModel]] = {**INPUT_MODELS, **OUTPUT_MODELS, DLQ_SECTION: DeadLetter}


def _nested(annotation: object) -> tuple[type[BaseModel], bool] | None:
    """The model inside a field's annotation, and whether it is a list of them."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _nested(args[0])
    if origin in (typing.Union, types.UnionType):
        return next((n for a in args if (n := _nested(a))), None)
    if origin is list:
        inner = _nested(args[0])
        return (inner[0], True) if inner else None
    return None  # a leaf: scalars, and dicts such as `consumption` or `evidence`


def model_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """JSON paths of every field, by its JSON key: ``d30.from``, ``gaps[].date``."""
    paths = set()
    for name, field in model.model_fields.items():
        path = prefix + (field.serialization_alias or field.alias or name)
        paths.add(path)
        inner = _nested(field.annotation)
        if inner:
            paths |= model_paths(inner[0], path + ("[]." if inner[1] else "."))
    return paths


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def parse(text: str) -> tuple[dict[str, set[str]], dict[str, list[str]], dict[str, str]]:
    """(topic -> documented field paths, topic -> its section's lines, topic -> cleanup cell of the
    topic table). A ``### `topic` ...`` heading opens a topic's section; its tables list fields;
    a ``#### `a`, `b` ...`` heading's names prefix the fields of the tables under it."""
    fields: dict[str, set[str]] = {}
    lines_of: dict[str, list[str]] = {}
    cleanup: dict[str, str] = {}
    h2 = ""
    topic: str | None = None
    prefixes = [""]
    for line in text.splitlines():
        if line.startswith("## "):
            h2, topic = line[3:].strip(), None
        elif line.startswith("### "):
            names = re.findall(r"`([^`]+)`", line)
            topic = names[0] if names and h2 != PLANNED else None
            if topic is not None:
                assert topic not in fields, f"two sections for {topic}"
                fields[topic], lines_of[topic] = set(), []
            prefixes = [""]
        elif line.startswith("#### ") and topic is not None:
            prefixes = [f"{name}." for name in re.findall(r"`([^`]+)`", line)]
        elif topic is not None:
            lines_of[topic].append(line)
            if line.startswith("|") and not line.startswith("|---"):
                name = _cells(line)[0].strip("`")
                if name != "field":
                    fields[topic] |= {p + name for p in prefixes}
        elif h2 == "Topics" and line.startswith("| `"):
            cells = _cells(line)
            cleanup[cells[0].strip("`")] = cells[3]
    return fields, lines_of, cleanup


@pytest.fixture(scope="module")
def doc() -> tuple[dict[str, set[str]], dict[str, list[str]], dict[str, str]]:
    return parse(DOC.read_text(encoding="utf-8"))


def test_every_topic_has_a_section_and_no_section_is_of_an_unknown_topic(doc) -> None:
    fields, _, _ = doc
    assert set(fields) == set(MODELS)


@pytest.mark.parametrize("topic", sorted(MODELS))
def test_the_fields_of_each_topic_are_those_of_its_model(topic: str, doc) -> None:
    fields, _, _ = doc
    expected = model_paths(MODELS[topic])
    if topic in BLOCK_MODELS:  # the block form's fields, under its `#### `block`` heading
        expected |= {f"block.{path}" for path in model_paths(BLOCK_MODELS[topic])}
    documented = fields.get(topic, set())
    assert sorted(expected - documented) == [], f"fields of {topic} missing from {DOC.name}"
    assert sorted(documented - expected) == [], f"{DOC.name} names fields {topic} does not have"


def test_the_topic_table_has_every_topic_with_its_cleanup(doc) -> None:
    _, _, cleanup = doc
    specs = {spec.name: spec.config["cleanup.policy"] for spec in topics.CONTRACT_TOPICS}
    expected = {name: policy for name, policy in specs.items() if not name.endswith(".dlq")}
    assert {name for name in specs if name.endswith(".dlq")} == {topics.dlq(t) for t in topics.INPUTS}
    expected[DLQ_SECTION] = specs[topics.dlq(topics.INPUTS[0])]
    assert {name: cell.split(",")[0].split(" ")[0] for name, cell in cleanup.items()} == expected


def test_every_enumerated_dead_letter_kind_is_named(doc) -> None:
    _, lines_of, _ = doc
    section = "\n".join(lines_of[DLQ_SECTION])
    missing = [kind for kind in (*DECODE_KINDS, *ISSUE_KINDS) if f"`{kind}`" not in section]
    assert missing == []


def test_the_parser_reads_prefixes_and_skips_planned_topics() -> None:
    text = (
        "## Topics\n| topic | key | direction | cleanup |\n|---|---|---|---|\n"
        "| `a.b` | k | in | compact |\n"
        "## Outputs\n### `a.b` — key: k\n| field | type | notes |\n|---|---|---|\n| x | int | |\n"
        "#### `x`, `y[]`\n| field | type | notes |\n|---|---|---|\n| z | int | |\n"
        f"## {PLANNED}\n### `c.d`\n| field |\n|---|\n| w |\n"
    )
    fields, _, cleanup = parse(text)
    assert fields == {"a.b": {"x", "x.z", "y[].z"}}
    assert cleanup == {"a.b": "compact"}
