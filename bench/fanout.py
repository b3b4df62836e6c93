"""Streaming fan-out across replicas: one turn's deltas to clients on the replica running it and
on another that relays them.

Two real ``chatd server`` replicas share one fresh PostgreSQL database (created and dropped on
``CHATD_BENCH_DATABASE_URL``'s server) and one fake provider (``chatd dev fake-provider``),
which streams each reply at ``--pace`` tokens/s, every delta stamped with the time it wrote it.
A chat's turn runs on one replica, its owner (``chats.worker_id``); a stream opened on the other
gets the turn's parts over the internal relay WebSocket. Two scenarios:

* ``one``: ``--clients`` streams of one chat, half opened on each replica, follow one reply of
  ``--deltas`` deltas;
* ``many``: ``--chats`` chats, each with one stream opened on a replica picked at random (so
  about half are relayed) and its message sent through another random pick, all replying at
  once, ``--deltas`` deltas each.

Each scenario gets replicas and a database of its own. Every stream is opened (its snapshot
read) before the messages are sent; which replica owns a chat is read from the database while
its turn runs, so each client is classed afterwards as on the owner or not. Each chat first
runs a warm-up turn (title and summary calls), as in ``bench/stream.py``; the measured turn is
its second.

Figures per class of client (owner / non-owner / all): delivered deltas per second (first delta
written to last one received, over every client of the class), p50/p99 write → receive (also
over the deltas after each reply's first second only, which leaves out a relay's start), the
deltas a client never got (``dropped``), and repeats: events whose ``seq`` the stream had
already delivered and deltas received twice (``dup``), and ``seq`` going backwards. A client
that lagged and was closed by its replica, or that errs, is counted apart (``ok`` is the
clients that followed their turn to its end). Per replica: CPU seconds (utime+stime from
``/proc``, from just before the sends until every client saw its turn end) and peak RSS (VmHWM,
reset before the sends). The clients run in ``--client-procs`` processes; everything is on
127.0.0.1, on the same host as the servers, so on a small machine the clients and the fake take
CPU from the replicas.

Reproduce (about 3 minutes):

    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/fanout.py --clients 1000 --chats 200 --deltas 500 --pace 50

``--scenarios one`` or ``--scenarios many`` runs one of them. The streams are opened at most
``--open-concurrency`` (40) handshakes at a time: each handshake reads the chat, and a larger
burst grows both replicas' connection pools until PostgreSQL refuses connections (its default
``max_connections`` of 100 is less than two full pools); ``--keep DIR`` keeps the servers'
logs. The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _databases import PG_ENV, pg_database  # noqa: E402
from _fanout_clients import FanoutPool, Record, Target  # noqa: E402
from _stream_procs import (  # noqa: E402
    Process,
    Server,
    _base_env,
    cpu_seconds,
    fake_provider,
    free_port,
    peak_rss_mb,
    reset_peak_rss,
)
from stream import (  # noqa: E402
    API,
    CONCURRENT_REQUESTS,
    configure,
    create_warm_chats,
    ok,
    print_table,
    wait_quiet,
)

from chatd.secretbox import generate_key  # noqa: E402

OWNER_POLL = 0.1  # seconds between reads of the chats' owners
SEND_ATTEMPTS = 3


# ---- replicas ----------------------------------------------------------------------------


POOL_SIZE = 40


@contextlib.contextmanager
def replica_servers(home: Path, database_url: str, count: int) -> Iterator[list[Server]]:
    """``count`` servers on ``database_url`` with one secret key. The first starts alone: it
    migrates and makes the first user, whose token (from its CLI session file) works on all."""
    shared = {
        "CHATD_DATABASE_URL": database_url,
        "CHATD_SECRET_KEY": generate_key(),
        "CHATD_RATE_LIMIT_PER_MINUTE": "0",  # the bench's clients are one user
        # Two full pools of the default size (50), their listeners and this script's own
        # connections pass PostgreSQL's default max_connections (100): a burst of 200 chat
        # creations then failed with a 500.
        "CHATD_DATABASE_POOL_SIZE": str(POOL_SIZE),
    }
    with ExitStack() as stack:
        servers: list[Server] = []
        token = ""
        for i in range(count):
            part = home / f"replica-{i}"
            part.mkdir()
            port = free_port()
            env = _base_env(part) | shared
            env |= {
                "CHATD_DATA_DIR": str(part / "data"),
                "CHATD_CONFIG_DIR": str(part / "config"),
                "CHATD_HTTP_ADDRESS": f"127.0.0.1:{port}",
            }
            process = Process.start(["server"], env, port, part / "server.log")
            stack.callback(process.stop)
            process.wait_ready("/healthz")
            if i == 0:
                session = (part / "config" / "session.json").read_text()
                token = str(json.loads(session)["token"])
            servers.append(Server(process, token))
        yield servers


class Owners:
    """Which replica runs each chat's turn, read from the database while the turns run."""

    def __init__(self, database_url: str, urls: list[str], chat_ids: list[str]) -> None:
        self.database_url = database_url.replace("postgresql+asyncpg://", "postgresql://")
        self.index = {url: i for i, url in enumerate(urls)}
        self.chat_ids = chat_ids
        self.owner: dict[str, int] = {}
        self.changes = 0  # a chat seen on one owner, then another

    async def watch(self, connected: asyncio.Event) -> None:
        """Poll until cancelled; ``connected`` is set once the connection is made."""
        async with await psycopg.AsyncConnection.connect(
            self.database_url, autocommit=True
        ) as conn:
            connected.set()
            while True:
                rows = await (
                    await conn.execute(
                        "SELECT c.id::text, r.address FROM chats c"
                        " JOIN replicas r ON r.id = c.worker_id WHERE c.id::text = ANY(%s)",
                        (self.chat_ids,),
                    )
                ).fetchall()
                for chat_id, address in rows:
                    replica = self.index.get(address)
                    if replica is None:
                        continue
                    known = self.owner.setdefault(chat_id, replica)
                    if known != replica:
                        self.changes += 1
                        self.owner[chat_id] = replica
                await asyncio.sleep(OWNER_POLL)


