"""Parsing of path, query and body input with the reference's messages.

Query parameters are declared as plain strings on the routes (so the OpenAPI document stays
honest about what is accepted) and parsed here, collecting every problem before answering.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import pydantic
from fastapi import Request
from starlette.requests import ClientDisconnect

from chatd.api import json_guard
from chatd.api.errors import ApiError
from chatd.sdk.errors import ValidationError

M = TypeVar("M", bound=pydantic.BaseModel)

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# RFC 3339 date-times as Go's time.RFC3339 layout reads them: seconds always, any fraction,
# an offset always (Z or +hh:mm).
RFC3339_LAYOUT = "2006-01-02T15:04:05Z07:00"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})", re.ASCII)


def parse_uuid_path(raw: str) -> uuid.UUID:
    if raw == "":
        raise ApiError(400, "Missing UUID in URL.")
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise ApiError(400, f'Invalid UUID "{raw}".', f"invalid UUID: {exc}") from None


def _go_uint_error(raw: str) -> str:
    return f'strconv.ParseUint: parsing "{raw}": invalid syntax'


class QueryParams:
    """Reads query parameters one by one; :meth:`finish` raises with every error found."""

    def __init__(self, request: Request) -> None:
        self._params = request.query_params
        self.errors: list[ValidationError] = []

    def _single(self, name: str) -> str | None:
        values = self._params.getlist(name)
        if len(values) > 1:
            self.errors.append(
                ValidationError(
                    field=name,
                    detail=(
                        f'Query param "{name}" provided more than once, found {len(values)} '
                        "times. Only provide 1 instance of this query param."
                    ),
                )
            )
            return None
        if not values or values[0] == "":
            return None
        return values[0]

    def string(self, name: str, default: str = "") -> str:
        raw = self._single(name)
        return default if raw is None else raw

    def strings(self, name: str) -> list[str]:
        return [v for v in self._params.getlist(name) if v != ""]

    def positive_int32(self, name: str, default: int) -> int:
        """An int32 that is >= 0 (the reference calls that "positive")."""
        raw = self._single(name)
        if raw is None:
            return default
        value = _parse_int(raw)
        if value is None or value < 0 or value > INT32_MAX:
            self.errors.append(
                ValidationError(
                    field=name,
                    detail=(
                        f'Query param "{name}" must be a valid 32-bit positive integer: '
                        + _go_uint_error(raw)
                    ),
                )
            )
            return default
        return value

    def int64(self, name: str, default: int) -> int:
        raw = self._single(name)
        if raw is None:
            return default
        value = _parse_int(raw)
        if value is None or value < -(2**63) or value > INT64_MAX:
            self.errors.append(
                ValidationError(
                    field=name, detail=f'Query param "{name}" must be a valid 64-bit integer'
                )
            )
            return default
        return value

    def uuid(self, name: str) -> uuid.UUID | None:
        raw = self._single(name)
        if raw is None:
            return None
        try:
            return uuid.UUID(raw)
        except ValueError:
            self.errors.append(
                ValidationError(field=name, detail=f'Query param "{name}" must be a valid uuid')
            )
            return None

    def time(self, name: str) -> dt.datetime | None:
        """An RFC 3339 date-time (None when absent or invalid; invalid is an error)."""
        raw = self._single(name)
        if raw is None:
            return None
        try:
            if not _RFC3339.fullmatch(raw):
                raise ValueError("not an RFC 3339 date-time")
            value = dt.datetime.fromisoformat(raw)
            value.astimezone(dt.UTC)  # an offset can push it outside the years 1 to 9999
        except (ValueError, OverflowError) as exc:
            self.errors.append(
                ValidationError(
                    field=name,
                    detail=(
                        f'Query param "{name}" must be a valid date format ({RFC3339_LAYOUT}): '
                        f"{exc}"
                    ),
                )
            )
            return None
        return value

    def reject_unknown(self, known: set[str]) -> None:
        """An error for each parameter not in ``known``."""
        for name in dict.fromkeys(self._params.keys()):
            if name not in known:
                self.errors.append(
                    ValidationError(field=name, detail=f'"{name}" is not a valid query param')
                )

    def finish(self, message: str = "Query parameters have invalid values.") -> None:
        if self.errors:
            raise ApiError(400, message, validations=self.errors)


def _parse_int(raw: str) -> int | None:
    text = raw.strip()
    if text != raw or not text or not text.lstrip("+-").isdigit():
        return None
    return int(text)


async def read_capped(request: Request, limit: int, too_large: Callable[[], ApiError]) -> bytes:
    """The body, or ``too_large()`` (closing the connection) when it exceeds ``limit`` bytes.

    Clients such as urllib and requests send the whole body before reading an answer, so one
    refused with the body unread would see a connection reset instead. A refused body is read
    and discarded up to twice ``limit`` first; beyond that, or when the client waits for
    ``100 Continue`` before sending, the answer goes out at once.
    """
    bound = 2 * limit
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        waits = request.headers.get("expect", "").lower() == "100-continue"
        if not waits and int(declared) <= bound:
            await _discard(request.stream(), bound)
        raise _closing(too_large())
    body = bytearray()
    stream = request.stream()
    async for chunk in stream:
        body += chunk
        if len(body) > limit:
            await _discard(stream, bound - len(body))
            raise _closing(too_large())
    return bytes(body)


async def _discard(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop the rest of ``stream`` while at most ``budget`` bytes come."""
    try:
        async for chunk in stream:
            budget -= len(chunk)
            if budget < 0:
                return
    except ClientDisconnect:
        return


