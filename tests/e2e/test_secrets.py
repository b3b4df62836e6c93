"""Secrets at rest with real ``chatd server`` processes: the first start off a terminal, file
modes, provider keys sealed on disk yet working, ``chatd secrets rotate``."""

from __future__ import annotations

import json
import os
import pty
import select
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from chatd.secretbox import generate_key, is_ciphertext, key_id, key_id_of, parse_key
from tests.conftest import PG_ENV, PG_SKIP
from tests.e2e.server import (
    STARTUP_TIMEOUT,
    ServerProcess,
    chatd_env,
    fake_provider_process,
    free_port,
    postgres_database,
    run_cli,
)
from tests.e2e.turn_harness import FAST, Client

pytestmark = pytest.mark.slow

CENTRAL = "sk-central-e2e-Z8w1Qk3vT"
OWN = "sk-own-e2e-Pq7Lm2XcR4"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    """A fake provider that answers only calls carrying one of the two keys."""
    with fake_provider_process(tmp_path, "--api-key", CENTRAL, "--api-key", OWN) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for the embedded SQLite, else a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield ""
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    with postgres_database(base, "chatd_secrets") as url:
        yield url


def start(env: dict[str, str], servers: list[ServerProcess]) -> ServerProcess:
    server = ServerProcess.start(env)
    servers.append(server)
    server.wait_ready()
    return server


def sqlite_bytes(data_dir: Path) -> bytes:
    files = [data_dir / name for name in ("chatd.db", "chatd.db-wal", "chatd.db-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def stored_keys(database_url: str, data_dir: Path) -> list[str]:
    """The raw values of both key columns, read straight from the database."""
    query = (
        "SELECT api_key FROM chat_providers WHERE api_key <> '' "
        "UNION ALL SELECT api_key FROM user_chat_provider_keys"
    )
    if database_url:
        with psycopg.connect(database_url) as conn:
            return [row[0] for row in conn.execute(query)]
    with sqlite3.connect(data_dir / "chatd.db") as conn:
        return [row[0] for row in conn.execute(query)]


def postgres_text(database_url: str) -> str:
    """Every row of every table of the database, as text."""
    with psycopg.connect(database_url) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
        )


def configure(api: Client, fake: str) -> dict[str, str]:
    """openai-compat on the fake with the central key; anthropic on the fake taking only
    users' own keys, with the admin's own key stored. Model configs for both."""
    api.call(
        "POST",
        "/providers",
        expect=201,
        json={"provider": "openai-compat", "base_url": fake + "/v1", "api_key": CENTRAL},
    )
    anthropic = api.call(
        "POST",
        "/providers",
        expect=201,
        json={
            "provider": "anthropic",
            "base_url": fake,
            "central_api_key_enabled": False,
            "allow_user_api_key": True,
        },
    )
    api.call("PUT", f"/user-provider-configs/{anthropic['id']}", json={"api_key": OWN})
    models = {}
    for provider in ("openai-compat", "anthropic"):
        config = api.call(
            "POST",
            "/model-configs",
            expect=201,
            json={"provider": provider, "model": "fake-model", "context_limit": 100000},
        )
        models[provider] = str(config["id"])
    return models


def chat_turn_works(api: Client, model_config_id: str) -> None:
    """A chat on that model runs its turn to the fake's reply (which checks the key)."""
    chat = api.call(
        "POST",
        json={
            "organization_id": api.org_id(),
            "content": [{"type": "text", "text": "hello"}],
            "model_config_id": model_config_id,
        },
    )
    done = api.wait_status(chat["id"], "waiting", "error")
    assert done["status"] == "waiting", done.get("last_error")
    replies = [m for m in api.messages(chat["id"]) if m["role"] == "assistant"]
    assert replies, "the turn left no reply"


def test_first_start_off_a_terminal_prints_no_secrets_and_every_file_is_private(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    env = chatd_env(tmp_path, CHATD_WORKERS_ENABLED="false")
    server = start(env, servers)  # its output is a pipe, not a terminal
    data, config = tmp_path / "data", tmp_path / "config"
    credentials = data / "first-user.txt"
    password, token = server.value("password"), server.value("token")  # from the file
    output = "\n".join(server.output)
    assert "First start: created the admin user." in output
    assert password not in output and token not in output
    assert str(credentials) in output and str(config / "session.json") in output
    assert server.value("email") == "admin@chatd.local"  # printed: not a secret
    assert Client(server.url, token).org_id()  # the token from the file works

    expected = {
        data: 0o700,
        data / "chatd.db": 0o600,
        data / "chatd.db-wal": 0o600,
        data / "chatd.db-shm": 0o600,
        data / "secret.key": 0o600,
        data / "chatd.lock": 0o600,
        credentials: 0o600,
        config: 0o700,
        config / "session.json": 0o600,
    }
    assert {path: mode(path) for path in expected} == expected
    parse_key((data / "secret.key").read_text(), "the key file")  # a well-formed key


def test_first_start_on_a_terminal_prints_the_credentials_and_writes_no_file(
    tmp_path: Path,
) -> None:
    env = chatd_env(
        tmp_path, CHATD_WORKERS_ENABLED="false", CHATD_HTTP_ADDRESS=f"127.0.0.1:{free_port()}"
    )
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatd.cli.main", "server"],
        env=env,
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while b"chatd listening on" not in seen:
            assert time.monotonic() < deadline and proc.poll() is None, seen.decode()
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                seen += os.read(controller, 4096)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        os.close(controller)
    lines = [line.strip() for line in seen.decode().splitlines()]
    password = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("password:"))
    token = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("token:"))
    assert len(password) == 20 and token
    assert json.loads((tmp_path / "config" / "session.json").read_text())["token"] == token
    assert not (tmp_path / "data" / "first-user.txt").exists()