# ---- figures -----------------------------------------------------------------------------


def percentile_ms(ordered: list[int], share: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))] / 1e6


@dataclass
class Group:
    """The figures of one class of clients."""

    name: str
    records: list[Record]
    expected: int  # deltas per client

    def row(self, scenario: str) -> tuple[str, ...]:
        latencies = sorted(x for r in self.records for x in r.latencies_ns)
        later = sorted(x for r in self.records for x in r.later_ns)
        ok_clients = [r for r in self.records if r.complete]
        received = sum(r.deltas for r in self.records)
        firsts = [r.first_stamp_ns for r in self.records if r.first_stamp_ns is not None]
        lasts = [r.last_receive_ns for r in self.records if r.last_receive_ns is not None]
        span = (max(lasts) - min(firsts)) / 1e9 if firsts and lasts else 0.0
        rate = received / span if span > 0 else 0.0
        dropped_ok = sum(r.missing for r in ok_clients)
        dropped_lagged = sum(r.missing for r in self.records) - dropped_ok
        dups = sum(r.repeated_seqs + r.repeated_deltas for r in self.records)
        return (
            scenario,
            self.name,
            f"{len(ok_clients)}/{len(self.records)}",
            f"{received}/{len(self.records) * self.expected}",
            f"{dropped_ok}" + (f" (+{dropped_lagged})" if dropped_lagged else ""),
            str(dups),
            str(sum(r.backwards_seqs for r in self.records)),
            f"{rate:,.0f}",
            f"{percentile_ms(latencies, 0.50):.1f}",
            f"{percentile_ms(latencies, 0.99):.1f}",
            f"{percentile_ms(latencies, 0.999):.1f}",
            f"{latencies[-1] / 1e6:.1f}" if latencies else "nan",
            f"{percentile_ms(later, 0.50):.1f}",
            f"{percentile_ms(later, 0.99):.1f}",
        )

    def p99(self) -> float:
        return percentile_ms(sorted(x for r in self.records for x in r.latencies_ns), 0.99)


