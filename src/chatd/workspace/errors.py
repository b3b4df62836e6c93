"""What the workspace layer raises for input its caller must change."""

from __future__ import annotations


class WorkspaceInputError(Exception):
    """Input the caller must change (unknown template, bad parameter, refused clone URL);
    ``message`` is fit for a 400 answer and for a tool error, ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class WorkspaceExists(WorkspaceInputError):
    """The owner has a workspace of that name already (a conflict, not a bad value)."""
