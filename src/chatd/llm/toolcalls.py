"""Assembling streamed tool calls from OpenAI-style fragments.

OpenAI sends ``index`` on every fragment, the id and name on the first. Ollama and some
proxies omit ``index`` (and sometimes the id), or send a whole call in one chunk. The rules:

* a fragment with a known ``index`` continues that call, unless it brings a different id;
* without ``index``, a fragment with a known id continues that call;
* without ``index`` and without id or name, a fragment continues the latest call;
* anything else starts a new call, so two parallel calls are never merged.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatd.llm.convert import args_problem, normalize_args, sanitize_tool_call_id
from chatd.llm.types import ToolCall, ToolCallDelta


@dataclass
class _Partial:
    id: str
    name: str
    args: str = ""


class ToolCallAssembler:
    def __init__(self) -> None:
        self._calls: list[_Partial] = []
        self._by_index: dict[int, _Partial] = {}
        self._by_id: dict[str, _Partial] = {}

    def feed(
        self, index: int | None, call_id: str | None, name: str | None, args: str | None
    ) -> ToolCallDelta:
        """Take one fragment; returns the delta to publish."""
        call = self._find(index, call_id, name)
        if call is None:
            call = _Partial(id=sanitize_tool_call_id(call_id), name=name or "")
            self._calls.append(call)
            if call_id:
                self._by_id[call_id] = call
        if index is not None:
            self._by_index[index] = call
        if name and not call.name:
            call.name = name
        call.args += args or ""
        return ToolCallDelta(id=call.id, name=call.name, args_delta=args or "")

    def _find(self, index: int | None, call_id: str | None, name: str | None) -> _Partial | None:
        if index is not None:
            known = self._by_index.get(index)
            if known is not None and (not call_id or self._by_id.get(call_id) is known):
                return known
            return self._by_id.get(call_id) if known is None and call_id else None
        if call_id:
            return self._by_id.get(call_id)
        if name or not self._calls:
            return None
        return self._calls[-1]

    def __bool__(self) -> bool:
        return bool(self._calls)

    def complete(self) -> list[ToolCall]:
        """Every call, in the order it started, with its arguments as a JSON object."""
        return [
            ToolCall(
                id=c.id,
                name=c.name,
                args_json=normalize_args(c.args),
                args_error=args_problem(c.args),
            )
            for c in self._calls
        ]