HEADER = (
    "scenario",
    "clients",
    "ok/all",
    "deltas recv/exp",
    "dropped",
    "dup",
    "seq back",
    "deltas/s",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "max ms",
    "p50 >1s",
    "p99 >1s",
)
REPLICA_HEADER = ("scenario", "replica", "owns chats", "clients", "cpu s", "cpu %", "peak rss MiB")


@dataclass
class Outcome:
    scenario: str
    records: list[Record]
    owners: Owners
    expected: int
    wall: float
    cpu: list[float]
    rss: list[float | None]
    fake_cpu: float
    clients_cpu: float
    errors: list[str] = field(default_factory=list)

    def groups(self) -> list[Group]:
        def owns(r: Record) -> bool | None:
            owner = self.owners.owner.get(r.chat_id)
            return None if owner is None else owner == r.replica

        found = [
            Group("owner", [r for r in self.records if owns(r) is True], self.expected),
            Group("non-owner", [r for r in self.records if owns(r) is False], self.expected),
            Group("all", self.records, self.expected),
        ]
        unknown = [r for r in self.records if owns(r) is None]
        if unknown:
            found.insert(2, Group("owner unknown", unknown, self.expected))
        return found

    def rows(self) -> list[tuple[str, ...]]:
        return [g.row(self.scenario) for g in self.groups() if g.records]

    def added_p99(self) -> float:
        owner, non_owner = self.groups()[:2]
        return non_owner.p99() - owner.p99()

    def replica_rows(self) -> list[tuple[str, ...]]:
        rows: list[tuple[str, ...]] = []
        for i, (cpu, rss) in enumerate(zip(self.cpu, self.rss, strict=True)):
            owned = sum(1 for o in self.owners.owner.values() if o == i)
            clients = sum(1 for r in self.records if r.replica == i)
            rows.append(
                (
                    self.scenario,
                    str(i),
                    str(owned),
                    str(clients),
                    f"{cpu:.1f}",
                    f"{100 * cpu / self.wall:.0f}",
                    "-" if rss is None else f"{rss:.0f}",
                )
            )
        return rows


# ---- a run -------------------------------------------------------------------------------


def script(chats: int, deltas: int, pace: float) -> list[dict[str, object]]:
    entry: dict[str, object] = {
        "match": {"stream": True},
        "text": [f"w{i} " for i in range(deltas)],
        "stamp_deltas": True,
        "tokens_per_second": pace,
    }
    return [entry] * chats


