"""Caps on the text a workspace tool result carries.

A tool result is stored with the chat and sent with every later model call, and the agent
may be anyone's: whatever it answers is cut here, on the server, to a size that cannot make
the chat's next calls fail. Sizes are UTF-8 bytes; a cut text stays valid UTF-8.
"""

from __future__ import annotations

import json
from typing import Any

KIB = 1024
READ_FILE_MAX = 64 * KIB
DIFF_MAX = 32 * KIB
DIFFS_MAX = 64 * KIB
SKILL_TEXT_MAX = 64 * KIB
# The text of a workspace MCP tool's result.
MCP_TEXT_MAX = 256 * KIB
SKILL_FILES_MAX = 500
PROCESS_LIST_MAX = 64 * KIB
# A process_list entry's command is cut at this many characters.
COMMAND_MAX = 1024


def cut(text: str, limit: int, *, at_line: bool = False) -> tuple[str, bool]:
    """``text`` within ``limit`` UTF-8 bytes (ending after a line break when ``at_line``
    and one is there), and whether it was cut."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text, False
    data = data[:limit]
    if at_line and (end := data.rfind(b"\n")) >= 0:
        data = data[: end + 1]
    return data.decode("utf-8", errors="ignore"), True


def size(value: Any) -> int:
    """The UTF-8 size of ``value`` as JSON."""
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", errors="replace"))


def read_file(result: dict[str, Any], offset: int) -> dict[str, Any]:
    """A ``read_file`` result whose numbered lines fit :data:`READ_FILE_MAX`; a cut one
    says how many lines came back and where to read on."""
    content, was_cut = cut(str(result.get("content") or ""), READ_FILE_MAX, at_line=True)
    if not was_cut and not result.get("truncated"):
        return result
    content = content.removesuffix("\n")
    lines = content.count("\n") + 1 if content else 0
    if not was_cut:
        lines = int(result.get("lines_read") or lines)
    last = offset + lines - 1
    if was_cut and "\n" not in content:
        shown = f"only the start of line {offset}, which is longer than that, was returned"
    else:
        shown = f"only {lines} lines (lines {offset} to {last}) were returned"
    note = (
        f"The result was cut to stay within {READ_FILE_MAX // KIB} KiB: {shown}. Call "
        f"read_file again with offset={last + 1} and a smaller limit to read on."
    )
    return {**result, "content": content, "lines_read": lines, "truncated": True, "note": note}


def diffs(result: dict[str, Any]) -> dict[str, Any]:
    """An ``edit_files`` result whose diffs fit :data:`DIFF_MAX` each and :data:`DIFFS_MAX`
    in all, in whole lines; a cut diff is marked ``diff_truncated``."""
    files = result.get("files")
    if not isinstance(files, list):
        return result
    budget = DIFFS_MAX
    capped: list[Any] = []
    for entry in files:
        if not isinstance(entry, dict):
            continue
        diff, was_cut = cut(str(entry.get("diff") or ""), min(DIFF_MAX, budget), at_line=True)
        if was_cut and not diff.endswith("\n"):
            diff = ""  # not even one whole line fits
        budget -= len(diff.encode("utf-8", errors="replace"))
        capped.append({**entry, "diff": diff} | ({"diff_truncated": True} if was_cut else {}))
    return {**result, "files": capped}


def skill(result: dict[str, Any]) -> dict[str, Any]:
    """A ``read_skill`` result: the body within :data:`SKILL_TEXT_MAX` (else
    ``body_truncated``), at most :data:`SKILL_FILES_MAX` file names of at most
    :data:`SKILL_TEXT_MAX` in all (else ``files_truncated``)."""
    body, body_cut = cut(str(result.get("body") or ""), SKILL_TEXT_MAX)
    capped: dict[str, Any] = {**result, "body": body}
    if body_cut:
        capped["body_truncated"] = True
    names = result.get("files")
    if isinstance(names, list):
        kept: list[str] = []
        budget = SKILL_TEXT_MAX
        for name in names[:SKILL_FILES_MAX]:
            budget -= size(name)
            if budget < 0:
                break
            kept.append(str(name))
        capped["files"] = kept
        if len(kept) < len(names):
            capped["files_truncated"] = True
    return capped


def skill_file(result: dict[str, Any]) -> dict[str, Any]:
    """A ``read_skill_file`` result: ``{content}`` within :data:`SKILL_TEXT_MAX`, marked
    ``truncated`` when cut."""
    content, was_cut = cut(str(result.get("content") or ""), SKILL_TEXT_MAX)
    return {"content": content} | ({"truncated": True} if was_cut else {})


def process_list(result: dict[str, Any]) -> dict[str, Any]:
    """A ``process_list`` result within :data:`PROCESS_LIST_MAX`: long commands cut, and the
    newest processes that fit kept (in order) when all of them do not."""
    processes = result.get("processes")
    if not isinstance(processes, list):
        return result
    entries = [_short_command(p) for p in processes if isinstance(p, dict)]
    kept: list[dict[str, Any]] = []
    budget = PROCESS_LIST_MAX - size({**result, "processes": []}) - 256
    for entry in reversed(entries):
        budget -= size(entry) + 1
        if budget < 0:
            break
        kept.append(entry)
    kept.reverse()
    capped: dict[str, Any] = {**result, "processes": kept}
    if len(kept) < len(entries):
        capped["truncated"] = True
        capped["note"] = (
            f"Only the newest {len(kept)} of {len(entries)} processes are listed "
            f"(the list is capped at {PROCESS_LIST_MAX // KIB} KiB)."
        )
    return capped


def _short_command(process: dict[str, Any]) -> dict[str, Any]:
    command = process.get("command")
    if not isinstance(command, str) or len(command) <= COMMAND_MAX:
        return process
    more = len(command) - COMMAND_MAX
    return {**process, "command": f"{command[:COMMAND_MAX]}... [{more} more characters]"}
