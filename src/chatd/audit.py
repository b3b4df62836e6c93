"""Recording an audit entry: its row (in the caller's transaction) and, once that transaction
has committed, its structured log line (``audit.<action>``)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from chatd.sdk.audit import AuditAction, ResourceType
from chatd.store.audit import AuditEntry, insert_entry
from chatd.store.sql import Connection

log = structlog.get_logger("chatd.audit")


@dataclass(frozen=True)
class Requester:
    """Who asked for a change, as its audit entry names them: the user and, for a request
    over HTTP, the client's address and user agent (empty for a change a chat's tool made)."""

    user_id: uuid.UUID | None
    ip: str = ""
    user_agent: str = ""

    def entry(
        self,
        action: AuditAction,
        resource_type: ResourceType,
        status_code: int,
        *,
        resource_id: uuid.UUID | None = None,
        resource_target: str = "",
        fields: dict[str, Any] | None = None,
    ) -> AuditEntry:
        return AuditEntry(
            action=action,
            resource_type=resource_type,
            status_code=status_code,
            user_id=self.user_id,
            ip=self.ip,
            user_agent=self.user_agent,
            resource_id=resource_id,
            resource_target=resource_target,
            additional_fields=fields or {},
        )


async def record(conn: Connection, now: dt.datetime, entry: AuditEntry) -> None:
    """Write the entry's row in ``conn``'s transaction (call :func:`emit` after the commit)."""
    await insert_entry(conn, now, entry)


def emit(entry: AuditEntry) -> None:
    """The log line of a recorded entry: INFO when the action succeeded, WARNING otherwise."""
    method = log.info if entry.success else log.warning
    method(
        f"audit.{entry.action.value}",
        audit_id=str(entry.id),
        user_id=str(entry.user_id) if entry.user_id else None,
        ip=entry.ip,
        resource_type=entry.resource_type.value,
        resource_id=str(entry.resource_id) if entry.resource_id else None,
        resource_target=entry.resource_target,
        status_code=entry.status_code,
        success=entry.success,
        details=entry.additional_fields,
    )