async def run(
    scenario: str,
    st: Stack,
    fake_url: str,
    fake_pid: int,
    targets: list[Target],
    senders: dict[str, int],
    args: argparse.Namespace,
) -> Outcome:
    """Open every target's stream, send each chat's message through its sender replica, and
    follow every turn to its end."""
    servers, api, database_url = st.servers, st.api, st.database_url
    chat_ids = list(senders)
    limit = 60.0 + 3 * args.deltas / args.pace + 0.05 * len(targets)
    ok(
        await api[0].post(
            fake_url + "/fake/script", json=script(len(chat_ids), args.deltas, args.pace)
        )
    )
    pool = FanoutPool(args.client_procs)
    try:
        # Its connection is made before the streams' burst of queries.
        owners = Owners(database_url, [s.process.url for s in servers], chat_ids)
        connected = asyncio.Event()
        watcher = asyncio.create_task(owners.watch(connected))
        await asyncio.wait([watcher, asyncio.ensure_future(connected.wait())], timeout=30)
        if watcher.done():
            watcher.result()  # its error
        errors = await pool.open(targets, servers[0].token, args.open_concurrency)
        print(f"# {scenario}: {len(targets)} streams open ({len(errors)} failed)", flush=True)
        pids = [s.process.pid for s in servers]
        for pid in pids:
            await wait_quiet(pid)
        resets = [reset_peak_rss(pid) for pid in pids]
        others = [fake_pid, *pool.pids]
        cpu_before = [cpu_seconds(pid) for pid in pids + others]
        started = time.monotonic()
        await pool.start_following(args.deltas, round(args.pace), limit)
        gate = asyncio.Semaphore(CONCURRENT_REQUESTS)

        send_errors: list[str] = []

        async def send(chat_id: str) -> None:
            """A refused send is tried again (and counted): its chat's clients wait for it."""
            body = {"content": [{"type": "text", "text": "go"}]}
            for attempt in range(SEND_ATTEMPTS):
                async with gate:
                    r = await api[senders[chat_id]].post(f"{API}/{chat_id}/messages", json=body)
                if r.status_code < 300:
                    return
                send_errors.append(f"send {r.status_code}: {r.text[:200]}")
                await asyncio.sleep(1.0 + attempt)

        await asyncio.gather(*(send(c) for c in chat_ids))
        errors += send_errors
        records = await pool.collect()
        wall = time.monotonic() - started
        used = [
            cpu_seconds(pid) - before for pid, before in zip(pids + others, cpu_before, strict=True)
        ]
        cpu, fake_cpu, clients_cpu = used[: len(pids)], used[len(pids)], sum(used[len(pids) + 1 :])
        rss = [peak_rss_mb(pid) if r else None for pid, r in zip(pids, resets, strict=True)]
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        return Outcome(
            scenario,
            records,
            owners,
            args.deltas,
            wall,
            cpu,
            rss,
            fake_cpu,
            clients_cpu,
            errors,
        )
    finally:
        pool.close()


@dataclass
class Stack:
    """Replicas on a fresh database, configured for the fake provider; an API client each."""

    servers: list[Server]
    api: list[httpx2.AsyncClient]
    fields: dict[str, str]  # what a new chat needs
    database_url: str

    @property
    def ws(self) -> list[str]:
        return [s.process.url.replace("http://", "ws://") for s in self.servers]


@contextlib.asynccontextmanager
async def replica_stack(
    home: Path, pg_base: str, fake_url: str, count: int
) -> AsyncIterator[Stack]:
    with ExitStack() as stack:
        database_url = stack.enter_context(pg_database(pg_base))
        servers = stack.enter_context(replica_servers(home, database_url, count))
        limits = httpx2.Limits(max_connections=CONCURRENT_REQUESTS, keepalive_expiry=2.0)
        async with contextlib.AsyncExitStack() as clients:
            api = [
                await clients.enter_async_context(
                    httpx2.AsyncClient(
                        base_url=s.process.url,
                        headers={"Coder-Session-Token": s.token},
                        limits=limits,
                        timeout=60,
                    )
                )
                for s in servers
            ]
            fields = await configure(api[0], fake_url)
            yield Stack(servers, api, fields, database_url)


