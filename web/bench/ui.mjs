// The web UI in Chromium: how fast the chat list paints with many chats, and whether the chat
// view keeps up with a reply streamed at a fixed pace.
//
//   make web && cd web && node bench/ui.mjs [--chats 500] [--deltas 2000] [--pace 200] [--runs 5]
//                                            [--paragraph 40]
//
// It starts its own `chatd server` (SQLite, a temporary directory) and fake provider, creates
// the chats through the API, and drives Debian's Chromium (CHATD_CHROMIUM, default
// /usr/bin/chromium) headless with Playwright.
//
// List paint: from navigation start to the first frame in which the chat list shows its rows
// (median and worst of --runs page loads).
// Stream: a reply of --deltas text deltas at --pace deltas/s, a paragraph break after every
// --paragraph deltas (0: one paragraph, the worst case for a Markdown renderer). A hook on the
// page's WebSocket notes when each delta arrives; after every frame a task notes the deltas
// the DOM holds by then. Latency is that time minus arrival (an upper bound on the paint). Dropped frames are the frames missed beyond the display's
// 60 Hz during the reply.
import { chromium } from "@playwright/test";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values: opts } = parseArgs({
  options: {
    chats: { type: "string", default: "500" },
    deltas: { type: "string", default: "2000" },
    pace: { type: "string", default: "200" },
    runs: { type: "string", default: "5" },
    paragraph: { type: "string", default: "40" },
  },
});
const CHATS = Number(opts.chats);
const DELTAS = Number(opts.deltas);
const PACE = Number(opts.pace);
const RUNS = Number(opts.runs);
const PARAGRAPH = Number(opts.paragraph);
const ADMIN = { email: "bench@example.com", username: "bench", password: "bench-password-1" };
const python = process.env.CHATD_PYTHON ?? fileURLToPath(new URL("../../.venv/bin/python", import.meta.url));

