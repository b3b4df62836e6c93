"""Process snapshots from the agent as results for the model, and waiting for an exit.

Output is cut to :data:`OUTPUT_MAX` bytes of valid UTF-8: the head and the tail are kept with
a marker line between them, and the result says ``truncated``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chatd.agent import protocol
from chatd.tools.agent_calls import call
from chatd.tools.registry import ToolError
from chatd.workspace.conn import AgentConn

OUTPUT_MAX = 32 * 1024
# One process wait asks the agent for at most this long; a longer wait is several asks.
WAIT_SLICE = 30.0
# Beyond a wait, how long the agent may take to answer it.
ANSWER_GRACE = 15.0
# The last look at a process whose wait ran out.
SNAPSHOT_TIMEOUT = 30.0
STILL_RUNNING = (
    "The process is still running. Call process_output again to wait for more output, or "
    "process_signal to stop it."
)


def cap_output(text: str) -> tuple[str, bool]:
    """``text`` within :data:`OUTPUT_MAX` UTF-8 bytes, and whether it was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= OUTPUT_MAX:
        return data.decode("utf-8", errors="replace"), False
    omitted = len(data) - OUTPUT_MAX
    marker = f"\n... [{omitted} bytes of output omitted] ...\n".encode()
    keep = OUTPUT_MAX - len(marker)
    head = data[: keep // 2].decode("utf-8", errors="ignore")
    tail = data[len(data) - (keep - keep // 2) :].decode("utf-8", errors="ignore")
    return head + marker.decode() + tail, True


def _output(snapshot: dict[str, Any]) -> tuple[str, bool]:
    text, cut = cap_output(str(snapshot.get("output") or ""))
    return text, cut or bool(snapshot.get("output_truncated"))


def finished_result(snapshot: dict[str, Any]) -> dict[str, Any]:
    """``{success, output, exit_code, wall_duration_ms, truncated?}`` of an ended process."""
    output, truncated = _output(snapshot)
    exit_code = snapshot.get("exit_code")
    result: dict[str, Any] = {
        "success": exit_code == 0,
        "output": output,
        "exit_code": exit_code,
        "wall_duration_ms": snapshot.get("wall_duration_ms"),
    }
    if truncated:
        result["truncated"] = True
    return result


def running_result(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A process that has not ended yet: what it wrote so far, and how to go on."""
    output, truncated = _output(snapshot)
    result: dict[str, Any] = {
        "success": True,
        "output": output,
        "wall_duration_ms": snapshot.get("wall_duration_ms"),
        "note": STILL_RUNNING,
    }
    if truncated:
        result["truncated"] = True
    return result


def process_id(snapshot: dict[str, Any]) -> str:
    pid = snapshot.get("process_id")
    if not isinstance(pid, str) or not pid:
        raise ToolError("the workspace agent sent a process without an id")
    return pid


async def wait_for_exit(
    conn: AgentConn, snapshot: dict[str, Any], deadline: float, *, last_look: bool = False
) -> dict[str, Any]:
    """Ask for the process's output, waiting for its exit, until it ends or ``deadline``
    (event loop time) passes; then, with ``last_look``, one more snapshot if it still runs."""
    loop = asyncio.get_running_loop()
    pid = process_id(snapshot)
    while snapshot.get("running") and (remaining := deadline - loop.time()) > 0:
        wait = min(remaining, WAIT_SLICE)
        snapshot = await call(
            conn,
            protocol.PROCESS_OUTPUT,
            {"process_id": pid, "wait_ms": round(wait * 1000)},
            within=wait + ANSWER_GRACE,
        )
    if last_look and snapshot.get("running"):
        snapshot = await call(
            conn,
            protocol.PROCESS_OUTPUT,
            {"process_id": pid, "wait_ms": 0},
            within=SNAPSHOT_TIMEOUT,
        )
    return snapshot
