"""Rows the chat create/update tests need that no API creates yet: workspaces, files, orgs."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.store import workspaces as store_workspaces
from chatd.store.chat_create import NewChat, create_chat
from chatd.store.db import Database
from chatd.store.tables import (
    chat_diff_statuses,
    chat_files,
    chats,
    organization_members,
    organizations,
)
from chatd.store.users import ORG_ADMIN_ROLE
from tests.helpers import ApiUser


class StepClock:
    """A clock that stands still until told to move (installed as ``db.clock``)."""

    def __init__(self, db: Database) -> None:
        self.current = db.now().replace(microsecond=0)
        db.clock = self.now

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, seconds: int = 60) -> dt.datetime:
        self.current += dt.timedelta(seconds=seconds)
        return self.current


def ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


async def insert_org(db: Database, name: str) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            organizations.insert().values(
                id=org_id, name=name, created_at=db.now(), updated_at=db.now()
            )
        )
    return org_id


async def add_to_org(
    db: Database, user: ApiUser, org_id: uuid.UUID, *, admin: bool = False
) -> None:
    async with db.write() as conn:
        await conn.execute(
            organization_members.insert().values(
                organization_id=org_id,
                user_id=user.id,
                roles=[ORG_ADMIN_ROLE] if admin else [],
                created_at=db.now(),
            )
        )


async def make_org_admin(db: Database, user: ApiUser) -> None:
    async with db.write() as conn:
        await conn.execute(
            organization_members.update()
            .where(
                organization_members.c.user_id == user.id,
                organization_members.c.organization_id == user.org_id,
            )
            .values(roles=[ORG_ADMIN_ROLE])
        )


async def insert_workspace(
    db: Database, owner_id: uuid.UUID, org_id: uuid.UUID, name: str | None = None
) -> uuid.UUID:
    """An external workspace without template, straight into the store."""
    workspace_id = uuid.uuid4()
    name = name or f"ws-{workspace_id.hex[:8]}"
    values = {"id": workspace_id, "owner_id": owner_id, "organization_id": org_id, "name": name}
    await db.run_write(store_workspaces.insert_workspace, db.now(), values)
    return workspace_id


async def insert_file(
    db: Database, owner: ApiUser, name: str = "shot.png", mimetype: str = "image/png"
) -> uuid.UUID:
    file_id = uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            chat_files.insert().values(
                id=file_id,
                owner_id=owner.id,
                organization_id=owner.org_id,
                created_at=db.now(),
                name=name,
                mimetype=mimetype,
                data=b"\x89PNG",
            )
        )
    return file_id


async def make_child(
    db: Database,
    owner: ApiUser,
    model_config_id: uuid.UUID,
    root_id: uuid.UUID,
    *,
    title: str = "child",
) -> uuid.UUID:
    """A sub-agent chat under ``root_id``, as the engine would spawn it."""
    async with db.write() as conn:
        chat, _ = await create_chat(
            conn,
            db.now(),
            NewChat(
                owner_id=owner.id,
                organization_id=owner.org_id,
                title=title,
                model_config_id=model_config_id,
                content=[ChatMessagePart(type=ChatMessagePartType.text, text=title)],
                system_prompts=[],
                parent_chat_id=root_id,
                root_chat_id=root_id,
            ),
        )
    return chat.id


async def set_chat_columns(db: Database, chat_id: uuid.UUID, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(**values))


async def insert_diff_status(db: Database, chat_id: uuid.UUID, **values: Any) -> None:
    async with db.write() as conn:
        await conn.execute(
            chat_diff_statuses.insert().values(
                chat_id=chat_id,
                stale_at=db.now(),
                created_at=db.now(),
                updated_at=db.now(),
                **values,
            )
        )


async def stored_chat(db: Database, chat_id: uuid.UUID) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(sa.select(chats).where(chats.c.id == chat_id))).one()
    return row.as_dict()
