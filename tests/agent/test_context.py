"""context (instruction files and the skill index), read_skill and read_skill_file."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.skills import frontmatter
from tests.agent.conftest import call, fails

pytestmark = pytest.mark.anyio


def write_skill(workspace: Path, directory: str, meta: str) -> Path:
    skill = workspace / ".agents" / "skills" / directory
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(meta)
    return skill


async def test_context_without_files(agent: Dispatcher, workspace: Path, home: Path) -> None:
    assert await call(agent, "context") == {
        "directory": str(workspace),
        "home": str(home),
        "operating_system": platform.system().lower(),
        "files": [],
        "skills": [],
    }


async def test_instruction_files(agent: Dispatcher, workspace: Path, home: Path) -> None:
    (home / ".coder").mkdir()
    (home / ".coder" / "AGENTS.md").write_text("Home rules.\n")
    (workspace / "AGENTS.md").write_bytes(
        b"# Project\r\n<!-- private\r\nnote -->Use tabs.\r\n<!-- x -->Run make.\r\n"
    )
    files = (await call(agent, "context"))["files"]
    assert files == [
        {"path": str(home / ".coder" / "AGENTS.md"), "content": "Home rules.", "truncated": False},
        {
            "path": str(workspace / "AGENTS.md"),
            "content": "# Project\nUse tabs.\nRun make.",
            "truncated": False,
        },
    ]


async def test_large_instruction_file_is_cut(agent: Dispatcher, workspace: Path) -> None:
    (workspace / "AGENTS.md").write_text("é" * protocol.CONTEXT_FILE_MAX)
    [part] = (await call(agent, "context"))["files"]
    assert part["truncated"] is True
    assert len(part["content"].encode()) <= protocol.CONTEXT_FILE_MAX
    assert set(part["content"]) == {"é"}


async def test_instruction_files_blank_or_outside_skipped(
    agent: Dispatcher, workspace: Path
) -> None:
    outside = workspace.parent / "OTHER.md"
    outside.write_text("not the workspace's")
    (workspace / "AGENTS.md").symlink_to(outside)
    assert (await call(agent, "context"))["files"] == []
    (workspace / "AGENTS.md").unlink()
    (workspace / "AGENTS.md").write_text("<!-- only a comment -->\n\n")
    assert (await call(agent, "context"))["files"] == []


async def test_skills_index_skips_invalid(agent: Dispatcher, workspace: Path) -> None:
    good = write_skill(
        workspace, "deploy-app", "---\nname: deploy-app\ndescription: Ship it.\n---\nSteps.\n"
    )
    write_skill(workspace, "other-name", "---\nname: deploy-app\ndescription: x\n---\n")
    write_skill(workspace, "Bad_Name", "---\nname: Bad_Name\ndescription: x\n---\n")
    write_skill(workspace, "no-description", "---\nname: no-description\n---\n")
    write_skill(workspace, "no-frontmatter", "Just text.\n")
    write_skill(workspace, "unclosed", "---\nname: unclosed\ndescription: x\n")
    write_skill(
        workspace,
        "quoted",
        '---\r\nname: "quoted"\r\ndescription: >\r\n  Folded\r\n  text.\r\n---\r\n',
    )
    (workspace / ".agents" / "skills" / "empty-dir").mkdir()
    skills = (await call(agent, "context"))["skills"]
    assert skills == [
        {"name": "deploy-app", "description": "Ship it.", "dir": str(good)},
        {
            "name": "quoted",
            "description": "Folded text.",
            "dir": str(workspace / ".agents/skills/quoted"),
        },
    ]


async def test_read_skill(agent: Dispatcher, workspace: Path) -> None:
    skill = write_skill(
        workspace,
        "deploy-app",
        "---\nname: deploy-app\ndescription: Ship it.\n---\n\n# Deploy\nRun scripts/go.sh.\n",
    )
    (skill / "scripts").mkdir()
    (skill / "scripts" / "go.sh").write_text("echo go\n")
    (skill / "reference.md").write_text("Ref.\n")
    (skill / ".hidden").write_text("no")
    (skill / ".git").mkdir()
    (skill / ".git" / "config").write_text("no")
    result = await call(agent, "read_skill", name="deploy-app")
    assert result == {
        "name": "deploy-app",
        "dir": str(skill),
        "body": "# Deploy\nRun scripts/go.sh.\n",
        "files": ["reference.md", "scripts/", "scripts/go.sh"],
    }
    message = await fails(agent, "read_skill", protocol.NOT_FOUND, name="missing")
    assert "deploy-app" in message
    await fails(agent, "read_skill", protocol.NOT_FOUND, name="../deploy-app")
    await fails(agent, "read_skill", protocol.BAD_REQUEST)


async def test_read_skill_file(agent: Dispatcher, workspace: Path) -> None:
    skill = write_skill(workspace, "tool", "---\nname: tool\ndescription: A tool.\n---\nBody\n")
    (skill / "scripts").mkdir()
    (skill / "scripts" / "run.sh").write_text("echo run\n")
    (skill / ".env").write_text("SECRET=1")
    (skill / "blob.bin").write_bytes(b"\0\0")
    (workspace / "secret.txt").write_text("secret")
    (skill / "escape").symlink_to(workspace / "secret.txt")
    with (skill / "huge.txt").open("wb") as file:
        file.truncate(protocol.SKILL_FILE_MAX + 1)
    result = await call(agent, "read_skill_file", name="tool", path="scripts/run.sh")
    assert result == {"content": "echo run\n"}
    for path in ("../../../secret.txt", "/etc/passwd", ".env", "scripts/../.env", ""):
        await fails(agent, "read_skill_file", protocol.BAD_REQUEST, name="tool", path=path)
    await fails(agent, "read_skill_file", protocol.OUTSIDE_WORKSPACE, name="tool", path="escape")
    await fails(agent, "read_skill_file", protocol.NOT_FOUND, name="tool", path="nope.md")
    await fails(agent, "read_skill_file", protocol.BINARY, name="tool", path="blob.bin")
    await fails(agent, "read_skill_file", protocol.TOO_LARGE, name="tool", path="huge.txt")
    await fails(agent, "read_skill_file", protocol.FAILED, name="tool", path="scripts")
    await fails(agent, "read_skill_file", protocol.NOT_FOUND, name="nope", path="x")


def test_frontmatter_parsing() -> None:
    assert frontmatter("---\na: 1\n# comment\nb: 'two: 2'\n---\nbody") == (
        {"a": "1", "b": "two: 2"},
        "body",
    )
    assert frontmatter("no frontmatter") is None
    assert frontmatter("---\nnot a field\n---\n") is None


async def test_skill_files_symlinked_out_of_the_skill_are_refused(
    agent: Dispatcher, workspace: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "SKILL.md").write_text("---\nname: leak\ndescription: Elsewhere.\n---\nSecret.\n")
    (outside / "secret.txt").write_text("secret")
    leak = workspace / ".agents" / "skills" / "leak"
    leak.mkdir(parents=True)
    (leak / "SKILL.md").symlink_to(outside / "SKILL.md")
    assert (await call(agent, "context"))["skills"] == []
    await fails(agent, "read_skill", protocol.NOT_FOUND, name="leak")
    # Supporting files and directories pointing out are neither listed nor read.
    good = write_skill(workspace, "good", "---\nname: good\ndescription: Fine.\n---\nBody\n")
    (good / "notes.md").write_text("notes")
    (good / "secret.txt").symlink_to(outside / "secret.txt")
    (good / "elsewhere").symlink_to(outside)
    assert (await call(agent, "read_skill", name="good"))["files"] == ["notes.md"]
    await fails(
        agent, "read_skill_file", protocol.OUTSIDE_WORKSPACE, name="good", path="secret.txt"
    )


async def test_names_that_are_not_utf8_are_listed_replaced(
    agent: Dispatcher, workspace: Path
) -> None:
    skill = write_skill(workspace, "odd", "---\nname: odd\ndescription: Odd names.\n---\nBody\n")
    (skill / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    result = await call(agent, "read_skill", name="odd")
    assert result["files"] == ["caf\ufffd.txt"]
    protocol.encode(result).encode("utf-8")  # a frame can carry it
