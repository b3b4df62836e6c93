"""Automatic titles and turn summaries (engine-behaviour §15) (titles & compaction work)."""

from __future__ import annotations

from chatd.engine.types import TurnContext
from chatd.sdk.chats import ChatStatus


async def maybe_generate_title(ctx: TurnContext) -> None:
    """Started by the worker alongside a turn: a title for a chat still on its fallback."""


async def update_turn_summary(ctx: TurnContext, status: ChatStatus) -> None:
    """Started by the worker after the finishing transaction: ``last_turn_summary``."""
