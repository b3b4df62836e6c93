"""Names, parameters and the wire views of templates and workspaces."""

from __future__ import annotations

import datetime as dt
import re
import secrets
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

from chatd.sdk.workspaces import (
    Template,
    TemplateKind,
    TemplateParameter,
    Workspace,
    WorkspaceAgent,
    WorkspaceAgentStatus,
)
from chatd.workspace.errors import WorkspaceInputError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
NAME_RULE = "lowercase letters, digits and '-', 1 to 64 characters, not starting with '-'"
PARAMETER_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_PARAMETERS = 32
MAX_PARAMETER_VALUE = 4096
MAX_DESCRIPTION = 2000
MAX_DISPLAY_NAME = 128
MAX_COMMAND = 8192


def check_name(name: str, what: str, field: str = "name") -> str:
    if not NAME.match(name):
        raise WorkspaceInputError(f"{what} name {name!r} is not valid: {NAME_RULE}", field)
    return name


def generated_name(template_name: str) -> str:
    """``<template>-<4 hex>``, within the name limit."""
    return f"{template_name[:59].rstrip('-') or 'workspace'}-{secrets.token_hex(2)}"


def check_text(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise WorkspaceInputError(f"{field} is longer than {limit} characters", field)
    return value


def check_parameter_value(value: str, field: str, what: str) -> str:
    """A parameter value: at most ``MAX_PARAMETER_VALUE`` characters of text without control
    characters (it becomes an environment variable of a process)."""
    if len(value) > MAX_PARAMETER_VALUE:
        raise WorkspaceInputError(f"{what} is longer than {MAX_PARAMETER_VALUE} characters", field)
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise WorkspaceInputError(
            f"{what} must not contain control characters (a NUL, a newline, a tab, ...)", field
        )
    return value


def template_parameters(parameters: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A template's parameter definitions, checked: ``[{name, description, required,
    default}]`` with distinct names."""
    if len(parameters) > MAX_PARAMETERS:
        raise WorkspaceInputError(f"a template has at most {MAX_PARAMETERS} parameters")
    seen: set[str] = set()
    out = []
    for index, item in enumerate(parameters):
        field = f"parameters.{index}.name"
        name = str(item.get("name") or "")
        if not PARAMETER_NAME.match(name):
            raise WorkspaceInputError(
                f"parameter name {name!r} is not valid: lowercase letters, digits and '_', "
                "1 to 64 characters, starting with a letter or '_'",
                field,
            )
        if name in seen:
            raise WorkspaceInputError(f"parameter {name!r} is listed twice", field)
        seen.add(name)
        out.append(
            {
                "name": name,
                "description": check_text(
                    str(item.get("description") or ""),
                    f"parameters.{index}.description",
                    MAX_DESCRIPTION,
                ),
                "required": bool(item.get("required") or False),
                "default": check_parameter_value(
                    str(item.get("default") or ""),
                    f"parameters.{index}.default",
                    f"the default of parameter {name!r}",
                ),
            }
        )
    return out


def parameter_values(
    definitions: Sequence[Mapping[str, Any]], given: Mapping[str, str]
) -> dict[str, str]:
    """Every parameter of the template with its value (given, else its default); raises for
    unknown names and required parameters without a value."""
    known = {d["name"]: d for d in definitions}
    unknown = sorted(set(given) - set(known))
    if unknown:
        takes = ", ".join(sorted(known)) or "no parameters"
        raise WorkspaceInputError(
            f"unknown parameter {unknown[0]!r} (the template takes: {takes})", "parameters"
        )
    values: dict[str, str] = {}
    for name, definition in known.items():
        value = given.get(name) or definition.get("default") or ""
        check_parameter_value(value, "parameters", f"parameter {name!r}")
        if definition.get("required") and not value:
            raise WorkspaceInputError(f"parameter {name!r} is required", "parameters")
        values[name] = value
    return values


def template_view(row: Mapping[str, Any]) -> Template:
    return Template(
        id=row["id"],
        organization_id=row["organization_id"],
        name=row["name"],
        display_name=row["display_name"],
        description=row["description"],
        kind=TemplateKind(row["kind"]),
        builtin=row["builtin"],
        parameters=[TemplateParameter(**p) for p in row["parameters"]],
        command=row["command"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def agent_status(row: Mapping[str, Any], now: dt.datetime, timeout: float) -> WorkspaceAgentStatus:
    """The stored status; ``timeout`` for an agent still connecting ``timeout`` seconds after
    it was started (or expected)."""
    status = WorkspaceAgentStatus(row["agent_status"])
    started = row["agent_started_at"]
    if (
        status is WorkspaceAgentStatus.connecting
        and started is not None
        and (now - started).total_seconds() > timeout
    ):
        return WorkspaceAgentStatus.timeout
    return status


def workspace_view(
    row: Mapping[str, Any], now: dt.datetime, timeout: float, token: str | None = None
) -> Workspace:
    return Workspace(
        id=row["id"],
        name=row["name"],
        owner_id=row["owner_id"],
        organization_id=row["organization_id"],
        template_id=row["template_id"],
        template_name=row["template_name"],
        kind=TemplateKind(row["kind"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        agent=WorkspaceAgent(
            id=row["agent_id"],
            status=agent_status(row, now, timeout),
            directory=row["agent_directory"],
            operating_system=row["agent_os"],
            version=row["agent_version"],
        ),
        agent_token=token,
    )
