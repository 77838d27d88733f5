"""JSON Schemas of the input topics, written from the same records that validation uses.

`python -m topics.schema` rewrites `topics/schemas/*.json`; a test checks the shipped files
are current. Integration engines can validate with them before publishing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson

from topics.names import TOPIC_OF_TYPE
from topics.records import RECORD_TYPES

SCHEMA_DIR = Path(__file__).with_name("schemas")
DIALECT = "https://json-schema.org/draft/2020-12/schema"


def object_schema(cls: type, type_name: str | None = None) -> dict[str, Any]:
    from topics.validation import field_specs

    properties: dict[str, Any] = {}
    for spec in field_specs(cls):
        schema = spec.kind.schema()
        if spec.kind.nullable:
            schema = {"anyOf": [schema, {"type": "null"}]}
        properties[spec.name] = schema
    if type_name is not None:
        properties["type"] = {"const": type_name}
    required = [spec.name for spec in field_specs(cls) if spec.required]
    # Unknown fields are allowed: producers may send more than v1 needs.
    return {"type": "object", "required": required, "properties": properties}


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
        schema["oneOf"] = variants
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
