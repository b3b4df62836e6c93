"""What the tools of one turn share: the chat's facts and the services they act through."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatd.events.hub import EventHub
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.tools.workspace_access import WorkspaceAccess

EXPLORE = "explore"


@dataclass(frozen=True)
class ChatFacts:
    """The chat a turn runs for, as the turn read it when starting."""

    chat_id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    parent_chat_id: uuid.UUID | None = None
    plan_mode: bool = False
    # The sub-agent flavour: None, or "explore" (read-only tools).
    mode: str | None = None

    @property
    def is_root(self) -> bool:
        return self.parent_chat_id is None

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> ChatFacts:
        """From a chat row."""
        return cls(
            chat_id=row["id"],
            owner_id=row["owner_id"],
            organization_id=row["organization_id"],
            parent_chat_id=row["parent_chat_id"],
            plan_mode=row["plan_mode"] == "plan",
            mode=row["mode"],
        )

    @property
    def explores(self) -> bool:
        return self.mode == EXPLORE


@dataclass(frozen=True)
class TurnScope:
    facts: ChatFacts
    db: Database
    hub: EventHub
    workspace: WorkspaceAccess
    # The deployment's settings (None: the defaults).
    settings: Settings | None = None
