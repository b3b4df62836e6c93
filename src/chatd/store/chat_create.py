"""Creating a chat: transition T1 (none -> pending) in one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from chatd.sdk.chats import Chat, ChatMessagePart, ChatMessagePartType, parts_json
from chatd.sdk.events import ChatWatchEvent, ChatWatchEventKind
from chatd.store import convert
from chatd.store.chats import get_chat_row
from chatd.store.messages import insert_message
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.tables import chats


@dataclass(frozen=True)
class NewChat:
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    title: str
    model_config_id: uuid.UUID
    content: list[ChatMessagePart]
    system_prompts: list[str]  # deployment prompt, request prompt, workspace note (non-empty)
    workspace_id: uuid.UUID | None = None
    labels: dict[str, str] | None = None
    mcp_server_ids: list[uuid.UUID] | None = None
    dynamic_tools: list[dict[str, Any]] | None = None
    plan_mode: str | None = None
    client_type: str = "api"
    parent_chat_id: uuid.UUID | None = None
    root_chat_id: uuid.UUID | None = None
    # A sub-agent shares its parent's workspace binding, and may be of a flavour ("explore").
    build_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    mode: str | None = None


async def create_chat(conn: Connection, now: dt.datetime, new: NewChat) -> tuple[Chat, Outbox]:
    """Insert the chat (pending), its system rows and the first user message."""
    chat_id = uuid.uuid4()
    await conn.execute(
        chats.insert().values(
            id=chat_id,
            owner_id=new.owner_id,
            organization_id=new.organization_id,
            workspace_id=new.workspace_id,
            build_id=new.build_id,
            agent_id=new.agent_id,
            mode=new.mode,
            parent_chat_id=new.parent_chat_id,
            root_chat_id=new.root_chat_id,
            title=new.title,
            status="pending",
            created_at=now,
            updated_at=now,
            last_model_config_id=new.model_config_id,
            mcp_server_ids=[str(i) for i in new.mcp_server_ids or []],
            labels=new.labels or {},
            dynamic_tools=new.dynamic_tools or None,
            plan_mode=new.plan_mode or None,
            client_type=new.client_type,
        )
    )
    for text in new.system_prompts:
        await insert_message(
            conn,
            now=now,
            chat_id=chat_id,
            role="system",
            visibility="model",
            content=parts_json([ChatMessagePart(type=ChatMessagePartType.text, text=text)]),
            model_config_id=new.model_config_id,
        )
    await insert_message(
        conn,
        now=now,
        chat_id=chat_id,
        role="user",
        visibility="both",
        content=parts_json(new.content),
        model_config_id=new.model_config_id,
        created_by=new.owner_id,
    )
    row = await get_chat_row(conn, chat_id)
    assert row is not None
    chat = convert.chat(row)
    outbox = Outbox(wake_workers=True)
    outbox.watch.append((new.owner_id, ChatWatchEvent(kind=ChatWatchEventKind.created, chat=chat)))
    return chat, outbox
