"""Generate the JSON Schema of every contract topic into ``schemas/json/``.

    python -m schemas.jsonschema          # (re)write the files
    python -m schemas.jsonschema --check  # exit 1 when a file is missing or stale

One file per topic (``schemas/json/<topic>.json``) and ``dlq.json`` for every ``*.dlq`` topic;
``meter.readings.json`` accepts either form of the topic (a single reading or a block).
Inputs are described as producers must write them (validation mode), outputs as gridpulse
writes them (serialization mode, with the JSON keys such as ``0_30``). Output schemas do not
forbid additional properties, whatever the Python model does: the contract lets us add fields,
and a consumer validating against an older schema must keep working.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from schemas.models import BLOCK_MODELS, INPUT_MODELS, OUTPUT_MODELS, DeadLetter

JSON_DIR = Path(__file__).resolve().parent / "json"
DLQ_SCHEMA_NAME = "dlq"
_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _allow_additional(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            del node["additionalProperties"]
        for v in node.values():
            _allow_additional(v)
    elif isinstance(node, list):
        for v in node:
            _allow_additional(v)


def topic_schema(
    name: str, model: type[BaseModel], mode: Literal["validation", "serialization"]
) -> dict[str, Any]:
    """The JSON Schema document of one topic (``name`` is the topic, or ``dlq``)."""
    version: int = getattr(model, "schema_version", 1)
    schema = model.model_json_schema(by_alias=True, mode=mode)
    if mode == "serialization":
        _allow_additional(schema)
    return {
        "$schema": _DRAFT,
        "$id": f"urn:gridpulse:schema:{name}:v{version}",
        "x-topic": f"*.{DLQ_SCHEMA_NAME}" if name == DLQ_SCHEMA_NAME else name,
        "x-schema-version": version,
        **schema,
    }


def either_form(single: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    """One topic document accepting a single value or a block: ``anyOf`` the two models' schemas
    (each under ``$defs`` by its title), the header fields of the single form's document."""
    head = {k: single[k] for k in ("$schema", "$id", "x-topic", "x-schema-version")}
    defs: dict[str, Any] = {}
    forms = []
    for doc in (single, block):
        body = {k: v for k, v in doc.items() if k not in head}
        defs.update(body.pop("$defs", {}))
        defs[body["title"]] = body
        forms.append({"$ref": f"#/$defs/{body['title']}"})
    return {**head, "title": single["title"], "anyOf": forms, "$defs": defs}


def render_all() -> dict[str, str]:
    """File name -> file text of every schema, as ``--check`` expects them on disk."""
    docs: dict[str, dict[str, Any]] = {}
    for topic, model in INPUT_MODELS.items():
        docs[topic] = topic_schema(topic, model, "validation")
        if topic in BLOCK_MODELS:  # either form on the topic
            docs[topic] = either_form(docs[topic], topic_schema(topic, BLOCK_MODELS[topic], "validation"))
    for topic, model in OUTPUT_MODELS.items():
        docs[topic] = topic_schema(topic, model, "serialization")
    # written by us, read by the people who replay dead letters
    docs[DLQ_SCHEMA_NAME] = topic_schema(DLQ_SCHEMA_NAME, DeadLetter, "serialization")
    return {
        f"{name}.json": json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for name, doc in docs.items()
    }


def stale_files(directory: Path | None = None) -> list[str]:
    """Schema files that are missing or differ from what the models generate."""
    directory = directory or JSON_DIR
    stale = []
    for fname, text in render_all().items():
        path = directory / fname
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(fname)
    return stale


def write_all(directory: Path | None = None) -> list[str]:
    """Write the schemas that changed; returns their file names."""
    directory = directory or JSON_DIR
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale_files(directory)
    rendered = render_all()
    for fname in changed:
        (directory / fname).write_text(rendered[fname], encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.jsonschema", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a schema file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for fname in stale:
            print(f"stale: {JSON_DIR / fname} (run `python -m schemas.jsonschema`)", file=sys.stderr)
        return 1 if stale else 0
    for fname in write_all():
        print(f"wrote {JSON_DIR / fname}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
