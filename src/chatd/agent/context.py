"""The ``context`` operation: what the server puts before a chat's first turn in this
workspace. Instruction files (``~/.coder/AGENTS.md``, then the directory's ``AGENTS.md``),
each without HTML comments, with LF line endings, cut at ``CONTEXT_FILE_MAX`` bytes; and the
workspace's skills."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from chatd.agent import protocol, skills
from chatd.agent.paths import inside, text

INSTRUCTION_FILE = "AGENTS.md"
HOME_INSTRUCTIONS = Path(".coder") / INSTRUCTION_FILE
# An instruction file is read up to this much before its comments are stripped.
READ_MAX = 4 * protocol.CONTEXT_FILE_MAX
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def operating_system() -> str:
    return platform.system().lower()


def context(root: Path, home: Path, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "directory": text(root),
        "home": text(home),
        "operating_system": operating_system(),
        "files": instruction_files(root, home),
        "skills": [skill.summary() for skill in skills.scan(root)],
    }


def instruction_files(root: Path, home: Path) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    seen: set[Path] = set()
    for path, confined in ((home / HOME_INSTRUCTIONS, False), (root / INSTRUCTION_FILE, True)):
        real = Path(os.path.realpath(path))
        if real in seen or (confined and not inside(root, real)):
            continue
        seen.add(real)
        part = _instruction_file(real)
        if part is not None:
            found.append({"path": text(path), **part})
    return found


def _instruction_file(path: Path) -> dict[str, Any] | None:
    try:
        if not path.is_file():
            return None
        with path.open("rb") as file:
            data = file.read(READ_MAX + 1)
    except OSError:
        return None
    truncated = len(data) > READ_MAX
    text = data[:READ_MAX].decode("utf-8", errors="replace").replace("\r\n", "\n")
    encoded = _COMMENT.sub("", text).strip().encode("utf-8")
    if len(encoded) > protocol.CONTEXT_FILE_MAX:
        encoded = encoded[: protocol.CONTEXT_FILE_MAX]
        truncated = True
    content = encoded.decode("utf-8", errors="ignore")
    if not content:
        return None
    return {"content": content, "truncated": truncated}
