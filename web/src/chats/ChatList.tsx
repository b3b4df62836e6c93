// The chat list in the sidebar: search, label filters, archived toggle, and a virtualised,
// infinitely scrolled list of the user's chats kept live by the watch socket.
import { useVirtualizer } from "@tanstack/react-virtual";
import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { matchPath, useLocation } from "react-router-dom";
import { api, errorText, must, type Schemas } from "../api/client";
import { ChatRow, type RowActions } from "./ChatRow";
import type { Chat, Filter } from "./listing";
import { useChatList } from "./useChatList";
import "./ChatList.css";

const DEBOUNCE_MS = 300;

/** An update that changes nothing (each field left null); the actions fill in one field. */
const NO_CHANGE: Schemas["UpdateChatRequest"] = {
  title: null,
  archived: null,
  workspace_id: null,
  pin_order: null,
  labels: null,
  plan_mode: null,
};

function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setSettled(value), ms);
    return () => window.clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

export function ChatList() {
  const location = useLocation();
  const currentId = matchPath("/chats/:chatId/*", location.pathname)?.params.chatId ?? null;

  const [query, setQuery] = useState("");
  const [showArchived, setShowArchived] = useState(false);
  const [labels, setLabels] = useState<string[]>([]);
  const settledQuery = useDebounced(query.trim(), DEBOUNCE_MS);
  const filter = useMemo<Filter>(
    () => ({
      q: [settledQuery, showArchived ? "archived:true" : ""].filter(Boolean).join(" "),
      labels,
    }),
    [settledQuery, showArchived, labels],
  );
  const list = useChatList(filter, currentId);

  const [openMenu, setOpenMenu] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [actionError, setActionError] = useState<string | null>(null);
  const scroller = useRef<HTMLDivElement>(null);

  const patch = useCallback(
    async (chat: Chat, body: Partial<Schemas["UpdateChatRequest"]>, after: () => Promise<void> | void) => {
      setBusy(true);
      setActionError(null);
      try {
        await must(
          api.PATCH("/api/experimental/chats/{chat}", { params: { path: { chat: chat.id } }, body: { ...NO_CHANGE, ...body } }),
        );
        await after();
      } catch (err) {
        setActionError(errorText(err));
      } finally {
        setBusy(false);
      }
    },
    [],
  );

  const actions: RowActions = useMemo(
    () => ({
      togglePin: (chat) =>
        void patch(chat, { pin_order: (chat.pin_order ?? 0) > 0 ? 0 : 1 }, list.reloadFirstPage),
      move: (chat, by) =>
        void patch(chat, { pin_order: Math.max(1, (chat.pin_order ?? 0) + by) }, list.reloadFirstPage),
      toggleArchived: (chat) =>
        void patch(chat, { archived: !chat.archived }, () => {
          setOpenMenu(null);
          list.updateLocal({ ...chat, archived: !chat.archived, pin_order: 0 });
          scroller.current?.focus();
        }),
      setLabels: (chat, next) =>
        void patch(chat, { labels: next }, () => list.updateLocal({ ...chat, labels: next })),
      filterByLabel: (key, value) => {
        const pair = `${key}:${value}`;
        setLabels((current) => (current.includes(pair) ? current : [...current, pair]));
      },
    }),
    [patch, list.reloadFirstPage, list.updateLocal],
  );

  const lastPin = list.rows.reduce((max, c) => Math.max(max, c.pin_order ?? 0), 0);
  const filtered = filter.q !== "" || labels.length > 0;

  return (
    <div className="chat-list" data-live={list.live ? "yes" : "no"}>
      <div className="chat-list-controls">
        <label htmlFor="chat-search" className="visually-hidden">
          Search chats
        </label>
        <input
          id="chat-search"
          type="search"
          className="chat-search"
          placeholder="Search: title:bug has_unread:true"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          aria-invalid={list.searchError ? true : undefined}
          aria-describedby={list.searchError ? "chat-search-error" : undefined}
          autoComplete="off"
          spellCheck={false}
        />
        {list.searchError && (
          <p id="chat-search-error" role="alert" className="chat-search-error">
            {list.searchError}
          </p>
        )}
        <div className="chat-list-toggles">
          <label className="chat-archived-toggle">
            <input
              type="checkbox"
              checked={showArchived}
              onChange={(e) => setShowArchived(e.target.checked)}
            />
            Show archived
          </label>
        </div>
        {labels.length > 0 && (
          <ul className="chat-filters" aria-label="Label filters">
            {labels.map((pair) => (
              <li key={pair}>
                <button
                  type="button"
                  className="label-chip removable filter"
                  onClick={() => setLabels((current) => current.filter((p) => p !== pair))}
                >
                  <span className="visually-hidden">Remove filter </span>
                  {pair} <span aria-hidden="true">×</span>
                </button>
              </li>
            ))}
          </ul>
        )}
        {actionError && (
          <p role="alert" className="error chat-action-error">
            {actionError}
          </p>
        )}
      </div>
      {list.reconnecting && (
        <p role="status" className="chat-list-notice muted">
          Live updates lost; reconnecting…
        </p>
      )}
      {list.loadError && (
        <p role="alert" className="error chat-action-error">
          {list.loadError}
        </p>
      )}
      <VirtualRows
        scroller={scroller}
        rows={list.rows}
        hasMore={list.hasMore}
        loadingMore={list.loadingMore}
        loadMore={list.loadMore}
        currentId={currentId}
        openMenu={openMenu}
        setOpenMenu={setOpenMenu}
        lastPin={lastPin}
        busy={busy}
        actions={actions}
        empty={
          list.loading
            ? "Loading chats…"
            : showArchived
              ? "No archived chats."
              : filtered
                ? "No chats match."
                : "No chats yet."
        }
      />
    </div>
  );
}

