"""JSON Schemas of the input topics, written from the same records that validation uses.

Each record type's schema is `topics.fields.object_schema` (its fields' kinds and
descriptions); this module gathers them per topic into the published documents.

`python -m topics.schema` rewrites `topics/schemas/*.json`; a test checks the shipped files
are current. Integration engines can validate with them before publishing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from topics.fields import object_schema
from topics.names import TOPIC_OF_TYPE
from topics.records import RECORD_TYPES

SCHEMA_DIR = Path(__file__).with_name("schemas")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def topic_schema(topic: str) -> dict[str, Any]:
    types = [name for name, t in TOPIC_OF_TYPE.items() if t == topic]
    variants = [object_schema(RECORD_TYPES[name], name) for name in types]
    schema: dict[str, Any] = {
        "$schema": DIALECT,
        "$id": f"https://sunes-stream.invalid/schemas/{topic}.schema.json",
        "title": f"Messages of topic {topic} (event contract v1)",
    }
    if len(variants) == 1:
        schema.update(variants[0])
    else:
        schema["oneOf"] = [
            {"title": name, **variant} for name, variant in zip(types, variants, strict=True)
        ]
    return schema


def rendered_schemas() -> dict[str, bytes]:
    """File name → content for every input topic."""
    topics = sorted(set(TOPIC_OF_TYPE.values()))
    return {
        f"{topic}.schema.json": orjson.dumps(
            topic_schema(topic), option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE
        )
        for topic in topics
    }


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, content in rendered_schemas().items():
        (SCHEMA_DIR / name).write_bytes(content)
        print(f"wrote {SCHEMA_DIR / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
