"""``chatd secrets``: the key that encrypts provider API keys at rest.

``rotate`` re-encrypts every stored secret under a new key, in one transaction: until it
commits the database holds only values of the old key, afterwards only values of the new one.

- With ``CHATD_SECRET_KEY`` set, the new key is its first entry and the old ones follow
  (``CHATD_SECRET_KEY=NEW,OLD chatd secrets rotate``); afterwards every replica is started
  with ``CHATD_SECRET_KEY=NEW``.
- Otherwise (the key file in the data directory) it makes the new key itself. The new key is
  written to ``secret.key.next`` first, the secrets are re-encrypted, and only then is that
  file renamed over ``secret.key``. A rotation cut short anywhere loses nothing: a server
  holds both files' keys while ``secret.key.next`` exists, and running ``rotate`` again
  finishes the job with the same new key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from chatd.cli.server import lock_data_dir
from chatd.settings import Settings

if TYPE_CHECKING:
    from chatd.secretbox import SecretBox
    from chatd.store.secret_columns import Resealed

app = typer.Typer(no_args_is_help=True, help="The key of the secrets stored at rest.")


@app.command("generate-key")
def generate_key() -> None:
    """Print a new random key (a value for CHATD_SECRET_KEY)."""
    from chatd.secretbox import generate_key as new_key

    typer.echo(new_key())


@app.command("rotate")
def rotate(
    data_dir: Path = typer.Option(None, help="Data directory (CHATD_DATA_DIR)."),
    database_url: str = typer.Option(
        None, help="postgresql://... for PostgreSQL (CHATD_DATABASE_URL); default SQLite."
    ),
    drop_unreadable: bool = typer.Option(
        False,
        "--drop-unreadable",
        help="Clear the provider keys (and delete the users' keys) that no configured key can "
        "decrypt, instead of stopping: for a lost key. They must then be entered again.",
    ),
) -> None:
    """Re-encrypt every stored provider key under a new secret key.

    With CHATD_SECRET_KEY=NEW,OLD the new key is NEW; without CHATD_SECRET_KEY a new key
    replaces the key file. Stop the servers first (on SQLite a running server is refused).
    """
    from chatd.secret_key import (
        ENV,
        ensure_key_file,
        env_keys,
        key_file,
        next_key_file,
        promote_next_key,
    )
    from chatd.secretbox import SecretBox, SecretKeyError

    overrides: dict[str, object] = {}
    if data_dir:
        overrides["data_dir"] = data_dir
    if database_url:
        overrides["database_url"] = database_url
    settings = Settings(**overrides)  # type: ignore[arg-type]
    lock = (
        lock_data_dir(settings.data_dir, "chatd secrets rotate") if settings.is_sqlite() else None
    )
    try:
        configured = settings.secret_key.get_secret_value()
        try:
            if configured.strip():
                keys = env_keys(configured)
                box = SecretBox(keys[0], keys[1:])
            else:
                old = ensure_key_file(key_file(settings.data_dir))
                # A rotation cut short left its new key here: finish with that one.
                new = ensure_key_file(next_key_file(settings.data_dir))
                box = SecretBox(new, [old])
        except (SecretKeyError, OSError) as exc:
            typer.echo(f"chatd: cannot load the secret key: {exc}", err=True)
            raise typer.Exit(2) from None
        done = _reseal(settings, box, drop_unreadable)
        if done.dropped:
            typer.echo(
                f"Dropped {done.dropped} secrets that no key could decrypt: enter those "
                "provider keys again."
            )
        if configured.strip():
            typer.echo(
                f"Re-encrypted {done.resealed} secrets under key {box.key_id} (the first in "
                f"{ENV}).\nStart every replica with {ENV} set to that key alone."
            )
            return
        promote_next_key(settings.data_dir)
        typer.echo(
            f"Re-encrypted {done.resealed} secrets under a new key (id {box.key_id}), now in "
            f"{key_file(settings.data_dir)}.\n"
            "Restart the server; replicas on PostgreSQL each need a copy of the new key file."
        )
    finally:
        if lock is not None:
            lock.close()


def _reseal(settings: Settings, box: SecretBox, drop_unreadable: bool) -> Resealed:
    import asyncio

    from chatd.store.db import Database
    from chatd.store.errors import StoreError
    from chatd.store.model_configs import lock_model_catalog
    from chatd.store.secret_columns import UnreadableSecret, reseal_all

    async def run() -> Resealed:
        db = Database(settings.resolved_database_url(), secrets=box, **settings.database_options())
        try:
            async with db.write() as conn:
                await lock_model_catalog(conn)
                return await reseal_all(conn, box, drop_unreadable=drop_unreadable)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except UnreadableSecret as exc:
        typer.echo(
            f"chatd: nothing was changed: cannot decrypt {exc}. Give the old key too "
            "(CHATD_SECRET_KEY=NEW,OLD), or, if it is lost, run again with --drop-unreadable.",
            err=True,
        )
        raise typer.Exit(1) from None
    except StoreError as exc:  # no server, no schema yet, ...
        typer.echo(f"chatd: nothing was changed: {exc}", err=True)
        raise typer.Exit(1) from None
