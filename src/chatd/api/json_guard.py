"""What a parsed JSON body must satisfy before anything else reads it.

A body can be valid JSON and still be unusable: nested so deep that recursive code (pydantic,
``json.dumps``, the provider SDKs) runs out of stack, or holding strings no database column or
UTF-8 encoder takes (a NUL, a lone UTF-16 surrogate such as ``"\\ud800"``). :func:`problem`
walks the value once, iteratively, and names the first such problem.
"""

from __future__ import annotations

MAX_DEPTH = 64
TOO_DEEP = f"JSON nesting is deeper than {MAX_DEPTH} levels"
NUL = "strings must not contain NUL characters"
SURROGATE = "strings must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff)"


def string_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored or encoded, or None."""
    if "\x00" in text:
        return NUL
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE
    return None


def problem(value: object, max_depth: int = MAX_DEPTH) -> str | None:
    """The first problem in parsed JSON ``value`` (containers, then strings), or None."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            found = string_problem(item)
            if found is not None:
                return found
        elif isinstance(item, dict | list):
            if depth > max_depth:
                return TOO_DEEP
            if isinstance(item, dict):
                for key, child in item.items():
                    found = string_problem(key)
                    if found is not None:
                        return found
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
    return None
