"""Files a test puts in a workspace directory: skills and instruction files."""

from __future__ import annotations

from pathlib import Path


def add_skill(directory: Path, name: str, description: str, body: str = "Do it well.\n") -> Path:
    skill = directory / ".agents" / "skills" / name
    skill.mkdir(parents=True)
    (skill / "SKILL.md").write_text(f"---\nname: {name}\ndescription: {description}\n---\n{body}")
    return skill
