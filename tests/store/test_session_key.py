"""``get_session_key``: the key, its user and the user's memberships in one statement."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chatd.security import split_token
from chatd.store import users as q
from chatd.store.db import Database
from chatd.store.tables import organization_members, organizations
from tests.helpers import ApiUser

pytestmark = pytest.mark.anyio


async def session_key(db: Database, user: ApiUser) -> q.SessionKey:
    parts = split_token(user.token)
    assert parts is not None
    async with db.read() as conn:
        key = await q.get_session_key(conn, parts[0])
    assert key is not None
    return key


async def test_the_key_carries_every_membership_of_its_user(
    db: Database, admin: ApiUser, member: ApiUser
) -> None:
    other_org = uuid.uuid4()
    async with db.write() as conn:
        now = db.now()
        await conn.execute(
            organizations.insert().values(
                id=other_org, name="other", display_name="Other", created_at=now, updated_at=now
            )
        )
        await q.add_member(
            conn, now=now, org_id=other_org, user_id=member.id, roles=["organization-admin"]
        )

    key = await session_key(db, member)
    assert key.user is not None and key.user.id == member.id
    assert key.memberships == {member.org_id: [], other_org: ["organization-admin"]}
    async with db.read() as conn:
        assert key.memberships == await q.memberships(conn, member.id)
    # The admin's key is not widened by the member's second organization.
    admins = (await session_key(db, admin)).memberships
    assert list(admins) == [admin.org_id]
    async with db.read() as conn:
        assert admins == await q.memberships(conn, admin.id)


async def test_a_user_in_no_organization_still_has_its_key(db: Database, member: ApiUser) -> None:
    async with db.write() as conn:
        await conn.execute(
            sa.delete(organization_members).where(organization_members.c.user_id == member.id)
        )

    key = await session_key(db, member)
    assert key.user is not None and key.user.username == member.username
    assert key.memberships == {}
