"""``chatd dev openapi``: its output is the document alone, whatever the host lacks."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from typer.testing import CliRunner

from chatd.cli.main import app


def test_the_document_is_all_of_stdout_on_a_host_without_bubblewrap(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    # Only the interpreter's directory and an empty one: no bwrap on this PATH.
    path = os.pathsep.join([str(empty), str(Path(sys.executable).parent)])
    assert not any((Path(d) / "bwrap").exists() for d in path.split(os.pathsep))
    result = CliRunner().invoke(app, ["dev", "openapi"], env={"PATH": path})
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["openapi"].startswith("3.")
