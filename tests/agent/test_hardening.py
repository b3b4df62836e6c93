"""The limits the agent sets on itself, seen in a child Python (they cannot be undone)."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

_PROBE = """
import resource, sys
from chatd.agent.hardening import limit_processes
first_hard = int(sys.argv[1])
if first_hard:
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    resource.setrlimit(resource.RLIMIT_NPROC, (min(soft, first_hard), first_hard))
limit_processes(int(sys.argv[2]))
print(*resource.getrlimit(resource.RLIMIT_NPROC))
soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
try:  # what "ulimit -Su unlimited" asks
    resource.setrlimit(resource.RLIMIT_NPROC, (resource.RLIM_INFINITY, hard))
except ValueError:
    print(1)
else:
    print(0)
"""


def _limits(first_hard: int, maximum: int) -> tuple[int, int, int]:
    """(soft, hard) after ``limit_processes(maximum)``, and 1 when the soft limit could not
    be raised without end afterwards (else 0)."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(first_hard), str(maximum)],
        capture_output=True,
        text=True,
        check=True,
    )
    soft, hard, raised = (int(word) for word in done.stdout.split())
    return soft, hard, raised


def _high(limit: int) -> bool:
    return limit == resource.RLIM_INFINITY or limit > 2000


_LOW_ALREADY = pytest.mark.skipif(
    not all(_high(limit) for limit in resource.getrlimit(resource.RLIMIT_NPROC)),
    reason="the process limit is low already",
)


@_LOW_ALREADY
def test_the_hard_limit_is_lowered_too() -> None:
    soft, hard, raised = _limits(0, 1500)
    assert (soft, hard) == (1500, 1500)
    assert raised == 1  # a command cannot take the soft limit back


@_LOW_ALREADY
def test_a_lower_hard_limit_is_kept() -> None:
    soft, hard, _ = _limits(1200, 1500)
    assert (soft, hard) == (1200, 1200)
