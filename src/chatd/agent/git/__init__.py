"""The workspace's git state: every repository's branch, origin and diff, pushed to
subscribers as it changes (:class:`GitWatcher`)."""

from chatd.agent.git.diff import DiffLimits
from chatd.agent.git.watcher import GitWatcher

__all__ = ["DiffLimits", "GitWatcher"]
