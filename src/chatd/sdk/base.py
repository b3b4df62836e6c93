"""The base of every wire type: Go-style ``omitempty`` for optional fields."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class WireModel(BaseModel):
    """A field left at ``None`` is omitted from JSON unless listed in ``nullable_fields``."""

    model_config = ConfigDict(populate_by_name=True)

    nullable_fields: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        keep = self.nullable_fields
        return {k: v for k, v in data.items() if v is not None or k in keep}


class RequestModel(BaseModel):
    """Request bodies: unknown fields are ignored, as Go's decoder does."""

    model_config = ConfigDict(extra="ignore")
