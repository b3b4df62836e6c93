"""Validation of provider and model-config input, with the reference's messages (§9.2-9.3)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chatd.api.errors import bad_request, forbidden
from chatd.authz import Actor
from chatd.catalog import KEYLESS_PROVIDERS, normalize_provider
from chatd.sdk.providers import PROVIDER_ORDER, ChatModelCallConfig

MAX_API_KEY_BYTES = 10_240
DEFAULT_COMPRESSION_THRESHOLD = 70
# Keys of ``model_config.provider_options`` (Azure uses openai's, Bedrock anthropic's).
PROVIDER_OPTION_KEYS = frozenset(
    {"openai", "anthropic", "google", "openaicompat", "openrouter", "vercel"}
)


def require_admin(actor: Actor) -> None:
    """admin-R / admin-U: read or update the deployment config."""
    if not actor.is_admin():
        raise forbidden()


def parse_id(raw: str, message: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise bad_request(message, str(exc)) from None


def provider_name(raw: str) -> str:
    name = normalize_provider(raw)
    if name is None:
        raise bad_request(
            "Invalid provider.", f"Provider must be one of: {', '.join(PROVIDER_ORDER)}."
        )
    return name


def api_key(raw: str) -> str:
    key = raw.strip()
    if len(key.encode()) > MAX_API_KEY_BYTES:
        raise bad_request("API key too large.")
    return key


def base_url(raw: str) -> str:
    url = raw.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request(
            "Invalid provider base URL.", "The base URL must be an absolute http(s) URL."
        )
    return url


@dataclass(frozen=True)
class ProviderState:
    """A provider's credential-relevant settings after a create or an update is applied."""

    provider: str
    api_key: str
    base_url: str
    central_api_key_enabled: bool
    allow_user_api_key: bool
    allow_central_api_key_fallback: bool

    def check(self) -> None:
        if self.provider == "openai-compat" and not self.base_url:
            raise bad_request(
                "Invalid provider base URL.", "The openai-compat provider requires a base URL."
            )
        central = self.central_api_key_enabled
        user = self.allow_user_api_key
        if not central and not user:
            raise _policy(
                "At least one credential source must be enabled: central API key or user API key."
            )
        if self.allow_central_api_key_fallback and not central:
            raise _policy("Central API key fallback requires central API key to be enabled.")
        if self.allow_central_api_key_fallback and not user:
            raise _policy("Central API key fallback requires user API key to be enabled.")
        if central and not self.api_key and self.provider not in KEYLESS_PROVIDERS:
            raise bad_request("API key is required when central API key is enabled.")


def _policy(detail: str) -> Exception:
    return bad_request("Invalid credential policy.", detail)


def model_name(raw: str) -> str:
    model = raw.strip()
    if not model:
        raise bad_request("Model is required.")
    return model


def compression_threshold(value: int | None) -> int:
    if value is None:
        return DEFAULT_COMPRESSION_THRESHOLD
    if not 0 <= value <= 100:
        raise bad_request(
            "Invalid compression threshold.", "compression_threshold must be between 0 and 100."
        )
    return value


def call_options(config: ChatModelCallConfig | None) -> dict[str, Any]:
    """The options column for ``config``; 400 ``Invalid model config.`` when out of range."""
    if config is None:
        return {}
    problem = _call_config_problem(config)
    if problem is not None:
        raise bad_request("Invalid model config.", problem)
    dumped: dict[str, Any] = config.model_dump(mode="json")
    return dumped


def _call_config_problem(c: ChatModelCallConfig) -> str | None:
    floats = {
        "temperature": c.temperature,
        "top_p": c.top_p,
        "presence_penalty": c.presence_penalty,
        "frequency_penalty": c.frequency_penalty,
    }
    for name, number in floats.items():
        if number is not None and not math.isfinite(number):
            return f"{name} must be a finite number."
    if c.max_output_tokens is not None and c.max_output_tokens <= 0:
        return "max_output_tokens must be greater than zero."
    if c.temperature is not None and c.temperature < 0:
        return "temperature must not be negative."
    if c.top_p is not None and not 0 <= c.top_p <= 1:
        return "top_p must be between 0 and 1."
    if c.top_k is not None and c.top_k < 0:
        return "top_k must not be negative."
    if c.cost is not None:
        for name, price in c.cost.model_dump().items():
            if price is not None and (not math.isfinite(price) or price < 0):
                return f"cost.{name} must not be negative."
    for key, value in (c.provider_options or {}).items():
        if key not in PROVIDER_OPTION_KEYS:
            return f"Unknown provider_options key {key!r}."
        if not isinstance(value, dict):
            return f"provider_options.{key} must be an object."
    return None
