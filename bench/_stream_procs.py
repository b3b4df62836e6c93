"""Processes for ``bench/stream.py``: the fake provider, a real ``chatd server``, /proc figures.

Both run as subprocesses on 127.0.0.1 ports; their output goes to files in the run's temporary
directory (read back for the first-start banner and for the report on failure).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx2

STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (fields 14 and 15 of ``/proc/<pid>/stat``)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for {pid}")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5); False where the kernel refuses."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass
class Process:
    """A subprocess with its output in a file, stopped with SIGTERM (then SIGKILL)."""

    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    _log: IO[bytes]

    @classmethod
    def start(
        cls,
        args: list[str],
        env: dict[str, str],
        port: int,
        log_path: Path,
        prefix: tuple[str, ...] = (),
        python: str = sys.executable,
    ) -> Process:
        """``prefix``: a command the process runs under (a profiler, say); ``python``: the
        interpreter (another tree's virtualenv runs that tree's chatd)."""
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [*prefix, python, "-m", "chatd.cli.main", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        return cls(proc, f"http://127.0.0.1:{port}", log_path, log)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, probe: str) -> None:
        """Wait until ``GET probe`` answers 200."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.proc.args!r} exited:\n{self.output()}")
            try:
                if httpx2.get(self.url + probe, timeout=1).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.proc.args!r} did not start:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


def _base_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(HOME=str(home), CHATD_LOG_FORMAT="json")
    return env


@contextlib.contextmanager
def fake_provider(home: Path) -> Iterator[Process]:
    """``chatd dev fake-provider`` on a free port (script entries come by ``POST /fake/script``)."""
    port = free_port()
    fake = Process.start(
        ["dev", "fake-provider", "--port", str(port)], _base_env(home), port, home / "fake.log"
    )
    try:
        fake.wait_ready("/fake/requests")
        yield fake
    finally:
        fake.stop()


@dataclass
class Server:
    process: Process
    token: str


@contextlib.contextmanager
def chatd_server(
    home: Path,
    database_url: str | None,
    settings: dict[str, str],
    prefix: tuple[str, ...] = (),
    python: str = sys.executable,
) -> Iterator[Server]:
    """A real ``chatd server`` with a fresh data dir; ``settings`` are extra ``CHATD_*`` vars."""
    port = free_port()
    env = _base_env(home) | {
        "CHATD_DATA_DIR": str(home / "data"),
        "CHATD_CONFIG_DIR": str(home / "config"),
        "CHATD_HTTP_ADDRESS": f"127.0.0.1:{port}",
    }
    if database_url:
        env["CHATD_DATABASE_URL"] = database_url
    env.update(settings)
    process = Process.start(["server"], env, port, home / "server.log", prefix, python)
    try:
        process.wait_ready("/healthz")
        # Off a terminal the first start prints no token: it is in the CLI's session file.
        session = json.loads((home / "config" / "session.json").read_text())
        yield Server(process, str(session["token"]))
    finally:
        process.stop()
