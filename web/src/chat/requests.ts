// The chat view's calls to the server, typed by the OpenAPI document.
import { api, must, type Schemas } from "../api/client";
import type { Part, QueuedMessage } from "./state";

type InputPart = Schemas["ChatInputPart"];

function inputPart(fields: Partial<InputPart> & { type: string }): InputPart {
  return { text: null, file_id: null, file_name: null, start_line: null, end_line: null, content: null, ...fields };
}

/** The message's text replaced by `text`, its attached files kept. */
export function contentWithText(text: string, previous: Part[] | null | undefined = []): InputPart[] {
  const files = (previous ?? [])
    .filter((p) => p.type === "file" && p.file_id)
    .map((p) => inputPart({ type: "file", file_id: p.file_id }));
  return [inputPart({ type: "text", text }), ...files];
}

export function sendMessage(chatId: string, content: InputPart[]) {
  return must(
    api.POST("/api/experimental/chats/{chat}/messages", {
      params: { path: { chat: chatId } },
      body: { content, model_config_id: null, mcp_server_ids: null, busy_behavior: null, plan_mode: null },
    }),
  );
}

export function editMessage(chatId: string, messageId: number, content: InputPart[]) {
  return must(
    api.PATCH("/api/experimental/chats/{chat}/messages/{message}", {
      params: { path: { chat: chatId, message: messageId } },
      body: { content, model_config_id: null },
    }),
  );
}

export function interrupt(chatId: string) {
  return must(api.POST("/api/experimental/chats/{chat}/interrupt", { params: { path: { chat: chatId } } }));
}

export function deleteQueued(chatId: string, q: QueuedMessage) {
  return must(
    api.DELETE("/api/experimental/chats/{chat}/queue/{queuedMessage}", {
      params: { path: { chat: chatId, queuedMessage: q.id } },
    }),
  );
}

export function promoteQueued(chatId: string, q: QueuedMessage) {
  return must(
    api.POST("/api/experimental/chats/{chat}/queue/{queuedMessage}/promote", {
      params: { path: { chat: chatId, queuedMessage: q.id } },
    }),
  );
}

export function submitToolResults(chatId: string, results: Schemas["ToolResult"][]) {
  return must(
    api.POST("/api/experimental/chats/{chat}/tool-results", {
      params: { path: { chat: chatId } },
      body: { results },
    }),
  );
}
