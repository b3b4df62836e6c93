"""Shared fixtures: a migrated database per test on every configured backend, the app, clients.

SQLite always runs. PostgreSQL runs when CHATD_TEST_DATABASE_URL points at a server (any
database on it): the suite creates its own database there and drops it at the end.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import psycopg
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi import FastAPI

from chatd.api.app import create_app
from chatd.security import use_password_hasher
from chatd.settings import Settings, to_async_url
from chatd.store.db import Database
from chatd.store.migrate import upgrade
from chatd.store.tables import metadata
from tests.helpers import TEST_SECRETS, Api, ApiUser, bootstrap_admin
from tests.tools.agents import AgentPool, DispatcherPool
from tests.workspace.agents import KINDS as REAL_KINDS
from tests.workspace.agents import RealAgents
from tests.workspace.agents import real_agents as serve_real_agents

PG_ENV = "CHATD_TEST_DATABASE_URL"
TEST_RATE_LIMIT_BURST = 1_000_000
PG_SKIP = f"PostgreSQL tests are off: set {PG_ENV}=postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(PG_SKIP)
    name = f"chatd_test_{uuid.uuid4().hex[:12]}"
    admin_url = base.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = to_async_url(admin_url.rsplit("/", 1)[0] + "/" + name)
    _migrate_sync(url)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (migrating once is much faster)."""
    path = tmp_path_factory.mktemp("template") / "chatd.db"
    _migrate_sync(f"sqlite:///{path}")
    return path


def _migrate_sync(url: str) -> None:
    # The app's PostgreSQL driver (asyncpg) is async only; psycopg runs the sync migration.
    engine = sa.create_engine(url.replace("postgresql+asyncpg://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        upgrade(conn)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgres" and not os.environ.get(PG_ENV):
        pytest.skip(PG_SKIP)
    return str(request.param)


@pytest.fixture
async def db(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Database]:
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "chatd.db"
        shutil.copy(template, path)
        database = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
    else:
        url: str = request.getfixturevalue("pg_url")
        database = Database(url, secrets=TEST_SECRETS)
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        async with database.write() as conn:
            await conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    try:
        yield database
    finally:
        await database.close()


# The kinds of workspace agent the tool tests run against: in-process Dispatchers, and real
# agents behind a real server (tests/workspace/agents.py). A test marked
# ``agent_kinds("dispatcher")`` runs with the ones named only. The real agents run with the
# test's chat on SQLite alone: what they add is the agent's side, not the store's.
AGENT_KINDS = ("dispatcher", *REAL_KINDS)


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "agent_kind" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("agent_kinds")
    kinds = marker.args if marker else AGENT_KINDS
    if "backend" not in metafunc.fixturenames:
        metafunc.parametrize("agent_kind", kinds, indirect=True)
        return
    combos = [
        (backend, kind)
        for kind in kinds
        for backend in (("sqlite", "postgres") if kind == "dispatcher" else ("sqlite",))
    ]
    # As a mark, so that it takes the place of the backend fixture's own parameters.
    mark = pytest.mark.parametrize(("backend", "agent_kind"), combos, indirect=True)
    metafunc.definition.add_marker(mark)


@pytest.fixture(scope="module")
async def real_agents(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> AsyncIterator[RealAgents]:
    """A server with a local and an external workspace, for a whole test module."""
    async with serve_real_agents(tmp_path_factory.mktemp("agents"), sqlite_template) as agents:
        yield agents


@pytest.fixture
def agent_kind(request: pytest.FixtureRequest) -> tuple[str, RealAgents | None]:
    """The kind of agent of a tool test, with the real agents when it needs them."""
    kind = str(request.param)
    if kind == "dispatcher":
        return kind, None
    real: RealAgents = request.getfixturevalue("real_agents")
    return kind, real


@pytest.fixture
async def agent_pool(agent_kind: tuple[str, RealAgents | None]) -> AsyncIterator[AgentPool]:
    """Where the tool tests' workspaces live and how their agents are reached."""
    kind, real = agent_kind
    pool = DispatcherPool() if real is None else real.pool(kind)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        config_dir=tmp_path / "config",
        first_user_email="admin@example.com",
        first_user_username="admin",
        first_user_password="correct-horse-battery",
        openai_api_key="",
        anthropic_api_key="",
        workers_enabled=False,
        # The per-user rate limit runs in every test, with a burst no test reaches
        # (tests/api/test_rate_limit.py shortens it).
        rate_limit_burst=TEST_RATE_LIMIT_BURST,
    )


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    application = create_app(settings, db)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@pytest.fixture
async def api(client: httpx2.AsyncClient, db: Database, settings: Settings) -> Api:
    return Api(client, await bootstrap_admin(db, settings))


@pytest.fixture
async def admin(api: Api) -> ApiUser:
    return api.admin


@pytest.fixture
async def member(api: Api) -> ApiUser:
    return await api.create_user("member")


def pytest_configure(config: Any) -> None:
    # Real argon2, with cheap parameters: hashing cost is not what these tests check.
    use_password_hasher(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    os.environ.setdefault("CHATD_CONFIG_DIR", str(Path(config.rootpath) / ".pytest-config"))
