"""A fake GitHub REST API: the pull-request endpoints chatd calls, with GitHub's JSON shapes.

Serves, for the pull requests added with :meth:`FakeGitHub.add_pull`:

- ``GET /repos/{owner}/{repo}/pulls?head=OWNER:BRANCH&state=open|closed|all`` (newest first),
- ``GET /repos/{owner}/{repo}/pulls/{number}`` (JSON, or the unified diff when asked for
  ``application/vnd.github.diff``),
- ``GET /repos/{owner}/{repo}/pulls/{number}/reviews``.

A repository nobody added a pull request to answers 404, as GitHub does for one it does not
show. Switches: :attr:`FakeGitHub.down` (every request answers 503),
:meth:`FakeGitHub.rate_limit` (403 with ``x-ratelimit-remaining: 0`` and the reset time), and
``tokens`` (when given, a request without ``Authorization: Bearer <one of them>`` is 401).
Every request is recorded in :attr:`FakeGitHub.requests`.

Serve it with ``async with serve_fake_github(fake) as url:`` (also :attr:`FakeGitHub.url`
meanwhile) and point chatd's ``CHATD_GITHUB_API_URL`` at ``url``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import socket
import zlib
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

DIFF_MEDIA_TYPE = "application/vnd.github.diff"
DOCS = "https://docs.github.com/rest"
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
STARTUP_TIMEOUT = 10.0


@dataclass
class FakeReview:
    login: str
    state: str  # APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED, PENDING


@dataclass
class FakePull:
    owner: str
    repo: str
    number: int
    branch: str
    title: str = "A change"
    state: str = "open"  # open or closed (a merged one is closed with merged=True)
    draft: bool = False
    merged: bool = False
    base: str = "main"
    author: str = "octocat"
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    commits: int = 1
    reviews: list[FakeReview] = field(default_factory=list)
    diff: str = ""
    created_at: dt.datetime = T0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class FakeGitHub:
    def __init__(
        self, *, tokens: Collection[str] | None = None, web_url: str = "https://github.com"
    ) -> None:
        self.tokens = set(tokens) if tokens is not None else None
        self.web_url = web_url.rstrip("/")
        self.pulls: list[FakePull] = []
        self.requests: list[RecordedRequest] = []
        self.down = False
        self.rate_limited_until: int | None = None  # Unix time
        self.url: str | None = None  # where serve_fake_github serves it
        self._order = itertools.count()
        self.app = Starlette(
            routes=[
                Route("/repos/{owner}/{repo}/pulls", self._list),
                Route("/repos/{owner}/{repo}/pulls/{number:int}", self._get),
                Route("/repos/{owner}/{repo}/pulls/{number:int}/reviews", self._reviews),
            ]
        )

    # ---- state -------------------------------------------------------------------------------

    def add_pull(self, owner: str, repo: str, branch: str, **values: Any) -> FakePull:
        """A new pull request from ``branch``, newer than every one added before and numbered
        after the repository's others."""
        values.setdefault("created_at", T0 + dt.timedelta(minutes=next(self._order)))
        number = 1 + sum(1 for p in self.pulls if (p.owner, p.repo) == (owner, repo))
        pull = FakePull(owner, repo, number, branch, **values)
        self.pulls.append(pull)
        return pull

    def rate_limit(self, until: int | None) -> None:
        """Refuse every request as rate limited until Unix time ``until`` (None: stop)."""
        self.rate_limited_until = until

    def requests_to(self, path_part: str) -> list[RecordedRequest]:
        return [r for r in self.requests if path_part in r.path]

    # ---- JSON shapes -------------------------------------------------------------------------

    def _user(self, login: str) -> dict[str, Any]:
        return {
            "login": login,
            "id": zlib.crc32(login.encode()) % 10_000_000,
            "avatar_url": f"https://avatars.example.com/{login}.png",
            "html_url": f"{self.web_url}/{login}",
            "type": "User",
        }

    def _ref(self, pull: FakePull, branch: str) -> dict[str, Any]:
        return {
            "label": f"{pull.owner}:{branch}",
            "ref": branch,
            "sha": "0" * 40,
            "repo": {"full_name": f"{pull.owner}/{pull.repo}", "name": pull.repo},
        }

    def pull_json(self, pull: FakePull, *, full: bool) -> dict[str, Any]:
        base = f"{self.web_url}/{pull.owner}/{pull.repo}/pull/{pull.number}"
        merged_at = (pull.created_at + dt.timedelta(hours=1)).isoformat() if pull.merged else None
        body: dict[str, Any] = {
            "url": f"https://api.example.com/repos/{pull.owner}/{pull.repo}/pulls/{pull.number}",
            "id": 1000 + pull.number,
            "number": pull.number,
            "html_url": base,
            "diff_url": f"{base}.diff",
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user(pull.author),
            "body": None,
            "created_at": pull.created_at.isoformat(),
            "updated_at": pull.created_at.isoformat(),
            "closed_at": merged_at if pull.state == "closed" else None,
            "merged_at": merged_at,
            "draft": pull.draft,
            "head": self._ref(pull, pull.branch),
            "base": self._ref(pull, pull.base),
        }
        if full:
            body |= {
                "merged": pull.merged,
                "mergeable": None,
                "comments": 0,
                "review_comments": 0,
                "commits": pull.commits,
                "additions": pull.additions,
                "deletions": pull.deletions,
                "changed_files": pull.changed_files,
            }
        return body

    # ---- endpoints ---------------------------------------------------------------------------

    def _refusal(self, request: Request) -> Response | None:
        self.requests.append(
            RecordedRequest(
                request.method,
                request.url.path,
                dict(request.query_params),
                {k.lower(): v for k, v in request.headers.items()},
            )
        )
        if self.down:
            return JSONResponse({"message": "Service Unavailable"}, status_code=503)
        if self.rate_limited_until is not None:
            return JSONResponse(
                {"message": "API rate limit exceeded for user ID 1.", "documentation_url": DOCS},
                status_code=403,
                headers={
                    "x-ratelimit-limit": "5000",
                    "x-ratelimit-remaining": "0",
                    "x-ratelimit-used": "5000",
                    "x-ratelimit-reset": str(self.rate_limited_until),
                },
            )
        if self.tokens is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token not in self.tokens:
                body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
                return JSONResponse(body, status_code=401)
        return None

    def _repo_pulls(self, request: Request) -> list[FakePull] | None:
        owner, repo = request.path_params["owner"], request.path_params["repo"]
        found = [
            p
            for p in self.pulls
            if (p.owner.lower(), p.repo.lower()) == (owner.lower(), repo.lower())
        ]
        return found or None

    async def _list(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        pulls = self._repo_pulls(request)
        if pulls is None:
            return _not_found()
        head = request.query_params.get("head")
        state = request.query_params.get("state", "open")
        per_page = int(request.query_params.get("per_page", "30"))
        chosen = [
            p
            for p in pulls
            if (head is None or head == f"{p.owner}:{p.branch}")
            and (state == "all" or p.state == state)
        ]
        chosen.sort(key=lambda p: p.created_at, reverse=True)
        return JSONResponse([self.pull_json(p, full=False) for p in chosen[:per_page]])

    def _one(self, request: Request) -> FakePull | None:
        number = request.path_params["number"]
        return next((p for p in self._repo_pulls(request) or [] if p.number == number), None)

    async def _get(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        pull = self._one(request)
        if pull is None:
            return _not_found()
        if DIFF_MEDIA_TYPE in request.headers.get("accept", ""):
            return PlainTextResponse(pull.diff, media_type=DIFF_MEDIA_TYPE)
        return JSONResponse(self.pull_json(pull, full=True))

    async def _reviews(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        pull = self._one(request)
        if pull is None:
            return _not_found()
        submitted = pull.created_at
        reviews = []
        for n, review in enumerate(pull.reviews, 1):
            submitted += dt.timedelta(minutes=1)
            reviews.append(
                {
                    "id": 80 + n,
                    "user": self._user(review.login),
                    "body": "",
                    "state": review.state,
                    "submitted_at": None if review.state == "PENDING" else submitted.isoformat(),
                    "commit_id": "0" * 40,
                }
            )
        return JSONResponse(reviews)


def _not_found() -> Response:
    return JSONResponse({"message": "Not Found", "documentation_url": DOCS}, status_code=404)


@asynccontextmanager
async def serve_fake_github(fake: FakeGitHub, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``fake`` in this event loop on a free loopback port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    config = uvicorn.Config(fake.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        fake.url = f"http://{host}:{sock.getsockname()[1]}"
        yield fake.url
    finally:
        fake.url = None
        server.should_exit = True
        await task
        sock.close()
