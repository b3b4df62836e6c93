"""Where the secret key comes from (chatd.secret_key) and the private files it lives in."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.private_files import create_private_file, private_dir, replace_private_file
from chatd.secret_key import (
    env_keys,
    key_file,
    load_secret_box,
    next_key_file,
)
from chatd.secretbox import SecretBox, SecretKeyError, encode_key, key_id, parse_key

A, B = bytes(range(32)), bytes(range(1, 33))


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


def test_the_environment_key_is_used_as_is(tmp_path: Path) -> None:
    box = load_secret_box(encode_key(A), tmp_path / "data")
    assert box.key_id == key_id(A) and box.key_ids == {key_id(A)}
    assert not (tmp_path / "data").exists()  # no key file is made


def test_several_environment_keys_the_first_seals(tmp_path: Path) -> None:
    box = load_secret_box(f"{encode_key(B)}, {encode_key(A)}", tmp_path)
    assert box.key_id == key_id(B) and box.key_ids == {key_id(A), key_id(B)}


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ("short", "CHATD_SECRET_KEY must encode exactly 32 bytes"),
        (f"{encode_key(A)},", "has an empty entry"),
        (f"{encode_key(A)},nope!", "CHATD_SECRET_KEY (key 2 of 2) is not base64url"),
    ],
)
def test_a_malformed_environment_key_says_what_is_wrong(value: str, complaint: str) -> None:
    with pytest.raises(SecretKeyError) as raised:
        env_keys(value)
    assert complaint in str(raised.value)


def test_without_one_a_key_file_is_made_once_0600_in_a_0700_dir(
    tmp_path: Path, open_umask: None
) -> None:
    data = tmp_path / "deep" / "data"
    first = load_secret_box("", data)
    path = key_file(data)
    assert mode(path) == 0o600 and mode(data) == 0o700 and mode(data.parent) == 0o700
    assert first.key_id == key_id(parse_key(path.read_text(), "file"))
    again = load_secret_box("", data)
    assert again.key_id == first.key_id
    assert sorted(p.name for p in data.iterdir()) == ["secret.key"]  # no temporary left


def test_a_rotation_cut_short_leaves_both_keys_usable(tmp_path: Path) -> None:
    current = load_secret_box("", tmp_path)
    sealed = current.seal("sk", "row")
    create_private_file(next_key_file(tmp_path), (encode_key(B) + "\n").encode())
    during = load_secret_box("", tmp_path)
    assert during.key_id == current.key_id  # the new key seals only once promoted
    assert during.key_ids == {current.key_id, key_id(B)}
    assert during.open(sealed, "row") == "sk"
    assert during.open(SecretBox(B).seal("sk2", "row"), "row") == "sk2"


def test_processes_racing_to_make_the_key_file_agree_on_one_key(tmp_path: Path) -> None:
    boxes: list[SecretBox] = []
    start = threading.Barrier(8)

    def load() -> None:
        start.wait()
        boxes.append(load_secret_box("", tmp_path))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({box.key_id for box in boxes}) == 1 and len(boxes) == 8
    assert [p.name for p in tmp_path.iterdir()] == ["secret.key"]


def test_a_private_file_is_never_replaced_by_create(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "f"
    create_private_file(path, b"one")
    with pytest.raises(FileExistsError):
        create_private_file(path, b"two")
    assert path.read_bytes() == b"one" and mode(path) == 0o600
    replace_private_file(path, b"three")
    assert path.read_bytes() == b"three" and mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_an_existing_wide_directory_or_key_file_is_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    path = key_file(data)
    path.write_text(encode_key(A))
    os.chmod(path, 0o644)
    box = load_secret_box("", private_dir(data))
    assert box.key_id == key_id(A)
    assert mode(data) == 0o700 and mode(path) == 0o600
