"""Chat file upload and download (api-behaviour §6.3, §6.4, §8.2)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from chatd import filetypes
from chatd.store.db import Database
from chatd.store.tables import chat_files, organization_members, organizations
from chatd.store.users import ORG_ADMIN_ROLE
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

FILES = "/api/experimental/chats/files"
MAX = 10 * 1024 * 1024
NOT_FOUND = "Resource not found or you do not have access to this resource"
ALLOWED_DETAIL = (
    "Allowed types: application/json, application/pdf, image/gif, image/jpeg, image/png, "
    "image/webp, text/csv, text/markdown, text/plain."
)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(32))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(32))
GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(range(32))
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(range(32))
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n\x80\x81\x82\n%%EOF\n"
SVG = b'<?xml version="1.0"?>\n<!-- drawn -->\n<svg xmlns="http://www.w3.org/2000/svg"/>'


def disposition(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


async def upload(
    client: httpx2.AsyncClient,
    user: ApiUser,
    data: bytes,
    *,
    name: str | None = "file.bin",
    content_type: str | None = None,
    org: uuid.UUID | str | None = None,
) -> httpx2.Response:
    headers = dict(user.headers)
    if name is not None:
        headers.update(disposition(name))
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.post(
        FILES, params={"organization": str(org or user.org_id)}, headers=headers, content=data
    )


async def uploaded(client: httpx2.AsyncClient, user: ApiUser, data: bytes, **kw: Any) -> str:
    r = await upload(client, user, data, **kw)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id"}
    return str(uuid.UUID(body["id"]))


async def stored_files(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (await conn.execute(sa.select(sa.func.count()).select_from(chat_files))).scalar_one()
        )


async def other_org(db: Database) -> uuid.UUID:
    org_id = uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            organizations.insert().values(
                id=org_id, name="other", created_at=db.now(), updated_at=db.now()
            )
        )
    return org_id


def assert_error(r: httpx2.Response, status: int, message: str, detail: str | None) -> None:
    assert r.status_code == status, r.text
    body = envelope(r)
    assert body["message"] == message
    assert body.get("detail") == detail


@pytest.mark.parametrize(
    ("data", "name", "declared", "media_type", "inline"),
    [
        (PNG, "a.png", "image/png", "image/png", True),
        (JPEG, "a.jpg", "image/jpeg", "image/jpeg", True),
        (GIF, "a.gif", "image/gif", "image/gif", True),
        (WEBP, "a.webp", "image/webp", "image/webp", True),
        (PDF, "a.pdf", "application/pdf", "application/pdf", False),
        (b"hello\n", "a.txt", "text/plain", "text/plain", True),
        (b'{"a": [1, 2.5, null]}', "a.json", "application/json", "application/json", True),
        (b"# Title\n", "a.md", "text/markdown", "text/markdown", True),
        (b"# Title\n", "a.markdown", "text/markdown", "text/markdown", True),
        (b"a,b\n1,2\n", "a.csv", "text/csv", "text/csv", True),
    ],
    ids=["png", "jpeg", "gif", "webp", "pdf", "text", "json", "md", "markdown", "csv"],
)
async def test_each_allowed_type_round_trips(
    client: httpx2.AsyncClient,
    member: ApiUser,
    data: bytes,
    name: str,
    declared: str,
    media_type: str,
    inline: bool,
) -> None:
    file_id = await uploaded(client, member, data, name=name, content_type=declared)
    r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
    assert r.status_code == 200
    assert r.content == data
    assert r.headers["content-type"] == media_type
    kind = "inline" if inline else "attachment"
    assert r.headers["content-disposition"] == f"{kind}; filename={name}"
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"
    assert r.headers["content-length"] == str(len(data))
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("data", "name", "stored"),
    [
        (PNG, "picture", "image/png"),
        (PDF, "doc.txt", "application/pdf"),
        (b"hi", "x", "text/plain"),
    ],
    ids=["png", "pdf", "text"],
)
async def test_octet_stream_or_no_content_type_defers_to_detection(
    client: httpx2.AsyncClient, member: ApiUser, data: bytes, name: str, stored: str
) -> None:
    for declared in ("application/octet-stream", None):
        file_id = await uploaded(client, member, data, name=name, **_ct(declared))
        r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
        assert r.headers["content-type"] == stored


def _ct(declared: str | None) -> dict[str, str]:
    return {} if declared is None else {"content_type": declared}


@pytest.mark.parametrize(
    ("data", "name", "stored"),
    [
        (b"# notes", "n.md", "text/markdown"),
        (b"a,b", "t.csv", "text/csv"),
        (b"[1, 2]", "d.json", "application/json"),
    ],
)
async def test_text_plain_declared_accepts_specific_text(
    client: httpx2.AsyncClient, member: ApiUser, data: bytes, name: str, stored: str
) -> None:
    file_id = await uploaded(
        client, member, data, name=name, content_type="text/plain; charset=utf-8"
    )
    r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
    assert r.headers["content-type"] == stored


async def test_json_named_file_with_invalid_json_is_plain_text(
    client: httpx2.AsyncClient, member: ApiUser
) -> None:
    file_id = await uploaded(client, member, b"{not json", name="broken.json")
    r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
    assert r.headers["content-type"] == "text/plain"
    r = await upload(
        client, member, b"{not json", name="broken.json", content_type="application/json"
    )
    assert_error(
        r,
        400,
        "File content type does not match Content-Type header.",
        'Header declared "application/json" but file content was detected as "text/plain".',
    )


@pytest.mark.parametrize("declared", [None, "application/octet-stream", "image/png"])
async def test_svg_is_rejected(
    client: httpx2.AsyncClient, member: ApiUser, db: Database, declared: str | None
) -> None:
    r = await upload(client, member, SVG, name="logo.svg", **_ct(declared))
    assert_error(r, 400, "Unsupported file type.", ALLOWED_DETAIL)
    assert await stored_files(db) == 0


async def test_unknown_binary_is_rejected(client: httpx2.AsyncClient, member: ApiUser) -> None:
    r = await upload(client, member, b"\x00\x01\x02binary\xff", name="blob.bin")
    assert_error(r, 400, "Unsupported file type.", ALLOWED_DETAIL)


@pytest.mark.parametrize(
    "declared", ["image/svg+xml", "application/zip", "text/html; charset=utf-8"]
)
async def test_unsupported_declared_type(
    client: httpx2.AsyncClient, member: ApiUser, declared: str
) -> None:
    r = await upload(client, member, b"hello", name="a.txt", content_type=declared)
    assert_error(r, 400, "Unsupported file type.", ALLOWED_DETAIL)


async def test_declared_type_must_match_content(
    client: httpx2.AsyncClient, member: ApiUser
) -> None:
    r = await upload(client, member, b"just text", name="a.png", content_type="image/png")
    assert_error(
        r,
        400,
        "File content type does not match Content-Type header.",
        'Header declared "image/png" but file content was detected as "text/plain".',
    )
    r = await upload(client, member, PNG, name="a.png", content_type="Image/JPEG; q=1")
    assert_error(
        r,
        400,
        "File content type does not match Content-Type header.",
        'Header declared "image/jpeg" but file content was detected as "image/png".',
    )


async def test_organization_parameter(client: httpx2.AsyncClient, member: ApiUser) -> None:
    headers = {**member.headers, **disposition("a.txt")}
    for params in ({}, {"organization": ""}):
        r = await client.post(FILES, params=params, headers=headers, content=b"x")
        assert_error(r, 400, "Missing organization query parameter.", None)
    r = await client.post(FILES, params={"organization": "nope"}, headers=headers, content=b"x")
    assert_error(r, 400, "Invalid organization ID.", None)


async def test_unauthenticated(client: httpx2.AsyncClient, member: ApiUser) -> None:
    client.cookies.clear()  # logging in left a session cookie behind
    r = await client.post(FILES, params={"organization": str(member.org_id)}, content=b"x")
    assert r.status_code == 401
    envelope(r)


async def test_upload_needs_membership(
    client: httpx2.AsyncClient, member: ApiUser, admin: ApiUser, db: Database
) -> None:
    org = await other_org(db)
    # Forbidden comes before the declared type is looked at.
    r = await upload(client, member, b"x", name="a.txt", content_type="application/zip", org=org)
    assert r.status_code == 403
    assert envelope(r)["message"] == "Forbidden."
    assert await stored_files(db) == 0
    # A site owner may upload into any organization that exists.
    await uploaded(client, admin, b"x", name="a.txt", org=org)
    r = await upload(client, admin, b"x", name="a.txt", org=uuid.uuid4())
    assert r.status_code == 403


async def test_filename_is_required(client: httpx2.AsyncClient, member: ApiUser) -> None:
    for header in (
        None,
        "attachment",
        'attachment; filename=""',
        'attachment; filename="   "',
        "attachment; filename*=utf-8''%01%7F%09%20",
        "attachment; filename=a; filename=b",
        'attachment; filename="unterminated',
    ):
        headers = dict(member.headers)
        if header is not None:
            headers["Content-Disposition"] = header
        r = await client.post(
            FILES, params={"organization": str(member.org_id)}, headers=headers, content=b"x"
        )
        assert_error(
            r,
            400,
            "Filename is required.",
            "Provide a filename in the Content-Disposition header.",
        )


@pytest.mark.parametrize(
    ("header", "served"),
    [
        ('inline; filename="my notes.txt"', 'inline; filename="my notes.txt"'),
        ('attachment; filename="a \\"b\\".txt"', 'inline; filename="a \\"b\\".txt"'),
        ("attachment; FILENAME=plain.txt", "inline; filename=plain.txt"),
        (
            "attachment; filename=fallback.txt; filename*=UTF-8''%E2%9C%93%20ok.txt",
            "inline; filename*=utf-8''%E2%9C%93%20ok.txt",
        ),
        ('attachment; filename="  padded.txt  "', "inline; filename=padded.txt"),
    ],
)
async def test_filename_parsing_and_rendering(
    client: httpx2.AsyncClient, member: ApiUser, header: str, served: str
) -> None:
    headers = {**member.headers, "Content-Disposition": header}
    r = await client.post(
        FILES, params={"organization": str(member.org_id)}, headers=headers, content=b"text"
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"{FILES}/{r.json()['id']}", headers=member.headers)
    assert r.headers["content-disposition"] == served


async def test_long_filename_is_truncated(client: httpx2.AsyncClient, member: ApiUser) -> None:
    file_id = await uploaded(client, member, b"text", name="n" * 300 + ".txt")
    r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
    assert r.headers["content-disposition"] == "inline; filename=" + "n" * 255


async def test_size_cap(client: httpx2.AsyncClient, member: ApiUser, db: Database) -> None:
    exact = b"a" * MAX
    file_id = await uploaded(client, member, exact, name="big.txt")
    r = await client.get(f"{FILES}/{file_id}", headers=member.headers)
    assert r.headers["content-length"] == str(MAX)
    assert r.content == exact

    too_large = ("File too large.", "Maximum file size is 10485760 bytes.")
    # Rejected from Content-Length alone, even with no filename (size is checked first). The
    # body is read and dropped first (up to twice the cap), then the connection is closed.
    for body in (exact + b"a", b"a" * (2 * MAX + 1)):
        r = await upload(client, member, body, name=None)
        assert_error(r, 413, *too_large)
        assert r.headers["connection"] == "close"

    def chunks(count: int) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            for _ in range(count):
                yield b"a" * (1024 * 1024)

        return gen()

    # No Content-Length: the cap is enforced while streaming, past twice the cap too.
    for count in (11, 25):
        r = await client.post(
            FILES,
            params={"organization": str(member.org_id)},
            headers={**member.headers, **disposition("big.txt")},
            content=chunks(count),
        )
        assert "content-length" not in r.request.headers
        assert_error(r, 413, *too_large)
        assert r.headers["connection"] == "close"
    assert await stored_files(db) == 1


async def test_declared_type_is_checked_before_size(
    client: httpx2.AsyncClient, member: ApiUser
) -> None:
    r = await upload(client, member, b"a" * (MAX + 1), name="a.zip", content_type="application/zip")
    assert_error(r, 400, "Unsupported file type.", ALLOWED_DETAIL)


async def test_download_access(
    client: httpx2.AsyncClient, api: Api, member: ApiUser, admin: ApiUser, db: Database
) -> None:
    file_id = await uploaded(client, member, PNG, name="a.png")
    stranger = await api.create_user("stranger")
    r = await client.get(f"{FILES}/{file_id}", headers=stranger.headers)
    assert_error(r, 404, NOT_FOUND, None)

    r = await client.get(f"{FILES}/{file_id}", headers=admin.headers)
    assert r.status_code == 200
    assert r.content == PNG

    # An organization admin reads the files of their organization.
    async with db.write() as conn:
        await conn.execute(
            organization_members.update()
            .where(organization_members.c.user_id == stranger.id)
            .values(roles=[ORG_ADMIN_ROLE])
        )
    r = await client.get(f"{FILES}/{file_id}", headers=stranger.headers)
    assert r.status_code == 200

    client.cookies.clear()  # logging in left a session cookie behind
    r = await client.get(f"{FILES}/{file_id}")
    assert r.status_code == 401


async def test_download_bad_and_unknown_ids(client: httpx2.AsyncClient, member: ApiUser) -> None:
    r = await client.get(f"{FILES}/not-a-uuid", headers=member.headers)
    assert_error(r, 400, "Invalid file ID.", None)
    assert "detail" not in r.json()
    r = await client.get(f"{FILES}/{uuid.uuid4()}", headers=member.headers)
    assert_error(r, 404, NOT_FOUND, None)


async def test_openapi_documents_both_routes(client: httpx2.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    post = spec["paths"]["/api/experimental/chats/files"]["post"]
    assert "201" in post["responses"]
    assert {"application/octet-stream", "image/png", "text/plain"} <= set(
        post["requestBody"]["content"]
    )
    (organization,) = post["parameters"]
    assert organization["name"] == "organization" and organization["required"] is True
    assert organization["schema"] == {"type": "string", "format": "uuid"}
    get = spec["paths"]["/api/experimental/chats/files/{file}"]["get"]
    # Served as the type it was stored as: one of the types an upload may be stored as.
    content = get["responses"]["200"]["content"]
    assert set(content) == set(filetypes.ALLOWED)
    assert all(c["schema"] == {"type": "string", "format": "binary"} for c in content.values())
    (file_param,) = get["parameters"]
    assert file_param["schema"]["format"] == "uuid"
