"""Streaming throughput and latency: fake provider → chatd → ``/chats/{chat}/stream`` clients.

For N concurrent chats and two pacings (full speed, 50 tokens/s), every chat streams one reply
of M text deltas, each stamped by the fake provider with the time it wrote it. One WebSocket
per chat is opened (and its snapshot read) before the message is sent; every received delta
gives ``receive time - stamp``. The same N, pacing and M are also read straight from the fake's
SSE endpoint (the bare path), so chatd's cost shows as a throughput ratio and added latency.
Each chatd run is paired with a bare run of the same case made just before it on the same fake
provider: the machine's speed drifts by tens of percent over minutes, and a pair sees the same
machine. ``--repeat N`` runs every case N times and reports per-case medians, and for ratios
and added latencies the median over the pairs.

``--baseline DIR`` measures another checkout of chatd beside this one: DIR's own virtualenv
(``DIR/.venv``) runs a second server on the same fake provider, with its own database and warm
chats, and every repeat runs both (alternating which goes first). The last table gives, per
case, the median over the pairs of this tree's server CPU per 1,000 deltas and throughput as a
share of the baseline's.

Processes: the fake provider (``chatd dev fake-provider``) and real ``chatd server``s (SQLite in
a temporary data dir; also PostgreSQL when ``CHATD_BENCH_DATABASE_URL`` is set, in a database
created and dropped on that server) are subprocesses; the clients run in a pool of
``--client-procs`` processes (default 4), so that one Python process reading every stream is
not what limits a run. All on 127.0.0.1. One fake per N; every pacing runs on it, each after
the server has gone quiet. Each chat first runs a warm-up turn (it takes the title and
turn-summary calls and loads the turn code), so the measured turn is a chat's second; its own
turn summary (one non-streamed call per chat, after the turn) is the only model-call noise
left.

Figures per run: delivered deltas/s (all chats, from the first delta written to the last one
received), p50/p99 write → receive (ms), server CPU seconds per 1,000 deltas (utime+stime
from ``/proc``, from just before the sends until every client saw the turn end: it includes
sends, claims, step persistence and finishing, not only relaying), the server's peak RSS during
the run (VmHWM, reset before it), and lost deltas (expected - received).

Reproduce:

    .venv/bin/python bench/stream.py                   # N in 1,10,100,500; ~10 minutes
    .venv/bin/python bench/stream.py --chats 100 --pacings full --repeat 7
    .venv/bin/python bench/stream.py --quick           # N in 1,10,100, shorter replies
    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/stream.py --backends postgresql
    git worktree add --detach ../chatd-base <commit>     # the tree to compare against
    (cd ../chatd-base && python3 -m venv .venv && .venv/bin/pip install -e .)
    .venv/bin/python bench/stream.py --chats 100 --repeat 5 --baseline ../chatd-base

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _databases import PG_ENV, pg_database  # noqa: E402
from _stream_clients import Tally, gather_bounded  # noqa: E402
from _stream_pool import ClientPool  # noqa: E402
from _stream_procs import (  # noqa: E402
    Process,
    Server,
    chatd_server,
    cpu_seconds,
    fake_provider,
    peak_rss_mb,
    reset_peak_rss,
)

API = "/api/experimental/chats"
WARM_UP_TEXT = "warm up"
CONCURRENT_REQUESTS = 50
QUIET_CPU_SHARE = 0.05  # the server is quiet below 5% of a core
QUIET_TIMEOUT = 30.0


@dataclass(frozen=True)
class Case:
    chats: int
    pace: float | None  # tokens per second; None is full speed
    deltas: int

    @property
    def pace_label(self) -> str:
        return "full" if self.pace is None else f"{self.pace:g}/s"

    def timeout(self) -> float:
        """A bound on one run: the paced duration three times over, plus setup per chat."""
        streaming = self.deltas / self.pace if self.pace else 1.0
        return 60.0 + 3 * streaming + 0.2 * self.chats

    def script(self) -> list[dict[str, object]]:
        entry: dict[str, object] = {
            "match": {"stream": True},
            "text": [f"w{i} " for i in range(self.deltas)],
            "stamp_deltas": True,
        }
        if self.pace is not None:
            entry["tokens_per_second"] = self.pace
        return [entry] * self.chats


@dataclass
class Result:
    path: str
    case: Case
    tally: Tally
    cpu_seconds: float | None = None
    rss_mb: float | None = None
    wall_seconds: float = 0.0

    def figures(self) -> Figures:
        p50, p99 = self.tally.latency_ms()
        received = self.tally.received
        cpu = (
            self.cpu_seconds / received * 1000
            if self.cpu_seconds is not None and received
            else None
        )
        return Figures(
            received=received,
            expected=self.tally.expected,
            throughput=self.tally.throughput(),
            p50=p50,
            p99=p99,
            steady_p99=self.tally.steady_p99_ms(),
            cpu_per_1k=cpu,
            rss_mb=self.rss_mb,
            wall_seconds=self.wall_seconds,
        )

    def row(self) -> tuple[str, ...]:
        return self.figures().row(self.path, self.case)


@dataclass(frozen=True)
class Figures:
    """One run's figures, or the median of several runs' (each figure on its own)."""

    received: int
    expected: int
    throughput: float
    p50: float
    p99: float
    steady_p99: float
    cpu_per_1k: float | None
    rss_mb: float | None
    wall_seconds: float

    @staticmethod
    def median(runs: list[Figures]) -> Figures:
        def mid(values: list[float | None]) -> float | None:
            known = [v for v in values if v is not None and not math.isnan(v)]
            return statistics.median(known) if known else None

        def nan_if_none(value: float | None) -> float:
            return float("nan") if value is None else value

        return Figures(
            received=min(r.received for r in runs),
            expected=runs[0].expected,
            throughput=nan_if_none(mid([r.throughput for r in runs])),
            p50=nan_if_none(mid([r.p50 for r in runs])),
            p99=nan_if_none(mid([r.p99 for r in runs])),
            steady_p99=nan_if_none(mid([r.steady_p99 for r in runs])),
            cpu_per_1k=mid([r.cpu_per_1k for r in runs]),
            rss_mb=mid([r.rss_mb for r in runs]),
            wall_seconds=nan_if_none(mid([r.wall_seconds for r in runs])),
        )

    def row(self, path: str, case: Case, runs: int = 1) -> tuple[str, ...]:
        return (
            path,
            str(case.chats),
            case.pace_label,
            str(runs),
            f"{self.received}/{self.expected}",
            str(self.expected - self.received),
            f"{self.throughput:,.0f}",
            f"{self.p50:.1f}",
            f"{self.p99:.1f}",
            f"{self.steady_p99:.1f}",
            "-" if self.cpu_per_1k is None else f"{self.cpu_per_1k:.3f}",
            "-" if self.rss_mb is None else f"{self.rss_mb:.0f}",
            f"{self.wall_seconds:.1f}",
        )


# ---- chatd -------------------------------------------------------------------------------


def ok(response: httpx2.Response) -> httpx2.Response:
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response


async def configure(api: httpx2.AsyncClient, fake_url: str) -> dict[str, str]:
    """An ``openai-compat`` provider on the fake and a default model config: the fields a new
    chat needs (``organization_id``, ``model_config_id``)."""
    me = ok(await api.get("/api/v2/users/me")).json()
    r = await api.post(
        API + "/providers",
        json={"provider": "openai-compat", "api_key": "bench", "base_url": fake_url + "/v1"},
    )
    ok(r)
    r = await api.post(
        API + "/model-configs",
        json={
            "provider": "openai-compat",
            "model": "fake-model",
            "context_limit": 128000,
            "is_default": True,
        },
    )
    return {"organization_id": me["organization_ids"][0], "model_config_id": ok(r).json()["id"]}


async def create_warm_chats(
    api: httpx2.AsyncClient, fields: dict[str, str], count: int
) -> list[str]:
    """``count`` chats whose first turn (with its title and summary calls) is over."""
    gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def create() -> str:
        async with gate:
            body = {"content": [{"type": "text", "text": WARM_UP_TEXT}], **fields}
            return str(ok(await api.post(API, json=body)).json()["id"])

    ids = list(await asyncio.gather(*(create() for _ in range(count))))
    waiting = set(ids)
    deadline = time.monotonic() + 60 + count * 0.5
    while waiting and time.monotonic() < deadline:
        warm = await asyncio.gather(*(_is_warm(api, gate, c) for c in waiting))
        waiting -= {c for c, ok in zip(list(waiting), warm, strict=True) if ok}
        if waiting:
            await asyncio.sleep(0.2)
    if waiting:
        print(f"  warning: {len(waiting)} chats not warm in time", file=sys.stderr)
    return ids


async def _is_warm(api: httpx2.AsyncClient, gate: asyncio.Semaphore, chat_id: str) -> bool:
    async with gate:
        chat = ok(await api.get(f"{API}/{chat_id}")).json()
    return bool(
        chat["status"] == "waiting"
        and chat["title"] != WARM_UP_TEXT
        and chat.get("last_turn_summary")
    )


async def wait_quiet(pid: int) -> None:
    """Until the server uses under 5% of a core over 0.25 s (bounded)."""
    deadline = time.monotonic() + QUIET_TIMEOUT
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(0.25)
        if cpu_seconds(pid) - before < 0.25 * QUIET_CPU_SHARE:
            return


async def run_chatd(
    path: str,
    server: Server,
    api: httpx2.AsyncClient,
    fake_url: str,
    chat_ids: list[str],
    case: Case,
    pool: ClientPool,
    deflate: bool = False,
    before_sends: Callable[[int], None] | None = None,
) -> Result:
    """One measured run; ``before_sends(server pid)`` is called as the measurement starts."""
    ok(await api.post(fake_url + "/fake/script", json=case.script()))
    ws_url = server.process.url.replace("http://", "ws://")
    tally = Tally(expected=case.chats * case.deltas)
    await pool.open(ws_url, server.token, chat_ids, deflate, tally)
    pid = server.process.pid
    await wait_quiet(pid)
    if before_sends is not None:
        before_sends(pid)
    reset = reset_peak_rss(pid)
    cpu_before = cpu_seconds(pid)
    started = time.monotonic()
    gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

    async def send(chat_id: str) -> None:
        body = {"content": [{"type": "text", "text": "go"}]}
        async with gate:
            ok(await api.post(f"{API}/{chat_id}/messages", json=body))

    await pool.start_following(case.timeout())
    await gather_bounded([send(c) for c in chat_ids], case.timeout(), tally, "sends")
    await pool.collect(tally)
    wall = time.monotonic() - started
    cpu = cpu_seconds(pid) - cpu_before
    rss = peak_rss_mb(pid) if reset else None
    return Result(path, case, tally, cpu, rss, wall)


@asynccontextmanager
async def server_stack(
    home: Path,
    pg_base: str | None,
    fake_url: str,
    chats: int,
    per_acquire: int,
    prefix: tuple[str, ...] = (),
    python: str = sys.executable,
) -> AsyncIterator[tuple[Server, httpx2.AsyncClient, list[str]]]:
    """A server (run by ``python``, under ``prefix``) on a fresh database, configured for the
    fake provider at ``fake_url``; its API client; ``chats`` warm chats."""
    settings = {
        "CHATD_MAX_CHATS_PER_ACQUIRE": str(per_acquire or chats),
        "CHATD_RATE_LIMIT_PER_MINUTE": "0",  # the bench's clients are one user
    }
    with ExitStack() as stack:
        database_url = stack.enter_context(pg_database(pg_base)) if pg_base else None
        server = stack.enter_context(chatd_server(home, database_url, settings, prefix, python))
        # Under uvicorn's 5 s keep-alive: a connection the server is closing is never reused
        # (that race once failed a send with ReadError and lost its chat's turn).
        limits = httpx2.Limits(max_connections=CONCURRENT_REQUESTS, keepalive_expiry=2.0)
        async with httpx2.AsyncClient(
            base_url=server.process.url,
            headers={"Coder-Session-Token": server.token},
            limits=limits,
            timeout=60,
        ) as api:
            fields = await configure(api, fake_url)
            chat_ids = await create_warm_chats(api, fields, chats)
            print(f"# {chats} warm chats on server pid {server.process.pid}", flush=True)
            yield server, api, chat_ids


@asynccontextmanager
async def chatd_stack(
    home: Path, pg_base: str | None, chats: int, per_acquire: int, prefix: tuple[str, ...] = ()
) -> AsyncIterator[tuple[Server, Process, httpx2.AsyncClient, list[str]]]:
    """Fake provider, server (on a fresh database, run under ``prefix``), API client and
    ``chats`` warm chats."""
    for part in ("fake", "server"):
        (home / part).mkdir(exist_ok=True)
    with fake_provider(home / "fake") as fake:
        async with server_stack(home / "server", pg_base, fake.url, chats, per_acquire, prefix) as (
            server,
            api,
            chat_ids,
        ):
            yield server, fake, api, chat_ids


# ---- the bare path -----------------------------------------------------------------------


def bare_path(chatd_path: str) -> str:
    """The name of the bare runs made next to ``chatd_path``'s: ``chatd/pg`` -> ``bare/pg``."""
    return "bare/" + chatd_path.partition("/")[2]


