"""bubblewrap around local agents: the options, and real runs (skipped without bwrap)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from chatd.workspace import sandbox
from chatd.workspace.sandbox import Prepared, Sandbox, bwrap_options

HAS_BWRAP = shutil.which("bwrap") is not None
needs_bwrap = pytest.mark.skipif(
    not HAS_BWRAP, reason="bubblewrap (bwrap) is not installed: the sandbox tests need it"
)


@pytest.fixture
def inside_prefix() -> Iterator[Path]:
    """A directory inside a path the sandbox binds read-only (the Python prefix)."""
    path = Path(sys.prefix) / f"chatd-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    (path / "secret.key").write_text("secret\n")
    try:
        yield path
    finally:
        shutil.rmtree(path)


def pairs(options: list[str], flag: str) -> list[tuple[str, ...]]:
    width = {"--ro-bind": 2, "--bind": 2, "--symlink": 2}.get(flag, 1)
    return [tuple(options[i + 1 : i + 1 + width]) for i, o in enumerate(options) if o == flag]


def run(prepared: Prepared) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            prepared.argv,
            env=prepared.env,
            cwd=prepared.cwd,
            pass_fds=prepared.pass_fds,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        prepared.close_fds()


def test_the_options(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    options = bwrap_options(workspace, [tmp_path / "data"], args_fd=7)
    for flag in ("--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc"):
        assert flag in options
    assert "--unshare-uts" in options and "--clearenv" in options
    assert "--unshare-net" not in options and "--unshare-all" not in options
    assert pairs(options, "--args") == [("7",)]
    binds = pairs(options, "--ro-bind")
    assert ("/usr", "/usr") in binds and ("/etc", "/etc") in binds
    for name in ("/bin", "/lib", "/sbin"):
        if os.path.islink(name):
            assert (os.readlink(name), name) in pairs(options, "--symlink")
        elif os.path.isdir(name):
            assert (name, name) in binds
    assert (str(Path(sys.prefix).resolve()), sys.prefix) in binds
    assert pairs(options, "--bind") == [(str(workspace), str(workspace))]
    assert pairs(options, "--chdir") == [(str(workspace),)]
    assert ("/tmp",) in pairs(options, "--tmpfs")
    # The data directory is under /tmp here: not bound, so nothing to cover.
    assert pairs(options, "--tmpfs") == [("/tmp",)]
    if os.geteuid() == 0:
        assert pairs(options, "--cap-drop") == [("ALL",)]


def test_a_hidden_directory_inside_a_bound_one_is_covered(
    tmp_path: Path, inside_prefix: Path
) -> None:
    workspace = inside_prefix / "workspaces" / "one"
    options = bwrap_options(workspace, [inside_prefix, tmp_path / "absent"], args_fd=3)
    covers = pairs(options, "--tmpfs")
    assert covers == [("/tmp",), (str(inside_prefix),)]
    # Covered before the workspace is bound over it.
    assert options.index(str(inside_prefix)) < options.index("--bind")


def test_a_missing_hidden_directory_inside_a_bound_one_is_made_and_covered(
    inside_prefix: Path, tmp_path: Path
) -> None:
    config = inside_prefix / "config" / "chatd"
    outside = tmp_path / "not-bound"
    options = bwrap_options(tmp_path / "ws", [config, outside], args_fd=3)
    assert config.is_dir() and (config.stat().st_mode & 0o777) == 0o700
    assert pairs(options, "--tmpfs") == [("/tmp",), (str(config),)]
    assert not outside.exists()  # not bound: nothing to cover, nothing made


def test_without_bwrap_installed_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on it
    with structlog.testing.capture_logs() as logs:
        sandbox = Sandbox("bwrap", [])
    assert not sandbox.enabled
    assert [e["log_level"] for e in logs] == ["warning"]
    assert "bubblewrap" in logs[0]["event"]
    prepared = sandbox.prepare(["true"], tmp_path, {"X": "y"})
    assert prepared.argv == ["true"] and prepared.cwd == tmp_path
    assert prepared.env == {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "X": "y",
    }
    with structlog.testing.capture_logs() as logs:
        assert not Sandbox("none", []).enabled
    assert logs == []


@needs_bwrap
def test_the_environment_is_only_what_is_given(tmp_path: Path) -> None:
    token = "chatd-agent-" + uuid.uuid4().hex
    prepared = Sandbox("bwrap", []).prepare(["env"], tmp_path, {"CHATD_AGENT_TOKEN": token})
    assert not any(token in arg for arg in prepared.argv)  # never on a command line
    done = run(prepared)
    assert done.returncode == 0, done.stderr
    env = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert env == {
        "HOME": str(tmp_path),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "CHATD_AGENT_TOKEN": token,
        "PWD": str(tmp_path),  # bubblewrap's, after its --chdir
    }


@needs_bwrap
def test_a_covered_directory_cannot_be_read(tmp_path: Path, inside_prefix: Path) -> None:
    secret = inside_prefix / "secret.key"
    shown = run(Sandbox("bwrap", []).prepare(["cat", str(secret)], tmp_path, {}))
    assert shown.stdout == "secret\n"  # bound read-only when not hidden
    hidden = run(Sandbox("bwrap", [inside_prefix]).prepare(["cat", str(secret)], tmp_path, {}))
    assert hidden.returncode != 0 and hidden.stdout == ""


@needs_bwrap
def test_the_workspace_is_writable_and_the_rest_read_only(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = (
        "pwd; echo hi > here.txt && echo wrote; "
        f"touch {sys.prefix}/nope 2>/dev/null || echo read-only; "
        f"ls {tmp_path}; ls /home 2>/dev/null | wc -l"
    )
    done = run(Sandbox("bwrap", []).prepare(["sh", "-c", script], workspace, {}))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    assert lines[:3] == [str(workspace), "wrote", "read-only"]
    assert lines[3:] == ["ws", "0"]  # only the workspace of the host's /tmp, no /home
    assert (workspace / "here.txt").read_text() == "hi\n"


@pytest.mark.parametrize("mode", ["bwrap", "none"])
@pytest.mark.parametrize(
    "env",
    [
        {"X": "a\0--bind\0/\0/"},
        {"X\0--bind": "x"},
        {"A=B": "x"},
        {"": "x"},
    ],
)
def test_a_variable_that_cannot_be_passed_is_refused(
    tmp_path: Path, mode: str, env: dict[str, str]
) -> None:
    """A NUL would end a ``--setenv`` argument early and start an option of its own."""
    sandbox = Sandbox(mode, [], bwrap=shutil.which("bwrap") or "/usr/bin/bwrap")
    with pytest.raises(ValueError, match="cannot be passed"):
        sandbox.prepare(["env"], tmp_path, env)


@needs_bwrap
def test_a_runtime_under_tmp_is_not_hidden_by_the_fresh_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chatd run from a checkout under /tmp: its Python and sources are bound over the
    sandbox's own /tmp, not covered by it."""
    runtime = tmp_path / "checkout" / ".venv"
    runtime.mkdir(parents=True)
    (runtime / "marker").write_text("here\n")
    assert str(runtime).startswith("/tmp/")
    monkeypatch.setattr(sandbox, "runtime_paths", lambda: [runtime])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    done = run(Sandbox("bwrap", []).prepare(["cat", str(runtime / "marker")], workspace, {}))
    assert (done.returncode, done.stdout) == (0, "here\n"), done.stderr
