"""Queries for workspace templates, and the built-in ones every organization has."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from chatd.store.errors import IntegrityError
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import organizations, templates

# The built-in templates: local workspaces made by the server (setup "scratch": an empty
# directory under git; "git": a clone).
BUILTIN_TEMPLATES: tuple[dict[str, Any], ...] = (
    {
        "name": "scratch",
        "display_name": "Scratch",
        "description": "An empty directory on the server, under git, for work from nothing.",
        "kind": "local",
        "setup": "scratch",
        "parameters": [],
    },
    {
        "name": "git",
        "display_name": "Git repository",
        "description": "A clone of a git repository on the server.",
        "kind": "local",
        "setup": "git",
        "parameters": [
            {
                "name": "repo_url",
                "description": "The repository to clone (https, ssh or git URL).",
                "required": True,
                "default": "",
            },
            {
                "name": "branch",
                "description": "The branch to check out (default: the repository's own).",
                "required": False,
                "default": "",
            },
        ],
    },
)

# Read for every workspace created and every local agent started: built once.
_BY_ID = sa.select(templates).where(templates.c.id == sa.bindparam("template_id"))


class TemplateExists(Exception):
    """The organization has a template of that name already."""


async def ensure_builtin_templates(conn: Connection, now: dt.datetime) -> int:
    """Add the built-in templates an organization lacks (by name); how many were added.

    Run in the transaction of :func:`chatd.store.users.ensure_default_org`, under its lock."""
    org_ids = (await conn.execute(sa.select(organizations.c.id))).scalars()
    existing = {
        (row.organization_id, row.name)
        for row in await conn.execute(
            sa.select(templates.c.organization_id, templates.c.name).where(
                templates.c.name.in_([t["name"] for t in BUILTIN_TEMPLATES])
            )
        )
    }
    rows = [
        {
            **template,
            "id": uuid.uuid4(),
            "organization_id": org_id,
            "builtin": True,
            "command": None,
            "created_at": now,
            "updated_at": now,
        }
        for org_id in org_ids
        for template in BUILTIN_TEMPLATES
        if (org_id, template["name"]) not in existing
    ]
    if rows:
        await conn.execute(templates.insert(), rows)
    return len(rows)


async def list_templates(conn: Connection, organization_id: uuid.UUID) -> list[RowDict]:
    query = (
        sa.select(templates)
        .where(templates.c.organization_id == organization_id)
        .order_by(templates.c.name)
    )
    return [row.as_dict() for row in await conn.execute(query)]


async def get_template(conn: Connection, template_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(_BY_ID, {"template_id": template_id})).first()
    return row.as_dict() if row else None


async def _name_taken(
    conn: Connection, organization_id: uuid.UUID, name: str, other_than: uuid.UUID | None
) -> bool:
    query = sa.select(templates.c.id).where(
        templates.c.organization_id == organization_id, templates.c.name == name
    )
    if other_than is not None:
        query = query.where(templates.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def insert_template(conn: Connection, now: dt.datetime, values: dict[str, Any]) -> RowDict:
    """A new template (``values`` without id and times); raises :class:`TemplateExists`."""
    if await _name_taken(conn, values["organization_id"], values["name"], None):
        raise TemplateExists
    template_id = uuid.uuid4()
    try:
        await conn.execute(
            templates.insert().values(id=template_id, created_at=now, updated_at=now, **values)
        )
    except IntegrityError:
        raise TemplateExists from None  # a concurrent insert of the same name
    row = await get_template(conn, template_id)
    assert row is not None
    return row


async def update_template(
    conn: Connection, now: dt.datetime, template_id: uuid.UUID, values: dict[str, Any]
) -> RowDict | None:
    """Change a template; None when it does not exist; raises :class:`TemplateExists` for a
    name another template of its organization has."""
    row = await get_template(conn, template_id)
    if row is None:
        return None
    name = values.get("name")
    if name is not None and await _name_taken(conn, row["organization_id"], name, template_id):
        raise TemplateExists
    await conn.execute(
        templates.update().where(templates.c.id == template_id).values(updated_at=now, **values)
    )
    return await get_template(conn, template_id)


async def delete_template(conn: Connection, template_id: uuid.UUID) -> bool:
    """Delete a template; its workspaces keep working (their template_id becomes NULL)."""
    result = await conn.execute(templates.delete().where(templates.c.id == template_id))
    return result.rowcount > 0
