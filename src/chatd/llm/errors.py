"""Classifying a failed model call (engine-behaviour §6).

:func:`classify` is a pure function of the error: its text, the HTTP status it carries (from
the SDK exception, or found in the text), and the exception type. The rules are applied in a
fixed order and the first match wins (§6.2). User-facing messages are our own wording; they name
the provider's display name, or "the AI provider" when it is unknown.

Errors made outside the classifier: :func:`missing_key_error`, :func:`provider_disabled_error`
and :func:`startup_timeout_error`.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass
from typing import Any

import httpx2

from chatd.llm.types import ClassifiedError, ProviderError
from chatd.sdk.chats import ChatErrorKind
from chatd.sdk.providers import PROVIDER_DISPLAY_NAMES

DETAIL_MAX_RUNES = 500


class StreamClosedEarly(Exception):
    """A provider stream ended without its terminal event (§6.2 rule 0c)."""


class InStreamError(Exception):
    """An error event inside a stream whose response said 200 (Anthropic sends overload and
    other failures so); ``type`` is the error's type, which names the real status."""

    def __init__(self, event: dict[str, Any]) -> None:
        super().__init__(str(event))
        error = event.get("error")
        self.type = str(error.get("type") or "") if isinstance(error, dict) else ""


class StartupTimeout(Exception):
    """No stream part arrived within the startup guard (§5.5, §6.2 rule 0d)."""


# ---- signals (§6.1) --------------------------------------------------------------------------

_STATUS_EXPLICIT = re.compile(
    r"\bstatus(?:[ _]?code)?\s*[:=]\s*(\d{3})\b|\bhttp(?:/[\d.]+)?\s+(\d{3})\b"
)
_STATUS_STANDALONE = re.compile(r"\b(401|403|408|429|500|502|503|504|529)\b")
_STREAM_ID_BEFORE = re.compile(r"stream id\s*$")

_PROVIDER_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("openai-compat", ("openai-compat", "openai compatible", "openai_compat")),
    ("azure", ("azure",)),
    ("openrouter", ("openrouter",)),
    ("bedrock", ("bedrock",)),
    ("vercel", ("vercel",)),
    ("anthropic", ("anthropic", "claude")),
    ("google", ("google", "gemini", "vertex")),
    ("openai", ("openai",)),
)

_OVERLOADED = ("overloaded",)
_RATE_LIMIT = ("rate limit", "rate_limit", "rate limited", "rate-limited", "too many requests")
_TIMEOUT = (
    "timeout",
    "timed out",
    "service unavailable",
    "unavailable",
    "connection reset",
    "connection refused",
    "eof",
    "broken pipe",
    "bad gateway",
    "gateway timeout",
    "client conn",
    "goaway",
    "http2: stream closed",
    "use of closed network connection",
    "server disconnected",
    "remote protocol error",
    "incomplete chunked read",
)
_HTTP2_RESET = ("rst_stream", "stream error: stream id", "internal_error; received from peer")
_AUTH_STRONG = ("authentication", "unauthorized", "invalid api key", "invalid_api_key")
_AUTH_WEAK = ("forbidden",)
_USAGE_LIMIT = ("quota", "billing", "payment required")
_USAGE_LIMIT_ANY_STATUS = ("insufficient_quota",)
_CONFIG = (
    "invalid model",
    "model not found",
    "model_not_found",
    "unsupported model",
    "context length exceeded",
    "context_exceeded",
    "maximum context length",
    "malformed config",
    "malformed configuration",
)
_GENERIC_RETRYABLE = ("server error", "internal server error")
_INTERRUPTED = ("chat interrupted", "request interrupted", "operation interrupted")
_STATE_MISMATCH = ("internal state mismatch",)
_STREAM_CLOSED_EARLY = ("stream closed before message_stop", "stream closed before terminal event")
_PROVIDER_DISABLED = ("provider_disabled",)
_DEADLINE = ("deadline exceeded",)

# Anthropic reports in-stream errors on a 200 response; their type names the real status.
_ANTHROPIC_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


@dataclass(frozen=True)
class Signals:
    text: str  # lower-cased
    status: int | None
    provider: str | None
    transport: bool  # a connection failure or SDK timeout (no response)
    deadline: bool  # our own deadline passed (not retryable)
    stream_closed_early: bool
    startup_timeout: bool

    def has(self, patterns: tuple[str, ...]) -> bool:
        return any(p in self.text for p in patterns)


