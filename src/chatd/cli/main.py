"""The ``chatd`` command."""

from __future__ import annotations

import typer

from chatd.cli import accounts, agent, chat, dev, secrets, server

app = typer.Typer(no_args_is_help=True, add_completion=False, help="chatd: AI coding-agent chats.")
app.command("server")(server.server)
app.command("agent", context_settings=agent.SETTINGS, add_help_option=False)(agent.agent)
app.command("login")(accounts.login)
app.add_typer(accounts.users_app, name="users")
app.add_typer(accounts.tokens_app, name="tokens")
app.add_typer(chat.chat_app, name="chat")
app.add_typer(chat.chats_app, name="chats")
app.add_typer(secrets.app, name="secrets")
app.add_typer(dev.app, name="dev")

if __name__ == "__main__":
    app()
