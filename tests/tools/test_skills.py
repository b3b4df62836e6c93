"""read_skill and read_skill_file."""

from __future__ import annotations

import pytest

from chatd.tools.registry import ToolError
from chatd.tools.skills import check_skill_path
from tests.tools.conftest import ToolEnv
from tests.tools.workspace_files import add_skill

pytestmark = pytest.mark.anyio


async def test_read_skill_and_its_files(env: ToolEnv) -> None:
    skill = add_skill(env.directory, "deploy", "Ship a release.", "Run make release.\n")
    (skill / "scripts").mkdir()
    (skill / "scripts" / "release.sh").write_text("echo release\n")
    result = await env.ok("read_skill", name="deploy")
    assert result["name"] == "deploy" and result["body"].strip() == "Run make release."
    assert result["dir"].endswith(".agents/skills/deploy")
    assert "scripts/release.sh" in result["files"] and "scripts/" in result["files"]
    content = await env.ok("read_skill_file", name="deploy", path="scripts/release.sh")
    assert content == {"content": "echo release\n"}


async def test_skill_errors(env: ToolEnv) -> None:
    add_skill(env.directory, "deploy", "Ship a release.")
    assert "nope" in await env.error("read_skill", name="nope")
    assert await env.error("read_skill") == "name is required"
    for path in ("/etc/passwd", "../other/SKILL.md", "scripts/../../x", ".env", "a/.git/config"):
        assert "path" in await env.error("read_skill_file", name="deploy", path=path)
    assert "missing.txt" in await env.error("read_skill_file", name="deploy", path="missing.txt")


def test_skill_paths() -> None:
    assert check_skill_path("./scripts//run.sh") == "scripts/run.sh"
    for bad in ("", ".", "/abs", "..", "a/../b", ".hidden", "\\\\server\\x"):
        with pytest.raises(ToolError):
            check_skill_path(bad)
