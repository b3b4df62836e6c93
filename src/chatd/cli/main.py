"""The ``chatd`` command."""

from __future__ import annotations

import typer

from chatd.cli import accounts, server

app = typer.Typer(no_args_is_help=True, add_completion=False, help="chatd: AI coding-agent chats.")
app.command("server")(server.server)
app.command("login")(accounts.login)
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.tokens_app, name="tokens")

if __name__ == "__main__":
    app()
