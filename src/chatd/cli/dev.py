"""``chatd dev``: tools for developing against chatd without real model providers."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Development tools.")


@app.command("fake-provider")
def fake_provider(
    port: int = typer.Option(8089, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    script: Path | None = typer.Option(
        None, help="A JSON script of replies (see chatd.testing.script).", exists=True
    ),
    api_key: list[str] = typer.Option(
        [],
        help="Accept only this API key (repeatable); others get the provider's 401. "
        "Default: any key.",
    ),
) -> None:
    """Serve fake OpenAI (/v1/chat/completions) and Anthropic (/v1/messages) endpoints.

    Replies come from the script in order; once it is used up every call gets the default
    reply. More entries can be appended with POST /fake/script.
    """
    import uvicorn

    from chatd.testing.fake_provider import FakeProvider
    from chatd.testing.script import DEFAULT_TEXT

    entries = json.loads(script.read_text()) if script else []
    if not isinstance(entries, list):
        raise typer.BadParameter("a script is a JSON list of entries", param_hint="--script")
    fake = FakeProvider(entries, api_keys=api_key)
    typer.echo(
        f"fake provider on http://{host}:{port} "
        f"(OpenAI base URL http://{host}:{port}/v1; {len(entries)} scripted replies; "
        f"then {DEFAULT_TEXT!r})"
    )
    uvicorn.run(fake.app, host=host, port=port, log_level="warning", lifespan="off")


@app.command("openapi")
def openapi_document() -> None:
    """Print the server's OpenAPI document (JSON), as ``GET /openapi.json`` serves it."""
    import tempfile

    from chatd.api.app import create_app
    from chatd.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        # No agent runs here: without a sandbox setting, a host lacking bubblewrap would log a
        # warning to stdout, into the document.
        settings = Settings(data_dir=Path(data_dir), sandbox="none")
        typer.echo(json.dumps(create_app(settings).openapi(), indent=1))
