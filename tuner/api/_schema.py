"""The JSON schema of a sweep spec as ``POST /sweeps`` takes it, for the OpenAPI document."""

from __future__ import annotations

from typing import Any

from tuner.search_space import AUTO, bundled_search_spaces
from tuner.spec import SweepSpec

__all__ = ["spec_body_schema"]


def spec_body_schema() -> dict[str, Any]:
    """:class:`SweepSpec`'s JSON schema, self-contained (no ``$ref``), narrowed to what a
    request may name: a registered ``workload``, and a bundled ``search_space`` name,
    ``auto`` or an inline mapping (files and code are for the command line only)."""
    from workers.workloads import available_workloads

    schema = SweepSpec.model_json_schema()
    schema = _inline(schema, schema.pop("$defs", {}))
    properties = schema["properties"]
    properties["workload"] = {**properties["workload"], "enum": available_workloads()}
    inline = {k: v for k, v in properties["search_space"].items() if k != "description"}
    properties["search_space"] = {
        "description": properties["search_space"].get("description", ""),
        "anyOf": [{"type": "string", "enum": [AUTO, *bundled_search_spaces()]}, inline],
    }
    return schema


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with each ``{"$ref": "#/$defs/X", ...}`` replaced by ``defs["X"]`` (plus the
    reference's own keys, e.g. its description); pydantic's spec models are not recursive."""
    if isinstance(node, dict):
        if "$ref" in node:
            target = defs[node["$ref"].rsplit("/", 1)[-1]]
            return _inline({**target, **{k: v for k, v in node.items() if k != "$ref"}}, defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node
