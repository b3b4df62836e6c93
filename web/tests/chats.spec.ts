import { expect, test, type APIRequestContext, type Page, type WebSocketRoute } from "@playwright/test";
import { capture, createChat, script, signInQuickly } from "./support";

// Every chat here carries this run's mark, so other files' chats never get in the way.
const RUN = Math.random().toString(36).slice(2, 8);

/** A chat created through the API, with a title of our own (an automatic one never replaces it). */
async function chatTitled(
  request: APIRequestContext,
  title: string,
  labels: Record<string, string> = {},
): Promise<string> {
  const chat = await createChat(request, `Please work on ${title}`, { labels });
  const r = await request.patch(`/api/experimental/chats/${chat.id}`, { data: { title } });
  expect(r.status(), await r.text()).toBe(204);
  return chat.id;
}

async function getChat(request: APIRequestContext, id: string) {
  const r = await request.get(`/api/experimental/chats/${id}`);
  expect(r.ok()).toBeTruthy();
  return (await r.json()) as {
    archived: boolean;
    pin_order: number;
    labels: Record<string, string>;
    plan_mode?: string | null;
    last_model_config_id: string;
  };
}

/** Opens the app with the chat list live (the watch socket open). */
async function openList(page: Page) {
  if (!(await page.request.get("/api/v2/users/me")).ok()) await signInQuickly(page);
  await page.goto("/");
  await expect(page.locator('.chat-list[data-live="yes"]')).toBeVisible();
  return page.getByRole("complementary", { name: "Chats" });
}

function row(page: Page, title: string) {
  return page.getByRole("listitem").filter({ has: page.getByRole("link", { name: title, exact: true }) });
}

/** Shows only the chats carrying a label, by clicking its chip on a row. */
async function filterByChip(page: Page, title: string, pair: string) {
  await row(page, title).getByRole("button", { name: `Filter by label ${pair}` }).click();
  await expect(page.getByRole("list", { name: "Label filters" })).toContainText(pair);
}

test("a chat created elsewhere appears live, and its status follows the turn", async ({ page }) => {
  await openList(page);
  // A slow reply: about 20 deltas at 10 a second.
  await script(page.request, [
    { match: { stream: true }, text: "slow words ".repeat(15), tokens_per_second: 10 },
  ]);
  const title = `Live ${RUN}`;
  await chatTitled(page.request, title, { t: `live-${RUN}` });
  const live = row(page, title);
  await expect(live).toBeVisible();
  await expect(live).toContainText("Running");
  await expect(live).toContainText("Idle", { timeout: 20_000 });
  // The turn ended while the chat was not open: it is unread.
  await expect(live.getByText("Unread")).toBeAttached();
  await capture(page, "chat-list", async (p) => {
    await expect(row(p, title)).toBeVisible();
  });
});

test("after the watch socket drops and comes back, the list catches up", async ({ page }) => {
  await signInQuickly(page);
  let refuse = false;
  const open: WebSocketRoute[] = [];
  await page.routeWebSocket(/\/api\/experimental\/chats\/watch$/, (ws) => {
    if (refuse) {
      void ws.close({ code: 1011, reason: "refused by the test" });
      return;
    }
    ws.connectToServer();
    open.push(ws);
  });
  await openList(page);
  refuse = true;
  for (const ws of open) await ws.close({ code: 1011, reason: "dropped by the test" });
  await expect(page.getByText("Live updates lost; reconnecting…")).toBeVisible();
  // Created while the list hears nothing.
  const title = `Missed ${RUN}`;
  await chatTitled(page.request, title);
  refuse = false;
  await expect(row(page, title)).toBeVisible({ timeout: 20_000 });
  await expect(page.locator('.chat-list[data-live="yes"]')).toBeVisible();
  await expect(page.getByText("Live updates lost; reconnecting…")).toHaveCount(0);
});

test("a refused search shows the server's message and keeps the list; title: narrows it", async ({
  page,
}) => {
  await signInQuickly(page);
  const alpha = `Search ${RUN} alpha`;
  const beta = `Search ${RUN} beta`;
  await chatTitled(page.request, alpha);
  await chatTitled(page.request, beta);
  await openList(page);
  await expect(row(page, alpha)).toBeVisible();

  const search = page.getByRole("searchbox", { name: "Search chats" });
  await page.keyboard.press("/");
  await expect(search).toBeFocused();
  await search.fill(`title:"${RUN}" bogus`);
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("Invalid chat search query.");
  await expect(alert).toContainText("unsupported search term");
  // The last good results stay.
  await expect(row(page, alpha)).toBeVisible();
  await expect(row(page, beta)).toBeVisible();
  await capture(page, "chat-list-search-error", async (p) => {
    await expect(p.getByRole("alert")).toBeVisible();
  });

  await search.fill(`title:"${alpha}"`);
  await expect(alert).toHaveCount(0);
  await expect(row(page, beta)).toHaveCount(0);
  await expect(row(page, alpha)).toBeVisible();
});

