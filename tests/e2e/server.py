"""Start real ``chatd server`` processes on loopback ports for end-to-end tests."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg

STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chatd_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATD_")}
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    env.update(
        HOME=str(home),
        CHATD_DATA_DIR=str(home / "data"),
        CHATD_CONFIG_DIR=str(home / "config"),
        CHATD_LOG_FORMAT="json",
        # These tests poll; the per-user rate limit stays on with a burst they never reach.
        CHATD_RATE_LIMIT_BURST="1000000",
    )
    env.update(extra)
    return env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chatd.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    url: str
    data_dir: Path
    output: list[str] = field(default_factory=list)
    _lines: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _ended: bool = False  # the end of the output has been taken

    @classmethod
    def start(cls, env: dict[str, str], port: int | None = None) -> ServerProcess:
        port = port or free_port()
        env = {**env, "CHATD_HTTP_ADDRESS": f"127.0.0.1:{port}"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "chatd.cli.main", "server"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        server = cls(
            proc=proc, url=f"http://127.0.0.1:{port}", data_dir=Path(env["CHATD_DATA_DIR"])
        )
        threading.Thread(target=server._pump, daemon=True).start()
        return server

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def wait_ready(self) -> None:
        """Wait until the server answers HTTP (collecting its output meanwhile)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            self.collect()
            if self.proc.poll() is not None:
                self.collect(final=True)
                raise RuntimeError("chatd server exited:\n" + "\n".join(self.output))
            try:
                if httpx2.get(self.url + "/healthz", timeout=1).status_code == 200:
                    self.collect()
                    return
            except httpx2.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError("chatd server did not start:\n" + "\n".join(self.output))

    def collect(self, final: bool = False) -> None:
        """Take the output read so far; ``final``: until its end (the process has exited),
        waiting up to 5 s for each line. Once the end has been taken there is nothing to wait
        for: a second stop, or a collect after one, returns at once."""
        while not self._ended:
            try:
                line = self._lines.get(timeout=5 if final else 0)
            except queue.Empty:
                return
            if line is None:
                self._ended = True
                return
            self.output.append(line)

    def value(self, label: str) -> str:
        """A ``label: value`` line of the first start's credentials: the banner on the output
        holds the URL, email and username; the file it names also the password and token."""
        lines = list(self.output)
        credentials = self.data_dir / "first-user.txt"
        if credentials.exists():
            lines += credentials.read_text().splitlines()
        for line in lines:
            if line.strip().startswith(label + ":"):
                return line.split(":", 1)[1].strip()
        raise KeyError(label)

    def stop(self) -> int:
        """Stop gracefully (SIGTERM); the exit status of a clean stop is -SIGTERM."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.collect(final=True)
        return self.proc.returncode


WAIT = 60.0


def wait_for(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    """Poll ``check`` until it holds (bounded; fails the test with ``what`` on timeout)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def answers(url: str) -> bool:
    try:
        return httpx2.get(url, timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


@contextmanager
def fake_provider_process(home: Path, *options: str) -> Iterator[str]:
    """A ``chatd dev fake-provider`` process on a free loopback port; yields its base URL.

    ``options``: more of its command-line options (e.g. ``--api-key K``)."""
    port = free_port()
    command = ["dev", "fake-provider", "--port", str(port), *options]
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatd.cli.main", *command],
        env=chatd_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: proc.poll() is None and answers(url + "/fake/requests"),
            "the fake provider to start",
        )
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def postgres_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the server of ``admin_url``, dropped afterwards."""
    admin_url = admin_url.replace("postgresql+asyncpg://", "postgresql://")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
