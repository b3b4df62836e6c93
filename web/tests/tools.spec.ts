// Tool calls in the transcript and the workspace panels, in a real local workspace: the fake
// model creates a workspace, writes a file, runs a command (its output in colour), edits the
// file and answers; the diff panel follows the workspace's git state live, and the desktop
// panel opens the workspace's virtual display through noVNC.
import { expect, test, type APIRequestContext, type Page, type WebSocketRoute } from "@playwright/test";
import {
  addedFilePatch,
  countChanges,
  patchOfFile,
  replacementsPatch,
  splitGitDiff,
} from "../src/chat/tools/diffText";
import { summarize } from "../src/chat/tools/summary";
import { parseArgs, partialArgs } from "../src/chat/tools/values";
import { capture, createChat, organizationId, script, signInQuickly } from "./support";

const STREAM = { stream: true };

async function templateId(request: APIRequestContext, name: string): Promise<string> {
  const org = await organizationId(request);
  const r = await request.get(`/api/v2/organizations/${org}/templates`);
  expect(r.ok()).toBeTruthy();
  const found = ((await r.json()) as { id: string; name: string }[]).find((t) => t.name === name);
  expect(found, `template ${name}`).toBeTruthy();
  return found!.id;
}

function call(name: string, id: string, args: Record<string, unknown>) {
  return { match: STREAM, tool_calls: [{ name, id, args }] };
}

// A 1x1 PNG, for attach_file's preview.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

const COMMAND =
  `printf '%s' '${PNG}' | base64 -d > dot.png && ` +
  "git init -q && git add -A && git -c user.name=t -c user.email=t@example.com commit -qm start" +
  " && printf '\\033[32mworkspace ready\\033[0m\\n'";

/** Opens the diff panel's sheet at phone width (the panels sit beside the chat otherwise). */
async function diffPanelShown(page: Page): Promise<void> {
  const panel = page.locator('.panel[data-panel="git"]');
  if ((page.viewportSize()?.width ?? 1280) <= 768 && !(await panel.isVisible())) {
    await page.locator(".panel-bar").getByRole("button", { name: /Changes/ }).click();
  }
  await expect(panel.getByText("hello.py").first()).toBeVisible();
}

