// The state of one chat as its stream builds it: committed messages by id, the reply being
// streamed (built from `message_part` deltas), status, retry, error, queue and pending client
// tool calls. Pure functions: the hook feeds them whole batches of events.
import type { Schemas } from "../api/client";

export type ChatMessage = Schemas["ChatMessage"];
export type Part = Schemas["ChatMessagePart"];
export type StreamEvent = Schemas["ChatStreamEvent"];
export type QueuedMessage = Schemas["ChatQueuedMessage"];
export type ChatError = Schemas["ChatError"];
export type Retry = Schemas["ChatStreamRetry"];
export type PendingCall = Schemas["ChatStreamToolCall"];
export type ChatStatus = Schemas["ChatStatus"];

/** One piece of the reply being streamed, in the order the deltas came. */
export type LiveBlock =
  | { kind: "text"; text: string }
  | { kind: "reasoning"; text: string }
  /** A tool call; `argsText` collects `args_delta` pieces until the complete call arrives. */
  | { kind: "call"; id: string; part: Part; argsText: string; complete: boolean }
  /** A tool result; `resultText` collects `result_delta` pieces. */
  | { kind: "result"; id: string; part: Part; resultText: string }
  | { kind: "other"; part: Part };

export interface ChatState {
  /** Committed messages by id, and their ids in ascending order. */
  byId: Record<number, ChatMessage>;
  ids: number[];
  /** Tool results of committed messages, by `tool_call_id`. */
  results: Record<string, Part>;
  live: LiveBlock[];
  status: ChatStatus | null;
  retry: Retry | null;
  error: ChatError | null;
  queue: QueuedMessage[];
  pending: PendingCall[] | null;
  /** Bumped when the server re-sent history (an edit): the view reloads the messages. */
  refreshes: number;
}

export const initialState: ChatState = {
  byId: {},
  ids: [],
  results: {},
  live: [],
  status: null,
  retry: null,
  error: null,
  queue: [],
  pending: null,
  refreshes: 0,
};

export type Action =
  | { type: "events"; events: StreamEvent[]; fresh: boolean }
  | { type: "upsert"; message: ChatMessage }
  | { type: "replace"; messages: ChatMessage[] }
  | { type: "edited"; editedId: number; message: ChatMessage }
  | { type: "queue"; queue: QueuedMessage[] }
  | { type: "status"; status: ChatStatus };

export function lastId(state: ChatState): number {
  return state.ids.length ? state.ids[state.ids.length - 1]! : 0;
}

const IDLE_STATUSES: ChatStatus[] = ["waiting", "pending", "paused", "completed", "error", "requires_action"];

/** Mutable working copy used while one batch is applied. */
interface Draft extends ChatState {
  idsDirty: boolean;
  touchedLive: boolean;
}

function insertMessage(d: Draft, m: ChatMessage): void {
  if (!(m.id in d.byId)) {
    const last = d.ids.length ? d.ids[d.ids.length - 1]! : 0;
    if (m.id > last) d.ids = [...d.ids, m.id];
    else {
      d.ids = [...d.ids, m.id].sort((a, b) => a - b);
    }
  }
  d.byId = { ...d.byId, [m.id]: m };
  const found: Record<string, Part> = {};
  let any = false;
  for (const p of m.content ?? []) {
    if (p.type === "tool-result" && p.tool_call_id) {
      found[p.tool_call_id] = p;
      any = true;
    }
  }
  if (any) d.results = { ...d.results, ...found };
}

function applyPart(live: LiveBlock[], part: Part): LiveBlock[] {
  const last = live[live.length - 1];
  switch (part.type) {
    case "text":
    case "reasoning": {
      const text = part.text ?? "";
      if (last && last.kind === part.type) {
        return [...live.slice(0, -1), { kind: part.type, text: last.text + text }];
      }
      return [...live, { kind: part.type, text }];
    }
    case "tool-call": {
      const id = part.tool_call_id ?? "";
      const at = live.findIndex((b) => b.kind === "call" && b.id === id);
      const prev = at >= 0 ? (live[at] as Extract<LiveBlock, { kind: "call" }>) : null;
      let next: LiveBlock;
      if (part.args_delta != null && part.args == null) {
        next = {
          kind: "call",
          id,
          part: prev ? prev.part : { ...part, args_delta: null },
          argsText: (prev?.argsText ?? "") + part.args_delta,
          complete: false,
        };
      } else {
        next = { kind: "call", id, part, argsText: prev?.argsText ?? "", complete: true };
      }
      if (at >= 0) return live.map((b, i) => (i === at ? next : b));
      return [...live, next];
    }
    case "tool-result": {
      const id = part.tool_call_id ?? "";
      const at = live.findIndex((b) => b.kind === "result" && b.id === id);
      const prev = at >= 0 ? (live[at] as Extract<LiveBlock, { kind: "result" }>) : null;
      let resultText = prev?.resultText ?? "";
      if (part.result_reset) resultText = "";
      if (part.result_delta != null) resultText += part.result_delta;
      const merged: Part =
        part.result !== undefined && part.result !== null ? part : { ...(prev?.part ?? part), ...part };
      const next: LiveBlock = { kind: "result", id, part: merged, resultText };
      if (at >= 0) return live.map((b, i) => (i === at ? next : b));
      return [...live, next];
    }
    default:
      return [...live, { kind: "other", part }];
  }
}

