"""Sealing and opening secrets (chatd.secretbox): format, bindings, keys."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatd.secretbox import (
    DecryptionFailed,
    SecretBox,
    SecretKeyError,
    UnknownKey,
    encode_key,
    generate_key,
    is_ciphertext,
    key_id,
    key_id_of,
    parse_key,
)

OLD, NEW = bytes(32), bytes(range(32))
ROW = "chat_providers.api_key/1"


def test_a_sealed_value_names_its_format_and_key_and_opens_to_the_plaintext() -> None:
    box = SecretBox(NEW)
    sealed = box.seal("sk-live-123", ROW)
    assert sealed.startswith(f"enc:v1:{key_id(NEW)}:")
    assert "sk-live-123" not in sealed
    assert is_ciphertext(sealed) and key_id_of(sealed) == box.key_id
    assert box.open(sealed, ROW) == "sk-live-123"


def test_every_seal_uses_a_fresh_nonce() -> None:
    box = SecretBox(NEW)
    assert box.seal("same", ROW) != box.seal("same", ROW)


@given(st.text(), st.text())
def test_any_text_round_trips(plaintext: str, binding: str) -> None:
    box = SecretBox(NEW)
    assert box.open(box.seal(plaintext, binding), binding) == plaintext


def test_a_value_copied_to_another_row_does_not_open() -> None:
    box = SecretBox(NEW)
    sealed = box.seal("sk-live-123", ROW)
    with pytest.raises(DecryptionFailed):
        box.open(sealed, "chat_providers.api_key/2")


def test_an_altered_value_does_not_open() -> None:
    box = SecretBox(NEW)
    sealed = box.seal("sk-live-123", ROW)
    head, body = sealed.rsplit(":", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-1] ^= 1
    altered = head + ":" + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(DecryptionFailed):
        box.open(altered, ROW)


def test_a_value_relabelled_with_another_key_id_does_not_open() -> None:
    both = SecretBox(NEW, [OLD])
    sealed = both.seal("sk", ROW)
    relabelled = sealed.replace(key_id(NEW), key_id(OLD), 1)
    with pytest.raises(DecryptionFailed):
        both.open(relabelled, ROW)


def test_plain_text_is_not_a_ciphertext() -> None:
    for value in ("sk-live-123", "enc:v1:zz:abc", "", "enc:v2:00000000:" + "A" * 50):
        assert not is_ciphertext(value)
        with pytest.raises(DecryptionFailed):
            SecretBox(NEW).open(value, ROW)


def test_older_keys_open_but_only_the_current_one_seals() -> None:
    sealed_old = SecretBox(OLD).seal("sk-old", ROW)
    rotating = SecretBox(NEW, [OLD])
    assert rotating.open(sealed_old, ROW) == "sk-old"
    assert key_id_of(rotating.seal("sk", ROW)) == key_id(NEW)
    assert rotating.key_ids == {key_id(NEW), key_id(OLD)}
    with pytest.raises(UnknownKey) as raised:
        SecretBox(NEW).open(sealed_old, ROW)
    assert raised.value.key_id == key_id(OLD)


def test_generated_keys_parse_back_to_32_bytes() -> None:
    text = generate_key()
    assert len(text) == 43
    key = parse_key(text, "CHATD_SECRET_KEY")
    assert len(key) == 32 and encode_key(key) == text
    assert parse_key(text + "=\n", "x") == key  # padding and a trailing newline are fine
    assert generate_key() != text


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "is empty"),
        ("not a key!", "not base64url"),
        (encode_key(bytes(16)), "exactly 32 bytes as 43 base64url characters, not 22"),
        (encode_key(bytes(33)), "exactly 32 bytes as 43 base64url characters, not 44"),
        (base64.b64encode(bytes([251] * 32)).decode(), "not base64url"),  # + and /
    ],
)
def test_malformed_keys_are_refused_with_the_reason(text: str, complaint: str) -> None:
    with pytest.raises(SecretKeyError) as raised:
        parse_key(text, "CHATD_SECRET_KEY")
    assert "CHATD_SECRET_KEY" in str(raised.value) and complaint in str(raised.value)
