"""GET /api/experimental/chats: scope, order, pages, the q grammar, labels, has_unread."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx2
import pytest

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.store.chat_create import NewChat, create_chat
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_diff_statuses, chats
from tests.helpers import ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio

URL = "/api/experimental/chats"
T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


class World:
    """Chats for one test, shaped straight through the store."""

    def __init__(self, db: Database, client: httpx2.AsyncClient, config: uuid.UUID) -> None:
        self.db = db
        self.client = client
        self.config = config

    async def chat(self, owner: ApiUser, title: str, *, minute: int = 0, **values: Any) -> str:
        chat_id = await make_chat(self.db, owner, self.config, title)
        await self.update(chat_id, updated_at=T0 + dt.timedelta(minutes=minute), **values)
        return str(chat_id)

    async def child(self, owner: ApiUser, parent: str, title: str, *, minute: int = 0) -> str:
        async with self.db.write() as conn:
            chat, _ = await create_chat(
                conn,
                T0 + dt.timedelta(minutes=minute),
                NewChat(
                    owner_id=owner.id,
                    organization_id=owner.org_id,
                    title=title,
                    model_config_id=self.config,
                    content=[ChatMessagePart(type=ChatMessagePartType.text, text=title)],
                    system_prompts=["system"],
                    parent_chat_id=uuid.UUID(parent),
                    root_chat_id=uuid.UUID(parent),
                ),
            )
        return str(chat.id)

    async def update(self, chat_id: str | uuid.UUID, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                chats.update().where(chats.c.id == uuid.UUID(str(chat_id))).values(**values)
            )

    async def diff(self, chat_id: str, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(
                chat_diff_statuses.insert().values(
                    chat_id=uuid.UUID(chat_id),
                    stale_at=T0,
                    created_at=T0,
                    updated_at=T0,
                    **values,
                )
            )

    async def assistant(self, chat_id: str, *, deleted: bool = False) -> int:
        async with self.db.write() as conn:
            message = await insert_message(
                conn,
                now=T0,
                chat_id=uuid.UUID(chat_id),
                role="assistant",
                content=[{"type": "text", "text": "done"}],
            )
            if deleted:
                from chatd.store.tables import chat_messages

                await conn.execute(
                    chat_messages.update()
                    .where(chat_messages.c.id == message.id)
                    .values(deleted=True)
                )
        return message.id

    async def get(self, user: ApiUser, **params: Any) -> httpx2.Response:
        return await self.client.get(URL, headers=user.headers, params=params)

    async def titles(self, user: ApiUser, **params: Any) -> list[str]:
        r = await self.get(user, **params)
        assert r.status_code == 200, r.text
        return [c["title"] for c in r.json()]

    async def q_errors(self, user: ApiUser, q: str) -> list[dict[str, str]]:
        r = await self.get(user, q=q)
        assert r.status_code == 400, r.text
        body = envelope(r)
        assert body["message"] == "Invalid chat search query."
        validations: list[dict[str, str]] = body["validations"]
        return validations


@pytest.fixture
async def world(db: Database, client: httpx2.AsyncClient) -> World:
    return World(db, client, await seed_model_config(db))


async def test_empty_list_and_item_shape(world: World, member: ApiUser) -> None:
    r = await world.get(member)
    assert r.status_code == 200
    assert r.json() == []

    chat_id = await world.chat(member, "shape")
    (item,) = (await world.get(member)).json()
    assert item["id"] == chat_id
    assert item["root_chat_id"] == chat_id
    assert item["owner_username"] == "member"
    assert item["children"] == []
    assert "files" not in item
    assert item["has_unread"] is False
    assert item["diff_status"] == {
        "chat_id": chat_id,
        "pull_request_title": "",
        "pull_request_draft": False,
        "changes_requested": False,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


async def test_order_pins_first_then_newest(world: World, member: ApiUser) -> None:
    await world.chat(member, "old", minute=1)
    await world.chat(member, "new", minute=5)
    await world.chat(member, "pin2", minute=9, pin_order=2)
    await world.chat(member, "pin1", minute=0, pin_order=1)
    await world.chat(member, "mid", minute=3)
    assert await world.titles(member) == ["pin1", "pin2", "new", "mid", "old"]


async def test_same_updated_at_orders_by_id_descending(world: World, member: ApiUser) -> None:
    ids = [await world.chat(member, f"t{i}", minute=7) for i in range(4)]
    r = await world.get(member)
    assert [c["id"] for c in r.json()] == sorted(ids, key=uuid.UUID, reverse=True)


async def test_only_own_root_chats(world: World, member: ApiUser, admin: ApiUser) -> None:
    mine = await world.chat(member, "mine", minute=1)
    await world.chat(admin, "admins", minute=2)
    await world.child(member, mine, "child")
    assert await world.titles(member) == ["mine"]
    # A site owner still lists only their own chats.
    assert await world.titles(admin) == ["admins"]


async def test_children_nested_newest_first(world: World, member: ApiUser) -> None:
    root = await world.chat(member, "root")
    first = await world.child(member, root, "first", minute=1)
    second = await world.child(member, root, "second", minute=2)
    await world.assistant(second)
    await world.diff(first, pr_number=3, pull_request_state="open")
    (item,) = (await world.get(member)).json()
    kids = item["children"]
    assert [k["id"] for k in kids] == [second, first]
    assert [k["has_unread"] for k in kids] == [True, False]
    assert kids[1]["diff_status"]["pr_number"] == 3
    assert kids[0]["diff_status"]["chat_id"] == second
    assert all(k["children"] == [] and k["parent_chat_id"] == root for k in kids)
    assert all(k["root_chat_id"] == root for k in kids)


async def test_archived_default_and_filter(world: World, member: ApiUser) -> None:
    live = await world.chat(member, "live")
    await world.child(member, live, "live child")
    gone = await world.chat(member, "gone", archived=True)
    archived_child = await world.child(member, gone, "gone child")
    await world.update(archived_child, archived=True)
    await world.child(member, gone, "unarchived child of archived")

    assert await world.titles(member) == ["live"]
    assert await world.titles(member, q="archived:false") == ["live"]
    for word in ("true", "1", "t", "T", "TRUE", "True"):
        assert await world.titles(member, q=f"archived:{word}") == ["gone"]
    (item,) = (await world.get(member, q="archived:true")).json()
    assert [k["title"] for k in item["children"]] == ["gone child"]
    (item,) = (await world.get(member)).json()
    assert [k["title"] for k in item["children"]] == ["live child"]


async def test_has_unread(world: World, member: ApiUser) -> None:
    quiet = await world.chat(member, "quiet", minute=4)
    unread = await world.chat(member, "unread", minute=3)
    read = await world.chat(member, "read", minute=2)
    deleted = await world.chat(member, "deleted", minute=1)
    await world.assistant(unread)
    await world.update(read, last_read_message_id=await world.assistant(read))
    await world.assistant(deleted, deleted=True)
    assert quiet

    r = await world.get(member)
    assert {c["title"]: c["has_unread"] for c in r.json()} == {
        "quiet": False,
        "unread": True,
        "read": False,
        "deleted": False,
    }
    assert await world.titles(member, q="has_unread:true") == ["unread"]
    assert await world.titles(member, q="has_unread:0") == ["quiet", "read", "deleted"]

    # The cursor only hides messages up to it: a newer reply is unread again.
    await world.assistant(read)
    assert await world.titles(member, q="has_unread:true") == ["unread", "read"]


async def test_title_filter(world: World, member: ApiUser) -> None:
    await world.chat(member, "Fix the Login bug", minute=3)
    await world.chat(member, "login page", minute=2)
    await world.chat(member, "100% done", minute=1)
    await world.chat(member, "logout", minute=0)
    assert await world.titles(member, q="title:LOGIN") == ["Fix the Login bug", "login page"]
    assert await world.titles(member, q='title:"bug login"') == []
    assert await world.titles(member, q='title:"the login"') == ["Fix the Login bug"]
    # % and _ are not escaped: they are wildcards.
    assert await world.titles(member, q="title:log_ut") == ["logout"]
    assert await world.titles(member, q="title:0%d") == ["100% done"]
    assert await world.titles(member, q='title:""') == [
        "Fix the Login bug",
        "login page",
        "100% done",
        "logout",
    ]
    # Keys are case-insensitive, values keep their case (and match case-insensitively).
    assert await world.titles(member, q="TITLE:page") == ["login page"]


async def test_pr_status(world: World, member: ApiUser) -> None:
    draft = await world.chat(member, "draft", minute=5)
    opened = await world.chat(member, "open", minute=4)
    merged = await world.chat(member, "merged", minute=3)
    closed = await world.chat(member, "closed", minute=2)
    await world.chat(member, "none", minute=1)
    await world.diff(draft, pull_request_state="open", pull_request_draft=True)
    await world.diff(opened, pull_request_state="open")
    await world.diff(merged, pull_request_state="merged")
    await world.diff(closed, pull_request_state="closed", pull_request_draft=True)

    assert await world.titles(member, q="pr_status:draft") == ["draft"]
    assert await world.titles(member, q="pr_status:open") == ["open"]
    assert await world.titles(member, q="pr_status:MERGED") == ["merged"]
    assert await world.titles(member, q="pr_status:closed") == ["closed"]
    assert await world.titles(member, q='pr_status:"open, merged"') == ["open", "merged"]
    assert await world.titles(member, q="pr_status:draft pr_status:closed") == [
        "draft",
        "closed",
    ]
    (item,) = (await world.get(member, q="pr_status:draft")).json()
    assert item["diff_status"]["pull_request_state"] == "open"
    assert item["diff_status"]["pull_request_draft"] is True

    assert await world.q_errors(member, "pr_status:open,wip") == [
        {
            "field": "pr_status",
            "detail": 'Query param "pr_status" has invalid values: "wip" is not a valid value',
        }
    ]
    assert await world.q_errors(member, "pr_status:a pr_status:b") == [
        {
            "field": "pr_status",
            "detail": 'Query param "pr_status" has invalid values: '
            '"a" is not a valid value\n"b" is not a valid value',
        }
    ]


async def test_diff_url_matches_chat_or_descendant(world: World, member: ApiUser) -> None:
    own = await world.chat(member, "own", minute=3)
    family = await world.chat(member, "family", minute=2)
    await world.chat(member, "other", minute=1)
    kid = await world.child(member, family, "kid")
    await world.diff(own, url="https://github.com/o/r/pull/1")
    await world.diff(kid, url="https://github.com/o/r/pull/2")

    q = 'diff_url:"https://github.com/o/r/pull/1"'
    assert await world.titles(member, q=q) == ["own"]
    assert await world.titles(member, q='diff_url:"HTTPS://GitHub.com/o/r/PULL/2"') == ["family"]
    assert await world.titles(member, q='diff_url:"https://github.com/o/r/pull/3"') == []


@pytest.mark.parametrize(
    ("q", "field", "detail"),
    [
        (
            'diff_url:"github.com/o/r"',
            "diff_url",
            'diff_url must use http or https scheme, got ""',
        ),
        (
            'diff_url:"ftp://host/x"',
            "diff_url",
            'diff_url must use http or https scheme, got "ftp"',
        ),
        ('diff_url:"https:///path"', "diff_url", "diff_url must include a host"),
        (
            'diff_url:"https://host/%zz"',
            "diff_url",
            'diff_url is not a valid URL: parse "https://host/%zz": invalid URL escape "%zz"',
        ),
        (
            "diff_url:https://github.com/o/r",
            "q",
            "Query element \"diff_url:https://github.com/o/r\" can only contain 1 ':'",
        ),
    ],
)
async def test_diff_url_errors(
    world: World, member: ApiUser, q: str, field: str, detail: str
) -> None:
    assert await world.q_errors(member, q) == [{"field": field, "detail": detail}]


async def test_pr_repo_and_pr_title(world: World, member: ApiUser) -> None:
    a = await world.chat(member, "a", minute=3)
    b = await world.chat(member, "b", minute=2)
    c = await world.chat(member, "c", minute=1)
    await world.diff(
        a,
        pr_number=12,
        pull_request_title="Add Search",
        git_remote_origin="git@github.com:acme/widgets.git",
    )
    await world.diff(b, pr_number=7, url="https://github.com/acme/gadgets/pull/7")
    await world.diff(c, pull_request_title="search fixes")

    assert await world.titles(member, q="pr:12") == ["a"]
    assert await world.titles(member, q="pr:+7") == ["b"]
    assert await world.titles(member, q="repo:ACME/") == ["a", "b"]
    assert await world.titles(member, q="repo:gadgets") == ["b"]
    assert await world.titles(member, q="pr_title:search") == ["a", "c"]
    assert await world.titles(member, q="pr_title:search repo:widgets pr:12") == ["a"]
    assert await world.titles(member, q="pr_title:search pr:7") == []

    for bad in ("0", "-3", "x", "2147483648", "1.5"):
        assert await world.q_errors(member, f"pr:{bad}") == [
            {"field": "pr", "detail": f'"{bad}" is not a valid positive integer'}
        ]


@pytest.mark.parametrize(
    ("q", "detail"),
    [
        ("hello", 'unsupported search term: "hello"'),
        ("foo title:x bar", 'unsupported search term: "foo bar"'),
        ('"two words"', 'unsupported search term: "\\"two words\\""'),
        ('"a:b"', 'unsupported search term: "\\"a:b\\""'),
        ("title:", "Query element \"title:\" cannot start or end with ':'"),
        (":x title:y", "Query element \":x\" cannot start or end with ':'"),
        ("a:b:c", "Query element \"a:b:c\" can only contain 1 ':'"),
        # Tokenizer errors stop at the first element.
        ("x: y:", "Query element \"x:\" cannot start or end with ':'"),
    ],
)
async def test_grammar_errors(world: World, member: ApiUser, q: str, detail: str) -> None:
    assert await world.q_errors(member, q) == [{"field": "q", "detail": detail}]


async def test_key_errors_are_collected(world: World, member: ApiUser) -> None:
    errors = await world.q_errors(
        member, "archived:maybe title:a Title:b nope:1 has_unread:yes pr:x"
    )
    assert errors == [
        {
            "field": "archived",
            "detail": 'Query param "archived" must be a valid boolean: '
            'strconv.ParseBool: parsing "maybe": invalid syntax',
        },
        {
            "field": "has_unread",
            "detail": 'Query param "has_unread" must be a valid boolean: '
            'strconv.ParseBool: parsing "yes": invalid syntax',
        },
        {
            "field": "title",
            "detail": 'Query param "title" provided more than once, found 2 times. '
            "Only provide 1 instance of this query param.",
        },
        {"field": "pr", "detail": '"x" is not a valid positive integer'},
        {"field": "nope", "detail": '"nope" is not a valid query param'},
    ]


async def test_blank_and_empty_queries(world: World, member: ApiUser) -> None:
    await world.chat(member, "one")
    assert await world.titles(member, q="") == ["one"]
    assert await world.titles(member, q="    ") == ["one"]
    assert await world.titles(member, q='  archived:""   title:one  ') == ["one"]


async def test_labels(world: World, member: ApiUser) -> None:
    await world.chat(member, "both", minute=3, labels={"team": "core", "env": "prod"})
    await world.chat(member, "core", minute=2, labels={"team": "core"})
    await world.chat(member, "odd", minute=1, labels={"a.b": "x:y", 'q"k': "v"})
    await world.chat(member, "none")

    assert await world.titles(member, label="team:core") == ["both", "core"]
    assert await world.titles(member, label=["team:core", "env:prod"]) == ["both"]
    assert await world.titles(member, label=["env:dev", "env:prod"]) == ["both"]
    assert await world.titles(member, label="team:Core") == []
    # Split at the first colon only; unusual keys work.
    assert await world.titles(member, label="a.b:x:y") == ["odd"]
    assert await world.titles(member, label='q"k:v') == ["odd"]
    assert await world.titles(member, label="team:core", q="title:bo") == ["both"]

    for raw in ("team", ":core", "team:", ""):
        r = await world.get(member, label=["team:core", raw])
        assert r.status_code == 400
        assert envelope(r) == {
            "message": f'Invalid label filter: "{raw}" '
            "(expected format key:value, both must be non-empty)"
        }


async def test_pages_limit_offset_after_id(world: World, member: ApiUser) -> None:
    ids = {}
    for i in range(6):
        ids[f"c{i}"] = await world.chat(member, f"c{i}", minute=i)
    ids["p1"] = await world.chat(member, "p1", pin_order=1)
    ids["p2"] = await world.chat(member, "p2", pin_order=2)
    order = ["p1", "p2", "c5", "c4", "c3", "c2", "c1", "c0"]
    assert await world.titles(member) == order
    assert await world.titles(member, limit=3) == order[:3]
    assert await world.titles(member, limit=3, offset=1) == order[1:4]
    assert await world.titles(member, offset=2) == order[2:]
    assert await world.titles(member, offset=4, limit=2) == order[4:6]
    assert await world.titles(member, offset=20) == []
    for i, name in enumerate(order):
        assert await world.titles(member, after_id=ids[name]) == order[i + 1 :]
    assert await world.titles(member, after_id=ids["p1"], offset=2, limit=2) == order[3:5]
    assert await world.titles(member, after_id=ids["c4"], limit=2) == ["c3", "c2"]
    # Unknown cursors, and other users' chats, give an empty page.
    assert await world.titles(member, after_id=str(uuid.uuid4())) == []
    assert await world.titles(member, limit="", offset="") == order


async def test_foreign_cursor_is_unknown(world: World, member: ApiUser, admin: ApiUser) -> None:
    await world.chat(member, "mine")
    theirs = await world.chat(admin, "theirs", minute=9)
    assert await world.titles(member, after_id=theirs) == []


async def test_default_limit_is_50(world: World, member: ApiUser) -> None:
    async with world.db.write() as conn:
        await conn.execute(
            chats.insert(),
            [
                {
                    "id": uuid.uuid4(),
                    "owner_id": member.id,
                    "organization_id": member.org_id,
                    "title": f"bulk {i}",
                    "created_at": T0,
                    "updated_at": T0 + dt.timedelta(seconds=i),
                    "last_model_config_id": world.config,
                    "mcp_server_ids": [],
                    "labels": {},
                }
                for i in range(55)
            ],
        )
    assert len(await world.titles(member)) == 50
    assert len(await world.titles(member, limit=0)) == 50
    assert len(await world.titles(member, limit=55)) == 55
    assert (await world.titles(member, limit=1)) == ["bulk 54"]


@pytest.mark.parametrize(
    ("params", "field", "detail"),
    [
        (
            {"limit": "-1"},
            "limit",
            'Query param "limit" must be a valid 32-bit positive integer: '
            'strconv.ParseUint: parsing "-1": invalid syntax',
        ),
        (
            {"offset": "abc"},
            "offset",
            'Query param "offset" must be a valid 32-bit positive integer: '
            'strconv.ParseUint: parsing "abc": invalid syntax',
        ),
        ({"after_id": "nope"}, "after_id", 'Query param "after_id" must be a valid uuid'),
        (
            {"limit": ["1", "2"]},
            "limit",
            'Query param "limit" provided more than once, found 2 times. '
            "Only provide 1 instance of this query param.",
        ),
    ],
)
async def test_page_param_errors(
    world: World, member: ApiUser, params: dict[str, Any], field: str, detail: str
) -> None:
    r = await world.get(member, **params)
    assert r.status_code == 400
    assert envelope(r) == {
        "message": "Query parameters have invalid values.",
        "validations": [{"field": field, "detail": detail}],
    }


async def test_requires_authentication(client: httpx2.AsyncClient) -> None:
    r = await client.get(URL)
    assert r.status_code == 401
    envelope(r)
