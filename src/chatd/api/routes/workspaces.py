"""Workspaces: created from a template for a member of an organization, listed, deleted.

A workspace is visible to its owner, site owners and its organization's admins; to anyone
else it is missing (404). Creating a local workspace makes its directory (a clone for the
``git`` template) before answering; a failure there is a 400 and leaves nothing behind. An
external workspace's agent token is in the create answer only.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response

from chatd.api import audit
from chatd.api.deps import DB, CurrentActor, WorkspacesService
from chatd.api.errors import ERROR_RESPONSES, ApiError, not_found
from chatd.api.openapi import json_body, query_parameter, uuid_path
from chatd.api.org_param import (
    MemberPath,
    OrganizationPath,
    can_manage,
    resolve_member,
    resolve_org,
)
from chatd.api.params import QueryParams, parse_uuid_path, read_json
from chatd.authz import Actor
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.errors import ValidationError
from chatd.sdk.workspaces import CreateWorkspaceRequest, Workspace, WorkspacesResponse
from chatd.store import users as user_queries
from chatd.store.db import Database
from chatd.workspace.service import Workspaces

router = APIRouter(prefix="/api/v2", tags=["Workspaces"], responses=ERROR_RESPONSES)

WorkspacePath = Annotated[str, uuid_path("Workspace ID.")]
BAD_QUERY = "Invalid workspace search query."


def can_see(actor: Actor, workspace: Workspace) -> bool:
    return workspace.owner_id == actor.user_id or can_manage(actor, workspace.organization_id)


async def _load(workspaces: Workspaces, actor: Actor, raw: str) -> Workspace:
    workspace = await workspaces.get(parse_uuid_path(raw))
    if workspace is None or not can_see(actor, workspace):
        raise not_found()
    return workspace


def _parameters(body: CreateWorkspaceRequest) -> dict[str, str]:
    values: dict[str, str] = {}
    for index, item in enumerate(body.rich_parameter_values or []):
        if item.name in values:
            raise ApiError(
                400,
                f"Parameter {item.name!r} is given twice.",
                validations=[
                    ValidationError(
                        field=f"rich_parameter_values.{index}.name", detail="given twice"
                    )
                ],
            )
        values[item.name] = item.value
    return values


@router.post(
    "/organizations/{organization}/members/{user}/workspaces",
    status_code=201,
    response_model=Workspace,
    summary="Create a workspace",
    openapi_extra=json_body(CreateWorkspaceRequest),
)
async def create_workspace(
    organization: OrganizationPath,
    user: MemberPath,
    request: Request,
    db: DB,
    workspaces: WorkspacesService,
    actor: CurrentActor,
) -> Workspace:
    org_id = await resolve_org(db, actor, organization)
    owner = await resolve_member(db, actor, org_id, user)
    body = await read_json(request, CreateWorkspaceRequest)
    if body.template_id is None:
        raise ApiError(
            400,
            "Validation failed.",
            validations=[ValidationError(field="template_id", detail="template_id is required")],
        )
    created = await workspaces.create(
        owner_id=owner.id,
        organization_id=org_id,
        template_id=body.template_id,
        name=body.name or None,
        parameters=_parameters(body),
        requester=audit.requester(request, actor.user_id),
    )
    return created.workspace


async def _owner_filter(db: Database, actor: Actor, request: Request) -> uuid.UUID | None:
    """The owner ``q`` asks for (``owner:me`` or ``owner:<username>``; the caller without
    one); None: no such user."""
    params = QueryParams(request)
    query = params.string("q")
    params.finish()
    owner = "me"
    problems = []
    for term in query.split():
        key, sep, value = term.partition(":")
        if sep and key.lower() == "owner" and value:
            owner = value
        else:
            problems.append(
                ValidationError(field="q", detail=f"Unsupported query term {term!r}: use owner:")
            )
    if problems:
        raise ApiError(400, BAD_QUERY, validations=problems)
    if owner == "me":
        return actor.user_id
    async with db.read() as conn:
        found = await user_queries.get_user_by_username(conn, owner)
    return found.id if found else None


@router.get(
    "/workspaces",
    response_model=WorkspacesResponse,
    summary="List workspaces",
    openapi_extra=query_parameter(
        "q",
        {"type": "string"},
        "owner:me (the default) or owner:<username>",
    ),
)
async def list_workspaces(
    request: Request, db: DB, workspaces: WorkspacesService, actor: CurrentActor
) -> WorkspacesResponse:
    owner_id = await _owner_filter(db, actor, request)
    found = await workspaces.list_owned(owner_id) if owner_id else []
    visible = [w for w in found if can_see(actor, w)]
    return WorkspacesResponse(workspaces=visible, count=len(visible))


@router.get("/workspaces/{workspace}", response_model=Workspace, summary="Get a workspace")
async def get_workspace(
    workspace: WorkspacePath, workspaces: WorkspacesService, actor: CurrentActor
) -> Workspace:
    return await _load(workspaces, actor, workspace)


@router.delete(
    "/workspaces/{workspace}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete a workspace",
)
async def delete_workspace(
    workspace: WorkspacePath,
    request: Request,
    db: DB,
    workspaces: WorkspacesService,
    actor: CurrentActor,
) -> Response:
    found = await _load(workspaces, actor, workspace)
    await workspaces.delete(found.id)
    await audit.record_alone(
        db,
        audit.entry(
            request,
            AuditAction.delete,
            ResourceType.workspace,
            204,
            user_id=actor.user_id,
            resource_id=found.id,
            resource_target=found.name,
        ),
    )
    return Response(status_code=204)
