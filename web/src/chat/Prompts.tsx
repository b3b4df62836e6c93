// What the chat asks of the user: results for client-side tool calls (`requires_action`), and
// the plan-mode questions of `ask_user_question`, answered with a normal message.
import { useState } from "react";
import { errorText } from "../api/client";
import { contentWithText, sendMessage, submitToolResults } from "./requests";
import type { ChatMessage, PendingCall } from "./state";

/** The client tool calls still waiting: from the event, or else from the last assistant message. */
export function pendingCalls(messages: ChatMessage[], results: Record<string, unknown>): PendingCall[] {
  const last = [...messages].reverse().find((m) => m.role === "assistant");
  if (!last) return [];
  return (last.content ?? [])
    .filter((p) => p.type === "tool-call" && p.tool_call_id && !results[p.tool_call_id])
    .map((p) => ({
      tool_call_id: p.tool_call_id!,
      tool_name: p.tool_name ?? "",
      args: typeof p.args === "string" ? p.args : JSON.stringify(p.args ?? {}),
    }));
}

function parseOutput(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export function ToolResultsForm({ chatId, calls }: { chatId: string; calls: PendingCall[] }) {
  const [outputs, setOutputs] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, boolean>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <section className="prompt-box" aria-labelledby="tool-results-heading">
      <h2 id="tool-results-heading" className="section-title">
        The assistant is waiting for {calls.length === 1 ? "a tool result" : `${calls.length} tool results`}
      </h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(null);
          try {
            await submitToolResults(
              chatId,
              calls.map((c) => ({
                tool_call_id: c.tool_call_id,
                output: parseOutput(outputs[c.tool_call_id] ?? "") as never,
                is_error: !!errors[c.tool_call_id],
              })),
            );
          } catch (err) {
            setError(errorText(err));
          } finally {
            setBusy(false);
          }
        }}
      >
        {calls.map((c) => (
          <fieldset key={c.tool_call_id} className="tool-prompt">
            <legend>
              <code>{c.tool_name}</code>
            </legend>
            <pre className="tool-args">{c.args}</pre>
            <label htmlFor={`out-${c.tool_call_id}`}>Result (JSON or text)</label>
            <textarea
              id={`out-${c.tool_call_id}`}
              rows={2}
              value={outputs[c.tool_call_id] ?? ""}
              onChange={(e) => setOutputs({ ...outputs, [c.tool_call_id]: e.target.value })}
            />
            <label className="checkbox">
              <input
                type="checkbox"
                checked={!!errors[c.tool_call_id]}
                onChange={(e) => setErrors({ ...errors, [c.tool_call_id]: e.target.checked })}
              />
              It failed (send as an error)
            </label>
          </fieldset>
        ))}
        {error && <p className="error" role="alert">{error}</p>}
        <button type="submit" className="primary" disabled={busy}>
          Submit results
        </button>
      </form>
    </section>
  );
}

interface Question {
  header?: string;
  question?: string;
  options?: { label?: string; description?: string }[];
}

/** The questions of the newest `ask_user_question` call, if nothing was said after it. */
export function openQuestions(messages: ChatMessage[]): { id: string; questions: Question[] } | null {
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role === "user") return null;
    if (m.role !== "assistant") continue;
    const call = (m.content ?? []).find((p) => p.type === "tool-call" && p.tool_name === "ask_user_question");
    if (!call) continue;
    let args = call.args as unknown;
    if (typeof args === "string") {
      try {
        args = JSON.parse(args);
      } catch {
        return null;
      }
    }
    const questions = (args as { questions?: Question[] } | null)?.questions;
    return Array.isArray(questions) && questions.length ? { id: call.tool_call_id ?? String(m.id), questions } : null;
  }
  return null;
}

export function QuestionsForm({ chatId, questions }: { chatId: string; questions: Question[] }) {
  const [picked, setPicked] = useState<Record<number, string>>({});
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function answer(text: string) {
    setBusy(true);
    setError(null);
    try {
      await sendMessage(chatId, contentWithText(text));
    } catch (err) {
      setError(errorText(err));
      setBusy(false);
    }
  }

  const single = questions.length === 1;
  return (
    <section className="prompt-box" aria-label="Questions from the assistant">
      {questions.map((q, qi) => (
        <div key={qi} className="question" role="group" aria-labelledby={`q-${qi}`}>
          <h2 id={`q-${qi}`} className="section-title">
            {q.header ? `${q.header}: ` : ""}
            {q.question}
          </h2>
          <div className="options">
            {(q.options ?? []).map((o, oi) => (
              <button
                key={oi}
                type="button"
                className={picked[qi] === o.label ? "option primary" : "option"}
                aria-pressed={single ? undefined : picked[qi] === o.label}
                disabled={busy}
                onClick={() => {
                  const label = o.label ?? "";
                  if (single) void answer(label);
                  else setPicked({ ...picked, [qi]: label });
                }}
              >
                <span className="option-label">{o.label}</span>
                {o.description && <span className="option-desc">{o.description}</span>}
              </button>
            ))}
          </div>
        </div>
      ))}
      {!single && (
        <button
          type="button"
          className="primary"
          disabled={busy || Object.keys(picked).length < questions.length}
          onClick={() =>
            void answer(questions.map((q, i) => `${q.header || q.question}: ${picked[i]}`).join("\n"))
          }
        >
          Send answers
        </button>
      )}
      {error && <p className="error" role="alert">{error}</p>}
    </section>
  );
}
