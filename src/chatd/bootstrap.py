"""First start: the default organization, the first admin user and their API token."""

from __future__ import annotations

from dataclasses import dataclass

from chatd import accounts, audit
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.security import hash_password, random_string
from chatd.settings import Settings
from chatd.store import users as q
from chatd.store.audit import AuditEntry
from chatd.store.db import Database
from chatd.store.users import ORG_ADMIN_ROLE


@dataclass(frozen=True)
class FirstUser:
    email: str
    username: str
    password: str
    token: str


async def create_first_user(db: Database, settings: Settings) -> FirstUser | None:
    """Create the first admin when there are no users yet; None when one exists."""
    email = settings.first_user_email or "admin@chatd.local"
    username = settings.first_user_username or "admin"
    password = settings.first_user_password or random_string(20)
    problems = accounts.validate_new_user(email, username, password)
    if problems:
        details = "; ".join(f"{p.field}: {p.detail}" for p in problems)
        raise SystemExit(f"invalid CHATD_FIRST_USER_* settings: {details}")
    async with db.read() as conn:
        if await q.count_users(conn) > 0:
            return None  # the usual restart: no need to hash a password
    hashed_password = await hash_password(password)
    async with db.write() as conn:
        now = db.now()
        org_id = await q.ensure_default_org(conn, now)  # serialises concurrent first starts
        if await q.count_users(conn) > 0:
            return None
        user_id = await accounts.create_user(
            conn,
            now=now,
            email=email,
            username=username,
            name="",
            hashed_password=hashed_password,
            is_owner=True,
            org_ids=[org_id],
            org_roles=[ORG_ADMIN_ROLE],
        )
        token = await accounts.issue_token(
            conn,
            now=now,
            user_id=user_id,
            login_type="token",
            lifetime=accounts.MAX_TOKEN_LIFETIME,
            token_name="first-start",
        )
        entry = AuditEntry(
            action=AuditAction.create,
            resource_type=ResourceType.user,
            status_code=201,
            resource_id=user_id,
            resource_target=username,
            additional_fields={"email": email, "owner": True, "first_start": True},
        )
        await audit.record(conn, now, entry)
    audit.emit(entry)
    return FirstUser(email=email, username=username, password=password, token=token)
