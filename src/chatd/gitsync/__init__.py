"""The pull-request status of chats, kept fresh from GitHub.

- :mod:`~chatd.gitsync.errors`: how a GitHub call fails.
- :mod:`~chatd.gitsync.client`: the REST calls (one ``httpx2`` client per process).
- :mod:`~chatd.gitsync.pulls`: GitHub's pull requests and reviews as diff-status columns.
- :mod:`~chatd.gitsync.schedule`: when a status is refreshed again.
- :mod:`~chatd.gitsync.refresher`: the background service that refreshes due statuses.
- :mod:`~chatd.gitsync.diff`: a chat's pull request and its diff, for the diff endpoint.

Each chat owner's own token (``/api/v2/users/{user}/github-token``) is used for their chats;
a chat whose owner has none is never looked up.
"""
