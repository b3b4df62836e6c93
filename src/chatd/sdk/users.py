"""User, organization and API-token wire types (a subset of Coder's /api/v2)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import ClassVar

from chatd.sdk.base import Int64, RequestModel, WireModel


class Role(WireModel):
    name: str
    display_name: str
    organization_id: uuid.UUID | None = None


class User(WireModel):
    id: uuid.UUID
    username: str
    email: str
    name: str = ""
    created_at: dt.datetime
    updated_at: dt.datetime
    last_seen_at: dt.datetime | None = None
    status: str = "active"
    login_type: str = "password"
    organization_ids: list[uuid.UUID]
    roles: list[Role]
    avatar_url: str = ""


class GetUsersResponse(WireModel):
    users: list[User]
    count: int


class CreateFirstUserRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"email", "username", "password"})

    email: str = ""
    username: str = ""
    name: str = ""
    password: str = ""


class CreateFirstUserResponse(WireModel):
    user_id: uuid.UUID
    organization_id: uuid.UUID


class CreateUserRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"email", "username", "password"})

    email: str = ""
    username: str = ""
    name: str = ""
    password: str = ""
    organization_ids: list[uuid.UUID] | None = None


class LoginWithPasswordRequest(RequestModel):
    email: str = ""
    password: str = ""


class LoginWithPasswordResponse(WireModel):
    session_token: str


class Organization(WireModel):
    id: uuid.UUID
    name: str
    display_name: str
    description: str = ""
    icon: str = ""
    created_at: dt.datetime
    updated_at: dt.datetime
    is_default: bool


class CreateTokenRequest(RequestModel):
    token_name: str = ""
    lifetime: Int64 | None = None  # nanoseconds, as Coder's API takes it
    scope: str | None = None


class GenerateAPIKeyResponse(WireModel):
    key: str


class APIKey(WireModel):
    id: str
    user_id: uuid.UUID
    last_used: dt.datetime
    expires_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime
    login_type: str
    scope: str = "all"
    token_name: str
    lifetime_seconds: int
