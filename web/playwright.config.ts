// Browser tests: Debian's Chromium (never a downloaded browser) against a real `chatd server`
// on embedded SQLite, whose model provider is chatd's fake OpenAI endpoint. Both servers are
// started here, on ports picked once in the runner (the workers inherit its environment).
import { defineConfig } from "@playwright/test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ADMIN } from "./tests/support";

function pickPort(): string {
  return String(20000 + Math.floor(Math.random() * 20000));
}

process.env.CHATD_WEB_PORT ??= pickPort();
process.env.CHATD_FAKE_PORT ??= pickPort();
process.env.CHATD_WEB_HOME ??= mkdtempSync(join(tmpdir(), "chatd-web-"));

const home = process.env.CHATD_WEB_HOME;
const python = process.env.CHATD_PYTHON ?? fileURLToPath(new URL("../.venv/bin/python", import.meta.url));
const baseURL = `http://127.0.0.1:${process.env.CHATD_WEB_PORT}`;
const fakeURL = `http://127.0.0.1:${process.env.CHATD_FAKE_PORT}`;

const serverEnv: Record<string, string> = {
  PATH: process.env.PATH ?? "/usr/bin:/bin",
  HOME: home,
  CHATD_DATA_DIR: join(home, "data"),
  CHATD_CONFIG_DIR: join(home, "config"),
  CHATD_HTTP_ADDRESS: `127.0.0.1:${process.env.CHATD_WEB_PORT}`,
  CHATD_FIRST_USER_EMAIL: ADMIN.email,
  CHATD_FIRST_USER_USERNAME: ADMIN.username,
  CHATD_FIRST_USER_PASSWORD: ADMIN.password,
  OPENAI_API_KEY: "sk-browser-tests",
  CHATD_OPENAI_BASE_URL: `${fakeURL}/v1`,
  CHATD_OPENAI_MODEL: "fake-model",
  CHATD_ACQUIRE_INTERVAL: "0.2",
  CHATD_RETRY_INITIAL_DELAY: "1",
  CHATD_RATE_LIMIT_BURST: "1000000",
  CHATD_LOG_FORMAT: "json",
  CHATD_LOG_LEVEL: "warning",
};

export default defineConfig({
  testDir: "tests",
  // One server and one fake provider's script queue for all: tests run one at a time.
  workers: 1,
  fullyParallel: false,
  retries: 0,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  use: {
    baseURL,
    trace: "off",
    launchOptions: {
      executablePath: process.env.CHATD_CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
  projects: [{ name: "chromium", use: { browserName: "chromium" } }],
  webServer: [
    {
      command: `${python} -m chatd.cli.main dev fake-provider --port ${process.env.CHATD_FAKE_PORT}`,
      url: `${fakeURL}/fake/requests`,
      env: serverEnv,
      reuseExistingServer: false,
      timeout: 60_000,
    },
    {
      command: `${python} -m chatd.cli.main server`,
      url: `${baseURL}/healthz`,
      env: serverEnv,
      reuseExistingServer: false,
      timeout: 120_000,
    },
  ],
});
