"""Request rules shared by create, send and edit: input parts, labels, titles, prompts."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field

from chatd.api.errors import ApiError
from chatd.authz import Actor
from chatd.sdk.chats import ChatInputPart, ChatMessagePart, ChatMessagePartType
from chatd.sdk.errors import ValidationError
from chatd.store.db import Database
from chatd.store.files import get_file_meta

MAX_LABELS = 50
MAX_LABEL_KEY = 64
MAX_LABEL_VALUE = 256
LABEL_KEY_RE = r"^[a-zA-Z0-9][a-zA-Z0-9._/-]*$"
_LABEL_KEY = re.compile(LABEL_KEY_RE)


@dataclass
class ConvertedInput:
    parts: list[ChatMessagePart] = field(default_factory=list)
    file_ids: list[uuid.UUID] = field(default_factory=list)
    title_source: str = ""


def _invalid(detail: str) -> ApiError:
    return ApiError(400, "Invalid input part.", detail)


async def convert_content(
    db: Database, actor: Actor, content: list[ChatInputPart] | None
) -> ConvertedInput:
    """Turn request parts into stored parts (api-behaviour §5.1); the first problem is a 400.

    Only file parts read the database (text-only content, the common case, does not).
    """
    if not content:
        raise ApiError(400, "Content is required.", "Content cannot be empty.")
    out = ConvertedInput()
    texts: list[str] = []
    for i, part in enumerate(content):
        kind = part.type.strip().lower()
        if kind == "text":
            text = (part.text or "").strip()
            if not text:
                raise _invalid(f"content[{i}].text cannot be empty.")
            out.parts.append(ChatMessagePart(type=ChatMessagePartType.text, text=text))
            texts.append(text)
        elif kind == "file":
            if part.file_id is None or part.file_id == uuid.UUID(int=0):
                raise _invalid(f"content[{i}].file_id is required for file parts.")
            async with db.read() as conn:
                meta = await get_file_meta(conn, part.file_id)
            if meta is None or not actor.can_read_chat(meta["owner_id"], meta["organization_id"]):
                raise _invalid(f"content[{i}].file_id references a file that does not exist.")
            out.parts.append(
                ChatMessagePart(
                    type=ChatMessagePartType.file,
                    file_id=part.file_id,
                    media_type=meta["mimetype"],
                    name=meta["name"],
                )
            )
            out.file_ids.append(part.file_id)
        elif kind == "file-reference":
            name = part.file_name or ""
            if not name:
                raise _invalid(f"content[{i}].file_name cannot be empty for file-reference.")
            if (
                part.start_line is not None
                and part.end_line is not None
                and part.start_line > part.end_line
            ):
                detail = f"content[{i}].end_line must not be less than content[{i}].start_line."
                raise ApiError(
                    400,
                    "Invalid input part.",
                    detail,
                    [ValidationError(field=f"content[{i}].end_line", detail=detail)],
                )
            start, end = part.start_line or 0, part.end_line or 0
            out.parts.append(
                ChatMessagePart(
                    type=ChatMessagePartType.file_reference,
                    file_name=name,
                    start_line=start,
                    end_line=end,
                    content=part.content or "",
                )
            )
            lines = f"{start}" if start == end else f"{start}-{end}"
            ref = f"[file-reference] {name}:{lines}"
            if (part.content or "").strip():
                ref += f"\n```{name}\n{part.content}\n```"
            texts.append(ref)
        else:
            raise _invalid(f'content[{i}].type "{part.type}" is not supported.')
    out.title_source = " ".join(texts).strip()
    return out


def label_problems(labels: dict[str, str] | None) -> list[ValidationError]:
    """Every problem with a labels map, one validation entry each (§6.2 step 12)."""
    problems: list[str] = []
    labels = labels or {}
    if len(labels) > MAX_LABELS:
        problems.append(f"too many labels ({len(labels)}); maximum is {MAX_LABELS}")
    for key, value in labels.items():
        if not key:
            problems.append("label key must not be empty")
        elif len(key.encode()) > MAX_LABEL_KEY:
            problems.append(f'label key "{key}" exceeds maximum length of {MAX_LABEL_KEY} bytes')
        elif not _LABEL_KEY.fullmatch(key):
            problems.append(
                f'label key "{key}" contains invalid characters; must match {LABEL_KEY_RE}'
            )
        if not value:
            problems.append(f'label value for key "{key}" must not be empty')
        elif len(value.encode()) > MAX_LABEL_VALUE:
            problems.append(
                f'label value for key "{key}" exceeds maximum length of {MAX_LABEL_VALUE} bytes'
            )
    return [ValidationError(field="labels", detail=p) for p in problems]


def check_labels(labels: dict[str, str] | None) -> None:
    problems = label_problems(labels)
    if problems:
        raise ApiError(400, "Invalid labels.", validations=problems)


def sanitize_prompt(text: str) -> str:
    """Strip invisible format characters (zero-width and bidi controls) and trim."""
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf" or ch in "\u200d").strip()
