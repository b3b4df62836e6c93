"""The error envelope every non-2xx answer uses."""

from __future__ import annotations

from chatd.sdk.base import WireModel


class ValidationError(WireModel):
    field: str
    detail: str


class Response(WireModel):
    message: str
    detail: str | None = None
    validations: list[ValidationError] | None = None
