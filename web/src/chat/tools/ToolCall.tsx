// One tool call and its result (placeholder: the tool rendering work replaces the body).
import type { Schemas } from "../../api/client";

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

export function ToolCall({ call, result }: ToolCallProps) {
  return (
    <details className="tool-call">
      <summary>{call.tool_name}</summary>
      <pre>{JSON.stringify(call.args ?? null, null, 2)}</pre>
      {result && <pre>{JSON.stringify(result.result ?? null, null, 2)}</pre>}
    </details>
  );
}
