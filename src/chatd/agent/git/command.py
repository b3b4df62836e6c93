"""Running git so that it only looks.

Every command runs with ``--no-optional-locks`` (and ``GIT_OPTIONAL_LOCKS=0``), so ``git
status`` and ``git diff`` never refresh and rewrite the index; in a minimal environment (no
pager, no system config, ``LC_ALL=C``, none of the caller's ``GIT_*`` variables); with
discovery stopped at the repository root (``GIT_CEILING_DIRECTORIES``), so a repository that
vanishes is never mistaken for the one above it; and under a timeout. Paths come out
unquoted unless they hold control characters, quotes or backslashes
(``core.quotePath=off``), and no fsmonitor hook is started.

These functions block: callers run them in a worker thread.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

GIT_TIMEOUT = 30.0
# A line of diff output is handed on in pieces of at most this many bytes, so a minified
# file's single line never has to sit whole in memory.
PIECE = 64 * 1024
_READ = 256 * 1024
_STDERR_KEPT = 4096

_CONFIG = ("-c", "core.quotePath=off", "-c", "core.fsmonitor=false", "-c", "color.ui=false")
_PASSED_ON = ("PATH", "HOME", "XDG_CONFIG_HOME", "SYSTEMROOT", "TMPDIR")


class GitError(Exception):
    """A git command that failed, timed out or could not start."""


def environment(root: Path) -> dict[str, str]:
    env = {name: os.environ[name] for name in _PASSED_ON if name in os.environ}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_OPTIONAL_LOCKS="0",
        GIT_TERMINAL_PROMPT="0",
        GIT_PAGER="cat",
        PAGER="cat",
        LC_ALL="C",
        GIT_CEILING_DIRECTORIES=str(root.parent),
    )
    return env


def argv(root: Path, args: Sequence[str]) -> list[str]:
    return ["git", "--no-optional-locks", *_CONFIG, "-C", str(root), *args]


def run(
    root: Path,
    *args: str,
    ok: Sequence[int] = (0,),
    stdin: bytes | None = None,
    timeout: float = GIT_TIMEOUT,
) -> tuple[int, bytes]:
    """``git args`` in ``root``: its exit code (one of ``ok``) and its output."""
    try:
        done = subprocess.run(
            argv(root, args),
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            env=environment(root),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise GitError(f"git {args[0]} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    if done.returncode not in ok:
        raise GitError(_failure(args, done.returncode, done.stderr))
    return done.returncode, done.stdout


def pieces(root: Path, *args: str, timeout: float = GIT_TIMEOUT) -> Iterator[bytes]:
    """The output of ``git args`` as it comes, cut into lines (each ending in ``\\n``,
    except perhaps the last) and long lines into pieces of at most :data:`PIECE` bytes.
    Raises :class:`GitError` at the end if git failed, or as soon as the time is up."""
    try:
        process = subprocess.Popen(
            argv(root, args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(root),
        )
    except OSError as exc:
        raise GitError(f"cannot run git: {exc}") from None
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    stderr = bytearray()
    pending = bytearray()
    with selectors.DefaultSelector() as selector, process:
        selector.register(process.stdout, selectors.EVENT_READ)
        selector.register(process.stderr, selectors.EVENT_READ)
        try:
            while selector.get_map():
                left = deadline - time.monotonic()
                ready = selector.select(left) if left > 0 else []
                if not ready:
                    raise GitError(f"git {args[0]} took longer than {timeout:g} s")
                for key, _ in ready:
                    chunk = os.read(key.fd, _READ)
                    if not chunk:
                        selector.unregister(key.fileobj)
                    elif key.fileobj is process.stderr:
                        stderr += chunk
                        del stderr[:-_STDERR_KEPT]
                    else:
                        pending += chunk
                        yield from _cut(pending)
            if pending:
                yield bytes(pending)
            code = process.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            process.kill()
            raise GitError(f"git {args[0]} took longer than {timeout:g} s") from None
        except BaseException:
            process.kill()
            raise
    if code != 0:
        raise GitError(_failure(args, code, bytes(stderr)))


def _cut(pending: bytearray) -> Iterator[bytes]:
    """Take whole lines (and over-long pieces) off the front of ``pending``."""
    start = 0
    size = len(pending)
    while start < size:
        end = pending.find(b"\n", start, start + PIECE)
        if end >= 0:
            yield bytes(pending[start : end + 1])
            start = end + 1
        elif size - start >= PIECE:
            yield bytes(pending[start : start + PIECE])
            start += PIECE
        else:
            break
    del pending[:start]


def _failure(args: Sequence[str], code: int, stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "replace").strip().splitlines()
    said = lines[-1] if lines else f"exit status {code}"
    return f"git {args[0]} failed: {said}"
