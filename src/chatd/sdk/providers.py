"""Provider, model-config and model-catalog wire types."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import ClassVar

from pydantic import Field, JsonValue

from chatd.sdk.base import Int32, Int64, RequestModel, StrictBool, StrictFloat, WireModel

# The fixed order providers are listed in, everywhere.
PROVIDER_ORDER: tuple[str, ...] = (
    "anthropic",
    "azure",
    "bedrock",
    "google",
    "openai",
    "openai-compat",
    "openrouter",
    "vercel",
)

PROVIDER_DISPLAY_NAMES: dict[str, str] = {
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "bedrock": "AWS Bedrock",
    "google": "Google",
    "openai": "OpenAI",
    "openai-compat": "OpenAI Compatible",
    "openrouter": "OpenRouter",
    "vercel": "Vercel AI Gateway",
}


class ChatModelProviderUnavailableReason(StrEnum):
    missing_api_key = "missing_api_key"
    fetch_failed = "fetch_failed"
    user_api_key_required = "user_api_key_required"


class ChatModel(WireModel):
    id: str
    provider: str
    model: str
    display_name: str


class ChatModelProvider(WireModel):
    provider: str
    available: bool
    unavailable_reason: ChatModelProviderUnavailableReason | None = None
    models: list[ChatModel]


class ChatModelsResponse(WireModel):
    providers: list[ChatModelProvider]


class ChatProviderConfigSource(StrEnum):
    database = "database"
    env_preset = "env_preset"
    supported = "supported"


class ChatProviderConfig(WireModel):
    id: uuid.UUID
    provider: str
    display_name: str
    enabled: bool
    has_api_key: bool
    central_api_key_enabled: bool
    allow_user_api_key: bool
    allow_central_api_key_fallback: bool
    base_url: str | None = None
    source: ChatProviderConfigSource
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class CreateChatProviderConfigRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"provider"})

    provider: str = ""
    display_name: str | None = None
    api_key: str | None = None
    base_url: str | None = None
    enabled: StrictBool | None = None
    central_api_key_enabled: StrictBool | None = None
    allow_user_api_key: StrictBool | None = None
    allow_central_api_key_fallback: StrictBool | None = None


class UpdateChatProviderConfigRequest(RequestModel):
    display_name: str | None = None
    api_key: str | None = None
    base_url: str | None = None
    enabled: StrictBool | None = None
    central_api_key_enabled: StrictBool | None = None
    allow_user_api_key: StrictBool | None = None
    allow_central_api_key_fallback: StrictBool | None = None


class ChatModelCost(WireModel):
    input_price_per_million_tokens: StrictFloat | None = None
    output_price_per_million_tokens: StrictFloat | None = None
    cache_read_price_per_million_tokens: StrictFloat | None = None
    cache_write_price_per_million_tokens: StrictFloat | None = None


class ChatModelCallConfig(WireModel):
    max_output_tokens: Int64 | None = None
    temperature: StrictFloat | None = None
    top_p: StrictFloat | None = None
    top_k: Int64 | None = None
    presence_penalty: StrictFloat | None = None
    frequency_penalty: StrictFloat | None = None
    cost: ChatModelCost | None = None
    provider_options: dict[str, JsonValue] | None = None


class ChatModelConfig(WireModel):
    id: uuid.UUID
    provider: str
    model: str
    display_name: str
    enabled: bool
    is_default: bool
    context_limit: int
    compression_threshold: int
    model_config_: ChatModelCallConfig | None = Field(default=None, alias="model_config")
    created_at: dt.datetime
    updated_at: dt.datetime


class CreateChatModelConfigRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"provider", "model", "context_limit"})

    provider: str = ""
    model: str = ""
    display_name: str | None = None
    enabled: StrictBool | None = None
    is_default: StrictBool | None = None
    # Bounded like the reference's int64/int32 fields (an overflow is a JSON decode error).
    context_limit: Int64 | None = None
    compression_threshold: Int32 | None = None
    model_config_: ChatModelCallConfig | None = Field(default=None, alias="model_config")


class UpdateChatModelConfigRequest(RequestModel):
    provider: str | None = None
    model: str | None = None
    display_name: str | None = None
    enabled: StrictBool | None = None
    is_default: StrictBool | None = None
    # Bounded like the reference's int64/int32 fields (an overflow is a JSON decode error).
    context_limit: Int64 | None = None
    compression_threshold: Int32 | None = None
    model_config_: ChatModelCallConfig | None = Field(default=None, alias="model_config")


class UserChatProviderConfig(WireModel):
    """A provider that accepts the caller's own API key (BYOK)."""

    provider_id: uuid.UUID
    provider: str
    display_name: str
    has_user_api_key: bool
    has_central_api_key_fallback: bool


class UpsertUserChatProviderKeyRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"api_key"})

    api_key: str = ""
