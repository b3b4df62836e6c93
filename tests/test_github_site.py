"""Which remotes and pull-request URLs are on the configured GitHub."""

from __future__ import annotations

import pytest

from chatd.github_site import GITHUB_COM, GitHubSite, PullRef, Repo
from chatd.settings import Settings

ENTERPRISE = GitHubSite("https://GHE.corp.example:8443/")


@pytest.mark.parametrize(
    "origin",
    [
        "https://github.com/acme/app",
        "https://github.com/acme/app.git",
        "https://github.com/acme/app/",
        "http://github.com/acme/app.git",
        "https://x-access-token:secret@github.com/acme/app.git",
        "https://GitHub.COM/acme/app",
        "git@github.com:acme/app.git",
        "git@github.com:acme/app",
        "github.com:acme/app.git",
        "ssh://git@github.com/acme/app.git",
        "ssh://git@github.com:22/acme/app",
        " https://github.com/acme/app.git\n",
    ],
)
def test_github_com_remotes(origin: str) -> None:
    assert GITHUB_COM.repo(origin) == Repo("acme", "app")


@pytest.mark.parametrize(
    "origin",
    [
        "",
        "https://git.example.com/acme/app.git",
        "https://github.com.evil.example/acme/app",
        "https://github.com/acme",
        "https://github.com/acme/app/tree/main",
        "git@github.com:acme/app/extra.git",
        "git@github.com:/acme/app.git",
        "file:///srv/github.com/acme/app",
        "/home/me/github.com/acme/app",
        "https://github.com:notaport/acme/app",
        "https://github.com/acme/app?x=1",
    ],
)
def test_not_github_com_remotes(origin: str) -> None:
    assert GITHUB_COM.repo(origin) is None


def test_an_enterprise_site_matches_its_own_host_only() -> None:
    assert ENTERPRISE.web_url == "https://GHE.corp.example:8443"
    assert ENTERPRISE.host == "ghe.corp.example"
    assert ENTERPRISE.api_url == "https://GHE.corp.example:8443/api/v3"
    assert ENTERPRISE.repo("git@ghe.corp.example:acme/app.git") == Repo("acme", "app")
    assert ENTERPRISE.repo("https://ghe.corp.example:8443/acme/app") == Repo("acme", "app")
    assert ENTERPRISE.repo("https://github.com/acme/app") is None
    assert ENTERPRISE.branch_url("git@ghe.corp.example:acme/app.git", "feat/x") == (
        "https://GHE.corp.example:8443/acme/app/tree/feat/x"
    )
    assert GITHUB_COM.api_url == "https://api.github.com"


def test_pull_request_urls() -> None:
    app = Repo("acme", "app")
    assert GITHUB_COM.pull("https://github.com/acme/app/pull/42") == PullRef(app, 42)
    assert GITHUB_COM.pull("HTTPS://GITHUB.COM/acme/app/pull/7/") == PullRef(app, 7)
    for url in (
        "https://github.com/acme/app/pulls/42",
        "https://github.com/acme/app/pull/x",
        "https://github.com/acme/app/pull/42/files",
        "https://github.com/acme/app/pull/42?diff=split",
        "https://gitlab.com/acme/app/pull/42",
        "ftp://github.com/acme/app/pull/42",
        "",
    ):
        assert GITHUB_COM.pull(url) is None, url
    assert ENTERPRISE.pull("https://ghe.corp.example:8443/a/b/pull/1") == PullRef(Repo("a", "b"), 1)


def test_branch_urls() -> None:
    assert GITHUB_COM.branch_url("git@github.com:acme/app.git", "main") == (
        "https://github.com/acme/app/tree/main"
    )
    assert GITHUB_COM.branch_url("git@github.com:acme/app.git", "") is None
    assert GITHUB_COM.branch_url("https://git.example.com/acme/app", "main") is None


def test_settings_name_the_site_and_its_api() -> None:
    default = Settings()
    assert default.github_site() == GITHUB_COM
    assert default.resolved_github_api_url() == "https://api.github.com"
    enterprise = Settings(github_url="https://ghe.example/")
    assert enterprise.github_site().host == "ghe.example"
    assert enterprise.resolved_github_api_url() == "https://ghe.example/api/v3"
    custom = Settings(github_url="https://ghe.example", github_api_url="http://127.0.0.1:9/")
    assert custom.resolved_github_api_url() == "http://127.0.0.1:9"
    with pytest.raises(ValueError):
        Settings(github_url="ghe.example")
    with pytest.raises(ValueError):
        Settings(github_api_url="ftp://ghe.example")
