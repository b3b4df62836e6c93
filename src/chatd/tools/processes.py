"""The process tools: process_output, process_list, process_signal (engine-behaviour §13.1)."""

from __future__ import annotations

import asyncio
from typing import Any

from chatd.agent import protocol
from chatd.tools import args as a
from chatd.tools import caps
from chatd.tools.agent_calls import call, connect, run_op
from chatd.tools.execute import timeout_of
from chatd.tools.process_results import (
    ANSWER_GRACE,
    WAIT_SLICE,
    finished_result,
    running_result,
    wait_for_exit,
)
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj

DEFAULT_WAIT = 10.0
SIGNALS = ("terminate", "kill")


async def _process_output(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    pid = a.string(args, "process_id")
    wait = timeout_of(args, "wait_timeout", DEFAULT_WAIT)
    conn = await connect(ctx)
    deadline = asyncio.get_running_loop().time() + wait
    first = min(wait, WAIT_SLICE)
    snapshot = await call(
        conn,
        protocol.PROCESS_OUTPUT,
        {"process_id": pid, "wait_ms": round(first * 1000)},
        within=first + ANSWER_GRACE,
    )
    snapshot = await wait_for_exit(conn, snapshot, deadline)
    if snapshot.get("running"):
        return json_output(running_result(snapshot))
    return json_output(finished_result(snapshot))


async def _process_list(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return json_output(caps.process_list(await run_op(ctx, protocol.PROCESS_LIST, {})))


async def _process_signal(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    pid = a.string(args, "process_id")
    signal = a.string(args, "signal")
    if signal not in SIGNALS:
        raise ToolError(f'signal must be "terminate" or "kill", not {signal!r}')
    await run_op(ctx, protocol.PROCESS_SIGNAL, {"process_id": pid, "signal": signal})
    return json_output({"success": True, "message": f'signal "{signal}" sent to process {pid}'})


_PID = {"type": "string", "description": "The process id execute returned."}

PROCESS_OUTPUT = Tool(
    name="process_output",
    description=(
        "The output of a process started by execute (in the background, or one that timed "
        'out), waiting up to wait_timeout (default 10s; "0s" answers at once) for it to end.'
    ),
    input_schema=obj(
        {
            "process_id": _PID,
            "wait_timeout": {
                "type": "string",
                "description": 'How long to wait for the exit, as a duration like "30s".',
            },
        },
        "process_id",
    ),
    run=_process_output,
)
PROCESS_LIST = Tool(
    name="process_list",
    description="List the processes started in the workspace, running and finished.",
    input_schema=obj({}),
    run=_process_list,
)
PROCESS_SIGNAL = Tool(
    name="process_signal",
    description=(
        'Stop a process: "terminate" asks it to exit (SIGTERM), "kill" ends it at once '
        "(SIGKILL); either goes to the process and everything it started."
    ),
    input_schema=obj(
        {"process_id": _PID, "signal": {"type": "string", "enum": list(SIGNALS)}},
        "process_id",
        "signal",
    ),
    run=_process_signal,
)
