"""TODO: providers and a default model config from OPENAI_API_KEY etc. on start."""

from __future__ import annotations

from chatd.settings import Settings
from chatd.store.db import Database


async def bootstrap_providers(db: Database, settings: Settings) -> None:
    """Create the providers named by the environment when none exist yet."""
    del db, settings
