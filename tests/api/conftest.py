"""Fixtures shared by the chat API tests."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.events.hub import EventHub
from chatd.store.db import Database
from tests.api.chat_helpers import StepClock
from tests.helpers import seed_model_config


@pytest.fixture
async def model_id(db: Database) -> uuid.UUID:
    """An enabled default model config (with its provider)."""
    return await seed_model_config(db)


@pytest.fixture
async def clock(db: Database) -> StepClock:
    """The database clock, advanced by hand so timestamps differ deterministically."""
    return StepClock(db)


@pytest.fixture
def hub(app: FastAPI) -> EventHub:
    """The app's event hub."""
    result: EventHub = app.state.hub
    return result
