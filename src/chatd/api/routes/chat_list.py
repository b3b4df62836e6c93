"""TODO: GET /chats (filled in by the list work)."""

from __future__ import annotations

from fastapi import APIRouter

from chatd.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)
