"""Sub-agents at scale: one root chat spawns N children in one step, waits for them all, answers.

Reproduce (~20 s a run; the PostgreSQL runs only with ``CHATD_BENCH_DATABASE_URL`` set):

    .venv/bin/python bench/subagents.py
    .venv/bin/python bench/subagents.py --children 20 --tokens 250 --tps 50 --repeat 3
    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/subagents.py --repeat 3 --verbose

Processes: the fake provider (``chatd dev fake-provider``) and a real ``chatd server``
(SQLite in a temporary data dir; PostgreSQL in a database created and dropped on that server),
subprocesses on 127.0.0.1, with an ``openai-compat`` model config on the fake. The server runs
the shipped engine settings (one acquire claims up to 10 chats); only the API rate limit is off
(the sampler is one user asking several times a second), and the cap on live children is
raised when ``--children`` passes it.

The root's model is scripted in three steps, matched by the text of the call's last user
message (as in ``tests/e2e/test_subagents.py``):

1. N ``spawn_agent`` calls in one step; each child's model answers with a reply of ``--tokens``
   text deltas paced at ``--tps`` (default 250 at 50/s: 5 s each);
2. held by the fake behind a gate until the children exist (the calls must name their chat
   ids), then N ``wait_agent`` calls in one step: the root's turn parks, holding no worker, is
   woken by a child's finish, answers the calls whose children are done and parks again while
   any is left open;
3. a short final text.

Figures per run, from the saved rows' ``created_at`` (the server's clock, on this machine):
the root's creation to its spawn calls beginning (the children's ``created_at``, taken as each
call starts) and to its spawn step saved (its last spawn result); from the spawn step saved,
the time until every child's reply is saved and until the root's answer is saved; each child's
run (created to reply saved); the wake latency, from the last child's reply saved to the root's
last wait results saved and to its answer saved (between them: the child's finish, the wake,
the claim, the waits made again and their results saved, then the model call for the answer);
how often the parked root resumed (the distinct save times of its wait results) and how many
model calls it made (3: a resume does not ask the model again).

Every 100 ms a sampler reads the root (with its children's statuses), ``chatd_turns_running``
from ``GET /metrics``, and the root again; a sample counts when both reads of the root agree.
While the root waits on its working children (from its wait step saved to the first child's
reply saved), the reading less the children in ``running`` is the root's share: 0 when the
parked root holds no worker. (As children finish, the gauge lags their status: a turn counts
until its finish and its parent's wake are written.) The server's CPU seconds (utime+stime) and
peak RSS (VmHWM, reset just before) cover the run from the root's creation to its answer, the
sampler's requests included. ``--verbose`` prints every sample from the wait step to the answer.

The latest figures are in ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _databases import PG_ENV, pg_database  # noqa: E402
from _stream_procs import (  # noqa: E402
    Process,
    chatd_server,
    cpu_seconds,
    fake_provider,
    peak_rss_mb,
    reset_peak_rss,
)

API = "/api/experimental/chats"
ROOT = "ROOT-TASK"
GATE = "root-waits"
SAMPLE_EVERY = 0.1
DEFAULT_LIVE_CAP = 20
TURNS_RUNNING = re.compile(r"^chatd_turns_running (\S+)$", re.MULTILINE)


def child_marker(index: int) -> str:
    """A child's prompt starts with this (the colon ends the number: no marker holds another)."""
    return f"CHILD-{index:03d}:"


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def entry(user: str, **fields: Any) -> dict[str, Any]:
    """A streamed model call whose last user message holds ``user`` gets this answer."""
    return {"match": {"user": user, "stream": True}, **fields}


