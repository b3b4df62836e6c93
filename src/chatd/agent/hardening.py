"""Limits the agent sets on itself before it serves: commands it starts inherit them."""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("chatd.agent")

# A user's processes at once, for commands that fork without end (the kernel does not
# apply it to root, so stopping a whole process group stays the real defence).
DEFAULT_MAX_USER_PROCESSES = 4096
_PR_SET_DUMPABLE = 4


def limit_processes(maximum: int) -> None:
    """Lower RLIMIT_NPROC to ``maximum`` (0: leave it), the hard limit with the soft one so
    that a command cannot raise it back (``ulimit -Su unlimited``). A lower limit is kept."""
    if maximum <= 0:
        return
    try:
        import resource
    except ImportError:  # not a POSIX system
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    wanted = maximum if hard == resource.RLIM_INFINITY else min(maximum, hard)
    lower_soft = wanted if soft == resource.RLIM_INFINITY else min(soft, wanted)
    if (lower_soft, wanted) != (soft, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (lower_soft, wanted))
        except (ValueError, OSError) as exc:
            log.warning("cannot limit processes to %d: %s", wanted, exc)


def hide_process_memory() -> None:
    """Make the agent non-dumpable on Linux: commands running as the same user can then no
    longer read its environment (the token it may have been given there) from /proc. Each
    command it starts is dumpable again after its exec."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        log.warning("cannot make the agent non-dumpable: %s", os.strerror(ctypes.get_errno()))
