"""A small MCP server for the tests, run as its own process:
``python tests/tools/mcp_server_main.py PORT API_KEY``.

It serves Streamable HTTP at ``/mcp`` and SSE at ``/sse`` (``/messages/``) on 127.0.0.1 and
answers only requests whose ``X-Api-Key`` header is ``API_KEY``, or that carry it as an OAuth2
token (``Authorization: Bearer API_KEY``). ``sleepy`` never answers; ``grow`` adds the tool
``extra`` and tells the client its tool list changed.

``python mcp_server_main.py stdio`` serves it over stdin and stdout instead (as a
workspace's ``.mcp.json`` starts it), with two more tools: ``where`` (its working directory
and the variable ``MCP_TEST_VALUE``) and ``exit`` (the process ends at once).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import anyio
import uvicorn
from mcp import types
from mcp.server import MCPServer
from mcp.server.mcpserver import Context, Image
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount

server = MCPServer("test-tools")


@server.tool(description="Say the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Add two numbers.")
def add(a: int, b: int) -> str:
    return str(a + b)


@server.tool(description="Always fails.")
def broken() -> str:
    raise RuntimeError("this tool is broken")


# The smallest PNG header and one byte: enough to be stored and named.
PICTURE = b"\x89PNG\r\n\x1a\n" + b"\x00"


@server.tool(description="A picture and a caption.", structured_output=False)
def picture() -> list[Any]:
    return ["a caption", Image(data=PICTURE, format="png")]


@server.tool(description="Never to be offered.")
def secret() -> str:
    return "leaked"


@server.tool(description="Never answers.")
async def sleepy() -> str:
    await anyio.sleep(3600)
    return "woke"


def extra() -> str:
    return "an extra tool"


@server.tool(description="Adds a tool.")
async def grow(ctx: Context) -> str:
    if "extra" not in {t.name for t in await server.list_tools()}:
        server.add_tool(extra, name="extra", description="Added by grow.")
    changed = types.ToolListChangedNotification()
    await ctx.session.send_notification(changed, related_request_id=ctx.request_id)
    return "grown"


class RequireKey:
    def __init__(self, app: Any, key: str) -> None:
        self.app = app
        self.key = key.encode()

    def allows(self, headers: dict[bytes, bytes]) -> bool:
        bearer = headers.get(b"authorization", b"")
        return headers.get(b"x-api-key") == self.key or bearer == b"Bearer " + self.key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not self.allows(dict(scope["headers"])):
            await PlainTextResponse("bad key", status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def where() -> str:
    return f"{os.getcwd()} {os.environ.get('MCP_TEST_VALUE', '-')} {os.getpid()}"


def exit_now() -> str:
    os._exit(3)


def main() -> None:
    if sys.argv[1] == "stdio":
        server.tool(name="where", description="Where the server runs.")(where)
        server.tool(name="exit", description="End the server's process.")(exit_now)
        server.run("stdio")
        return
    port, key = int(sys.argv[1]), sys.argv[2]
    http_app = server.streamable_http_app()
    sse_app = server.sse_app()
    app = Starlette(
        routes=[Mount("/sse-server", app=sse_app), Mount("/", app=http_app)],
        lifespan=lambda _app: http_app.router.lifespan_context(http_app),
    )
    uvicorn.run(RequireKey(app, key), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
