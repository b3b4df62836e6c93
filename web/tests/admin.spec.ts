import { expect, test, type Page } from "@playwright/test";
import { capture, fakeURL, organizationId, signIn, signInQuickly } from "./support";

const API_KEY = "sk-admin-spec-secret-4711";

/** Opens an admin section through the sub-navigation. */
async function section(page: Page, name: string) {
  await page.getByRole("navigation", { name: "Admin sections" }).getByRole("link", { name }).click();
  await expect(page.getByRole("heading", { level: 1, name: name === "Users and tokens" ? "Users" : name })).toBeVisible();
}

test("a provider and a model on it are created; the key is never shown back", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/admin");
  await expect(page.getByRole("heading", { level: 1, name: "Providers" })).toBeVisible();
  const configured = page.getByRole("list", { name: "Configured providers" });
  await expect(configured.getByRole("listitem").first()).toBeVisible();

  await page.getByText("Add a provider").click();
  const form = page.getByRole("form", { name: "New provider" });
  // The server's own OpenAI-compatible provider (from its environment) is configured already;
  // the OpenAI kind with a base URL speaks to any OpenAI-compatible server, the fake one here.
  await form.getByLabel("Provider type").selectOption({ label: "OpenAI" });
  await form.getByLabel("Display name").fill("Spec Compat");
  await form.getByLabel("API key", { exact: true }).fill(API_KEY);
  await form.getByLabel("Base URL").fill(`${fakeURL()}/v1`);
  await form.getByRole("button", { name: "Create provider" }).click();

  const item = configured.getByRole("listitem", { name: "Spec Compat" });
  await expect(item).toContainText("API key stored");
  await expect(item).toContainText(`${fakeURL()}/v1`);
  // The key is write-only: not on the page, not in the form, not in the API's answer.
  await expect(page.getByText(API_KEY)).toHaveCount(0);
  await item.getByRole("button", { name: "Edit Spec Compat" }).click();
  const edit = page.getByRole("form", { name: "Edit Spec Compat" });
  await expect(edit.getByLabel("API key", { exact: true })).toHaveValue("");
  await expect(edit).toContainText("A key is stored; it is never shown.");
  await capture(page, "admin-providers");
  await edit.getByRole("button", { name: "Cancel" }).click();
  const providers = await page.request.get("/api/experimental/chats/providers");
  expect(await providers.text()).not.toContain(API_KEY);

  await section(page, "Models");
  await page.getByText("Add a model").click();
  const model = page.getByRole("form", { name: "New model" });
  await model.getByLabel("Provider").selectOption({ label: "Spec Compat" });
  // The server's validation shows inline.
  await model.getByRole("button", { name: "Create model" }).click();
  await expect(model.getByRole("alert")).toContainText("Model is required.");
  await capture(page, "admin-models");

  await model.getByLabel("Model name").fill("spec-model");
  await model.getByLabel("Display name").fill("Spec Model");
  await model.getByLabel("Context limit (tokens)").fill("64000");
  await model.getByLabel("Input price").fill("1.5");
  await model.getByLabel("Output price").fill("6");
  await model.getByLabel("Temperature").fill("0.2");
  await model.getByRole("button", { name: "Create model" }).click();
  const models = page.getByRole("list", { name: "Model configs" });
  const spec = models.getByRole("listitem", { name: "Spec Model" });
  await expect(spec).toContainText("Context 64,000 tokens");
  await expect(spec).toContainText("$1.5 in / $6 out per million tokens");

  const catalog = await page.request.get("/api/experimental/chats/models");
  const body = (await catalog.json()) as { providers: { provider: string; models: { model: string }[] }[] };
  const openai = body.providers.find((p) => p.provider === "openai");
  expect(openai?.models.map((m) => m.model)).toContain("spec-model");

  // Edit, then clean up through the UI (other spec files expect the default catalog).
  await spec.getByRole("button", { name: "Edit Spec Model" }).click();
  const editModel = page.getByRole("form", { name: "Edit Spec Model" });
  await editModel.getByLabel("Context limit (tokens)").fill("32000");
  await editModel.getByRole("button", { name: "Save model" }).click();
  await expect(spec).toContainText("Context 32,000 tokens");
  await spec.getByRole("button", { name: "Delete Spec Model" }).click();
  await spec.getByRole("button", { name: "Confirm deleting Spec Model" }).click();
  await expect(spec).toHaveCount(0);

  await section(page, "Providers");
  await item.getByRole("button", { name: "Disable" }).click();
  await expect(item).toContainText("Disabled");
  await item.getByRole("button", { name: "Delete Spec Compat" }).click();
  await item.getByRole("button", { name: "Confirm deleting Spec Compat" }).click();
  await expect(item).toHaveCount(0);
});

