"""GitHub's pull requests and reviews as diff-status columns; when to refresh again."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from chatd.gitsync.errors import GitHubError, RateLimited
from chatd.gitsync.pulls import choose_pull, review_verdicts, status_columns
from chatd.gitsync.schedule import RefreshPolicy
from chatd.testing.fake_github import FakeGitHub, FakeReview

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)


def review(login: str, state: str) -> dict[str, Any]:
    return {"user": {"login": login}, "state": state}


def summary(number: int, state: str) -> dict[str, Any]:
    return {"number": number, "state": state, "html_url": f"https://github.com/o/r/pull/{number}"}


def test_an_open_pull_request_wins_else_the_newest() -> None:
    assert choose_pull([]) is None
    chosen = choose_pull([summary(9, "closed"), summary(5, "open"), summary(2, "open")])
    assert chosen is not None and chosen.number == 5
    chosen = choose_pull([summary(9, "closed"), summary(5, "closed")])
    assert chosen is not None and chosen.number == 9
    with pytest.raises(GitHubError):
        choose_pull([{"number": "many"}])


@pytest.mark.parametrize(
    ("reviews", "expected"),
    [
        ([], (False, False, 0)),
        ([review("a", "APPROVED")], (True, False, 1)),
        ([review("a", "APPROVED"), review("b", "CHANGES_REQUESTED")], (False, True, 2)),
        # A reviewer's latest verdict counts; a comment leaves it as it was.
        ([review("a", "CHANGES_REQUESTED"), review("a", "APPROVED")], (True, False, 1)),
        ([review("a", "APPROVED"), review("a", "COMMENTED")], (True, False, 1)),
        ([review("a", "APPROVED"), review("a", "DISMISSED")], (False, False, 1)),
        ([review("a", "COMMENTED"), review("b", "COMMENTED")], (False, False, 2)),
        # A pending (unsubmitted) review, and one by a deleted account, are no reviews.
        ([review("a", "PENDING"), {"user": None, "state": "APPROVED"}], (False, False, 0)),
    ],
)
def test_review_verdicts(reviews: list[dict[str, Any]], expected: tuple[bool, bool, int]) -> None:
    assert review_verdicts(reviews) == expected


def test_the_columns_of_a_pull_request_as_github_shows_it() -> None:
    fake = FakeGitHub()
    pull = fake.add_pull(
        "acme",
        "app",
        "feat/x",
        title="Add x",
        draft=True,
        additions=12,
        deletions=3,
        changed_files=2,
        commits=4,
        author="mona",
        base="develop",
        reviews=[FakeReview("a", "APPROVED")],
    )
    reviews = [review(r.login, r.state) for r in pull.reviews]
    assert status_columns(fake.pull_json(pull, full=True), reviews) == {
        "url": "https://github.com/acme/app/pull/1",
        "pull_request_state": "open",
        "pull_request_title": "Add x",
        "pull_request_draft": True,
        "changes_requested": False,
        "additions": 12,
        "deletions": 3,
        "changed_files": 2,
        "author_login": "mona",
        "author_avatar_url": "https://avatars.example.com/mona.png",
        "base_branch": "develop",
        "head_branch": "feat/x",
        "pr_number": 1,
        "commits": 4,
        "approved": True,
        "reviewer_count": 1,
    }
    merged = fake.add_pull("acme", "app", "feat/y", state="closed", merged=True)
    closed = fake.add_pull("acme", "app", "feat/z", state="closed")
    assert status_columns(fake.pull_json(merged, full=True), [])["pull_request_state"] == "merged"
    assert status_columns(fake.pull_json(closed, full=True), [])["pull_request_state"] == "closed"
    with pytest.raises(GitHubError):
        status_columns({"number": 1}, [])


def test_refresh_intervals() -> None:
    policy = RefreshPolicy()
    assert policy.after_success("open") == 2 * MIN
    assert policy.after_success("merged") == policy.after_success("closed") == 30 * MIN
    assert policy.after_success(None) == 5 * MIN
    backoff = [policy.after_failure(n) for n in range(1, 8)]
    assert backoff == [MIN, 2 * MIN, 4 * MIN, 8 * MIN, 16 * MIN, 30 * MIN, 30 * MIN]
    assert policy.after_failure(10_000) == 30 * MIN


def test_a_rate_limit_waits_for_its_reset() -> None:
    policy = RefreshPolicy()
    reset = NOW.timestamp() + 600
    assert policy.after_rate_limit(NOW, RateLimited("x", reset_at=reset), 1) == NOW + 10 * MIN
    assert policy.after_rate_limit(NOW, RateLimited("x", retry_after=90), 1) == NOW + 90 * MIN / 60
    # A reset already past waits a second; one days away is not believed past the hour.
    past = RateLimited("x", reset_at=NOW.timestamp() - 5)
    assert policy.after_rate_limit(NOW, past, 1) == NOW + dt.timedelta(seconds=1)
    far = RateLimited("x", reset_at=NOW.timestamp() + 86_400 * 3)
    assert policy.after_rate_limit(NOW, far, 1) == NOW + 60 * MIN
    # Without a word from GitHub: the backoff.
    assert policy.after_rate_limit(NOW, RateLimited("x"), 3) == NOW + 4 * MIN
