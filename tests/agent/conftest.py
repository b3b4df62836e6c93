"""An agent's operations on a temporary workspace directory, in-process."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from chatd.agent.dispatcher import Dispatcher
from chatd.agent.errors import OpError


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    directory = tmp_path / "ws"
    directory.mkdir()
    return directory.resolve()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    directory = tmp_path / "home"
    directory.mkdir()
    return directory.resolve()


@pytest.fixture
async def agent(workspace: Path, home: Path) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(workspace, home=home)
    yield dispatcher
    await dispatcher.close()


async def call(agent: Dispatcher, op: str, **args: Any) -> dict[str, Any]:
    return await agent.handle(op, args)


async def fails(agent: Dispatcher, op: str, code: str, **args: Any) -> str:
    """The message of the error ``op`` answers, which must have ``code``."""
    with pytest.raises(OpError) as caught:
        await agent.handle(op, args)
    assert caught.value.code == code, caught.value.message
    return caught.value.message


def members(pgid: int) -> int:
    """How many processes of the group still run (zombies excluded)."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            count += 1
    return count


async def running_members(pgid: int, count: int) -> None:
    """Wait until ``count`` processes of the group run (polled: nothing signals a fork)."""
    with anyio.fail_after(30):
        for _ in itertools.count():
            if members(pgid) >= count:
                return
            await anyio.sleep(0.01)
