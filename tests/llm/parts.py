"""Collecting a model stream in tests."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio

from chatd.llm.types import (
    Finish,
    ModelClient,
    ModelRequest,
    ReasoningDelta,
    StreamPart,
    SystemMessage,
    TextContent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    UserMessage,
)


def hello(**changes: object) -> ModelRequest:
    messages = [SystemMessage("You are terse."), UserMessage([TextContent("hi")])]
    return ModelRequest(model="fake-model", messages=messages, **changes)  # type: ignore[arg-type]


@dataclass
class Collected:
    parts: list[StreamPart] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextDelta))

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningDelta))

    @property
    def signatures(self) -> list[str]:
        return [p.signature for p in self.parts if isinstance(p, ReasoningDelta) and p.signature]

    @property
    def calls(self) -> list[ToolCall]:
        return [p for p in self.parts if isinstance(p, ToolCall)]

    @property
    def call_deltas(self) -> list[ToolCallDelta]:
        return [p for p in self.parts if isinstance(p, ToolCallDelta)]

    @property
    def finish(self) -> Finish:
        finishes = [p for p in self.parts if isinstance(p, Finish)]
        assert len(finishes) == 1 and self.parts[-1] is finishes[0]
        return finishes[0]


async def collect(client: ModelClient, request: ModelRequest | None = None) -> Collected:
    out = Collected()
    with anyio.fail_after(10):
        async for part in client.stream(request or hello()):
            out.parts.append(part)
    return out