def stamp(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


class Api:
    """The chats API of one server as its first admin, over one keep-alive client."""

    def __init__(self, url: str, token: str) -> None:
        # Under uvicorn's 5 s keep-alive: a connection the server is closing is never reused.
        self.http = httpx2.Client(
            base_url=url,
            headers={"Coder-Session-Token": token},
            timeout=60,
            limits=httpx2.Limits(keepalive_expiry=2.0),
        )

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        r = self.http.request(method, path, **kw)
        if r.status_code >= 300:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    def chat(self, chat_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"{API}/{chat_id}")
        return result

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        """Every message of the chat, oldest first."""
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 200}
        while True:
            page = self.request("GET", f"{API}/{chat_id}/messages", params=params)
            found += page["messages"]
            if not page["has_more"] or not page["messages"]:
                return sorted(found, key=lambda m: m["id"])
            params["before_id"] = min(m["id"] for m in page["messages"])

    def turns_running(self) -> int:
        found = TURNS_RUNNING.search(self.http.get("/metrics").text)
        if found is None:
            raise RuntimeError("no chatd_turns_running on /metrics")
        return int(float(found.group(1)))

    def configure(self, fake_url: str) -> dict[str, str]:
        """An ``openai-compat`` provider on the fake and a default model config: the fields a
        new chat needs."""
        me = self.request("GET", "/api/v2/users/me")
        self.request(
            "POST",
            API + "/providers",
            json={"provider": "openai-compat", "api_key": "bench", "base_url": fake_url + "/v1"},
        )
        config = self.request(
            "POST",
            API + "/model-configs",
            json={
                "provider": "openai-compat",
                "model": "fake-model",
                "context_limit": 128000,
                "is_default": True,
            },
        )
        return {"organization_id": me["organization_ids"][0], "model_config_id": config["id"]}


def wait_until(what: str, check: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(SAMPLE_EVERY)


# ---- sampling ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    at: float  # time.time(), between the two reads of the root
    turns: int  # chatd_turns_running
    running: int  # children in ``running``
    root: str  # the root's status


@dataclass
class Sampler:
    """Every ``SAMPLE_EVERY`` s: the root, ``chatd_turns_running``, the root again; kept when
    the two reads of the root agree."""

    api: Api
    root: str
    samples: list[Sample] = field(default_factory=list)
    discarded: int = 0
    error: Exception | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def _statuses(self) -> tuple[str, int]:
        chat = self.api.chat(self.root)
        kids = [c["status"] for c in chat.get("children") or []]
        return chat["status"], kids.count("running")

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                before = self._statuses()
                turns = self.api.turns_running()
                at = time.time()
                if self._statuses() == before:
                    root, running = before
                    self.samples.append(Sample(at, turns, running, root))
                else:
                    self.discarded += 1
                self._stop.wait(max(0.0, SAMPLE_EVERY - (time.monotonic() - began)))
        except Exception as exc:  # reported by running() once the run is over
            self.error = exc

    @contextlib.contextmanager
    def running(self) -> Iterator[Sampler]:
        thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
        if self.error is not None:
            raise RuntimeError("the sampler failed") from self.error


# ---- one run -------------------------------------------------------------------------------


@dataclass
class Run:
    """One run's moments (``time.time()`` seconds, from the saved rows' ``created_at``) and
    readings."""

    backend: str
    children: int
    root_created: float
    spawns_began: float  # the children's created_at (the spawn calls take it as they start)
    spawned: float  # the spawn step saved: its last spawn result
    wait_saved: float  # the wait step saved (the root parks after it)
    replies: list[float]  # each child's reply saved
    child_runs: list[float]  # each child's created_at -> its reply saved
    waits_answered: float  # the root's last wait results saved
    answered: float  # the root's answer saved
    resumes: int
    root_model_calls: int
    samples: list[Sample]
    discarded: int
    cpu: float
    rss_start: float
    rss_peak: float
    load: float

    @property
    def waiting(self) -> list[Sample]:
        """The samples from the wait step saved until the first child's reply saved: the root
        waits and every child works. (Later a finishing child reads ``waiting`` a moment
        before its turn stops counting: the gauge drops after the finish and the wake.)"""
        return [s for s in self.samples if self.wait_saved <= s.at < min(self.replies)]

    def all_running(self) -> float:
        """The spawn step saved -> the first sample with every child running (nan if none)."""
        return next(
            (s.at - self.spawned for s in self.samples if s.running == self.children),
            math.nan,
        )

    def figures(self) -> list[float]:
        """The values of :data:`FIGURES`, in order."""
        last = max(self.replies)
        shares = [s.turns - s.running for s in self.waiting]
        return [
            self.spawns_began - self.root_created,
            self.spawned - self.spawns_began,
            self.all_running(),
            last - self.spawned,
            self.answered - self.spawned,
            self.answered - self.root_created,
            min(self.child_runs),
            statistics.median(self.child_runs),
            max(self.child_runs),
            (self.waits_answered - last) * 1000,
            (self.answered - last) * 1000,
            self.resumes,
            self.root_model_calls,
            max((s.turns for s in self.samples), default=math.nan),
            len(shares),
            sum(share != 0 for share in shares),
            max(shares, default=math.nan),
            self.cpu,
            self.rss_start,
            self.rss_peak,
            self.load,
        ]


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("content") or [])


