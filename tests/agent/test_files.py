"""read_file, read_bytes, write_file, and paths confined to the workspace directory."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.files import LINE_MAX_CHARS, READ_FILE_BUDGET, TEXT_FILE_MAX
from tests.agent.conftest import call, fails

pytestmark = pytest.mark.anyio


async def test_read_file_numbers_lines(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("one\ntwo\nthree\n")
    result = await call(agent, "read_file", path="a.txt")
    assert result == {
        "content": "     1\tone\n     2\ttwo\n     3\tthree",
        "file_size": 14,
        "lines_read": 3,
        "total_lines": 3,
    }


async def test_read_file_window_and_absolute_path(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "a.txt").write_text("".join(f"line {n}\n" for n in range(1, 11)))
    result = await call(agent, "read_file", path=str(workspace / "a.txt"), offset=4, limit=2)
    assert result["content"] == "     4\tline 4\n     5\tline 5"
    assert (result["lines_read"], result["total_lines"]) == (2, 10)
    tail = await call(agent, "read_file", path="a.txt", offset=10, limit=5)
    assert tail["content"] == "    10\tline 10"
    message = await fails(agent, "read_file", protocol.BAD_REQUEST, path="a.txt", offset=11)
    assert "10 lines" in message


async def test_read_file_crlf_last_line_and_empty(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "dos.txt").write_bytes(b"a\r\nb\r\nno newline")
    result = await call(agent, "read_file", path="dos.txt")
    assert result["content"] == "     1\ta\n     2\tb\n     3\tno newline"
    (workspace / "empty").write_bytes(b"")
    empty = await call(agent, "read_file", path="empty")
    assert empty == {"content": "", "file_size": 0, "lines_read": 0, "total_lines": 0}


async def test_read_file_caps_long_lines(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "wide.txt").write_text("x" * (LINE_MAX_CHARS + 500) + "\nshort\n")
    content = (await call(agent, "read_file", path="wide.txt"))["content"]
    first, second = content.split("\n")
    assert first.startswith("     1\t" + "x" * LINE_MAX_CHARS + "...")
    assert "500 more characters" in first
    assert second == "     2\tshort"


async def test_read_file_refusals(agent: Dispatcher, workspace: Path) -> None:
    assert "does not exist" in await fails(agent, "read_file", protocol.NOT_FOUND, path="nope")
    (workspace / "dir").mkdir()
    assert "directory" in await fails(agent, "read_file", protocol.FAILED, path="dir")
    (workspace / "bin").write_bytes(b"abc\0def")
    assert "binary" in await fails(agent, "read_file", protocol.BINARY, path="bin")
    with (workspace / "big").open("wb") as file:
        file.truncate(TEXT_FILE_MAX + 1)
    message = await fails(agent, "read_file", protocol.TOO_LARGE, path="big")
    assert str(TEXT_FILE_MAX + 1) in message


async def test_read_file_bad_arguments(agent: Dispatcher) -> None:
    assert "'path'" in await fails(agent, "read_file", protocol.BAD_REQUEST)
    await fails(agent, "read_file", protocol.BAD_REQUEST, path=3)
    await fails(agent, "read_file", protocol.BAD_REQUEST, path="")
    await fails(agent, "read_file", protocol.BAD_REQUEST, path="a", offset=0)
    await fails(agent, "read_file", protocol.BAD_REQUEST, path="a", limit="10")
    await fails(agent, "read_file", protocol.BAD_REQUEST, path="a", limit=True)
    with pytest.raises(Exception) as caught:
        await agent.handle("read_file", ["not", "an", "object"])  # type: ignore[arg-type]
    assert getattr(caught.value, "code", None) == protocol.BAD_REQUEST
    assert "unknown" in await fails(agent, "rm_rf", protocol.BAD_REQUEST)


@pytest.mark.parametrize("path", ["../outside.txt", "sub/../../outside.txt", "/etc/passwd"])
async def test_paths_outside_are_refused(agent: Dispatcher, workspace: Path, path: str) -> None:
    (workspace.parent / "outside.txt").write_text("secret")
    (workspace / "sub").mkdir()
    message = await fails(agent, "read_file", protocol.OUTSIDE_WORKSPACE, path=path)
    assert path in message and str(workspace) in message
    await fails(agent, "write_file", protocol.OUTSIDE_WORKSPACE, path=path, content="x")


async def test_symlinks_pointing_out_are_refused(agent: Dispatcher, workspace: Path) -> None:
    outside = workspace.parent / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    (workspace / "link.txt").symlink_to(outside / "secret.txt")
    (workspace / "linkdir").symlink_to(outside)
    (workspace / "dangling").symlink_to(outside / "new.txt")
    for path in ("link.txt", "linkdir/secret.txt", "linkdir/new.txt"):
        await fails(agent, "read_file", protocol.OUTSIDE_WORKSPACE, path=path)
    for path in ("link.txt", "linkdir/new.txt", "dangling"):
        await fails(agent, "write_file", protocol.OUTSIDE_WORKSPACE, path=path, content="x")
    assert not (outside / "new.txt").exists()
    assert (outside / "secret.txt").read_text() == "secret"


async def test_symlinks_inside_are_followed(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "real.txt").write_text("before\n")
    (workspace / "alias.txt").symlink_to("real.txt")
    assert (await call(agent, "read_file", path="alias.txt"))["content"] == "     1\tbefore"
    await call(agent, "write_file", path="alias.txt", content="after\n")
    assert (workspace / "alias.txt").is_symlink()
    assert (workspace / "real.txt").read_text() == "after\n"


async def test_write_file_creates_parents(agent: Dispatcher, workspace: Path) -> None:
    result = await call(agent, "write_file", path="a/b/c.txt", content="héllo\n")
    assert result == {"ok": True}
    assert (workspace / "a/b/c.txt").read_text(encoding="utf-8") == "héllo\n"
    assert sorted(os.listdir(workspace / "a/b")) == ["c.txt"]  # no temporary file left


async def test_write_file_keeps_mode_and_replaces(agent: Dispatcher, workspace: Path) -> None:
    script = workspace / "run.sh"
    script.write_text("old\n")
    script.chmod(0o751)
    await call(agent, "write_file", path="run.sh", content="new\n")
    assert script.read_text() == "new\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    await call(agent, "write_file", path="fresh.txt", content="")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((workspace / "fresh.txt").stat().st_mode) == 0o666 & ~umask


async def test_write_file_refusals(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "dir").mkdir()
    assert "directory" in await fails(agent, "write_file", protocol.FAILED, path="dir", content="x")
    await fails(agent, "write_file", protocol.BAD_REQUEST, path="x.txt")
    await fails(agent, "write_file", protocol.BAD_REQUEST, path="x.txt", content=5)
    (workspace / "file").write_text("x")
    await fails(agent, "write_file", protocol.FAILED, path="file/below.txt", content="x")


async def test_read_bytes(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "img.png").write_bytes(b"\x89PNG\0\1\2")
    result = await call(agent, "read_bytes", path="img.png", max_bytes=100)
    assert result == {"data": base64.b64encode(b"\x89PNG\0\1\2").decode(), "size": 7}
    await fails(agent, "read_bytes", protocol.TOO_LARGE, path="img.png", max_bytes=6)
    (workspace / "empty").write_bytes(b"")
    assert "empty" in await fails(agent, "read_bytes", protocol.FAILED, path="empty", max_bytes=9)
    await fails(agent, "read_bytes", protocol.NOT_FOUND, path="nope", max_bytes=9)
    await fails(agent, "read_bytes", protocol.BAD_REQUEST, path="img.png")
    await fails(agent, "read_bytes", protocol.OUTSIDE_WORKSPACE, path="/etc/hostname", max_bytes=9)


async def test_read_file_stops_at_its_byte_budget(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "wide.txt").write_text(("y" * 1000 + "\n") * 2000)
    result = await call(agent, "read_file", path="wide.txt")
    assert result["truncated"] is True and result["total_lines"] == 2000
    lines = result["content"].split("\n")
    assert len(lines) == result["lines_read"] < 2000
    assert [int(line.split("\t")[0]) for line in lines] == list(range(1, len(lines) + 1))
    assert len(result["content"].encode()) <= READ_FILE_BUDGET
    # Reading on from where it stopped gets the next lines.
    more = await call(agent, "read_file", path="wide.txt", offset=len(lines) + 1, limit=5)
    assert more["lines_read"] == 5 and "truncated" not in more
