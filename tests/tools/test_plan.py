"""Plan turns: writes only to the plan file, propose_plan, ask_user_question."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from chatd.store.tables import chat_files
from chatd.tools.plan import ASK_USER_QUESTION
from chatd.tools.plan_file import plan_path
from tests.tools.conftest import ToolEnv

pytestmark = pytest.mark.anyio

QUESTION = {
    "header": "Database",
    "question": "Which database should the service use?",
    "options": [
        {"label": "SQLite", "description": "One file, no server."},
        {"label": "PostgreSQL", "description": "Scales out."},
    ],
}


def _plan(env: ToolEnv) -> str:
    return plan_path(str(env.directory), env.chat_id)


async def test_plan_turns_write_only_the_plan_file(env: ToolEnv) -> None:
    planning = env.planning()
    (env.directory / "app.py").write_text("x = 1\n")
    refused = await planning.error("write_file", path="app.py", content="x = 2\n")
    assert "only the plan file" in refused and _plan(env) in refused
    assert (env.directory / "app.py").read_text() == "x = 1\n"
    edit = [{"path": "app.py", "edits": [{"old_text": "x = 1", "new_text": "x = 2"}]}]
    assert "only the plan file" in await planning.error("edit_files", files=edit)
    assert (env.directory / "app.py").read_text() == "x = 1\n"

    relative = f".chatd/plans/{env.chat_id}.md"
    assert await planning.ok("write_file", path=relative, content="# Plan\n\n1. x\n") == {
        "ok": True
    }
    fix = [{"path": _plan(env), "edits": [{"old_text": "1. x", "new_text": "1. y"}]}]
    assert (await planning.ok("edit_files", files=fix))["ok"] is True
    assert (env.directory / relative).read_text() == "# Plan\n\n1. y\n"
    # Outside plan turns any path goes.
    assert await env.ok("write_file", path="app.py", content="x = 3\n") == {"ok": True}


async def test_propose_plan_attaches_the_plan(env: ToolEnv) -> None:
    planning = env.planning()
    missing = await planning.error("propose_plan")
    assert f"{env.chat_id}.md" in missing
    await planning.ok("write_file", path=_plan(env), content="  \n")
    assert "empty" in await planning.error("propose_plan")
    await planning.ok("write_file", path=_plan(env), content="# Plan\n\nDo the thing.\n")
    assert "not" in await planning.error("propose_plan", path="other.md")

    output = await planning.run("propose_plan")
    assert not output.is_error, output.text
    [attachment] = output.attachments
    assert json.loads(output.text) == {
        "ok": True,
        "path": _plan(env),
        "kind": "plan",
        "file_id": str(attachment.file_id),
        "media_type": "text/markdown",
    }
    assert attachment.name == f"{env.chat_id}.md"
    async with env.db.read() as conn:
        data = (
            await conn.execute(
                sa.select(chat_files.c.data).where(chat_files.c.id == attachment.file_id)
            )
        ).scalar_one()
    assert bytes(data) == b"# Plan\n\nDo the thing.\n"


async def test_propose_plan_refuses_a_plan_over_32_kib(env: ToolEnv) -> None:
    planning = env.planning()
    await planning.ok("write_file", path=_plan(env), content="x" * (32 * 1024 + 1))
    assert f"{env.chat_id}.md" in await planning.error("propose_plan")


async def test_ask_user_question_echoes_valid_questions(env: ToolEnv) -> None:
    env = env.planning()
    assert await env.ok("ask_user_question", questions=[QUESTION]) == {"questions": [QUESTION]}
    assert "at least one" in await env.error("ask_user_question", questions=[])
    assert "at least one" in await env.error("ask_user_question")
    one_option = {**QUESTION, "options": QUESTION["options"][:1]}
    assert "2 to 4" in await env.error("ask_user_question", questions=[one_option])
    five = {**QUESTION, "options": QUESTION["options"] * 3}
    assert "questions[0].options" in await env.error("ask_user_question", questions=[five])
    no_header = {k: v for k, v in QUESTION.items() if k != "header"}
    text = await env.error("ask_user_question", questions=[QUESTION, no_header])
    assert text == "questions[1].header is required (a non-empty string)"
    blank_label = {**QUESTION, "options": [{"label": " ", "description": ""}] * 2}
    assert "options[0].label" in await env.error("ask_user_question", questions=[blank_label])


async def test_ask_user_question_requires_option_descriptions(env: ToolEnv) -> None:
    """As its schema says: every option has a description (it may be empty)."""
    env = env.planning()
    question = ASK_USER_QUESTION.input_schema["properties"]["questions"]["items"]
    assert question["properties"]["options"]["items"]["required"] == ["label", "description"]
    bare = {**QUESTION, "options": [{"label": "A"}, {"label": "B", "description": "b"}]}
    text = await env.error("ask_user_question", questions=[bare])
    assert text == "questions[0].options[0].description is required (a string)"
    empty = {**QUESTION, "options": [{"label": "A", "description": ""}] * 2}
    assert (await env.ok("ask_user_question", questions=[empty]))["questions"] == [empty]
