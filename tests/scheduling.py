"""The order in which ``make test`` hands test files to its two workers.

``pytest -n 2 --dist loadfile`` gives each worker whole files, one at a time from a queue, and
a worker takes its next file while it still has a test or two to run: a file queued behind
another on one worker cannot go to the other. So the run ends well only if the queue ends
with short files. The files that start real processes (tests marked ``slow``: the end-to-end
tests and the browser specs, some over a minute each) are queued first, those with the most
tests first; then every other file, the most tests first. ``make test`` passes
``--no-loadscope-reorder``, so that xdist keeps this order instead of sorting every file by
its number of tests alone (which queued the one-item browser specs and end-to-end files last,
where they ran while the other worker sat idle).

The order of the tests inside a file is kept.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def key(name: str) -> tuple[bool, int]:
        tests = files[name]
        starts_processes = any(t.get_closest_marker("slow") is not None for t in tests)
        return (not starts_processes, -len(tests))

    # sorted() is stable: files that tie keep their collection order on every worker.
    items[:] = [item for name in sorted(files, key=key) for item in files[name]]
