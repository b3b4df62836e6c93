"""``chatd chat new``, ``chatd chat send`` and ``chatd chats list``."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from chatd.cli.follow import follow
from chatd.cli.session import Session, client, fail_on_error, load_session
from chatd.sdk.chats import Chat, ChatStatus, CreateChatMessageResponse

chat_app = typer.Typer(no_args_is_help=True, help="Start and continue chats.")
chats_app = typer.Typer(no_args_is_help=True, help="List chats.")
CHATS = "/api/experimental/chats"


def _content(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def _follow_and_exit(session: Session, chat_id: str, after_id: int) -> None:
    status = follow(session, chat_id, after_id, Console(highlight=False))
    if status == ChatStatus.error:
        raise typer.Exit(1)


@chat_app.command("new")
def new(
    prompt: str = typer.Argument(..., help="The first message."),
    model_config: str = typer.Option(None, "--model-config", help="Model config ID."),
    no_follow: bool = typer.Option(False, "--no-follow", help="Do not wait for the reply."),
) -> None:
    """Start a chat in your first organization and follow its first turn."""
    session = load_session()
    with client(session) as http:
        me = http.get("/api/v2/users/me")
        fail_on_error(me)
        orgs = me.json().get("organization_ids") or []
        if not orgs:
            typer.echo("You are not a member of any organization.", err=True)
            raise typer.Exit(1)
        body: dict[str, Any] = {"organization_id": orgs[0], "content": _content(prompt)}
        if model_config:
            body["model_config_id"] = model_config
        response = http.post(CHATS, json=body)
    fail_on_error(response)
    chat = Chat.model_validate(response.json())
    typer.echo(f"Created chat {chat.id}: {chat.title}")
    if not no_follow:
        # From the start: a replay of a turn that already ended skips the user's prompt.
        _follow_and_exit(session, str(chat.id), 0)


@chat_app.command("send")
def send(
    chat_id: str = typer.Argument(..., metavar="CHAT", help="Chat ID."),
    text: str = typer.Argument(..., help="The message."),
    interrupt: bool = typer.Option(
        False, "--interrupt", help="Stop the running turn and send now (instead of queueing)."
    ),
    no_follow: bool = typer.Option(False, "--no-follow", help="Do not wait for the reply."),
) -> None:
    """Send a message to a chat (queued while it is busy) and follow the reply."""
    session = load_session()
    body: dict[str, Any] = {"content": _content(text)}
    if interrupt:
        body["busy_behavior"] = "interrupt"
    with client(session) as http:
        response = http.post(f"{CHATS}/{chat_id}/messages", json=body)
    fail_on_error(response)
    result = CreateChatMessageResponse.model_validate(response.json())
    if result.queued and result.queued_message is not None:
        typer.echo(f"Queued message {result.queued_message.id}.")
    elif result.message is not None:
        typer.echo(f"Sent message {result.message.id}.")
    if not no_follow:
        after_id = result.message.id if result.message is not None else 0
        _follow_and_exit(session, chat_id, after_id)


@chats_app.command("list")
def list_chats() -> None:
    """Your chats: id, title, status, last update."""
    with client(load_session()) as http:
        response = http.get(CHATS)
    fail_on_error(response)
    chats = [Chat.model_validate(c) for c in response.json()]
    rows = [
        (str(c.id), c.title, c.status.value, c.updated_at.strftime("%Y-%m-%d %H:%M:%S"))
        for c in chats
    ]
    header = ("ID", "TITLE", "STATUS", "UPDATED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
