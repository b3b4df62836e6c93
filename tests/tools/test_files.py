"""read_file, write_file, edit_files and attach_file on a real agent's directory."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from chatd.agent.files import TEXT_FILE_MAX
from chatd.store.tables import chat_file_links, chat_files
from tests.tools.conftest import ToolEnv

pytestmark = pytest.mark.anyio


async def test_read_file_numbers_lines_and_pages(env: ToolEnv) -> None:
    (env.directory / "notes.txt").write_text("one\ntwo\nthree\n")
    result = await env.ok("read_file", path="notes.txt", offset=2, limit=1)
    assert result == {
        "content": "     2\ttwo",
        "file_size": 14,
        "lines_read": 1,
        "total_lines": 3,
    }
    whole = await env.ok("read_file", path=str(env.directory / "notes.txt"))
    assert whole["lines_read"] == 3


async def test_read_file_errors(env: ToolEnv) -> None:
    (env.directory / "blob.bin").write_bytes(b"\x00\x01\x02binary")
    assert await env.error("read_file", path="") == "path is required"
    assert await env.error("read_file") == "path is required"
    assert "must be an integer" in await env.error("read_file", path="a", offset="x")
    missing = await env.error("read_file", path="missing.txt")
    assert "missing.txt" in missing
    outside = await env.error("read_file", path="../../etc/passwd")
    assert "outside the workspace" in outside
    assert "outside the workspace" in await env.error("read_file", path="/etc/hostname")
    (env.directory / "escape").symlink_to("/etc")
    assert "outside the workspace" in await env.error("read_file", path="escape/hostname")
    assert "binary" in (await env.error("read_file", path="blob.bin")).lower()


async def test_read_file_refuses_what_is_too_large(env: ToolEnv) -> None:
    (env.directory / "huge.txt").write_bytes(b"a line\n" * (TEXT_FILE_MAX // 7 + 1))
    text = await env.error("read_file", path="huge.txt")
    assert "huge.txt" in text and f"over the limit of {TEXT_FILE_MAX}" in text
    (env.directory / "dir").mkdir()
    assert "is a directory" in await env.error("read_file", path="dir")


async def test_write_file_creates_parents_and_answers_ok(env: ToolEnv) -> None:
    assert await env.ok("write_file", path="src/app/main.py", content="print(1)\n") == {"ok": True}
    assert (env.directory / "src/app/main.py").read_text() == "print(1)\n"
    assert await env.ok("write_file", path="src/app/main.py", content="") == {"ok": True}
    assert (env.directory / "src/app/main.py").read_text() == ""
    assert "content is required" in await env.error("write_file", path="x.txt")
    assert "outside the workspace" in await env.error(
        "write_file", path="../elsewhere.txt", content="no"
    )
    assert not (env.directory.parent / "elsewhere.txt").exists()


async def test_write_file_never_follows_a_symlink_out(env: ToolEnv, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (env.directory / "out").symlink_to(outside)
    (env.directory / "target.txt").symlink_to(outside / "target.txt")
    for path in ("out/new.txt", "target.txt"):
        text = await env.error("write_file", path=path, content="no")
        assert "outside the workspace" in text, path
    assert list(outside.iterdir()) == []
    assert "is a directory" in await env.error("write_file", path=".", content="no")


async def test_edit_files_applies_every_edit_with_diffs(env: ToolEnv) -> None:
    (env.directory / "a.py").write_text("def f():\n    return 1\n")
    (env.directory / "b.txt").write_text("x = 1\nx = 1\n")
    result = await env.ok(
        "edit_files",
        files=[
            {"path": "a.py", "edits": [{"old_text": "return 1", "new_text": "return 2"}]},
            {
                "path": "b.txt",
                "edits": [{"old_text": "x = 1", "new_text": "x = 3", "replace_all": True}],
            },
        ],
    )
    assert result["ok"] is True
    assert [f["path"] for f in result["files"]] == ["a.py", "b.txt"]
    assert "-    return 1\n+    return 2" in result["files"][0]["diff"]
    assert (env.directory / "a.py").read_text() == "def f():\n    return 2\n"
    assert (env.directory / "b.txt").read_text() == "x = 3\nx = 3\n"


async def test_edit_files_applies_nothing_when_one_edit_fails(env: ToolEnv) -> None:
    (env.directory / "a.txt").write_text("alpha\n")
    (env.directory / "b.txt").write_text("beta\nbeta\n")
    no_match = await env.error(
        "edit_files",
        files=[
            {"path": "a.txt", "edits": [{"old_text": "alpha", "new_text": "ALPHA"}]},
            {"path": "b.txt", "edits": [{"old_text": "gamma", "new_text": "G"}]},
        ],
    )
    assert "files[1].edits[0]" in no_match and "Nothing was applied" in no_match
    several = await env.error(
        "edit_files",
        files=[
            {"path": "a.txt", "edits": [{"old_text": "alpha", "new_text": "ALPHA"}]},
            {"path": "b.txt", "edits": [{"old_text": "beta", "new_text": "B"}]},
        ],
    )
    assert "matches 2 places" in several and "Nothing was applied" in several
    assert (env.directory / "a.txt").read_text() == "alpha\n"
    assert (env.directory / "b.txt").read_text() == "beta\nbeta\n"


async def test_edit_files_refuses_paths_it_cannot_edit(env: ToolEnv, tmp_path: Path) -> None:
    (env.directory / "a.txt").write_text("alpha\n")
    (env.directory / "blob.bin").write_bytes(b"\x00alpha")
    outside = tmp_path / "outside.txt"
    outside.write_text("alpha\n")
    (env.directory / "link.txt").symlink_to(outside)
    first = {"path": "a.txt", "edits": [{"old_text": "alpha", "new_text": "ALPHA"}]}
    for path, says in [
        ("../outside.txt", "outside the workspace"),
        ("link.txt", "outside the workspace"),
        ("missing.txt", "missing.txt"),
        ("blob.bin", "binary"),
    ]:
        second = {"path": path, "edits": [{"old_text": "alpha", "new_text": "B"}]}
        text = await env.error("edit_files", files=[first, second])
        assert says in text, (path, text)
    assert (env.directory / "a.txt").read_text() == "alpha\n"
    assert outside.read_text() == "alpha\n"


async def test_edit_files_argument_errors_name_the_entry(env: ToolEnv) -> None:
    assert "files is required" in await env.error("edit_files", files=[])
    bad = await env.error("edit_files", files=[{"path": "a.txt", "edits": [{"old_text": "x"}]}])
    assert bad == "files[0].edits[0] needs old_text and new_text as strings. Nothing was applied."
    assert "files[0].edits must be a non-empty list" in await env.error(
        "edit_files", files=[{"path": "a.txt", "edits": []}]
    )


async def test_attach_file_stores_a_chat_file(env: ToolEnv) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40
    (env.directory / "out").mkdir()
    (env.directory / "out/chart.png").write_bytes(png)
    output = await env.run("attach_file", path="out/chart.png")
    assert not output.is_error, output.text
    [attachment] = output.attachments
    assert attachment.media_type == "image/png" and attachment.name == "chart.png"
    import json

    result = json.loads(output.text)
    assert result == {
        "ok": True,
        "path": str(env.directory / "out/chart.png"),
        "file_id": str(attachment.file_id),
        "name": "chart.png",
        "media_type": "image/png",
        "size": len(png),
    }
    async with env.db.read() as conn:
        row = (
            await conn.execute(sa.select(chat_files).where(chat_files.c.id == attachment.file_id))
        ).one()
        linked = (
            await conn.execute(
                sa.select(chat_file_links.c.chat_id).where(
                    chat_file_links.c.file_id == attachment.file_id
                )
            )
        ).scalar_one()
    assert bytes(row.data) == png and row.mimetype == "image/png"
    assert row.owner_id == env.owner.id and linked == env.chat_id

    renamed = await env.ok("attach_file", path="out/chart.png", name="report.md")
    assert renamed["name"] == "report.md"


async def test_attach_file_errors(env: ToolEnv) -> None:
    (env.directory / "empty.txt").write_bytes(b"")
    (env.directory / "big.bin").write_bytes(b"x" * (10 * 1024 * 1024 + 1))
    assert "empty" in await env.error("attach_file", path="empty.txt")
    assert "missing" in await env.error("attach_file", path="missing")
    big = await env.error("attach_file", path="big.bin")
    assert "big.bin" in big
    assert "outside the workspace" in await env.error("attach_file", path="/etc/hostname")
