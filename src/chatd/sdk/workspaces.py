"""Workspace templates and workspaces (chatd's own shapes, after Coder's names).

A template says how a workspace is made and where its agent runs (``kind``): ``local`` (the
server starts the agent on its own host, in a directory of its own), ``command`` (the server
runs an administrator's command that starts the agent, e.g. in a container) or ``external``
(the user runs the agent anywhere, with the token shown once when the workspace is created).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import ClassVar

from chatd.sdk.base import RequestModel, StrictBool, WireModel


class TemplateKind(StrEnum):
    local = "local"
    external = "external"
    command = "command"


class WorkspaceAgentStatus(StrEnum):
    connecting = "connecting"
    connected = "connected"
    disconnected = "disconnected"
    # Still connecting longer than the server's agent connect timeout.
    timeout = "timeout"


class TemplateParameter(WireModel):
    name: str
    description: str = ""
    required: bool = False
    default: str = ""


class Template(WireModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    display_name: str = ""
    description: str = ""
    kind: TemplateKind
    builtin: bool = False
    parameters: list[TemplateParameter]
    # The command of a ``command`` template: shown to administrators only.
    command: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime


class TemplateParameterRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"name"})

    name: str = ""
    description: str | None = None
    required: StrictBool | None = None
    default: str | None = None


class CreateTemplateRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"name", "kind"})

    name: str = ""
    display_name: str | None = None
    description: str | None = None
    kind: str = ""  # "external" or "command"
    command: str | None = None  # required for "command"
    parameters: list[TemplateParameterRequest] | None = None


class UpdateTemplateRequest(RequestModel):
    """Fields left out stay as they are. A built-in template takes only ``display_name`` and
    ``description``."""

    name: str | None = None
    display_name: str | None = None
    description: str | None = None
    command: str | None = None
    parameters: list[TemplateParameterRequest] | None = None


class WorkspaceAgent(WireModel):
    id: uuid.UUID
    status: WorkspaceAgentStatus
    # What the agent said of itself when it last connected ("" before it ever did).
    directory: str = ""
    operating_system: str = ""
    version: str = ""


class Workspace(WireModel):
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    # The template it was made from (None once that template is deleted).
    template_id: uuid.UUID | None = None
    template_name: str = ""
    kind: TemplateKind
    created_at: dt.datetime
    updated_at: dt.datetime
    agent: WorkspaceAgent
    # Only in the answer that created an external workspace: the agent's token, shown once.
    agent_token: str | None = None


class WorkspaceBuildParameter(RequestModel):
    name: str = ""
    value: str = ""


class CreateWorkspaceRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"template_id"})

    template_id: uuid.UUID | None = None
    name: str | None = None
    rich_parameter_values: list[WorkspaceBuildParameter] | None = None


class WorkspacesResponse(WireModel):
    workspaces: list[Workspace]
    count: int
