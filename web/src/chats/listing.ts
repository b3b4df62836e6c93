// The chat list's rules, kept apart from React: the server's order, which chats a filter
// keeps (as far as the browser can tell), and how a watch event changes the loaded rows.
import type { Schemas } from "../api/client";

export type Chat = Schemas["Chat"];
export type ChatStatus = Chat["status"];
export type WatchEvent = Schemas["ChatWatchEvent"];

/** What the list asks the server for: the search text and the label filters. */
export interface Filter {
  q: string;
  labels: string[];
}

function time(value: string): number {
  const t = Date.parse(value);
  return Number.isNaN(t) ? 0 : t;
}

/** The server's order: pinned chats first by pin order, then newest update first, then id. */
export function compareChats(a: Chat, b: Chat): number {
  const ap = a.pin_order ?? 0;
  const bp = b.pin_order ?? 0;
  if (ap > 0 !== bp > 0) return ap > 0 ? -1 : 1;
  if (ap > 0 && ap !== bp) return ap - bp;
  const at = time(a.updated_at);
  const bt = time(b.updated_at);
  if (at !== bt) return bt - at;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/** Splits a search on spaces outside double quotes (as the server does). */
export function searchElements(q: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (const ch of q) {
    if (ch === '"') quoted = !quoted;
    if (ch === " " && !quoted) {
      if (current) out.push(current);
      current = "";
    } else {
      current += ch;
    }
  }
  if (current) out.push(current);
  return out;
}

/** The key:value terms of a search; null when it is not made only of such terms. */
export function searchTerms(q: string): [string, string][] | null {
  const terms: [string, string][] = [];
  for (const element of searchElements(q)) {
    const pieces: string[] = [];
    let current = "";
    let quoted = false;
    for (const ch of element) {
      if (ch === '"') quoted = !quoted;
      if (ch === ":" && !quoted) {
        pieces.push(current);
        current = "";
      } else {
        current += ch;
      }
    }
    pieces.push(current);
    if (pieces.length !== 2) return null;
    const strip = (s: string) => s.replace(/^"+|"+$/g, "");
    terms.push([strip(pieces[0]!).toLowerCase(), strip(pieces[1]!)]);
  }
  return terms;
}

const TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/**
 * Whether a chat belongs in the list under this filter: true or false when the browser can
 * tell from the chat alone, undefined when only the server can (pull-request filters and such).
 */
export function matches(chat: Chat, filter: Filter): boolean | undefined {
  const terms = searchTerms(filter.q);
  if (terms === null) return undefined;
  let archived = false;
  let known = true;
  for (const [key, value] of terms) {
    if (value === "") continue;
    if (key === "archived") {
      if (TRUE.has(value)) archived = true;
      else if (FALSE.has(value)) archived = false;
      else known = false;
    } else if (key === "title") {
      if (/[%_]/.test(value)) known = false;
      else if (!chat.title.toLowerCase().includes(value.toLowerCase())) return false;
    } else {
      known = false;
    }
  }
  if (chat.archived !== archived) return false;
  for (const raw of filter.labels) {
    const at = raw.indexOf(":");
    const key = raw.slice(0, at);
    const value = raw.slice(at + 1);
    if ((chat.labels ?? {})[key] !== value) return false;
  }
  if (chat.parent_chat_id) return false;
  return known ? true : undefined;
}

const ACTIVE: ChatStatus[] = ["pending", "running"];

/** True while a turn is queued or running. */
export function isActive(status: ChatStatus): boolean {
  return ACTIVE.includes(status);
}

/**
 * The row a watch event leaves: the event's chat over what the list knew. Watch payloads do
 * not compute `has_unread`, so a turn that ends in a chat not on screen marks it unread.
 */
export function mergeEvent(existing: Chat | undefined, event: WatchEvent, currentId: string | null): Chat {
  const incoming = event.chat;
  const merged: Chat = {
    ...(existing ?? {}),
    ...incoming,
    diff_status: incoming.diff_status ?? existing?.diff_status ?? null,
    children: existing?.children ?? incoming.children,
  };
  if (event.kind === "deleted") merged.archived = true;
  let unread = existing?.has_unread ?? incoming.has_unread ?? false;
  if (
    event.kind === "status_change" &&
    existing &&
    isActive(existing.status) &&
    !isActive(incoming.status)
  ) {
    unread = true;
  }
  if (incoming.id === currentId) unread = false;
  merged.has_unread = unread;
  return merged;
}

export interface Rows {
  rows: Chat[];
  /** More pages wait on the server. */
  hasMore: boolean;
}

/**
 * Puts a chat where the server's order puts it, or takes it out. A chat that sorts past the
 * last loaded row while more pages wait is left for those pages.
 */
export function place(state: Rows, chat: Chat, keep: boolean): Rows {
  const others = state.rows.filter((c) => c.id !== chat.id);
  if (!keep) return others.length === state.rows.length ? state : { ...state, rows: others };
  const last = others[others.length - 1];
  if (state.hasMore && last && compareChats(chat, last) > 0) return { ...state, rows: others };
  const index = others.findIndex((c) => compareChats(chat, c) < 0);
  const rows = [...others];
  rows.splice(index === -1 ? rows.length : index, 0, chat);
  return { ...state, rows };
}

/** The result of a watch event: the new rows, and whether the first page must be asked again. */
export function applyEvent(
  state: Rows,
  event: WatchEvent,
  filter: Filter,
  currentId: string | null,
): { state: Rows; refetch: boolean } {
  const existing = state.rows.find((c) => c.id === event.chat.id);
  const chat = mergeEvent(existing, event, currentId);
  const keep = matches(chat, filter);
  if (keep === undefined) {
    if (!existing) return { state, refetch: event.kind === "created" || event.kind === "status_change" };
    return { state: place(state, chat, true), refetch: false };
  }
  return { state: place(state, chat, keep), refetch: false };
}

/**
 * A fresh first page over what was loaded: the page replaces the rows it covers, the rows
 * sorting after it stay (they came from later pages).
 */
export function mergeFirstPage(state: Rows, page: Chat[], pageSize: number): Rows {
  if (page.length < pageSize) return { rows: page, hasMore: false };
  const last = page[page.length - 1]!;
  const ids = new Set(page.map((c) => c.id));
  const rest = state.rows.filter((c) => !ids.has(c.id) && compareChats(c, last) > 0);
  return { rows: [...page, ...rest], hasMore: state.hasMore || rest.length === 0 };
}
