"""Named gates that scripted replies wait behind (the ``wait_for`` key of a script entry).

A test opens a gate when it is ready for the reply: between two model calls of one turn it
can then act (restart a workspace agent, say) before the turn goes on. A gate stays open
once opened, for the replies that come later too.
"""

from __future__ import annotations

import asyncio


class Gates:
    def __init__(self) -> None:
        self._opened: set[str] = set()
        self._events: dict[str, asyncio.Event] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def open(self, name: str) -> None:
        """Open ``name`` for good. Safe to call from any thread."""
        self._opened.add(name)
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # nothing waits yet; a later wait sees it open
        try:
            same_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            same_loop = False
        if same_loop:
            self._wake(name)
        else:
            loop.call_soon_threadsafe(self._wake, name)

    async def wait(self, name: str) -> None:
        """Return once ``name`` is open."""
        if name in self._opened:
            return
        self._loop = asyncio.get_running_loop()
        event = self._events.setdefault(name, asyncio.Event())
        if name not in self._opened:  # opened from another thread meanwhile
            await event.wait()

    def _wake(self, name: str) -> None:
        event = self._events.get(name)
        if event is not None:
            event.set()
