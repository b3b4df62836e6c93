"""The workspace git stream: from a file written in the workspace to the ``changes`` message
on a ``/chats/{chat}/stream/git`` client, and the agent's CPU while nothing changes.

A chatd app is served on 127.0.0.1 in this process (as ``bench/tools.py`` does: SQLite, no
chat workers). A local scratch workspace (its agent in bubblewrap) gets a repository of
10,000 committed files in 100 directories; a chat is bound to it and a client connects to its
git stream. Then N times (default 50), one at a time: append a line to a tracked file (from
this process, straight into the workspace directory) and time until a message whose diff
holds that line arrives (the agent's debounce included). Last, the agent's CPU time over 20
idle seconds, from /proc (the Python agent process inside the sandbox and its children).

Reproduce (~1 minute):

    .venv/bin/python bench/git_stream.py [--count 50] [--files 10000]

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import structlog
import uvloop
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tools import CONNECT, agent_process, bound_chat, figures, server, workspace  # noqa: E402

COMMAND = ".venv/bin/python bench/git_stream.py"
IDLE_SECONDS = 20.0
MESSAGE_TIMEOUT = 30.0  # a change that never arrives ends the run
GIT_ID = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def populate(directory: Path, files: int) -> None:
    """``files`` small files in 100 directories, committed."""
    for i in range(files):
        sub = directory / f"pkg{i % 100:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"module{i:05d}.py").write_text(f"# module {i}\nVALUE = {i}\n")
    subprocess.run(["git", "-C", str(directory), "add", "."], check=True)
    subprocess.run(
        ["git", "-C", str(directory), *GIT_ID, "commit", "-qm", "many files"], check=True
    )


def cpu_seconds(pid: int) -> float:
    """User and system time of ``pid`` and its waited-for children."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--files", type=int, default=10_000)
    options = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    with tempfile.TemporaryDirectory() as tmp:
        async with server(Path(tmp), "bwrap") as srv:
            made = await workspace(srv, "scratch")
            key = uuid.UUID(made["id"])
            await srv.service.connection(key, wait=CONNECT)
            directory = srv.service.data_dir / "workspaces" / made["id"]
            began = time.perf_counter()
            populate(directory, options.files)
            made_in = time.perf_counter() - began
            chat_id = await bound_chat(srv, made["id"])
            url = (
                srv.url.replace("http://", "ws://")
                + f"/api/experimental/chats/{chat_id}/stream/git"
            )
            began = time.perf_counter()
            async with connect(url, additional_headers=srv.headers, max_size=None) as ws:
                json.loads(await ws.recv())  # every repository, scanned for this client
                first_scan = time.perf_counter() - began
                await asyncio.sleep(1.0)  # let the commit's own messages go by
                samples = []
                for n in range(options.count):
                    marker = f"CHANGE_{n}_{uuid.uuid4().hex[:8]}"
                    target = directory / f"pkg{n % 100:02d}" / f"module{n:05d}.py"
                    began = time.perf_counter()
                    with target.open("a") as f:
                        f.write(f"{marker} = True\n")
                    async with asyncio.timeout(MESSAGE_TIMEOUT):
                        while marker not in await ws.recv():
                            pass
                    samples.append(time.perf_counter() - began)
                pid = srv.service.launcher.pid(key)
                assert pid is not None
                agent = agent_process(pid)
                await asyncio.sleep(2.0)
                before = cpu_seconds(agent)
                await asyncio.sleep(IDLE_SECONDS)
                idle = (cpu_seconds(agent) - before) / IDLE_SECONDS * 100
    p50, p99, most = figures(samples)
    print(f"repository: {options.files} files, made and committed in {made_in:.1f} s")
    print(f"connect until the first message (a full scan): {first_scan * 1000:.0f} ms")
    print(
        f"write -> changes message ({options.count} writes): "
        f"p50 {p50:.0f} ms, p99 {p99:.0f} ms, max {most:.0f} ms"
    )
    print(f"agent CPU while idle ({IDLE_SECONDS:.0f} s): {idle:.2f} % of a core")
    print(f"\nreproduce: {COMMAND} --count {options.count} --files {options.files}")


if __name__ == "__main__":
    uvloop.run(main())
