// Unified diff text for the diff views: splitting a multi-file diff into files, normalising
// plain `---`/`+++` diffs into git's form (the parser needs the `diff --git` line), and
// building diffs from tool arguments when a result carries none.

/** One file's piece of a diff, ready for the parser, and what the parser would not show. */
export interface FilePatch {
  path: string;
  /** git-style diff text of this file only (headers and hunks). */
  text: string;
  /** chatd's "diff omitted" marker lines (hunks left out by the agent), without the @@. */
  notes: string[];
  kind: "add" | "delete" | "rename" | "modify" | "binary";
}

const MARKER = /^@@ chatd: (.*) @@$/;

function unquote(path: string): string {
  if (path.startsWith('"') && path.endsWith('"')) return path.slice(1, -1).replace(/\\(.)/g, "$1");
  return path;
}

function stripPrefix(path: string): string {
  const p = unquote(path.trim());
  return p.startsWith("a/") || p.startsWith("b/") ? p.slice(2) : p;
}

/** The path a `diff --git` piece is about (the new side, unless the file was deleted). */
function pathOf(lines: string[]): string {
  let minus = "";
  let plus = "";
  for (const line of lines) {
    if (line.startsWith("+++ ")) plus = line.slice(4);
    else if (line.startsWith("--- ")) minus = line.slice(4);
    else if (line.startsWith("rename to ")) return line.slice("rename to ".length);
    else if (line.startsWith("@@")) break;
  }
  if (plus && plus.trim() !== "/dev/null") return stripPrefix(plus);
  if (minus && minus.trim() !== "/dev/null") return stripPrefix(minus);
  const head = lines[0] ?? "";
  const m = /^diff --git (?:"?a\/)(.*?)"? (?:"?b\/)(.*?)"?$/.exec(head);
  return m ? (m[2] ?? m[1] ?? "") : head.replace(/^diff --git /, "");
}

function kindOf(lines: string[]): FilePatch["kind"] {
  let kind: FilePatch["kind"] = "modify";
  for (const line of lines) {
    if (line.startsWith("@@")) break;
    if (line.startsWith("new file mode")) kind = "add";
    else if (line.startsWith("deleted file mode")) kind = "delete";
    else if (line.startsWith("rename from")) kind = "rename";
    else if (line.startsWith("Binary files ") || line === "GIT binary patch") return "binary";
  }
  return kind;
}

/** Splits a git diff (one or many files) into per-file patches. */
export function splitGitDiff(text: string): FilePatch[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const pieces: string[][] = [];
  for (const line of lines) {
    if (line.startsWith("diff --git ") || pieces.length === 0) pieces.push([]);
    pieces.at(-1)!.push(line);
  }
  return pieces
    .filter((piece) => piece.some((l) => l.trim() !== ""))
    .map((piece) => {
      const notes: string[] = [];
      const kept = piece.filter((line) => {
        const m = MARKER.exec(line);
        if (m) notes.push(m[1]!);
        return !m;
      });
      if (!kept[0]?.startsWith("diff --git ")) {
        return normalisePlain(kept.join("\n") + "\n", pathOf(kept), notes);
      }
      return { path: pathOf(kept), text: kept.join("\n") + "\n", notes, kind: kindOf(kept) };
    });
}

function normalisePlain(text: string, path: string, notes: string[]): FilePatch {
  const lines = text.split("\n");
  const out: string[] = [`diff --git a/${path} b/${path}`];
  let inHeader = true;
  for (const line of lines) {
    if (inHeader && line.startsWith("--- ")) {
      out.push(line.slice(4).trim() === "/dev/null" ? "--- /dev/null" : `--- a/${path}`);
    } else if (inHeader && line.startsWith("+++ ")) {
      out.push(line.slice(4).trim() === "/dev/null" ? "+++ /dev/null" : `+++ b/${path}`);
    } else {
      if (line.startsWith("@@")) inHeader = false;
      out.push(line);
    }
  }
  const kind = /^--- \/dev\/null$/m.test(out.join("\n")) ? "add" : "modify";
  return { path, text: out.join("\n").replace(/\n+$/, "\n"), notes, kind };
}

/** A diff the agent returned for one file (`--- path` / `+++ path`, no git line). */
export function patchOfFile(path: string, diff: string): FilePatch {
  const pieces = splitGitDiff(diff);
  if (pieces.length === 1 && !diff.startsWith("diff --git ")) {
    return normalisePlain(diff, path, pieces[0]!.notes);
  }
  return pieces[0] ?? { path, text: "", notes: [], kind: "modify" };
}

function textLines(text: string): string[] {
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/** A whole file's content as an added file (write_file). */
export function addedFilePatch(path: string, content: string): FilePatch {
  const lines = textLines(content);
  const body = lines.map((l) => `+${l}`);
  const hunk = lines.length ? [`@@ -0,0 +1,${lines.length} @@`, ...body] : [];
  const text = [`diff --git a/${path} b/${path}`, "new file mode 100644", "--- /dev/null", `+++ b/${path}`, ...hunk].join("\n") + "\n";
  return { path, text, notes: [], kind: "add" };
}

export interface Replacement {
  old: string;
  new: string;
}

/**
 * An edit's search/replace pairs as a diff with one hunk per pair; the real line numbers are
 * unknown, so the view hides the gutter.
 */
export function replacementsPatch(path: string, replacements: Replacement[]): FilePatch {
  const out = [`diff --git a/${path} b/${path}`, `--- a/${path}`, `+++ b/${path}`];
  let at = 1;
  for (const r of replacements) {
    const before = textLines(r.old);
    const after = textLines(r.new);
    out.push(`@@ -${at},${before.length} +${at},${after.length} @@`);
    out.push(...before.map((l) => `-${l}`), ...after.map((l) => `+${l}`));
    at += Math.max(before.length, after.length) + 1;
  }
  return { path, text: out.join("\n") + "\n", notes: [], kind: "modify" };
}

/** Added and removed lines of a patch, counted from its text (without parsing it). */
export function countChanges(text: string): { additions: number; deletions: number } {
  let additions = 0;
  let deletions = 0;
  let inHunk = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("@@")) inHunk = true;
    else if (line.startsWith("diff --git ")) inHunk = false;
    else if (inHunk && line.startsWith("+")) additions += 1;
    else if (inHunk && line.startsWith("-")) deletions += 1;
  }
  return { additions, deletions };
}
