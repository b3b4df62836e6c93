"""Failed logins are throttled per account name and per client address (429 + Retry-After),
the right password included, until the window (on an injected clock) has passed."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from fastapi import FastAPI

from chatd.api.login_throttle import LoginThrottle
from tests.api.abuse_helpers import ManualClock
from tests.helpers import Api, envelope

pytestmark = pytest.mark.anyio
LOGIN = "/api/v2/users/login"
WINDOW = 900  # the defaults: 5 failures per account, 20 per address, in 15 minutes
THROTTLED = "Too many failed login attempts."


@pytest.fixture
def clock(app: FastAPI) -> ManualClock:
    clock = ManualClock()
    throttle: LoginThrottle = app.state.login_throttle
    throttle.clock = clock
    return clock


async def login(client: httpx2.AsyncClient, email: str, password: str) -> httpx2.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


def throttled_for(r: httpx2.Response) -> int:
    assert r.status_code == 429, r.text
    body = envelope(r)
    assert body["message"] == THROTTLED
    seconds = int(r.headers["retry-after"])
    assert body["detail"] == f"Try again in {seconds} seconds."
    return seconds


async def test_the_sixth_failure_locks_the_account_until_the_window_passes(
    client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("alice", "right-password")
    for _ in range(5):
        r = await login(client, "alice@example.com", "wrong-password")
        assert r.status_code == 401
    assert throttled_for(await login(client, "alice@example.com", "wrong-password")) == WINDOW
    # The right password too, under any spelling of the name.
    assert throttled_for(await login(client, "alice@example.com", "right-password")) == WINDOW
    assert throttled_for(await login(client, " ALICE@example.com", "right-password")) == WINDOW
    clock.advance(WINDOW - 1)
    assert throttled_for(await login(client, "alice@example.com", "right-password")) == 1
    clock.advance(1)
    r = await login(client, "alice@example.com", "right-password")
    assert r.status_code == 201

    # A success reset the count (and the lockout length): four more failures are only 401s.
    for _ in range(4):
        assert (await login(client, "alice@example.com", "wrong-password")).status_code == 401
    assert (await login(client, "alice@example.com", "right-password")).status_code == 201


async def test_lockouts_grow_until_a_success(
    client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("bob", "right-password")
    for lockout in (WINDOW, 2 * WINDOW, 4 * WINDOW):
        for _ in range(5):
            assert (await login(client, "bob", "wrong-password")).status_code == 401
        assert throttled_for(await login(client, "bob", "right-password")) == lockout
        clock.advance(lockout)
    assert (await login(client, "bob", "right-password")).status_code == 201
    for _ in range(5):
        assert (await login(client, "bob", "wrong-password")).status_code == 401
    assert throttled_for(await login(client, "bob", "right-password")) == WINDOW


async def test_failures_slide_out_of_the_window(
    client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("carol", "right-password")
    for _ in range(4):
        assert (await login(client, "carol", "wrong-password")).status_code == 401
    clock.advance(WINDOW)  # those four are forgotten
    for _ in range(4):
        assert (await login(client, "carol", "wrong-password")).status_code == 401
    assert (await login(client, "carol", "right-password")).status_code == 201


async def test_the_address_is_throttled_across_accounts(
    app: FastAPI, client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("dora", "right-password")
    for i in range(20):  # one failure each on twenty accounts, real or not
        email = "dora@example.com" if i == 0 else f"someone{i}@example.com"
        assert (await login(client, email, "wrong-password")).status_code == 401
    for email, password in (("dora@example.com", "right-password"), ("new@example.com", "x")):
        assert throttled_for(await login(client, email, password)) == WINDOW

    # Another address is not throttled.
    transport = httpx2.ASGITransport(app=app, client=("192.0.2.7", 4000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as elsewhere:
        assert (await login(elsewhere, "dora@example.com", "right-password")).status_code == 201

    clock.advance(WINDOW)
    assert (await login(client, "dora@example.com", "right-password")).status_code == 201


async def test_unknown_accounts_are_throttled_exactly_like_known_ones(
    client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("erin", "right-password")

    async def answers(email: str) -> list[tuple[int, str | None, dict[str, object]]]:
        got = []
        for _ in range(7):
            r = await login(client, email, "wrong-password")
            got.append((r.status_code, r.headers.get("retry-after"), envelope(r)))
        return got

    known = await answers("erin@example.com")
    unknown = await answers("nobody@example.com")
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 5 + [429] * 2


async def test_concurrent_guesses_cannot_outrun_the_limit(
    client: httpx2.AsyncClient, api: Api, clock: ManualClock
) -> None:
    await api.create_user("fred", "right-password")
    statuses: list[int] = []

    async def guess(i: int) -> None:
        statuses.append((await login(client, "fred", f"guess-{i}")).status_code)

    async with anyio.create_task_group() as tasks:
        for i in range(12):
            tasks.start_soon(guess, i)
    # Attempts still running count: at most five guesses were ever checked.
    assert sorted(statuses) == [401] * 5 + [429] * 7