test("a workspace turn shows its command output, its edit as a diff and the live panels", async ({ page }) => {
  test.setTimeout(90_000);
  const refused: string[] = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
  });
  page.on("pageerror", (e) => refused.push(e.message));
  await signInQuickly(page);
  const scratch = await templateId(page.request, "scratch");
  const name = `tools-${Date.now().toString(36)}`;
  await script(page.request, [
    call("create_workspace", "call_create", { template_id: scratch, name }),
    call("write_file", "call_write", { path: "hello.py", content: "print('hello')\n" }),
    call("execute", "call_run", { command: COMMAND, model_intent: "Starting a repository" }),
    call("edit_files", "call_edit", {
      files: [{ path: "hello.py", edits: [{ old_text: "'hello'", new_text: "'goodbye'" }] }],
    }),
    {
      match: STREAM,
      tool_calls: [
        { name: "execute", id: "call_seq", args: { command: "seq 1 100" } },
        { name: "read_file", id: "call_read", args: { path: "hello.py" } },
        {
          name: "edit_files",
          id: "call_bad_edit",
          args: { files: [{ path: "hello.py", edits: [{ old_text: "'nowhere'", new_text: "'x'" }] }] },
        },
        { name: "attach_file", id: "call_attach", args: { path: "dot.png" } },
      ],
    },
    { match: STREAM, text: "Edited hello.py to say goodbye." },
  ]);
  const chat = await createChat(page.request, "make a workspace and edit hello.py");
  // The diff panel's socket passes through here, so the test can see what the page sends
  // and drop the connection as the server does when the workspace's agent goes away.
  const gitSockets: WebSocketRoute[] = [];
  const sent: string[] = [];
  await page.routeWebSocket(/\/stream\/git$/, (ws) => {
    gitSockets.push(ws);
    const server = ws.connectToServer();
    ws.onMessage((message) => {
      sent.push(String(message));
      server.send(message);
    });
  });
  await page.goto(`/chats/${chat.id}`);

  // The command, its output in a terminal block (green, from its ANSI escape), its exit code.
  const run = page.locator('.tool-call[data-tool="execute"]').first();
  await expect(run.getByRole("button", { name: /^execute printf '%s'/ })).toBeVisible({ timeout: 45_000 });
  const screen = run.getByLabel(/^Output of printf/);
  await expect(screen.locator(".fg-green")).toHaveText("workspace ready", { timeout: 30_000 });
  await expect(screen).not.toContainText("\u001b[");
  await expect(run.getByText("exit code 0")).toBeVisible();

  // The edit as a rendered diff of hello.py, from the agent's own diff.
  await expect(page.getByText("Edited hello.py to say goodbye.")).toBeVisible({ timeout: 30_000 });
  const edit = page.locator('.tool-call[data-tool="edit_files"][data-state="done"]');
  await expect(edit.getByRole("button", { name: /edit_files hello\.py Done/ })).toBeVisible();
  await expect(edit.locator(".diff-code-insert")).toHaveText("print('goodbye')");
  await expect(edit.locator(".diff-code-delete")).toHaveText("print('hello')");
  await expect(edit.locator(".diff-file summary")).toContainText("+1 −1");
  // The written file, as an added file.
  const write = page.locator('.tool-call[data-tool="write_file"]');
  await expect(write.locator(".diff-code-insert")).toHaveText("print('hello')");

  // Long output shows its tail until asked for all of it.
  const seq = page.locator('.tool-call[data-tool="execute"]').filter({ hasText: "seq 1 100" });
  const seqScreen = seq.getByLabel("Output of seq 1 100");
  await expect(seq.getByText("Last 30 of 100 lines")).toBeVisible();
  await expect(seqScreen).toContainText(/^\$ seq 1 100\n71\n72\n/);
  await seq.getByRole("button", { name: "Show all" }).click();
  await expect(seqScreen).toContainText(/^\$ seq 1 100\n1\n2\n3\n/);

  // read_file: the path in the header, the content folded away until asked for.
  const read = page.locator('.tool-call[data-tool="read_file"]');
  await read.getByRole("button", { name: /read_file hello\.py Done/ }).click();
  await read.getByText("Content", { exact: true }).click();
  await expect(read.getByLabel("Content of hello.py")).toContainText("print('goodbye')");

  // A failed edit: its error, and the edit it asked for.
  const bad = page.locator('.tool-call[data-state="error"]');
  await expect(bad.getByRole("button", { name: /edit_files hello\.py Error/ })).toBeVisible();
  await expect(bad.locator(".tool-error")).not.toBeEmpty();
  await expect(bad.getByText("The edits it asked for (not applied):")).toBeVisible();
  await expect(bad.locator(".diff-code-delete")).toHaveText("'nowhere'");

  // attach_file: the image, served from the chat's files, and a link to download it.
  const attach = page.locator('.tool-call[data-tool="attach_file"]');
  const image = attach.getByRole("img", { name: "dot.png" });
  await expect(image).toBeVisible();
  await expect.poll(() => image.evaluate((img: HTMLImageElement) => img.naturalWidth)).toBe(1);
  await expect(attach.getByRole("link", { name: "dot.png" }).last()).toHaveAttribute("download", "dot.png");

  // The diff panel: the repository's change, with its counts, live from the workspace.
  const panels = page.getByRole("complementary", { name: "Workspace" });
  const git = panels.locator('.panel[data-panel="git"]');
  await expect(git.locator(".git-repo > summary")).toContainText("+1 −1");
  await expect(git.locator(".diff-file summary")).toContainText("hello.py");
  await expect(git.locator(".diff-code-insert")).toHaveText("print('goodbye')");
  await git.getByRole("button", { name: "Refresh" }).click();
  await expect.poll(() => sent).toContain('{"type":"refresh"}');
  await expect(git.locator(".diff-code-insert")).toHaveText("print('goodbye')");
  // Dropped (1013: the agent went away), the panel connects again and still shows the change.
  const before = gitSockets.length;
  await gitSockets.at(-1)!.close({ code: 1013, reason: "the workspace agent disconnected" });
  await expect.poll(() => gitSockets.length).toBe(before + 1);
  await expect(git.getByRole("button", { name: "Refresh" })).toBeEnabled();
  await expect(git.locator(".diff-code-insert")).toHaveText("print('goodbye')");

  await capture(page, "tool-calls", async (p) => {
    await expect(p.locator(".terminal-screen").first()).toBeVisible();
  });
  await capture(page, "diff-panel", diffPanelShown);
  // On a phone the panel is a full-screen sheet (opened while capturing); closing it returns
  // to the button that opened it.
  await page.setViewportSize({ width: 390, height: 844 });
  const sheet = page.getByRole("dialog", { name: "Changes" });
  await expect(sheet.getByText("print('goodbye')")).toBeVisible();
  await sheet.getByRole("button", { name: "Close" }).click();
  await expect(sheet).toBeHidden();
  await expect(page.locator(".panel-bar").getByRole("button", { name: /Changes/ })).toBeFocused();
  await page.setViewportSize({ width: 1280, height: 800 });

  // The desktop: noVNC connects to the workspace's virtual display and draws on a canvas (in a
  // page of its own: the socket routing above replaces the page's WebSocket, which noVNC
  // refuses to use).
  const other = await page.context().newPage();
  other.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) refused.push(m.text());
  });
  await other.goto(`/chats/${chat.id}`);
  const desktop = other.getByRole("complementary", { name: "Workspace" }).locator('.panel[data-panel="desktop"]');
  await desktop.getByRole("button", { name: "Connect to desktop" }).click();
  await expect(desktop.getByText("Connected")).toBeVisible({ timeout: 30_000 });
  await expect(desktop.locator(".desktop-screen canvas")).toBeVisible();
  await desktop.getByRole("button", { name: "Disconnect" }).click();
  await expect(desktop.getByRole("button", { name: "Connect again" })).toBeVisible();
  await other.close();
  expect(refused).toEqual([]);
});