async def run_bare(path: str, fake: Process, case: Case, pool: ClientPool) -> Result:
    tally = Tally(expected=case.chats * case.deltas)
    async with httpx2.AsyncClient(timeout=60) as client:
        ok(await client.post(fake.url + "/fake/script", json=case.script()))
    started = time.monotonic()
    cpu_before = cpu_seconds(fake.pid)
    pool.bare(fake.url, case.chats, case.timeout())
    await pool.collect(tally)
    wall = time.monotonic() - started
    # The bare path has no server: its CPU column is the fake provider's own.
    return Result(path, case, tally, cpu_seconds(fake.pid) - cpu_before, None, wall)


# ---- the report --------------------------------------------------------------------------


NOTES = """
bare/X: the bare path, run on X's stack's fake provider just before each chatd/X run; a ratio
or an added latency is the median over those pairs, the other figures are per-run medians.
deltas/s: all chats, first delta written -> last received. Latency: the fake's stamp (taken as
it writes the delta) -> the client's read. When chatd falls behind, TCP backpressure pauses the
fake, so its stamps are taken late: an overloaded run shows in deltas/s (against the bare
path, or N x pace) more than in latency. steady p99: over the deltas written while every chat
was streaming (after the last one started, before the first one ended), i.e. without the bursts
of N turns starting and finishing at once. cpu s/1k: the chatd server's CPU per 1,000 deltas
(on the bare rows, the fake provider's). rss: the server's peak during the run."""

