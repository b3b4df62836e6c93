"""Workspace file tools: read_file, write_file, edit_files, attach_file (§13.1)."""

from __future__ import annotations

import posixpath
from typing import Any

from chatd import filetypes
from chatd.agent import protocol
from chatd.tools import args as a
from chatd.tools import caps
from chatd.tools.agent_calls import call, connect, run_op
from chatd.tools.chat_files import decode_bytes, store_file
from chatd.tools.plan_file import require_plan_target, resolve
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import PATH, obj

ATTACH_MAX = 10 * 1024 * 1024
# Reading up to 10 MiB (sent as base64) may take longer than an ordinary operation.
ATTACH_TIMEOUT = 120.0


async def _read_file(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    path = a.string(args, "path")
    offset = a.integer(args, "offset", 1)
    request: dict[str, Any] = {"path": path, "offset": offset}
    if args.get("limit") is not None:
        request["limit"] = a.integer(args, "limit", 0)
    return json_output(caps.read_file(await run_op(ctx, protocol.READ_FILE, request), offset))


async def _write_file(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    path = a.string(args, "path")
    content = args.get("content")
    if not isinstance(content, str):
        raise ToolError("content is required (the whole file, as a string)")
    conn = await connect(ctx)
    require_plan_target(ctx, conn, [path])
    await call(conn, protocol.WRITE_FILE, {"path": path, "content": content})
    return json_output({"ok": True})


def _edit_request(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``files`` argument checked; an error names the bad entry (nothing is applied)."""
    files = args.get("files")
    if not isinstance(files, list) or not files:
        raise ToolError("files is required: a list of {path, edits}. Nothing was applied.")
    checked: list[dict[str, Any]] = []
    for i, entry in enumerate(files):
        where = f"files[{i}]"
        if not isinstance(entry, dict):
            raise ToolError(f"{where} must be an object. Nothing was applied.")
        path = entry.get("path")
        edits = entry.get("edits")
        if not isinstance(path, str) or not path.strip():
            raise ToolError(f"{where}.path is required. Nothing was applied.")
        if not isinstance(edits, list) or not edits:
            raise ToolError(f"{where}.edits must be a non-empty list. Nothing was applied.")
        checked_edits = []
        for j, edit in enumerate(edits):
            at = f"{where}.edits[{j}]"
            if not isinstance(edit, dict):
                raise ToolError(f"{at} must be an object. Nothing was applied.")
            old, new = edit.get("old_text"), edit.get("new_text")
            if not isinstance(old, str) or not isinstance(new, str):
                raise ToolError(
                    f"{at} needs old_text and new_text as strings. Nothing was applied."
                )
            replace_all = edit.get("replace_all", False)
            if not isinstance(replace_all, bool):
                raise ToolError(f"{at}.replace_all must be true or false. Nothing was applied.")
            checked_edits.append({"old_text": old, "new_text": new, "replace_all": replace_all})
        checked.append({"path": path, "edits": checked_edits})
    return checked


async def _edit_files(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    files = _edit_request(args)
    conn = await connect(ctx)
    require_plan_target(ctx, conn, [f["path"] for f in files])
    return json_output(caps.diffs(await call(conn, protocol.EDIT_FILES, {"files": files})))


async def _attach_file(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    path = a.string(args, "path")
    conn = await connect(ctx)
    result = await call(
        conn, protocol.READ_BYTES, {"path": path, "max_bytes": ATTACH_MAX}, within=ATTACH_TIMEOUT
    )
    data = decode_bytes(result)
    if not data:
        raise ToolError(f"{path} is empty: there is nothing to attach")
    full_path = resolve(conn.directory, path)
    name = filetypes.normalize_filename(
        a.string(args, "name", required=False) or posixpath.basename(full_path)
    )
    media_type = filetypes.detect(data, name)
    attachment = await store_file(ctx, name or "file", media_type, data)
    return json_output(
        {
            "ok": True,
            "path": full_path,
            "file_id": str(attachment.file_id),
            "name": attachment.name,
            "media_type": media_type,
            "size": len(data),
        },
        attachment,
    )


READ_FILE = Tool(
    name="read_file",
    description=(
        "Read a text file from the workspace. Lines come back numbered; use offset and "
        "limit to page through long files (2000 lines by default)."
    ),
    input_schema=obj(
        {
            "path": PATH,
            "offset": {"type": "integer", "description": "First line to read (1-based)."},
            "limit": {"type": "integer", "description": "How many lines to read."},
        },
        "path",
    ),
    run=_read_file,
)
WRITE_FILE = Tool(
    name="write_file",
    description=(
        "Create or overwrite a file in the workspace with the given content (the whole "
        "file). Parent directories are created. Prefer edit_files for changes to a file."
    ),
    input_schema=obj(
        {"path": PATH, "content": {"type": "string", "description": "The full file content."}},
        "path",
        "content",
    ),
    run=_write_file,
)
EDIT_FILES = Tool(
    name="edit_files",
    description=(
        "Replace text in one or more files. Each edit's old_text must match exactly one "
        "place (whitespace and indentation are matched leniently) unless replace_all is set. "
        "Every edit is checked first: if any fails, nothing is changed. Returns a diff per file."
    ),
    input_schema=obj(
        {
            "files": {
                "type": "array",
                "items": obj(
                    {
                        "path": PATH,
                        "edits": {
                            "type": "array",
                            "items": obj(
                                {
                                    "old_text": {"type": "string"},
                                    "new_text": {"type": "string"},
                                    "replace_all": {"type": "boolean"},
                                },
                                "old_text",
                                "new_text",
                            ),
                        },
                    },
                    "path",
                    "edits",
                ),
            }
        },
        "files",
    ),
    run=_edit_files,
)
ATTACH_FILE = Tool(
    name="attach_file",
    description=(
        "Attach a file from the workspace to the chat so the user can open or download it "
        "(at most 10 MiB)."
    ),
    input_schema=obj(
        {
            "path": PATH,
            "name": {"type": "string", "description": "File name to show (default: its own)."},
        },
        "path",
    ),
    run=_attach_file,
)
