"""A fake-provider process and a real ``chatd server`` configured to use it, for turn tests.

:func:`fake_provider` starts ``chatd dev fake-provider``; :func:`deployment` starts a server
on SQLite or on a fresh PostgreSQL database (:func:`database`), configures an
``openai-compat`` and an ``anthropic`` provider that both point at the fake, and a model
config for each. Tests drive many chats through one deployment, appending the replies each
needs to the fake's script just before the step that consumes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.server import (
    ServerProcess,
    chatd_env,
    fake_provider_process,
    postgres_database,
    wait_for,
)

PG_ENV = "CHATD_TEST_DATABASE_URL"
PROVIDERS = ("openai-compat", "anthropic")
ENDPOINTS = {"openai-compat": "openai", "anthropic": "anthropic"}
# Short engine intervals: tests never wait for a real one.
FAST = {
    "CHATD_ACQUIRE_INTERVAL": "0.2",
    "CHATD_HEARTBEAT_INTERVAL": "0.2",
    "CHATD_RETRY_INITIAL_DELAY": "0.05",
    "CHATD_RETRY_MAX_DELAY": "0.2",
    "CHATD_TESTING_TOOLS": "true",
}


@dataclass
class Fake:
    url: str

    def script(self, *entries: dict[str, Any]) -> None:
        """Append replies; each answers only a streamed call (titles and summaries are not)."""
        body = [{**e, "match": {"stream": True, **e.get("match", {})}} for e in entries]
        r = httpx2.post(self.url + "/fake/script", json=body, timeout=10)
        assert r.status_code == 200, r.text

    def remaining(self) -> int:
        r = httpx2.post(self.url + "/fake/script", json=[], timeout=10)
        return int(r.json()["remaining"])

    def open_gate(self, name: str) -> None:
        r = httpx2.post(f"{self.url}/fake/gates/{name}", timeout=10)
        assert r.status_code < 300, r.text

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = httpx2.get(self.url + "/fake/requests", timeout=10).json()
        return result


@contextmanager
def fake_provider(home: Path) -> Iterator[Fake]:
    with fake_provider_process(home) as url:
        yield Fake(url)


@contextmanager
def database(kind: str) -> Iterator[str]:
    """'' for the embedded SQLite, else a fresh PostgreSQL database (dropped afterwards)."""
    if kind == "sqlite":
        yield ""
        return
    with postgres_database(os.environ[PG_ENV], "chatd_turns") as url:
        yield url


class Client:
    """The chats API of one server, as its first admin (who also owns the chats)."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.base = url + "/api/experimental/chats"
        self.headers = {"Coder-Session-Token": token}

    def call(self, method: str, path: str = "", expect: int | None = None, **kw: Any) -> Any:
        r = httpx2.request(method, self.base + path, headers=self.headers, timeout=10, **kw)
        assert r.status_code == expect if expect else r.status_code < 300, r.text
        return r.json() if r.content else None

    def org_id(self) -> str:
        r = httpx2.get(self.url + "/api/v2/users/me", headers=self.headers, timeout=10)
        assert r.status_code == 200, r.text
        return str(r.json()["organization_ids"][0])

    def chat(self, chat_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("GET", f"/{chat_id}")
        return result

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        found = self.call("GET", f"/{chat_id}/messages", params={"limit": 100})["messages"]
        return sorted(found, key=lambda m: m["id"])

    def send(self, chat_id: str, text: str, **extra: Any) -> dict[str, Any]:
        body = {"content": [{"type": "text", "text": text}], **extra}
        result: dict[str, Any] = self.call("POST", f"/{chat_id}/messages", json=body)
        return result

    def wait_status(self, chat_id: str, *statuses: str) -> dict[str, Any]:
        chat: dict[str, Any] = {}

        def reached() -> bool:
            chat.update(self.chat(chat_id))
            return chat["status"] in statuses

        wait_for(reached, f"chat {chat_id} to become {'/'.join(statuses)}")
        return chat


@dataclass
class Deployment:
    server: ServerProcess
    api: Client
    fake: Fake
    models: dict[str, str]  # provider -> model config id

    def new_chat(self, text: str, provider: str = "openai-compat", **extra: Any) -> str:
        body = {
            "organization_id": self.api.org_id(),
            "content": [{"type": "text", "text": text}],
            "model_config_id": self.models[provider],
            **extra,
        }
        return str(self.api.call("POST", json=body)["id"])

    def idle_chat(self, provider: str = "openai-compat", **extra: Any) -> str:
        """A chat whose first turn (the fake's reply) is over: ``waiting``."""
        self.fake.script({"text": "Hello.", "match": {"endpoint": ENDPOINTS[provider]}})
        chat_id = self.new_chat("hello", provider, **extra)
        self.api.wait_status(chat_id, "waiting")
        return chat_id


@dataclass
class Servers:
    """Servers started one after another on one data directory and database."""

    env: dict[str, str]
    current: ServerProcess | None = None
    token: str = ""

    def start(self, **extra: str) -> Client:
        self.current = ServerProcess.start({**self.env, **extra})
        self.current.wait_ready()
        if not self.token:
            self.token = self.current.value("token")  # printed on the first start only
        return Client(self.current.url, self.token)

    def kill(self) -> None:
        assert self.current is not None
        self.current.proc.kill()
        self.current.proc.wait()
        self.current = None

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@contextmanager
def servers_on(kind: str, home: Path, **env: str) -> Iterator[Servers]:
    """:class:`Servers` on ``kind`` ("sqlite" or "postgres"; skipped when PG is off)."""
    if kind == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV}")
    with database(kind) as url:
        server_env = chatd_env(home, **{**FAST, **env})
        if url:
            server_env["CHATD_DATABASE_URL"] = url
        running = Servers(server_env)
        try:
            yield running
        finally:
            running.stop()


def configure_models(api: Client, fake: Fake) -> dict[str, str]:
    """An ``openai-compat`` and an ``anthropic`` provider on the fake, a model config for each;
    returns provider -> model config id."""
    providers = [
        {"provider": "openai-compat", "base_url": fake.url + "/v1"},
        {"provider": "anthropic", "base_url": fake.url, "api_key": "fake-key"},
    ]
    models = {}
    for body in providers:
        api.call("POST", "/providers", expect=201, json=body)
        config = api.call(
            "POST",
            "/model-configs",
            expect=201,
            json={"provider": body["provider"], "model": "fake-model", "context_limit": 100000},
        )
        models[body["provider"]] = str(config["id"])
    return models


@contextmanager
def deployment(home: Path, fake: Fake, kind: str, **env: str) -> Iterator[Deployment]:
    """A configured server on ``kind`` ("sqlite" or "postgres"; skipped when PG is off)."""
    if kind == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV}")
    with database(kind) as database_url:
        server_env = chatd_env(home, **{**FAST, **env})
        if database_url:
            server_env["CHATD_DATABASE_URL"] = database_url
        server = ServerProcess.start(server_env)
        try:
            server.wait_ready()
            api = Client(server.url, server.value("token"))
            yield Deployment(server, api, fake, configure_models(api, fake))
        finally:
            server.stop()
