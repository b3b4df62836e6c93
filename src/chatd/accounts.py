"""Creating users and tokens: the rules shared by the API, the CLI and first-start bootstrap."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from chatd.sdk.errors import ValidationError
from chatd.security import new_token
from chatd.store import users as q
from chatd.store.sql import Connection

USERNAME_RE = re.compile(r"^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$")
SESSION_LIFETIME = dt.timedelta(hours=24)
DEFAULT_TOKEN_LIFETIME = dt.timedelta(days=30)
MAX_TOKEN_LIFETIME = dt.timedelta(days=365)


def validate_new_user(email: str, username: str, password: str) -> list[ValidationError]:
    problems: list[ValidationError] = []
    if not email or "@" not in email or email.strip() != email:
        problems.append(ValidationError(field="email", detail="must be a valid email address"))
    if not USERNAME_RE.fullmatch(username) or len(username) > 32:
        problems.append(
            ValidationError(
                field="username",
                detail="must be 1-32 letters, digits and single hyphens, not at either end",
            )
        )
    if len(password) < 8:
        problems.append(ValidationError(field="password", detail="must be at least 8 characters"))
    return problems


async def create_user(
    conn: Connection,
    *,
    now: dt.datetime,
    email: str,
    username: str,
    name: str,
    hashed_password: str,
    is_owner: bool,
    org_ids: list[uuid.UUID],
    org_roles: list[str] | None = None,
) -> uuid.UUID:
    """Insert the user and their memberships. The password is hashed (``hash_password``)
    before the transaction opens: argon2 may wait for a turn and takes ~170 ms, too long to hold
    the writer lock for."""
    user_id = await q.insert_user(
        conn,
        now=now,
        email=email,
        username=username,
        name=name,
        hashed_password=hashed_password,
        is_owner=is_owner,
    )
    for org_id in org_ids:
        await q.add_member(conn, now=now, org_id=org_id, user_id=user_id, roles=org_roles or [])
    return user_id


async def issue_token(
    conn: Connection,
    *,
    now: dt.datetime,
    user_id: uuid.UUID,
    login_type: str,
    lifetime: dt.timedelta,
    token_name: str = "",
) -> str:
    key_id, token, hashed = new_token()
    await q.insert_api_key(
        conn,
        key_id=key_id,
        user_id=user_id,
        hashed_secret=hashed,
        login_type=login_type,
        token_name=token_name,
        now=now,
        expires_at=now + lifetime,
    )
    return token
