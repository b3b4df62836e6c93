"""Several real ``chatd server`` processes ("replicas") sharing one fresh PostgreSQL database.

:func:`replicas` starts the first server alone (it migrates the database and creates the
first user, whose token then works on every replica), then the others at once. Each has its
own home and data directory but the same database and secret key (the provider keys one
replica seals, the others open), and the short engine intervals of the turn tests. The
first one configures an ``openai-compat`` and an ``anthropic`` provider on the fake provider
and a model config for each; every replica sees them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chatd.secretbox import generate_key
from tests.e2e.server import ServerProcess, chatd_env, postgres_database
from tests.e2e.turn_harness import FAST, PG_ENV, Client, Fake, configure_models


@dataclass
class Replicas:
    servers: list[ServerProcess]
    token: str  # the first user's (an admin, who owns the chats made here)
    database_url: str  # postgresql://... (for psycopg)
    fake: Fake
    models: dict[str, str] = field(default_factory=dict)  # provider -> model config id
    env: dict[str, str] = field(default_factory=dict)  # what every replica was started with
    _org_id: str = ""

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def client(self, index: int) -> Client:
        """The chats API of replica ``index``, as the first user."""
        return Client(self.servers[index].url, self.token)

    def org_id(self) -> str:
        if not self._org_id:
            self._org_id = self.client(0).org_id()
        return self._org_id

    def new_chat(self, index: int, text: str, provider: str = "openai-compat", **extra: Any) -> str:
        """A chat made through replica ``index``, its first message ``text``."""
        body = {
            "organization_id": self.org_id(),
            "content": [{"type": "text", "text": text}],
            "model_config_id": self.models[provider],
            **extra,
        }
        return str(self.client(index).call("POST", json=body)["id"])

    def stop(self, index: int) -> int:
        """Stop replica ``index`` gracefully; its exit status (-SIGTERM when clean)."""
        return self.servers[index].stop()


REDIS_ENV = "CHATD_TEST_REDIS_URL"
# How a turn's parts reach the other replicas: the internal relay, or Redis Streams.
PART_PATHS = ("redis", "relay")


def part_path_env(path: str) -> dict[str, str]:
    """The replicas' settings for ``path`` (skipped for Redis unless its tests are on)."""
    if path == "relay":
        return {}
    url = os.environ.get(REDIS_ENV)
    if not url:
        pytest.skip(f"Redis tests are off: set {REDIS_ENV}")
    return {"CHATD_REDIS_URL": url}


@contextmanager
def replicas(
    home: Path, fake: Fake, count: int, admin_url: str | None = None, **env: str
) -> Iterator[Replicas]:
    """``count`` configured replicas on a fresh PostgreSQL database of the server of
    ``admin_url`` (None: the tests' server; skipped when PostgreSQL tests are off); all are
    stopped, and the database dropped, on the way out."""
    if not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV}")
    # Small pools: several replicas, and the other tests' databases, share the server's
    # max_connections.
    shared = {
        **FAST,
        "CHATD_SECRET_KEY": generate_key(),
        "CHATD_DATABASE_POOL_SIZE": "8",
        **env,
    }
    database_server = admin_url or os.environ[PG_ENV]
    with postgres_database(database_server, "chatd_replicas") as url, ExitStack() as stack:
        homes = [home / f"replica-{i}" for i in range(count)]
        for path in homes:
            path.mkdir(parents=True, exist_ok=True)
        envs = [chatd_env(path, CHATD_DATABASE_URL=url, **shared) for path in homes]
        servers: list[ServerProcess] = []

        def start(indexes: range) -> None:
            started = [ServerProcess.start(envs[i]) for i in indexes]
            for server in started:
                servers.append(server)
                stack.callback(server.stop)
            for server in started:
                server.wait_ready()

        start(range(1))  # the first migrates and makes the first user
        token = servers[0].value("token")
        start(range(1, count))
        running = Replicas(servers, token, url, fake, env=shared)
        running.models = configure_models(running.client(0), fake)
        yield running
