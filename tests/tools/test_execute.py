"""execute and the process tools, running real commands through a real agent."""

from __future__ import annotations

import itertools
import json
import uuid

import anyio
import pytest

from chatd.tools.durations import DurationError, format_duration, parse_duration
from chatd.tools.execute import READ_FILE_NOTE, split_background
from chatd.tools.process_results import OUTPUT_MAX, STILL_RUNNING, cap_output
from tests.tools.conftest import ToolEnv

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10), ("500ms", 0.5), ("1h2m3.5s", 3723.5), ("0", 0), ("1.5m", 90), ("2us", 2e-6)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "5 s", "s", "-1s", "1d", "1h-2m", "abc"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (10, 0.5, 90, 3600, 4 * 3600)] == [
        "10s",
        "500ms",
        "1m30s",
        "1h0m0s",
        "4h0m0s",
    ]


def test_trailing_ampersand() -> None:
    assert split_background("sleep 5 &") == ("sleep 5", True)
    assert split_background("sleep 5 &  ") == ("sleep 5", True)
    assert split_background("make && make test") == ("make && make test", False)
    assert split_background("a &&") == ("a &&", False)
    assert split_background("cmd |&") == ("cmd |&", False)
    assert split_background("echo \\&") == ("echo \\&", False)


def test_output_cap_keeps_head_and_tail_in_valid_utf8() -> None:
    text = "é" * 40_000 + "THE END"
    capped, cut = cap_output(text)
    assert cut and len(capped.encode()) <= OUTPUT_MAX
    assert capped.startswith("éé") and capped.endswith("THE END")
    assert "bytes of output omitted" in capped
    capped.encode("utf-8")  # valid: no lone surrogates
    assert cap_output("short") == ("short", False)


async def test_execute_foreground_exit_codes(env: ToolEnv) -> None:
    result = await env.ok("execute", command="echo hello; echo oops >&2")
    assert result["success"] is True and result["exit_code"] == 0
    assert "hello" in result["output"] and "oops" in result["output"]
    assert isinstance(result["wall_duration_ms"], int)
    assert "truncated" not in result and "note" not in result
    failed = await env.ok("execute", command="echo nope; exit 3")
    assert failed["success"] is False and failed["exit_code"] == 3
    assert "nope" in failed["output"]


async def test_execute_environment_and_workdir(env: ToolEnv) -> None:
    (env.directory / "sub").mkdir()
    result = await env.ok(
        "execute",
        command='pwd; echo "$CODER_CHAT_AGENT $GIT_EDITOR $PAGER $TERM $GIT_TERMINAL_PROMPT"',
        workdir="sub",
    )
    lines = result["output"].splitlines()
    assert lines[0] == str(env.directory / "sub")
    assert lines[1] == "true true cat dumb 0"
    assert "outside the workspace" in await env.error("execute", command="pwd", workdir="/")


async def test_execute_timeout_leaves_the_process_running(env: ToolEnv) -> None:
    result = await env.ok("execute", command="echo started; sleep 30", timeout="300ms")
    assert result["success"] is False and result["exit_code"] == -1
    assert result["error"] == "command timed out after 300ms"
    assert "started" in result["output"]
    pid = result["background_process_id"]
    running = await env.ok("process_output", process_id=pid, wait_timeout="0s")
    assert running["success"] is True and running["note"] == STILL_RUNNING
    assert "exit_code" not in running
    killed = await env.ok("process_signal", process_id=pid, signal="kill")
    assert killed == {"success": True, "message": f'signal "kill" sent to process {pid}'}
    ended = await env.ok("process_output", process_id=pid, wait_timeout="10s")
    assert ended["success"] is False and ended["exit_code"] != 0
    assert "note" not in ended


