import { expect, test } from "@playwright/test";
import { ADMIN, capture, signIn } from "./support";

test("a wrong password is refused with the server's message", async ({ page }) => {
  await page.goto("/");
  await expect(page).toHaveURL(/\/login\?next=%2F$/);
  await page.getByLabel("Email or username").fill(ADMIN.email);
  await page.getByLabel("Password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText(/incorrect|invalid/i);
  await capture(page, "signin");
});

test("the first admin signs in, lands where they were going, and signs out", async ({ page }) => {
  await page.goto("/admin");
  await expect(page).toHaveURL(/\/login\?next=%2Fadmin$/);
  await signIn(page);
  await expect(page).toHaveURL(/\/admin$/);
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page).toHaveURL(/\/login/);
  // The cookie is gone: the API refuses the next call.
  const r = await page.request.get("/api/v2/users/me");
  expect(r.status()).toBe(401);
});

test("the UI's pages carry a policy that allows no inline script", async ({ page }) => {
  const response = await page.goto("/login");
  const csp = response!.headers()["content-security-policy"]!;
  expect(csp).toContain("script-src 'self'");
  expect(csp).not.toContain("unsafe-inline' 'self'; script");
  expect(csp.split(";").find((d) => d.trim().startsWith("script-src"))).not.toContain("unsafe");
});