test("label chips filter the list; labels are added and removed from the row menu", async ({
  page,
}) => {
  await signInQuickly(page);
  const red = `Red ${RUN}`;
  const blue = `Blue ${RUN}`;
  const other = `Unlabelled ${RUN}`;
  await chatTitled(page.request, other);
  await chatTitled(page.request, blue, { team: `blue-${RUN}` });
  const redId = await chatTitled(page.request, red, { team: `red-${RUN}`, run: RUN });
  await openList(page);

  await filterByChip(page, red, `team:red-${RUN}`);
  await expect(row(page, red)).toBeVisible();
  await expect(row(page, blue)).toHaveCount(0);
  await expect(row(page, other)).toHaveCount(0);

  // A label added from the menu.
  await row(page, red).getByRole("button", { name: `Actions for ${red}` }).click();
  const menu = page.getByRole("group", { name: `Actions for ${red}` });
  await menu.getByLabel("Label key").fill("prio");
  await menu.getByLabel("Label value").fill("high");
  await menu.getByRole("button", { name: "Add label" }).click();
  await expect(row(page, red).getByRole("button", { name: "Filter by label prio:high" })).toBeVisible();
  await expect.poll(async () => (await getChat(page.request, redId)).labels).toEqual({
    team: `red-${RUN}`,
    run: RUN,
    prio: "high",
  });
  // ... and one removed.
  await menu.getByRole("button", { name: `Remove label run:${RUN}` }).click();
  await expect.poll(async () => (await getChat(page.request, redId)).labels).toEqual({
    team: `red-${RUN}`,
    prio: "high",
  });
  await page.keyboard.press("Escape");
  await expect(menu).toHaveCount(0);

  // Removing the filter brings the others back.
  await page.getByRole("button", { name: `Remove filter team:red-${RUN}` }).click();
  await expect(row(page, blue)).toBeVisible();
  await expect(row(page, other)).toBeVisible();
});

test("chats are pinned first, reordered and unpinned from the row menu", async ({ page }) => {
  await signInQuickly(page);
  const tag = `pin-${RUN}`;
  const first = `Pin one ${RUN}`;
  const second = `Pin two ${RUN}`;
  const firstId = await chatTitled(page.request, first, { t: tag });
  const secondId = await chatTitled(page.request, second, { t: tag });
  await openList(page);
  await filterByChip(page, second, `t:${tag}`);

  async function act(title: string, action: string) {
    const menuButton = row(page, title).getByRole("button", { name: `Actions for ${title}` });
    if ((await menuButton.getAttribute("aria-expanded")) !== "true") await menuButton.click();
    await page.getByRole("group", { name: `Actions for ${title}` }).getByRole("button", { name: action, exact: true }).click();
  }
  const titles = () => page.locator(".chat-rows .chat-title").allInnerTexts();

  // Newest first until pinned.
  await expect.poll(titles).toEqual([second, first]);
  await act(first, "Pin");
  await expect(row(page, first).getByText("Pinned")).toBeAttached();
  await expect.poll(titles).toEqual([first, second]);
  await act(second, "Pin");
  await expect.poll(async () => (await getChat(page.request, secondId)).pin_order).toBe(2);
  await act(second, "Move up");
  await expect.poll(titles).toEqual([second, first]);
  expect((await getChat(page.request, secondId)).pin_order).toBe(1);
  expect((await getChat(page.request, firstId)).pin_order).toBe(2);

  await act(second, "Unpin");
  await act(first, "Unpin");
  await expect.poll(async () => (await getChat(page.request, firstId)).pin_order).toBe(0);
  expect((await getChat(page.request, secondId)).pin_order).toBe(0);
  await expect(page.locator(".chat-rows").getByText("Pinned")).toHaveCount(0);
});

