"""A user's own GitHub token, which reads the pull-request status of their chats (chatd's).

The token is write-only: ``GET`` tells whether one is set and since when, never the token.
Like the other /users/{user} routes, only the user or a site owner may use them; to anyone
else the user is missing (404). Setting and removing a token are audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from chatd.api.audit import audited_write
from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError
from chatd.api.openapi import json_body
from chatd.api.params import read_json
from chatd.api.user_param import UserPath, resolve_user
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.github import GitHubTokenStatus, SetGitHubTokenRequest
from chatd.store import git_tokens

router = APIRouter(prefix="/api/v2", tags=["Users"], responses=ERROR_RESPONSES)

PATH = "/users/{user}/github-token"
MAX_TOKEN_CHARS = 1024


def check_token(raw: str) -> str:
    """The token to store (surrounding whitespace dropped); 400 for one GitHub cannot take."""
    token = raw.strip()
    if not token:
        raise ApiError(400, "GitHub token is required.")
    if len(token) > MAX_TOKEN_CHARS:
        raise ApiError(400, f"GitHub token must be at most {MAX_TOKEN_CHARS} characters.")
    if not all("!" <= ch <= "~" for ch in token):
        raise ApiError(
            400, "GitHub token must be printable ASCII without spaces or control characters."
        )
    return token


@router.get(PATH, response_model=GitHubTokenStatus, summary="Whether the user has a GitHub token")
async def get_github_token(user: UserPath, actor: CurrentActor, db: DB) -> GitHubTokenStatus:
    target = await resolve_user(db, actor, user)
    async with db.read() as conn:
        updated_at = await git_tokens.token_updated_at(conn, target.id)
    return GitHubTokenStatus(configured=updated_at is not None, updated_at=updated_at)


@router.put(
    PATH,
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Set the user's GitHub token",
    openapi_extra=json_body(SetGitHubTokenRequest),
)
async def set_github_token(
    user: UserPath, request: Request, actor: CurrentActor, db: DB
) -> Response:
    target = await resolve_user(db, actor, user)
    body = await read_json(request, SetGitHubTokenRequest)
    token = check_token(body.token)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.github_token,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        await git_tokens.set_token(conn, db.now(), target.id, token, db.secrets)
        change.resource_id, change.resource_target = target.id, target.username
    return Response(status_code=204)


@router.delete(
    PATH,
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Remove the user's GitHub token",
)
async def delete_github_token(
    user: UserPath, request: Request, actor: CurrentActor, db: DB
) -> Response:
    target = await resolve_user(db, actor, user)
    async with audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.github_token,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        await git_tokens.delete_token(conn, target.id)
        change.resource_id, change.resource_target = target.id, target.username
    return Response(status_code=204)
