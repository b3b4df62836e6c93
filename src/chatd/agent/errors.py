"""The one exception an operation raises to answer with an error frame."""

from __future__ import annotations


class OpError(Exception):
    """An operation that failed; ``code`` is one of the error codes of
    :mod:`chatd.agent.protocol` and ``message`` says in words what went wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
