"""``GET /api/v2/audit``: the audit log, newest first, for site owners (403 otherwise)."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request

from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, forbidden
from chatd.api.params import QueryParams
from chatd.sdk.audit import AuditLogResponse
from chatd.store import audit as q

router = APIRouter(prefix="/api/v2", tags=["Audit"], responses=ERROR_RESPONSES)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


@router.get("/audit", response_model=AuditLogResponse, summary="Get audit logs")
async def list_audit_logs(
    request: Request,
    db: DB,
    actor: CurrentActor,
    limit: str | None = Query(
        None, description=f"Page size (int32, >= 0; 0 means {DEFAULT_LIMIT}, at most {MAX_LIMIT})."
    ),
    offset: str | None = Query(None, description="Skip this many entries (int32, >= 0)."),
) -> AuditLogResponse:
    if not actor.is_admin():
        raise forbidden()
    params = QueryParams(request)
    page_size = min(params.positive_int32("limit", 0) or DEFAULT_LIMIT, MAX_LIMIT)
    skip = params.positive_int32("offset", 0)
    params.finish()
    async with db.read() as conn:
        entries = await q.list_entries(conn, limit=page_size, offset=skip)
        count = await q.count_entries(conn)
    return AuditLogResponse(audit_logs=entries, count=count)
