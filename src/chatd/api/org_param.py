"""The ``{organization}`` and ``{user}`` path parameters of the organization routes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path

from chatd.api.errors import not_found
from chatd.api.openapi import uuid_path
from chatd.api.params import parse_uuid_path
from chatd.authz import Actor
from chatd.store import users as q
from chatd.store.db import Database
from chatd.store.users import UserRow

OrganizationPath = Annotated[str, uuid_path("Organization ID.")]
MemberPath = Annotated[str, Path(description='"me", a user ID or a username.')]


def _as_uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


async def resolve_org(db: Database, actor: Actor, raw: str) -> uuid.UUID:
    """The organization; one the caller is not a member of is missing (404), unless the
    caller is a site owner."""
    org_id = parse_uuid_path(raw)
    async with db.read() as conn:
        row = await q.get_org(conn, org_id)
    if row is None or not (actor.is_owner or actor.is_member(row.id)):
        raise not_found()
    found: uuid.UUID = row.id
    return found


def can_manage(actor: Actor, org_id: uuid.UUID) -> bool:
    """Site owners and the organization's admins manage its templates and its members'
    workspaces."""
    return actor.is_owner or actor.is_org_admin(org_id)


async def resolve_member(db: Database, actor: Actor, org_id: uuid.UUID, raw: str) -> UserRow:
    """``me``, a user ID or a username: a member of the organization the caller may act for
    (themselves, or anyone when they manage the organization); anyone else is missing (404)."""
    async with db.read() as conn:
        if raw == "me":
            user = await q.get_user(conn, actor.user_id)
        else:
            user_id = _as_uuid(raw)
            user = await (
                q.get_user(conn, user_id) if user_id else q.get_user_by_username(conn, raw)
            )
        roles = await q.memberships(conn, user.id) if user is not None else {}
    if user is None or org_id not in roles:
        raise not_found()
    if user.id != actor.user_id and not can_manage(actor, org_id):
        raise not_found()
    return user
