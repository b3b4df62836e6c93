"""edit_files: exact, whitespace- and indentation-tolerant matching, all or nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.edits import DIFFS_MAX
from chatd.agent.files import TEXT_FILE_MAX
from tests.agent.conftest import call, fails

pytestmark = pytest.mark.anyio


def edit(old: str, new: str, **extra: Any) -> dict[str, Any]:
    return {"old_text": old, "new_text": new, **extra}


async def test_exact_edit_returns_a_diff(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.py").write_text("x = 1\ny = 2\n")
    result = await call(
        agent, "edit_files", files=[{"path": "a.py", "edits": [edit("y = 2", "y = 3")]}]
    )
    assert (workspace / "a.py").read_text() == "x = 1\ny = 3\n"
    assert result["ok"] is True
    [file] = result["files"]
    assert file["path"] == "a.py"
    assert file["diff"].splitlines() == [
        "--- a.py",
        "+++ a.py",
        "@@ -1,2 +1,2 @@",
        " x = 1",
        "-y = 2",
        "+y = 3",
    ]


async def test_edits_apply_in_order(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("alpha\n")
    await call(
        agent,
        "edit_files",
        files=[{"path": "a.txt", "edits": [edit("alpha", "beta"), edit("beta", "gamma")]}],
    )
    assert (workspace / "a.txt").read_text() == "gamma\n"


async def test_trailing_whitespace_tolerated(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("keep\nfoo   \nbar\t\nend\n")
    await call(agent, "edit_files", files=[{"path": "a.txt", "edits": [edit("foo\nbar", "baz")]}])
    assert (workspace / "a.txt").read_text() == "keep\nbaz\nend\n"


async def test_indentation_tolerated_and_reindented(agent: Dispatcher, workspace: Path) -> None:
    source = "class A:\n    def f(self):\n        if x:\n            return 1\n        return 2\n"
    (workspace / "a.py").write_text(source)
    old = "if x:\n    return 1"
    new = "if x:\n    log()\n    return 10\nelse:\n    pass"
    await call(agent, "edit_files", files=[{"path": "a.py", "edits": [edit(old, new)]}])
    assert (workspace / "a.py").read_text() == (
        "class A:\n    def f(self):\n        if x:\n            log()\n"
        "            return 10\n        else:\n            pass\n        return 2\n"
    )


async def test_over_indented_old_text_is_dedented(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.py").write_text("def f():\n  a()\n  b()\n")
    old = "        a()\n        b()\n"
    new = "        a()\n            nested()\n        b()\n"
    await call(agent, "edit_files", files=[{"path": "a.py", "edits": [edit(old, new)]}])
    assert (workspace / "a.py").read_text() == "def f():\n  a()\n      nested()\n  b()\n"


async def test_crlf_is_kept(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "dos.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    result = await call(
        agent,
        "edit_files",
        files=[{"path": "dos.txt", "edits": [edit("two\nthree", "2\n3\n4")]}],
    )
    assert (workspace / "dos.txt").read_bytes() == b"one\r\n2\r\n3\r\n4\r\n"
    assert "\r" not in result["files"][0]["diff"]


async def test_replace_all(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("foo foo\nfoo\n")
    await call(
        agent,
        "edit_files",
        files=[{"path": "a.txt", "edits": [edit("foo", "bar", replace_all=True)]}],
    )
    assert (workspace / "a.txt").read_text() == "bar bar\nbar\n"


async def test_replace_all_on_tolerant_lines(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.py").write_text("  call()  \nx\n    call()\n")
    await call(
        agent,
        "edit_files",
        files=[{"path": "a.py", "edits": [edit("call()", "done()", replace_all=True)]}],
    )
    assert (workspace / "a.py").read_text() == "  done()  \nx\n    done()\n"


async def test_zero_matches_names_file_and_index(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("hello\n")
    message = await fails(
        agent,
        "edit_files",
        protocol.EDIT_FAILED,
        files=[{"path": "a.txt", "edits": [edit("hello", "hi"), edit("absent", "x")]}],
    )
    assert "files[0].edits[1]" in message and "a.txt" in message and "not found" in message
    assert "Nothing was applied" in message
    assert (workspace / "a.txt").read_text() == "hello\n"


async def test_several_matches_need_context(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("x = 1\nx = 1\nx = 1\n")
    message = await fails(
        agent,
        "edit_files",
        protocol.EDIT_FAILED,
        files=[{"path": "a.txt", "edits": [edit("x = 1", "x = 2")]}],
    )
    assert "3 places" in message and "replace_all" in message
    assert (workspace / "a.txt").read_text() == "x = 1\nx = 1\nx = 1\n"


async def test_nothing_applied_across_files(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "one.txt").write_text("first\n")
    (workspace / "two.txt").write_text("second\n")
    message = await fails(
        agent,
        "edit_files",
        protocol.EDIT_FAILED,
        files=[
            {"path": "one.txt", "edits": [edit("first", "changed")]},
            {"path": "two.txt", "edits": [edit("missing", "changed")]},
        ],
    )
    assert "files[1].edits[0]" in message and "two.txt" in message
    assert (workspace / "one.txt").read_text() == "first\n"
    assert (workspace / "two.txt").read_text() == "second\n"


async def test_two_files_edited(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "one.txt").write_text("first\n")
    (workspace / "two.txt").write_text("second\n")
    result = await call(
        agent,
        "edit_files",
        files=[
            {"path": "one.txt", "edits": [edit("first", "1st")]},
            {"path": "two.txt", "edits": [edit("second", "2nd")]},
        ],
    )
    assert [f["path"] for f in result["files"]] == ["one.txt", "two.txt"]
    assert (workspace / "one.txt").read_text() == "1st\n"
    assert (workspace / "two.txt").read_text() == "2nd\n"


async def test_same_file_twice_continues_the_edited_text(
    agent: Dispatcher, workspace: Path
) -> None:
    (workspace / "a.txt").write_text("a\n")
    result = await call(
        agent,
        "edit_files",
        files=[
            {"path": "a.txt", "edits": [edit("a", "b")]},
            {"path": str(workspace / "a.txt"), "edits": [edit("b", "c")]},
        ],
    )
    assert (workspace / "a.txt").read_text() == "c\n"
    assert len(result["files"]) == 1


async def test_no_newline_at_end_in_diff(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("last")
    result = await call(
        agent, "edit_files", files=[{"path": "a.txt", "edits": [edit("last", "final")]}]
    )
    assert "\\ No newline at end of file" in result["files"][0]["diff"]
    assert (workspace / "a.txt").read_text() == "final"


async def test_deleting_lines(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("a\n  b  \nc\n")
    await call(agent, "edit_files", files=[{"path": "a.txt", "edits": [edit(" b\n", "")]}])
    assert (workspace / "a.txt").read_text() == "a\nc\n"


async def test_refusals_change_nothing(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("text\n")
    (workspace / "bin").write_bytes(b"\0\1")
    (workspace / "latin1.txt").write_bytes(b"caf\xe9\n")
    cases: list[tuple[str, list[Any]]] = [
        (protocol.BAD_REQUEST, [{"path": "a.txt", "edits": [edit("", "x")]}]),
        (protocol.BAD_REQUEST, [{"path": "a.txt", "edits": []}]),
        (protocol.BAD_REQUEST, [{"path": "a.txt", "edits": [{"old_text": "text"}]}]),
        (protocol.BAD_REQUEST, [{"edits": [edit("text", "x")]}]),
        (protocol.BAD_REQUEST, ["a.txt"]),
        (protocol.NOT_FOUND, [{"path": "nope.txt", "edits": [edit("a", "b")]}]),
        (protocol.BINARY, [{"path": "bin", "edits": [edit("a", "b")]}]),
        (protocol.FAILED, [{"path": "latin1.txt", "edits": [edit("caf", "b")]}]),
        (protocol.OUTSIDE_WORKSPACE, [{"path": "../x", "edits": [edit("a", "b")]}]),
    ]
    for code, files in cases:
        message = await fails(
            agent,
            "edit_files",
            code,
            files=[{"path": "a.txt", "edits": [edit("text", "new")]}, *files],
        )
        assert "Nothing was applied" in message
    assert (workspace / "a.txt").read_text() == "text\n"
    await fails(agent, "edit_files", protocol.BAD_REQUEST, files=[])
    message = await fails(
        agent,
        "edit_files",
        protocol.BAD_REQUEST,
        files=[{"path": "a.txt", "edits": [edit("", "x")]}],
    )
    assert "write_file" in message


async def test_an_edit_growing_the_file_past_the_limit_is_refused_early(
    agent: Dispatcher, workspace: Path
) -> None:
    """replace_all of a short text with a long one is refused before the result is built."""
    (workspace / "a.txt").write_text("a" * 1_000_000)
    (workspace / "lines.txt").write_text("x\n" * 200_000)
    for path, old in (("a.txt", "a"), ("lines.txt", "  x")):  # exact, then tolerant lines
        message = await fails(
            agent,
            "edit_files",
            protocol.TOO_LARGE,
            files=[{"path": path, "edits": [edit(old, "b" * 50, replace_all=True)]}],
        )
        assert f"over the limit of {TEXT_FILE_MAX}" in message and "Nothing was applied" in message
    assert (workspace / "a.txt").read_text() == "a" * 1_000_000
    assert (workspace / "lines.txt").read_text() == "x\n" * 200_000
    # Counted in bytes once every edit is done: multi-byte text and CRLF endings count too.
    (workspace / "crlf.txt").write_bytes(b"x\r\n" * (TEXT_FILE_MAX // 4 + 1))
    await fails(
        agent,
        "edit_files",
        protocol.TOO_LARGE,
        files=[{"path": "crlf.txt", "edits": [edit("x", "\u00e9", replace_all=True)]}],
    )
    assert (workspace / "crlf.txt").read_bytes() == b"x\r\n" * (TEXT_FILE_MAX // 4 + 1)


async def test_long_diffs_are_cut_and_marked(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "small.txt").write_text("one\n")
    (workspace / "big.txt").write_text(("x" * 60 + "\n") * 50_000)
    result = await call(
        agent,
        "edit_files",
        files=[
            {"path": "small.txt", "edits": [edit("one", "two")]},
            {"path": "big.txt", "edits": [edit("x" * 60, "y" * 60, replace_all=True)]},
        ],
    )
    small, big = result["files"]
    assert small == {
        "path": "small.txt",
        "diff": "--- small.txt\n+++ small.txt\n@@ -1 +1 @@\n-one\n+two\n",
    }
    assert big["diff_truncated"] is True and len(big["diff"]) <= DIFFS_MAX - len(small["diff"])
    assert big["diff"].startswith("--- big.txt\n") and big["diff"].endswith("\n")
    assert (workspace / "big.txt").read_text() == ("y" * 60 + "\n") * 50_000