function freePort() {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(url, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not come up`);
}

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

const home = mkdtempSync(join(tmpdir(), "chatd-ui-bench-"));
const [port, fakePort] = [await freePort(), await freePort()];
const base = `http://127.0.0.1:${port}`;
const fake = `http://127.0.0.1:${fakePort}`;
const env = {
  PATH: process.env.PATH,
  HOME: home,
  CHATD_DATA_DIR: join(home, "data"),
  CHATD_CONFIG_DIR: join(home, "config"),
  CHATD_HTTP_ADDRESS: `127.0.0.1:${port}`,
  CHATD_FIRST_USER_EMAIL: ADMIN.email,
  CHATD_FIRST_USER_USERNAME: ADMIN.username,
  CHATD_FIRST_USER_PASSWORD: ADMIN.password,
  OPENAI_API_KEY: "sk-bench",
  CHATD_OPENAI_BASE_URL: `${fake}/v1`,
  CHATD_OPENAI_MODEL: "fake-model",
  CHATD_ACQUIRE_INTERVAL: "0.1",
  CHATD_RATE_LIMIT_PER_MINUTE: "0",
  CHATD_LOG_LEVEL: "warning",
};
const children = [
  spawn(python, ["-m", "chatd.cli.main", "dev", "fake-provider", "--port", String(fakePort)], { env, stdio: "ignore" }),
  spawn(python, ["-m", "chatd.cli.main", "server"], { env, stdio: "ignore" }),
];
const browser = { instance: null };

try {
  await waitFor(`${fake}/fake/requests`);
  await waitFor(`${base}/healthz`);
  const login = await fetch(`${base}/api/v2/users/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: ADMIN.email, password: ADMIN.password }),
  });
  const { session_token: token } = await login.json();
  const auth = { "Coder-Session-Token": token, "content-type": "application/json" };
  const me = await (await fetch(`${base}/api/v2/users/me`, { headers: auth })).json();
  const org = me.organization_ids[0];

  async function createChat(text) {
    const r = await fetch(`${base}/api/experimental/chats`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ organization_id: org, content: [{ type: "text", text }] }),
    });
    if (r.status !== 201) throw new Error(`create chat: ${r.status} ${await r.text()}`);
    return r.json();
  }

  // The chats, 20 at a time; their turns get the fake provider's default reply.
  for (let i = 0; i < CHATS; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, CHATS - i) }, (_, j) => createChat(`bench chat ${i + j}`)),
    );
  }

  browser.instance = await chromium.launch({
    executablePath: process.env.CHATD_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.instance.newContext({ viewport: { width: 1280, height: 800 } });
  await context.request.post(`${base}/api/v2/users/login`, { data: { email: ADMIN.email, password: ADMIN.password } });

  // List paint.
  const paints = [];
  let rowsShown = 0;
  for (let run = 0; run < RUNS; run++) {
    const page = await context.newPage();
    await page.addInitScript(() => {
      const rows = () => document.querySelectorAll('aside a[href^="/chats/"]').length;
      const tick = (t) => {
        if (rows() > 0) {
          window.__listPaint = { at: t, rows: rows() };
          return;
        }
        requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await page.goto(`${base}/`);
    const result = await page.waitForFunction(() => window.__listPaint, null, { timeout: 30_000 });
    const { at, rows } = await result.jsonValue();
    paints.push(at);
    rowsShown = rows;
    await page.close();
  }
  paints.sort((a, b) => a - b);

  // Streaming: the reply waits on a gate until the page has connected.
  const deltas = Array.from(
    { length: DELTAS },
    (_, i) => `w${String(i).padStart(5, "0")}${PARAGRAPH && (i + 1) % PARAGRAPH === 0 ? "\n\n" : " "}`,
  );
  await fetch(`${fake}/fake/script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify([{ match: { stream: true }, wait_for: "ui-bench", text: deltas, tokens_per_second: PACE }]),
  });
  const chat = await createChat("bench stream");
  const page = await context.newPage();
  await page.addInitScript((total) => {
    const arrived = new Float64Array(total).fill(-1);
    const painted = new Float64Array(total).fill(-1);
    const frames = [];
    window.__bench = { arrived, painted, frames, seen: -1 };
    const Native = window.WebSocket;
    window.WebSocket = class extends Native {
      constructor(...args) {
        super(...args);
        this.addEventListener("message", (event) => {
          const now = performance.now();
          for (const m of event.data.matchAll(/w(\d{5})/g)) {
            const i = Number(m[1]);
            if (i < total && arrived[i] < 0) arrived[i] = now;
          }
        });
      }
    };
    // Each frame, a task posted from its animation-frame callback runs after the frame's own
    // callbacks (the page's render among them) and its paint: whatever the DOM holds then was
    // painted by then.
    const check = () => {
      const b = window.__bench;
      const shown =
        document.querySelector('article[aria-busy="true"]') ?? document.querySelector("main");
      const tail = (shown?.textContent ?? "").slice(-400);
      let max = -1;
      for (const m of tail.matchAll(/w(\d{5})/g)) max = Math.max(max, Number(m[1]));
      if (max > b.seen) {
        const now = performance.now();
        for (let i = b.seen + 1; i <= max && i < total; i++) painted[i] = now;
        b.seen = max;
      }
    };
    const tick = (t) => {
      const b = window.__bench;
      if (b.seen >= 0 && b.seen < total - 1) frames.push(t);
      setTimeout(check, 0);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }, DELTAS);
  await page.goto(`${base}/chats/${chat.id}`);
  await page.waitForTimeout(1500); // the stream socket connects
  await fetch(`${fake}/fake/gates/ui-bench`, { method: "POST" });
  await page.waitForFunction((total) => window.__bench.seen >= total - 1, DELTAS, {
    timeout: (DELTAS / PACE) * 1000 + 60_000,
  });
  const { arrived, painted, frames } = await page.evaluate(() => ({
    arrived: Array.from(window.__bench.arrived),
    painted: Array.from(window.__bench.painted),
    frames: window.__bench.frames,
  }));
  const latencies = [];
  for (let i = 0; i < DELTAS; i++) {
    if (arrived[i] >= 0 && painted[i] >= 0) latencies.push(Math.max(0, painted[i] - arrived[i]));
  }
  latencies.sort((a, b) => a - b);
  let dropped = 0;
  for (let i = 1; i < frames.length; i++) {
    dropped += Math.max(0, Math.round((frames[i] - frames[i - 1]) / (1000 / 60)) - 1);
  }
  const seconds = frames.length > 1 ? (frames.at(-1) - frames[0]) / 1000 : 0;

  const f = (x) => x.toFixed(1);
  console.log(`chat list, ${CHATS} chats: first paint with rows p50 ${f(quantile(paints, 0.5))} ms, ` +
    `worst ${f(paints.at(-1))} ms over ${RUNS} loads (${rowsShown} rows in the DOM)`);
  console.log(`stream, ${DELTAS} deltas at ${PACE}/s, ${PARAGRAPH ? `a paragraph per ${PARAGRAPH}` : "one paragraph"}: ${latencies.length} painted; arrival to paint ` +
    `p50 ${f(quantile(latencies, 0.5))} ms, p99 ${f(quantile(latencies, 0.99))} ms, max ${f(latencies.at(-1))} ms; ` +
    `${frames.length} frames in ${f(seconds)} s, ${dropped} dropped`);
  console.log(`reproduce: cd web && node bench/ui.mjs --chats ${CHATS} --deltas ${DELTAS} --pace ${PACE} --runs ${RUNS} --paragraph ${PARAGRAPH}`);
} finally {
  await browser.instance?.close();
  for (const child of children) child.kill("SIGTERM");
  rmSync(home, { recursive: true, force: true });
}
