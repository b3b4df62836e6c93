"""The audit log's rows: written in the transaction of the change they record, listed newest
first."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from chatd.sdk.audit import AuditAction, AuditLog, ResourceType
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import audit_logs


@dataclass(frozen=True)
class AuditEntry:
    action: AuditAction
    resource_type: ResourceType
    status_code: int
    user_id: uuid.UUID | None = None
    ip: str = ""
    user_agent: str = ""
    resource_id: uuid.UUID | None = None
    resource_target: str = ""
    additional_fields: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)

    @property
    def success(self) -> bool:
        return self.status_code < 400


async def insert_entry(conn: Connection, now: dt.datetime, entry: AuditEntry) -> None:
    await conn.execute(
        audit_logs.insert().values(
            id=entry.id,
            time=now,
            user_id=entry.user_id,
            ip=entry.ip,
            user_agent=entry.user_agent,
            action=entry.action.value,
            resource_type=entry.resource_type.value,
            resource_id=entry.resource_id,
            resource_target=entry.resource_target,
            status_code=entry.status_code,
            additional_fields=entry.additional_fields,
        )
    )


async def list_entries(conn: Connection, *, limit: int, offset: int) -> list[AuditLog]:
    rows = await conn.execute(
        sa.select(audit_logs).order_by(audit_logs.c.seq.desc()).limit(limit).offset(offset)
    )
    return [_view(row.as_dict()) for row in rows]


async def count_entries(conn: Connection) -> int:
    query = sa.select(sa.func.count()).select_from(audit_logs)
    return int((await conn.execute(query)).scalar_one())


def _view(row: RowDict) -> AuditLog:
    fields: dict[str, Any] = row["additional_fields"]
    return AuditLog(
        id=row["id"],
        time=row["time"],
        user_id=row["user_id"],
        ip=row["ip"],
        user_agent=row["user_agent"],
        action=AuditAction(row["action"]),
        resource_type=ResourceType(row["resource_type"]),
        resource_id=row["resource_id"],
        resource_target=row["resource_target"],
        status_code=row["status_code"],
        success=row["status_code"] < 400,
        additional_fields=fields,
    )