def calls_of(message: dict[str, Any]) -> list[str]:
    return [p["tool_name"] for p in message.get("content") or [] if p.get("type") == "tool-call"]


def root_calls(fake: Process) -> int:
    """The fake's streamed calls whose last user message is the root's."""
    count = 0
    for request in httpx2.get(fake.url + "/fake/requests", timeout=30).json():
        body = request["body"]
        users = [m for m in body.get("messages", []) if m.get("role") == "user"]
        count += bool(body.get("stream") and users and ROOT in json.dumps(users[-1]))
    return count


def run_once(backend: str, database_url: str | None, args: argparse.Namespace, home: Path) -> Run:
    n = args.children
    deltas = [f"w{i} " for i in range(args.tokens)]
    settings = {
        "CHATD_RATE_LIMIT_PER_MINUTE": "0",  # the sampler is one user, several requests a second
        "CHATD_SUBAGENT_MAX_LIVE": str(max(DEFAULT_LIVE_CAP, n)),
    }
    with (
        fake_provider(home) as fake,
        chatd_server(home, database_url, settings) as server,
    ):
        api = Api(server.process.url, server.token)
        sampler_api = Api(server.process.url, server.token)
        root: str | None = None
        try:
            fields = api.configure(fake.url)
            spawns = [
                call(
                    "spawn_agent",
                    prompt=f"{child_marker(i)} part {i} of the task",
                    title=f"Part {i}",
                )
                for i in range(n)
            ]
            script = [
                entry(ROOT, tool_calls=spawns),
                {"wait_for": GATE, "defer": True, "match": {"user": ROOT, "stream": True}},
                *(
                    entry(child_marker(i), text=deltas, tokens_per_second=args.tps)
                    for i in range(n)
                ),
            ]
            httpx2.post(fake.url + "/fake/script", json=script, timeout=30).raise_for_status()
            pid = server.process.pid
            time.sleep(1.0)  # let the first start settle
            reset_peak_rss(pid)
            rss_start = peak_rss_mb(pid)
            cpu_start = cpu_seconds(pid)
            load = os.getloadavg()[0]
            body = {
                "content": [{"type": "text", "text": f"{ROOT}: split the job in {n}"}],
                **fields,
            }
            root = str(api.request("POST", API, json=body)["id"])
            sampler = Sampler(sampler_api, root)
            with sampler.running():
                timeout = 60 + 3 * args.tokens / args.tps
                wait_until(
                    f"{n} children",
                    lambda: len(api.chat(root).get("children") or []) >= n,
                    timeout,
                )
                kids = [c["id"] for c in api.chat(root)["children"]]
                waits = [call("wait_agent", chat_id=k, timeout_seconds=600) for k in kids]
                final = entry(ROOT, text=f"All {n} parts are done.")
                tail = [entry(ROOT, tool_calls=waits), final]
                httpx2.post(fake.url + "/fake/script", json=tail, timeout=30).raise_for_status()
                httpx2.post(f"{fake.url}/fake/gates/{GATE}", timeout=30).raise_for_status()
                wait_until(
                    "the root's answer",
                    lambda: api.chat(root)["status"] not in ("pending", "running"),
                    timeout,
                )
                cpu = cpu_seconds(pid) - cpu_start
                rss_peak = peak_rss_mb(pid)
            readings = Readings(sampler, cpu, rss_start, rss_peak, load)
            return summarise(backend, api, fake, root, kids, readings)
        except Exception:
            report_failure(api, root, server.process)
            raise
        finally:
            api.close()
            sampler_api.close()


