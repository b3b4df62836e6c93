import { expect, test, type Page, type WebSocketRoute } from "@playwright/test";
import { markdownBlocks } from "../src/chat/markdownBlocks";
import { capture, clearScript, createChat, openGate, script, signInQuickly } from "./support";

const streamed = { match: { stream: true } };

/** Replies of the fake provider for streamed calls only (titles are not streamed). */
function reply(entry: Record<string, unknown>) {
  return { ...streamed, ...entry };
}

function words(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${i + 1} `);
}

const live = (page: Page) => page.getByRole("article", { name: "Assistant (streaming)" });
const answers = (page: Page) => page.locator("article.msg-assistant:not(.msg-live)");
const userMessages = (page: Page) => page.locator("article.msg-user");
const composer = (page: Page) => page.getByRole("textbox", { name: "Message", exact: true });
const status = (page: Page) => page.locator(".chat-head .status-badge").first();

test.beforeEach(async ({ page }) => {
  await clearScript(page.request);
  await signInQuickly(page);
});

test("a reply streams in token by token and renders Markdown with highlighted code", async ({ page }) => {
  const deltas = [
    "Here ", "is ", "some ", "**bold** ", "text ", "and ", "code:\n\n",
    "```python\n", "def answer():\n", "    return 42\n", "```\n", "\nThe end.",
  ];
  await script(page.request, [reply({ text: deltas, tokens_per_second: 6 })]);
  const chat = await createChat(page.request, "Show me some code");
  await page.goto(`/chats/${chat.id}`);
  // A partial answer is on screen before the end.
  await expect(live(page)).toContainText("some");
  await expect(live(page)).not.toContainText("The end.");
  const done = answers(page).last();
  await expect(done).toContainText("The end.");
  await expect(live(page)).toHaveCount(0);
  await expect(done.locator("strong")).toHaveText("bold");
  await expect(done.locator("pre code .hljs-keyword").first()).toHaveText("def");
  await expect(status(page)).toHaveText("Idle");
  await expect(done.locator(".usage")).toContainText("tokens");
  await capture(page, "chat-finished", async (p) => {
    await expect(p.getByText("The end.")).toBeVisible();
  });
});

test("interrupt keeps the partial answer", async ({ page }) => {
  await script(page.request, [reply({ text: words("w", 200), tokens_per_second: 8 })]);
  const chat = await createChat(page.request, "Talk for a long time");
  await page.goto(`/chats/${chat.id}`);
  await expect(live(page)).toContainText("w3 ");
  await capture(page, "chat-streaming", async (p) => {
    await expect(live(p)).toBeVisible();
  });
  await expect(page.getByRole("button", { name: "Interrupt" })).toBeVisible();
  await composer(page).focus();
  await page.keyboard.press("Escape");
  await expect(status(page)).not.toHaveText(/Running|Starting/);
  const kept = answers(page).last();
  await expect(kept).toContainText("w3 ");
  await expect(live(page)).toHaveCount(0);
  await expect(kept).not.toContainText("w200 ");
  await expect(page.getByRole("button", { name: "Interrupt" })).toHaveCount(0);
});

test("messages sent while busy are queued, edited, deleted and promoted", async ({ page }) => {
  await script(page.request, [
    reply({ wait_for: "queue-gate", text: "Late first answer." }),
    reply({ text: "Answer to the edited one." }),
  ]);
  const chat = await createChat(page.request, "Keep busy");
  await page.goto(`/chats/${chat.id}`);
  await expect(status(page)).toHaveText("Running…");
  const box = composer(page);
  const queue = page.getByRole("region", { name: /Queued/ });
  await box.fill("queued one");
  await box.press("Enter");
  await expect(queue.getByRole("listitem")).toHaveText([/queued one/]);
  await box.fill("queued two");
  await page.getByRole("button", { name: "Send", exact: true }).click();
  await expect(queue.getByRole("listitem")).toHaveText([/queued one/, /queued two/]);

  await queue.getByRole("button", { name: "Edit queued message: queued one" }).click();
  await queue.getByRole("textbox", { name: "Edit queued message" }).fill("queued one, edited");
  await queue.getByRole("button", { name: "Save" }).click();
  await expect(queue.getByRole("listitem")).toHaveText([/queued two/, /queued one, edited/]);

  await queue.getByRole("button", { name: "Delete queued message: queued two" }).click();
  await expect(queue.getByRole("listitem")).toHaveText([/queued one, edited/]);

  await queue.getByRole("button", { name: "Send now: queued one, edited" }).click();
  await expect(userMessages(page).last()).toContainText("queued one, edited");
  await expect(answers(page).last()).toContainText("Answer to the edited one.");
  await expect(page.getByRole("region", { name: /Queued/ })).toHaveCount(0);
  await expect(page.locator(".messages")).not.toContainText("queued two");
  await openGate(page.request, "queue-gate");
});

test("editing the first message re-runs the chat and replaces the answer", async ({ page }) => {
  await script(page.request, [reply({ text: "First answer." }), reply({ text: "Second answer." })]);
  const chat = await createChat(page.request, "Original question");
  await page.goto(`/chats/${chat.id}`);
  await expect(answers(page).last()).toContainText("First answer.");
  await expect(status(page)).toHaveText("Idle");
  await userMessages(page).first().getByRole("button", { name: "Edit message" }).click();
  await page.getByRole("textbox", { name: "Edit message", exact: true }).fill("Edited question");
  await page.getByRole("button", { name: "Save and re-run" }).click();
  await expect(answers(page).last()).toContainText("Second answer.");
  await expect(page.locator(".messages")).not.toContainText("First answer.");
  await expect(page.locator(".messages")).not.toContainText("Original question");
  await expect(userMessages(page)).toHaveCount(1);
  await expect(userMessages(page)).toContainText("Edited question");
  await expect(answers(page)).toHaveCount(1);
});

/** A two-step turn: a tool call (no workspace, so it fails fast), then a slow answer. */
async function scriptTwoSteps(page: Page, prefix: string): Promise<void> {
  await script(page.request, [
    reply({ tool_calls: [{ name: "execute", args: { command: "true" } }] }),
    reply({ text: words(prefix, 24), tokens_per_second: 8 }),
  ]);
}

async function expectOneFinishedAnswer(page: Page, prefix: string): Promise<void> {
  const last = `${prefix}24 `;
  await expect(answers(page).last()).toContainText(last);
  await expect(live(page)).toHaveCount(0);
  await expect(page.locator(".messages")).toContainText(`${prefix}1 `);
  const text = (await page.locator(".messages").innerText()).split(`${prefix}24`).length - 1;
  expect(text).toBe(1);
  expect((await page.locator(".messages").innerText()).split(`${prefix}5 `).length - 1).toBe(1);
  await expect(userMessages(page)).toHaveCount(1);
}

test("a reload in the middle of a turn resumes it without duplicates", async ({ page }) => {
  await scriptTwoSteps(page, "r");
  const chat = await createChat(page.request, "Reload me");
  await page.goto(`/chats/${chat.id}`);
  await expect(live(page)).toContainText("r4 ");
  await page.reload();
  await expect(live(page)).toContainText("r8 ");
  await expectOneFinishedAnswer(page, "r");
});

test("a dropped stream reconnects without losing or repeating anything", async ({ page }) => {
  const routes: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/stream(\?|$)/, (ws) => {
    ws.connectToServer();
    routes.push(ws);
  });
  await scriptTwoSteps(page, "d");
  const chat = await createChat(page.request, "Drop me");
  await page.goto(`/chats/${chat.id}`);
  await expect(live(page)).toContainText("d4 ");
  expect(routes).toHaveLength(1);
  await routes[0]!.close({ code: 1011, reason: "dropped" });
  await expect.poll(() => routes.length).toBe(2);
  expect(routes[1]!.url()).toMatch(/after_id=\d+/);
  await expectOneFinishedAnswer(page, "d");
});

test("a retry shows its attempt, error and countdown, then the answer", async ({ page }) => {
  await script(page.request, [
    reply({ wait_for: "retry-gate", error: { status: 529, message: "Overloaded" } }),
    reply({ error: { status: 503, message: "Service unavailable" } }),
    reply({ text: "Recovered answer." }),
  ]);
  const chat = await createChat(page.request, "Try hard");
  await page.goto(`/chats/${chat.id}`);
  await expect(status(page)).toHaveText("Running…");
  await openGate(page.request, "retry-gate");
  const notice = page.locator(".retry");
  await expect(notice).toContainText("Attempt 2 failed (HTTP 503)");
  await expect(notice).toContainText(/Retrying in [12] s/);
  await expect(answers(page).last()).toContainText("Recovered answer.");
  await expect(notice).toHaveCount(0);
});

test("a failed turn shows the error's kind and message", async ({ page }) => {
  await script(page.request, [reply({ error: { status: 401, message: "Invalid API key provided" } })]);
  const chat = await createChat(page.request, "Fail please");
  await page.goto(`/chats/${chat.id}`);
  const alert = page.locator(".notice-error");
  await expect(alert).toContainText("Error (auth)");
  await expect(alert).toContainText(/credentials/i);
  await expect(status(page)).toHaveText("Error");
  await page.reload();
  await expect(page.locator(".notice-error")).toContainText("Error (auth)");
});

test("a client tool call waits for the user's result, then the turn goes on", async ({ page }) => {
  await script(page.request, [
    reply({ tool_calls: [{ name: "pick_colour", args: { hint: "warm" } }] }),
    reply({ text: "Thanks for the colour." }),
  ]);
  const chat = await createChat(page.request, "Ask my client", {
    unsafe_dynamic_tools: [{ name: "pick_colour", description: "Asks the client", input_schema: { type: "object" } }],
  });
  await page.goto(`/chats/${chat.id}`);
  await expect(page.getByRole("heading", { name: /waiting for a tool result/ })).toBeVisible();
  await page.getByRole("textbox", { name: "Result (JSON or text)" }).fill('{"colour": "red"}');
  await page.getByRole("button", { name: "Submit results" }).click();
  await expect(answers(page).last()).toContainText("Thanks for the colour.");
  await expect(page.getByRole("heading", { name: /waiting for a tool result/ })).toHaveCount(0);
});

test("a plan question is answered by clicking one of its options", async ({ page }) => {
  const questions = [
    {
      header: "Colour",
      question: "Which colour should the button be?",
      options: [
        { label: "Red", description: "Warm and loud" },
        { label: "Blue", description: "Calm" },
      ],
    },
  ];
  await script(page.request, [
    reply({ tool_calls: [{ name: "ask_user_question", args: { questions } }] }),
    reply({ text: "Blue it is." }),
  ]);
  const chat = await createChat(page.request, "Plan a button", { plan_mode: "plan" });
  await page.goto(`/chats/${chat.id}`);
  await expect(page.getByRole("heading", { name: /Which colour should the button be/ })).toBeVisible();
  await page.getByRole("button", { name: /Blue/ }).click();
  await expect(userMessages(page).last()).toContainText("Blue");
  await expect(answers(page).last()).toContainText("Blue it is.");
  await expect(page.getByRole("heading", { name: /Which colour/ })).toHaveCount(0);
});

test("a spawned sub-agent is listed under its root and its tool call links to it", async ({ page }) => {
  // Each chat's replies match the text of its own last user message.
  const root = { match: { stream: true, user: "ROOT-UI" } };
  await script(page.request, [
    { ...root, tool_calls: [{ name: "spawn_agent", args: { prompt: "CHILD-UI: look around", title: "Helper" } }] },
    { match: { stream: true, user: "CHILD-UI" }, text: "Child report: all good." },
    { ...root, text: "A helper is on it." },
  ]);
  const chat = await createChat(page.request, "ROOT-UI: delegate the survey");
  await page.goto(`/chats/${chat.id}`);
  await expect(answers(page).last()).toContainText("A helper is on it.");
  const children = page.getByRole("navigation", { name: "Sub-agents" });
  await expect(children.getByRole("link", { name: "Helper" })).toBeVisible();
  const spawn = page.locator('.tool-call[data-tool="spawn_agent"]');
  await spawn.getByRole("button", { name: /spawn_agent/ }).click();
  await spawn.getByRole("link", { name: "Helper" }).click();
  await expect(page).toHaveURL(/\/chats\/[0-9a-f-]+$/);
  await expect(answers(page).last()).toContainText("Child report: all good.");
  await expect(userMessages(page).first()).toContainText("CHILD-UI: look around");
});

test("each step's usage line carries its cost when the model has prices", async ({ page }) => {
  const created = await page.request.post("/api/experimental/chats/model-configs", {
    data: {
      provider: "openai-compat",
      model: "priced-model",
      display_name: "Priced model",
      context_limit: 100000,
      model_config: {
        cost: { input_price_per_million_tokens: 1000, output_price_per_million_tokens: 2000 },
      },
    },
  });
  expect(created.status(), await created.text()).toBe(201);
  const config = (await created.json()) as { id: string };
  try {
    await script(page.request, [
      reply({ text: "Costly answer.", usage: { input_tokens: 1000, output_tokens: 500 } }),
    ]);
    const chat = await createChat(page.request, "What does this cost?", {
      model_config_id: config.id,
    });
    await page.goto(`/chats/${chat.id}`);
    const done = answers(page).last();
    await expect(done).toContainText("Costly answer.");
    // 1,000 input tokens at $1,000 per million and 500 output tokens at $2,000 per million.
    await expect(done.locator(".usage")).toContainText("$2.0000");
  } finally {
    await page.request.delete(`/api/experimental/chats/model-configs/${config.id}`);
  }
});

test("a streamed reply splits into blocks at blank lines outside fenced code", () => {
  expect(markdownBlocks("one\ntwo\n\nthree")).toEqual(["one\ntwo", "three"]);
  expect(markdownBlocks("a\n\n```py\nx = 1\n\ny = 2\n```\n\nb")).toEqual([
    "a",
    "```py\nx = 1\n\ny = 2\n```",
    "b",
  ]);
  // A fence still open (the reply is mid-block) keeps its blank lines in one block.
  expect(markdownBlocks("~~~\ncode\n\n")).toEqual(["~~~\ncode\n\n"]);
  expect(markdownBlocks("\n\n\nonly\n\n\n")).toEqual(["only"]);
});
