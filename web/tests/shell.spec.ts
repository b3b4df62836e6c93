import { expect, test } from "@playwright/test";
import { signInQuickly } from "./support";

test("Alt+N opens a new chat, and the theme toggle persists across a reload", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/admin");
  await expect(page.getByRole("button", { name: "Sign out" })).toBeVisible();
  await page.keyboard.press("Alt+n");
  await expect(page).toHaveURL(/\/new$/);
  await expect(page.getByRole("heading", { name: "New chat" })).toBeVisible();

  const html = page.locator("html");
  const toggle = page.getByRole("button", { name: /^Theme: / });
  await expect(toggle).toHaveAccessibleName("Theme: System (change)");
  await toggle.click(); // system -> light
  await expect(html).toHaveAttribute("data-theme", "light");
  await toggle.click(); // light -> dark
  await expect(html).toHaveAttribute("data-theme", "dark");
  await page.reload();
  await expect(html).toHaveAttribute("data-theme", "dark");
  await expect(page.getByRole("button", { name: "Theme: Dark (change)" })).toBeVisible();
  await page.getByRole("button", { name: "Theme: Dark (change)" }).click(); // back to system
});

test("on a phone the list and the page take turns, and every header control fits", async ({ page }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  await signInQuickly(page);
  await page.goto("/");
  await expect(page.getByRole("complementary", { name: "Chats" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "New chat" })).toBeHidden();
  for (const name of ["New chat", "Sign out"]) {
    const box = await page.getByRole(name === "New chat" ? "link" : "button", { name }).boundingBox();
    expect(box, name).not.toBeNull();
    expect(box!.x + box!.width, name).toBeLessThanOrEqual(390);
  }
  await page.getByRole("link", { name: "New chat" }).click();
  await expect(page).toHaveURL(/\/new$/);
  await expect(page.getByRole("heading", { name: "New chat" })).toBeVisible();
  await expect(page.getByRole("complementary", { name: "Chats" })).toBeHidden();
  await page.getByRole("link", { name: "← Chats" }).click();
  await expect(page.getByRole("complementary", { name: "Chats" })).toBeVisible();
});
