"""Chat file upload and download (api-behaviour §6.3, §6.4, §8.2)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from chatd import filetypes, mediatype
from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, forbidden, not_found
from chatd.api.openapi import query_parameter, raw_body, uuid_path
from chatd.api.params import read_capped
from chatd.authz import Actor
from chatd.sdk.chats import UploadChatFileResponse
from chatd.store import files as q
from chatd.store import users as user_queries
from chatd.store.db import Database

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

MAX_FILE_SIZE = 10 << 20  # 10 MiB
CACHE_CONTROL = "private, max-age=31536000, immutable"


def _too_large() -> ApiError:
    return ApiError(413, "File too large.", f"Maximum file size is {MAX_FILE_SIZE} bytes.")


def _organization(request: Request) -> uuid.UUID:
    values = [v for v in request.query_params.getlist("organization") if v]
    if not values:
        raise ApiError(400, "Missing organization query parameter.")
    try:
        return uuid.UUID(values[0])
    except ValueError:
        raise ApiError(400, "Invalid organization ID.") from None


async def _check_can_upload(db: Database, actor: Actor, org_id: uuid.UUID) -> None:
    """RBAC create-chat in the organization; it must also exist (a site owner is no member)."""
    if actor.is_member(org_id):
        return
    if actor.can_create_chat(org_id):
        async with db.read() as conn:
            if await user_queries.org_exists(conn, org_id):
                return
    raise forbidden()


async def _read_file(request: Request) -> bytes:
    """The body, refused with 413 past the cap without holding more than one extra chunk."""
    try:
        return await read_capped(request, MAX_FILE_SIZE, _too_large)
    except ClientDisconnect:
        raise ApiError(400, "Failed to read file from request.", "client disconnected") from None


def _filename(request: Request) -> str:
    """The ``filename`` parameter of ``Content-Disposition``, normalised; '' when absent."""
    raw = request.headers.get("content-disposition")
    if raw is None:
        return ""
    # Starlette hands over header bytes as latin-1; clients send UTF-8.
    parsed = mediatype.parse_media_type(raw.encode("latin-1").decode("utf-8", errors="replace"))
    if parsed is None:
        return ""
    return filetypes.normalize_filename(parsed[1].get("filename", ""))


@router.post(
    "/chats/files",
    summary="Upload chat file",
    operation_id="upload_chat_file",
    status_code=201,
    response_model=UploadChatFileResponse,
    openapi_extra={
        **raw_body(filetypes.OCTET_STREAM, *filetypes.ALLOWED),
        # Read by hand (for the reference's messages) and documented here.
        **query_parameter(
            "organization",
            {"type": "string", "format": "uuid"},
            "The organization the file belongs to.",
            required=True,
        ),
    },
)
async def upload_chat_file(request: Request, db: DB, actor: CurrentActor) -> UploadChatFileResponse:
    org_id = _organization(request)
    await _check_can_upload(db, actor, org_id)
    declared = filetypes.declared_type(request.headers.get("content-type"))
    if declared != filetypes.OCTET_STREAM and not filetypes.is_allowed(declared):
        raise ApiError(400, "Unsupported file type.", filetypes.allowed_types_detail())
    data = await _read_file(request)
    name = _filename(request)
    if not name:
        raise ApiError(
            400,
            "Filename is required.",
            "Provide a filename in the Content-Disposition header.",
        )
    detected = filetypes.detect(data, name)
    if not filetypes.is_allowed(detected):
        raise ApiError(400, "Unsupported file type.", filetypes.allowed_types_detail())
    if not filetypes.compatible(declared, detected):
        raise ApiError(
            400,
            "File content type does not match Content-Type header.",
            f'Header declared "{declared}" but file content was detected as "{detected}".',
        )
    async with db.write() as conn:
        file_id = await q.insert_file(
            conn,
            owner_id=actor.user_id,
            organization_id=org_id,
            name=name,
            mimetype=detected,
            data=data,
            created_at=db.now(),
        )
    return UploadChatFileResponse(id=file_id)


@router.get(
    "/chats/files/{file}",
    summary="Get chat file",
    operation_id="get_chat_file",
    response_model=None,
    response_class=Response,
    responses={
        200: {
            "description": "The file's bytes, served as the media type it was stored as",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in filetypes.ALLOWED
            },
        }
    },
)
async def get_chat_file(
    file: Annotated[str, uuid_path("File ID.")], db: DB, actor: CurrentActor
) -> Response:
    try:
        file_id = uuid.UUID(file)
    except ValueError:
        raise ApiError(400, "Invalid file ID.") from None
    async with db.read() as conn:
        row = await q.get_file(conn, file_id)
    if row is None or not actor.can_read_chat(row["owner_id"], row["organization_id"]):
        raise not_found()
    disposition = "inline" if filetypes.is_inline(row["mimetype"]) else "attachment"
    params = {"filename": row["name"]} if row["name"] else {}
    return Response(
        content=bytes(row["data"]),
        headers={
            "Content-Type": row["mimetype"],
            "Content-Disposition": mediatype.format_media_type(disposition, params),
            "Cache-Control": CACHE_CONTROL,
        },
    )
