"""How a turn ended, as the worker's finishing transaction writes it (engine-behaviour §3)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from chatd.llm.types import ClassifiedError, ToolCallContent


class OutcomeKind(StrEnum):
    done = "done"  # the model stopped (or max steps): waiting, or pending after auto-promote
    interrupted = "interrupted"  # waiting (partial output persisted)
    shutdown = "shutdown"  # pending, no error
    error = "error"  # error, with last_error
    requires_action = "requires_action"  # dynamic tool calls wait for the client
    awaiting = "awaiting"  # parked: a sub-agent it waits for still works (running, no worker)


@dataclass
class TurnOutcome:
    kind: OutcomeKind
    error: ClassifiedError | None = None
    # Pending dynamic (client-side) tool calls, for requires_action.
    tool_calls: list[ToolCallContent] = field(default_factory=list)
    # For awaiting: when the wait gives up, and the chats it waits for.
    awaiting_until: dt.datetime | None = None
    awaited: list[uuid.UUID] = field(default_factory=list)
