// The one-line summary of a tool call's arguments shown in its header.
import { asObject, firstLine, list, num, str, type Obj } from "./values";

const PATH_TOOLS = new Set(["write_file", "attach_file", "propose_plan", "read_skill_file"]);
const CHAT_TOOLS = new Set(["wait_agent", "message_agent", "close_agent"]);
const SPAWN_TOOLS = new Set(["spawn_agent", "spawn_explore_agent", "spawn_computer_use_agent"]);

/** The paths an edit_files call touches (its seed-era, older and newest argument shapes). */
export function editPaths(args: Obj | undefined): string[] {
  const paths = [...list(args, "files"), ...list(args, "edits")]
    .map((f) => str(asObject(f), "path"))
    .filter((p): p is string => !!p);
  return [...new Set(paths)];
}

export function lineRange(args: Obj | undefined): string {
  const offset = num(args, "offset");
  const limit = num(args, "limit");
  if (offset === undefined && limit === undefined) return "";
  const from = offset ?? 1;
  return limit !== undefined ? `lines ${from}–${from + limit - 1}` : `from line ${from}`;
}

export function summarize(tool: string, args: Obj | undefined): string {
  if (!args) return "";
  if (tool === "execute") return firstLine(str(args, "command") ?? "");
  if (tool === "read_file") {
    const range = lineRange(args);
    return [str(args, "path") ?? "", range && `(${range})`].filter(Boolean).join(" ");
  }
  if (PATH_TOOLS.has(tool)) return str(args, "path") ?? "";
  if (tool === "edit_files") {
    const paths = editPaths(args);
    return paths.length > 3 ? `${paths.length} files` : paths.join(", ");
  }
  if (tool === "process_output" || tool === "process_signal") {
    return [str(args, "process_id"), str(args, "signal")].filter(Boolean).join(" ");
  }
  if (tool === "list_templates") return str(args, "query") ?? "";
  if (tool === "create_workspace") return str(args, "name") ?? str(args, "template_id") ?? "";
  if (tool === "read_template") return str(args, "template_id") ?? "";
  if (SPAWN_TOOLS.has(tool)) return firstLine(str(args, "title") ?? str(args, "prompt") ?? "", 80);
  if (CHAT_TOOLS.has(tool)) return firstLine(str(args, "message") ?? str(args, "chat_id") ?? "", 80);
  if (tool === "read_skill") return str(args, "name") ?? "";
  // Anything else: its first short string argument, or the arguments as compact JSON.
  for (const value of Object.values(args)) {
    if (typeof value === "string" && value.trim()) return firstLine(value, 80);
  }
  const json = JSON.stringify(args);
  return json === "{}" ? "" : firstLine(json, 80);
}
