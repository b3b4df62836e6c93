"""Which git remotes and pull-request URLs belong to the configured GitHub (pure functions).

A :class:`GitHubSite` is the web address of github.com or of a GitHub Enterprise server. A
remote origin is on it when its host is the site's host, whatever the form::

    https://[user@]HOST[:port]/OWNER/REPO[.git]
    git@HOST:OWNER/REPO[.git]                  (scp-like; any user)
    ssh://[user@]HOST[:port]/OWNER/REPO[.git]

This module imports nothing of chatd's: the store (to derive branch URLs), the API and the
GitHub client all use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

GITHUB_COM_URL = "https://github.com"
GITHUB_COM_API_URL = "https://api.github.com"
_SCP_LIKE = re.compile(r"^(?:[^@/:]+@)?(?P<host>[^/:]+):(?P<path>[^/].*)$")
_REMOTE_SCHEMES = frozenset({"http", "https", "ssh", "git", "git+ssh"})
_PULL_PATH = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/pull/(?P<number>\d+)/?$")


@dataclass(frozen=True)
class Repo:
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class PullRef:
    repo: Repo
    number: int


@dataclass(frozen=True)
class GitHubSite:
    """``web_url`` is ``scheme://host[:port]`` (a trailing slash is dropped)."""

    web_url: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "web_url", self.web_url.strip().rstrip("/"))

    @property
    def host(self) -> str:
        return (urlsplit(self.web_url).hostname or "").lower()

    @property
    def api_url(self) -> str:
        """The REST API base: api.github.com for github.com, else the Enterprise layout."""
        if self.host == "github.com":
            return GITHUB_COM_API_URL
        return f"{self.web_url}/api/v3"

    def repo(self, origin: str) -> Repo | None:
        """The repository a remote origin names, when it is on this site."""
        host_path = _split_remote(origin.strip())
        if host_path is None or host_path[0].lower() != self.host:
            return None
        parts = host_path[1].strip("/").split("/")
        if len(parts) != 2:
            return None
        owner, name = parts[0], parts[1].removesuffix(".git")
        if not owner or not name:
            return None
        return Repo(owner, name)

    def pull(self, url: str) -> PullRef | None:
        """The pull request an ``https://HOST/OWNER/REPO/pull/N`` URL names on this site."""
        try:
            parts = urlsplit(url.strip())
        except ValueError:
            return None
        if parts.scheme.lower() not in ("http", "https") or parts.query or parts.fragment:
            return None
        if (parts.hostname or "").lower() != self.host:
            return None
        match = _PULL_PATH.match(parts.path)
        if match is None:
            return None
        return PullRef(Repo(match["owner"], match["repo"]), int(match["number"]))

    def repo_url(self, repo: Repo) -> str:
        return f"{self.web_url}/{repo.owner}/{repo.name}"

    def branch_url(self, origin: str, branch: str) -> str | None:
        """The web page of ``branch`` when ``origin`` is on this site."""
        repo = self.repo(origin) if branch else None
        return f"{self.repo_url(repo)}/tree/{branch}" if repo else None


GITHUB_COM = GitHubSite(GITHUB_COM_URL)


def _split_remote(origin: str) -> tuple[str, str] | None:
    """(host, path) of a URL-style or scp-like remote."""
    if "://" in origin:
        try:
            parts = urlsplit(origin)
            parts.port  # noqa: B018 (raises ValueError on a bad port)
        except ValueError:
            return None
        if parts.scheme.lower() not in _REMOTE_SCHEMES or not parts.hostname:
            return None
        if parts.query or parts.fragment:
            return None
        return parts.hostname, parts.path
    match = _SCP_LIKE.match(origin)
    if match is None:
        return None
    return match["host"], match["path"]