test("an archived chat leaves the list and shows with the archived toggle", async ({ page }) => {
  await signInQuickly(page);
  const tag = `arch-${RUN}`;
  const kept = `Kept ${RUN}`;
  const archived = `Archived ${RUN}`;
  await chatTitled(page.request, kept, { t: tag });
  const id = await chatTitled(page.request, archived, { t: tag });
  await openList(page);
  await filterByChip(page, archived, `t:${tag}`);

  await row(page, archived).getByRole("button", { name: `Actions for ${archived}` }).click();
  await page.getByRole("group", { name: `Actions for ${archived}` }).getByRole("button", { name: "Archive", exact: true }).click();
  await expect(row(page, archived)).toHaveCount(0);
  await expect(row(page, kept)).toBeVisible();
  await expect.poll(async () => (await getChat(page.request, id)).archived).toBe(true);

  const toggle = page.getByRole("checkbox", { name: "Show archived" });
  await toggle.check();
  await expect(row(page, archived)).toBeVisible();
  await expect(row(page, kept)).toHaveCount(0);
  await row(page, archived).getByRole("button", { name: `Actions for ${archived}` }).click();
  await page.getByRole("group", { name: `Actions for ${archived}` }).getByRole("button", { name: "Unarchive", exact: true }).click();
  await expect(row(page, archived)).toHaveCount(0);
  await expect.poll(async () => (await getChat(page.request, id)).archived).toBe(false);

  await toggle.uncheck();
  await expect(row(page, archived)).toBeVisible();
  await expect(row(page, kept)).toBeVisible();
});

// A 1x1 PNG.
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
  "base64",
);

test("the new-chat page creates a chat with a model, plan mode and attachments", async ({ page }) => {
  await signInQuickly(page);
  // A second model to choose, on the fake provider's own provider.
  const configs = (await (await page.request.get("/api/experimental/chats/model-configs")).json()) as {
    id: string;
    provider: string;
    model: string;
  }[];
  const base = configs.find((c) => c.model === "fake-model")!;
  const made = await page.request.post("/api/experimental/chats/model-configs", {
    data: {
      provider: base.provider,
      model: `fake-alt-${RUN}`,
      display_name: `Alt model ${RUN}`,
      context_limit: 100000,
    },
  });
  expect(made.status(), await made.text()).toBe(201);
  const alt = (await made.json()) as { id: string };

  await page.goto("/");
  await expect(page.getByRole("heading", { name: "New chat" })).toBeVisible();
  const prompt = page.getByLabel("What should the agent do?");
  await prompt.fill(`Plan the work ${RUN}`);
  await prompt.press("Shift+Enter");
  await prompt.pressSequentially("second line");
  await expect(prompt).toHaveValue(`Plan the work ${RUN}\nsecond line`);

  const model = page.getByRole("combobox", { name: "Model" });
  await expect(model.locator("option", { hasText: `Alt model ${RUN}` })).toBeAttached();
  await model.selectOption({ label: `Alt model ${RUN}` });
  await page.getByRole("checkbox", { name: "Plan mode" }).check();

  const chooser = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach files" }).click();
  await (await chooser).setFiles([
    { name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("some notes\n") },
    { name: "pixel.png", mimeType: "image/png", buffer: PNG },
  ]);
  const chips = page.getByRole("list", { name: "Attachments" });
  await expect(chips.getByRole("listitem")).toHaveCount(2);
  await expect(chips.getByText("Ready")).toHaveCount(2);
  // One removed and picked again.
  await chips.getByRole("button", { name: "Remove pixel.png" }).click();
  await expect(chips.getByRole("listitem")).toHaveCount(1);
  const again = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach files" }).click();
  await (await again).setFiles([{ name: "pixel.png", mimeType: "image/png", buffer: PNG }]);
  await expect(chips.getByText("Ready")).toHaveCount(2);
  await capture(page, "new-chat");

  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chats\/[0-9a-f-]{36}$/);
  const id = page.url().split("/").pop()!;
  // The new chat is in the list, marked as the one open.
  await expect(page.locator(`.chat-rows a[href="/chats/${id}"]`)).toHaveAttribute("aria-current", "page");
  const chat = await getChat(page.request, id);
  expect(chat.last_model_config_id).toBe(alt.id);
  expect(chat.plan_mode).toBe("plan");
  const messages = (await (await page.request.get(`/api/experimental/chats/${id}/messages`)).json()) as {
    messages: { role: string; content?: { type: string; text?: string; file_id?: string; name?: string }[] }[];
  };
  const first = messages.messages.find((m) => m.role === "user")!;
  expect(first.content!.find((p) => p.type === "text")!.text).toContain(`Plan the work ${RUN}`);
  const files = first.content!.filter((p) => p.type === "file");
  expect(files.map((f) => f.name).sort()).toEqual(["notes.txt", "pixel.png"]);
  expect(files.every((f) => !!f.file_id)).toBeTruthy();
});

