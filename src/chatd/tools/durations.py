"""Go duration strings (``"1h2m3.5s"``, ``"500ms"``), as the process tools take them."""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PIECE = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class DurationError(ValueError):
    pass


def parse_duration(text: str) -> float:
    """Seconds; ``"0"`` is zero. Raises :class:`DurationError` for anything else Go refuses
    (and for negative durations, which no tool takes)."""
    value = text.strip()
    if value in ("0", "+0", "-0"):
        return 0.0
    if value.startswith("-"):
        raise DurationError(f"duration {text!r} is negative")
    rest = value.removeprefix("+")
    if not rest:
        raise DurationError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(rest):
        match = _PIECE.match(rest, position)
        if match is None:
            raise DurationError(
                f"invalid duration {text!r}: use a number with a unit, like 30s, 5m or 1h30m"
            )
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return total


def format_duration(seconds: float) -> str:
    """A short Go-like rendering: ``10s``, ``1m30s``, ``1h0m0s``, ``500ms``."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds, 3)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    secs_text = f"{secs:g}s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{secs_text}"
    if minutes:
        return f"{int(minutes)}m{secs_text}"
    return secs_text