def _closing(error: ApiError) -> ApiError:
    error.headers["Connection"] = "close"
    return error


def _body_too_large() -> ApiError:
    return ApiError(400, "Request body must be valid JSON.", "http: request body too large")


def _is_json_media_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _unsupported_media_type(content_type: str | None) -> ApiError:
    got = f'"{content_type}"' if content_type is not None else "no Content-Type"
    return ApiError(
        415,
        "Unsupported media type.",
        f'The request body must be sent as "application/json", got {got}.',
    )


async def read_json(request: Request, model: type[M], limit: int = 1 << 20) -> M:
    """Parse a JSON body into ``model`` with the reference's 400s.

    The body must be declared ``application/json`` (or ``application/*+json``), else 415:
    browsers send other types (``text/plain``, forms) to other sites without asking first, and
    a JSON API that read them anyway could be driven from any page. A request without
    ``Content-Type`` is let through only with an empty body, which then fails as JSON (400) as
    before; a route whose body is optional would treat it as absent.

    Every JSON body passes here, so this is where input no later code can take is refused:
    nesting deeper than :data:`json_guard.MAX_DEPTH`, NUL characters and lone surrogates.
    """
    content_type = request.headers.get("content-type")
    body = await read_capped(request, limit, _body_too_large)
    if content_type is not None and not _is_json_media_type(content_type):
        raise _unsupported_media_type(content_type)
    if content_type is None and body:
        raise _unsupported_media_type(None)
    try:
        data = json.loads(body)
    except RecursionError:
        raise ApiError(400, "Request body must be valid JSON.", json_guard.TOO_DEEP) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "Request body must be valid JSON.", str(exc)) from None
    problem = json_guard.problem(data)
    if problem is not None:
        raise ApiError(400, "Request body must be valid JSON.", problem)
    if not isinstance(data, dict):
        raise ApiError(
            400,
            "Request body must be valid JSON.",
            f"json: cannot unmarshal {type(data).__name__} into an object",
        )
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        validations = [
            ValidationError(field=".".join(str(p) for p in e["loc"]) or "body", detail=e["msg"])
            for e in exc.errors()
        ]
        raise ApiError(
            400, "Request body must be valid JSON.", validations[0].detail, validations
        ) from None
