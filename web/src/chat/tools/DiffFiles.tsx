// Diffs rendered with react-diff-view, one collapsible section per file with its +/- counts.
// Shared by the edit tools in the transcript and the workspace's diff panel.
import { useMemo } from "react";
import { Diff, Hunk, parseDiff, type FileData } from "react-diff-view";
import "react-diff-view/style/index.css";
import "./DiffFiles.css";
import type { FilePatch } from "./diffText";

interface Parsed {
  patch: FilePatch;
  file?: FileData;
  additions: number;
  deletions: number;
}

function parse(patch: FilePatch): Parsed {
  let file: FileData | undefined;
  try {
    file = parseDiff(patch.text, { nearbySequences: "zip" })[0];
  } catch {
    file = undefined; // shown as text instead
  }
  let additions = 0;
  let deletions = 0;
  for (const hunk of file?.hunks ?? []) {
    for (const change of hunk.changes) {
      if (change.type === "insert") additions += 1;
      else if (change.type === "delete") deletions += 1;
    }
  }
  return { patch, file, additions, deletions };
}

const KIND_LABEL: Record<FilePatch["kind"], string> = {
  add: "added",
  delete: "deleted",
  rename: "renamed",
  modify: "",
  binary: "binary",
};

export function Counts({ additions, deletions }: { additions: number; deletions: number }) {
  return (
    <span className="diff-counts" aria-label={`${additions} added, ${deletions} removed lines`}>
      <span className="diff-add">+{additions}</span> <span className="diff-del">−{deletions}</span>
    </span>
  );
}

export interface DiffFilesProps {
  patches: FilePatch[];
  /** Line numbers are real (false for diffs built from search/replace pairs). */
  lineNumbers?: boolean;
  /** Files start open when their diffs are shorter than this many lines in all. */
  openBelow?: number;
}

export function DiffFiles({ patches, lineNumbers = true, openBelow = 400 }: DiffFilesProps) {
  const parsed = useMemo(() => patches.map(parse), [patches]);
  const totalLines = parsed.reduce((n, p) => n + p.additions + p.deletions, 0);
  const open = totalLines < openBelow;
  return (
    <div className="diff-files">
      {parsed.map(({ patch, file, additions, deletions }, i) => (
        <details key={`${patch.path}-${i}`} className="diff-file" open={open}>
          <summary>
            <span className="diff-path">{patch.path}</span>
            {KIND_LABEL[patch.kind] && <span className="diff-kind">{KIND_LABEL[patch.kind]}</span>}
            <Counts additions={additions} deletions={deletions} />
          </summary>
          {patch.notes.map((note) => (
            <p key={note} className="diff-note muted">
              {note}
            </p>
          ))}
          {file && file.hunks.length > 0 ? (
            <div className="diff-scroll" role="group" aria-label={`Diff of ${patch.path}`} tabIndex={0}>
              <Diff
                viewType="unified"
                diffType={file.type}
                hunks={file.hunks}
                gutterType={lineNumbers ? "default" : "none"}
              >
                {(hunks) => hunks.map((hunk) => <Hunk key={hunk.content} hunk={hunk} />)}
              </Diff>
            </div>
          ) : file ? (
            !patch.notes.length && <p className="diff-note muted">No text changes to show.</p>
          ) : (
            <pre className="diff-raw">{patch.text}</pre>
          )}
        </details>
      ))}
    </div>
  );
}
