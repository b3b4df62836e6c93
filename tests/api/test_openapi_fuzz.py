"""Schemathesis over the served OpenAPI document: no 5xx, no undocumented status, valid shapes.

The app runs in-process on a SQLite file seeded with an admin, a model config and a chat, so
generated requests reach real handlers. A generated ``{chat}`` is replaced by the seeded chat
(unless the case is about that value being invalid), so that bodies and queries reach the
checks behind the chat lookup instead of ending in a 404.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from chatd.api.app import create_app
from chatd.bootstrap import create_first_user
from chatd.secret_key import box_for
from chatd.settings import Settings
from chatd.store.db import Database
from tests.conftest import TEST_RATE_LIMIT_BURST
from tests.helpers import ApiUser, make_chat, seed_model_config

SEEDED: dict[str, str] = {}


def _seed(path: Path, app_settings: Settings) -> tuple[str, str]:
    async def seed() -> tuple[str, str]:
        db = Database(f"sqlite:///{path}", secrets=box_for(app_settings))
        await db.migrate()
        first = await create_first_user(db, app_settings)
        assert first is not None
        config_id = await seed_model_config(db)
        from chatd.store import users as q

        async with db.read() as conn:
            user = await q.get_user_by_login(conn, first.email)
            org = await q.get_default_org(conn)
        assert user is not None and org is not None
        owner = ApiUser(id=user.id, username=user.username, token=first.token, org_id=org)
        chat_id = await make_chat(db, owner, config_id)
        await db.close()
        return first.token, str(chat_id)

    return asyncio.run(seed())


@pytest.fixture(scope="module")
def fuzz_schema(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = tmp_path_factory.mktemp("fuzz")
    app_settings = Settings(
        data_dir=data,
        config_dir=data / "config",
        first_user_email="fuzz@example.com",
        first_user_username="fuzz",
        first_user_password="fuzz-password-1",
        openai_api_key="",
        anthropic_api_key="",
        workers_enabled=False,
        rate_limit_burst=TEST_RATE_LIMIT_BURST,
    )
    SEEDED["token"], SEEDED["chat"] = _seed(data / "chatd.db", app_settings)
    app = create_app(app_settings)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def aim_at_seeded_chat(case: Any) -> None:
    params = case.path_parameters
    if not params or "chat" not in params:
        return
    data = case.meta.phase.data if case.meta is not None else None
    locations = {getattr(data, "parameter_location", None)}
    locations |= {m.parameter_location for m in getattr(data, "mutations", ())}
    if ParameterLocation.PATH not in locations:
        params["chat"] = SEEDED["chat"]


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_document(fuzz_schema: Any, mode: GenerationMode) -> None:
    operations = [result.ok() for result in fuzz_schema.get_all_operations()]
    assert len(operations) > 30
    headers = {"Coder-Session-Token": SEEDED["token"]}
    for operation in operations:

        @settings(
            max_examples=15,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            aim_at_seeded_chat(case)
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Unsatisfiable:
            # Nothing about this operation can be made invalid (e.g. no parameters).
            assert mode is GenerationMode.NEGATIVE
