"""A step's cost in micro-dollars from its usage and the model config's prices (§14)."""

from __future__ import annotations

import math
from decimal import Decimal

from chatd.llm.types import Usage
from chatd.sdk.providers import ChatModelCost


def cost_micros(usage: Usage | None, cost: ChatModelCost | None) -> int | None:
    """``ceil(Σ tokens × USD per 1M tokens)``; ``None`` (unknown) when nothing is priced.

    Reasoning tokens are part of the output tokens and are not added again.
    """
    if usage is None or cost is None:
        return None
    pairs = (
        (usage.input_tokens, cost.input_price_per_million_tokens),
        (usage.output_tokens, cost.output_price_per_million_tokens),
        (usage.cache_read_tokens, cost.cache_read_price_per_million_tokens),
        (usage.cache_creation_tokens, cost.cache_write_price_per_million_tokens),
    )
    priced = [(tokens, price) for tokens, price in pairs if tokens > 0 and price is not None]
    if not priced:
        return None
    total = sum((Decimal(tokens) * Decimal(str(price)) for tokens, price in priced), Decimal(0))
    return math.ceil(total)
