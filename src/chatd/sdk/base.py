"""The base of every wire type: Go-style ``omitempty`` for optional fields."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import PydanticUndefined

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# Request fields take JSON numbers and booleans as they are, as Go's decoder does: no ``false``
# for 0, no ``"5"`` or ``5.0`` for 5, no ``1`` or ``"true"`` for true.
Int32 = Annotated[int, Field(strict=True, ge=-INT32_MAX - 1, le=INT32_MAX)]
Int64 = Annotated[int, Field(strict=True, ge=-INT64_MAX - 1, le=INT64_MAX)]
StrictBool = Annotated[bool, Field(strict=True)]
StrictFloat = Annotated[float, Field(strict=True)]


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

    # No return annotation: pydantic then documents the model's own fields as its
    # serialization schema (with ``-> Any`` every response schema would be empty).
    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if not isinstance(data, dict):
            return data
        keep = self.nullable_fields
        return {k: v for k, v in data.items() if v is not None or k in keep}


def _document_required(schema: dict[str, Any], cls: type) -> None:
    """List ``required_fields`` as required and not nullable in the model's JSON schema."""
    names: frozenset[str] = getattr(cls, "required_fields", frozenset())
    if not names:
        return
    properties: dict[str, Any] = schema.get("properties", {})
    for name in names:
        prop = properties[name]
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if len(branches) == 1:
            prop.update(branches[0])
        elif branches:
            prop["anyOf"] = branches
        prop.pop("default", None)
    schema["required"] = sorted({*schema.get("required", ()), *names})


class RequestModel(BaseModel):
    """Request bodies: unknown fields are ignored, as Go's decoder does.

    Fields are optional in Python so that a missing value gets the reference's own message from
    the route; ``required_fields`` names those the route refuses to do without, so that the
    OpenAPI document says so.
    """

    model_config = ConfigDict(extra="ignore", json_schema_extra=_document_required)

    required_fields: ClassVar[frozenset[str]] = frozenset()
