"""``python -m chatd.agent`` and ``chatd agent``: parse the options and run the agent until
a signal (or, with ``--exit-on-stdin-eof``, the end of stdin) stops it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from chatd.agent import hardening, protocol
from chatd.agent.client import Backoff, agent_url, serve
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.display import Geometry

log = logging.getLogger("chatd.agent")

DEFAULT_FIRST_RETRY_DELAY = 0.1
DEFAULT_MAX_RETRY_DELAY = 5.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    options = parser.parse_args(argv)
    url = options.url or os.environ.get(protocol.URL_ENV)
    token = options.token or os.environ.get(protocol.TOKEN_ENV)
    if not url:
        parser.error(f"the server's URL is needed: --url or {protocol.URL_ENV}")
    if not token:
        parser.error(f"the agent token is needed: {protocol.TOKEN_ENV} or --token")
    try:
        agent_url(url)
    except ValueError as exc:
        parser.error(str(exc))
    if not options.max_retry_delay > 0:
        parser.error("--max-retry-delay must be more than 0")
    if not Path(options.dir).is_dir():
        parser.error(f"--dir: {options.dir} is not a directory")
    return run(
        url,
        token,
        Path(options.dir),
        exit_on_stdin_eof=options.exit_on_stdin_eof,
        max_user_processes=options.max_user_processes,
        max_retry_delay=options.max_retry_delay,
        log_level=options.log_level,
        desktop_size=options.desktop_size,
    )


def run(
    url: str,
    token: str,
    directory: Path,
    *,
    exit_on_stdin_eof: bool = False,
    max_user_processes: int = hardening.DEFAULT_MAX_USER_PROCESSES,
    max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
    log_level: str = "info",
    desktop_size: Geometry | None = None,
) -> int:
    """Run the agent; its exit status (0 when stopped, 3 when the token was refused)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s chatd-agent: %(message)s",
    )
    # Its debug lines carry the handshake's headers (the token) and every frame.
    logging.getLogger("websockets").setLevel(logging.WARNING)
    for name in (protocol.TOKEN_ENV, protocol.URL_ENV):
        os.environ.pop(name, None)  # never passed on to a command
    hardening.hide_process_memory()
    hardening.limit_processes(max_user_processes)
    backoff = Backoff(min(DEFAULT_FIRST_RETRY_DELAY, max_retry_delay), max_retry_delay)
    dispatcher = functools.partial(Dispatcher, directory, desktop_geometry=desktop_size)
    return _run_loop(_agent(url, token, dispatcher, backoff, exit_on_stdin_eof))


async def _agent(
    url: str,
    token: str,
    make_dispatcher: Callable[[], Dispatcher],
    backoff: Backoff,
    exit_on_stdin_eof: bool,
) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopper(stop, signal.Signals(signum).name))
    if exit_on_stdin_eof:
        _watch_stdin(loop, _stopper(stop, "end of stdin"))
    dispatcher = make_dispatcher()
    log.info("serving %s", dispatcher.directory)
    serving = asyncio.create_task(
        serve(url, token, dispatcher.directory, dispatcher=dispatcher, backoff=backoff)
    )
    stopped = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            return serving.result()
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        return 0
    finally:
        stopped.cancel()
        await dispatcher.close()
        log.info("stopped")


def _stopper(stop: asyncio.Event, why: str) -> Callable[[], None]:
    def on_stop() -> None:
        if not stop.is_set():
            log.info("stopping: %s", why)
            stop.set()

    return on_stop


def _watch_stdin(loop: asyncio.AbstractEventLoop, on_eof: Callable[[], None]) -> None:
    """Call ``on_eof`` in the loop once stdin ends (the process that started us is gone)."""

    def read_until_eof() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 65536):
                pass
        with contextlib.suppress(RuntimeError):  # the loop already closed
            loop.call_soon_threadsafe(on_eof)

    threading.Thread(target=read_until_eof, name="stdin-eof", daemon=True).start()


def _run_loop(coroutine: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop where it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


def _geometry(text: str) -> Geometry:
    try:
        return Geometry.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatd agent",
        description="The workspace agent: dials a chatd server and runs its tools' "
        "operations (files, edits, commands) in a directory.",
    )
    parser.add_argument("--url", help=f"the server's base URL (default: ${protocol.URL_ENV})")
    parser.add_argument(
        "--token",
        help=f"the agent token (default: ${protocol.TOKEN_ENV}; prefer the variable: "
        "a command line is visible to other processes)",
    )
    parser.add_argument("--dir", default=".", help="the workspace directory (default: .)")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop (killing the commands still running) when stdin reaches its end",
    )
    parser.add_argument(
        "--max-user-processes",
        type=int,
        default=hardening.DEFAULT_MAX_USER_PROCESSES,
        help="the soft RLIMIT_NPROC set for the agent and its commands (0: leave it)",
    )
    parser.add_argument(
        "--max-retry-delay",
        type=float,
        default=DEFAULT_MAX_RETRY_DELAY,
        help="the longest wait, in seconds, between two dials (default: %(default)s)",
    )
    parser.add_argument(
        "--desktop-size",
        type=_geometry,
        default=Geometry(),
        metavar="WIDTHxHEIGHT[xDEPTH]",
        help="the size of the workspace's virtual display (default: 1280x800x24)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser
