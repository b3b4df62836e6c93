// What the browser tests share: the admin's credentials, the fake provider's script, signing
// in, the accessibility check and the screenshots.
import AxeBuilder from "@axe-core/playwright";
import { expect, type APIRequestContext, type Page } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ADMIN = {
  email: "admin@example.com",
  username: "admin",
  password: "browser-tests-pw-1",
};

export function fakeURL(): string {
  return `http://127.0.0.1:${process.env.CHATD_FAKE_PORT}`;
}

/** Appends replies to the fake provider's script (see chatd.testing.script). */
export async function script(request: APIRequestContext, entries: unknown[]): Promise<void> {
  const r = await request.post(`${fakeURL()}/fake/script`, { data: entries });
  expect(r.ok()).toBeTruthy();
}

/** Opens a gate the fake provider's replies wait on (`wait_for`). */
export async function openGate(request: APIRequestContext, name: string): Promise<void> {
  const r = await request.post(`${fakeURL()}/fake/gates/${name}`);
  expect(r.ok()).toBeTruthy();
}

/** Signs in through the sign-in page (from the one shown, or from /login). */
export async function signIn(page: Page, user = ADMIN): Promise<void> {
  if (!new URL(page.url(), "http://x").pathname.startsWith("/login")) await page.goto("/login");
  await page.getByLabel("Email or username").fill(user.email);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
}

/** Signs in by the API (the page's context keeps the cookie), for tests about other pages. */
export async function signInQuickly(page: Page, user = ADMIN): Promise<void> {
  const r = await page.request.post("/api/v2/users/login", {
    data: { email: user.email, password: user.password },
  });
  expect(r.status()).toBe(201);
}

/** The default organization's id (chats are created in it). */
export async function organizationId(request: APIRequestContext): Promise<string> {
  const r = await request.get("/api/v2/users/me");
  expect(r.ok()).toBeTruthy();
  const me = (await r.json()) as { organization_ids: string[] };
  return me.organization_ids[0]!;
}

/** Creates a chat through the API (signed-in context) and returns it. */
export async function createChat(
  request: APIRequestContext,
  text: string,
  extra: Record<string, unknown> = {},
): Promise<{ id: string; title: string }> {
  const r = await request.post("/api/experimental/chats", {
    data: {
      organization_id: await organizationId(request),
      content: [{ type: "text", text }],
      ...extra,
    },
  });
  expect(r.status(), await r.text()).toBe(201);
  return (await r.json()) as { id: string; title: string };
}

/** No serious or critical axe-core violations on the page as it is now. */
export async function expectAccessible(page: Page): Promise<void> {
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  expect(bad, bad.join("\n")).toEqual([]);
}

export const SCREENSHOT_DIR = fileURLToPath(new URL("../screenshots", import.meta.url));
const SIZES = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };

/**
 * Screenshots of the page as it is, in light and dark theme at desktop and phone width, into
 * web/screenshots/<name>-<theme>-<size>.png; each variant is checked with axe-core as well.
 * `ready` waits for what must be on screen after the resize and theme change.
 */
export async function capture(
  page: Page,
  name: string,
  ready: (page: Page) => Promise<void> = async () => {},
): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const original = page.viewportSize();
  for (const theme of ["light", "dark"] as const) {
    await page.emulateMedia({ colorScheme: theme });
    await page.evaluate((t) => (document.documentElement.dataset.theme = t), theme);
    for (const [size, viewport] of Object.entries(SIZES)) {
      await page.setViewportSize(viewport);
      await ready(page);
      await expectAccessible(page);
      await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${theme}-${size}.png`) });
    }
  }
  if (original) await page.setViewportSize(original);
  await page.emulateMedia({ colorScheme: null });
}

/** Drops the fake provider's unused replies, so a failed test's script cannot leak onward. */
export async function clearScript(request: APIRequestContext): Promise<void> {
  const r = await request.delete(`${fakeURL()}/fake/script`);
  expect(r.ok()).toBeTruthy();
}
