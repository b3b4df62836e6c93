// Diffs rendered with react-diff-view, one collapsible section per file with its +/- counts.
// Shared by the edit tools in the transcript and the workspace's diff panel. A file's diff is
// parsed and rendered only while its section is open, so a large repository diff stays cheap.
import { useMemo, useState } from "react";
import { Diff, Hunk, parseDiff, type FileData } from "react-diff-view";
import "react-diff-view/style/index.css";
import "./DiffFiles.css";
import { countChanges, type FilePatch } from "./diffText";

const KIND_LABEL: Record<FilePatch["kind"], string> = {
  add: "added",
  delete: "deleted",
  rename: "renamed",
  modify: "",
  binary: "binary",
};

export function Counts({ additions, deletions }: { additions: number; deletions: number }) {
  return (
    <span className="diff-counts">
      <span aria-hidden="true">
        <span className="diff-add">+{additions}</span> <span className="diff-del">−{deletions}</span>
      </span>
      <span className="visually-hidden">
        {additions} added, {deletions} removed {additions + deletions === 1 ? "line" : "lines"}
      </span>
    </span>
  );
}

function FileDiff({ patch, lineNumbers }: { patch: FilePatch; lineNumbers: boolean }) {
  const file = useMemo((): FileData | null => {
    try {
      return parseDiff(patch.text, { nearbySequences: "zip" })[0] ?? null;
    } catch {
      return null; // shown as text instead
    }
  }, [patch.text]);
  if (!file) return <pre className="diff-raw">{patch.text}</pre>;
  if (!file.hunks.length) {
    return patch.notes.length ? null : <p className="diff-note muted">No text changes to show.</p>;
  }
  return (
    <div className="diff-scroll" role="group" aria-label={`Diff of ${patch.path}`} tabIndex={0}>
      <Diff viewType="unified" diffType={file.type} hunks={file.hunks} gutterType={lineNumbers ? "default" : "none"}>
        {(hunks) => hunks.map((hunk) => <Hunk key={hunk.content} hunk={hunk} />)}
      </Diff>
    </div>
  );
}

function FileSection({ patch, lineNumbers, initiallyOpen }: { patch: FilePatch; lineNumbers: boolean; initiallyOpen: boolean }) {
  const [open, setOpen] = useState(initiallyOpen);
  const counts = useMemo(() => countChanges(patch.text), [patch.text]);
  return (
    <details className="diff-file" open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary>
        <span className="diff-path">{patch.path}</span>
        {KIND_LABEL[patch.kind] && <span className="diff-kind">{KIND_LABEL[patch.kind]}</span>}
        <Counts {...counts} />
      </summary>
      {open && (
        <>
          {patch.notes.map((note) => (
            <p key={note} className="diff-note muted">
              {note}
            </p>
          ))}
          <FileDiff patch={patch} lineNumbers={lineNumbers} />
        </>
      )}
    </details>
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
  const totalLines = useMemo(
    () => patches.reduce((n, p) => n + p.text.split("\n", openBelow + 1).length, 0),
    [patches, openBelow],
  );
  const open = totalLines < openBelow;
  return (
    <div className="diff-files">
      {patches.map((patch, i) => (
        <FileSection key={`${patch.path}-${i}`} patch={patch} lineNumbers={lineNumbers} initiallyOpen={open} />
      ))}
    </div>
  );
}
