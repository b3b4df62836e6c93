"""``chatd agent``: the workspace agent, the same program as ``python -m chatd.agent``.

Its options are the agent's own (``chatd agent --help`` lists them); this command only
hands them over, importing the agent alone so it starts small.
"""

from __future__ import annotations

import typer


def agent(ctx: typer.Context) -> None:
    """Run a workspace agent: dial a chatd server and run its tools in a directory."""
    from chatd.agent.main import main

    raise typer.Exit(main(ctx.args))


SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}
