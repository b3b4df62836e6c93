"""Making a local workspace's directory (an empty git repository, or a clone) and removing it.

Clone URLs are checked before git sees them: https, ssh (``ssh://`` and scp-like
``user@host:path``) and ``git://`` are allowed; local paths and ``file://`` URLs only inside
the directories the administrator lists (``CHATD_WORKSPACE_CLONE_ROOTS``), checked after
resolving symlinks; anything else (remote helpers such as ``ext::``, other schemes, a URL
that git could take for an option) is refused. git runs without a terminal to prompt on,
with the ``ext`` transport off, and is killed past its timeout.

git runs with nothing of the server's environment or of its user's configuration and
credentials: a minimal environment (:func:`git_environment`) whose ``HOME`` is an empty
directory made for the call, no system or global git configuration, no credential helper, and
ssh without its configuration files, keys or agent, never asking a question.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import structlog

from chatd.workspace.errors import WorkspaceInputError

log = structlog.get_logger(__name__)

REMOTE_SCHEMES = frozenset({"https", "ssh", "git"})
# ``<transport>::<address>``: git hands the address to a remote helper (``ext::`` runs a
# command).
_REMOTE_HELPER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9+.-]*::")
# scp-like ``[user@]host:path``: a colon before any slash.
_SCP_LIKE = re.compile(
    r"^(?:[A-Za-z0-9._~+-]+@)?(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\]):"
)
_BRANCH = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")
MAX_URL = 2048
MAX_ERROR_OUTPUT = 2000
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
# ssh reads neither the user's nor the system's configuration, offers no key (not even the
# user's default key files, which it finds through the password database, not HOME), and
# never prompts.
GIT_SSH_COMMAND = (
    "ssh -F /dev/null -o IdentitiesOnly=yes -o IdentityFile=none -o BatchMode=yes"
)
# Options of every git command: no credential helper, no remote helper running commands.
GIT_OPTIONS = ("-c", "credential.helper=", "-c", "protocol.ext.allow=never")


def git_environment(home: Path, path: str | None = None) -> dict[str, str]:
    """The whole environment of a git command: ``home`` (an empty directory) as ``HOME``,
    the server's ``PATH`` (to find git and ssh; ``path`` replaces it), messages in English
    whatever the server's locale, and git's configuration and prompts off."""
    return {
        "PATH": path if path is not None else os.environ.get("PATH", DEFAULT_PATH),
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_SSH_COMMAND": GIT_SSH_COMMAND,
    }


def clone_source(url: str, roots: Sequence[Path]) -> tuple[str, bool]:
    """What to hand ``git clone`` for ``url`` and whether it is on this host; raises
    :class:`WorkspaceInputError` for a URL the policy refuses."""
    if not url or len(url) > MAX_URL or any(c.isspace() or ord(c) < 32 for c in url):
        raise WorkspaceInputError("repo_url must be a repository URL without spaces", "repo_url")
    if url.startswith("-"):
        raise WorkspaceInputError("repo_url must not start with '-'", "repo_url")
    if _REMOTE_HELPER.match(url):
        raise WorkspaceInputError(
            "repo_url uses a git remote helper ('<transport>::'), which is not allowed",
            "repo_url",
        )
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise WorkspaceInputError("a file:// URL must name a path on this server")
            return _local_path(unquote(parts.path), roots), True
        if scheme not in REMOTE_SCHEMES:
            raise WorkspaceInputError(
                f"repo_url scheme {scheme!r} is not allowed (use https, ssh or git)", "repo_url"
            )
        if not parts.hostname or parts.hostname.startswith("-"):
            raise WorkspaceInputError("repo_url must name a host", "repo_url")
        return url, False
    if _SCP_LIKE.match(url):
        return url, False
    return _local_path(url, roots), True


def _local_path(raw: str, roots: Sequence[Path]) -> str:
    if not roots:
        raise WorkspaceInputError(
            "cloning from a path on the server is not enabled (the administrator lists the "
            "directories allowed in CHATD_WORKSPACE_CLONE_ROOTS); use an https, ssh or git URL",
            "repo_url",
        )
    path = Path(raw)
    if not path.is_absolute():
        raise WorkspaceInputError("a local repository path must be absolute", "repo_url")
    resolved = path.resolve()
    if not any(resolved.is_relative_to(root.resolve()) for root in roots):
        raise WorkspaceInputError(
            f"{raw} is not inside a directory this server may clone from", "repo_url"
        )
    return str(resolved)


def check_branch(branch: str) -> None:
    if branch and (not _BRANCH.match(branch) or ".." in branch or len(branch) > 255):
        raise WorkspaceInputError(f"{branch!r} is not a valid branch name", "branch")


def workspace_directory(data_dir: Path, workspace_id: object) -> Path:
    return data_dir / "workspaces" / str(workspace_id)


def make_directory(directory: Path) -> None:
    """The workspace directory, new and 0700 (its parent too)."""
    directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.mkdir(mode=0o700)


def remove_directory(directory: Path, data_dir: Path) -> None:
    """Remove a workspace directory (only ever one in the data directory's ``workspaces``),
    whatever modes its contents were left with."""
    parent = (data_dir / "workspaces").resolve()
    if directory.parent.resolve() != parent or directory.is_symlink():
        log.warning("not removing a directory outside the workspaces", path=str(directory))
        return
    if sys.version_info >= (3, 12):
        shutil.rmtree(directory, onexc=_writable_and_retry)
    else:
        shutil.rmtree(directory, onerror=_writable_and_retry)


def _writable_and_retry(function: Any, path: str, _exc: Any) -> None:
    """rmtree's error handler: make the entry and its directory writable, try again."""
    parent = os.path.dirname(path)
    for target in (parent, path):
        try:
            mode = os.lstat(target).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(target, stat.S_IMODE(mode) | stat.S_IRWXU)
        except OSError:
            pass
    try:
        function(path)
    except FileNotFoundError:
        pass


async def init_scratch(directory: Path, time_limit: float) -> None:
    """An empty git repository."""
    await _git(["init", "--quiet", "--", str(directory)], time_limit, "git init")


async def clone(
    directory: Path,
    url: str,
    branch: str,
    *,
    roots: Sequence[Path],
    time_limit: float,
) -> None:
    """Clone ``url`` (checked by :func:`clone_source`) into the empty ``directory``."""
    source, local = clone_source(url, roots)
    check_branch(branch)
    args = [] if local else ["-c", "protocol.file.allow=never"]
    args += ["clone", "--quiet"]
    if branch:
        args += ["--branch", branch]
    await _git([*args, "--", source, str(directory)], time_limit, "git clone")


async def _git(args: list[str], time_limit: float, what: str) -> None:
    with tempfile.TemporaryDirectory(prefix="chatd-git-home-", ignore_cleanup_errors=True) as home:
        await _run_git(args, git_environment(Path(home)), time_limit, what)


async def _run_git(args: list[str], env: dict[str, str], time_limit: float, what: str) -> None:
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *GIT_OPTIONS,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise WorkspaceInputError("git is not installed on the server") from None
    try:
        async with asyncio.timeout(time_limit):
            _, stderr = await proc.communicate()
    except TimeoutError:
        _kill_group(proc.pid)
        await proc.wait()
        raise WorkspaceInputError(f"{what} timed out after {time_limit:g} seconds") from None
    except BaseException:
        _kill_group(proc.pid)
        await proc.wait()
        raise
    if proc.returncode != 0:
        output = stderr.decode(errors="replace").strip()[-MAX_ERROR_OUTPUT:]
        log.info("workspace git command failed", what=what, code=proc.returncode)
        raise WorkspaceInputError(f"{what} failed: {output or f'exit status {proc.returncode}'}")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