test("a new chat can bring a new workspace made from a template", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/");
  await page.getByLabel("What should the agent do?").fill(`With a workspace ${RUN}`);
  await page.getByRole("radio", { name: "New from a template" }).check();
  const template = page.getByRole("combobox", { name: "Template" });
  await expect(template).toBeVisible();
  await template.selectOption({ label: "Scratch" });
  await page.getByLabel("Workspace name (optional)").fill(`ws-${RUN}`);
  await page.getByRole("button", { name: "Send" }).click();
  await expect(page).toHaveURL(/\/chats\/[0-9a-f-]{36}$/);
  const chat = (await (await page.request.get(`/api/experimental/chats/${page.url().split("/").pop()}`)).json()) as {
    workspace_id?: string;
  };
  const ws = (await (await page.request.get(`/api/v2/workspaces/${chat.workspace_id}`)).json()) as { name: string };
  expect(ws.name).toBe(`ws-${RUN}`);
});

test("the server's refusal of a new chat is shown on the page", async ({ page }) => {
  await signInQuickly(page);
  const configs = (await (await page.request.get("/api/experimental/chats/model-configs")).json()) as {
    provider: string;
    model: string;
  }[];
  const base = configs.find((c) => c.model === "fake-model")!;
  const made = await page.request.post("/api/experimental/chats/model-configs", {
    data: { provider: base.provider, model: `fake-gone-${RUN}`, display_name: `Gone ${RUN}`, context_limit: 1000 },
  });
  expect(made.status()).toBe(201);
  const gone = (await made.json()) as { id: string };
  await page.goto("/");
  const send = page.getByRole("button", { name: "Send" });
  await expect(send).toBeDisabled();
  await page.getByRole("combobox", { name: "Model" }).selectOption({ label: `Gone ${RUN}` });
  // Deleted while the page shows it.
  expect((await page.request.delete(`/api/experimental/chats/model-configs/${gone.id}`)).status()).toBe(204);
  await page.getByLabel("What should the agent do?").fill(`Never created ${RUN}`);
  // A file the server refuses stays as a chip with the server's reason, and holds the send.
  const chooser = page.waitForEvent("filechooser");
  await page.getByRole("button", { name: "Attach files" }).click();
  await (await chooser).setFiles([
    { name: "drawing.svg", mimeType: "image/svg+xml", buffer: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>') },
  ]);
  const chips = page.getByRole("list", { name: "Attachments" });
  await expect(chips).toContainText("Unsupported file type.");
  await expect(send).toBeDisabled();
  await chips.getByRole("button", { name: "Remove drawing.svg" }).click();
  await expect(send).toBeEnabled();
  await page.getByLabel("What should the agent do?").press("Enter");
  await expect(page.getByRole("alert")).toContainText("Invalid model config ID.");
  await expect(page).toHaveURL(/\/$/);
});

test("scrolling to the end loads the next page", async ({ page }) => {
  const tag = `scroll-${RUN}`;
  const total = 45;
  await signInQuickly(page);
  for (let i = 0; i < total; i += 5) {
    await Promise.all(
      Array.from({ length: Math.min(5, total - i) }, (_, k) =>
        chatTitled(page.request, `Scroll ${RUN} ${String(i + k).padStart(2, "0")}`, { t: tag }),
      ),
    );
  }
  await page.goto("/");
  await expect(page.locator('.chat-list[data-live="yes"]')).toBeVisible();
  const newest = `Scroll ${RUN} ${String(total - 1).padStart(2, "0")}`;
  await filterByChip(page, newest, `t:${tag}`);
  const count = page.locator(".chat-scroll > [role=status]");
  await expect(count).toHaveText("40 chats loaded, more below");
  const oldest = `Scroll ${RUN} 00`;
  await expect(row(page, oldest)).toHaveCount(0);
  await expect(async () => {
    await page.locator(".chat-scroll").evaluate((el) => el.scrollTo(0, el.scrollHeight));
    await expect(count).toHaveText(`${total} chats loaded`, { timeout: 1000 });
  }).toPass();
  await page.locator(".chat-scroll").evaluate((el) => el.scrollTo(0, el.scrollHeight));
  await expect(row(page, oldest)).toBeVisible();
  // Virtualised: far fewer rows in the page than chats loaded.
  expect(await page.locator(".chat-rows > li").count()).toBeLessThan(total);
});
