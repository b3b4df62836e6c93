"""GitWatcher.scan on real repositories: what the diff, branch, origin and totals say."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from chatd.agent.git import DiffLimits, GitWatcher, untracked
from tests.agent.git.conftest import git, make_repo, next_message, repos_by_root, write

pytestmark = pytest.mark.anyio


async def scan(directory: Path, **options: Any) -> dict[str, dict[str, Any]]:
    watcher = GitWatcher(directory, **options)
    try:
        message = await watcher.scan()
    finally:
        await watcher.close()
    assert message["type"] == "changes"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", message["scanned_at"])
    return repos_by_root(message)


def git_view(repo: Path, tmp_path: Path) -> tuple[str, tuple[int, int, int]]:
    """What git itself says on a copy after ``git add -N .``: the diff (without the index
    lines of new files, which the watcher does not write) and the numstat totals."""
    copy = tmp_path / "copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(repo, copy, symlinks=True)
    git(copy, "add", "-N", ".")
    diff = git(copy, "-c", "core.quotePath=off", "diff", "--no-renames", "HEAD")
    diff = without_new_file_index(diff)
    additions = deletions = files = 0
    for line in git(copy, "diff", "--no-renames", "--numstat", "-z", "HEAD").split("\0"):
        if not line:
            continue
        added, removed, _ = line.split("\t", 2)
        files += 1
        additions += 0 if added == "-" else int(added)
        deletions += 0 if removed == "-" else int(removed)
    return diff, (additions, deletions, files)


def without_new_file_index(diff: str) -> str:
    """``diff`` without the index lines of new files (those of staged files included)."""
    return re.sub(r"(?m)^index 0000000\.\.[0-9a-f]+\n", "", diff)


def totals(entry: dict[str, Any]) -> tuple[int, int, int]:
    return entry["additions"], entry["deletions"], entry["changed_files"]


async def test_fresh_repository_without_commits(workspace: Path) -> None:
    git(workspace, "init", "-q")
    write(workspace / "staged.txt", "one\ntwo\n")
    git(workspace, "add", "staged.txt")
    write(workspace / "notes.md", "# notes\n")
    entry = (await scan(workspace))[str(workspace)]
    assert entry["branch"] == "main"
    assert entry["remote_origin"] == ""
    assert entry["removed"] is False
    assert entry["truncated"] is False
    assert entry["unified_diff"] == (
        "diff --git a/notes.md b/notes.md\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/notes.md\n"
        "@@ -0,0 +1 @@\n"
        "+# notes\n"
        "diff --git a/staged.txt b/staged.txt\n"
        "new file mode 100644\n"
        "index 0000000..814f4a4\n"
        "--- /dev/null\n"
        "+++ b/staged.txt\n"
        "@@ -0,0 +1,2 @@\n"
        "+one\n"
        "+two\n"
    )
    assert totals(entry) == (3, 0, 2)


async def test_edits_new_files_and_deletions_match_git(workspace: Path, tmp_path: Path) -> None:
    repo = make_repo(
        workspace,
        {
            "keep.txt": "a\nb\nc\n",
            "edit.txt": "1\n2\n3\n4\n",
            "gone.txt": "bye\n",
            "no-newline.txt": "x",
            "src/deep/module.py": "print('hi')\n",
            "logo.bin": b"\x89PNG\0\0\1",
        },
    )
    write(repo / "edit.txt", "1\ntwo\n3\n4\n5\n")
    (repo / "gone.txt").unlink()
    write(repo / "no-newline.txt", "x\ny")
    write(repo / "logo.bin", b"\x89PNG\0\0\2")
    write(repo / "src/deep/new.py", "a = 1\nb = 2")
    write(repo / "src/empty", "")
    write(repo / "tool.sh", "#!/bin/sh\necho hi\n").chmod(0o755)
    write(repo / "data.bin", b"\0\1\2")
    os.symlink("keep.txt", repo / "link")
    write(repo / "staged.txt", "staged\n")
    git(repo, "add", "staged.txt")
    entry = (await scan(workspace))[str(repo)]
    expected_diff, expected_totals = git_view(repo, tmp_path)
    assert without_new_file_index(entry["unified_diff"]) == expected_diff
    assert totals(entry) == expected_totals
    assert "Binary files /dev/null and b/data.bin differ" in entry["unified_diff"]
    assert "Binary files a/logo.bin and b/logo.bin differ" in entry["unified_diff"]
    assert "new file mode 100755" in entry["unified_diff"]
    assert "new file mode 120000" in entry["unified_diff"]


async def test_two_scans_of_an_unchanged_tree_are_equal(workspace: Path) -> None:
    repo = make_repo(workspace, {"a.txt": "a\n"})
    for index in range(20):
        write(repo / f"dir{index % 3}/file{index}.txt", f"{index}\n" * index)
    first = await scan(workspace)
    second = await scan(workspace)
    assert first[str(repo)]["unified_diff"] == second[str(repo)]["unified_diff"]
    assert first[str(repo)]["changed_files"] == 20
    paths = re.findall(r"(?m)^diff --git a/(\S+) ", first[str(repo)]["unified_diff"])
    assert paths == sorted(paths)


async def test_a_commit_empties_the_diff(workspace: Path) -> None:
    repo = make_repo(workspace, {"a.txt": "a\n"})
    write(repo / "a.txt", "b\n")
    write(repo / "new.txt", "new\n")
    assert (await scan(workspace))[str(repo)]["changed_files"] == 2
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    entry = (await scan(workspace))[str(repo)]
    assert entry["unified_diff"] == ""
    assert totals(entry) == (0, 0, 0)


async def test_branch_detached_head_and_origin(workspace: Path) -> None:
    repo = make_repo(workspace, {"a.txt": "a\n"})
    git(repo, "checkout", "-q", "-b", "feature/x")
    git(repo, "remote", "add", "origin", "https://example.com/team/project.git")
    entry = (await scan(workspace))[str(repo)]
    assert entry["branch"] == "feature/x"
    assert entry["remote_origin"] == "https://example.com/team/project.git"
    git(repo, "checkout", "-q", "--detach")
    short = git(repo, "rev-parse", "--short", "HEAD").strip()
    assert (await scan(workspace))[str(repo)]["branch"] == short


async def test_nested_repositories_and_ignored_directories(workspace: Path) -> None:
    outer = make_repo(workspace, {".gitignore": "node_modules/\n*.log\n", "a.txt": "a\n"})
    inner = make_repo(workspace / "libs" / "inner", {"b.txt": "b\n"})
    hidden = make_repo(workspace / "node_modules" / "pkg", {"c.txt": "c\n"})
    write(workspace / "node_modules" / "dep" / "index.js", "x\n")
    write(workspace / "logs" / "run.log", "log\n")
    write(inner / "b.txt", "changed\n")
    around = make_repo(workspace.parent / "around" / "repo")
    repos = await scan(workspace)
    assert set(repos) == {str(outer), str(inner)}
    assert str(hidden) not in repos and str(around) not in repos
    # The nested repository is reported on its own, not inside the outer one's diff.
    assert repos[str(outer)]["unified_diff"] == ""
    assert "+changed" in repos[str(inner)]["unified_diff"]


async def test_a_directory_that_is_no_repository_lists_those_below_it(workspace: Path) -> None:
    first = make_repo(workspace / "one")
    second = make_repo(workspace / "two" / "deeper")
    write(workspace / "loose.txt", "not in a repo\n")
    assert set(await scan(workspace)) == {str(first), str(second)}


async def test_a_big_file_is_cut_and_marked_with_exact_totals(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(workspace, {"big.txt": "".join(f"line {n}\n" for n in range(400))})
    write(repo / "big.txt", "".join(f"LINE {n}\n" for n in range(500)))
    write(repo / "small.txt", "small\n")
    huge = repo / "huge.log"
    with huge.open("wb") as file:
        file.truncate(1 << 30)  # sparse: a read would be slow and large
    opened: list[str] = []

    def spy(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(os.fsdecode(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(untracked, "open", spy, raising=False)
    watcher = GitWatcher(workspace, limits=DiffLimits(per_file=4096, per_repository=64 * 1024))
    message = await watcher.scan()
    await watcher.close()
    entry = repos_by_root(message)[str(repo)]
    diff = entry["unified_diff"]
    assert entry["truncated"] is True
    big_size = len(git(repo, "diff", "HEAD", "--", "big.txt").encode())
    assert big_size > 4096
    kib = -(-big_size // 1024)
    assert re.search(
        r"diff --git a/big.txt b/big.txt\n"
        r"index [0-9a-f]+\.\.[0-9a-f]+ 100644\n"
        r"--- a/big.txt\n"
        r"\+\+\+ b/big.txt\n"
        rf"@@ chatd: diff omitted: {kib} KiB exceeds the 4 KiB per-file limit @@\n"
        r"(diff --git|$)",
        diff,
    )
    assert (
        "diff --git a/huge.log b/huge.log\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/huge.log\n"
        "@@ chatd: diff omitted: untracked file of 1 GiB exceeds the 4 KiB per-file limit,"
        " not read @@\n"
    ) in diff
    assert "+small\n" in diff
    assert str(huge) not in opened
    assert entry["additions"] == 500 + 1
    assert entry["deletions"] == 400
    assert entry["changed_files"] == 3
    assert message["message"].startswith(f"{repo}: diff omitted for big.txt ({kib} KiB exceeds")
    assert "huge.log (untracked file of" in message["message"]
    # Apart from the unread file, the totals are git's.
    huge.unlink()
    _, (additions, deletions, files) = git_view(repo, tmp_path)
    assert (entry["additions"], entry["deletions"], entry["changed_files"] - 1) == (
        additions,
        deletions,
        files,
    )


async def test_the_repository_limit_cuts_the_files_past_it(workspace: Path) -> None:
    repo = make_repo(workspace)
    for index in range(30):
        write(repo / f"f{index:02}.txt", "x" * 200 + "\n")  # 296 bytes of diff each
    limits = DiffLimits(per_file=1024, per_repository=2048)
    watcher = GitWatcher(workspace, limits=limits)
    message = await watcher.scan()
    await watcher.close()
    entry = repos_by_root(message)[str(repo)]
    diff = entry["unified_diff"]
    assert len(diff.encode()) <= 2048
    assert diff.startswith("diff --git a/f00.txt b/f00.txt\n")
    assert diff.count("+" + "x" * 200) == 6
    assert diff.endswith(
        "diff --git a/f06.txt b/f06.txt\n"
        "new file mode 100644\n"
        "--- /dev/null\n"
        "+++ b/f06.txt\n"
        "@@ chatd: diff omitted: the repository's diff exceeds the 2 KiB limit @@\n"
    )
    assert entry["truncated"] is True
    assert (entry["additions"], entry["changed_files"]) == (30, 30)
    assert message["message"] == (
        f"{repo}: the repository's diff reached its 2 KiB limit, so the diff of 24 more"
        " file(s) was cut or left out: f06.txt, f07.txt, f08.txt, f09.txt, f10.txt,"
        " f11.txt, f12.txt, f13.txt, f14.txt, f15.txt and 14 more"
    )


async def test_names_and_content_that_are_not_utf8(workspace: Path, tmp_path: Path) -> None:
    repo = make_repo(workspace, {"latin.txt": b"caf\xe9\n"})
    write(repo / "latin.txt", b"na\xefve\n")
    write(Path(os.fsdecode(os.fsencode(repo) + b"/bad\xffname.txt")), b"\xfe\xff\n")
    write(repo / "caf\u00e9.txt", "ok\n")
    write(repo / 'tab\tand"quote.txt', "q\n")
    entry = (await scan(workspace))[str(repo)]
    diff = entry["unified_diff"]
    assert "diff --git a/bad\ufffdname.txt b/bad\ufffdname.txt\n" in diff
    assert "diff --git a/caf\u00e9.txt b/caf\u00e9.txt\n" in diff
    assert '+++ "b/tab\\tand\\"quote.txt"\n' in diff
    assert "-caf\ufffd\n+na\ufffdve\n" in diff
    expected_diff, expected_totals = git_view(repo, tmp_path)
    assert totals(entry) == expected_totals
    assert without_new_file_index(diff) == expected_diff


async def test_scanning_never_writes_the_index(workspace: Path, tmp_path: Path) -> None:
    repo = make_repo(workspace, {f"f{n}.txt": f"{n}\n" for n in range(50)})
    # Newer timestamps on unchanged files: a plain `git status` would refresh the index.
    for n in range(50):
        os.utime(repo / f"f{n}.txt", ns=(1_900_000_000_000_000_000, 1_900_000_000_000_000_000))
    write(repo / "f1.txt", "changed\n")
    index = repo / ".git" / "index"
    before = (index.stat().st_mtime_ns, index.read_bytes())
    listing = sorted(os.listdir(repo / ".git"))
    watcher = GitWatcher(workspace, debounce=0.01)
    await watcher.scan()
    async with watcher.subscribe() as messages:
        await next_message(messages)
    await watcher.close()
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before
    assert sorted(os.listdir(repo / ".git")) == listing
    # The same check against plain git shows the test would catch a write.
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy, symlinks=True)
    copied = copy / ".git" / "index"
    copied_before = copied.read_bytes()
    git(copy, "status", "--porcelain")
    assert copied.read_bytes() != copied_before


async def test_a_repository_git_refuses_is_reported_with_the_reason(workspace: Path) -> None:
    repo = make_repo(workspace, {"a.txt": "a\n"})
    write(repo / ".git" / "HEAD", "garbage\n")
    message = await GitWatcher(workspace).scan()
    entry = repos_by_root(message)[str(repo)]
    assert entry["unified_diff"] == "" and entry["removed"] is False
    assert message["message"].startswith(f"{repo}: git status failed: ")


async def test_long_lines_are_counted_once(workspace: Path, tmp_path: Path) -> None:
    # Lines far longer than the pieces the output is read in, full of "+" and "-".
    repo = make_repo(workspace, {"min.js": "+" * 300_000 + "\n" + "-" * 200_000 + "\nend\n"})
    write(repo / "min.js", "-" * 300_000 + "\n" + "+" * 200_001 + "\nend\n")
    entry = (await scan(workspace))[str(repo)]
    assert totals(entry) == git_view(repo, tmp_path)[1] == (2, 2, 1)
    assert entry["truncated"] is True


async def test_a_linked_work_tree_is_a_repository_of_its_own(workspace: Path) -> None:
    main = make_repo(workspace / "main", {"a.txt": "a\n"})
    git(main, "worktree", "add", "-q", "-b", "side", str(workspace / "linked"))
    linked = (workspace / "linked").resolve()
    write(linked / "a.txt", "side\n")
    repos = await scan(workspace)
    assert set(repos) == {str(main), str(linked)}
    assert repos[str(linked)]["branch"] == "side"
    assert repos[str(linked)]["changed_files"] == 1
    assert repos[str(main)]["changed_files"] == 0
