"""Where the CLI keeps the server URL and token (``$CHATD_CONFIG_DIR/session.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import httpx2
import typer

from chatd.private_files import PRIVATE_FILE_MODE, narrow, private_dir, replace_private_file
from chatd.settings import Settings


@dataclass(frozen=True)
class Session:
    url: str
    token: str


def session_path() -> Path:
    return Settings().config_dir / "session.json"


def save_session(session: Session) -> Path:
    """Write the session file: 0600 from its creation, in a 0700 config directory, replaced
    atomically (a reader sees the old session or the new one)."""
    path = session_path()
    private_dir(path.parent)
    replace_private_file(path, json.dumps({"url": session.url, "token": session.token}).encode())
    return path


def load_session() -> Session:
    path = session_path()
    try:
        narrow(path, PRIVATE_FILE_MODE)  # as an older chatd may have left it
        data = json.loads(path.read_text())
        return Session(url=str(data["url"]), token=str(data["token"]))
    except (OSError, ValueError, KeyError):
        typer.echo(f"Not logged in (no session at {path}). Run `chatd login URL` first.", err=True)
        raise typer.Exit(1) from None


def client(session: Session) -> httpx2.Client:
    return httpx2.Client(
        base_url=session.url, headers={"Coder-Session-Token": session.token}, timeout=30
    )


def fail_on_error(response: httpx2.Response) -> None:
    if response.status_code < 400:
        return
    try:
        body = response.json()
        text = body.get("message", "")
        if body.get("detail"):
            text += f" ({body['detail']})"
        for v in body.get("validations") or []:
            text += f"\n  {v['field']}: {v['detail']}"
    except ValueError:
        text = response.text
    typer.echo(f"error {response.status_code}: {text}", err=True)
    raise typer.Exit(1)
