// One tool call and its result: a compact header (tool, what it acts on, state) that opens
// the call's details, shown the way its tool calls for (terminal, diff, file, JSON).
import { useEffect, useId, useState } from "react";
import type { Schemas } from "../../api/client";
import { summarize } from "./summary";
import "./ToolCall.css";
import { CodeBlock, JsonView, MediaView, VIEWS } from "./views";
import { asObject, parseArgs, partialArgs, pretty } from "./values";

export type MessagePart = Schemas["ChatMessagePart"];

export interface ToolCallProps {
  chatId: string;
  /** The `tool-call` part (its args may still be streaming in `args_delta` pieces). */
  call: MessagePart;
  /** The matching `tool-result` part (same `tool_call_id`), once there is one. */
  result?: MessagePart;
  /** The call belongs to the turn that is running now. */
  live: boolean;
}

/** Tools whose details are worth seeing without a click. */
const OPEN_BY_DEFAULT = new Set(["execute", "process_output", "edit_files", "write_file", "attach_file"]);

type State = "writing" | "running" | "done" | "error" | "stopped";

const STATE_LABEL: Record<State, string> = {
  writing: "Writing…",
  running: "Running…",
  done: "Done",
  error: "Error",
  stopped: "No result",
};

export function ToolCall({ call, result, live }: ToolCallProps) {
  const tool = call.tool_name ?? "tool";
  const parsed = asObject(call.args);
  const partial = call.args_delta ?? "";
  // While the model is still writing the arguments only their text so far is known.
  const args = parsed ?? parseArgs(partial) ?? partialArgs(partial);
  const streaming = !parsed && call.args == null;
  const hasResult = result != null;
  const isError = result?.is_error === true;
  const state: State = hasResult
    ? isError
      ? "error"
      : "done"
    : !live
      ? "stopped"
      : streaming
        ? "writing"
        : "running";
  const [open, setOpen] = useState(OPEN_BY_DEFAULT.has(tool) || isError);
  useEffect(() => {
    if (isError) setOpen(true);
  }, [isError]);
  const bodyId = useId();
  const summary = summarize(tool, args);
  const View = result?.is_media && !isError ? MediaView : (VIEWS[tool] ?? JsonView);

  return (
    <div className="tool-call" data-state={state} data-tool={tool}>
      <button
        type="button"
        className="tool-head"
        aria-expanded={open}
        aria-controls={bodyId}
        onClick={() => setOpen(!open)}
      >
        <span className="tool-chevron" aria-hidden="true">
          ▸
        </span>
        <span className="tool-name">{tool}</span>
        {summary && <span className="tool-summary">{summary}</span>}
        <span className={`tool-state tool-state-${state}`}>{STATE_LABEL[state]}</span>
      </button>
      {open && (
        <div className="tool-body" id={bodyId}>
          {streaming ? (
            <pre className="tool-code tool-partial" role="group" aria-label="Arguments so far">
              {partial || "…"}
            </pre>
          ) : (
            <>
              <View tool={tool} args={args} result={result?.result} hasResult={hasResult} isError={isError} />
              <details className="tool-args">
                <summary>Arguments</summary>
                <CodeBlock label="Arguments">{pretty(call.args ?? args ?? null)}</CodeBlock>
              </details>
            </>
          )}
        </div>
      )}
    </div>
  );
}
