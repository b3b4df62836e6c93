"""The shared shape of a fake streamed reply: frames of three kinds.

``delta`` frames carry one piece of reasoning, text or tool arguments (pacing, stamps and faults
count these); ``end`` frames finish the reply (finish reason, usage, terminal event); the rest
(``""``) is structure. Frames are produced lazily, so a stamp is taken when a frame is sent.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chatd.testing.script import Reply

Frame = tuple[str, str]  # (kind, serialised frame)
DELTA, END, STRUCTURE = "delta", "end", ""


def sse_data(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def sse_event(event: str, payload: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(payload, separators=(',', ':'))}\n\n"


def text_piece(reply: Reply, piece: str) -> str:
    return f"[[t={time.time_ns()}]]{piece}" if reply.stamp_deltas else piece