test("a usage limit is set and shown after a reload", async ({ page }) => {
  await signInQuickly(page);
  await page.goto("/admin/usage-limits");
  const form = page.getByRole("form", { name: "Deployment limit" });
  await form.getByLabel("Limit each user's spending").check();
  await form.getByLabel("Spend limit (USD)").fill("42.50");
  await form.getByLabel("Period").selectOption("week");
  await form.getByRole("button", { name: "Save limit" }).click();
  await expect(form.getByRole("status")).toHaveText("Saved.");

  const override = page.getByRole("form", { name: "Set an override" });
  await override.getByLabel("User", { exact: true }).selectOption({ label: "admin" });
  await override.getByLabel("User's limit (USD)").fill("0");
  await override.getByRole("button", { name: "Save override" }).click();
  await expect(override.getByRole("alert")).toContainText("Spend limit must be greater than zero.");
  await override.getByLabel("User's limit (USD)").fill("100");
  await override.getByRole("button", { name: "Save override" }).click();

  await page.reload();
  await expect(form).toContainText("Each user may spend $42.50 per week.");
  await expect(form.getByLabel("Spend limit (USD)")).toHaveValue("42.50");
  await expect(form.getByLabel("Period")).toHaveValue("week");
  const item = page.getByRole("listitem", { name: "Override for admin" });
  await expect(item).toContainText("$100.00 per week");
  await capture(page, "admin-usage-limits");

  // Back to no limit, so other spec files' chats are not limited.
  await item.getByRole("button", { name: "Delete the override for admin" }).click();
  await item.getByRole("button", { name: "Confirm deleting the override for admin" }).click();
  await expect(item).toHaveCount(0);
  await form.getByLabel("Limit each user's spending").uncheck();
  await form.getByRole("button", { name: "Save limit" }).click();
  await expect(form).toContainText("Spending is not limited.");
});

test("a template with a parameter is created, edited and deleted; built-in ones are read-only", async ({
  page,
}) => {
  const request = page.request;
  await signInQuickly(page);
  await page.goto("/admin/templates");
  const list = page.getByRole("list", { name: "Templates" });
  const builtin = list.getByRole("listitem").filter({ hasText: "Built-in" }).first();
  await expect(builtin).toBeVisible();
  await expect(builtin.getByRole("button")).toHaveCount(0);

  await page.getByText("Add a template").click();
  const form = page.getByRole("form", { name: "New template" });
  await form.getByLabel("Kind").selectOption("external");
  await form.getByLabel("Name", { exact: true }).fill("Bad Name");
  await form.getByRole("button", { name: "Create template" }).click();
  // A per-field validation shows next to its field.
  await expect(form.getByRole("alert")).toContainText("name");
  await expect(form.getByLabel("Name", { exact: true })).toHaveAccessibleDescription(/not valid/);

  await form.getByLabel("Name", { exact: true }).fill("spec-external");
  await form.getByLabel("Display name").fill("Spec External");
  await form.getByLabel("Description").first().fill("A machine of the user's own.");
  await form.getByRole("button", { name: "Add parameter" }).click();
  await form.getByLabel("Parameter 1 name").fill("region");
  await form.getByRole("group", { name: "Parameter 1" }).getByLabel("Default").fill("eu");
  await form.getByRole("group", { name: "Parameter 1" }).getByLabel("Required").check();
  await form.getByRole("button", { name: "Create template" }).click();

  const item = list.getByRole("listitem", { name: "Spec External" });
  await expect(item).toContainText("Parameters: region (required)");
  await capture(page, "admin-templates");

  await item.getByRole("button", { name: "Edit Spec External" }).click();
  const edit = page.getByRole("form", { name: "Edit Spec External" });
  await edit.getByLabel("Display name").fill("Spec Remote");
  await edit.getByRole("button", { name: "Save template" }).click();
  const renamed = list.getByRole("listitem", { name: "Spec Remote" });
  await expect(renamed).toContainText("spec-external");

  await renamed.getByRole("button", { name: "Delete Spec Remote" }).click();
  await renamed.getByRole("button", { name: "Confirm deleting Spec Remote" }).click();
  await expect(renamed).toHaveCount(0);
  const left = await request.get(`/api/v2/organizations/${await organizationId(request)}/templates`);
  expect(await left.text()).not.toContain("spec-external");
});

