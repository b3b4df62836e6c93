"""Queries for users, organizations, memberships and API keys."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from chatd.store.sql import Connection, Row
from chatd.store.tables import api_keys, organization_members, organizations, users

ORG_ADMIN_ROLE = "organization-admin"
BOOTSTRAP_LOCK_KEY = 0x63686175


@dataclass(frozen=True)
class UserRow:
    id: uuid.UUID
    email: str
    username: str
    name: str
    hashed_password: str
    is_owner: bool
    status: str
    created_at: dt.datetime
    updated_at: dt.datetime
    last_seen_at: dt.datetime | None


def _user(row: Row) -> UserRow:
    m = row.as_dict()
    return UserRow(**{k: m[k] for k in UserRow.__dataclass_fields__})


async def count_users(conn: Connection) -> int:
    return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


# Run on every authenticated request: built once (see chatd.store.chats).
_USER_BY_ID = sa.select(users).where(users.c.id == sa.bindparam("user_id"))
_MEMBERSHIPS = sa.select(
    organization_members.c.organization_id, organization_members.c.roles
).where(organization_members.c.user_id == sa.bindparam("user_id"))
# A key with its user (None when the user row is gone) and the user's memberships (one row
# each; one row of NULLs when there are none): one statement per request.
_KEY_WITH_USER = (
    sa.select(
        api_keys.c.hashed_secret,
        api_keys.c.expires_at,
        api_keys.c.last_used,
        users,
        organization_members.c.organization_id.label("member_of"),
        organization_members.c.roles.label("member_roles"),
    )
    .select_from(
        api_keys.outerjoin(users, users.c.id == api_keys.c.user_id).outerjoin(
            organization_members, organization_members.c.user_id == users.c.id
        )
    )
    .where(api_keys.c.id == sa.bindparam("key_id"))
)


@dataclass(frozen=True)
class SessionKey:
    hashed_secret: bytes
    expires_at: dt.datetime
    last_used: dt.datetime
    user: UserRow | None
    # The user's roles per organization, as :func:`memberships` gives them.
    memberships: dict[uuid.UUID, list[str]]


async def get_user(conn: Connection, user_id: uuid.UUID) -> UserRow | None:
    row = (await conn.execute(_USER_BY_ID, {"user_id": user_id})).first()
    return _user(row) if row else None


async def list_users(conn: Connection) -> list[UserRow]:
    """Every user, by username."""
    rows = await conn.execute(sa.select(users).order_by(users.c.username, users.c.id))
    return [_user(r) for r in rows.all()]


async def get_user_by_login(conn: Connection, login: str) -> UserRow | None:
    """A user by email or username (case-insensitive)."""
    lowered = login.lower()
    row = (
        await conn.execute(
            sa.select(users).where(
                sa.or_(sa.func.lower(users.c.email) == lowered, users.c.username == lowered)
            )
        )
    ).first()
    return _user(row) if row else None


async def get_user_by_username(conn: Connection, username: str) -> UserRow | None:
    row = (await conn.execute(sa.select(users).where(users.c.username == username.lower()))).first()
    return _user(row) if row else None


async def user_exists(conn: Connection, email: str, username: str) -> bool:
    row = (
        await conn.execute(
            sa.select(users.c.id).where(
                sa.or_(sa.func.lower(users.c.email) == email.lower(), users.c.username == username)
            )
        )
    ).first()
    return row is not None


async def insert_user(
    conn: Connection,
    *,
    now: dt.datetime,
    email: str,
    username: str,
    name: str,
    hashed_password: str,
    is_owner: bool,
) -> uuid.UUID:
    user_id = uuid.uuid4()
    await conn.execute(
        users.insert().values(
            id=user_id,
            email=email,
            username=username,
            name=name,
            hashed_password=hashed_password,
            is_owner=is_owner,
            created_at=now,
            updated_at=now,
        )
    )
    return user_id


async def get_default_org(conn: Connection) -> uuid.UUID | None:
    row = (
        await conn.execute(
            sa.select(organizations.c.id).where(organizations.c.is_default.is_(True))
        )
    ).first()
    return row[0] if row else None


async def ensure_default_org(conn: Connection, now: dt.datetime) -> uuid.UUID:
    """The default organization, created on first use.

    Takes the bootstrap lock for the rest of the transaction, so replicas starting together
    create one default organization and one first user (SQLite already holds the write lock).
    """
    if conn.dialect_name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": BOOTSTRAP_LOCK_KEY})
    org_id = await get_default_org(conn)
    if org_id is not None:
        return org_id
    org_id = uuid.uuid4()
    await conn.execute(
        organizations.insert().values(
            id=org_id,
            name="default",
            display_name="Default",
            is_default=True,
            created_at=now,
            updated_at=now,
        )
    )
    return org_id


async def list_orgs(conn: Connection, user_id: uuid.UUID | None) -> list[Row]:
    """Organizations the user belongs to (all of them when ``user_id`` is None)."""
    query = sa.select(organizations).order_by(organizations.c.created_at, organizations.c.id)
    if user_id is not None:
        query = query.join(
            organization_members, organization_members.c.organization_id == organizations.c.id
        ).where(organization_members.c.user_id == user_id)
    return list((await conn.execute(query)).all())


async def get_org(conn: Connection, org_id: uuid.UUID) -> Row | None:
    return (
        await conn.execute(sa.select(organizations).where(organizations.c.id == org_id))
    ).first()


async def org_exists(conn: Connection, org_id: uuid.UUID) -> bool:
    return await get_org(conn, org_id) is not None


async def add_member(
    conn: Connection,
    *,
    now: dt.datetime,
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    roles: list[str],
) -> None:
    await conn.execute(
        organization_members.insert().values(
            organization_id=org_id, user_id=user_id, roles=roles, created_at=now
        )
    )


async def memberships(conn: Connection, user_id: uuid.UUID) -> dict[uuid.UUID, list[str]]:
    rows = await conn.execute(_MEMBERSHIPS, {"user_id": user_id})
    return {r[0]: list(r[1] or []) for r in rows}


async def insert_api_key(
    conn: Connection,
    *,
    key_id: str,
    user_id: uuid.UUID,
    hashed_secret: bytes,
    login_type: str,
    token_name: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    await conn.execute(
        api_keys.insert().values(
            id=key_id,
            user_id=user_id,
            hashed_secret=hashed_secret,
            login_type=login_type,
            token_name=token_name,
            created_at=now,
            expires_at=expires_at,
            last_used=now,
        )
    )


async def get_session_key(conn: Connection, key_id: str) -> SessionKey | None:
    """The API key ``key_id`` and its user, as authentication needs them."""
    rows = (await conn.execute(_KEY_WITH_USER, {"key_id": key_id})).all()
    if not rows:
        return None
    row = rows[0]
    return SessionKey(
        hashed_secret=row.hashed_secret,
        expires_at=row.expires_at,
        last_used=row.last_used,
        user=_user(row) if row.id is not None else None,
        memberships={
            r.member_of: list(r.member_roles or []) for r in rows if r.member_of is not None
        },
    )


async def touch_api_key(conn: Connection, key_id: str, now: dt.datetime) -> None:
    await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(last_used=now))


async def list_tokens(conn: Connection, user_id: uuid.UUID) -> list[Row]:
    rows = await conn.execute(
        sa.select(api_keys)
        .where(api_keys.c.user_id == user_id, api_keys.c.login_type == "token")
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return list(rows.all())


async def delete_api_key(conn: Connection, user_id: uuid.UUID, key_id: str) -> bool:
    result = await conn.execute(
        api_keys.delete().where(api_keys.c.id == key_id, api_keys.c.user_id == user_id)
    )
    return bool(result.rowcount)


async def token_name_taken(conn: Connection, user_id: uuid.UUID, name: str) -> bool:
    row = (
        await conn.execute(
            sa.select(api_keys.c.id).where(
                api_keys.c.user_id == user_id,
                api_keys.c.login_type == "token",
                api_keys.c.token_name == name,
            )
        )
    ).first()
    return row is not None