def extract_status(text: str) -> int | None:
    """The first HTTP status named in ``text`` (§6.1); host:port and stream ids don't count."""
    lowered = text.lower()
    match = _STATUS_EXPLICIT.search(lowered)
    if match:
        return int(match.group(1) or match.group(2))
    for found in _STATUS_STANDALONE.finditer(lowered):
        start = found.start()
        if start > 0 and lowered[start - 1] == ":":
            continue
        if _STREAM_ID_BEFORE.search(lowered[:start]):
            continue
        return int(found.group(1))
    return None


def provider_hint(text: str) -> str | None:
    lowered = text.lower()
    for provider, needles in _PROVIDER_HINTS:
        if any(n in lowered for n in needles):
            return provider
    return None


def _exception_text(exc: BaseException) -> str:
    parts = [str(exc) or type(exc).__name__]
    for attr in ("type", "code", "error_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, str) and value and value not in parts[0]:
            parts.append(value)
    cause = exc.__cause__
    if cause is not None and str(cause) and str(cause) not in parts[0]:
        parts.append(str(cause))
    return ": ".join(parts)


def _exception_status(exc: BaseException, text: str) -> int | None:
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 400:
        return status
    error_type = getattr(exc, "type", None)
    if isinstance(error_type, str) and error_type in _ANTHROPIC_TYPE_STATUS:
        return _ANTHROPIC_TYPE_STATUS[error_type]
    return extract_status(text)


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The exception types of a failed connection. An SDK not loaded yet (its module is
    imported with the first client of its provider) raised nothing."""
    errors: list[type[BaseException]] = [httpx2.TransportError]
    for sdk in ("openai", "anthropic"):
        module = sys.modules.get(sdk)
        if module is not None:
            errors.append(module.APIConnectionError)
    return tuple(errors)


def signals(exc: BaseException, provider: str | None) -> Signals:
    text = _exception_text(exc)
    transport = isinstance(exc, _transport_errors())
    return Signals(
        text=text.lower(),
        status=_exception_status(exc, text),
        provider=provider or provider_hint(text),
        transport=transport,
        deadline=isinstance(exc, TimeoutError) and not transport,
        stream_closed_early=isinstance(exc, StreamClosedEarly),
        startup_timeout=isinstance(exc, StartupTimeout),
    )


# ---- rules (§6.2) ----------------------------------------------------------------------------


def classify(exc: BaseException, provider: str | None) -> ClassifiedError:
    """Classify a failed model call. ``provider`` is the chat's provider when known.

    A :class:`ProviderError` is already classified: its error is returned (with ``provider``).
    """
    if isinstance(exc, ProviderError):
        return with_provider(exc.error, provider) if provider else exc.error
    s = signals(exc, provider)
    kind, retryable = _rule(s)
    return _build(kind, retryable, s.provider, s.status, _truncate(_exception_text(exc)), exc)


def _rule(s: Signals) -> tuple[ChatErrorKind, bool]:
    K = ChatErrorKind
    config = s.has(_CONFIG)
    if s.has(_INTERRUPTED):
        return K.generic, False  # 0a
    if s.has(_STATE_MISMATCH):
        return K.generic, False  # 0b
    if s.stream_closed_early or s.has(_STREAM_CLOSED_EARLY):
        return K.timeout, True  # 0c
    if s.startup_timeout:
        return K.startup_timeout, True  # 0d
    if s.status == 529 or s.has(_OVERLOADED):
        return K.overloaded, True  # 1
    if s.has(_USAGE_LIMIT_ANY_STATUS) or (s.status != 429 and s.has(_USAGE_LIMIT)):
        return K.usage_limit, False  # 2
    if s.status == 401 or s.has(_AUTH_STRONG):
        return K.auth, False  # 3
    if (s.status == 403 or s.has(_AUTH_WEAK)) and not config:
        return K.auth, False  # 4
    if (s.status == 429 or s.has(_RATE_LIMIT)) and not config:
        return K.rate_limit, True  # 5
    if s.has(_PROVIDER_DISABLED):
        return K.provider_disabled, False  # 6
    if not config:
        if s.deadline or (s.has(_DEADLINE) and s.status is None and not s.transport):
            return K.timeout, False  # 7, our own deadline
        if (
            s.transport
            or s.status in (408, 502, 503, 504)
            or s.has(_HTTP2_RESET)
            or s.has(_TIMEOUT)
        ):
            return K.timeout, True  # 7
    if config:
        return K.config, False  # 8
    if s.status == 500 or s.has(_GENERIC_RETRYABLE):
        return K.generic, True  # 9
    # 10 (cancelled) and 11 (anything else) differ only in the message: see user_message.
    return K.generic, False


def _truncate(text: str) -> str:
    return text if len(text) <= DETAIL_MAX_RUNES else text[:DETAIL_MAX_RUNES] + "…"


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            seconds = float(raw) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def _build(
    kind: ChatErrorKind,
    retryable: bool,
    provider: str | None,
    status: int | None,
    detail: str,
    exc: BaseException | None,
) -> ClassifiedError:
    err = ClassifiedError(
        kind=kind,
        retryable=retryable,
        message="",
        detail=detail,
        provider=provider,
        status_code=status,
        retry_after=_retry_after(exc) if exc is not None else None,
    )
    return dataclasses.replace(err, message=user_message(err))


# ---- messages (§6.3, our own words) ----------------------------------------------------------


def subject(provider: str | None) -> str:
    if provider and provider in PROVIDER_DISPLAY_NAMES:
        return PROVIDER_DISPLAY_NAMES[provider]
    return "the AI provider"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cancelled(err: ClassifiedError) -> bool:
    """Rules 0a and 10: an interrupted or cancelled request."""
    detail = err.detail.lower()
    return err.kind == ChatErrorKind.generic and (
        any(p in detail for p in _INTERRUPTED) or "cancel" in detail
    )


def user_message(err: ClassifiedError) -> str:
    """The message shown on the chat (with advice on what to do)."""
    who = subject(err.provider)
    K = ChatErrorKind
    if err.kind == K.overloaded:
        return f"{_cap(who)} is overloaded right now. chatd will try again shortly."
    if err.kind == K.rate_limit:
        return f"{_cap(who)} is limiting how many requests we can send. Wait a moment and retry."
    if err.kind == K.timeout:
        if not err.retryable and err.status_code is None:
            return "The request to the model took too long and was stopped."
        return f"{_cap(who)} is not reachable at the moment. Try again in a little while."
    if err.kind == K.startup_timeout:
        return f"{_cap(who)} did not start answering in time. Try again in a little while."
    if err.kind == K.usage_limit:
        return f"The usage quota for {who} has run out. Check the account's billing and limits."
    if err.kind == K.auth:
        return f"{_cap(who)} did not accept the credentials. Check the API key and its permissions."
    if err.kind == K.config:
        return (
            f"{_cap(who)} refused this model configuration. "
            "Check the model name and the provider settings."
        )
    if err.kind == K.missing_key:
        return "The API key this chat was using is no longer available. Send your message again."
    if err.kind == K.provider_disabled:
        return (
            f"An administrator has turned off {who}. Ask them to enable it, or pick another model."
        )
    if _cancelled(err):
        return "The request was cancelled."
    if not err.retryable and err.status_code is None:
        return "Something unexpected went wrong while talking to the model."
    return f"{_cap(who)} answered with an unexpected error."


def retry_message(err: ClassifiedError) -> str:
    """The shorter text of a ``retry`` event (no advice: chatd is already retrying)."""
    who = _cap(subject(err.provider))
    K = ChatErrorKind
    if err.kind == K.overloaded:
        return f"{who} is overloaded."
    if err.kind == K.rate_limit:
        return f"{who} is rate-limiting requests."
    if err.kind == K.timeout:
        return f"{who} is temporarily unavailable."
    if err.kind == K.startup_timeout:
        return f"{who} did not start answering in time."
    return f"{who} answered with an unexpected error."


def with_provider(err: ClassifiedError, provider: str) -> ClassifiedError:
    """The same error, attributed to ``provider`` (the message names it)."""
    updated = dataclasses.replace(err, provider=provider)
    return dataclasses.replace(updated, message=user_message(updated))


# ---- errors made outside the classifier ------------------------------------------------------


def missing_key_error(provider: str | None) -> ClassifiedError:
    return _build(ChatErrorKind.missing_key, False, provider, None, "", None)


def provider_disabled_error(provider: str | None) -> ClassifiedError:
    return _build(ChatErrorKind.provider_disabled, False, provider, None, "", None)


def startup_timeout_error(provider: str | None) -> ClassifiedError:
    return _build(ChatErrorKind.startup_timeout, True, provider, None, "", None)


def config_error(provider: str | None, detail: str) -> ClassifiedError:
    """A model that cannot be used as configured (unknown provider, bad settings)."""
    return _build(ChatErrorKind.config, False, provider, None, _truncate(detail), None)
