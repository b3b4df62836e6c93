"""The GitHub client against the fake GitHub over real HTTP: requests and failures."""

from __future__ import annotations

import socket

import httpx2
import pytest

from chatd.github_site import Repo
from chatd.gitsync.client import DiffTooLarge, GitHubClient, raise_for_status
from chatd.gitsync.errors import (
    GitHubError,
    GitHubUnavailable,
    NotFound,
    RateLimited,
    Unauthorized,
)
from chatd.testing.fake_github import FakeGitHub, FakeReview
from tests.gitsync.conftest import TOKEN

pytestmark = pytest.mark.anyio

APP = Repo("acme", "app")


async def test_branch_pulls_pull_reviews_and_diff(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    old = fake_github.add_pull("acme", "app", "feat/x", state="closed")
    new = fake_github.add_pull(
        "acme", "app", "feat/x", reviews=[FakeReview("a", "APPROVED")], diff="diff --git a/x b/x\n"
    )
    fake_github.add_pull("acme", "app", "other")

    pulls = await github_client.branch_pulls(TOKEN, APP, "feat/x")
    assert [p["number"] for p in pulls] == [new.number, old.number]  # newest first
    opened = await github_client.branch_pulls(TOKEN, APP, "feat/x", state="open")
    assert [p["number"] for p in opened] == [new.number]
    assert (await github_client.pull(TOKEN, APP, new.number))["head"]["ref"] == "feat/x"
    reviews = await github_client.reviews(TOKEN, APP, new.number)
    assert [(r["user"]["login"], r["state"]) for r in reviews] == [("a", "APPROVED")]
    assert await github_client.pull_diff(TOKEN, APP, new.number) == "diff --git a/x b/x\n"

    listed = fake_github.requests[0]
    assert listed.path == "/repos/acme/app/pulls"
    assert listed.query["head"] == "acme:feat/x" and listed.query["state"] == "all"
    for request in fake_github.requests:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["x-github-api-version"] == "2022-11-28"
    assert fake_github.requests[0].headers["accept"] == "application/vnd.github+json"
    assert fake_github.requests[-1].headers["accept"] == "application/vnd.github.diff"


async def test_failures_are_classified(
    fake_github: FakeGitHub, github_client: GitHubClient
) -> None:
    fake_github.add_pull("acme", "app", "feat/x", diff="x" * 2000)
    with pytest.raises(NotFound):
        await github_client.branch_pulls(TOKEN, Repo("acme", "nope"), "main")
    with pytest.raises(NotFound):
        await github_client.pull(TOKEN, APP, 99)
    with pytest.raises(Unauthorized):
        await github_client.branch_pulls("ghp_wrong", APP, "feat/x")
    with pytest.raises(DiffTooLarge):
        await github_client.pull_diff(TOKEN, APP, 1, max_bytes=1000)

    fake_github.rate_limit(1_900_000_000)
    with pytest.raises(RateLimited) as limited:
        await github_client.pull(TOKEN, APP, 1)
    assert limited.value.reset_at == 1_900_000_000 and limited.value.retry_after is None
    fake_github.rate_limit(None)

    fake_github.down = True
    with pytest.raises(GitHubUnavailable):
        await github_client.branch_pulls(TOKEN, APP, "feat/x")
    with pytest.raises(GitHubUnavailable):
        await github_client.pull_diff(TOKEN, APP, 1)
    assert issubclass(GitHubUnavailable, GitHubError)


async def test_an_unreachable_github_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = GitHubClient(f"http://127.0.0.1:{port}", timeout=2.0)
    try:
        with pytest.raises(GitHubUnavailable):
            await client.pull(TOKEN, APP, 1)
        with pytest.raises(GitHubUnavailable):
            await client.pull_diff(TOKEN, APP, 1)
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("status", "headers", "error", "retry_after", "reset_at"),
    [
        (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"}, RateLimited,
         None, 1_700_000_000.0),
        (403, {"retry-after": "60"}, RateLimited, 60.0, None),
        (429, {}, RateLimited, None, None),
        (429, {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, RateLimited, None, 1445412480.0),
        (403, {"x-ratelimit-remaining": "17"}, Unauthorized, None, None),
        (401, {}, Unauthorized, None, None),
        (404, {}, NotFound, None, None),
        (502, {}, GitHubUnavailable, None, None),
        (422, {}, GitHubError, None, None),
    ],
)
def test_statuses_are_classified(
    status: int,
    headers: dict[str, str],
    error: type[GitHubError],
    retry_after: float | None,
    reset_at: float | None,
) -> None:
    request = httpx2.Request("GET", "https://api.github.com/repos/o/r/pulls/1")
    response = httpx2.Response(status, headers=headers, json={"message": "m"}, request=request)
    with pytest.raises(GitHubError) as raised:
        raise_for_status(response)
    assert type(raised.value) is error
    assert "GET /repos/o/r/pulls/1: " in str(raised.value)
    if isinstance(raised.value, RateLimited):
        assert (raised.value.retry_after, raised.value.reset_at) == (retry_after, reset_at)
