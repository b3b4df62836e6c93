"""The OpenAPI document: request bodies parsed by hand, and the WebSocket routes.

Routes parse JSON bodies themselves (so validation runs in the reference's order), so they
declare their body with :func:`json_body`, which also registers the schema as a component.
WebSocket routes are documented as plain GET operations, as the reference's document does.
Path and query values are also parsed by hand (for the reference's messages), so they are
declared as strings and their documented schema says what the parser accepts.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Path
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from chatd.sdk.errors import ValidationError

_BODY_MODELS: dict[str, type[BaseModel]] = {}
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}
_WEBSOCKET_PATHS: dict[str, dict[str, Any]] = {}


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``model``."""
    _BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        },
        "responses": {
            "415": {
                "description": "The body is not declared application/json",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Response"}}
                },
            }
        },
    }


def uuid_path(description: str) -> Any:
    """A ``{param}`` that must be a UUID."""
    return Path(description=description, json_schema_extra={"format": "uuid"})


def int64_path(description: str, minimum: int | None = None) -> Any:
    """A ``{param}`` that must be a 64-bit integer (at least ``minimum``)."""
    schema: dict[str, Any] = {"type": "integer", "format": "int64"}
    if minimum is not None:
        schema["minimum"] = minimum
    return Path(description=description, json_schema_extra=schema)


def query_parameter(
    name: str, schema: dict[str, Any], description: str, *, required: bool = False
) -> dict[str, Any]:
    """``openapi_extra`` documenting a query parameter the route reads by hand."""
    return {
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": required,
                "description": description,
                "schema": schema,
            }
        ]
    }


def raw_body(*media_types: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is raw bytes of any of ``media_types``."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {
        "requestBody": {
            "required": True,
            "content": {t: binary for t in media_types or ("application/octet-stream",)},
        }
    }


def websocket_route(
    path: str,
    *,
    summary: str,
    tag: str,
    model: type[BaseModel] | None,
    parameters: list[dict[str, Any]],
    status: str = "200",
) -> None:
    """Document a WebSocket route as the reference does: a GET returning the event schema."""
    response: dict[str, Any] = {"description": "Switching Protocols" if status == "101" else "OK"}
    if model is not None:
        _EXTRA_MODELS[model.__name__] = model
        response["content"] = {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        }
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Response"}}},
    }
    _WEBSOCKET_PATHS[path] = {
        "get": {
            "tags": [tag],
            "summary": summary,
            "description": "WebSocket. " + summary,
            "operationId": summary.lower().replace(" ", "_"),
            "parameters": parameters,
            "responses": {status: response, "400": error, "401": error, "404": error},
        }
    }


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title="chatd", version=app.version, routes=app.routes, description=app.description
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in [*_BODY_MODELS.values(), *_EXTRA_MODELS.values()]:
            model_schema = model.model_json_schema(
                ref_template="#/components/schemas/{model}", by_alias=True
            )
            components.update(model_schema.pop("$defs", {}))
            components.setdefault(model.__name__, model_schema)
        schema.setdefault("paths", {}).update(_WEBSOCKET_PATHS)
        _drop_fastapi_422(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_fastapi_422(schema: dict[str, Any]) -> None:
    """chatd never answers 422 (validation failures are 400 with the envelope)."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    components.pop("HTTPValidationError", None)
    # FastAPI's own ValidationError schema shares our envelope's name: put ours back.
    components["ValidationError"] = ValidationError.model_json_schema()
