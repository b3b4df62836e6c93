"""Organizations the caller belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, not_found
from chatd.api.openapi import uuid_path
from chatd.api.params import parse_uuid_path
from chatd.sdk.users import Organization
from chatd.store import users as q
from chatd.store.sql import Row

router = APIRouter(prefix="/api/v2", tags=["Organizations"], responses=ERROR_RESPONSES)


def _org(row: Row) -> Organization:
    return Organization(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        is_default=row.is_default,
    )


@router.get("/organizations", response_model=list[Organization])
async def list_organizations(actor: CurrentActor, db: DB) -> list[Organization]:
    async with db.read() as conn:
        rows = await q.list_orgs(conn, None if actor.is_owner else actor.user_id)
    return [_org(r) for r in rows]


@router.get("/organizations/{organization}", response_model=Organization)
async def get_organization(
    organization: Annotated[str, uuid_path("Organization ID.")], actor: CurrentActor, db: DB
) -> Organization:
    org_id = parse_uuid_path(organization)
    if not actor.is_owner and not actor.is_member(org_id):
        raise not_found()
    async with db.read() as conn:
        row = await q.get_org(conn, org_id)
    if row is None:
        raise not_found()
    return _org(row)
