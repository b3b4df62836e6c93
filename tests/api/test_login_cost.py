"""Which accounts exist is not told by a login's cost nor by a ``{user}`` route's answer, and
argon2 runs at most K at once."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from argon2 import PasswordHasher, extract_parameters

from chatd.security import hashing_limiter, limit_hashing, prepare_dummy_hash
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import users
from tests.api.abuse_helpers import CHEAP, CountingHasher, installed
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio
LOGIN = "/api/v2/users/login"
WAIT = 30.0


async def login(client: httpx2.AsyncClient, email: str, password: str) -> httpx2.Response:
    return await client.post(LOGIN, json={"email": email, "password": password})


async def test_every_failed_login_costs_one_production_verification(
    client: httpx2.AsyncClient, api: Api, db: Database
) -> None:
    production = PasswordHasher()  # the parameters `chatd server` uses
    hasher = CountingHasher(
        time_cost=production.time_cost,
        memory_cost=production.memory_cost,
        parallelism=production.parallelism,
        hash_len=production.hash_len,
        salt_len=production.salt_len,
    )
    with installed(hasher):
        await api.create_user("alice", "right-password")
        await api.create_user("nopass", "right-password")
        await api.create_user("frozen", "right-password")
        async with db.write() as conn:
            await conn.execute(
                users.update().where(users.c.username == "nopass").values(hashed_password="")
            )
            await conn.execute(
                users.update().where(users.c.username == "frozen").values(status="suspended")
            )
        await prepare_dummy_hash()  # made once per hasher (the server makes it on start)
        real_hash = hasher.verified[0]  # alice's own, verified by her login above

        answers = []
        for email in (
            "nobody@example.com",  # no such account
            "alice@example.com",  # a wrong password
            "nopass@example.com",  # an account without a password
            "frozen@example.com",  # a suspended account
        ):
            hasher.reset()
            r = await login(client, email, "wrong-password")
            answers.append((r.status_code, envelope(r)))
            assert len(hasher.verified) == 1, email
            assert hasher.hashed == 0, email  # the dummy hash is not made again
            assert extract_parameters(hasher.verified[0]) == extract_parameters(real_hash)
    assert extract_parameters(real_hash).memory_cost == production.memory_cost
    assert answers == [(401, {"message": "Incorrect email or password."})] * 4


async def test_a_hidden_user_is_as_missing_as_a_missing_one(
    client: httpx2.AsyncClient, api: Api, admin: ApiUser
) -> None:
    member = await api.create_user("member")
    other = await api.create_user("other")
    r = await client.post(
        "/api/v2/users/other/keys/tokens", headers=other.headers, json={"token_name": "t"}
    )
    assert r.status_code == 201
    key_id = r.json()["key"].split("-")[0]

    def routes(ref: str) -> list[tuple[str, str, dict[str, object] | None]]:
        return [
            ("GET", f"/api/v2/users/{ref}", None),
            ("GET", f"/api/v2/users/{ref}/keys/tokens", None),
            ("POST", f"/api/v2/users/{ref}/keys/tokens", {"token_name": "x"}),
            ("DELETE", f"/api/v2/users/{ref}/keys/{key_id}", None),
        ]

    answers: dict[str, list[tuple[int, dict[str, object]]]] = {}
    for ref in ("other", str(other.id), "ghost", "00000000-0000-0000-0000-0000000000aa"):
        answers[ref] = []
        for method, url, body in routes(ref):
            r = await api.request(method, url, member, json=body)
            answers[ref].append((r.status_code, envelope(r)))
    not_found = (404, {"message": "Resource not found or you do not have access to this resource"})
    for ref, got in answers.items():
        assert got == [not_found] * 4, ref
    # The owner of the account and site owners still reach it.
    for user in (other, admin):
        r = await api.request("GET", "/api/v2/users/other/keys/tokens", user)
        assert r.status_code == 200
        assert [k["id"] for k in r.json()] == [key_id]


@pytest.mark.parametrize("bound", [2, 3])
async def test_argon2_runs_at_most_k_at_once(
    client: httpx2.AsyncClient, api: Api, settings: Settings, bound: int
) -> None:
    assert settings.password_hash_concurrency == 2  # the default the app was built with
    await api.create_user("alice", "right-password")
    hasher = CountingHasher(**CHEAP)
    limit_hashing(bound)
    try:
        with installed(hasher):
            await prepare_dummy_hash()
            hasher.reset()
            hasher.hold.clear()  # every argon2 call now waits at the start of its work
            logins = 8
            answers: list[int] = []

            async def one(i: int) -> None:
                email = "alice@example.com" if i % 2 else f"ghost{i}@example.com"
                answers.append((await login(client, email, f"guess-{i}")).status_code)

            async with anyio.create_task_group() as tasks:
                for i in range(logins):
                    tasks.start_soon(one, i)
                # The first K reach argon2; the others wait their turn, holding no argon2 memory.
                with anyio.fail_after(WAIT):
                    while not (  # noqa: ASYNC110 (bounded by fail_after)
                        hasher.active == bound
                        and hashing_limiter().statistics().tasks_waiting == logins - bound
                    ):
                        await anyio.sleep(0.01)
                hasher.hold.set()
            assert hasher.max_active == bound
            assert len(hasher.verified) == logins
            assert sorted(answers) == [401] * logins
    finally:
        limit_hashing(settings.password_hash_concurrency)