def report_failure(api: Api, root: str | None, server: Process) -> None:
    """The family's statuses and the end of the server's log, on stderr."""
    with contextlib.suppress(Exception):
        if root is not None:
            chat = api.chat(root)
            kids = [c["status"] for c in chat.get("children") or []]
            print(f"root {root}: {chat['status']}; children: {kids}", file=sys.stderr)
            for message in api.messages(root):
                parts = [p.get("type") for p in message.get("content") or []]
                print(f"  {message['role']} {message['created_at']} {parts}", file=sys.stderr)
    print("".join(server.output().splitlines(keepends=True)[-40:]), file=sys.stderr)


@dataclass(frozen=True)
class Readings:
    sampler: Sampler
    cpu: float
    rss_start: float
    rss_peak: float
    load: float


def summarise(
    backend: str, api: Api, fake: Process, root: str, kids: list[str], readings: Readings
) -> Run:
    history = api.messages(root)
    assistants = [i for i, m in enumerate(history) if m["role"] == "assistant"]
    spawn_at = next(i for i in assistants if "spawn_agent" in calls_of(history[i]))
    wait_at = next(i for i in assistants if "wait_agent" in calls_of(history[i]))
    answer = history[-1]
    if answer["role"] != "assistant" or not text_of(answer):
        raise RuntimeError(f"the root did not answer: {answer}")
    spawn_results = [m for m in history[spawn_at + 1 : wait_at] if m["role"] == "tool"]
    wait_results = [m for m in history[wait_at + 1 : -1] if m["role"] == "tool"]
    if len(spawn_results) != len(kids) or len(wait_results) != len(kids):
        raise RuntimeError(f"{len(spawn_results)} spawns, {len(wait_results)} waits answered")
    replies: list[float] = []
    births: list[float] = []
    for kid in kids:
        chat = api.chat(kid)
        reply = [m for m in api.messages(kid) if m["role"] == "assistant"]
        if chat["status"] != "waiting" or not reply:
            raise RuntimeError(f"child {kid} did not finish: {chat['status']}")
        replies.append(stamp(reply[-1]["created_at"]))
        births.append(stamp(chat["created_at"]))
    return Run(
        backend=backend,
        children=len(kids),
        root_created=stamp(api.chat(root)["created_at"]),
        spawns_began=min(births),
        spawned=max(stamp(m["created_at"]) for m in spawn_results),
        wait_saved=stamp(history[wait_at]["created_at"]),
        replies=replies,
        child_runs=[r - b for r, b in zip(replies, births, strict=True)],
        waits_answered=max(stamp(m["created_at"]) for m in wait_results),
        answered=stamp(answer["created_at"]),
        resumes=len({m["created_at"] for m in wait_results}),
        root_model_calls=root_calls(fake),
        samples=readings.sampler.samples,
        discarded=readings.sampler.discarded,
        cpu=readings.cpu,
        rss_start=readings.rss_start,
        rss_peak=readings.rss_peak,
        load=readings.load,
    )


# ---- report --------------------------------------------------------------------------------

# (label, decimals) of Run.figures, in order.
FIGURES = (
    ("root created -> its spawn calls began, s", 2),
    ("the N spawn calls -> the spawn step saved, s", 2),
    ("spawn step saved -> every child running (sampled), s", 2),
    ("spawn step saved -> the last child's reply saved, s", 2),
    ("spawn step saved -> the root's answer saved, s", 2),
    ("root created -> the root's answer saved, s", 2),
    ("a child's run (created -> reply saved), min s", 2),
    ("a child's run, median s", 2),
    ("a child's run, max s", 2),
    ("wake: the last child's reply -> the root's last wait results saved, ms", 0),
    ("wake: the last child's reply -> the root's answer saved, ms", 0),
    ("the parked root's resumes (turns that answered waits)", 0),
    ("the root's model calls", 0),
    ("chatd_turns_running, max", 0),
    ("samples while the root waits on its N working children", 0),
    ("... of them with turns_running != children running", 0),
    ("... turns_running - children running, max", 0),
    ("server CPU, s", 2),
    ("server RSS before the root, MiB", 0),
    ("server peak RSS (VmHWM), MiB", 0),
    ("load average (1 min) at the start", 1),
)


def cell(value: float, decimals: int) -> str:
    return "-" if math.isnan(value) else f"{value:,.{decimals}f}"


def print_table(runs: list[Run]) -> None:
    """One column per run, then per backend the median of its runs (when more than one)."""
    columns = [(f"{r.backend} #{i + 1}", r.figures()) for i, r in enumerate(runs)]
    for backend in dict.fromkeys(r.backend for r in runs):
        mine = [r.figures() for r in runs if r.backend == backend]
        if len(mine) > 1:
            medians = [statistics.median(values) for values in zip(*mine, strict=True)]
            columns.append((f"{backend} median", medians))
    rows = [("figure", *(name for name, _ in columns))]
    for i, (label, decimals) in enumerate(FIGURES):
        rows.append((label, *(cell(values[i], decimals) for _, values in columns)))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    for row in rows:
        label, *values = row
        line = "  ".join(v.rjust(w) for v, w in zip(values, widths[1:], strict=True))
        print(f"{label.ljust(widths[0])}  {line}", flush=True)


def print_details(run: Run) -> None:
    """The samples from the wait step saved to the root's answer: chatd_turns_running / the
    children running (with the root's status when it is not ``running``)."""
    readings = ", ".join(
        f"{s.turns}/{s.running}" + ("" if s.root == "running" else f"({s.root})")
        for s in run.samples
        if run.wait_saved <= s.at < run.answered
    )
    print(f"  wait step to answer ({run.discarded} samples discarded): {readings}")


def backends(chosen: list[str]) -> Iterator[tuple[str, str | None]]:
    for backend in chosen:
        if backend == "sqlite":
            yield "sqlite", None
        elif os.environ.get(PG_ENV):
            with pg_database(os.environ[PG_ENV]) as url:
                yield "postgresql", url
        else:
            print(f"({PG_ENV} is not set: PostgreSQL skipped)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=250, help="text deltas per child reply")
    parser.add_argument("--tps", type=float, default=50.0, help="the children's deltas/s")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--verbose", action="store_true", help="print every waiting sample")
    args = parser.parse_args()
    print(f"# {args.children} children, {args.tokens} deltas each at {args.tps:g}/s", flush=True)
    runs: list[Run] = []
    for _ in range(args.repeat):
        for backend, url in backends(args.backends.split(",")):
            with tempfile.TemporaryDirectory() as tmp:
                run = run_once(backend, url, args, Path(tmp))
            runs.append(run)
            last_child, answer = run.figures()[3:5]
            wake = run.answered - max(run.replies)
            print(
                f"{backend}: the last child {last_child:.2f} s and the root's answer"
                f" {answer:.2f} s after the spawn step; wake {wake * 1000:.0f} ms",
                flush=True,
            )
            if args.verbose:
                print_details(run)
    print()
    print_table(runs)
    print("Reproduce: .venv/bin/python bench/subagents.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
