"""Where the deployment's secret key comes from.

``CHATD_SECRET_KEY``, when set: one key (base64url of 32 bytes), or several separated by
commas, of which the first seals and all of them open (to rotate: put the new key first, run
``chatd secrets rotate``, then drop the old one).

Otherwise the key file ``secret.key`` in the data directory, created at the first start with
a new random key (mode 0600, never written again but by a rotation). A rotation that uses the
key file first stores its new key in ``secret.key.next``; until it is promoted to
``secret.key`` a server holds both, so a rotation cut short at any point loses nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from chatd.private_files import (
    PRIVATE_FILE_MODE,
    create_private_file,
    narrow,
    private_dir,
    sync_dir,
)
from chatd.secretbox import SecretBox, SecretKeyError, generate_key, parse_key
from chatd.settings import Settings

KEY_FILE = "secret.key"
NEXT_KEY_FILE = "secret.key.next"
ENV = "CHATD_SECRET_KEY"


def env_keys(value: str) -> list[bytes]:
    """The keys of a ``CHATD_SECRET_KEY`` value (the first seals); raises SecretKeyError."""
    parts = [part.strip() for part in value.split(",")]
    if any(not part for part in parts):
        raise SecretKeyError(f"{ENV} has an empty entry: give one key, or keys separated by commas")
    if len(parts) == 1:
        return [parse_key(parts[0], ENV)]
    return [parse_key(part, f"{ENV} (key {n} of {len(parts)})") for n, part in enumerate(parts, 1)]


def key_file(data_dir: Path) -> Path:
    return data_dir / KEY_FILE


def next_key_file(data_dir: Path) -> Path:
    return data_dir / NEXT_KEY_FILE


def read_key_file(path: Path) -> bytes:
    narrow(path, PRIVATE_FILE_MODE)
    return parse_key(path.read_text(), f"the key file {path}")


def ensure_key_file(path: Path) -> bytes:
    """The key in ``path``, after creating the file with a new key when there is none."""
    private_dir(path.parent)
    if not path.exists():
        try:
            create_private_file(path, (generate_key() + "\n").encode())
        except FileExistsError:
            pass  # another process created it first: use theirs
    return read_key_file(path)


def load_secret_box(secret_key: str, data_dir: Path) -> SecretBox:
    """The box this process seals and opens secrets with; raises SecretKeyError."""
    if secret_key.strip():
        keys = env_keys(secret_key)
        return SecretBox(keys[0], keys[1:])
    current = ensure_key_file(key_file(data_dir))
    older: Sequence[bytes] = ()
    pending = next_key_file(data_dir)
    if pending.exists():  # a rotation that did not finish: what it sealed must still open
        older = (read_key_file(pending),)
    return SecretBox(current, older)


def box_for(settings: Settings) -> SecretBox:
    """:func:`load_secret_box` for these settings."""
    return load_secret_box(settings.secret_key.get_secret_value(), settings.data_dir)


def promote_next_key(data_dir: Path) -> None:
    """Make the rotation's new key the key file (an atomic rename)."""
    os.replace(next_key_file(data_dir), key_file(data_dir))
    sync_dir(data_dir)
