// The workspace's uncommitted changes, per repository and per file.
import { useMemo } from "react";
import { Counts, DiffFiles } from "../tools/DiffFiles";
import { splitGitDiff } from "../tools/diffText";
import type { GitRepo, GitState } from "./gitState";

function repoName(root: string): string {
  return root.replace(/\/+$/, "").split("/").pop() || root;
}

function Repository({ repo }: { repo: GitRepo }) {
  const patches = useMemo(() => splitGitDiff(repo.unified_diff ?? ""), [repo.unified_diff]);
  const files = repo.changed_files ?? patches.length;
  return (
    <details className="git-repo" open>
      <summary>
        <span className="git-repo-name" title={repo.repo_root}>
          {repoName(repo.repo_root)}
        </span>
        {repo.branch && <span className="git-branch">{repo.branch}</span>}
        <Counts additions={repo.additions ?? 0} deletions={repo.deletions ?? 0} />
      </summary>
      <p className="git-repo-facts muted">
        <span>{repo.repo_root}</span>
        {repo.remote_origin && <span>{repo.remote_origin}</span>}
        <span>
          {files} {files === 1 ? "file" : "files"} changed
        </span>
      </p>
      {repo.truncated && !patches.length && (
        <p className="muted git-note">The diff is too large to show; the counts are exact.</p>
      )}
      {patches.length > 0 ? (
        <DiffFiles patches={patches} openBelow={600} />
      ) : (
        !repo.truncated && <p className="muted git-note">No uncommitted changes.</p>
      )}
    </details>
  );
}

export function GitPanelBody({ state }: { state: GitState }) {
  const { repos, connection, message, error, loaded } = state;
  return (
    <div className="git-panel" aria-busy={!loaded}>
      {connection !== "live" && (
        <p className="muted panel-status" role="status">
          {connection === "connecting" && !loaded
            ? "Connecting to the workspace…"
            : "Waiting for the workspace's agent to reconnect…"}
        </p>
      )}
      {error && <p className="error">{error}</p>}
      {message && <p className="muted git-note">{message}</p>}
      {loaded && repos.length === 0 && (
        <p className="muted git-note">No git repositories with changes in this workspace yet.</p>
      )}
      {repos.map((repo) => (
        <Repository key={repo.repo_root} repo={repo} />
      ))}
    </div>
  );
}

export function gitTotals(repos: GitRepo[]): { additions: number; deletions: number } {
  return repos.reduce(
    (t, r) => ({ additions: t.additions + (r.additions ?? 0), deletions: t.deletions + (r.deletions ?? 0) }),
    { additions: 0, deletions: 0 },
  );
}
