"""The wire between the server and a workspace agent: JSON text frames on one WebSocket.

The agent dials ``AGENT_PATH`` with its token in ``TOKEN_HEADER`` and first sends a
``hello``. From then on the server sends ``request`` frames and the agent answers each with a
``response`` carrying either ``result`` (a JSON object) or ``error``
(``{"code", "message"}``). The server may send ``cancel`` for a request it no longer waits
for; the agent then stops that operation and answers nothing more for it.

Frames::

    agent  -> server  {"type": "hello", "version", "directory", "home", "operating_system"}
    server -> agent   {"type": "request", "id": int, "op": str, "args": {...}}
    agent  -> server  {"type": "response", "id": int, "result": {...}}
    agent  -> server  {"type": "response", "id": int, "error": {"code": str, "message": str}}
    server -> agent   {"type": "cancel", "id": int}
    agent  -> server  {"type": "event", "id": int, "event": {...}}
    either way        a binary frame: the request id (4 bytes, big-endian), then raw bytes

A streaming operation (``STREAMS``) answers with any number of ``event`` frames (JSON) and
binary frames (bytes) before its one ``response``, which ends it; the server sends binary
frames with the request's id to feed it bytes, and ``cancel`` to end it early (the agent then
sends nothing more for it).

The operations (``op``), their arguments and results:

``read_file`` ``{path, offset?=1, limit?=2000}``
    ``{content (numbered lines), file_size, lines_read, total_lines, truncated?}``:
    ``truncated`` when fewer lines than asked for came back, to keep the answer small
``read_bytes`` ``{path, max_bytes}``
    ``{data (base64), size}``: a whole file, refused when larger than ``max_bytes`` or empty
``write_file`` ``{path, content}``
    ``{ok: true}``: creates parent directories, replaces the file
``edit_files`` ``{files: [{path, edits: [{old_text, new_text, replace_all?}]}]}``
    ``{ok: true, files: [{path, diff, diff_truncated?}]}``: every edit checked before any
    file is written; long diffs are cut (and marked)
``process_start`` ``{command, workdir?, env?: {name: value}, background?, wait_ms?}``
    a process snapshot (below), after waiting up to ``wait_ms`` for it to end
``process_output`` ``{process_id, wait_ms?=0}``
    a process snapshot, after waiting up to ``wait_ms`` for the process to end
``process_list`` ``{}``
    ``{processes: [snapshot without output]}``
``process_signal`` ``{process_id, signal: "terminate" | "kill"}``
    ``{ok: true}``
``context`` ``{}``
    ``{directory, home, operating_system, files: [{path, content, truncated}],
    skills: [{name, description, dir}]}``
``read_skill`` ``{name}``
    ``{name, dir, body, files}``
``read_skill_file`` ``{name, path}``
    ``{content}``
``mcp_tools`` ``{wait_ms?=5000}``
    ``{servers: [{name, tools: [{name, description, input_schema}]} | {name, error,
    starting?}], error?}``: the tools of every server of the directory's ``.mcp.json``
    (started on first use), within ``wait_ms``; a server that cannot be started or listed
    (or is still starting) is an entry with ``error``, ``error`` alone says the file is unusable
``mcp_call`` ``{server, tool, arguments, timeout_ms?=60000}``
    ``{result}``: the tool's ``CallToolResult`` as MCP's JSON (``content``, ``isError``,
    ``structuredContent``), its text and media capped

Streaming operations:

``git_watch`` ``{}``
    events: ``changes`` messages (``WorkspaceAgentGitServerMessage`` of the chats API plus
    per-repository counts): first every repository, then whenever something changed, only
    the repositories whose state changed (one that went away once, with ``removed``)
``desktop`` ``{}``
    the event ``{ready: true, width, height}`` once connected to the workspace's VNC server,
    then raw RFB bytes both ways; the error code ``unavailable`` when it has no desktop

and ``git_scan`` ``{}`` answers once with a ``changes`` message holding every repository.

A process snapshot: ``{process_id, command, running, exit_code (null while running),
output, output_truncated, wall_duration_ms, started_at}``; ``output`` is what the agent
still keeps of the process's combined stdout and stderr (see ``PROCESS_OUTPUT_KEPT``).

Paths are absolute or relative to the agent's directory, and must resolve (symlinks
followed) inside it; anything else is the error code ``outside_workspace``.
"""

