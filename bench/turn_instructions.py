"""Instructions per turn: the chatd server's CPU work for one short turn, counted by callgrind.

Wall-clock CPU figures on a shared 2-core machine move by +-20-40% between identical runs (the
other processes, the host); instruction counts do not. This runs the same stack as
``bench/stream.py`` (fake provider, real ``chatd server``, warm chats, one WebSocket client per
chat) with the server under ``valgrind --tool=callgrind``, instrumentation switched on only
from just before the sends (clients connected, server quiet) until the turns have finished and
their summaries are written.
The figure is the server's instructions (all threads) divided by the number of turns: the
send request, the claim, the turn with its streamed deltas, step persistence, finishing and
the turn summary.

Reproduce (valgrind from Debian's package; ~1 minute per backend):

    .venv/bin/python bench/turn_instructions.py
    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/turn_instructions.py --backends sqlite,postgresql

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import _stream_procs  # noqa: E402
from _stream_pool import ClientPool  # noqa: E402
from stream import PG_ENV, Case, chatd_stack, run_chatd  # noqa: E402

# Under valgrind the server starts and answers several times slower.
_stream_procs.STARTUP_TIMEOUT = 600.0
# After the clients saw the turns end: summaries are written in the background.
SETTLE_SECONDS = 5.0


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def total_instructions(dump_dir: Path, pid: int) -> int:
    """The largest ``totals:`` line among the server's dumps (the one taken on request)."""
    total = 0
    for path in dump_dir.glob(f"cg.{pid}*"):
        for line in path.read_text().splitlines():
            if line.startswith(("totals:", "summary:")):
                total = max(total, int(line.split()[1]))
    return total


async def measure(backend: str, pg_base: str | None, chats: int, deltas: int) -> float:
    with tempfile.TemporaryDirectory(prefix="chatd-bench-") as tmp:
        home = Path(tmp)
        dumps = home / "callgrind"
        dumps.mkdir()
        prefix = (
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={dumps}/cg.%p",
        )
        async with chatd_stack(home, pg_base, chats, 0, prefix) as (server, fake, api, ids):
            pid = server.process.pid
            case = Case(chats, None, deltas)

            def start(pid: int) -> None:
                callgrind_control("--instr=on", str(pid))
                callgrind_control("--zero", str(pid))

            pool = ClientPool(1)
            try:
                result = await run_chatd(
                    backend, server, api, fake.url, ids, case, pool, False, start
                )
            finally:
                pool.close()
            await asyncio.sleep(SETTLE_SECONDS)
            callgrind_control("--dump", str(pid))
            callgrind_control("--instr=off", str(pid))
            if result.tally.received != case.chats * case.deltas:
                raise RuntimeError(f"{backend}: lost deltas, figure not valid")
            return total_instructions(dumps, pid) / chats


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite", help="sqlite and/or postgresql")
    parser.add_argument("--chats", type=int, default=10, help="chats, one turn each")
    parser.add_argument("--deltas", type=int, default=1, help="deltas per reply")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    for backend in args.backends.split(","):
        pg_base = None
        if backend == "postgresql":
            pg_base = os.environ.get(PG_ENV)
            if not pg_base:
                sys.exit(f"set {PG_ENV} for the postgresql backend")
        per_turn = await measure(backend, pg_base, args.chats, args.deltas)
        print(
            f"{backend:<10}  chats {args.chats}  deltas {args.deltas}  "
            f"{per_turn / 1e6:.1f} M instructions per turn",
            flush=True,
        )


if __name__ == "__main__":
    asyncio.run(main())
