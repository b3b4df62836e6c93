"""GitHub's pull requests and reviews, read leniently, as diff-status columns (pure)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from chatd.gitsync.errors import GitHubError

OPEN, CLOSED, MERGED = "open", "closed", "merged"
APPROVED, CHANGES_REQUESTED, DISMISSED = "APPROVED", "CHANGES_REQUESTED", "DISMISSED"
# Reviews that leave the reviewer's verdict as it was.
_NO_VERDICT = frozenset({"COMMENTED", "PENDING"})


class _GitHubModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Account(_GitHubModel):
    login: str = ""
    avatar_url: str | None = None


class Ref(_GitHubModel):
    ref: str = ""


class PullSummary(_GitHubModel):
    """An item of a list of pull requests."""

    number: int
    html_url: str
    state: str


class Pull(_GitHubModel):
    """One pull request, as ``GET /repos/{owner}/{repo}/pulls/{number}`` has it."""

    number: int
    html_url: str
    state: str
    title: str = ""
    draft: bool | None = False
    merged: bool | None = False
    merged_at: dt.datetime | None = None
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    commits: int | None = None
    user: Account | None = None
    base: Ref | None = None
    head: Ref | None = None


class Review(_GitHubModel):
    user: Account | None = None
    state: str = ""


def _parse(model: type[_GitHubModel], raw: Mapping[str, Any], what: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise GitHubError(f"{what} is not the shape GitHub documents: {exc}") from None


def choose_pull(pulls: Sequence[Mapping[str, Any]]) -> PullSummary | None:
    """The branch's open pull request if it has one, else its newest (``pulls`` newest
    first)."""
    parsed: list[PullSummary] = [_parse(PullSummary, p, "a pull request") for p in pulls]
    for pull in parsed:
        if pull.state == OPEN:
            return pull
    return parsed[0] if parsed else None


def review_verdicts(reviews: Sequence[Mapping[str, Any]]) -> tuple[bool, bool, int]:
    """(approved, changes requested, reviewers) from reviews oldest first.

    Each reviewer's verdict is their latest approval, request for changes or dismissal
    (comments leave it as it was). Approved: someone approves and nobody requests changes.
    Reviewers: the distinct accounts that submitted a review.
    """
    verdicts: dict[str, str] = {}
    reviewers: set[str] = set()
    for raw in reviews:
        review: Review = _parse(Review, raw, "a review")
        login = review.user.login if review.user else ""
        if not login or review.state == "PENDING":
            continue
        reviewers.add(login)
        if review.state not in _NO_VERDICT:
            verdicts[login] = review.state
    latest = set(verdicts.values())
    changes_requested = CHANGES_REQUESTED in latest
    approved = APPROVED in latest and not changes_requested
    return approved, changes_requested, len(reviewers)


def status_columns(
    raw_pull: Mapping[str, Any], reviews: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """The diff-status columns of a pull request (its own line counts included)."""
    pull: Pull = _parse(Pull, raw_pull, "the pull request")
    approved, changes_requested, reviewer_count = review_verdicts(reviews)
    merged = bool(pull.merged) or pull.merged_at is not None
    return {
        "url": pull.html_url,
        "pull_request_state": MERGED if merged else (OPEN if pull.state == OPEN else CLOSED),
        "pull_request_title": pull.title,
        "pull_request_draft": bool(pull.draft),
        "changes_requested": changes_requested,
        "additions": pull.additions,
        "deletions": pull.deletions,
        "changed_files": pull.changed_files,
        "author_login": pull.user.login if pull.user and pull.user.login else None,
        "author_avatar_url": pull.user.avatar_url if pull.user else None,
        "base_branch": pull.base.ref if pull.base and pull.base.ref else None,
        "head_branch": pull.head.ref if pull.head and pull.head.ref else None,
        "pr_number": pull.number,
        "commits": pull.commits,
        "approved": approved,
        "reviewer_count": reviewer_count,
    }
