"""Workspace skills: ``.agents/skills/<name>/SKILL.md`` with a frontmatter naming the skill
(kebab-case, equal to its directory) and describing it; ``read_skill`` and
``read_skill_file``."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from chatd.agent import args as a
from chatd.agent import protocol
from chatd.agent.errors import OpError
from chatd.agent.files import load, refuse_binary
from chatd.agent.paths import inside, text

SKILLS_DIR = ".agents/skills"
SKILL_META = "SKILL.md"
NAME_MAX = 64
DESCRIPTION_MAX = 1024
MAX_SKILLS = 200
# read_skill lists at most this many supporting files.
MAX_LISTED = 500
_KEBAB = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    dir: Path
    body: str

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "dir": text(self.dir)}


def scan(root: Path) -> list[Skill]:
    """The valid skills of the workspace, by name (invalid ones are skipped)."""
    base = root / SKILLS_DIR
    try:
        entries = sorted(os.listdir(base))
    except OSError:
        return []
    found: list[Skill] = []
    for entry in entries:
        skill = load_skill(root, entry)
        if skill is not None:
            found.append(skill)
            if len(found) == MAX_SKILLS:
                break
    return found


def load_skill(root: Path, name: str) -> Skill | None:
    """The skill in ``.agents/skills/<name>``, or None when it is missing or invalid."""
    if not valid_name(name):
        return None
    directory = Path(os.path.realpath(root / SKILLS_DIR / name))
    meta = Path(os.path.realpath(directory / SKILL_META))
    if not inside(root, directory) or not inside(directory, meta):
        return None
    try:
        data = load(meta, SKILL_META, protocol.SKILL_FILE_MAX)
    except OpError:
        return None
    parsed = frontmatter(data.decode("utf-8", errors="replace").replace("\r\n", "\n"))
    if parsed is None:
        return None
    fields, body = parsed
    description = " ".join(fields.get("description", "").split())
    if fields.get("name") != name or not description:
        return None
    return Skill(name, description[:DESCRIPTION_MAX], directory, body)


def valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX and _KEBAB.fullmatch(name) is not None


def frontmatter(text: str) -> tuple[dict[str, str], str] | None:
    """The ``key: value`` fields between the leading ``---`` lines and the body after
    them; None without a frontmatter. Indented lines continue the previous value, and a
    ``>`` or ``|`` value takes its text from them."""
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return None
    fields: dict[str, str] = {}
    key: str | None = None
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() == "---":
            return fields, "\n".join(lines[index + 1 :]).lstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t" and key is not None:
            fields[key] = f"{fields[key]} {line.strip()}".strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            return None
        key = name.strip()
        value = value.strip()
        fields[key] = "" if value in (">", "|", ">-", "|-") else _unquote(value)
    return None


def read_skill(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    skill = _find(root, args)
    return {
        "name": skill.name,
        "dir": text(skill.dir),
        "body": skill.body,
        "files": _supporting_files(skill.dir),
    }


def read_skill_file(root: Path, args: dict[str, Any]) -> dict[str, Any]:
    skill = _find(root, args)
    path = a.string(args, "path")
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or ".." in parts or any(p.startswith(".") for p in parts):
        raise OpError(
            protocol.BAD_REQUEST,
            f"the path {path!r} must be relative to the skill's directory, without '..' "
            "or hidden components",
        )
    real = Path(os.path.realpath(skill.dir / path))
    if not inside(skill.dir, real):
        raise OpError(
            protocol.OUTSIDE_WORKSPACE,
            f"{text(path)} is outside the skill's directory {text(skill.dir)}",
        )
    data = load(real, path, protocol.SKILL_FILE_MAX)
    refuse_binary(data, path)
    return {"content": data.decode("utf-8", errors="replace")}


def _find(root: Path, args: dict[str, Any]) -> Skill:
    name = a.string(args, "name")
    skill = load_skill(root, name)
    if skill is None:
        known = ", ".join(s.name for s in scan(root)) or "none"
        raise OpError(
            protocol.NOT_FOUND, f"no valid skill named {name!r} (the workspace's skills: {known})"
        )
    return skill


def _supporting_files(directory: Path) -> list[str]:
    """Paths below the skill's directory (not hidden, not its SKILL.md, not a symlink out of
    it); directories end with ``/``."""
    listed: list[str] = []
    for current, dirs, names in os.walk(directory):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if _listable(directory, here, d))
        relative = PurePosixPath(here.relative_to(directory))
        for entry in dirs:
            listed.append(f"{text(relative / entry)}/")
        for entry in sorted(names):
            if _listable(directory, here, entry) and not (
                here == directory and entry == SKILL_META
            ):
                listed.append(text(relative / entry))
        if len(listed) >= MAX_LISTED:
            break
    return sorted(listed)[:MAX_LISTED]


def _listable(directory: Path, parent: Path, name: str) -> bool:
    """Not hidden, and inside the skill's directory once symlinks are followed."""
    if name.startswith("."):
        return False
    return inside(directory, Path(os.path.realpath(parent / name)))


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
