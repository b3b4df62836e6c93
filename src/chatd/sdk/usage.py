"""Spend-limit wire types (api-behaviour §9.5)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import ClassVar

from chatd.sdk.base import Int64, RequestModel, WireModel


class ChatUsageLimitOverride(WireModel):
    user_id: uuid.UUID
    username: str
    spend_limit_micros: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ChatUsageLimitConfig(WireModel):
    spend_limit_micros: int | None = None  # present only when limits are enabled
    period: str
    updated_at: dt.datetime | None = None
    unpriced_model_count: int
    overrides: list[ChatUsageLimitOverride]
    group_overrides: list[ChatUsageLimitOverride]


class UpdateChatUsageLimitConfigRequest(RequestModel):
    spend_limit_micros: Int64 | None = None
    period: str | None = None


class UpsertChatUsageLimitOverrideRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"spend_limit_micros"})

    spend_limit_micros: Int64 | None = None


class ChatUsageLimitStatus(WireModel):
    is_limited: bool
    period: str | None = None
    spend_limit_micros: int | None = None
    current_spend: int | None = None
    period_start: dt.datetime | None = None
    period_end: dt.datetime | None = None
