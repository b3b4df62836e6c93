"""The workspace's git state, live, against a real ``chatd server`` and its agents.

A client on ``/chats/{chat}/stream/git`` sees each change a turn makes as it makes it: the
fake model's next reply waits behind a gate until the test has seen the change. Then the
diff endpoint and the chat's ``diff_status`` agree with git run in the workspace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e import events as ev
from tests.e2e.turn_harness import Deployment, Fake, deployment, fake_provider
from tests.e2e.workspace_support import ChatdAgent, Rest, call

pytestmark = pytest.mark.slow

GIT = "/api/experimental/chats/{}/stream/git"
Message = dict[str, Any]


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fake]:
    with fake_provider(tmp_path_factory.mktemp("fake")) as running:
        yield running


@pytest.fixture(scope="module")
def origins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the bare repositories workspaces clone from live (a clone root of the server)."""
    return tmp_path_factory.mktemp("origins")


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def dep(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    fake: Fake,
    origins: Path,
) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp("server")
    env = {"CHATD_WORKSPACE_CLONE_ROOTS": str(origins)}
    with deployment(home, fake, request.param, **env) as running:
        yield running


@pytest.fixture(autouse=True)
def script_used_up(fake: Fake) -> Iterator[None]:
    yield
    assert fake.remaining() == 0, "a test left fake replies unused"


def git(directory: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(directory), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def bare_origin(origins: Path) -> Path:
    """A bare repository on ``main`` with two commits' worth of files."""
    work = origins / f"work-{uuid.uuid4().hex[:6]}"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "README.md").write_text("# Widgets\n\nMakes widgets.\nSlowly.\n")
    (work / "src").mkdir()
    (work / "src" / "app.py").write_text("print('widgets')\n")
    git(work, "add", ".")
    git(work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "start")
    bare = origins / f"{work.name}.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    shutil.rmtree(work)
    return bare


