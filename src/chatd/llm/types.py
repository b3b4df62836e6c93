"""The vocabulary between the engine and the provider adapters.

The engine builds a :class:`ModelRequest` from stored history and calls
:meth:`ModelClient.stream`, which yields :data:`StreamPart` values as the provider sends them
and ends with exactly one :class:`Finish`. Any failure is raised as :class:`ProviderError`
carrying a :class:`ClassifiedError` (engine-behaviour §6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatd.sdk.chats import ChatErrorKind

# ---- request -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextContent:
    text: str


@dataclass(frozen=True)
class FileContent:
    """An attached file (images and PDFs are sent natively; text types as text)."""

    media_type: str
    data: bytes
    name: str = ""


@dataclass(frozen=True)
class ReasoningContent:
    text: str
    signature: str | None = None


@dataclass(frozen=True)
class ToolCallContent:
    id: str
    name: str
    args_json: str  # always a JSON object text ("{}" when empty)


@dataclass(frozen=True)
class ToolResultContent:
    tool_call_id: str
    tool_name: str
    result: Any  # JSON value as stored (e.g. {"output": "..."} or {"error": "..."})
    is_error: bool = False


@dataclass(frozen=True)
class SystemMessage:
    text: str


@dataclass(frozen=True)
class UserMessage:
    content: list[TextContent | FileContent]


@dataclass(frozen=True)
class AssistantMessage:
    content: list[TextContent | ReasoningContent | ToolCallContent]


@dataclass(frozen=True)
class ToolMessage:
    results: list[ToolResultContent]


Message = SystemMessage | UserMessage | AssistantMessage | ToolMessage


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class CallOptions:
    max_output_tokens: int = 32_000
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    provider_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelRequest:
    model: str
    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    options: CallOptions = field(default_factory=CallOptions)
    # False for titles and compaction summaries: no tools offered, tool_choice none.
    allow_tools: bool = True


# ---- stream parts --------------------------------------------------------------------------


@dataclass(frozen=True)
class TextDelta:
    text: str


@dataclass(frozen=True)
class ReasoningDelta:
    text: str
    signature: str | None = None  # set on the delta that carries (part of) the signature


@dataclass(frozen=True)
class ToolCallDelta:
    """A fragment of a tool call's argument JSON as it streams."""

    id: str
    name: str
    args_delta: str


@dataclass(frozen=True)
class ToolCall:
    """A complete tool call (its arguments are a JSON object text). When the model's arguments
    were not a JSON object they are ``{}`` here, and ``args_error`` says what was wrong."""

    id: str
    name: str
    args_json: str
    args_error: str | None = None


@dataclass(frozen=True)
class Source:
    id: str
    url: str
    title: str | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0


@dataclass(frozen=True)
class Finish:
    finish_reason: str  # "stop", "tool-calls", "length", "content-filter", "other"
    usage: Usage = field(default_factory=Usage)
    provider_response_id: str | None = None


StreamPart = TextDelta | ReasoningDelta | ToolCallDelta | ToolCall | Source | Finish


@dataclass(frozen=True)
class Generated:
    """The result of a non-streaming call (titles, summaries)."""

    text: str
    usage: Usage = field(default_factory=Usage)


# ---- errors --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifiedError:
    kind: ChatErrorKind
    retryable: bool
    message: str  # user-facing
    detail: str = ""  # raw text, at most 500 runes
    provider: str | None = None
    status_code: int | None = None
    retry_after: float | None = None  # seconds, when the provider said so


class ProviderError(Exception):
    """A model call failed; ``error`` says how (kind, retryable, ...)."""

    def __init__(self, error: ClassifiedError) -> None:
        super().__init__(error.detail or error.message)
        self.error = error


# ---- the seam ------------------------------------------------------------------------------


class ModelClient(Protocol):
    """One configured model of one provider."""

    provider: str

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        """Stream one model call. Raises :class:`ProviderError`."""
        ...

    async def generate(self, request: ModelRequest) -> Generated:
        """One non-streaming call. Raises :class:`ProviderError`."""
        ...
