// One chat, streamed live: its title and status, the transcript (committed messages plus the
// reply being streamed), retries and errors, the queue, the composer, what the chat asks of the
// user, its sub-agents, and the workspace panels beside it.
import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { api, errorText, must, type Schemas } from "../api/client";
import { LiveSocket } from "../api/socket";
import { Composer } from "./Composer";
import { LiveMessage, Message } from "./Message";
import { SidePanels } from "./panels/SidePanels";
import { openQuestions, pendingCalls, QuestionsForm, ToolResultsForm } from "./Prompts";
import { QueuePanel } from "./QueuePanel";
import { interrupt } from "./requests";
import type { ChatMessage } from "./state";
import { ErrorNotice, RetryNotice, StatusBadge } from "./StatusLine";
import { useChatStream } from "./useChatStream";
import "./ChatView.css";

type Chat = Schemas["Chat"];
type WatchEvent = Schemas["ChatWatchEvent"];

/** The chat row, kept current by the owner's watch socket (title, archive, children). */
function useChat(chatId: string) {
  const [chat, setChat] = useState<Chat | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let cancelled = false;
    setChat(null);
    setError(null);
    must(api.GET("/api/experimental/chats/{chat}", { params: { path: { chat: chatId } } }))
      .then((c) => !cancelled && setChat(c))
      .catch((err) => !cancelled && setError(errorText(err)));
    const watch = new LiveSocket<WatchEvent>({
      path: () => "/api/experimental/chats/watch",
      onMessage: (event) => {
        const changed = event.chat;
        setChat((prev) => {
          if (!prev) return prev;
          if (changed.id === prev.id) return { ...prev, ...changed, children: prev.children };
          if (changed.parent_chat_id === prev.id) {
            const others = (prev.children ?? []).filter((c) => c.id !== changed.id);
            return { ...prev, children: [...others, changed] };
          }
          return prev;
        });
      },
    });
    return () => {
      cancelled = true;
      watch.close();
    };
  }, [chatId]);
  return { chat, setChat, error };
}

function Children({ chat }: { chat: Chat }) {
  if (!chat.children?.length) return null;
  return (
    <nav className="children" aria-label="Sub-agents">
      <h2 className="section-title">Sub-agents</h2>
      <ul>
        {(chat.children ?? []).map((c) => (
          <li key={c.id}>
            <Link to={`/chats/${c.id}`}>{c.title || "Untitled"}</Link> <StatusBadge status={c.status} />
          </li>
        ))}
      </ul>
    </nav>
  );
}

export function ChatView() {
  const { chatId = "" } = useParams();
  return <ChatPage key={chatId} chatId={chatId} />;
}

function ChatPage({ chatId }: { chatId: string }) {
  const { chat, setChat, error: loadError } = useChat(chatId);
  const { state, dispatch, connection } = useChatStream(chatId);
  const scroller = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const composer = useRef<HTMLTextAreaElement>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const status = state.status ?? chat?.status ?? null;
  const busy = status === "running" || status === "pending";
  const archived = !!chat?.archived;

  const messages = useMemo(
    () => state.ids.map((id) => state.byId[id]!).filter((m) => m.role === "user" || m.role === "assistant"),
    [state.ids, state.byId],
  );

  const onEdited = useCallback(
    (editedId: number, message: ChatMessage) => dispatch({ type: "edited", editedId, message }),
    [dispatch],
  );

  const doInterrupt = useCallback(async () => {
    setActionError(null);
    try {
      const updated = await interrupt(chatId);
      dispatch({ type: "status", status: updated.status });
    } catch (err) {
      setActionError(errorText(err));
    }
  }, [chatId, dispatch]);

  // Keep the newest text in view while the reader is at the bottom.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  });

  useEffect(() => {
    if (status && chat && chat.status !== status) setChat({ ...chat, status });
  }, [status, chat, setChat]);

  if (loadError) return <p className="error page-title" role="alert">{loadError}</p>;

  const pending =
    status === "requires_action" ? (state.pending ?? pendingCalls(messages, state.results)) : null;
  const questions = !busy && status !== "requires_action" ? openQuestions(messages) : null;
  const lastError = state.error ?? (status === "error" ? (chat?.last_error ?? null) : null);

  return (
    <div
      className="chat-view"
      onKeyDown={(e) => {
        if (e.key === "Escape" && busy) {
          e.preventDefault();
          void doInterrupt();
        }
      }}
    >
      <div className="chat-main">
        <header className="chat-head">
          <h1 className="chat-title">{chat?.title || "Chat"}</h1>
          <div className="chat-meta">
            <StatusBadge status={status} />
            {archived && <span className="status-badge archived">Archived</span>}
            {connection === "reconnecting" && <span className="muted reconnecting">Reconnecting…</span>}
          </div>
        </header>
        {chat && <Children chat={chat} />}
        <div
          className="transcript"
          ref={scroller}
          onScroll={(e) => {
            const el = e.currentTarget;
            stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          }}
        >
          <div className="messages" aria-live="off">
            {messages.length === 0 && state.live.length === 0 && status === null && (
              <p className="loading">Loading…</p>
            )}
            {messages.map((m) => (
              <Message
                key={m.id}
                chatId={chatId}
                message={m}
                results={state.results}
                canEdit={!archived}
                onEdited={onEdited}
              />
            ))}
            <LiveMessage chatId={chatId} live={state.live} results={state.results} />
          </div>
          {state.retry && <RetryNotice retry={state.retry} />}
          {lastError && !busy && <ErrorNotice error={lastError} />}
          {pending && pending.length > 0 && <ToolResultsForm chatId={chatId} calls={pending} />}
          {questions && <QuestionsForm key={questions.id} chatId={chatId} questions={questions.questions} />}
        </div>
        {actionError && <p className="error" role="alert">{actionError}</p>}
        <QueuePanel chatId={chatId} queue={state.queue} />
        <Composer
          ref={composer}
          chatId={chatId}
          busy={busy}
          disabled={archived}
          onInterrupt={() => void doInterrupt()}
          onSent={(result) => {
            stick.current = true;
            if (result.message) dispatch({ type: "upsert", message: result.message });
          }}
        />
      </div>
      {chat?.workspace_id && <SidePanels chat={chat} />}
    </div>
  );
}
