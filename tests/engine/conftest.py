"""Fixtures shared by the engine tests that run a worker against the app's database and hub."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.events.hub import EventHub
from chatd.store.db import Database
from tests.helpers import seed_model_config


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    """An enabled default model config (with its provider)."""
    return await seed_model_config(db)


@pytest.fixture
def hub(app: FastAPI) -> EventHub:
    """The app's event hub."""
    result: EventHub = app.state.hub
    return result