async def test_execute_background(env: ToolEnv) -> None:
    started = await env.ok("execute", command="sleep 0.2; echo done &")
    assert set(started) == {"success", "background_process_id"} and started["success"]
    pid = started["background_process_id"]
    flagged = await env.ok("execute", command="sleep 30", run_in_background=True)
    finished = await env.ok("process_output", process_id=pid, wait_timeout="10s")
    assert finished["success"] is True and finished["exit_code"] == 0
    assert finished["output"].strip() == "done"
    listed = await env.ok("process_list")
    ids = {p["process_id"]: p for p in listed["processes"]}
    assert ids[pid]["running"] is False
    assert ids[flagged["background_process_id"]]["running"] is True
    terminated = await env.ok(
        "process_signal", process_id=flagged["background_process_id"], signal="terminate"
    )
    assert terminated["success"] is True


async def test_execute_output_flood_is_capped(env: ToolEnv) -> None:
    result = await env.ok("execute", command="yes 0123456789 | head -c 5000000; echo; echo END")
    assert result["success"] is True and result["truncated"] is True
    assert len(result["output"].encode()) <= OUTPUT_MAX
    assert result["output"].rstrip().endswith("END")


async def test_execute_notes_file_dumps(env: ToolEnv) -> None:
    (env.directory / "f.txt").write_text("content\n")
    assert (await env.ok("execute", command="cat f.txt"))["note"] == READ_FILE_NOTE
    assert (await env.ok("execute", command="grep -l content *.txt"))["note"] == READ_FILE_NOTE
    assert "note" not in await env.ok("execute", command="grep content f.txt")


async def test_execute_argument_errors(env: ToolEnv) -> None:
    assert await env.error("execute") == "command is required"
    assert await env.error("execute", command="   ") == "command is required"
    assert "invalid duration" in await env.error("execute", command="true", timeout="soon")
    assert "duration string" in await env.error("execute", command="true", timeout=5)
    assert "true or false" in await env.error("execute", command="true", run_in_background="y")


async def test_process_tool_errors(env: ToolEnv) -> None:
    assert "process_id is required" in await env.error("process_output")
    unknown = await env.error("process_output", process_id="p999")
    assert "p999" in unknown
    bad = await env.error("process_signal", process_id="p1", signal="hup")
    assert bad == 'signal must be "terminate" or "kill", not \'hup\''
    assert "p999" in await env.error("process_signal", process_id="p999", signal="kill")


async def test_results_are_json_with_sorted_keys(env: ToolEnv) -> None:
    output = await env.run("execute", command="true")
    assert output.text == json.dumps(json.loads(output.text), sort_keys=True, ensure_ascii=False)


async def test_a_fork_storm_is_killed_whole(env: ToolEnv) -> None:
    # A tree of shells, each starting two more down to a depth of 6, every one then a sleep
    # with a mark of its own: 127 processes in the command's group.
    mark = f"3000.{uuid.uuid4().int % 10**9}"
    storm = (
        'f() { if [ "$1" -gt 0 ]; then f $(($1 - 1)) & f $(($1 - 1)) & fi; '
        f"exec sleep {mark}; }}; f 6"
    )
    # The bracket keeps the counting command from matching itself.
    count = f"pgrep -c -f 'slee[p] {mark}'"
    started = await env.ok("execute", command=storm, run_in_background=True)
    pid = started["background_process_id"]
    with anyio.fail_after(60):  # polled: nothing tells when the last fork has run
        for _ in itertools.count():
            if (await env.ok("execute", command=count))["output"].strip() == "127":
                break
            await anyio.sleep(0.05)
    killed = await env.ok("process_signal", process_id=pid, signal="kill")
    assert killed["success"] is True
    left = await env.ok("execute", command=count)
    assert (left["exit_code"], left["output"].strip()) == (1, "0")
    ended = await env.ok("process_output", process_id=pid, wait_timeout="10s")
    assert ended["success"] is False and ended["exit_code"] == 137
    again = await env.error("process_signal", process_id=pid, signal="kill")
    assert "already exited" in again
