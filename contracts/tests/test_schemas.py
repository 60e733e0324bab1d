import copy
import json
from typing import Any

import jsonschema
import pytest

from contracts import EVENT_TYPES
from contracts.examples import EXAMPLES
from contracts.schemas import breaking_changes, committed, generate, render, schema_of

REGENERATE = "run `uv run python -m contracts.schemas`"


def test_committed_schemas_are_generated_ones() -> None:
    files = committed()
    for name, schema in generate().items():
        assert name in files, f"contracts/schemas/{name} is missing: {REGENERATE}"
        assert render(files[name]) == render(schema), f"contracts/schemas/{name} is stale: {REGENERATE}"


@pytest.mark.parametrize("name", sorted(committed()))
def test_committed_schema_still_holds(name: str) -> None:
    event, _, version = name.removesuffix(".json").rpartition(".v")
    model = EVENT_TYPES.get((event, int(version)))
    assert model is not None, (
        f"{name} is committed but {event} v{version} has no model in EVENT_TYPES: "
        "keep the old model (topics.SUPERSEDED) or retire the version on purpose (git rm the file)"
    )
    reasons = breaking_changes(committed()[name], schema_of(model))
    assert not reasons, (
        f"{event} v{version} changed incompatibly ({'; '.join(reasons)}): "
        f"bump {model.__name__}.version and keep the old model in topics.SUPERSEDED"
    )


def test_every_model_and_field_is_described() -> None:
    def check(where: str, schema: dict[str, Any]) -> None:
        assert schema.get("description"), f"{where} has no description"
        for prop, sub in schema.get("properties", {}).items():
            assert sub.get("description"), f"{where}.{prop} has no description"

    for name, schema in generate().items():
        check(name, schema)
        for def_name, sub in schema.get("$defs", {}).items():
            check(f"{name}#{def_name}", sub)


def _money() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"amount_cents": {"type": "integer"}, "currency": {"type": "string", "default": "EUR"}},
        "required": ["amount_cents"],
    }


OLD: dict[str, Any] = {
    "$defs": {"Money": _money()},
    "type": "object",
    "properties": {
        "type": {"const": "Thing", "type": "string"},
        "thing_id": {"type": "string", "format": "uuid"},
        "kind": {"enum": ["a", "b"], "type": "string"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
        "price": {"$ref": "#/$defs/Money", "description": "Price."},
        "at": {"type": "string", "format": "date-time"},
    },
    "required": ["type", "thing_id", "kind", "price", "at"],
}


def changed(edit: Any) -> list[str]:
    new = copy.deepcopy(OLD)
    edit(new)
    return breaking_changes(OLD, new)


def test_identical_schemas_are_compatible() -> None:
    assert breaking_changes(OLD, copy.deepcopy(OLD)) == []


def test_removed_property_breaks() -> None:
    assert changed(lambda s: s["properties"].pop("note")) == ["property note removed"]


def test_retyped_property_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["thing_id"] = {"type": "integer"}

    assert changed(edit) == ["property thing_id: type changed from string (uuid) to integer"]


def test_format_change_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["at"]["format"] = "date"

    assert changed(edit) == ["property at: format changed from string (date-time) to string (date)"]


def test_enum_change_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["kind"]["enum"] = ["a", "b", "c"]

    assert changed(edit) == ['property kind: enum changed from enum ["a", "b"] to enum ["a", "b", "c"]']


def test_enum_order_does_not_matter() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["kind"]["enum"] = ["b", "a"]

    assert changed(edit) == []


def test_nullable_becoming_mandatory_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["note"] = {"type": "string"}

    assert changed(edit) == ["property note: type changed from null | string to string"]


def test_new_required_property_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["size"] = {"type": "integer"}
        s["required"].append("size")

    assert changed(edit) == ["new required property size"]


def test_optional_property_becoming_required_breaks() -> None:
    assert changed(lambda s: s["required"].append("note")) == ["property note is now required"]


def test_new_optional_property_is_compatible() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["size"] = {"type": "integer", "default": 1}

    assert changed(edit) == []


def test_descriptions_titles_and_defaults_are_ignored() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["thing_id"]["description"] = "Id."
        s["properties"]["thing_id"]["title"] = "Thing Id"
        s["$defs"]["Money"]["properties"]["currency"]["default"] = "USD"

    assert changed(edit) == []


def test_nested_model_retyped_field_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["$defs"]["Money"]["properties"]["amount_cents"] = {"type": "number"}

    assert changed(edit) == ["property price.amount_cents: type changed from integer to number"]


def test_nested_model_new_required_field_breaks() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["$defs"]["Money"]["properties"]["scale"] = {"type": "integer"}
        s["$defs"]["Money"]["required"].append("scale")

    assert changed(edit) == ["new required property price.scale"]


def test_nested_model_inlined_instead_of_referenced_is_compatible() -> None:
    def edit(s: dict[str, Any]) -> None:
        s["properties"]["price"] = {"allOf": [_money()]}
        del s["$defs"]

    assert changed(edit) == []


def test_real_model_change_is_detected() -> None:
    from contracts.events.billing import TokenPurchased

    old = schema_of(TokenPurchased)
    new = copy.deepcopy(old)
    new["$defs"]["Money"]["properties"]["amount_cents"]["type"] = "string"
    del new["properties"]["lot_id"]
    assert breaking_changes(old, new) == [
        "property lot_id removed",
        "property amounts.net.amount_cents: type changed from integer to string",
        "property amounts.vat.amount_cents: type changed from integer to string",
        "property amounts.gross.amount_cents: type changed from integer to string",
    ]


def test_examples_are_valid_against_committed_schemas() -> None:
    files = committed()
    for model, event in EXAMPLES.items():
        schema = files[model.schema_filename()]
        jsonschema.Draft202012Validator(schema).validate(json.loads(event.model_dump_json()))
