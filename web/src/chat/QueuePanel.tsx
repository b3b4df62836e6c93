// Messages waiting for the running turn to end: edit, delete, or send next right away.
import { useState } from "react";
import { errorText } from "../api/client";
import { contentWithText, deleteQueued, promoteQueued, sendMessage } from "./requests";
import { textOf, type QueuedMessage } from "./state";

function QueueItem({ chatId, item, onError }: { chatId: string; item: QueuedMessage; onError: (e: string | null) => void }) {
  const [editing, setEditing] = useState(false);
  const [text, setText] = useState(textOf(item.content));
  const [busy, setBusy] = useState(false);

  async function act(work: () => Promise<unknown>) {
    setBusy(true);
    onError(null);
    try {
      await work();
      return true;
    } catch (err) {
      onError(errorText(err));
      return false;
    } finally {
      setBusy(false);
    }
  }

  if (editing) {
    return (
      <li className="queue-item">
        <form
          className="edit-form"
          onSubmit={async (e) => {
            e.preventDefault();
            // There is no in-place edit of a queued message: replace it with the new text.
            const ok = await act(async () => {
              await deleteQueued(chatId, item);
              await sendMessage(chatId, contentWithText(text, item.content));
            });
            if (ok) setEditing(false);
          }}
        >
          <label className="visually-hidden" htmlFor={`queued-${item.id}`}>
            Edit queued message
          </label>
          <textarea id={`queued-${item.id}`} value={text} rows={2} onChange={(e) => setText(e.target.value)} autoFocus />
          <div className="row-actions">
            <button type="submit" className="primary" disabled={busy || !text.trim()}>
              Save
            </button>
            <button type="button" onClick={() => setEditing(false)} disabled={busy}>
              Cancel
            </button>
          </div>
        </form>
      </li>
    );
  }
  const label = textOf(item.content) || "(attachment)";
  return (
    <li className="queue-item">
      <span className="queue-text">{label}</span>
      <span className="row-actions">
        <button type="button" disabled={busy} onClick={() => { setText(textOf(item.content)); setEditing(true); }} aria-label={`Edit queued message: ${label}`}>
          Edit
        </button>
        <button type="button" disabled={busy} onClick={() => void act(() => promoteQueued(chatId, item))} aria-label={`Send now: ${label}`}>
          Send now
        </button>
        <button type="button" className="danger" disabled={busy} onClick={() => void act(() => deleteQueued(chatId, item))} aria-label={`Delete queued message: ${label}`}>
          Delete
        </button>
      </span>
    </li>
  );
}

export function QueuePanel({ chatId, queue }: { chatId: string; queue: QueuedMessage[] }) {
  const [error, setError] = useState<string | null>(null);
  if (queue.length === 0 && !error) return null;
  return (
    <section className="queue" aria-labelledby="queue-heading">
      <h2 id="queue-heading" className="section-title">
        Queued ({queue.length})
      </h2>
      {error && <p className="error" role="alert">{error}</p>}
      <ol className="queue-list">
        {queue.map((q) => (
          <QueueItem key={q.id} chatId={chatId} item={q} onError={setError} />
        ))}
      </ol>
    </section>
  );
}
