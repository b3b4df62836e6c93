"""The real ``chatd server`` and CLI: first start, restart, the single-replica lock, PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import PG_ENV, PG_SKIP
from tests.e2e.server import ServerProcess, chatd_env, postgres_database, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def test_first_start_cli_and_restart_on_sqlite(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = chatd_env(tmp_path)
    server = ServerProcess.start(env)
    servers.append(server)
    server.wait_ready()

    token = server.value("token")
    password = server.value("password")
    assert server.value("email") == "admin@chatd.local"
    assert server.value("URL") == server.url
    headers = {"Coder-Session-Token": token}
    me = httpx2.get(server.url + "/api/v2/users/me", headers=headers)
    assert me.status_code == 200 and me.json()["username"] == "admin"

    saved = json.loads((tmp_path / "config" / "session.json").read_text())
    assert saved == {"url": server.url, "token": token}
    assert (tmp_path / "data" / "chatd.db").exists()

    # The CLI uses the saved session.
    created = run_cli(
        env,
        "users",
        "create",
        "--email",
        "bo@example.com",
        "--username",
        "bo",
        "--password",
        "password-123",
    )
    assert created.returncode == 0, created.stderr
    assert "Created user bo" in created.stdout
    minted = run_cli(env, "tokens", "create", "--name", "ci")
    assert minted.returncode == 0, minted.stderr
    ci_token = minted.stdout.strip()
    me = httpx2.get(server.url + "/api/v2/users/me", headers={"Coder-Session-Token": ci_token})
    assert me.status_code == 200

    # Log in as the new user with email and password; the session file now holds their token.
    login = run_cli(
        env, "login", server.url, "--email", "bo@example.com", "--password", "password-123"
    )
    assert login.returncode == 0, login.stderr
    assert "as bo" in login.stdout
    denied = run_cli(
        env,
        "users",
        "create",
        "--email",
        "x@example.com",
        "--username",
        "x",
        "--password",
        "password-123",
    )
    assert denied.returncode == 1
    assert "error 403" in denied.stderr

    # The printed password works too.
    r = httpx2.post(
        server.url + "/api/v2/users/login",
        json={"email": "admin@chatd.local", "password": password},
    )
    assert r.status_code == 201

    # A second replica on the same SQLite data dir is refused.
    second = ServerProcess.start(env)
    servers.append(second)
    assert second.proc.wait(timeout=60) == 1
    second.collect(final=True)
    assert any("another chatd server" in line for line in second.output)

    # Restart: no second admin, the old token still works.
    assert server.stop() == -signal.SIGTERM
    assert any("Finished server process" in line for line in server.output)
    again = ServerProcess.start(env)
    servers.append(again)
    again.wait_ready()
    assert not any("First start" in line for line in again.output)
    me = httpx2.get(again.url + "/api/v2/users/me", headers=headers)
    assert me.status_code == 200


def test_unattended_first_user_on_postgres(tmp_path: Path, servers: list[ServerProcess]) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with postgres_database(base, "chatd_e2e") as database_url:
        env = chatd_env(
            tmp_path,
            CHATD_DATABASE_URL=database_url,
            CHATD_FIRST_USER_EMAIL="ops@example.com",
            CHATD_FIRST_USER_USERNAME="ops",
            CHATD_FIRST_USER_PASSWORD="ops-password-1",
        )
        # Two replicas start at once against an empty database: migrations are serialised
        # and exactly one admin is created.
        a, b = ServerProcess.start(env), ServerProcess.start(env)
        servers.extend([a, b])
        try:
            a.wait_ready()
            b.wait_ready()
            banners = [s for s in (a, b) if any("First start" in line for line in s.output)]
            assert len(banners) == 1
            r = httpx2.post(
                b.url + "/api/v2/users/login",
                json={"email": "ops@example.com", "password": "ops-password-1"},
            )
            assert r.status_code == 201
            assert not (tmp_path / "data" / "chatd.db").exists()
        finally:
            for server in servers:  # before the database is dropped
                server.stop()
