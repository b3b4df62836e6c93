"""``chatd server``: one replica (HTTP and WebSocket API, chat workers, event hub)."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import structlog
import typer

from chatd.cli.session import Session, save_session
from chatd.logging import configure_logging
from chatd.private_files import open_private, private_dir, replace_private_file
from chatd.settings import Settings

if TYPE_CHECKING:  # the server stack loads only when a server starts
    from chatd.bootstrap import FirstUser
    from chatd.secretbox import SecretBox

log = structlog.get_logger(__name__)

LOCK_FILE = "chatd.lock"
# Where a first start that is not on a terminal leaves the admin's credentials.
CREDENTIALS_FILE = "first-user.txt"


def lock_data_dir(data_dir: Path, holder: str = "chatd server") -> IO[str]:
    """Embedded SQLite allows exactly one process at a time: hold a lock file in the data dir.

    Exits (status 1) when another process holds it.
    """
    private_dir(data_dir)
    handle = os.fdopen(open_private(data_dir / LOCK_FILE, os.O_RDWR), "r+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        typer.echo(f"another chatd server is using {data_dir}", err=True)
        raise typer.Exit(1) from None
    handle.truncate(0)
    handle.write(f"{os.getpid()} {holder}\n")
    handle.flush()
    return handle


def load_secrets(settings: Settings) -> SecretBox:
    """The deployment's secret box; exits (status 2) with the reason when a key is malformed."""
    from chatd.secret_key import box_for, key_file
    from chatd.secretbox import SecretKeyError

    try:
        box = box_for(settings)
    except (SecretKeyError, OSError) as exc:
        typer.echo(f"chatd: cannot load the secret key: {exc}", err=True)
        raise typer.Exit(2) from None
    if not settings.secret_key.get_secret_value().strip() and not settings.is_sqlite():
        log.warning(
            "CHATD_SECRET_KEY is not set: secrets are sealed with the key file of this replica's "
            "data directory; every replica must hold the same key (set CHATD_SECRET_KEY to one "
            "value everywhere, or give each replica this file)",
            key_file=str(key_file(settings.data_dir)),
            key_id=box.key_id,
        )
    return box


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


def _announce_first_user(settings: Settings, url: str, first: FirstUser, session: Path) -> None:
    """Print the admin's credentials on a terminal; otherwise only say where they are kept.

    Output that is not a terminal usually ends up in a log (systemd's journal, a container's
    log, CI), where a password and a year-long token would outlive the first start.
    """
    password = first.password if not settings.first_user_password else "(CHATD_FIRST_USER_PASSWORD)"
    details = (
        f"  URL:      {url}\n"
        f"  email:    {first.email}\n"
        f"  username: {first.username}\n"
        f"  password: {password}\n"
        f"  token:    {first.token}\n"
    )
    if sys.stdout.isatty():
        typer.echo(
            f"First start: created the admin user.\n{details}"
            f"  (token saved to {session} for the chatd CLI)"
        )
        return
    private_dir(settings.data_dir)
    credentials = settings.data_dir / CREDENTIALS_FILE
    replace_private_file(credentials, details.encode())
    typer.echo(
        "First start: created the admin user.\n"
        f"  URL:      {url}\n"
        f"  email:    {first.email}\n"
        f"  username: {first.username}\n"
        "  Its password and API token are not printed (the output is not a terminal): they are\n"
        f"  in {credentials} (readable by this user only; delete it once you have them), and\n"
        f"  the token is saved to {session} for the chatd CLI."
    )


async def _serve(settings: Settings, secrets: SecretBox) -> None:
    # Imported here so that the client commands start without loading the server stack.
    import uvicorn

    from chatd.agent.protocol import MAX_FRAME_BYTES
    from chatd.api.app import create_app
    from chatd.api.http_protocol import LimitedHttpProtocol
    from chatd.bootstrap import create_first_user
    from chatd.cli.serving import ChatdServer
    from chatd.store.db import Database
    from chatd.store.secret_columns import UnknownSecretKeys

    db = Database(
        settings.resolved_database_url(), secrets=secrets, **settings.database_options()
    )
    try:
        try:
            await db.migrate()
        except UnknownSecretKeys as exc:
            typer.echo(f"chatd: {exc}", err=True)
            raise typer.Exit(1) from None
        first = await create_first_user(db, settings)
        host, port = _split_address(settings.http_address)
        url = settings.access_url or f"http://{host}:{port}"
        if first is not None:
            path = save_session(Session(url=url, token=first.token))
            _announce_first_user(settings, url, first, path)
        app = create_app(settings, db)
        _tune_gc()
        forwarded = settings.forwarded_allow_ips.strip()
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="on",
            http=LimitedHttpProtocol.configured(
                settings.http_max_header_bytes, settings.http_header_timeout
            ),
            # uvicorn believes X-Forwarded-For from loopback by default; chatd only from the
            # proxies it is told about, so the client address (login throttling, the audit
            # log) is the socket peer's unless configured.
            proxy_headers=bool(forwarded),
            forwarded_allow_ips=forwarded or None,
            # The largest message uvicorn takes on any WebSocket. A workspace agent's answer
            # is the largest one sent to this server (a file read whole, in base64); the
            # other sockets carry small messages. 16 MiB, uvicorn's default, stated here so
            # that it follows the agent protocol's limit.
            ws_max_size=MAX_FRAME_BYTES,
            # No permessage-deflate: a stream sends each delta to every client following the
            # chat, and compressing it once per socket (each has its own zlib context) cost
            # more CPU than the rest of the fan-out. The frames are small JSON.
            ws_per_message_deflate=False,
        )

        async def stop_turns() -> None:
            worker = getattr(app.state, "worker", None)
            if worker is not None:  # its stop, in the lifespan, waits for the rest
                worker.begin_shutdown()
                await worker.turns_ended()

        server = ChatdServer(config, stop_turns)
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
    private_dir(settings.data_dir)
    lock = lock_data_dir(settings.data_dir) if settings.is_sqlite() else None
    try:
        secrets = load_secrets(settings)
        _run(_serve(settings, secrets))
    except KeyboardInterrupt:
        pass
    finally:
        if lock is not None:
            lock.close()
