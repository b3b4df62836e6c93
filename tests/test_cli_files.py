"""The CLI's session file and the data directory's lock file: private from their creation."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer

from chatd.cli.server import lock_data_dir
from chatd.cli.session import Session, load_session, save_session


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that takes nothing away: the modes seen are the ones chatd asked for."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home" / ".config" / "chatd"
    monkeypatch.setenv("CHATD_CONFIG_DIR", str(path))
    return path


def test_the_session_file_is_0600_in_a_0700_dir(config_dir: Path, open_umask: None) -> None:
    path = save_session(Session(url="http://127.0.0.1:3000", token="id-secret"))
    assert path == config_dir / "session.json"
    assert mode(path) == 0o600 and mode(config_dir) == 0o700
    assert mode(config_dir.parent) == 0o700  # made for it, so private too
    assert load_session() == Session(url="http://127.0.0.1:3000", token="id-secret")


def test_saving_again_replaces_the_session_and_leaves_nothing_behind(
    config_dir: Path, open_umask: None
) -> None:
    save_session(Session(url="http://a", token="one"))
    save_session(Session(url="http://b", token="two"))
    assert [p.name for p in config_dir.iterdir()] == ["session.json"]
    path = config_dir / "session.json"
    assert json.loads(path.read_text()) == {"url": "http://b", "token": "two"}
    assert mode(path) == 0o600


def test_a_config_dir_an_older_chatd_left_open_is_narrowed(config_dir: Path) -> None:
    config_dir.mkdir(parents=True)
    os.chmod(config_dir, 0o755)
    save_session(Session(url="http://a", token="t"))
    assert mode(config_dir) == 0o700


def test_the_lock_file_is_0600_and_held_by_one_process(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "data"
    held = lock_data_dir(data)
    try:
        assert mode(data) == 0o700 and mode(data / "chatd.lock") == 0o600
        assert (data / "chatd.lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(typer.Exit):
            lock_data_dir(data)  # flock is per open file: a second open is refused too
    finally:
        held.close()
    lock_data_dir(data).close()  # free again


def test_a_session_file_an_older_chatd_left_readable_is_narrowed_when_read(
    config_dir: Path,
) -> None:
    config_dir.mkdir(parents=True)
    path = config_dir / "session.json"
    path.write_text(json.dumps({"url": "http://a", "token": "t"}))
    os.chmod(path, 0o644)
    assert load_session() == Session(url="http://a", token="t")
    assert mode(path) == 0o600
