"""``chatd login``, ``chatd users create``, ``chatd tokens create``."""

from __future__ import annotations

import httpx2
import typer

from chatd.cli.session import Session, client, fail_on_error, load_session, save_session

users_app = typer.Typer(no_args_is_help=True, help="Manage users.")
tokens_app = typer.Typer(no_args_is_help=True, help="Manage API tokens.")


def login(
    url: str = typer.Argument(..., help="The chatd server URL."),
    token: str = typer.Option(None, help="An existing API token (else email and password)."),
    email: str = typer.Option(None, help="Email or username to log in with."),
    password: str = typer.Option(None, help="Password (prompted when missing)."),
) -> None:
    """Log in to a chatd server and save the session for later commands."""
    url = url.rstrip("/")
    if not token:
        email = email or typer.prompt("Email")
        password = password or typer.prompt("Password", hide_input=True)
        with httpx2.Client(base_url=url, timeout=30) as http:
            response = http.post("/api/v2/users/login", json={"email": email, "password": password})
        fail_on_error(response)
        token = response.json()["session_token"]
    session = Session(url=url, token=token)
    with client(session) as http:
        me = http.get("/api/v2/users/me")
    fail_on_error(me)
    path = save_session(session)
    typer.echo(f"Logged in to {url} as {me.json()['username']} (session saved to {path}).")


@users_app.command("create")
def create_user(
    email: str = typer.Option(..., help="Email address."),
    username: str = typer.Option(..., help="Username."),
    password: str = typer.Option(..., help="Password (at least 8 characters)."),
    name: str = typer.Option("", help="Full name."),
) -> None:
    """Create a user (admins only); they join the default organization."""
    with client(load_session()) as http:
        response = http.post(
            "/api/v2/users",
            json={"email": email, "username": username, "password": password, "name": name},
        )
    fail_on_error(response)
    user = response.json()
    typer.echo(f"Created user {user['username']} ({user['id']}).")


@tokens_app.command("create")
def create_token(
    name: str = typer.Option("", help="A name for the token."),
    lifetime_days: int = typer.Option(30, help="Lifetime in days."),
) -> None:
    """Create an API token for yourself and print it."""
    lifetime_ns = lifetime_days * 24 * 3600 * 10**9
    with client(load_session()) as http:
        response = http.post(
            "/api/v2/users/me/keys/tokens", json={"token_name": name, "lifetime": lifetime_ns}
        )
    fail_on_error(response)
    typer.echo(response.json()["key"])