def test_a_malformed_secret_key_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    env = chatd_env(tmp_path, CHATD_SECRET_KEY="not-a-key")
    result = run_cli(env, "server")
    assert result.returncode == 2
    assert "CHATD_SECRET_KEY must encode exactly 32 bytes" in result.stderr
    assert "chatd secrets generate-key" in result.stderr


def test_provider_keys_are_sealed_on_disk_and_still_work(
    tmp_path: Path, servers: list[ServerProcess], fake: str, database_url: str
) -> None:
    env = chatd_env(tmp_path, **FAST)
    if database_url:
        env.update(CHATD_DATABASE_URL=database_url, CHATD_SECRET_KEY=generate_key())
    server = start(env, servers)
    api = Client(server.url, server.value("token"))
    models = configure(api, fake)
    chat_turn_works(api, models["openai-compat"])  # the central key
    chat_turn_works(api, models["anthropic"])  # the admin's own key

    values = stored_keys(database_url, tmp_path / "data")
    assert len(values) == 2 and all(is_ciphertext(v) for v in values)
    if database_url:
        text = postgres_text(database_url)
        assert CENTRAL not in text and OWN not in text
    else:
        raw = sqlite_bytes(tmp_path / "data")
        assert CENTRAL.encode() not in raw and OWN.encode() not in raw
    server.stop()
    if not database_url:  # and after the WAL was checkpointed into the database file
        raw = sqlite_bytes(tmp_path / "data")
        assert CENTRAL.encode() not in raw and OWN.encode() not in raw
    assert not any(CENTRAL in line or OWN in line for line in server.output)


def test_rotate_re_encrypts_and_the_server_then_needs_only_the_new_key(
    tmp_path: Path, servers: list[ServerProcess], fake: str, database_url: str
) -> None:
    """SQLite with the key file (rotate makes the new key), PostgreSQL with CHATD_SECRET_KEY
    (the new key first, the old after it)."""
    env = chatd_env(tmp_path, **FAST)
    old_key = generate_key()
    if database_url:
        env.update(CHATD_DATABASE_URL=database_url, CHATD_SECRET_KEY=old_key)
    server = start(env, servers)
    api = Client(server.url, server.value("token"))
    models = configure(api, fake)
    key_path = tmp_path / "data" / "secret.key"
    if not database_url:
        old_key = key_path.read_text().strip()
        refused = run_cli(env, "secrets", "rotate")  # the server still holds the data dir
        assert refused.returncode == 1 and "another chatd server" in refused.stderr
    server.stop()

    rotate_env = dict(env)
    new_key = generate_key()
    if database_url:
        rotate_env["CHATD_SECRET_KEY"] = f"{new_key},{old_key}"
    rotated = run_cli(rotate_env, "secrets", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted 2 secrets" in rotated.stdout
    if not database_url:
        new_key = key_path.read_text().strip()
        assert new_key != old_key and mode(key_path) == 0o600
        assert not (tmp_path / "data" / "secret.key.next").exists()
    new_id = key_id(parse_key(new_key, "new"))
    assert {key_id_of(v) for v in stored_keys(database_url, tmp_path / "data")} == {new_id}

    # The new key alone serves the stored keys.
    if database_url:
        env["CHATD_SECRET_KEY"] = new_key
    again = start(env, servers)
    api = Client(again.url, api.token)
    chat_turn_works(api, models["openai-compat"])
    chat_turn_works(api, models["anthropic"])
    again.stop()

    # The old key alone no longer does: such a server refuses to start.
    stale = ServerProcess.start({**env, "CHATD_SECRET_KEY": old_key})
    servers.append(stale)
    assert stale.proc.wait(timeout=60) == 1
    stale.collect(final=True)
    old_id = key_id(parse_key(old_key, "old"))
    message = "\n".join(stale.output)
    assert f"sealed under key {new_id}" in message and f"its key is {old_id}" in message