interface VirtualRowsProps {
  scroller: React.RefObject<HTMLDivElement | null>;
  rows: Chat[];
  hasMore: boolean;
  loadingMore: boolean;
  loadMore: () => void;
  currentId: string | null;
  openMenu: string | null;
  setOpenMenu: (id: string | null) => void;
  lastPin: number;
  busy: boolean;
  actions: RowActions;
  empty: string;
}

function VirtualRows(props: VirtualRowsProps) {
  const { scroller, rows, hasMore, loadingMore, loadMore } = props;
  const count = rows.length + (hasMore ? 1 : 0);
  const virtualizer = useVirtualizer({
    count,
    getScrollElement: () => scroller.current,
    estimateSize: () => 62,
    overscan: 6,
    getItemKey: (index) => rows[index]?.id ?? "more",
  });
  const items = virtualizer.getVirtualItems();
  const lastIndex = items.length ? items[items.length - 1]!.index : -1;

  // The end of what is loaded is in view: the next page.
  useEffect(() => {
    if (hasMore && !loadingMore && lastIndex >= rows.length - 1) loadMore();
  }, [hasMore, loadingMore, lastIndex, rows.length, loadMore]);

  return (
    <div ref={scroller} className="chat-scroll" tabIndex={-1}>
      {rows.length === 0 && !hasMore ? (
        <p className="empty">{props.empty}</p>
      ) : (
        <ul className="chat-rows" aria-label="Chats" style={{ height: virtualizer.getTotalSize() }}>
          {items.map((item) => {
            const chat = rows[item.index];
            return (
              <li
                key={item.key}
                data-index={item.index}
                ref={virtualizer.measureElement}
                className="chat-rows-item"
                style={{ transform: `translateY(${item.start}px)` }}
              >
                {chat ? (
                  <ChatRow
                    chat={chat}
                    current={chat.id === props.currentId}
                    menuOpen={props.openMenu === chat.id}
                    onMenu={(open) => props.setOpenMenu(open ? chat.id : null)}
                    lastPin={props.lastPin}
                    busy={props.busy}
                    actions={props.actions}
                  />
                ) : (
                  <p className="chat-more muted" role="status">
                    Loading more chats…
                  </p>
                )}
              </li>
            );
          })}
        </ul>
      )}
      <p className="visually-hidden" role="status">
        {rows.length} {rows.length === 1 ? "chat" : "chats"} loaded{hasMore ? ", more below" : ""}
      </p>
    </div>
  );
}
