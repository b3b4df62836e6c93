"""Tool results are capped on the server, whatever the agent answers: a result is stored and
sent with every later model call."""

from __future__ import annotations

import json

import pytest

from chatd.tools import caps
from tests.tools.conftest import ToolEnv
from tests.tools.workspace_files import add_skill

pytestmark = pytest.mark.anyio


def utf8(text: str) -> int:
    return len(text.encode("utf-8"))


async def test_read_file_is_cut_at_a_line_and_says_where_to_go_on(env: ToolEnv) -> None:
    (env.directory / "wide.txt").write_text("".join(f"{'é' * 700}{n}\n" for n in range(1, 2001)))
    result = await env.ok("read_file", path="wide.txt", offset=11)
    lines = result["content"].split("\n")
    assert result["truncated"] is True and result["lines_read"] == len(lines) < 100
    assert utf8(result["content"]) <= caps.READ_FILE_MAX
    assert lines[0].split("\t") == ["    11", "é" * 700 + "11"]
    last = 10 + len(lines)
    assert lines[-1].endswith(f"\t{'é' * 700}{last}")  # whole lines only
    assert f"{len(lines)} lines (lines 11 to {last})" in result["note"]
    assert f"offset={last + 1}" in result["note"]
    # A window that fits comes back as the agent sent it.
    small = await env.ok("read_file", path="wide.txt", offset=last + 1, limit=2)
    assert small["lines_read"] == 2 and "truncated" not in small and "note" not in small


async def test_edit_files_diffs_are_capped_per_file_and_in_all(env: ToolEnv) -> None:
    files = []
    for name in ("a.txt", "b.txt", "c.txt"):
        (env.directory / name).write_text("old line\n" * 3000)
        files.append(
            {"path": name, "edits": [{"old_text": "old", "new_text": "new", "replace_all": True}]}
        )
    (env.directory / "d.txt").write_text("one\n")
    files.append({"path": "d.txt", "edits": [{"old_text": "one", "new_text": "two"}]})
    result = await env.ok("edit_files", files=files)
    diffs = [f["diff"] for f in result["files"]]
    assert [f.get("diff_truncated") for f in result["files"]] == [True, True, True, True]
    assert all(utf8(d) <= caps.DIFF_MAX for d in diffs)
    assert sum(utf8(d) for d in diffs) <= caps.DIFFS_MAX
    assert diffs[0].endswith("\n") and diffs[1].endswith("\n") and diffs[3] == ""
    assert (env.directory / "c.txt").read_text() == "new line\n" * 3000  # applied all the same
    alone = await env.ok(
        "edit_files", files=[{"path": "d.txt", "edits": [{"old_text": "two", "new_text": "3"}]}]
    )
    assert "diff_truncated" not in alone["files"][0] and "+3" in alone["files"][0]["diff"]


async def test_skill_texts_are_capped(env: ToolEnv) -> None:
    body = "Step.\n" * 20_000
    skill = add_skill(env.directory, "huge", "A long skill.", body)
    (skill / "notes.md").write_text("n" * 100_000)
    (skill / "short.md").write_text("short")
    result = await env.ok("read_skill", name="huge")
    assert result["body_truncated"] is True and utf8(result["body"]) <= caps.SKILL_TEXT_MAX
    assert body.startswith(result["body"]) and result["files"] == ["notes.md", "short.md"]
    assert "files_truncated" not in result
    notes = await env.ok("read_skill_file", name="huge", path="notes.md")
    assert notes == {"content": "n" * caps.SKILL_TEXT_MAX, "truncated": True}
    assert await env.ok("read_skill_file", name="huge", path="short.md") == {"content": "short"}


def test_a_skill_file_list_is_capped() -> None:
    many = {"name": "s", "body": "", "files": [f"file-{n}.md" for n in range(2000)]}
    capped = caps.skill(many)
    assert capped["files"] == many["files"][: caps.SKILL_FILES_MAX]
    assert capped["files_truncated"] is True
    long_names = {"name": "s", "body": "", "files": ["x" * 10_000] * 20}
    assert len(caps.skill(long_names)["files"]) == 6


async def test_process_list_is_capped(env: ToolEnv) -> None:
    padding = "x" * 3000
    for n in range(60):
        await env.ok("execute", command=f"true {n} {padding}")
    result = await env.ok("process_list")
    assert utf8(json.dumps(result)) <= caps.PROCESS_LIST_MAX
    commands = [p["command"] for p in result["processes"]]
    assert result["truncated"] is True and f"newest {len(commands)} of 60" in result["note"]
    assert commands[-1].startswith("true 59 x") and commands[-1].endswith(" more characters]")
    assert [int(c.split()[1]) for c in commands] == list(range(60 - len(commands), 60))
