"""The execute tool: a shell command in the workspace (engine-behaviour §13.1)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from chatd.agent import protocol
from chatd.tools import args as a
from chatd.tools.agent_calls import call, connect
from chatd.tools.durations import DurationError, format_duration, parse_duration
from chatd.tools.process_results import (
    ANSWER_GRACE,
    WAIT_SLICE,
    finished_result,
    process_id,
    running_result,
    wait_for_exit,
)
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj

DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 4 * 3600.0
# Set for every command: no pager, editor or prompt waits for a terminal nobody watches.
ENVIRONMENT = {
    "CODER_CHAT_AGENT": "true",
    "GIT_EDITOR": "true",
    "GIT_SEQUENCE_EDITOR": "true",
    "EDITOR": "true",
    "VISUAL": "true",
    "GIT_TERMINAL_PROMPT": "0",
    "NO_COLOR": "1",
    "TERM": "dumb",
    "PAGER": "cat",
    "GIT_PAGER": "cat",
}
READ_FILE_NOTE = (
    "To read files, use the read_file tool: it numbers the lines and pages through long files."
)
# Commands that dump or list files, which read_file does better.
_FILE_DUMP = re.compile(r"^\s*cat\s|(^|[\s;&|])(grep|rg)\s(.*\s)?-l\b|--include-all")


def split_background(command: str) -> tuple[str, bool]:
    """A single trailing ``&`` (not ``&&`` or ``|&``) asks for the background; it is removed."""
    stripped = command.rstrip()
    if stripped.endswith("&") and not stripped.endswith(("&&", "|&", "\\&")):
        return stripped[:-1].rstrip(), True
    return command, False


def timeout_of(args: dict[str, Any], name: str, default: float) -> float:
    """A duration argument in seconds (Go syntax), clamped to :data:`MAX_TIMEOUT`."""
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str):
        raise ToolError(f'{name} must be a duration string like "30s", "5m" or "1h"')
    try:
        return min(parse_duration(raw), MAX_TIMEOUT)
    except DurationError as exc:
        raise ToolError(f"{name}: {exc}") from None


async def _execute(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    command, background = split_background(a.string(args, "command"))
    background = a.boolean(args, "run_in_background") or background
    if not command.strip():
        raise ToolError("command is required")
    timeout = timeout_of(args, "timeout", DEFAULT_TIMEOUT)
    request: dict[str, Any] = {"command": command, "env": dict(ENVIRONMENT)}
    workdir = a.string(args, "workdir", required=False)
    if workdir:
        request["workdir"] = workdir
    conn = await connect(ctx)
    if background:
        started = await call(conn, protocol.PROCESS_START, request | {"background": True})
        return json_output({"success": True, "background_process_id": process_id(started)})
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    wait = min(timeout, WAIT_SLICE)
    snapshot = await call(
        conn,
        protocol.PROCESS_START,
        request | {"wait_ms": round(wait * 1000)},
        within=wait + ANSWER_GRACE,
    )
    snapshot = await wait_for_exit(conn, snapshot, deadline, last_look=True)
    if snapshot.get("running"):
        result = running_result(snapshot)
        del result["note"]
        result |= {
            "success": False,
            "exit_code": -1,
            "error": f"command timed out after {format_duration(timeout)}",
            "background_process_id": process_id(snapshot),
        }
        return json_output(result)
    result = finished_result(snapshot)
    if _FILE_DUMP.search(command):
        result["note"] = READ_FILE_NOTE
    return json_output(result)


EXECUTE = Tool(
    name="execute",
    description=(
        "Run a shell command (sh -c) in the workspace and return its combined output and exit "
        "code. Foreground commands wait up to timeout (default 10s, at most 4h); a command "
        "still running then is left running and its process id returned. Set "
        "run_in_background (or end the command with a single &) for servers and other long "
        "jobs, then read them with process_output."
    ),
    input_schema=obj(
        {
            "command": {"type": "string", "description": "The shell command."},
            "model_intent": {
                "type": "string",
                "description": (
                    "What the command does, as a short present-participle phrase under 100 "
                    'characters (e.g. "running the tests"), shown to the user.'
                ),
            },
            "timeout": {
                "type": "string",
                "description": 'How long to wait, as a duration like "30s", "5m" or "1h".',
            },
            "workdir": {"type": "string", "description": "Directory to run in."},
            "run_in_background": {
                "type": "boolean",
                "description": "Start the command and return at once with its process id.",
            },
        },
        "command",
    ),
    run=_execute,
)