from __future__ import annotations

import json
from typing import Any

AGENT_PATH = "/api/v2/workspaceagents/me/rpc"
TOKEN_HEADER = "Coder-Session-Token"
# The environment a started agent (local or from a command template) reads its dial-in from.
URL_ENV = "CHATD_AGENT_URL"
TOKEN_ENV = "CHATD_AGENT_TOKEN"
PROTOCOL_VERSION = "1"

# A frame carries at most this much (attach_file reads up to 10 MiB, sent as base64).
MAX_FRAME_BYTES = 16 * 1024 * 1024

# Operation names.
READ_FILE = "read_file"
READ_BYTES = "read_bytes"
WRITE_FILE = "write_file"
EDIT_FILES = "edit_files"
PROCESS_START = "process_start"
PROCESS_OUTPUT = "process_output"
PROCESS_LIST = "process_list"
PROCESS_SIGNAL = "process_signal"
CONTEXT = "context"
READ_SKILL = "read_skill"
READ_SKILL_FILE = "read_skill_file"
GIT_SCAN = "git_scan"
MCP_TOOLS = "mcp_tools"
MCP_CALL = "mcp_call"
GIT_WATCH = "git_watch"
DESKTOP = "desktop"
STREAMS = frozenset({GIT_WATCH, DESKTOP})
OPERATIONS = frozenset(
    {
        READ_FILE,
        READ_BYTES,
        WRITE_FILE,
        EDIT_FILES,
        PROCESS_START,
        PROCESS_OUTPUT,
        PROCESS_LIST,
        PROCESS_SIGNAL,
        CONTEXT,
        READ_SKILL,
        READ_SKILL_FILE,
        GIT_SCAN,
        MCP_TOOLS,
        MCP_CALL,
    }
    | STREAMS
)

# Error codes (the message is for the model and says what went wrong in words).
BAD_REQUEST = "bad_request"  # arguments missing or of the wrong type, unknown op
OUTSIDE_WORKSPACE = "outside_workspace"
NOT_FOUND = "not_found"
TOO_LARGE = "too_large"
BINARY = "binary"
EDIT_FAILED = "edit_failed"
UNAVAILABLE = "unavailable"  # the workspace cannot do this at all (no desktop installed)
LIMIT = "limit"  # a per-workspace cap (processes running at once, processes kept)
FAILED = "failed"  # anything else the operation could not do

# What an agent keeps of each process's output (the end of it; older bytes are dropped and
# the snapshot says so), and how many processes it runs and keeps at once.
PROCESS_OUTPUT_KEPT = 1024 * 1024
MAX_RUNNING_PROCESSES = 64
MAX_KEPT_PROCESSES = 256

# Context files (AGENTS.md) are cut at this many bytes each (the part is marked truncated).
CONTEXT_FILE_MAX = 64 * 1024
SKILL_FILE_MAX = 512 * 1024


class ProtocolError(Exception):
    """A frame that is not what the protocol allows."""


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise ProtocolError("a frame is a JSON object with a string 'type'")
    return frame


def request(request_id: int, op: str, args: dict[str, Any]) -> dict[str, Any]:
    return {"type": "request", "id": request_id, "op": op, "args": args}


def response(request_id: int, result: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response", "id": request_id, "result": result}


def error_response(request_id: int, code: str, message: str) -> dict[str, Any]:
    return {"type": "response", "id": request_id, "error": {"code": code, "message": message}}


def cancel(request_id: int) -> dict[str, Any]:
    return {"type": "cancel", "id": request_id}


def event(request_id: int, payload: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "id": request_id, "event": payload}


_ID_BYTES = 4


def data_frame(request_id: int, data: bytes) -> bytes:
    """A binary frame carrying ``data`` for the streaming request ``request_id``."""
    return request_id.to_bytes(_ID_BYTES, "big") + data


def parse_data_frame(frame: bytes) -> tuple[int, bytes]:
    if len(frame) < _ID_BYTES:
        raise ProtocolError("a binary frame starts with a 4-byte request id")
    return int.from_bytes(frame[:_ID_BYTES], "big"), frame[_ID_BYTES:]
