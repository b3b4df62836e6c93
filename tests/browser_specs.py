"""The browser tests (``web/tests/*.spec.ts``) as pytest items, one per spec file.

Each item runs Playwright on its spec file, which starts its own ``chatd server`` (with this
interpreter, so the code under test is this checkout's) and fake provider on free ports, so
pytest-xdist can run two spec files at once beside the Python tests. The UI must be built
first (``make web``; ``make test`` does it). A failure shows Playwright's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

WEB = Path(__file__).resolve().parent.parent / "web"
SPEC_DIR = WEB / "tests"
# Per spec file: the servers' start, then its tests (Playwright's own timeouts are tighter).
SPEC_TIMEOUT = 900


class SpecFailed(Exception):
    """Playwright reported failures; the message is its output."""


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.parent == SPEC_DIR and file_path.name.endswith(".spec.ts"):
        spec: pytest.Collector = SpecFile.from_parent(parent, path=file_path)
        return spec
    return None


class SpecFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item]:
        yield SpecItem.from_parent(self, name=self.path.name)


class SpecItem(pytest.Item):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_marker(pytest.mark.timeout(SPEC_TIMEOUT))
        self.add_marker(pytest.mark.slow)

    def runtest(self) -> None:
        if not (WEB / "node_modules").is_dir():
            raise SpecFailed("web/node_modules is missing: run `make web` first.")
        env = {**os.environ, "CHATD_PYTHON": sys.executable}
        for name in ("CHATD_WEB_PORT", "CHATD_FAKE_PORT", "CHATD_WEB_HOME"):
            env.pop(name, None)
        proc = subprocess.run(
            ["npx", "playwright", "test", str(self.path.relative_to(WEB))],
            cwd=WEB,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=SPEC_TIMEOUT - 30,
        )
        if proc.returncode != 0:
            raise SpecFailed(proc.stdout)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SpecFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"playwright {self.name}"