HEADER = (
    "path",
    "chats",
    "pace",
    "runs",
    "deltas recv/exp",
    "lost",
    "deltas/s",
    "p50 ms",
    "p99 ms",
    "steady p99",
    "cpu s/1k",
    "rss MiB",
    "wall s",
)


def print_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)), flush=True)


def grouped(results: list[Result]) -> dict[tuple[str, Case], list[Result]]:
    """The runs of each path and case, in the order they ran."""
    groups: dict[tuple[str, Case], list[Result]] = {}
    for r in results:
        groups.setdefault((r.path, r.case), []).append(r)
    return groups


def medians(results: list[Result]) -> list[tuple[str, ...]]:
    return [
        Figures.median([r.figures() for r in runs]).row(path, case, len(runs))
        for (path, case), runs in grouped(results).items()
    ]


def compare(results: list[Result]) -> list[tuple[str, ...]]:
    """Each chatd run against the bare run made just before it, on the same fake provider: the
    median over the pairs of the throughput ratio and of the added p50/p99 latency."""
    groups = grouped(results)
    rows: list[tuple[str, ...]] = []
    for (path, case), runs in groups.items():
        bare = groups.get((bare_path(path), case))
        if path.startswith("bare/") or not bare:
            continue
        pairs = list(zip(bare, runs, strict=False))
        ratio = statistics.median(
            c.tally.throughput() / b.tally.throughput() if b.tally.throughput() else 0.0
            for b, c in pairs
        )
        added = [
            [x - y for x, y in zip(_latencies(c), _latencies(b), strict=True)] for b, c in pairs
        ]
        p50, p99, steady = (_median_known([a[i] for a in added]) for i in range(3))
        target = ""
        if case.pace is None:
            target = "ratio >= 50%: " + ("met" if ratio >= 0.5 else "MISSED")
        elif case.chats == 100 and case.pace == 50:
            target = "added p99 < 10 ms: " + ("met" if p99 < 10 else "MISSED")
            target += ", steady: " + ("met" if steady < 10 else "MISSED")
        rows.append(
            (
                path,
                str(case.chats),
                case.pace_label,
                str(len(pairs)),
                f"{ratio:.0%}",
                f"{p50:+.1f}",
                f"{p99:+.1f}",
                f"{steady:+.1f}",
                target,
            )
        )
    return rows