class GitSocket:
    """A client of ``/stream/git``: every message it received, in order."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[Message] = []

    def next(self, timeout: float = 60) -> Message:
        message: Message = json.loads(self.ws.recv(timeout))
        self.messages.append(message)
        return message

    def until(self, done: Callable[[Message], bool], what: str, timeout: float = 60) -> Message:
        """The first message from now on for which ``done`` holds."""
        while True:
            try:
                message = self.next(timeout)
            except TimeoutError:
                raise AssertionError(f"no message with {what}; got {self.messages}") from None
            if done(message):
                return message

    def send(self, message: Message) -> None:
        self.ws.send(json.dumps(message))


@contextmanager
def git_socket(dep: Deployment, chat_id: str) -> Iterator[GitSocket]:
    url = dep.api.url.replace("http://", "ws://") + GIT.format(chat_id)
    with connect(url, additional_headers={"Coder-Session-Token": dep.api.token}) as ws:
        yield GitSocket(ws)


def repo(message: Message, root: Path) -> Message | None:
    for entry in message.get("repositories") or []:
        if entry["repo_root"] == str(root):
            return dict(entry)
    return None


def diff_of(root: Path, needle: str) -> Callable[[Message], bool]:
    def done(message: Message) -> bool:
        entry = repo(message, root)
        return entry is not None and needle in entry["unified_diff"]

    return done


def open_gate(dep: Deployment, name: str) -> None:
    r = httpx2.post(f"{dep.fake.url}/fake/gates/{name}", timeout=10)
    assert r.status_code == 204


def local_workspace(rest: Rest, template: str, name: str, **parameters: str) -> str:
    body: dict[str, Any] = {"template_id": rest.template(template), "name": name}
    if parameters:
        body["rich_parameter_values"] = [{"name": k, "value": v} for k, v in parameters.items()]
    made = rest.call("POST", f"/organizations/{rest.org}/members/me/workspaces", 201, json=body)
    rest.wait_agent(made["id"], "connected")
    return str(made["id"])


def numstat(directory: Path, tmp: Path) -> tuple[int, int, int]:
    """Additions, deletions and files changed against HEAD, untracked files included, as git
    counts them (on a copy, so the workspace's index is not touched)."""
    copy = tmp / f"copy-{uuid.uuid4().hex[:6]}"
    shutil.copytree(directory, copy, symlinks=True)
    git(copy, "add", "-N", ".")
    additions = deletions = files = 0
    for line in git(copy, "diff", "--numstat", "HEAD").splitlines():
        added, deleted, _ = line.split("\t", 2)
        additions += int(added)
        deletions += int(deleted)
        files += 1
    return additions, deletions, files


def test_a_turn_in_a_scratch_workspace_is_watched_live(dep: Deployment) -> None:
    rest = Rest(dep)
    workspace_id = local_workspace(rest, "scratch", f"git-scratch-{uuid.uuid4().hex[:6]}")
    root = dep.server.data_dir / "workspaces" / workspace_id
    chat_id = dep.idle_chat(workspace_id=workspace_id)
    tag = uuid.uuid4().hex[:6]
    gates = [f"{name}-{tag}" for name in ("written", "edited", "nested", "removed")]
    script = [
        call("write_file", "call_write", path="notes.txt", content="one\n"),
        call(
            "edit_files",
            "call_edit",
            files=[{"path": "notes.txt", "edits": [{"old_text": "one", "new_text": "two"}]}],
        ),
        call(
            "execute",
            "call_nested",
            command="mkdir nested && cd nested && git init -q && echo inner > inner.txt",
        ),
        call("execute", "call_remove", command="rm -rf nested"),
        {"text": "Done."},
    ]
    for entry, gate in zip(script[1:], gates, strict=True):
        entry["wait_for"] = gate
    dep.fake.script(*script)

    with git_socket(dep, chat_id) as socket:
        first = socket.next()
        assert first["type"] == "changes"
        start = repo(first, root)
        assert start is not None, first
        assert start["unified_diff"] == "" and start["removed"] is False
        assert start["branch"] == git(root, "symbolic-ref", "--short", "HEAD").strip()
        with ev.watch(dep.api.url, dep.api.token) as watch:
            dep.api.send(chat_id, "take notes")
            socket.until(diff_of(root, "+one"), "the written file")
            open_gate(dep, gates[0])
            edited = socket.until(diff_of(root, "+two"), "the edit")
            assert "+one" not in repo(edited, root)["unified_diff"]  # type: ignore[index]
            open_gate(dep, gates[1])
            nested = root / "nested"
            socket.until(diff_of(nested, "+inner"), "the nested repository")
            open_gate(dep, gates[2])
            gone = socket.until(
                lambda m: (repo(m, nested) or {}).get("removed") is True, "the removed repository"
            )
            assert repo(gone, nested)["unified_diff"] == ""  # type: ignore[index]
            open_gate(dep, gates[3])
            dep.api.wait_status(chat_id, "waiting")
            changed = watch.until(ev.watched("diff_status_change", chat_id))
        # A refresh answers with every repository, whatever changed.
        socket.send({"type": "refresh"})
        fresh = socket.next()
        assert [r["repo_root"] for r in fresh["repositories"]] == [str(root)]
        socket.send({"type": "bogus"})
        assert socket.next()["type"] == "error"

    status = dep.api.chat(chat_id)["diff_status"]
    assert (status["additions"], status["deletions"], status["changed_files"]) == (1, 0, 1)
    last = [e for e in changed if e["kind"] == "diff_status_change"][-1]
    assert last["chat"]["diff_status"]["changed_files"] >= 1
    diff = dep.api.call("GET", f"/{chat_id}/diff", 200)
    assert diff["diff"] == repo(fresh, root)["unified_diff"]  # type: ignore[index]
    assert "+two" in diff["diff"] and "remote_origin" not in diff


def test_a_clone_of_a_repository_with_an_origin(
    dep: Deployment, origins: Path, tmp_path: Path
) -> None:
    rest = Rest(dep)
    origin = bare_origin(origins)
    name = f"git-clone-{uuid.uuid4().hex[:6]}"
    workspace_id = local_workspace(rest, "git", name, repo_url=str(origin))
    root = dep.server.data_dir / "workspaces" / workspace_id
    chat_id = dep.idle_chat(workspace_id=workspace_id)
    # Bound to a workspace whose state is known: the chat has a diff status at once.
    assert "stale_at" in dep.api.chat(chat_id)["diff_status"]
    gate = f"edited-{name}"
    edit = [
        {"path": "README.md", "edits": [{"old_text": "Slowly.", "new_text": "Quickly.\nWell."}]}
    ]
    script = [
        call("edit_files", "call_edit", files=edit),
        call("write_file", "call_write", path="CHANGES.md", content="- faster\n- better\n"),
        call("execute", "call_rm", command="rm src/app.py"),
        {"text": "Done.", "wait_for": gate},
    ]
    dep.fake.script(*script)

    with git_socket(dep, chat_id) as socket:
        first = repo(socket.next(), root)
        assert first is not None
        assert (first["branch"], first["remote_origin"]) == ("main", str(origin))
        dep.api.send(chat_id, "improve the readme")
        final = socket.until(
            lambda m: "deleted file" in (repo(m, root) or {}).get("unified_diff", ""),
            "the deleted file",
        )
        open_gate(dep, gate)
        dep.api.wait_status(chat_id, "waiting")

    changes = repo(final, root)
    assert changes is not None
    for line in ("-Slowly.", "+Quickly.", "+Well.", "+- faster", "-print('widgets')"):
        assert line in changes["unified_diff"].splitlines(), changes["unified_diff"]
    expected = numstat(root, tmp_path)
    counted = (changes["additions"], changes["deletions"], changes["changed_files"])
    assert counted == expected
    status = dep.api.chat(chat_id)["diff_status"]
    assert (status["additions"], status["deletions"], status["changed_files"]) == expected
    diff = dep.api.call("GET", f"/{chat_id}/diff", 200)
    assert diff["branch"] == "main" and diff["remote_origin"] == str(origin)
    assert diff["diff"] == changes["unified_diff"]
    found = dep.api.call("GET", "", 200, params={"q": f"repo:{origin.name.upper()}"})
    assert [c["id"] for c in found] == [chat_id]


def refusal(dep: Deployment, path: str) -> tuple[int, dict[str, Any]]:
    url = dep.api.url.replace("http://", "ws://") + path
    with pytest.raises(InvalidStatus) as refused:
        with connect(url, additional_headers={"Coder-Session-Token": dep.api.token}):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body or b"{}")


