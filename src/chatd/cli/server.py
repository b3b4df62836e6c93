"""``chatd server``: one replica (HTTP and WebSocket API, chat workers, event hub)."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, Any

import typer

from chatd.cli.session import Session, save_session
from chatd.logging import configure_logging
from chatd.settings import Settings


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """Embedded SQLite allows exactly one replica: hold a lock file in the data dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / "chatd.lock").open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        typer.echo(f"another chatd server is using {data_dir}", err=True)
        raise typer.Exit(1) from None
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def _serve(settings: Settings) -> None:
    # Imported here so that the client commands start without loading the server stack.
    import uvicorn

    from chatd.api.app import create_app
    from chatd.api.http_protocol import EnvelopeHttpToolsProtocol
    from chatd.bootstrap import create_first_user
    from chatd.store.db import Database

    db = Database(settings.resolved_database_url())
    try:
        await db.migrate()
        first = await create_first_user(db, settings)
        host, port = _split_address(settings.http_address)
        url = settings.access_url or f"http://{host}:{port}"
        if first is not None:
            path = save_session(Session(url=url, token=first.token))
            typer.echo(
                "First start: created the admin user.\n"
                f"  URL:      {url}\n"
                f"  email:    {first.email}\n"
                f"  username: {first.username}\n"
                f"  password: {first.password}\n"
                f"  token:    {first.token}\n"
                f"  (token saved to {path} for the chatd CLI)"
            )
        app = create_app(settings, db)
        _tune_gc()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            http=EnvelopeHttpToolsProtocol,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        server = uvicorn.Server(config)
        typer.echo(f"chatd listening on {url}")
        await server.serve()
    finally:
        await db.close()


GC_YOUNG_THRESHOLD = 10_000


def _tune_gc() -> None:
    """Keep the garbage collector's passes short and rare while streams run.

    The objects made at startup (modules, schemas, the SDKs) are frozen out of every later
    pass: a full collection scanned ~390,000 of them in ~250 ms, stalling every stream of the
    process at once. The first generation is collected every 10,000 net allocations instead of
    700: measured at 100 chats x 50 tokens/s for 10 s, 7 young passes (at most 4 ms) and one
    middle one (26 ms) instead of 113, 10 and a full one (39 ms), 45 ms of GC in all instead of 98.
    """
    import chatd.llm.factory  # noqa: F401  the SDKs, which the first model call would load

    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop (installed with uvicorn[standard]) when available."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def server(
    http_address: str = typer.Option(None, help="Address to listen on (CHATD_HTTP_ADDRESS)."),
    data_dir: Path = typer.Option(None, help="Data directory (CHATD_DATA_DIR)."),
    database_url: str = typer.Option(
        None, help="postgresql://... for PostgreSQL (CHATD_DATABASE_URL); default SQLite."
    ),
) -> None:
    """Run a chatd server."""
    overrides: dict[str, object] = {}
    if http_address:
        overrides["http_address"] = http_address
    if data_dir:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure_logging(settings.log_format, settings.log_level)
    lock = _lock_data_dir(settings.data_dir) if settings.is_sqlite() else None
    try:
        _run(_serve(settings))
    except KeyboardInterrupt:
        pass
    finally:
        if lock is not None:
            lock.close()
