"""The base of every wire type: Go-style ``omitempty`` for optional fields."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic_core import PydanticUndefined


class WireModel(BaseModel):
    """A field left at ``None`` is omitted from JSON unless listed in ``nullable_fields``."""

    model_config = ConfigDict(populate_by_name=True)

    nullable_fields: ClassVar[frozenset[str]] = frozenset()
    # Per class, built on first use by :meth:`trusted`: every field's default in declaration
    # order (the JSON order), and the names of the required fields.
    _trusted_shape: ClassVar[tuple[dict[str, Any], frozenset[str]] | None] = None

    @classmethod
    def trusted(cls, **values: Any) -> Self:
        """An instance from values already of the field types, without validating them.

        For the per-delta streaming path, where ``model_construct`` (which resolves every
        field's default on each call) costs more than the rest of relaying the delta. Only
        for models whose fields all have plain defaults or are given here.
        """
        shape = cls.__dict__.get("_trusted_shape") or cls._build_trusted_shape()
        defaults, required = shape
        state = defaults.copy()
        state.update(values)
        if len(state) != len(defaults) or not required <= values.keys():
            raise TypeError(f"{cls.__name__}: missing or unknown fields in {sorted(values)}")
        obj = cls.__new__(cls)
        _set = object.__setattr__
        _set(obj, "__dict__", state)
        _set(obj, "__pydantic_fields_set__", set(values))
        _set(obj, "__pydantic_extra__", None)
        _set(obj, "__pydantic_private__", None)
        return obj

    @classmethod
    def _build_trusted_shape(cls) -> tuple[dict[str, Any], frozenset[str]]:
        defaults: dict[str, Any] = {}
        required = set()
        for name, info in cls.model_fields.items():
            if info.default_factory is not None:
                raise TypeError(f"{cls.__name__}.{name} has a default factory")
            defaults[name] = info.default
            if info.default is PydanticUndefined:
                required.add(name)
        shape = (defaults, frozenset(required))
        cls._trusted_shape = shape
        return shape

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