def test_refusals_without_a_workspace_or_a_connected_agent(dep: Deployment, tmp_path: Path) -> None:
    chat_id = dep.idle_chat()
    no_workspace = {"message": "Chat has no workspace to watch."}
    assert refusal(dep, GIT.format(chat_id)) == (400, no_workspace)

    rest = Rest(dep)
    external = rest.template("external", kind="external")
    body = {"template_id": external, "name": f"git-ext-{uuid.uuid4().hex[:6]}"}
    made = rest.call("POST", f"/organizations/{rest.org}/members/me/workspaces", 201, json=body)
    chat_id = dep.idle_chat(workspace_id=made["id"])
    status = rest.agent_status(made["id"])
    assert status != "connected"
    assert refusal(dep, GIT.format(chat_id)) == (
        400,
        {"message": f'Agent state is "{status}", it must be in the "connected" state.'},
    )
    agent = ChatdAgent(dep.api.url, made["agent_token"], tmp_path)
    agent.start()
    try:
        rest.wait_agent(made["id"], "connected")
        with git_socket(dep, chat_id) as socket:
            assert socket.next()["type"] == "changes"
            agent.kill()
            with pytest.raises(ConnectionClosed):  # the socket closes with the agent
                socket.until(lambda m: False, "nothing", timeout=30)
        rest.wait_agent(made["id"], "disconnected")
    finally:
        agent.stop()
    assert refusal(dep, GIT.format(chat_id)) == (
        400,
        {"message": 'Agent state is "disconnected", it must be in the "connected" state.'},
    )
