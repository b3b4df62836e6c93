"""The tools that end a plan turn: propose_plan and ask_user_question (§5.4, §13.2).

Both stop the turn after a successful (non-error) result: the plan, or the questions, are
what the user answers next.
"""

from __future__ import annotations

import posixpath
from typing import Any

from chatd import filetypes
from chatd.agent import protocol
from chatd.tools import args as a
from chatd.tools.agent_calls import call, connect
from chatd.tools.chat_files import decode_bytes, store_file
from chatd.tools.plan_file import plan_path, resolve
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj

PLAN_MAX = 32 * 1024
MIN_OPTIONS, MAX_OPTIONS = 2, 4


async def _propose_plan(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    facts = ctx.scope().facts
    conn = await connect(ctx)
    expected = plan_path(conn.directory, facts.chat_id)
    given = a.string(args, "path", required=False).strip()
    path = resolve(conn.directory, given) if given else expected
    if facts.plan_mode and path != expected:
        raise ToolError(f"propose_plan reads the chat's plan file {expected}, not {given}")
    result = await call(conn, protocol.READ_BYTES, {"path": path, "max_bytes": PLAN_MAX})
    data = decode_bytes(result)
    if not data.decode("utf-8", errors="replace").strip():
        raise ToolError(f"the plan file {path} is empty; write the plan there first")
    attachment = await store_file(ctx, posixpath.basename(path), filetypes.MARKDOWN, data)
    return json_output(
        {
            "ok": True,
            "path": path,
            "kind": "plan",
            "file_id": str(attachment.file_id),
            "media_type": attachment.media_type,
        },
        attachment,
    )


def _text_field(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"{where}.{key} is required (a non-empty string)")
    return value


def check_questions(raw: Any) -> list[dict[str, Any]]:
    """``questions`` as given, checked: 1+ items, each with 2–4 options."""
    if not isinstance(raw, list) or not raw:
        raise ToolError("questions is required: a list of at least one question")
    questions = []
    for i, item in enumerate(raw):
        where = f"questions[{i}]"
        if not isinstance(item, dict):
            raise ToolError(f"{where} must be an object")
        options = item.get("options")
        if not isinstance(options, list) or not MIN_OPTIONS <= len(options) <= MAX_OPTIONS:
            raise ToolError(f"{where}.options must be a list of {MIN_OPTIONS} to {MAX_OPTIONS}")
        checked_options = []
        for j, option in enumerate(options):
            at = f"{where}.options[{j}]"
            if not isinstance(option, dict):
                raise ToolError(f"{at} must be an object")
            description = option.get("description")
            if not isinstance(description, str):
                raise ToolError(f"{at}.description is required (a string)")
            label = _text_field(option, "label", at)
            checked_options.append({"label": label, "description": description})
        questions.append(
            {
                "header": _text_field(item, "header", where),
                "question": _text_field(item, "question", where),
                "options": checked_options,
            }
        )
    return questions


async def _ask_user_question(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    return json_output({"questions": check_questions(args.get("questions"))})


PROPOSE_PLAN = Tool(
    name="propose_plan",
    description=(
        "Present the plan you wrote to the chat's plan file to the user for review. This ends "
        "your turn: the user approves, or asks for changes, in their next message."
    ),
    input_schema=obj(
        {
            "path": {
                "type": "string",
                "description": "The plan file (default: the chat's plan file path).",
            }
        }
    ),
    run=_propose_plan,
    stop_after=True,
)
ASK_USER_QUESTION = Tool(
    name="ask_user_question",
    description=(
        "Ask the user to choose between options when the plan depends on a decision only they "
        "can make. This ends your turn; the user answers in their next message."
    ),
    input_schema=obj(
        {
            "questions": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "header": {"type": "string", "description": "A short label."},
                        "question": {"type": "string"},
                        "options": {
                            "type": "array",
                            "minItems": MIN_OPTIONS,
                            "maxItems": MAX_OPTIONS,
                            "items": obj(
                                {"label": {"type": "string"}, "description": {"type": "string"}},
                                "label",
                                "description",
                            ),
                        },
                    },
                    "header",
                    "question",
                    "options",
                ),
            }
        },
        "questions",
    ),
    run=_ask_user_question,
    stop_after=True,
)
