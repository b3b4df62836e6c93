// Follows one chat's stream: connects with `after_id` = the newest committed message, applies
// each animation frame's events in one state update, reconnects after a drop, and reloads the
// history when the server re-sent it (an edit).
import { useEffect, useReducer, useRef, useState } from "react";
import { flushSync } from "react-dom";
import { api, must } from "../api/client";
import { LiveSocket } from "../api/socket";
import { initialState, lastId, reducer, type ChatMessage, type StreamEvent } from "./state";

export type Connection = "connecting" | "open" | "reconnecting";

async function loadHistory(chatId: string): Promise<ChatMessage[]> {
  const all: ChatMessage[] = [];
  let before = 0;
  for (;;) {
    const page = await must(
      api.GET("/api/experimental/chats/{chat}/messages", {
        params: { path: { chat: chatId }, query: before ? { before_id: String(before), limit: "200" } : { limit: "200" } },
      }),
    );
    all.push(...page.messages);
    if (!page.has_more || page.messages.length === 0) break;
    before = page.messages[page.messages.length - 1]!.id;
  }
  return all;
}

export function useChatStream(chatId: string) {
  const [state, dispatch] = useReducer(reducer, initialState);
  const [connection, setConnection] = useState<Connection>("connecting");
  const stateRef = useRef(state);
  stateRef.current = state;

  useEffect(() => {
    let pending: StreamEvent[] = [];
    let fresh = false;
    let frame = 0;
    let disposed = false;

    function flush() {
      frame = 0;
      if (disposed || pending.length === 0) return;
      const events = pending;
      const wasFresh = fresh;
      pending = [];
      fresh = false;
      // Rendered now, inside this frame's callbacks, so the frame about to be painted shows
      // the deltas (a plain dispatch would render in a later task and paint a frame later).
      flushSync(() => dispatch({ type: "events", events, fresh: wasFresh }));
    }

    const socket = new LiveSocket<StreamEvent[]>({
      path: () => {
        const after = lastId(stateRef.current);
        const query = after > 0 ? `?after_id=${after}` : "";
        return `/api/experimental/chats/${encodeURIComponent(chatId)}/stream${query}`;
      },
      onOpen: () => {
        // Events still waiting from the old connection go first; the new one replays the
        // running turn's parts from its start.
        if (pending.length) flush();
        fresh = true;
        setConnection("open");
      },
      onMessage: (events) => {
        pending.push(...events);
        if (!frame) frame = requestAnimationFrame(flush);
      },
      onClose: (_event, willRetry) => {
        if (willRetry) setConnection("reconnecting");
      },
      finalCodes: [4401, 4403, 4404],
    });
    return () => {
      disposed = true;
      if (frame) cancelAnimationFrame(frame);
      socket.close();
    };
  }, [chatId]);

  // The server re-sent the history (a message was edited): take the server's list.
  useEffect(() => {
    if (state.refreshes === 0) return;
    let cancelled = false;
    const timer = window.setTimeout(() => {
      loadHistory(chatId)
        .then((messages) => {
          if (!cancelled) dispatch({ type: "replace", messages });
        })
        .catch(() => {});
    }, 150);
    return () => {
      cancelled = true;
      window.clearTimeout(timer);
    };
  }, [state.refreshes, chatId]);

  return { state, dispatch, connection };
}
