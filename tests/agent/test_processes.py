"""process_start, process_output, process_list, process_signal: real subprocesses."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatd.agent import groups, protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.errors import OpError
from chatd.agent.process import Output
from chatd.agent.processes import ProcessTable
from tests.agent.conftest import call, fails, members, running_members

pytestmark = pytest.mark.anyio

LONG = 30_000  # ms: a wait a quick command never reaches


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """The agent runs on uvloop where it is installed: processes work on both loops."""
    return request.param  # type: ignore[no-any-return]


async def test_fast_command_in_one_call(agent: Dispatcher, workspace: Path) -> None:
    result = await call(
        agent, "process_start", command="echo out; echo err >&2; exit 3", wait_ms=LONG
    )
    assert result["running"] is False
    assert result["exit_code"] == 3
    assert result["output"] == "out\nerr\n"
    assert result["output_truncated"] is False
    assert result["process_id"] == "p1"
    assert result["command"] == "echo out; echo err >&2; exit 3"
    assert isinstance(result["wall_duration_ms"], int)
    assert result["started_at"].endswith("Z")
    again = await call(agent, "process_output", process_id="p1")
    assert again["output"] == "out\nerr\n" and again["exit_code"] == 3


async def test_cwd_env_and_stdin(workspace: Path) -> None:
    (workspace / "sub").mkdir()
    env = {"PATH": os.environ["PATH"], "KEEP": "base", protocol.TOKEN_ENV: "secret-token"}
    env[protocol.URL_ENV] = "http://127.0.0.1:1"
    agent = Dispatcher(workspace, env=env)
    try:
        result = await call(
            agent,
            "process_start",
            command='pwd; echo "$KEEP $EXTRA ${CHATD_AGENT_TOKEN-no} ${CHATD_AGENT_URL-no}"; cat',
            workdir="sub",
            env={"EXTRA": "added", "KEEP": "over"},
            wait_ms=LONG,
        )
    finally:
        await agent.close()
    assert result["output"] == f"{workspace / 'sub'}\nover added no no\n"
    assert result["exit_code"] == 0


async def test_workdir_and_argument_refusals(agent: Dispatcher, workspace: Path) -> None:
    await fails(agent, "process_start", protocol.OUTSIDE_WORKSPACE, command="true", workdir="..")
    await fails(agent, "process_start", protocol.NOT_FOUND, command="true", workdir="nope")
    (workspace / "f").write_text("")
    await fails(agent, "process_start", protocol.FAILED, command="true", workdir="f")
    await fails(agent, "process_start", protocol.BAD_REQUEST)
    await fails(agent, "process_start", protocol.BAD_REQUEST, command="  ")
    await fails(agent, "process_start", protocol.BAD_REQUEST, command="true", wait_ms=-1)
    await fails(agent, "process_start", protocol.BAD_REQUEST, command="true", env={"A": 1})
    await fails(agent, "process_start", protocol.BAD_REQUEST, command="true", env={"A=B": "c"})
    await fails(agent, "process_start", protocol.BAD_REQUEST, command="true", background="yes")
    await fails(agent, "process_output", protocol.NOT_FOUND, process_id="p99")
    await fails(agent, "process_output", protocol.BAD_REQUEST)
    assert (await call(agent, "process_list"))["processes"] == []


async def test_output_flood_keeps_the_end(agent: Dispatcher) -> None:
    result = await call(agent, "process_start", command="yes | head -c 5000000", wait_ms=LONG)
    assert result["running"] is False and result["exit_code"] == 0
    assert result["output_truncated"] is True
    assert len(result["output"]) == protocol.PROCESS_OUTPUT_KEPT
    assert set(result["output"]) == {"y", "\n"}


async def test_output_is_utf8_with_replacement(agent: Dispatcher) -> None:
    result = await call(agent, "process_start", command=r"printf '\377ok é'", wait_ms=LONG)
    assert result["output"] == "\ufffdok é"


def test_cut_output_skips_a_split_character() -> None:
    output = Output(kept=5)
    output.add("aé".encode())
    output.add("éé".encode())  # 7 bytes in all: the first 2 are dropped, mid-character
    assert output.dropped == 2
    assert output.text() == "éé"


async def test_wait_ms_answers_while_running(agent: Dispatcher) -> None:
    started = await call(agent, "process_start", command="sleep 100", wait_ms=20)
    assert started["running"] is True and started["exit_code"] is None
    snapshot = await call(agent, "process_output", process_id=started["process_id"], wait_ms=0)
    assert snapshot["running"] is True
    listed = await call(agent, "process_list")
    assert listed["processes"][0]["running"] is True
    assert "output" not in listed["processes"][0]
    await call(agent, "process_signal", process_id=started["process_id"], signal="terminate")
    ended = await call(agent, "process_output", process_id=started["process_id"], wait_ms=LONG)
    assert ended["running"] is False
    assert ended["exit_code"] == 143 and ended["signal"] == "SIGTERM"


async def test_kill_reaches_the_children(agent: Dispatcher) -> None:
    started = await call(
        agent, "process_start", command="echo started; sleep 100 & sleep 100 & wait", wait_ms=0
    )
    pgid = started["pid"]
    await running_members(pgid, 3)
    assert await call(agent, "process_signal", process_id="p1", signal="kill") == {"ok": True}
    assert members(pgid) == 0
    ended = await call(agent, "process_output", process_id="p1", wait_ms=LONG)
    assert ended["running"] is False and ended["exit_code"] == 137
    assert ended["output"] == "started\n"
    message = await fails(agent, "process_signal", protocol.FAILED, process_id="p1", signal="kill")
    assert "already exited" in message
    await fails(agent, "process_signal", protocol.BAD_REQUEST, process_id="p1", signal="HUP")


async def test_many_forks_are_all_killed(agent: Dispatcher) -> None:
    command = "for i in $(seq 200); do sleep 30 & done; wait"
    started = await call(agent, "process_start", command=command, wait_ms=0)
    pgid = started["pid"]
    await running_members(pgid, 201)
    await call(agent, "process_signal", process_id=started["process_id"], signal="kill")
    assert members(pgid) == 0
    assert not groups.alive(pgid)


async def test_leftover_child_does_not_hold_the_answer(agent: Dispatcher) -> None:
    result = await call(agent, "process_start", command="sleep 100 & echo done", wait_ms=LONG)
    assert result["running"] is False and result["exit_code"] == 0
    assert result["output"] == "done\n"
    assert groups.alive(result["pid"])  # killed by the fixture's close, as on shutdown


async def test_running_cap(agent: Dispatcher) -> None:
    for _ in range(protocol.MAX_RUNNING_PROCESSES):
        await call(agent, "process_start", command="sleep 100")
    message = await fails(agent, "process_start", protocol.LIMIT, command="true")
    assert str(protocol.MAX_RUNNING_PROCESSES) in message


@pytest.fixture
async def small_table(workspace: Path) -> AsyncIterator[ProcessTable]:
    table = ProcessTable(workspace, os.environ, max_running=2, max_kept=3)
    yield table
    await table.close()


async def test_oldest_finished_are_forgotten(small_table: ProcessTable) -> None:
    await small_table.start({"command": "sleep 100"})
    for _ in range(3):
        await small_table.start({"command": "true", "wait_ms": LONG})
    listed = small_table.list({})["processes"]
    assert [p["process_id"] for p in listed] == ["p1", "p3", "p4"]
    with pytest.raises(OpError):
        await small_table.output({"process_id": "p2"})
    await small_table.start({"command": "sleep 100"})
    with pytest.raises(OpError) as caught:
        await small_table.start({"command": "sleep 100"})
    assert caught.value.code == protocol.LIMIT
    assert [p["process_id"] for p in small_table.list({})["processes"]] == ["p1", "p4", "p5"]


async def test_close_kills_everything(workspace: Path) -> None:
    agent = Dispatcher(workspace)
    started = await call(agent, "process_start", command="sleep 100 & sleep 100")
    await running_members(started["pid"], 3)
    await agent.close()
    assert members(started["pid"]) == 0
