"""Reading an operation's arguments: each getter checks the type and answers
``bad_request`` with a message that names the argument."""

from __future__ import annotations

from typing import Any

from chatd.agent import protocol
from chatd.agent.errors import OpError

_MISSING: Any = object()


def bad(message: str) -> OpError:
    return OpError(protocol.BAD_REQUEST, message)


def string(args: dict[str, Any], name: str, *, default: str | None = None) -> str:
    """A string argument; required unless ``default`` is given."""
    value = args.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is None:
            raise bad(f"the argument {name!r} is required (a string)")
        return default
    if not isinstance(value, str):
        raise bad(f"the argument {name!r} must be a string, not {_kind(value)}")
    return value


def optional_string(args: dict[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"the argument {name!r} must be a string, not {_kind(value)}")
    return value


def integer(
    args: dict[str, Any], name: str, *, default: int | None = None, minimum: int = 0
) -> int:
    """An integer argument of at least ``minimum``; required unless ``default`` is given."""
    value = args.get(name, _MISSING)
    if value is _MISSING or value is None:
        if default is None:
            raise bad(f"the argument {name!r} is required (an integer)")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"the argument {name!r} must be an integer, not {_kind(value)}")
    if value < minimum:
        raise bad(f"the argument {name!r} must be at least {minimum}, not {value}")
    return value


def boolean(args: dict[str, Any], name: str, *, default: bool = False) -> bool:
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(f"the argument {name!r} must be true or false, not {_kind(value)}")
    return value


def objects(args: dict[str, Any], name: str, *, where: str = "") -> list[dict[str, Any]]:
    """A required, non-empty list of JSON objects."""
    label = f"{where}{name}"
    value = args.get(name)
    if not isinstance(value, list) or not value:
        raise bad(f"the argument {label!r} is required (a non-empty list of objects)")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise bad(f"{label}[{index}] must be an object, not {_kind(item)}")
    return value


def string_map(args: dict[str, Any], name: str) -> dict[str, str]:
    """An optional object of string values (empty when absent)."""
    value = args.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(f"the argument {name!r} must be an object of strings, not {_kind(value)}")
    for key, item in value.items():
        if not isinstance(item, str):
            raise bad(f"{name}[{key!r}] must be a string, not {_kind(item)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
