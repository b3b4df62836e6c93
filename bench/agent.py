"""The workspace agent: its idle memory, and the latency of running a trivial command.

Two figures:
- the RSS of an idle agent, ``python -m chatd.agent`` and ``chatd agent``, connected to a
  WebSocket server on 127.0.0.1 (read from /proc after it has said hello and settled);
- ``process_start`` of ``true`` with ``wait_ms`` (one call that answers with the exit):
  in-process through the Dispatcher, and as a request over the WebSocket to a running agent.

Reproduce (~10 s):

    .venv/bin/python bench/agent.py [--uvloop]

(``--uvloop`` runs the in-process figure and the test server on uvloop, as the agent runs.)

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher

TOKEN = "bench-token"
PROGRAMS = {
    "python -m chatd.agent": ("-m", "chatd.agent"),
    "chatd agent": ("-m", "chatd.cli.main", "agent"),
}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms"


async def in_process(directory: Path, count: int) -> list[float]:
    agent = Dispatcher(directory)
    samples: list[float] = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            result = await agent.handle("process_start", {"command": "true", "wait_ms": 10_000})
            samples.append(time.perf_counter() - began)
            assert result["exit_code"] == 0
    finally:
        await agent.close()
    return samples


async def over_websocket(
    directory: Path, program: tuple[str, ...], count: int
) -> tuple[float, list[float]]:
    """The idle RSS of the agent started with ``program``, and request latencies."""
    peers: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await peers.put(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        env = {
            **os.environ,
            protocol.TOKEN_ENV: TOKEN,
            protocol.URL_ENV: f"http://127.0.0.1:{port}",
        }
        agent = await asyncio.create_subprocess_exec(
            sys.executable,
            *program,
            "--dir",
            str(directory),
            env=env,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            ws = await asyncio.wait_for(peers.get(), 30)
            await ws.recv()  # hello
            await asyncio.sleep(1.0)  # let it settle
            rss = rss_mib(agent.pid)
            samples: list[float] = []
            for request_id in range(count):
                began = time.perf_counter()
                args: dict[str, Any] = {"command": "true", "wait_ms": 10_000}
                await ws.send(protocol.encode(protocol.request(request_id, "process_start", args)))
                answer = protocol.decode(await ws.recv())
                samples.append(time.perf_counter() - began)
                assert answer["result"]["exit_code"] == 0, answer
            return rss, samples
        finally:
            agent.terminate()
            await agent.wait()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        samples = await in_process(directory, options.count)
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        print(f"process_start true, in-process ({loop}): {percentiles(samples)}")
        for name, program in PROGRAMS.items():
            rss, samples = await over_websocket(directory, program, options.count)
            latency = percentiles(samples)
            print(f"{name}: idle RSS {rss:.1f} MiB; process_start true over the socket: {latency}")


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        sys.argv.remove("--uvloop")
        uvloop.run(main())
    else:
        asyncio.run(main())
