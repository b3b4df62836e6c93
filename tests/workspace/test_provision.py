"""Local workspace directories: the clone URL policy, git init, clones and their timeout."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatd.workspace import provision
from chatd.workspace.errors import WorkspaceInputError
from tests.workspace.repos import git, make_repo

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/example/repo.git",
        "https://user:token@git.example.com:8443/group/repo",
        "ssh://git@github.com/example/repo.git",
        "ssh://git@[::1]:2222/repo",
        "git@github.com:example/repo.git",
        "github.com:example/repo.git",
        "git://git.example.com/repo.git",
    ],
)
def test_remote_urls_are_allowed(url: str) -> None:
    assert provision.clone_source(url, []) == (url, False)


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% /tmp/x",
        "EXT::sh",
        "fd::3",
        "transport+x::addr",
        "-uhelp",
        "--config=core.sshCommand=touch /tmp/x",
        "http://example.com/repo.git",
        "ftp://example.com/repo.git",
        "gopher://example.com/x",
        "ssh://-oProxyCommand=x/y",
        "https://",
        "https://example.com/a b",
        "https://example.com/a\nb",
        "",
        "x" * 3000,
    ],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(WorkspaceInputError):
        provision.clone_source(url, [Path("/")])


def test_local_paths_only_inside_the_roots(tmp_path: Path) -> None:
    root = tmp_path / "repos"
    (root / "a").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "escape").symlink_to(tmp_path / "outside")
    resolved = str((root / "a").resolve())
    assert provision.clone_source(str(root / "a"), [root]) == (resolved, True)
    assert provision.clone_source(f"file://{root}/a", [root]) == (resolved, True)
    assert provision.clone_source(f"file://localhost{root}/a", [root]) == (resolved, True)
    for refused in (
        str(tmp_path / "outside"),
        str(root / "escape"),
        str(root / ".." / "outside"),
        f"file://{tmp_path}/outside",
        f"file://elsewhere.example.com{root}/a",
        "repos/a",
    ):
        with pytest.raises(WorkspaceInputError):
            provision.clone_source(refused, [root])
    with pytest.raises(WorkspaceInputError, match="CHATD_WORKSPACE_CLONE_ROOTS"):
        provision.clone_source(str(root / "a"), [])


@pytest.mark.parametrize("branch", ["-f", "--upload-pack=x", "a..b", "a b", "~x"])
def test_bad_branches_are_refused(branch: str) -> None:
    with pytest.raises(WorkspaceInputError):
        provision.check_branch(branch)


def test_good_branches() -> None:
    for branch in ("", "main", "feature/x-1", "release-2.0", "v1_2"):
        provision.check_branch(branch)


async def test_scratch_and_clone(tmp_path: Path) -> None:
    scratch = tmp_path / "data" / "workspaces" / "one"
    provision.make_directory(scratch)
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
    assert stat.S_IMODE(scratch.parent.stat().st_mode) == 0o700
    await provision.init_scratch(scratch, 30)
    assert (scratch / ".git").is_dir()

    repo = await asyncio.to_thread(make_repo, tmp_path / "repos" / "r")
    clone = tmp_path / "data" / "workspaces" / "two"
    provision.make_directory(clone)
    await provision.clone(clone, str(repo), "feature", roots=[tmp_path / "repos"], time_limit=30)
    assert (clone / "feature.txt").read_text() == "feature\n"
    with pytest.raises(FileExistsError):
        provision.make_directory(clone)


@pytest.fixture
async def silent_git_server() -> AsyncIterator[int]:
    """A TCP port that accepts connections and never answers."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, family=socket.AF_INET)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_clone_that_hangs_is_stopped(tmp_path: Path, silent_git_server: int) -> None:
    target = tmp_path / "ws"
    provision.make_directory(target)
    url = f"git://127.0.0.1:{silent_git_server}/repo.git"
    with pytest.raises(WorkspaceInputError, match="timed out after 0.3 seconds"):
        await provision.clone(target, url, "", roots=[], time_limit=0.3)


SERVER_ONLY = "CHATD_TEST_PROVISION_MARKER"
ALLOWED_ENV = {
    "PATH",
    "LANG",
    "LC_ALL",
    "HOME",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_TERMINAL_PROMPT",
    "GIT_SSH_COMMAND",
}


def test_git_gets_a_minimal_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_ONLY, "server-only")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-server")
    monkeypatch.setenv("SSH_AUTH_SOCK", "/run/agent.sock")
    env = provision.git_environment(tmp_path)
    assert set(env) == ALLOWED_ENV
    assert env["HOME"] == str(tmp_path) and env["PATH"] == os.environ["PATH"]
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    ssh = env["GIT_SSH_COMMAND"].split()
    assert ssh[:3] == ["ssh", "-F", os.devnull]
    assert {"IdentitiesOnly=yes", "BatchMode=yes", "IdentityFile=none"} <= set(ssh)
    assert provision.GIT_OPTIONS[:2] == ("-c", "credential.helper=")


def spy_git(directory: Path, record: Path) -> Path:
    """A ``git`` first on PATH that writes the environment it was given to ``record``, then
    runs the real git."""
    real = shutil.which("git")
    assert real is not None
    directory.mkdir()
    spy = directory / "git"
    spy.write_text(
        f'#!/bin/sh\nenv -0 >> "{record}"\nprintf "\\0\\0" >> "{record}"\nexec {real} "$@"\n'
    )
    spy.chmod(0o755)
    return directory


async def test_a_clone_sees_nothing_of_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's variables, its user's git configuration and credential helpers stay
    out of a real clone."""
    operator_home = tmp_path / "operator"
    operator_home.mkdir()
    (operator_home / ".gitconfig").write_text(
        "[clone]\n\tdefaultRemoteName = operator\n[credential]\n\thelper = store\n"
    )
    repo = await asyncio.to_thread(make_repo, tmp_path / "repos" / "r")
    record = tmp_path / "env.txt"
    spies = spy_git(tmp_path / "bin", record)
    with monkeypatch.context() as server:
        server.setenv("HOME", str(operator_home))
        server.setenv("PATH", f"{spies}{os.pathsep}{os.environ['PATH']}")
        server.setenv(SERVER_ONLY, "server-only")
        server.setenv("ANTHROPIC_API_KEY", "sk-server")
        clone = tmp_path / "data" / "workspaces" / "one"
        provision.make_directory(clone)
        await provision.clone(clone, str(repo), "", roots=[tmp_path / "repos"], time_limit=30)

    assert git("remote", cwd=clone).split() == ["origin"]  # not the operator's setting
    check_recorded(record, operator_home)


def check_recorded(record: Path, operator_home: Path) -> None:
    """Every git the spy saw ran without the server's variables, in a fresh HOME."""
    seen = [
        dict(item.split("=", 1) for item in block.split("\0") if item)
        for block in record.read_text().split("\0\0\0")
        if block.strip("\0")
    ]
    assert seen, "git did not run through the spy"
    for env in seen:
        assert SERVER_ONLY not in env and "ANTHROPIC_API_KEY" not in env, env
        assert env["HOME"] != str(operator_home) and env["GIT_CONFIG_GLOBAL"] == os.devnull
        assert not os.path.exists(env["HOME"])  # made for the call, removed after it
