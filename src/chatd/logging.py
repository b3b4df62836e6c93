"""structlog: JSON lines in production, readable output in a terminal, from ``level`` up."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

# The id of the request being handled (set by chatd.api.boundary); every line logged while
# handling it carries it. One context variable: structlog's bound_contextvars costs ~10x more.
REQUEST_ID: ContextVar[str | None] = ContextVar("chatd_request_id", default=None)


def add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def configure_logging(log_format: str = "auto", level: str = "info") -> None:
    threshold = logging.getLevelNamesMapping()[level.upper()]
    use_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_request_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
    logging.basicConfig(level=threshold, stream=sys.stderr, format="%(name)s %(message)s")
    # Alembic narrates every plugin and revision; only problems are interesting here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
