"""Audited writes from request handlers: the entry takes the client's address and user agent
from the request, its row joins the write's transaction, its log line follows the commit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import HTTPConnection

from chatd import audit
from chatd.api.deps import client_address
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.store.audit import AuditEntry
from chatd.store.db import Database
from chatd.store.sql import Connection

MAX_USER_AGENT = 512


def requester(conn: HTTPConnection, user_id: uuid.UUID | None) -> audit.Requester:
    """The user, and the client's address and user agent, of a request."""
    return audit.Requester(
        user_id=user_id,
        ip=client_address(conn),
        user_agent=conn.headers.get("user-agent", "")[:MAX_USER_AGENT],
    )


def entry(
    conn: HTTPConnection,
    action: AuditAction,
    resource_type: ResourceType,
    status_code: int,
    *,
    user_id: uuid.UUID | None,
    resource_id: uuid.UUID | None = None,
    resource_target: str = "",
    fields: dict[str, Any] | None = None,
) -> AuditEntry:
    return requester(conn, user_id).entry(
        action,
        resource_type,
        status_code,
        resource_id=resource_id,
        resource_target=resource_target,
        fields=fields,
    )


@dataclass
class Change:
    """What an audited write did, filled in by the handler inside the transaction."""

    resource_id: uuid.UUID | None = None
    resource_target: str = ""
    fields: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def audited_write(
    db: Database,
    conn: HTTPConnection,
    action: AuditAction,
    resource_type: ResourceType,
    *,
    user_id: uuid.UUID | None,
    status_code: int,
) -> AsyncIterator[tuple[Connection, Change]]:
    """A write transaction whose audit row commits with it; nothing is recorded when the
    block raises (the change rolled back)."""
    change = Change()
    async with db.write() as tx:
        yield tx, change
        recorded = entry(
            conn,
            action,
            resource_type,
            status_code,
            user_id=user_id,
            resource_id=change.resource_id,
            resource_target=change.resource_target,
            fields=change.fields,
        )
        await audit.record(tx, db.now(), recorded)
    audit.emit(recorded)


async def record_alone(db: Database, recorded: AuditEntry) -> None:
    """An entry in a write of its own: for something that changed nothing (a failed login),
    or a change a service made in transactions of its own (a workspace deleted)."""
    async with db.write_one() as tx:
        await audit.record(tx, db.now(), recorded)
    audit.emit(recorded)
