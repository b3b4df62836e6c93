"""Platform tools for choosing a template: list_templates, read_template (§13.2).

Templates come from :class:`~chatd.workspace.service.Workspaces` (``chatd.sdk.workspaces``
objects); only those of the chat's organization that a tool can create a workspace from are
offered: an external template needs an agent someone runs by hand.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from chatd.sdk.workspaces import Template, TemplateKind, TemplateParameter
from chatd.tools import args as a
from chatd.tools.registry import Tool, ToolCallContext, ToolError, ToolOutput, json_output
from chatd.tools.schema import obj

PAGE_SIZE = 10
DESCRIPTION_MAX = 300


def _short(text: str, limit: int = DESCRIPTION_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


async def usable_templates(ctx: ToolCallContext) -> list[Template]:
    """The organization's templates a workspace can be created from here."""
    scope = ctx.scope()
    templates = await scope.workspace.service().list_templates(scope.facts.organization_id)
    return [t for t in templates if t.kind != TemplateKind.external]


async def find_template(ctx: ToolCallContext, template_id: uuid.UUID) -> Template:
    """One template a workspace can be created from here (as :func:`usable_templates`)."""
    scope = ctx.scope()
    template = await scope.workspace.service().get_template(template_id)
    if (
        template is None
        or template.organization_id != scope.facts.organization_id
        or template.kind == TemplateKind.external
    ):
        raise ToolError(f"template {template_id} not found; call list_templates to see the choices")
    return template


def _subsequence(needle: str, haystack: str) -> bool:
    letters = iter(haystack)
    return all(ch in letters for ch in needle)


def matches(template: Template, query: str) -> bool:
    """Every word of ``query`` is in the name, display name or description (any case), or
    its letters appear in order in the name."""
    name = template.name.lower()
    fields = " ".join((name, template.display_name, template.description)).lower()
    return all(w in fields or _subsequence(w, name) for w in query.lower().split())


def _summary(template: Template) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": str(template.id),
        "name": template.name,
        "organization_id": str(template.organization_id),
    }
    if template.display_name:
        entry["display_name"] = template.display_name
    if template.description:
        entry["description"] = _short(template.description)
    return entry


async def _list_templates(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    query = a.string(args, "query", required=False).strip()
    page = a.integer(args, "page", 1)
    found = [t for t in await usable_templates(ctx) if not query or matches(t, query)]
    total_pages = max(1, math.ceil(len(found) / PAGE_SIZE))
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return json_output(
        {
            "templates": [_summary(t) for t in shown],
            "count": len(shown),
            "page": page,
            "total_pages": total_pages,
            "total_count": len(found),
        }
    )


def _parameter(parameter: TemplateParameter) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": parameter.name,
        "type": "string",
        "required": parameter.required,
    }
    if parameter.description:
        entry["description"] = _short(parameter.description)
    if parameter.default:
        entry["default"] = parameter.default
    return entry


async def _read_template(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
    template = await find_template(ctx, a.identifier(args, "template_id"))
    summary = {k: v for k, v in _summary(template).items() if k != "organization_id"}
    if template.description:
        summary["description"] = template.description
    parameters = [_parameter(p) for p in template.parameters]
    return json_output({"template": summary, "parameters": parameters})


LIST_TEMPLATES = Tool(
    name="list_templates",
    description=(
        "List the workspace templates you can create a workspace from, 10 per page. "
        "query filters by name, display name or description."
    ),
    input_schema=obj(
        {
            "query": {"type": "string", "description": "Words to look for."},
            "page": {"type": "integer", "description": "Page number, from 1."},
        }
    ),
    run=_list_templates,
)
READ_TEMPLATE = Tool(
    name="read_template",
    description="A template's details and the parameters create_workspace takes for it.",
    input_schema=obj({"template_id": {"type": "string", "format": "uuid"}}, "template_id"),
    run=_read_template,
)
