"""A PostgreSQL cluster of a test's own, on a loopback port, that the test may restart.

The shared server of ``CHATD_TEST_DATABASE_URL`` serves every other test at once; restarting
it would fail theirs. :func:`private_postgres` runs ``initdb`` and ``pg_ctl`` from the
machine's PostgreSQL (``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``)
into a fresh directory, with trust authentication and no fsync; run as root, it runs them as
the ``postgres`` user (PostgreSQL refuses to run as root). Without the binaries, the test is
skipped.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import free_port


def _bindir() -> Path | None:
    try:
        found = subprocess.run(
            ["pg_config", "--bindir"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found = ""
    candidates = [found] if found else []
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for path in candidates:
        if (Path(path) / "initdb").exists() and (Path(path) / "pg_ctl").exists():
            return Path(path)
    return None


@dataclass
class Cluster:
    bindir: Path
    data: Path
    port: int
    user: str | None  # run the binaries as this user (None: as this process's)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    @property
    def log(self) -> Path:
        """The server's output (never this process's pipes, which it would hold open)."""
        return self.data.parent / "log"

    def restart(self) -> None:
        """Stop the server (fast: sessions are cut, as in a real restart) and start it again;
        returns once it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w", "restart"
        )


@contextmanager
def private_postgres() -> Iterator[Cluster]:
    bindir = _bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's initdb and pg_ctl are not installed")
    user = "postgres" if os.geteuid() == 0 else None
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run PostgreSQL as")
    # Outside pytest's temporary directories, which only their owner may enter.
    root = Path(tempfile.mkdtemp(prefix="chatd-pg-"))
    if user is not None:
        shutil.chown(root, user)
    cluster = Cluster(bindir, root / "data", free_port(), user)
    options = (
        f"-c listen_addresses=127.0.0.1 -p {cluster.port} -c unix_socket_directories=''"
        " -c fsync=off -c max_connections=100"
    )
    try:
        data = str(cluster.data)
        cluster._run(
            "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        cluster._run("pg_ctl", "-D", data, "-o", options, "-l", str(cluster.log), "-w", "start")
        yield cluster
    finally:
        if (cluster.data / "postmaster.pid").exists():
            cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
