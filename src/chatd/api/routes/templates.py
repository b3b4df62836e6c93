"""Workspace templates: listed by any member of the organization, managed by its admins.

Administrators add ``external`` and ``command`` templates (the ``local`` ones are built in,
``scratch`` and ``git``, and cannot be deleted; only their display name and description
change). A ``command`` template's command runs on the server's host, unsandboxed, as the
server's user: only site owners create one or change its command (an organization's admins
get 403). A template's ``command`` is shown to administrators only. Changes are audited.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from chatd.api.audit import audited_write
from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, bad_request, forbidden, not_found
from chatd.api.openapi import json_body, uuid_path
from chatd.api.org_param import OrganizationPath, can_manage, resolve_org
from chatd.api.params import parse_uuid_path, read_json
from chatd.authz import Actor
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.errors import ValidationError
from chatd.sdk.workspaces import (
    CreateTemplateRequest,
    Template,
    TemplateKind,
    TemplateParameterRequest,
    UpdateTemplateRequest,
)
from chatd.store import templates as tq
from chatd.store.db import Database
from chatd.store.sql import RowDict
from chatd.workspace import rules

router = APIRouter(prefix="/api/v2", tags=["Templates"], responses=ERROR_RESPONSES)

TemplatePath = Annotated[str, uuid_path("Template ID.")]
CREATABLE_KINDS = (TemplateKind.external, TemplateKind.command)
BUILTIN_FIXED = "A built-in template's name, command and parameters cannot be changed."
OWNERS_ONLY = (
    "Only site owners may set a command template's command: it runs on the server's host."
)


def _view(row: RowDict, actor: Actor) -> Template:
    template = rules.template_view(row)
    if not can_manage(actor, template.organization_id):
        template.command = None
    return template


async def _load(db: Database, actor: Actor, raw: str) -> RowDict:
    """The template, if the caller belongs to its organization (404 otherwise)."""
    row = await db.run_read(tq.get_template, parse_uuid_path(raw))
    if row is None or not (actor.is_owner or actor.is_member(row["organization_id"])):
        raise not_found()
    return row


def _require_manager(actor: Actor, org_id: uuid.UUID) -> None:
    if not can_manage(actor, org_id):
        raise forbidden()


def _require_site_owner(actor: Actor) -> None:
    """A command is code run on the server's host: a site owner's decision."""
    if not actor.is_owner:
        raise forbidden(OWNERS_ONLY)


def _parameters(items: list[TemplateParameterRequest]) -> list[dict[str, Any]]:
    return rules.template_parameters([item.model_dump() for item in items])


def _command(raw: str | None) -> str:
    command = (raw or "").strip()
    if not command:
        raise ApiError(
            400,
            "A command template needs a command.",
            validations=[_validation("command", "command is required for kind command")],
        )
    return rules.check_text(command, "command", rules.MAX_COMMAND)


def _validation(field: str, detail: str) -> ValidationError:
    return ValidationError(field=field, detail=detail)


@router.get(
    "/organizations/{organization}/templates",
    response_model=list[Template],
    summary="List workspace templates",
)
async def list_templates(
    organization: OrganizationPath, db: DB, actor: CurrentActor
) -> list[Template]:
    org_id = await resolve_org(db, actor, organization)
    rows = await db.run_read(tq.list_templates, org_id)
    return [_view(row, actor) for row in rows]


@router.post(
    "/organizations/{organization}/templates",
    status_code=201,
    response_model=Template,
    summary="Create a workspace template",
    openapi_extra=json_body(CreateTemplateRequest),
)
async def create_template(
    organization: OrganizationPath, request: Request, db: DB, actor: CurrentActor
) -> Template:
    org_id = await resolve_org(db, actor, organization)
    _require_manager(actor, org_id)
    body = await read_json(request, CreateTemplateRequest)
    name = rules.check_name(body.name, "template")
    if body.kind not in CREATABLE_KINDS:
        raise ApiError(
            400,
            "Invalid template kind.",
            validations=[_validation("kind", "kind must be one of: external, command")],
        )
    if body.kind == TemplateKind.command:
        _require_site_owner(actor)
    command = _command(body.command) if body.kind == TemplateKind.command else None
    if body.kind == TemplateKind.external and body.command:
        raise bad_request("Only a command template takes a command.")
    values = {
        "organization_id": org_id,
        "name": name,
        "display_name": rules.check_text(
            (body.display_name or "").strip(), "display_name", rules.MAX_DISPLAY_NAME
        ),
        "description": rules.check_text(
            body.description or "", "description", rules.MAX_DESCRIPTION
        ),
        "kind": body.kind,
        "builtin": False,
        "setup": None,
        "command": command,
        "parameters": _parameters(body.parameters or []),
    }
    async with audited_write(
        db,
        request,
        AuditAction.create,
        ResourceType.template,
        user_id=actor.user_id,
        status_code=201,
    ) as (conn, change):
        try:
            row = await tq.insert_template(conn, db.now(), values)
        except tq.TemplateExists:
            raise ApiError(409, f"A template named {name!r} already exists.") from None
        change.resource_id = row["id"]
        change.resource_target = name
        change.fields = {"kind": body.kind}
    return _view(row, actor)


@router.get("/templates/{template}", response_model=Template, summary="Get a workspace template")
async def get_template(template: TemplatePath, db: DB, actor: CurrentActor) -> Template:
    return _view(await _load(db, actor, template), actor)


@router.patch(
    "/templates/{template}",
    response_model=Template,
    summary="Update a workspace template",
    openapi_extra=json_body(UpdateTemplateRequest),
)
async def update_template(
    template: TemplatePath, request: Request, db: DB, actor: CurrentActor
) -> Template:
    row = await _load(db, actor, template)
    _require_manager(actor, row["organization_id"])
    body = await read_json(request, UpdateTemplateRequest)
    if row["builtin"] and (
        body.name is not None or body.command is not None or body.parameters is not None
    ):
        raise bad_request(BUILTIN_FIXED)
    values: dict[str, Any] = {}
    if body.name is not None:
        values["name"] = rules.check_name(body.name, "template")
    if body.display_name is not None:
        values["display_name"] = rules.check_text(
            body.display_name.strip(), "display_name", rules.MAX_DISPLAY_NAME
        )
    if body.description is not None:
        values["description"] = rules.check_text(
            body.description, "description", rules.MAX_DESCRIPTION
        )
    if body.command is not None:
        if row["kind"] != TemplateKind.command:
            raise bad_request("Only a command template takes a command.")
        _require_site_owner(actor)
        values["command"] = _command(body.command)
    if body.parameters is not None:
        values["parameters"] = _parameters(body.parameters)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.template,
        user_id=actor.user_id,
        status_code=200,
    ) as (conn, change):
        try:
            updated = await tq.update_template(conn, db.now(), row["id"], values)
        except tq.TemplateExists:
            raise ApiError(409, f"A template named {values['name']!r} already exists.") from None
        if updated is None:
            raise not_found()
        change.resource_id = row["id"]
        change.resource_target = updated["name"]
        change.fields = {"fields": sorted(values)}
    return _view(updated, actor)


@router.delete(
    "/templates/{template}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete a workspace template",
)
async def delete_template(
    template: TemplatePath, request: Request, db: DB, actor: CurrentActor
) -> Response:
    row = await _load(db, actor, template)
    _require_manager(actor, row["organization_id"])
    if row["builtin"]:
        raise bad_request("Built-in templates cannot be deleted.")
    async with audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.template,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        if not await tq.delete_template(conn, row["id"]):
            raise not_found()
        change.resource_id = row["id"]
        change.resource_target = row["name"]
    return Response(status_code=204)