test("a new user signs in and is not allowed into the admin pages; a token is shown once", async ({
  page,
  browser,
  request,
}) => {
  await signInQuickly(page);
  await page.goto("/admin/users");
  const user = { email: "spec-member@example.com", username: "spec-member", password: "spec-member-pw-1" };

  await page.getByText("Add a user").click();
  const form = page.getByRole("form", { name: "New user" });
  await form.getByLabel("Email").fill("not-an-email");
  await form.getByLabel("Username").fill(user.username);
  await form.getByLabel("Password").fill(user.password);
  await form.getByRole("button", { name: "Create user" }).click();
  await expect(form.getByRole("alert")).toContainText("Validation failed.");
  await expect(form.getByLabel("Email")).toHaveAccessibleDescription(/.+/);
  await form.getByLabel("Email").fill(user.email);
  await form.getByRole("button", { name: "Create user" }).click();
  await expect(form.getByRole("status")).toHaveText(`Created ${user.username}.`);
  await expect(page.getByRole("cell", { name: user.email })).toBeVisible();

  // The token: shown once after creation, listed by name afterwards, deleted.
  const tokens = page.getByRole("form", { name: "New token" });
  await tokens.getByLabel("Token name").fill("spec-token");
  await tokens.getByRole("button", { name: "Create token" }).click();
  const shown = page.getByRole("region", { name: "Token created" }).getByTestId("new-token");
  await expect(shown).toHaveText(/^\S+-\S+$/);
  const key = (await shown.textContent())!;
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
  await page.getByRole("button", { name: "Copy token" }).click();
  await expect(page.getByRole("region", { name: "Token created" }).getByRole("status")).toHaveText("Copied.");
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(key);
  const me = await request.get("/api/v2/users/me", { headers: { "Coder-Session-Token": key } });
  expect(me.status()).toBe(200);
  await capture(page, "admin-users");

  await page.reload();
  const item = page.getByRole("listitem", { name: "Token spec-token" });
  await expect(item).toBeVisible();
  await expect(page.getByText(key)).toHaveCount(0);
  await item.getByRole("button", { name: "Delete token spec-token" }).click();
  await item.getByRole("button", { name: "Confirm deleting token spec-token" }).click();
  await expect(item).toHaveCount(0);
  const gone = await request.get("/api/v2/users/me", { headers: { "Coder-Session-Token": key } });
  expect(gone.status()).toBe(401);

  // The new user signs in elsewhere; the admin pages are not theirs.
  const context = await browser.newContext();
  const other = await context.newPage();
  await signIn(other, user);
  await expect(other.getByRole("link", { name: "Admin" })).toHaveCount(0);
  await other.goto("/admin");
  await expect(other.getByRole("alert")).toContainText("not allowed");
  await capture(other, "admin-not-allowed");
  await context.close();
});
