"""Chat cost summary wire types (api-behaviour §9.5).

Costs are in micros (millionths of a dollar) and count assistant messages only. A message
without a price (``total_cost_micros`` unset) still counts in the token totals and in
``unpriced_message_count``, never in the cost.
"""

from __future__ import annotations

import datetime as dt
import uuid

from chatd.sdk.base import WireModel
from chatd.sdk.usage import ChatUsageLimitStatus


class ChatCostModelBreakdown(WireModel):
    model_config_id: uuid.UUID
    display_name: str
    provider: str
    model: str
    total_cost_micros: int
    message_count: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_read_tokens: int
    total_cache_creation_tokens: int


class ChatCostChatBreakdown(WireModel):
    """One root chat, with the messages of its sub-agent chats counted in."""

    root_chat_id: uuid.UUID
    chat_title: str
    total_cost_micros: int
    message_count: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_read_tokens: int
    total_cache_creation_tokens: int


class ChatCostSummary(WireModel):
    start_date: dt.datetime
    end_date: dt.datetime
    total_cost_micros: int
    priced_message_count: int
    unpriced_message_count: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_read_tokens: int
    total_cache_creation_tokens: int
    by_model: list[ChatCostModelBreakdown]
    by_chat: list[ChatCostChatBreakdown]
    usage_limit: ChatUsageLimitStatus | None = None  # left out when no spend limit applies


class ChatCostUserRollup(WireModel):
    user_id: uuid.UUID
    username: str
    name: str
    avatar_url: str
    total_cost_micros: int
    message_count: int
    chat_count: int  # root chats, sub-agent chats counted in their root's
    total_input_tokens: int
    total_output_tokens: int
    total_cache_read_tokens: int
    total_cache_creation_tokens: int


class ChatCostUsersResponse(WireModel):
    start_date: dt.datetime
    end_date: dt.datetime
    count: int  # users with spend in the window (matching ``username``), across all pages
    users: list[ChatCostUserRollup]