// The diff text helpers and the header summaries, without a browser.

test("a repository diff splits per file, keeping the agent's omitted-diff notes apart", () => {
  const diff = [
    "diff --git a/big.txt b/big.txt",
    "index 1111111..2222222 100644",
    "--- a/big.txt",
    "+++ b/big.txt",
    "@@ chatd: diff omitted: 312 KiB exceeds the 256 KiB per-file limit @@",
    "diff --git a/new.txt b/new.txt",
    "new file mode 100644",
    "index 0000000..3333333",
    "--- /dev/null",
    "+++ b/new.txt",
    "@@ -0,0 +1,2 @@",
    "+one",
    "+two",
    "diff --git a/logo.png b/logo.png",
    "deleted file mode 100644",
    "Binary files a/logo.png and /dev/null differ",
    "",
  ].join("\n");
  const files = splitGitDiff(diff);
  expect(files.map((f) => [f.path, f.kind])).toEqual([
    ["big.txt", "modify"],
    ["new.txt", "add"],
    ["logo.png", "binary"],
  ]);
  expect(files[0]!.notes).toEqual(["diff omitted: 312 KiB exceeds the 256 KiB per-file limit"]);
  expect(files[0]!.text).not.toContain("@@ chatd");
  expect(countChanges(files[1]!.text)).toEqual({ additions: 2, deletions: 0 });
  expect(countChanges(diff)).toEqual({ additions: 2, deletions: 0 });
});

test("the agent's plain per-file diff and the tool arguments become git diffs", () => {
  const plain = patchOfFile("src/a.py", "--- src/a.py\n+++ src/a.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n");
  expect(plain.text.split("\n").slice(0, 3)).toEqual(["diff --git a/src/a.py b/src/a.py", "--- a/src/a.py", "+++ b/src/a.py"]);
  expect(countChanges(plain.text)).toEqual({ additions: 1, deletions: 1 });

  const added = addedFilePatch("/w/notes.md", "# Title\n\ntext");
  expect(added.kind).toBe("add");
  expect(added.text).toContain("@@ -0,0 +1,3 @@\n+# Title\n+\n+text\n");

  const pairs = replacementsPatch("b.txt", [
    { old: "a\nb\n", new: "c\n" },
    { old: "d", new: "e\nf" },
  ]);
  expect(countChanges(pairs.text)).toEqual({ additions: 3, deletions: 3 });
  expect(pairs.text).toContain("@@ -1,2 +1,1 @@\n-a\n-b\n+c\n");
});

test("each tool's header says what it acts on", () => {
  expect(summarize("execute", { command: "npm test\nnpm run lint" })).toBe("npm test …");
  expect(summarize("read_file", { path: "/w/a.ts", offset: 10, limit: 5 })).toBe("/w/a.ts (lines 10–14)");
  expect(summarize("write_file", { path: "/w/b.ts", content: "x" })).toBe("/w/b.ts");
  expect(
    summarize("edit_files", { files: [{ path: "a", edits: [] }, { path: "b", edits: [] }, { path: "a", edits: [] }] }),
  ).toBe("a, b");
  expect(summarize("edit_files", { edits: [{ path: "c", old_text: "", new_text: "" }] })).toBe("c");
  expect(summarize("process_signal", { process_id: "p1", signal: "kill" })).toBe("p1 kill");
  expect(summarize("spawn_agent", { prompt: "look around", title: "Explorer" })).toBe("Explorer");
  expect(summarize("some_mcp__tool", { n: 3, query: "find me" })).toBe("find me");
  expect(summarize("process_list", {})).toBe("");
});

test("arguments still being written name what they act on", () => {
  expect(parseArgs('{"command": "ls -l')).toBeUndefined();
  expect(partialArgs('{"command": "ls -l')).toEqual({ command: "ls -l" });
  expect(partialArgs('{"path": "/w/a b.txt", "content": "line\\nnext\\')).toEqual({
    path: "/w/a b.txt",
    content: "line\nnext",
  });
  expect(partialArgs('{"command": "echo \\"hi\\"", "timeout": "5s"}')).toEqual({ command: 'echo "hi"', timeout: "5s" });
  expect(partialArgs("{")).toBeUndefined();
});
