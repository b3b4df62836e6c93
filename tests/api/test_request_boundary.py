"""Request ids, and what an unhandled error looks like to the client and in the log."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
import structlog

from chatd.logging import configure_logging
from chatd.store.db import Database
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

FILES = "/api/experimental/chats/files"


async def test_every_answer_carries_a_request_id(api: Api, member: ApiUser) -> None:
    first = await api.request("GET", "/api/v2/users/me", member)
    second = await api.client.get("/api/v2/users/me", headers={"Coder-Session-Token": "x"})
    nowhere = await api.client.get("/api/v2/nowhere")  # no route
    ids = [r.headers["x-request-id"] for r in (first, second, nowhere)]
    assert len(set(ids)) == 3
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert second.status_code == 401 and nowhere.status_code == 404
    assert all(r.headers["x-content-type-options"] == "nosniff" for r in (first, second, nowhere))


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("req-2024.01:abc_DEF/+=~", True),
        (str(uuid.UUID(int=7)), True),
        ("x" * 128, True),
        ("x" * 129, False),
        ("two words", False),
        ("", False),
        ("<script>", False),
    ],
)
async def test_a_sane_client_request_id_is_kept(
    api: Api, member: ApiUser, sent: str, kept: bool
) -> None:
    r = await api.client.get("/api/v2/users/me", headers={**member.headers, "X-Request-Id": sent})
    assert r.status_code == 200
    assert (r.headers["x-request-id"] == sent) is kept
    if not kept:
        assert len(r.headers["x-request-id"]) == 32


@pytest.fixture
async def files_table_gone(db: Database) -> AsyncIterator[None]:
    """The chat_files table renamed away, so that reading a file fails inside the store."""
    async with db.write() as conn:
        await conn.execute(sa.text("ALTER TABLE chat_files RENAME TO chat_files_away"))
    try:
        yield
    finally:
        async with db.write() as conn:
            await conn.execute(sa.text("ALTER TABLE chat_files_away RENAME TO chat_files"))


@pytest.mark.usefixtures("files_table_gone")
async def test_an_unhandled_error_is_a_500_and_one_log_line(api: Api, member: ApiUser) -> None:
    with structlog.testing.capture_logs() as logs:
        r = await api.request("GET", f"{FILES}/{uuid.uuid4()}", member)
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    assert envelope(r) == {"message": "Internal error.", "detail": f"Request ID: {rid}"}

    errors = [e for e in logs if e["log_level"] in ("error", "critical")]
    assert len(errors) == 1
    (line,) = errors
    assert line["event"] == "unhandled error"
    assert line["request_id"] == rid
    assert line["error"] == "StoreError"
    assert "exc_info" not in line and "exception" not in line
    # The traceback is there for whoever runs at debug level.
    (debug,) = [e for e in logs if e["log_level"] == "debug"]
    assert isinstance(debug["exc_info"], Exception)

    # The same client id the client sent is the one quoted.
    r = await api.client.get(
        f"{FILES}/{uuid.uuid4()}", headers={**member.headers, "X-Request-Id": "ticket-42"}
    )
    assert envelope(r)["detail"] == "Request ID: ticket-42"


@pytest.mark.usefixtures("files_table_gone")
@pytest.mark.parametrize("level", ["info", "debug"])
async def test_a_500_prints_one_line_unless_debugging(
    api: Api, member: ApiUser, capsys: pytest.CaptureFixture[str], level: str
) -> None:
    configure_logging("json", level)
    try:
        capsys.readouterr()
        r = await api.request("GET", f"{FILES}/{uuid.uuid4()}", member)
        printed = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        structlog.reset_defaults()
    assert r.status_code == 500
    rid = r.headers["x-request-id"]
    error, *debug = printed
    assert error["level"] == "error" and error["event"] == "unhandled error"
    assert error["request_id"] == rid and "exception" not in error
    if level == "info":
        assert debug == []
    else:
        # The traceback, tied to the request by the log context.
        (traceback,) = debug
        assert traceback["level"] == "debug" and traceback["request_id"] == rid
        assert traceback["exception"].startswith("Traceback")