def _latencies(result: Result) -> tuple[float, float, float]:
    p50, p99 = result.tally.latency_ms()
    return p50, p99, result.tally.steady_p99_ms()


def _median_known(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return statistics.median(known) if known else float("nan")


def print_errors(results: list[Result]) -> None:
    for r in results:
        if r.tally.errors:
            shown = sorted(set(r.tally.errors))[:5]
            print(f"  {r.path} {r.case.chats} {r.case.pace_label}: {'; '.join(shown)}")


# ---- main --------------------------------------------------------------------------------


def cases(args: argparse.Namespace) -> list[Case]:
    chats = [int(n) for n in args.chats.split(",")]
    paces = [None if p == "full" else float(p) for p in args.pacings.split(",")]
    return [
        Case(n, pace, args.deltas if pace is None else round(pace * args.paced_seconds))
        for n in chats
        for pace in paces
    ]


@dataclass(frozen=True)
class Tree:
    """A chatd source tree to measure: its label and the interpreter that runs its server."""

    label: str
    python: str


def trees(args: argparse.Namespace) -> list[Tree]:
    found = [Tree("chatd", sys.executable)]
    if args.baseline:
        python = Path(args.baseline) / ".venv" / "bin" / "python"
        if not python.exists():
            sys.exit(f"{python} is missing: run `make {args.baseline}/.venv`-style setup there")
        found.append(Tree("base", str(python)))
    return found


async def run_chatd_cases(
    backend: str, pg_base: str | None, todo: list[Case], args: argparse.Namespace
) -> list[Result]:
    """Each case ``args.repeat`` times. One fake provider per N, and one server per tree on
    it; unless ``--no-bare``, each repeat starts with a bare run on that fake. With
    ``--baseline`` the two trees' runs alternate which goes first."""
    results = []
    measured = trees(args)
    for chats in sorted({c.chats for c in todo}):
        with tempfile.TemporaryDirectory(prefix="chatd-bench-") as tmp, ExitStack() as stack:
            home = Path(tmp)
            (home / "fake").mkdir()
            fake = stack.enter_context(fake_provider(home / "fake"))
            pool = ClientPool(args.client_procs)
            stack.callback(pool.close)
            async with contextlib.AsyncExitStack() as servers:
                stacks = {}
                for tree in measured:
                    (home / tree.label).mkdir()
                    stacks[tree.label] = await servers.enter_async_context(
                        server_stack(
                            home / tree.label,
                            pg_base,
                            fake.url,
                            chats,
                            args.per_acquire,
                            python=tree.python,
                        )
                    )
                for case in (c for c in todo if c.chats == chats):
                    for repeat in range(args.repeat):
                        runs = []
                        if not args.no_bare:
                            runs.append(await run_bare(f"bare/{backend}", fake, case, pool))
                        order = measured if repeat % 2 == 0 else measured[::-1]
                        for tree in order:
                            server, api, chat_ids = stacks[tree.label]
                            runs.append(
                                await run_chatd(
                                    f"{tree.label}/{backend}",
                                    server,
                                    api,
                                    fake.url,
                                    chat_ids,
                                    case,
                                    pool,
                                    args.deflate,
                                )
                            )
                        print_table([r.row() for r in runs], HEADER)
                        results += runs
    return results


def compare_trees(results: list[Result]) -> list[tuple[str, ...]]:
    """Each chatd run against the baseline tree's run of the same repeat: the median over the
    pairs of the CPU per 1,000 deltas and the throughput, as ratios, and the added p99."""
    groups = grouped(results)
    rows: list[tuple[str, ...]] = []
    for (path, case), runs in groups.items():
        if not path.startswith("chatd/"):
            continue
        base = groups.get(("base/" + path.removeprefix("chatd/"), case))
        if not base:
            continue
        pairs = list(zip(base, runs, strict=False))
        cpu = statistics.median(
            (c.figures().cpu_per_1k or 0.0) / (b.figures().cpu_per_1k or float("inf"))
            for b, c in pairs
        )
        thru = statistics.median(
            c.tally.throughput() / b.tally.throughput() if b.tally.throughput() else 0.0
            for b, c in pairs
        )
        p99 = _median_known([c.tally.latency_ms()[1] - b.tally.latency_ms()[1] for b, c in pairs])
        verdict = "cpu <= 110%: " + ("met" if cpu <= 1.10 else "MISSED")
        verdict += ", throughput >= 90%: " + ("met" if thru >= 0.90 else "MISSED")
        rows.append(
            (
                path,
                str(case.chats),
                case.pace_label,
                str(len(pairs)),
                f"{cpu:.0%}",
                f"{thru:.0%}",
                f"{p99:+.1f}",
                verdict,
            )
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", default=None, help="comma-separated N (1,10,100,500)")
    parser.add_argument("--pacings", default="full,50", help="'full' and/or tokens per second")
    parser.add_argument("--deltas", type=int, default=200, help="deltas per reply at full speed")
    parser.add_argument("--paced-seconds", type=float, default=10.0, help="paced reply length")
    parser.add_argument("--backends", default="sqlite,postgresql", help="chatd backends to run")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case (medians)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare path")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument(
        "--per-acquire",
        type=int,
        default=0,
        help="CHATD_MAX_CHATS_PER_ACQUIRE (0: N, so all turns start together)",
    )
    parser.add_argument("--quick", action="store_true", help="N in 1,10,100; 3 s paced replies")
    parser.add_argument(
        "--client-procs", type=int, default=4, help="client processes reading the streams"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        help="another chatd checkout (with its own .venv) run side by side as base/X",
    )
    args = parser.parse_args()
    if args.quick:
        args.paced_seconds, args.deltas = 3.0, 100
    args.chats = args.chats or ("1,10,100" if args.quick else "1,10,100,500")
    todo = cases(args)
    print(
        f"{os.cpu_count()} CPUs, shared by this client process, the fake provider and the "
        "server: on a small machine the client and the fake take CPU from the server, so "
        "the figures are a floor for chatd on its own host.",
        flush=True,
    )
    results: list[Result] = []
    for backend in args.backends.split(","):
        if backend == "sqlite":
            results += await run_chatd_cases("sqlite", None, todo, args)
        elif backend == "postgresql" and os.environ.get(PG_ENV):
            results += await run_chatd_cases("pg", os.environ[PG_ENV], todo, args)
        elif backend == "postgresql":
            print(f"({PG_ENV} is not set: PostgreSQL skipped)", flush=True)
    print()
    print_table(medians(results), HEADER)
    print()
    print_table(
        compare(results),
        ("path", "chats", "pace", "pairs", "thru ratio", "+p50", "+p99", "+steady p99", ""),
    )
    if args.baseline:
        print()
        print_table(
            compare_trees(results),
            ("path", "chats", "pace", "pairs", "cpu/1k vs base", "thru vs base", "+p99", ""),
        )
    print_errors(results)
    print(NOTES)


if __name__ == "__main__":
    asyncio.run(main())
