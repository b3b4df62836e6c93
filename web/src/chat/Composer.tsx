// The message box: Enter sends, Shift+Enter starts a new line; while a turn runs the server
// queues what is sent, and Interrupt (or Escape) stops the turn.
import { forwardRef, useState } from "react";
import { errorText } from "../api/client";
import { contentWithText, sendMessage } from "./requests";

export interface ComposerProps {
  chatId: string;
  busy: boolean;
  disabled: boolean;
  onInterrupt: () => void;
  onSent: (result: Awaited<ReturnType<typeof sendMessage>>) => void;
}

export const Composer = forwardRef<HTMLTextAreaElement, ComposerProps>(function Composer(
  { chatId, busy, disabled, onInterrupt, onSent },
  ref,
) {
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function send() {
    const value = text.trim();
    if (!value || sending) return;
    setSending(true);
    setError(null);
    try {
      const result = await sendMessage(chatId, contentWithText(value));
      // Keep anything typed while the message was on its way.
      setText((current) => (current.trim() === value ? "" : current));
      onSent(result);
    } catch (err) {
      setError(errorText(err));
    } finally {
      setSending(false);
    }
  }

  return (
    <form
      className="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {error && <p className="error" role="alert">{error}</p>}
      <label htmlFor="composer-input" className="visually-hidden">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={ref}
        value={text}
        rows={2}
        disabled={disabled}
        placeholder={disabled ? "This chat is archived." : busy ? "Send a message (it is queued)…" : "Send a message…"}
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            void send();
          }
        }}
      />
      <div className="composer-actions">
        {busy && (
          <button type="button" className="danger" onClick={onInterrupt} title="Interrupt (Escape)">
            Interrupt
          </button>
        )}
        <button type="submit" className="primary" disabled={disabled || sending || !text.trim()}>
          Send
        </button>
      </div>
    </form>
  );
});
