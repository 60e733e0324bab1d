"""JSON Schemas of the events and the check that a change keeps them compatible.

`python -m contracts.schemas` rewrites contracts/schemas/<Event>.v<N>.json from the models.
"""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.base import Event
from contracts.topics import EVENT_TYPES

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]


def schema_of(model: type[Event]) -> Schema:
    return {"$schema": JSON_SCHEMA_DIALECT, "$id": model.dataschema(), **model.model_json_schema()}


def generate() -> dict[str, Schema]:
    """Filename -> JSON Schema of every registered event version."""
    return {model.schema_filename(): schema_of(model) for model in EVENT_TYPES.values()}


def render(schema: Schema) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def committed(directory: Path = SCHEMA_DIR) -> dict[str, Schema]:
    return {path.name: json.loads(path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.json"))}


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Rewrites the generated schemas; returns the names of the files that changed.

    Files without a model are left alone: retiring an event version is a deliberate `git rm`.
    """
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name, schema in sorted(generate().items()):
        path = directory / name
        text = render(schema)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(name)
    return changed


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Why switching an event version's schema from `old` to `new` breaks its consumers or its old messages.

    Breaking: a property removed, its type, format, const or enum changed, a property newly required.
    Adding an optional property is not breaking; descriptions, titles, defaults and bounds are ignored.
    """
    reasons: list[str] = []
    _compare(old, new, _Roots(old, new), "", reasons)
    return reasons


@dataclass(frozen=True)
class _Roots:
    old: Schema
    new: Schema


def _resolve(schema: Schema, root: Schema) -> Schema:
    for _ in range(64):
        if "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError(f"unsupported $ref {ref!r}")
            target: Any = root
            for part in ref[2:].split("/"):
                target = target[part]
            schema = {**target, **{key: value for key, value in schema.items() if key != "$ref"}}
        elif len(schema.get("allOf", ())) == 1:
            schema = {**schema["allOf"][0], **{key: value for key, value in schema.items() if key != "allOf"}}
        else:
            return schema
    raise ValueError("$ref chain too deep")


def _variants(schema: Schema, root: Schema) -> list[Schema]:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [variant for sub in schema[key] for variant in _variants(sub, root)]
    if isinstance(schema.get("type"), list):
        return [{**schema, "type": kind} for kind in schema["type"]]
    return [schema]


def _kind(variant: Schema) -> str:
    if "const" in variant:
        return f"const {json.dumps(variant['const'])}"
    if "enum" in variant:
        return f"enum {json.dumps(sorted(variant['enum'], key=json.dumps))}"
    kind = str(variant.get("type", "any"))
    if "format" in variant:
        kind += f" ({variant['format']})"
    return kind


def _label(path: str) -> str:
    return f"property {path}" if path else "the event"


def _compare(old: Schema, new: Schema, roots: _Roots, path: str, reasons: list[str]) -> None:
    old_variants, new_variants = _variants(old, roots.old), _variants(new, roots.new)
    old_kinds = sorted(_kind(variant) for variant in old_variants)
    new_kinds = sorted(_kind(variant) for variant in new_variants)
    if old_kinds != new_kinds:
        what = "type"
        if all(kind.startswith("enum") for kind in (*old_kinds, *new_kinds)):
            what = "enum"
        elif [kind.split(" ")[0] for kind in old_kinds] == [kind.split(" ")[0] for kind in new_kinds]:
            what = "format"
        reasons.append(f"{_label(path)}: {what} changed from {' | '.join(old_kinds)} to {' | '.join(new_kinds)}")
        return
    for kind in ("object", "array"):
        old_of = sorted((v for v in old_variants if v.get("type") == kind), key=lambda v: str(v.get("title")))
        new_of = sorted((v for v in new_variants if v.get("type") == kind), key=lambda v: str(v.get("title")))
        for old_variant, new_variant in zip(old_of, new_of, strict=True):
            if kind == "object":
                _compare_objects(old_variant, new_variant, roots, path, reasons)
            elif "items" in old_variant and "items" in new_variant:
                _compare(old_variant["items"], new_variant["items"], roots, f"{path}[]", reasons)


def _compare_objects(old: Schema, new: Schema, roots: _Roots, path: str, reasons: list[str]) -> None:
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, old_prop in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            reasons.append(f"property {child} removed")
        else:
            _compare(old_prop, new_props[name], roots, child, reasons)
    for name in new_props:
        child = f"{path}.{name}" if path else name
        if name in new_required and name not in old_required:
            reasons.append(
                f"property {child} is now required" if name in old_props else f"new required property {child}"
            )
    old_extra, new_extra = old.get("additionalProperties"), new.get("additionalProperties")
    if isinstance(old_extra, dict) and isinstance(new_extra, dict):
        _compare(old_extra, new_extra, roots, f"{path}{{*}}", reasons)


def main() -> None:
    changed = write()
    print(f"{len(changed)} schema file(s) rewritten in {SCHEMA_DIR}" + "".join(f"\n  {n}" for n in changed))
    stale = sorted(set(committed()) - set(generate()))
    for name in stale:
        print(f"warning: {name} has no model in EVENT_TYPES (keep the old model, or git rm it to retire it)")


if __name__ == "__main__":
    main()
