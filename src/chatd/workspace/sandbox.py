"""Running a local agent inside bubblewrap.

The agent sees the system read-only (``/usr``, ``/etc``, the merged-usr links, ``/opt``, the
Python it runs on and chatd's own package), its workspace directory read-write at its own
path, a fresh ``/tmp``, ``/dev`` and ``/proc``, and nothing else of the host's files: not the
data directory (the database, the secret key, other workspaces) nor the config directory;
where one of them lies inside a path bound in, an empty tmpfs covers it (made first when it
is missing, so that it stays covered once the server creates it). It runs in its own
PID, IPC and UTS namespaces and session, dies with the server, and starts from an empty
environment: ``HOME`` is the workspace, ``PATH`` the system's, and the variables the launcher
gives. The network is the host's (the agent dials the server on loopback).

The environment goes to bubblewrap through a pipe (``--args``), so the agent's token never
appears on a command line. Started as root, bubblewrap drops every capability.

Without bubblewrap (``CHATD_SANDBOX=none``, or not installed) the agent runs directly, with
the same environment, as the server's user: its commands see what that user sees.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

import chatd

log = structlog.get_logger(__name__)

SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
SYSTEM_DIRS = ("/usr", "/etc")
MERGED_USR = ("/bin", "/lib", "/lib64", "/sbin")


def agent_environment(directory: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a local agent."""
    return {"HOME": str(directory), "PATH": SANDBOX_PATH, "LANG": "C.UTF-8", **extra}


@dataclass
class Prepared:
    """A command ready to start: its argv, its environment, the descriptors to pass on (the
    parent closes them once the process has started)."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    pass_fds: tuple[int, ...] = ()
    _open: list[int] = field(default_factory=list)

    def close_fds(self) -> None:
        while self._open:
            os.close(self._open.pop())


class Sandbox:
    """How this server runs its local agents (``mode``: "bwrap" or "none")."""

    def __init__(self, mode: str, hidden: Iterable[Path], *, bwrap: str | None = None) -> None:
        self.hidden = [Path(p) for p in hidden]
        self.bwrap: str | None = None
        if mode == "bwrap":
            self.bwrap = bwrap or shutil.which("bwrap")
            if self.bwrap is None:
                log.warning(
                    "bubblewrap (bwrap) is not installed: local workspace agents run without a "
                    "sandbox, as the server's user (install bubblewrap, or set "
                    "CHATD_SANDBOX=none to run them so knowingly)"
                )

    @property
    def enabled(self) -> bool:
        return self.bwrap is not None

    def prepare(self, argv: Sequence[str], directory: Path, env: Mapping[str, str]) -> Prepared:
        """``argv`` to run in ``directory`` with exactly ``env`` added to the base one."""
        environment = agent_environment(directory, env)
        _check_no_nul(environment)
        if self.bwrap is None:
            return Prepared(argv=list(argv), env=environment, cwd=directory)
        read, write = os.pipe()
        try:
            data = b"".join(
                b"--setenv\0" + name.encode() + b"\0" + value.encode() + b"\0"
                for name, value in environment.items()
            )
            with os.fdopen(write, "wb") as pipe:
                write = -1
                pipe.write(data)  # far below a pipe's buffer: does not block
        except BaseException:
            os.close(read)
            if write != -1:
                os.close(write)
            raise
        command = [self.bwrap, *bwrap_options(directory, self.hidden, args_fd=read), "--", *argv]
        return Prepared(argv=command, env={}, cwd=directory, pass_fds=(read,), _open=[read])


def _check_no_nul(environment: Mapping[str, str]) -> None:
    """The ``--setenv`` arguments are NUL-separated: a NUL inside a name or value would add
    options of its own. Raises ValueError (never stripped, unlike an assert)."""
    for name, value in environment.items():
        if "\0" in name or "\0" in value or "=" in name or not name:
            raise ValueError(f"environment variable {name!r} cannot be passed to the agent")


def bwrap_options(directory: Path, hidden: Sequence[Path], *, args_fd: int) -> list[str]:
    """bubblewrap's options for an agent working in ``directory``."""
    options = ["--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc"]
    options += ["--unshare-uts"]
    if os.geteuid() == 0:
        options += ["--cap-drop", "ALL"]
    options += ["--clearenv", "--args", str(args_fd)]
    bound: list[Path] = []
    for name in SYSTEM_DIRS:
        if os.path.isdir(name):
            options += ["--ro-bind", name, name]
            bound.append(Path(name))
    for name in MERGED_USR:
        if os.path.islink(name):
            options += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            options += ["--ro-bind", name, name]
            bound.append(Path(name))
    if os.path.isdir("/opt"):
        options += ["--ro-bind", "/opt", "/opt"]
        bound.append(Path("/opt"))
    # A fresh /tmp before the runtime: a Python or a chatd installed under /tmp is bound on
    # top of it rather than hidden by it.
    options += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    for path in runtime_paths():
        if not _inside_any(path, bound):
            options += ["--ro-bind", str(path.resolve()), str(path)]
            bound.append(path)
    covered: list[Path] = []
    for path in hidden:
        if _inside_any(path, bound) or _inside_any(path.resolve(), bound):
            _make_coverable(path)
        for variant in (path, path.resolve()):
            if variant not in covered and variant.is_dir() and _inside_any(variant, bound):
                options += ["--tmpfs", str(variant)]
                covered.append(variant)
    options += ["--bind", str(directory), str(directory), "--chdir", str(directory)]
    return options


def runtime_paths() -> list[Path]:
    """What the agent needs to run: the Python prefixes (a virtualenv and the Python it was
    made from) and the directory holding the chatd package (an editable install's source)."""
    paths: list[Path] = []
    for raw in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix):
        for path in (Path(raw), Path(raw).resolve()):
            if path not in paths:
                paths.append(path)
    package_root = Path(chatd.__file__).resolve().parent.parent
    if not any(package_root.is_relative_to(p.resolve()) for p in paths):
        paths.append(package_root)
    return paths


def _make_coverable(path: Path) -> None:
    """Only a directory that exists is covered: one made after the agent started would show
    through the bound path it lies in. So a missing one is made now (the server's own)."""
    with contextlib.suppress(OSError):
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def _inside_any(path: Path, parents: Iterable[Path]) -> bool:
    return any(path.is_relative_to(parent) for parent in parents)