/**
 * Drops the streamed pieces that committed messages already hold. The server's turn buffer
 * covers the whole turn, so after a reconnect it may replay steps we already have: a step's
 * pieces end with its tool calls and results, which committed messages name by id. A committed
 * assistant message without tool calls ends the turn (or keeps an interrupted answer), so it
 * covers everything.
 */
function reconcile(d: Draft): void {
  if (d.live.length === 0) return;
  const covered = new Set<string>();
  for (let i = d.ids.length - 1; i >= 0; i--) {
    const m = d.byId[d.ids[i]!]!;
    if (m.role === "user") break;
    if (m.role === "assistant") {
      const calls = (m.content ?? []).filter((p) => p.type === "tool-call");
      if (i === d.ids.length - 1 && calls.length === 0) {
        d.live = [];
        return;
      }
      for (const c of calls) if (c.tool_call_id) covered.add(c.tool_call_id);
    }
    for (const p of m.content ?? []) {
      if (p.type === "tool-result" && p.tool_call_id) covered.add(p.tool_call_id);
    }
  }
  if (covered.size === 0) return;
  let cut = -1;
  d.live.forEach((b, i) => {
    if ((b.kind === "call" || b.kind === "result") && covered.has(b.id)) cut = i;
  });
  if (cut >= 0) d.live = d.live.slice(cut + 1);
}

function applyEvent(d: Draft, e: StreamEvent): void {
  switch (e.type) {
    case "message_part": {
      const part = e.message_part?.part;
      if (!part) return;
      d.retry = null;
      d.live = applyPart(d.live, part);
      d.touchedLive = true;
      return;
    }
    case "message": {
      const m = e.message;
      if (!m) return;
      if (m.id in d.byId && m.id < lastId(d)) d.refreshes += 1;
      insertMessage(d, m);
      if (m.role === "user") d.pending = null;
      d.touchedLive = true;
      return;
    }
    case "status": {
      const s = e.status?.status;
      if (!s) return;
      d.status = s;
      if (IDLE_STATUSES.includes(s)) d.retry = null;
      if (s === "pending" || s === "running") d.error = null;
      if (s !== "requires_action") d.pending = null;
      return;
    }
    case "error":
      d.error = e.error ?? null;
      d.retry = null;
      return;
    case "retry":
      d.retry = e.retry ?? null;
      d.live = [];
      return;
    case "queue_update":
      d.queue = e.queued_messages ?? [];
      return;
    case "action_required":
      d.pending = e.action_required?.tool_calls ?? [];
      return;
  }
}

export function reducer(state: ChatState, action: Action): ChatState {
  const d: Draft = { ...state, idsDirty: false, touchedLive: false };
  switch (action.type) {
    case "events":
      // A new connection replays the running turn's parts from its start.
      if (action.fresh) d.live = [];
      for (const e of action.events) applyEvent(d, e);
      if (d.touchedLive || action.fresh) reconcile(d);
      break;
    case "upsert":
      insertMessage(d, action.message);
      reconcile(d);
      break;
    case "replace": {
      d.byId = {};
      d.ids = [];
      d.results = {};
      for (const m of [...action.messages].sort((a, b) => a.id - b.id)) insertMessage(d, m);
      reconcile(d);
      break;
    }
    case "edited": {
      const keep = d.ids.filter((id) => id < action.editedId);
      const byId: Record<number, ChatMessage> = {};
      for (const id of keep) byId[id] = d.byId[id]!;
      d.byId = byId;
      d.ids = keep;
      d.live = [];
      d.queue = [];
      d.error = null;
      d.retry = null;
      insertMessage(d, action.message);
      break;
    }
    case "queue":
      d.queue = action.queue;
      break;
    case "status":
      d.status = action.status;
      if (action.status !== "requires_action") d.pending = null;
      break;
  }
  const { idsDirty: _a, touchedLive: _b, ...next } = d;
  return next;
}

/** The live blocks as parts, for rendering like a committed message. */
export function liveParts(live: LiveBlock[]): Part[] {
  return live.map((b) => {
    switch (b.kind) {
      case "text":
        return { type: "text", text: b.text } as Part;
      case "reasoning":
        return { type: "reasoning", text: b.text } as Part;
      case "call":
        return b.complete ? b.part : ({ ...b.part, args_delta: b.argsText } as Part);
      case "result":
        return b.resultText && (b.part.result === undefined || b.part.result === null)
          ? ({ ...b.part, result_delta: b.resultText } as Part)
          : b.part;
      case "other":
        return b.part;
    }
  });
}

/** The text parts of a message (or queued message), joined. */
export function textOf(parts: Part[] | null | undefined): string {
  return (parts ?? [])
    .filter((p) => p.type === "text")
    .map((p) => p.text ?? "")
    .join("");
}
