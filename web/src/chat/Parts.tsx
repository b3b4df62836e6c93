// The parts of one message (committed or streaming): text as Markdown, reasoning folded, tool
// calls with their results, files, and small notes for context files and skills.
import { Markdown, StreamingMarkdown } from "./Markdown";
import type { Part } from "./state";
import { ToolCall } from "./tools/ToolCall";

export interface PartsProps {
  chatId: string;
  parts: Part[];
  /** Results by `tool_call_id` (committed ones, plus the live ones for a streaming reply). */
  results: Record<string, Part>;
  live: boolean;
}

function fileUrl(id: string): string {
  return `/api/experimental/chats/files/${encodeURIComponent(id)}`;
}

function PartView({ chatId, part, results, live }: { part: Part } & Omit<PartsProps, "parts">) {
  switch (part.type) {
    case "text":
      if (!part.text) return null;
      return live ? <StreamingMarkdown text={part.text} /> : <Markdown text={part.text} />;
    case "reasoning":
      if (!part.text) return null;
      return (
        <details className="reasoning">
          <summary>Reasoning</summary>
          <Markdown text={part.text} />
        </details>
      );
    case "tool-call": {
      const result = part.tool_call_id ? results[part.tool_call_id] : undefined;
      return <ToolCall chatId={chatId} call={part} result={result} live={live} />;
    }
    case "tool-result":
      // Shown with its call.
      return null;
    case "file": {
      const name = part.name || "file";
      if (!part.file_id) return <p className="part-note">File: {name}</p>;
      if (part.media_type?.startsWith("image/")) {
        return (
          <a className="part-image" href={fileUrl(part.file_id)} target="_blank" rel="noreferrer">
            <img src={fileUrl(part.file_id)} alt={part.name || "Attached image"} loading="lazy" />
          </a>
        );
      }
      return (
        <p className="part-note">
          File:{" "}
          <a href={fileUrl(part.file_id)} target="_blank" rel="noreferrer">
            {name}
          </a>
        </p>
      );
    }
    case "file-reference":
      return (
        <figure className="file-reference">
          <figcaption>
            {part.file_name}:{part.start_line}–{part.end_line}
          </figcaption>
          <pre>
            <code>{part.content}</code>
          </pre>
        </figure>
      );
    case "context-file":
      return (
        <p className="part-note">
          Context file: <code>{part.context_file_path}</code>
          {part.context_file_truncated ? " (truncated)" : ""}
        </p>
      );
    case "skill":
      return (
        <p className="part-note">
          Skill: <strong>{part.skill_name}</strong>
          {part.skill_description ? ` — ${part.skill_description}` : ""}
        </p>
      );
    case "source":
      return part.url ? (
        <p className="part-note">
          Source:{" "}
          <a href={part.url} target="_blank" rel="noopener noreferrer nofollow">
            {part.title || part.url}
          </a>
        </p>
      ) : null;
    default:
      return null;
  }
}

export function Parts({ chatId, parts, results, live }: PartsProps) {
  return (
    <>
      {parts.map((part, i) => (
        <PartView key={part.tool_call_id ? `${part.type}:${part.tool_call_id}` : i} chatId={chatId} part={part} results={results} live={live} />
      ))}
    </>
  );
}
