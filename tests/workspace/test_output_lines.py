"""A process's output cut into lines for the log: long lines are cut, and marked."""

from __future__ import annotations

from chatd.workspace.launcher import OutputLines, agent_command


def test_lines_across_chunks() -> None:
    lines = OutputLines(limit=10)
    assert lines.feed(b"one\ntw") == ["one"]
    assert lines.feed(b"o\n\nthr") == ["two", ""]
    assert lines.feed(b"ee") == []
    assert lines.finish() == ["three"]
    assert lines.finish() == []


def test_a_long_line_is_cut_and_marked() -> None:
    lines = OutputLines(limit=8)
    assert lines.feed(b"0123456789") == []
    assert lines.feed(b"abc" * 1000) == []
    assert lines.feed(b"tail\nnext\n") == [
        "01234567 [cut: 3006 more bytes]",
        "next",
    ]
    assert lines.feed(b"x" * 9) == []
    assert lines.finish() == ["xxxxxxxx [cut: 1 more bytes]"]


def test_bytes_that_are_not_text() -> None:
    lines = OutputLines(limit=100)
    assert lines.feed(b"caf\xc3\xa9 \xff\r\n") == ["café \ufffd"]


def test_the_agent_runs_on_an_interpreter_path_without_dot_dot() -> None:
    """A server started as ``../.venv/bin/python`` names its interpreter with ``..``; the
    agent's command (run inside a sandbox that binds only the interpreter's directories) must
    name it plainly."""
    assert agent_command("/srv/app/web/../.venv/bin/python") == (
        "/srv/app/.venv/bin/python",
        "-m",
        "chatd.agent",
    )
    assert agent_command("/usr/bin/python3")[0] == "/usr/bin/python3"
