"""What the MCP turn tests share: test servers run as their own processes on loopback ports,
configurations written straight to the store, and chats naming them."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from chatd.store import mcp_servers as mq
from chatd.store.db import Database
from chatd.store.tables import chats
from tests.engine.tool_turns import ToolTurn

KEY = "mcp-test-key-83Lq0Zp"
TOOLS = Path(__file__).parent.parent / "tools"
SERVER_MAIN = TOOLS / "mcp_server_main.py"
MISBEHAVING_MAIN = TOOLS / "mcp_misbehaving_main.py"
# The test server's tools the tests do not offer unless they say so.
EXTRA_TOOLS = ["sleepy", "grow", "extra"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve_process(script: Path, *args: str) -> Iterator[int]:
    """Run ``script PORT? args`` (the port first when ``args`` holds ``{port}``) until the
    block ends; yields the port once it accepts connections."""
    port = free_port()
    argv = [a.format(port=port) for a in args]
    process = subprocess.Popen([sys.executable, str(script), *argv])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert process.poll() is None, f"{script.name} exited"
                assert time.monotonic() < deadline, f"{script.name} did not start"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(10)


async def add_server(db: Database, slug: str, url: str, **extra: Any) -> uuid.UUID:
    values: dict[str, Any] = {
        "display_name": slug,
        "slug": slug,
        "description": "",
        "icon_url": "",
        "transport": "streamable_http",
        "url": url,
        "auth_type": "api_key",
        "api_key_header": "X-Api-Key",
        "api_key_value": KEY,
        "tool_allow_list": [],
        "tool_deny_list": ["secret", *EXTRA_TOOLS],
        "availability": "default_off",
        "enabled": True,
        "model_intent": False,
        "allow_in_plan_mode": False,
    } | extra
    async with db.write() as conn:
        row = await mq.create_config(conn, db.now(), values, db.secrets)
    config_id: uuid.UUID = row["id"]
    return config_id


async def use(turn: ToolTurn, *ids: uuid.UUID, plan: bool = False) -> None:
    async with turn.h.db.write() as conn:
        await conn.execute(
            chats.update()
            .where(chats.c.id == turn.h.ctx.chat_id)
            .values(mcp_server_ids=[str(i) for i in ids], plan_mode="plan" if plan else None)
        )
