"""Files tools store for the chat (attach_file, propose_plan), as uploads are stored."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from chatd.store.files import insert_chat_file
from chatd.tools.registry import Attachment, ToolCallContext, ToolError


def decode_bytes(result: dict[str, Any]) -> bytes:
    """The data of a ``read_bytes`` result."""
    try:
        return base64.b64decode(str(result.get("data") or ""), validate=True)
    except (binascii.Error, ValueError):
        raise ToolError("the workspace agent sent data that is not base64") from None


async def store_file(ctx: ToolCallContext, name: str, media_type: str, data: bytes) -> Attachment:
    """Store ``data`` as a file of the chat's owner, linked to the chat."""
    scope = ctx.scope()
    facts = scope.facts
    async with scope.db.write() as conn:
        file_id = await insert_chat_file(
            conn,
            chat_id=facts.chat_id,
            owner_id=facts.owner_id,
            organization_id=facts.organization_id,
            name=name,
            mimetype=media_type,
            data=data,
            created_at=scope.db.now(),
        )
    return Attachment(file_id=file_id, media_type=media_type, name=name)
