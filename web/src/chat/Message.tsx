// One committed message (memoised: only the streaming reply re-renders while tokens arrive),
// and the reply being streamed.
import { memo, useState } from "react";
import { errorText } from "../api/client";
import { Parts } from "./Parts";
import { contentWithText, editMessage } from "./requests";
import { liveParts, textOf, type ChatMessage, type LiveBlock, type Part } from "./state";

type Usage = NonNullable<ChatMessage["usage"]>;

function usageLine(u: Usage | null | undefined): string | null {
  if (!u) return null;
  const bits: string[] = [];
  if (u.input_tokens) bits.push(`${u.input_tokens.toLocaleString()} in`);
  if (u.output_tokens) bits.push(`${u.output_tokens.toLocaleString()} out`);
  if (u.reasoning_tokens) bits.push(`${u.reasoning_tokens.toLocaleString()} reasoning`);
  if (u.cache_read_tokens) bits.push(`${u.cache_read_tokens.toLocaleString()} cached`);
  if (u.cache_creation_tokens) bits.push(`${u.cache_creation_tokens.toLocaleString()} cache write`);
  if (bits.length === 0) return null;
  let line = `${bits.join(" · ")} tokens`;
  if (u.context_limit) line += ` · context ${u.context_limit.toLocaleString()}`;
  const cost = u.total_cost_micros;
  if (cost != null) line += ` · $${(cost / 1_000_000).toFixed(4)}`;
  return line;
}

export interface MessageProps {
  chatId: string;
  message: ChatMessage;
  results: Record<string, Part>;
  canEdit: boolean;
  onEdited: (editedId: number, message: ChatMessage) => void;
}

function UserEditor({ chatId, message, onDone, onEdited }: {
  chatId: string;
  message: ChatMessage;
  onDone: () => void;
  onEdited: MessageProps["onEdited"];
}) {
  const [text, setText] = useState(textOf(message.content));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  async function save() {
    setBusy(true);
    setError(null);
    try {
      const res = await editMessage(chatId, message.id, contentWithText(text, message.content));
      onEdited(message.id, res.message);
      onDone();
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }
  return (
    <form
      className="edit-form"
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      <label className="visually-hidden" htmlFor={`edit-${message.id}`}>
        Edit message
      </label>
      <textarea
        id={`edit-${message.id}`}
        value={text}
        rows={3}
        onChange={(e) => setText(e.target.value)}
        autoFocus
      />
      {error && <p className="error" role="alert">{error}</p>}
      <div className="row-actions">
        <button type="submit" className="primary" disabled={busy || !text.trim()}>
          Save and re-run
        </button>
        <button type="button" onClick={onDone} disabled={busy}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function MessageView({ chatId, message, results, canEdit, onEdited }: MessageProps) {
  const [editing, setEditing] = useState(false);
  const usage = message.role === "assistant" ? usageLine(message.usage) : null;
  return (
    <article className={`msg msg-${message.role}`} data-message-id={message.id} aria-label={message.role === "user" ? "You" : "Assistant"}>
      {editing ? (
        <UserEditor chatId={chatId} message={message} onDone={() => setEditing(false)} onEdited={onEdited} />
      ) : (
        <div className="msg-body">
          <Parts chatId={chatId} parts={message.content ?? []} results={results} live={false} />
        </div>
      )}
      {usage && <p className="usage muted">{usage}</p>}
      {message.role === "user" && canEdit && !editing && (
        <div className="msg-actions">
          <button type="button" className="link" onClick={() => setEditing(true)}>
            Edit<span className="visually-hidden"> message</span>
          </button>
        </div>
      )}
    </article>
  );
}

function sameResults(prev: MessageProps, next: MessageProps): boolean {
  if (prev.results === next.results) return true;
  for (const p of next.message.content ?? []) {
    if (p.type === "tool-call" && p.tool_call_id) {
      if (prev.results[p.tool_call_id] !== next.results[p.tool_call_id]) return false;
    }
  }
  return true;
}

export const Message = memo(
  MessageView,
  (prev, next) =>
    prev.message === next.message &&
    prev.chatId === next.chatId &&
    prev.canEdit === next.canEdit &&
    prev.onEdited === next.onEdited &&
    sameResults(prev, next),
);

export function LiveMessage({ chatId, live, results }: { chatId: string; live: LiveBlock[]; results: Record<string, Part> }) {
  if (live.length === 0) return null;
  const parts = liveParts(live);
  const liveResults: Record<string, Part> = { ...results };
  for (const p of parts) if (p.type === "tool-result" && p.tool_call_id) liveResults[p.tool_call_id] = p;
  return (
    <article className="msg msg-assistant msg-live" aria-label="Assistant (streaming)" aria-busy="true">
      <div className="msg-body">
        <Parts chatId={chatId} parts={parts} results={liveResults} live />
      </div>
    </article>
  );
}
