"""Process groups: each started command leads its own, and stopping a command means
signalling the whole group, again and again until nothing in it runs (a command that keeps
forking cannot outrun the agent)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

# How long a kill keeps sweeping a group that still has live members, and how often.
KILL_ROUNDS = 200
KILL_PAUSE = 0.01


def send(pgid: int, signum: int) -> bool:
    """Signal every process of the group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a member changed user; the rest were signalled
    return True


def alive(pgid: int) -> bool:
    """Whether some process of the group still runs (zombies waiting for a parent that does
    not reap them do not count)."""
    if not send(pgid, 0):
        return False
    if not sys.platform.startswith("linux"):
        return True
    return any(_member_running(entry, pgid) for entry in _proc_entries())


async def kill(pgid: int) -> bool:
    """SIGKILL the group until no member runs; False if members survived every round."""
    for _ in range(KILL_ROUNDS):
        if not send(pgid, signal.SIGKILL) or not alive(pgid):
            return True
        await asyncio.sleep(KILL_PAUSE)
    return not alive(pgid)


def _proc_entries() -> list[str]:
    try:
        return [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _member_running(pid: str, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except OSError:
        return False
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    fields = stat[stat.rfind(b")") + 2 :].split()
    return len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X")
