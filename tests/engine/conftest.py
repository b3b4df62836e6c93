"""Fixtures shared by the engine tests that run a worker against the app's database and hub,
and by those that run tool turns against the shipped fake provider."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from chatd.events.hub import EventHub
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.testing import FakeProvider, serve_fake
from tests.engine.tool_turns import ToolTurn, tool_turn
from tests.helpers import seed_model_config
from tests.tools.agents import AgentPool


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    """An enabled default model config (with its provider)."""
    return await seed_model_config(db)


@pytest.fixture
def hub(app: FastAPI) -> EventHub:
    """The app's event hub."""
    result: EventHub = app.state.hub
    return result


@pytest.fixture
async def fake() -> AsyncIterator[tuple[FakeProvider, str]]:
    """The shipped fake provider, served on loopback: it and its URL."""
    provider = FakeProvider()
    async with serve_fake(provider) as url:
        yield provider, url


@pytest.fixture
async def bare(
    db: Database,
    settings: Settings,
    tmp_path: Path,
    agent_pool: AgentPool,
    fake: tuple[FakeProvider, str],
) -> AsyncIterator[ToolTurn]:
    """A tool turn of a chat without a workspace."""
    made = await tool_turn(db, settings, tmp_path, agent_pool, *fake, bound=False)
    yield made
    await made.service.close()
