"""Context compaction (engine-behaviour §8) (written by the titles & compaction work)."""

from __future__ import annotations

from chatd.engine.models import ResolvedModel
from chatd.engine.types import TurnContext
from chatd.llm.types import Message, Usage


async def maybe_compact(
    ctx: TurnContext, model: ResolvedModel, history: list[Message], usage: Usage, context_limit: int
) -> bool:
    """After a persisted step: summarise the history when the context passed the threshold.

    Returns True when a summary was persisted (the caller reloads the history from the DB).
    """
    return False
