// The body of a tool call, by tool: command output, diffs, file content, attachments, JSON.
import { useMemo, type ReactNode } from "react";
import { Link } from "react-router-dom";
import { Markdown } from "../Markdown";
import { DiffFiles } from "./DiffFiles";
import { addedFilePatch, patchOfFile, replacementsPatch, type FilePatch } from "./diffText";
import { lineRange } from "./summary";
import { Terminal } from "./Terminal";
import { asObject, formatBytes, list, num, pretty, str, type Obj } from "./values";

/** A scrollable block of text, reachable by keyboard. */
export function CodeBlock({ label, children }: { label: string; children: ReactNode }) {
  return (
    <pre className="tool-code" role="group" aria-label={label} tabIndex={0}>
      {children}
    </pre>
  );
}

export interface ViewProps {
  tool: string;
  args: Obj | undefined;
  result: unknown;
  hasResult: boolean;
  isError: boolean;
}

function Notes({ result }: { result: Obj | undefined }) {
  const error = str(result, "error");
  const note = str(result, "note");
  return (
    <>
      {error && <p className="tool-error">{error}</p>}
      {note && <p className="tool-note muted">{note}</p>}
    </>
  );
}

/** `execute`, `process_output`: the command and its output in a terminal. */
export function ProcessView({ tool, args, result, hasResult }: ViewProps) {
  const r = asObject(result);
  const command = tool === "execute" ? (str(args, "command") ?? "") : undefined;
  const intent = str(args, "model_intent");
  const output = str(r, "output") ?? "";
  const exit = num(r, "exit_code");
  const ms = num(r, "wall_duration_ms");
  const background = str(r, "background_process_id");
  const label = command !== undefined ? `Output of ${command}` : `Output of process ${str(args, "process_id") ?? ""}`;
  return (
    <>
      {intent && <p className="tool-intent muted">{intent}</p>}
      <Terminal output={output} command={command} label={label} />
      {hasResult && (
        <p className="tool-facts">
          {exit !== undefined && (
            <span className={exit === 0 ? "tool-ok" : "tool-bad"}>exit code {exit}</span>
          )}
          {ms !== undefined && <span className="muted">{ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`}</span>}
          {background && <span className="muted">background process {background}</span>}
          {r?.truncated === true && <span className="muted">output truncated</span>}
        </p>
      )}
      <Notes result={r} />
    </>
  );
}

/** The search/replace pairs of an edit entry, in any of the argument shapes. */
function replacementsOf(edits: unknown[]): { old: string; new: string }[] {
  return edits.map((e) => {
    const o = asObject(e);
    return { old: str(o, "old_text") ?? str(o, "search") ?? "", new: str(o, "new_text") ?? str(o, "replace") ?? "" };
  });
}

function patchesFromArgs(args: Obj | undefined): FilePatch[] {
  const patches: FilePatch[] = [];
  for (const f of list(args, "files")) {
    const o = asObject(f);
    const path = str(o, "path");
    if (path) patches.push(replacementsPatch(path, replacementsOf(list(o, "edits"))));
  }
  // The flat shape: edits [{path, old_text, new_text}], grouped by path.
  const byPath = new Map<string, unknown[]>();
  for (const e of list(args, "edits")) {
    const path = str(asObject(e), "path");
    if (path) byPath.set(path, [...(byPath.get(path) ?? []), e]);
  }
  for (const [path, edits] of byPath) patches.push(replacementsPatch(path, replacementsOf(edits)));
  return patches;
}

/** `edit_files`: the diffs the agent returned, or ones built from the arguments. */
export function EditView({ args, result, isError }: ViewProps) {
  const r = asObject(result);
  const fromResult = useMemo(
    () =>
      list(r, "files")
        .map((f) => asObject(f))
        .filter((f): f is Obj => !!str(f, "path") && !!str(f, "diff"))
        .map((f) => patchOfFile(str(f, "path")!, str(f, "diff")!)),
    [r],
  );
  const fromArgs = useMemo(() => patchesFromArgs(args), [args]);
  const truncated = list(r, "files").some((f) => asObject(f)?.diff_truncated === true);
  const real = !isError && fromResult.length > 0;
  return (
    <>
      {!real && fromArgs.length > 0 && (
        <p className="tool-note muted">{isError ? "The edits it asked for (not applied):" : "The edits asked for:"}</p>
      )}
      <DiffFiles patches={real ? fromResult : fromArgs} lineNumbers={real} />
      {truncated && <p className="tool-note muted">The diff was cut short.</p>}
      {isError && <Notes result={r} />}
    </>
  );
}

/** `write_file`: the content written, as an added file. */
export function WriteView({ args, result, isError }: ViewProps) {
  const path = str(args, "path") ?? "";
  const content = str(args, "content") ?? "";
  const patches = useMemo(() => [addedFilePatch(path, content)], [path, content]);
  return (
    <>
      <DiffFiles patches={patches} />
      {isError && <Notes result={asObject(result)} />}
    </>
  );
}

/** `read_file`: where, and the content folded away. */
export function ReadView({ args, result, hasResult, isError }: ViewProps) {
  const r = asObject(result);
  const content = str(r, "content");
  const range = lineRange(args);
  const read = num(r, "lines_read");
  const total = num(r, "total_lines");
  const size = num(r, "file_size");
  return (
    <>
      <p className="tool-facts">
        <code>{str(args, "path")}</code>
        {range && <span className="muted">{range}</span>}
        {read !== undefined && total !== undefined && (
          <span className="muted">
            {read} of {total} lines
          </span>
        )}
        {size !== undefined && <span className="muted">{formatBytes(size)}</span>}
      </p>
      {hasResult && !isError && content !== undefined && (
        <details className="tool-content">
          <summary>Content</summary>
          <CodeBlock label={`Content of ${str(args, "path") ?? "the file"}`}>
            <code>{content}</code>
          </CodeBlock>
        </details>
      )}
      <Notes result={r} />
    </>
  );
}

/** `attach_file`: the attached file, previewed when it is an image. */
export function AttachView({ result, isError }: ViewProps) {
  const r = asObject(result);
  const id = str(r, "file_id");
  if (isError || !id) return <Notes result={r} />;
  const url = `/api/experimental/chats/files/${encodeURIComponent(id)}`;
  const name = str(r, "name") ?? str(r, "path") ?? "file";
  const type = str(r, "media_type") ?? "";
  const size = num(r, "size");
  return (
    <div className="tool-attachment">
      {type.startsWith("image/") && (
        <a href={url} target="_blank" rel="noreferrer">
          <img src={url} alt={name} className="tool-image" loading="lazy" />
        </a>
      )}
      <p className="tool-facts">
        <a href={url} download={name}>
          {name}
        </a>
        <span className="muted">{[type, size !== undefined ? formatBytes(size) : ""].filter(Boolean).join(", ")}</span>
      </p>
    </div>
  );
}

/** A media result (a screenshot from the desktop, for one): the image and its caption. */
export function MediaView({ tool, result }: ViewProps) {
  const r = asObject(result);
  const data = str(r, "data");
  const type = str(r, "mime_type") ?? "";
  const text = str(r, "text");
  const safeType = /^image\/(png|jpeg|gif|webp)$/.test(type);
  return (
    <div className="tool-attachment">
      {data && safeType ? (
        <img src={`data:${type};base64,${data}`} alt={text || `Image from ${tool}`} className="tool-image" />
      ) : (
        <p className="muted">{type || "Media"} result</p>
      )}
      {text && <p className="tool-note">{text}</p>}
    </div>
  );
}

/** Any other tool: its result as JSON (its arguments are in the details below). */
export function JsonView({ result, hasResult, isError }: ViewProps) {
  const r = asObject(result);
  if (!hasResult) return null;
  if (isError && str(r, "error")) return <Notes result={r} />;
  return (
    <div className="tool-json">
      <div className="tool-section">Result</div>
      <CodeBlock label="Result">{pretty(result)}</CodeBlock>
    </div>
  );
}

/** The sub-agent tools: a link to the child's chat, its status, and a report as Markdown. */
export function SubagentView({ args, result, hasResult, isError }: ViewProps) {
  const r = asObject(result);
  if (!hasResult) return null;
  if (isError) return <Notes result={r} />;
  const chatId = str(r, "chat_id") ?? str(args, "chat_id");
  const report = str(r, "report");
  return (
    <div className="tool-subagent">
      {chatId && (
        <p className="tool-note">
          <Link to={`/chats/${chatId}`}>{str(r, "title") || "Sub-agent"}</Link>
          {str(r, "status") && <span className="muted"> · {str(r, "status")}</span>}
          {r?.["interrupted"] === true && <span className="muted"> · interrupted</span>}
        </p>
      )}
      {report && <Markdown text={report} />}
    </div>
  );
}

export const VIEWS: Record<string, (props: ViewProps) => ReactNode> = {
  execute: ProcessView,
  process_output: ProcessView,
  edit_files: EditView,
  write_file: WriteView,
  read_file: ReadView,
  attach_file: AttachView,
  spawn_agent: SubagentView,
  spawn_explore_agent: SubagentView,
  wait_agent: SubagentView,
  message_agent: SubagentView,
  close_agent: SubagentView,
};
