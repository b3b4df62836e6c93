"""Building the tools' argument schemas: ``{"type": "object", "properties", "required"?}``."""

from __future__ import annotations

from typing import Any

PATH: dict[str, Any] = {
    "type": "string",
    "description": "Absolute path, or relative to the workspace directory.",
}


def obj(properties: dict[str, Any], *required: str) -> dict[str, Any]:
    """An object schema; ``required`` is left out when empty (as the reference sends it)."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema
