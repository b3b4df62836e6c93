"""Abuse resistance figures (not a test): argon2 memory under a burst of wrong logins, the cost
of a known and an unknown login, and what the rate limits let through in a minute.

Every figure comes from real ``chatd server`` processes on loopback ports (embedded SQLite in
temporary directories) with the production argon2 parameters (64 MiB, ~170 ms a hash):

1. RSS of the server while N concurrent wrong logins run (distinct unknown names, the login
   throttles off so that every one reaches argon2): sampled from ``/proc/<pid>/status`` every
   few milliseconds, with hashing bounded as shipped (``CHATD_PASSWORD_HASH_CONCURRENCY=2``)
   and effectively unbounded (``=N``, as before the bound: each login ran argon2 at once).
2. Wall time of a wrong password for an existing account and of an unknown account: medians
   of many sequential logins, interleaved.
3. The limits with their default settings, driven for a minute: on the throttle and bucket
   classes with an injected clock (exact), and, shorter, against a server (a check).

Reproduce:

    .venv/bin/python bench/abuse.py
    .venv/bin/python bench/abuse.py --concurrent 20 --timing-rounds 40 --api-seconds 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _stream_procs import Server, chatd_server  # noqa: E402

from chatd.api.login_throttle import LoginLimits, LoginThrottle, Throttled  # noqa: E402
from chatd.api.rate_limit import TokenBuckets  # noqa: E402
from chatd.settings import Settings  # noqa: E402

LOGIN = "/api/v2/users/login"
NO_THROTTLES = {
    "CHATD_LOGIN_FAILURES_PER_ACCOUNT": "0",
    "CHATD_LOGIN_FAILURES_PER_ADDRESS": "0",
    "CHATD_WORKERS_ENABLED": "false",
}
PASSWORD = "correct-horse-battery"
SAMPLE_EVERY = 0.002


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def create_user(server: Server, username: str) -> None:
    r = httpx2.post(
        server.process.url + "/api/v2/users",
        headers={"Coder-Session-Token": server.token},
        json={"email": f"{username}@example.com", "username": username, "password": PASSWORD},
        timeout=60,
    )
    r.raise_for_status()


def login(url: str, email: str, password: str) -> httpx2.Response:
    return httpx2.post(url + LOGIN, json={"email": email, "password": password}, timeout=120)


# --- 1. memory ------------------------------------------------------------------------------


def burst_rss(concurrent: int, hash_concurrency: int) -> dict[str, float]:
    settings = NO_THROTTLES | {"CHATD_PASSWORD_HASH_CONCURRENCY": str(hash_concurrency)}
    with tempfile.TemporaryDirectory() as tmp, chatd_server(Path(tmp), None, settings) as server:
        url, pid = server.process.url, server.process.pid
        login(url, "warm@example.com", "x")  # the first thread and request paths warmed up
        time.sleep(1.0)
        baseline = rss_mib(pid)
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, rss_mib(pid))
                time.sleep(SAMPLE_EVERY)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as pool:
            statuses = list(
                pool.map(
                    lambda i: login(url, f"nobody{i}@example.com", "wrong").status_code,
                    range(concurrent),
                )
            )
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        assert statuses == [401] * concurrent, statuses
        return {"baseline": baseline, "peak": peak, "after": rss_mib(pid), "seconds": elapsed}


# --- 2. timing ------------------------------------------------------------------------------


def login_timings(rounds: int) -> tuple[list[float], list[float]]:
    with (
        tempfile.TemporaryDirectory() as tmp,
        chatd_server(Path(tmp), None, NO_THROTTLES) as server,
    ):
        create_user(server, "alice")
        url = server.process.url
        known: list[float] = []
        unknown: list[float] = []
        with httpx2.Client(base_url=url, timeout=60) as http:
            for i in range(rounds + 2):
                for email, into in (("alice@example.com", known), (f"x{i}@example.com", unknown)):
                    started = time.perf_counter()
                    r = http.post(LOGIN, json={"email": email, "password": "wrong-password"})
                    took = time.perf_counter() - started
                    assert r.status_code == 401
                    if i >= 2:  # the first two of each warm up
                        into.append(took)
        return known, unknown


# --- 3. the limits --------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulated_minute(rate_per_second: float, attempt: Callable[[int], bool]) -> tuple[int, int]:
    """(allowed, tried) over one minute of attempts at ``rate_per_second``."""
    tried = int(60 * rate_per_second)
    return sum(attempt(i) for i in range(tried)), tried


def simulate(settings: Settings) -> dict[str, tuple[int, int]]:
    limits = LoginLimits(
        per_account=settings.login_failures_per_account,
        per_address=settings.login_failures_per_address,
        window=settings.login_failure_window,
        max_lockout=settings.login_max_lockout,
    )
    figures = {}
    for label, account_of in (
        ("login, one account (wrong passwords, 10/s)", lambda i: "victim@example.com"),
        ("login, one address over many accounts (10/s)", lambda i: f"user{i}@example.com"),
    ):
        clock = Clock()
        throttle = LoginThrottle(limits, clock)

        def try_login(
            i: int,
            clock: Clock = clock,
            throttle: LoginThrottle = throttle,
            account_of: Callable[[int], str] = account_of,
        ) -> bool:
            clock.now = i / 10
            try:
                with throttle.attempt(account_of(i), "203.0.113.9") as attempt:
                    attempt.failed()
                    return True
            except Throttled:
                return False

        figures[label] = simulated_minute(10, try_login)
    clock = Clock()
    buckets = TokenBuckets(settings.rate_limit_per_minute, settings.rate_limit_burst, clock)
    user = uuid.uuid4()

    def try_request(i: int) -> bool:
        clock.now = i / 100
        return buckets.take(user) is None

    figures["API, one user (100 requests/s)"] = simulated_minute(100, try_request)
    return figures


def live_limits(api_seconds: float) -> dict[str, tuple[int, int]]:
    """The same limits against a server with its defaults (the API part shortened)."""
    with (
        tempfile.TemporaryDirectory() as tmp,
        chatd_server(Path(tmp), None, {"CHATD_WORKERS_ENABLED": "false"}) as server,
    ):
        url = server.process.url
        create_user(server, "victim")
        figures = {}
        statuses = [login(url, "victim@example.com", "wrong").status_code for _ in range(30)]
        figures["login, one account: 30 wrong passwords"] = (statuses.count(401), 30)
        # From another loopback address: the failures above counted against 127.0.0.1.
        other = httpx2.HTTPTransport(local_address="127.0.0.2")
        with httpx2.Client(base_url=url, transport=other, timeout=120) as http:
            statuses = [
                http.post(LOGIN, json={"email": f"u{i}@example.com", "password": "x"}).status_code
                for i in range(40)
            ]
        figures["login, one address: 40 names"] = (statuses.count(401), 40)
        headers = {"Coder-Session-Token": server.token}
        allowed = tried = 0
        deadline = time.monotonic() + api_seconds
        with httpx2.Client(base_url=url, headers=headers, timeout=30) as http:
            while time.monotonic() < deadline:
                tried += 1
                allowed += http.get("/api/v2/users/me").status_code == 200
        figures[f"API, one user: as fast as one client can for {api_seconds:g} s"] = (
            allowed,
            tried,
        )
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrent", type=int, default=20)
    parser.add_argument("--timing-rounds", type=int, default=40)
    parser.add_argument("--api-seconds", type=float, default=10.0)
    args = parser.parse_args()
    defaults = Settings()

    print(f"1. RSS of `chatd server` (MiB) around {args.concurrent} concurrent wrong logins")
    print(f"   {'argon2 at once':<28}{'baseline':>10}{'peak':>10}{'growth':>10}{'burst s':>10}")
    for label, bound in (
        (f"{args.concurrent} (unbounded, as before)", args.concurrent),
        (f"{defaults.password_hash_concurrency} (the default bound)", 2),
    ):
        rss = burst_rss(args.concurrent, bound)
        print(
            f"   {label:<28}{rss['baseline']:>10.0f}{rss['peak']:>10.0f}"
            f"{rss['peak'] - rss['baseline']:>10.0f}{rss['seconds']:>10.2f}"
        )

    known, unknown = login_timings(args.timing_rounds)
    print(f"\n2. Wrong-password login wall time, median of {args.timing_rounds} (ms)")
    for label, times in (("existing account", known), ("unknown account", unknown)):
        ordered = sorted(times)
        print(
            f"   {label:<20} median {statistics.median(times) * 1000:7.1f}"
            f"   p10 {ordered[len(ordered) // 10] * 1000:7.1f}"
            f"   p90 {ordered[len(ordered) * 9 // 10] * 1000:7.1f}"
        )

    print("\n3. What the default limits let through in a minute")
    print(
        f"   (account {defaults.login_failures_per_account} and address "
        f"{defaults.login_failures_per_address} failures per {defaults.login_failure_window:g} s;"
        f" API {defaults.rate_limit_per_minute}/min, burst {defaults.rate_limit_burst})"
    )
    for label, (allowed, tried) in simulate(defaults).items():
        print(f"   simulated  {label:<52} {allowed:>5} of {tried}")
    for label, (allowed, tried) in live_limits(args.api_seconds).items():
        print(f"   live       {label:<52} {allowed:>5} of {tried}")
    expected = defaults.rate_limit_burst + defaults.rate_limit_per_minute / 60 * args.api_seconds
    print(f"   (a full bucket and {args.api_seconds:g} s of refill allow ~{expected:.0f})")
    print("\nReproduce: .venv/bin/python bench/abuse.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
