"""The per-user API rate limit: 429 with the envelope and Retry-After once a user's bucket is
empty, WebSocket upgrades included, and recovery as it refills (on an injected clock)."""

from __future__ import annotations

import httpx2
import pytest
from fastapi import FastAPI
from httpx2.websockets import WebSocketUpgradeError

from chatd.api.rate_limit import TokenBuckets
from chatd.settings import Settings
from tests.api.abuse_helpers import ManualClock
from tests.api.ws_helpers import CHATS, connect, ws_client
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio
ME = "/api/v2/users/me"
PER_MINUTE, BURST = 60, 3  # a token a second, three at once


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"rate_limit_per_minute": PER_MINUTE, "rate_limit_burst": BURST}
    )


@pytest.fixture
def clock(app: FastAPI) -> ManualClock:
    clock = ManualClock()
    configured: TokenBuckets = app.state.rate_limit
    assert (configured.per_minute, configured.burst) == (PER_MINUTE, BURST)
    app.state.rate_limit = TokenBuckets(PER_MINUTE, BURST, clock=clock)
    return clock


def limited_for(r: httpx2.Response) -> int:
    assert r.status_code == 429, r.text
    body = envelope(r)
    assert body["message"] == "Rate limit exceeded."
    seconds = int(r.headers["retry-after"])
    assert body["detail"] == (
        f"At most {PER_MINUTE} requests a minute (bursts of {BURST}) per user; "
        f"try again in {seconds} seconds."
    )
    return seconds


async def test_a_user_over_the_limit_gets_429_until_the_bucket_refills(
    clock: ManualClock, client: httpx2.AsyncClient, api: Api
) -> None:
    member = await api.create_user("member")
    other = await api.create_user("other")
    for _ in range(BURST):
        assert (await client.get(ME, headers=member.headers)).status_code == 200
    assert limited_for(await client.get(ME, headers=member.headers)) == 1
    assert limited_for(await client.get(CHATS, headers=member.headers)) == 1
    # Other users have buckets of their own; refused and unauthenticated requests spend none.
    assert (await client.get(ME, headers=other.headers)).status_code == 200
    assert (await client.get(ME, headers={"Coder-Session-Token": "bad"})).status_code == 401

    clock.advance(1)
    assert (await client.get(ME, headers=member.headers)).status_code == 200
    assert limited_for(await client.get(ME, headers=member.headers)) == 1
    clock.advance(BURST * 60 / PER_MINUTE)
    statuses = [(await client.get(ME, headers=member.headers)).status_code for _ in range(4)]
    assert statuses == [200] * BURST + [429]


async def test_websocket_upgrades_count(
    clock: ManualClock, app: FastAPI, client: httpx2.AsyncClient, api: Api
) -> None:
    member: ApiUser = await api.create_user("member")
    async with ws_client(app) as http:
        for _ in range(BURST):
            async with connect(http, f"{CHATS}/watch", member):
                pass
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with connect(http, f"{CHATS}/watch", member):
                pass
    assert limited_for(refused.value.response) == 1
    assert limited_for(await client.get(ME, headers=member.headers)) == 1


async def test_zero_turns_the_limit_off(app: FastAPI, client: httpx2.AsyncClient, api: Api) -> None:
    app.state.rate_limit = TokenBuckets(0, BURST, clock=ManualClock())
    member = await api.create_user("member")
    statuses = {(await client.get(ME, headers=member.headers)).status_code for _ in range(50)}
    assert statuses == {200}
