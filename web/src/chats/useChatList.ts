// The chat list's data: pages from GET /api/experimental/chats under the current filter, kept
// live by the watch socket. A filter the server refuses leaves the last good rows in place.
import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, errorText, must } from "../api/client";
import { LiveSocket } from "../api/socket";
import {
  applyEvent,
  mergeFirstPage,
  place,
  matches,
  type Chat,
  type Filter,
  type Rows,
  type WatchEvent,
} from "./listing";

export const PAGE_SIZE = 40;

/** A refused search: the server's message, its detail, and what it found wrong in `q`. */
function searchErrorText(err: ApiError): string {
  const { message, detail, validations } = err.envelope;
  const parts = [message];
  if (detail) parts.push(detail);
  for (const v of validations ?? []) parts.push(v.field === "q" ? v.detail : `${v.field}: ${v.detail}`);
  return parts.join(" ");
}

async function fetchPage(filter: Filter, afterId?: string): Promise<Chat[]> {
  return must(
    api.GET("/api/experimental/chats", {
      params: {
        query: {
          q: filter.q || undefined,
          label: filter.labels.length ? filter.labels : undefined,
          after_id: afterId,
          limit: String(PAGE_SIZE),
        },
      },
    }),
  );
}

export interface ChatListData {
  rows: Chat[];
  hasMore: boolean;
  /** The first page under the current filter has not come yet. */
  loading: boolean;
  loadingMore: boolean;
  /** Why the last search was refused (the rows stay those of the last good one). */
  searchError: string | null;
  /** Why loading a page failed (other than a refused search). */
  loadError: string | null;
  loadMore: () => void;
  /** Asks for the first page again and merges it over what is loaded. */
  reloadFirstPage: () => Promise<void>;
  /** Shows a change made here before the server says so. */
  updateLocal: (chat: Chat) => void;
  /** The watch socket is open (false before it first opens and while it reconnects). */
  live: boolean;
  /** The watch socket was open once and is now trying again. */
  reconnecting: boolean;
}

function sameFilter(a: Filter, b: Filter): boolean {
  return a.q === b.q && a.labels.join("\n") === b.labels.join("\n");
}

export function useChatList(filter: Filter, currentId: string | null): ChatListData {
  const [state, setState] = useState<Rows>({ rows: [], hasMore: false });
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [searchError, setSearchError] = useState<string | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [live, setLive] = useState(false);
  const [reconnecting, setReconnecting] = useState(false);

  // The filter the rows were loaded under (watch events are judged by it).
  const applied = useRef<Filter>(filter);
  const stateRef = useRef(state);
  stateRef.current = state;
  const currentRef = useRef(currentId);
  currentRef.current = currentId;
  const generation = useRef(0);
  const moreInFlight = useRef(false);

  // The first page whenever the filter changes.
  useEffect(() => {
    const mine = ++generation.current;
    let cancelled = false;
    fetchPage(filter)
      .then((page) => {
        if (cancelled || mine !== generation.current) return;
        applied.current = filter;
        setState({ rows: page, hasMore: page.length >= PAGE_SIZE });
        setSearchError(null);
        setLoadError(null);
      })
      .catch((err: unknown) => {
        if (cancelled || mine !== generation.current) return;
        if (err instanceof ApiError && err.status === 400) setSearchError(searchErrorText(err));
        else setLoadError(errorText(err));
      })
      .finally(() => {
        if (!cancelled && mine === generation.current) setLoading(false);
      });
    return () => {
      cancelled = true;
    };
    // The filter's content, not its identity, decides.
  }, [filter.q, filter.labels.join("\n")]);

  const loadMore = useCallback(() => {
    const { rows, hasMore } = stateRef.current;
    if (!hasMore || moreInFlight.current || rows.length === 0) return;
    moreInFlight.current = true;
    setLoadingMore(true);
    const mine = generation.current;
    const under = applied.current;
    fetchPage(under, rows[rows.length - 1]!.id)
      .then((page) => {
        if (mine !== generation.current) return;
        setState((s) => {
          const known = new Set(s.rows.map((c) => c.id));
          return {
            rows: [...s.rows, ...page.filter((c) => !known.has(c.id))],
            hasMore: page.length >= PAGE_SIZE,
          };
        });
        setLoadError(null);
      })
      .catch((err: unknown) => {
        if (mine === generation.current) setLoadError(errorText(err));
      })
      .finally(() => {
        moreInFlight.current = false;
        setLoadingMore(false);
      });
  }, []);

  const reloadFirstPage = useCallback(async () => {
    const mine = generation.current;
    const under = applied.current;
    try {
      const page = await fetchPage(under);
      if (mine !== generation.current || !sameFilter(under, applied.current)) return;
      setState((s) => mergeFirstPage(s, page, PAGE_SIZE));
    } catch (err) {
      if (mine === generation.current) setLoadError(errorText(err));
    }
  }, []);

  // Watch events from the server; a refetch they ask for waits a moment to gather others.
  const refetchTimer = useRef<number | undefined>(undefined);
  useEffect(() => {
    let opened = false;
    const socket = new LiveSocket<WatchEvent>({
      path: () => "/api/experimental/chats/watch",
      onOpen: () => {
        // Events missed while away: the first page once more.
        if (opened) void reloadFirstPage();
        opened = true;
        setLive(true);
        setReconnecting(false);
      },
      onClose: (_event, willRetry) => {
        setLive(false);
        setReconnecting(opened && willRetry);
      },
      onMessage: (event) => {
        if (!event || typeof event !== "object" || !event.chat) return;
        const result = applyEvent(stateRef.current, event, applied.current, currentRef.current);
        if (result.state !== stateRef.current) {
          stateRef.current = result.state;
          setState(result.state);
        }
        if (result.refetch) {
          window.clearTimeout(refetchTimer.current);
          refetchTimer.current = window.setTimeout(() => void reloadFirstPage(), 300);
        }
      },
    });
    return () => {
      socket.close();
      window.clearTimeout(refetchTimer.current);
    };
  }, [reloadFirstPage]);

  // The open chat is read.
  useEffect(() => {
    if (!currentId) return;
    setState((s) => {
      const found = s.rows.find((c) => c.id === currentId);
      if (!found?.has_unread) return s;
      return { ...s, rows: s.rows.map((c) => (c.id === currentId ? { ...c, has_unread: false } : c)) };
    });
  }, [currentId]);

  const updateLocal = useCallback((chat: Chat) => {
    setState((s) => place(s, chat, matches(chat, applied.current) !== false));
  }, []);

  return {
    rows: state.rows,
    hasMore: state.hasMore,
    loading,
    loadingMore,
    searchError,
    loadError,
    loadMore,
    reloadFirstPage,
    updateLocal,
    live,
    reconnecting,
  };
}
