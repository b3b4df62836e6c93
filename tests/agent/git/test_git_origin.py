"""Remote URLs lose their credentials before they are reported."""

from __future__ import annotations

import pytest

from chatd.agent.git.origin import public_origin


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://x-access-token:ghp_secret@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_secret@github.com/o/r", "https://github.com/o/r"),
        ("http://user:pw@git.example.com:8080/o/r", "http://git.example.com:8080/o/r"),
        ("ssh://git:pw@host.example/o/r.git", "ssh://git@host.example/o/r.git"),
        ("ssh://git@host.example/o/r.git", "ssh://git@host.example/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("https://github.com/o/r", "https://github.com/o/r"),
        ("/srv/repos/r.git", "/srv/repos/r.git"),
        ("", ""),
    ],
)
def test_public_origin(url: str, shown: str) -> None:
    assert public_origin(url) == shown
