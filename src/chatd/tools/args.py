"""Reading a tool call's arguments: wrong or missing ones are a :class:`ToolError` saying so."""

from __future__ import annotations

import uuid
from typing import Any

from chatd.tools.registry import ToolError


def string(args: dict[str, Any], name: str, *, required: bool = True) -> str:
    """A string argument; '' when optional and absent (or null)."""
    value = args.get(name)
    if value is None:
        if required:
            raise ToolError(f"{name} is required")
        return ""
    if not isinstance(value, str):
        raise ToolError(f"{name} must be a string")
    if required and not value.strip():
        raise ToolError(f"{name} is required")
    return value


def integer(args: dict[str, Any], name: str, default: int, *, minimum: int = 1) -> int:
    value = args.get(name)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ToolError(f"{name} must be an integer")
    if value < minimum:
        raise ToolError(f"{name} must be at least {minimum}")
    return value


def boolean(args: dict[str, Any], name: str) -> bool:
    value = args.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ToolError(f"{name} must be true or false")
    return value


def identifier(args: dict[str, Any], name: str) -> uuid.UUID:
    """A required UUID argument."""
    text = string(args, name)
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise ToolError(f"{name} must be a UUID, not {text!r}") from None


def string_map(args: dict[str, Any], name: str) -> dict[str, str]:
    """An optional object of string values."""
    value = args.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ToolError(f"{name} must be an object of string values")
    return dict(value)
