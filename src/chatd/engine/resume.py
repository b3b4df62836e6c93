"""Where a claimed turn stands: one that already ended is finished, not run again.

A chat is claimed with its turn unfinished when the worker that ran it died (stale recovery
puts it back to pending) or shut down (it goes back to pending itself). The committed messages
say how far that turn got:

* the user's message ends them: nothing of the turn was saved; run it.
* tool results end them: a step was saved, the next was not; run on (the model continues from
  the results), unless a stop-after tool succeeded in that step: then the turn is done.
* an assistant message without open tool calls ends them: the model had stopped and only the
  finishing transaction was lost; the turn is done (the worker's finish then ends the chat
  waiting, promoting the queue head if any) and the model is not asked again.
* an assistant message whose open calls are all client-side tools: ``requires_action``, as
  the finish would have said. An open call of a built-in tool runs on: a ``wait_agent`` call
  left open by a turn parked for its sub-agents is made again (:func:`open_calls`); any other
  (none is saved without its result) the prompt answers as interrupted.

The check reads the prompt rows the turn reads anyway, so a turn after a user message costs no
extra statement. Only a prompt that ends with a context summary (the worker stopped right
after compacting) reads the plain rows the summary replaced.

A step stopped by a shutdown is saved only when it has tool calls (the turn's save of an
interrupted step, :mod:`chatd.engine.turn`): a text-only partial answer would read here as a
finished turn.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatd.engine.prompt import args_object, content_parts
from chatd.llm.types import ToolCallContent
from chatd.store.messages import history_tail
from chatd.store.sql import Connection
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome

Row = Mapping[Any, Any]


async def ended_turn(
    conn: Connection,
    chat_id: uuid.UUID,
    prompt_rows: Sequence[Row],
    is_dynamic: Callable[[str], bool],
    stops_turn: Callable[[str], bool] = lambda name: False,
) -> TurnOutcome | None:
    """The outcome of a turn that already ended, or None when it must run (module docstring).

    ``prompt_rows``: the chat's prompt rows as the turn read them; ``is_dynamic``: whether a
    tool name is one of the chat's client-side tools this turn; ``stops_turn``: whether its
    success ends the turn.
    """
    rows: Sequence[Row] = prompt_rows
    if rows and rows[-1]["compressed"]:  # a context summary: the turn's rows precede it
        rows = await history_tail(conn, chat_id)
    return outcome_of(rows, is_dynamic, stops_turn)


def outcome_of(
    rows: Sequence[Row],
    is_dynamic: Callable[[str], bool],
    stops_turn: Callable[[str], bool] = lambda name: False,
) -> TurnOutcome | None:
    """:func:`ended_turn` on the rows of a history (oldest first)."""
    answered: set[str] = set()
    stopped = False
    last = len(rows) - 1
    while last >= 0 and rows[last]["role"] == "tool":
        answered |= _answered(rows[last])
        stopped = stopped or _stopped(rows[last], stops_turn)
        last -= 1
    if last < 0 or rows[last]["role"] != "assistant":
        return None
    open_calls = [c for c in _calls(rows[last]) if c.id not in answered]
    if not open_calls:
        ends_with_results = last < len(rows) - 1
        return None if ends_with_results and not stopped else TurnOutcome(OutcomeKind.done)
    if all(is_dynamic(c.name) for c in open_calls):
        return TurnOutcome(OutcomeKind.requires_action, tool_calls=open_calls)
    return None


@dataclass(frozen=True)
class OpenCalls:
    """The last step's calls that have no result, and when that step was saved."""

    calls: list[ToolCallContent]
    called_at: dt.datetime


def open_calls(rows: Sequence[Row]) -> OpenCalls | None:
    """The calls without a result of the assistant message the history ends with (its tool
    results aside), as a turn parked for its sub-agents leaves them; None when there are none."""
    answered: set[str] = set()
    last = len(rows) - 1
    while last >= 0 and rows[last]["role"] == "tool":
        answered |= _answered(rows[last])
        last -= 1
    if last < 0 or rows[last]["role"] != "assistant":
        return None
    calls = [c for c in _calls(rows[last]) if c.id not in answered]
    return OpenCalls(calls, rows[last]["created_at"]) if calls else None


def _calls(row: Row) -> list[ToolCallContent]:
    """The tool calls the turn answers itself (a provider-executed one carries its result)."""
    return [
        ToolCallContent(
            id=str(p.get("tool_call_id") or ""),
            name=str(p.get("tool_name") or ""),
            args_json=args_object(p.get("args")),
        )
        for p in content_parts(row)
        if p.get("type") == "tool-call" and not p.get("provider_executed")
    ]


def _stopped(row: Row, stops_turn: Callable[[str], bool]) -> bool:
    """The row holds a successful result of a tool whose success ends the turn."""
    return any(
        p.get("type") == "tool-result"
        and not p.get("is_error")
        and stops_turn(str(p.get("tool_name") or ""))
        for p in content_parts(row)
    )


def _answered(row: Row) -> set[str]:
    return {
        str(p.get("tool_call_id") or "")
        for p in content_parts(row)
        if p.get("type") == "tool-result"
    }
