"""A fake GitHub served on a loopback port, and a client of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from chatd.gitsync.client import GitHubClient
from chatd.testing.fake_github import FakeGitHub, serve_fake_github

TOKEN = "ghp_member0token"


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(tokens={TOKEN})
    async with serve_fake_github(fake):
        yield fake


@pytest.fixture
async def github_client(fake_github: FakeGitHub) -> AsyncIterator[GitHubClient]:
    assert fake_github.url is not None
    client = GitHubClient(fake_github.url, timeout=5.0)
    try:
        yield client
    finally:
        await client.aclose()