async def scenarios(args: argparse.Namespace, pg_base: str) -> list[Outcome]:
    """Each scenario on replicas of its own (a fresh database): the connection pools one grew
    are not the next one's."""
    rng = random.Random(args.seed)
    outcomes = []
    with ExitStack() as stack:
        if args.keep:
            home = Path(args.keep)
            os.makedirs(home)
        else:
            home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="chatd-fanout-")))
        (home / "fake").mkdir()
        fake = stack.enter_context(fake_provider(home / "fake"))
        for name in args.scenarios.split(","):
            (home / name).mkdir()
            async with replica_stack(home / name, pg_base, fake.url, args.replicas) as st:
                ws = st.ws
                if name == "one":
                    scenario = f"one chat, {args.clients} clients"
                    (chat,) = await create_warm_chats(st.api[0], st.fields, 1)
                    targets = [
                        Target(i % len(ws), ws[i % len(ws)], chat) for i in range(args.clients)
                    ]
                    senders = {chat: rng.randrange(len(ws))}
                elif name == "many":
                    scenario = f"{args.chats} chats"
                    chats = await create_warm_chats(st.api[0], st.fields, args.chats)
                    targets = []
                    for chat in chats:
                        replica = rng.randrange(len(ws))
                        targets.append(Target(replica, ws[replica], chat))
                    senders = {c: rng.randrange(len(ws)) for c in chats}
                else:
                    sys.exit(f"unknown scenario {name!r}")
                outcome = await run(scenario, st, fake.url, fake.pid, targets, senders, args)
                outcomes.append(report(outcome))
    return outcomes


def report(outcome: Outcome) -> Outcome:
    print_table(outcome.rows(), HEADER)
    print(
        f"  non-owner p99 - owner p99: {outcome.added_p99():+.1f} ms; "
        f"owner changes seen: {outcome.owners.changes}; wall {outcome.wall:.1f} s; cpu s: "
        f"replicas {sum(outcome.cpu):.1f}, clients {outcome.clients_cpu:.1f}, "
        f"fake {outcome.fake_cpu:.1f}",
        flush=True,
    )
    if outcome.errors:
        print(f"  {len(outcome.errors)} failed opens or sends", flush=True)
    failures = sorted({e for r in outcome.records for e in r.errors} | set(outcome.errors))
    for error in failures[:5]:
        print(f"  error: {error}", flush=True)
    return outcome


NOTES = """
owner / non-owner: clients whose stream was opened on the replica that ran their chat's turn,
or on the other (relayed). ok/all: clients that followed their turn to its end. dropped: reply
deltas an ok client never got (in brackets: those of clients that did not end well). dup:
events with a seq the stream had already delivered, plus deltas received twice. seq back: an
event numbered below the one before it. deltas/s: every client of the class, first delta written
-> last received. >1s: the deltas after the reply's first second (the first ones of a relayed
stream wait for the relay to start). Latency: the fake's stamp as it writes a delta -> the
client's read of the frame. cpu %: of one core, over the run's wall time."""


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="one,many", help="'one' and/or 'many'")
    parser.add_argument("--clients", type=int, default=1000, help="streams of the one chat")
    parser.add_argument("--chats", type=int, default=200, help="chats of the 'many' scenario")
    parser.add_argument("--deltas", type=int, default=500, help="deltas per reply")
    parser.add_argument("--pace", type=float, default=50.0, help="tokens per second")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=4, help="client processes")
    parser.add_argument("--seed", type=int, default=1, help="random picks of replicas")
    parser.add_argument(
        "--open-concurrency",
        type=int,
        default=40,
        help="stream handshakes in flight at once, over all client processes",
    )
    parser.add_argument("--keep", default=None, help="a new dir to keep the servers' logs in")
    args = parser.parse_args()
    pg_base = os.environ.get(PG_ENV)
    if not pg_base:
        sys.exit(f"set {PG_ENV} (a PostgreSQL server the bench makes its database on)")
    print(
        f"{os.cpu_count()} CPUs shared by {args.replicas} replicas, the fake provider, "
        f"{args.client_procs} client processes and PostgreSQL.",
        flush=True,
    )
    outcomes = await scenarios(args, pg_base)
    print()
    print_table([row for o in outcomes for row in o.rows()], HEADER)
    print()
    print_table([row for o in outcomes for row in o.replica_rows()], REPLICA_HEADER)
    print()
    for o in outcomes:
        print(f"{o.scenario}: non-owner adds {o.added_p99():+.1f} ms at p99 over the owner")
    print(NOTES)


if __name__ == "__main__":
    asyncio.run(main())
